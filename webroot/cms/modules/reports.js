// Reports: energy delivered, revenue and sessions per UTC day, week or month
// (GET /api/cms/reports/sessions), utilisation per station and faults and
// offline time per charger over the same span (.../utilisation, .../faults).
// Aggregated by the server; a session counts in the bucket of its start.
// Kept current: a session that starts or stops, or a charger whose status
// changes, has the reports asked for again a moment later.

import { badge, errorState, h, LiveTable, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatCount, formatDateTime, formatDuration, formatEnergy, formatKwhTick, formatMoney, locale } from '/shared/format.js';
import { BarChart } from './bar-chart.js';

const PERIODS = [
  ['day', 'Per day'],
  ['week', 'Per week (from Monday)'],
  ['month', 'Per month'],
];
// The server bounds utilisation and faults to a year; a longer report shows its last year.
const MAX_SPAN_MS = 366 * 86400 * 1000;
const COLORS = ['#1b6e3a', '#8a5300', '#6b3fa0', '#b42318'];

const utcDay = (iso) => iso.slice(0, 10);
const percent = (share) =>
  share === null || share === undefined ? '—' : new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(share);

function bucketLabel(period, iso) {
  const options = period === 'month' ? { month: 'long', year: 'numeric', timeZone: 'UTC' } : { dateStyle: 'medium', timeZone: 'UTC' };
  const text = new Intl.DateTimeFormat(locale(), options).format(new Date(iso));
  return period === 'week' ? `Week of ${text}` : text;
}

function figure(label, value, sub) {
  return h('section', { class: 'card stat' }, h('p', { class: 'label' }, label), h('p', { class: 'value' }, value), sub ? h('p', { class: 'sub' }, sub) : null);
}

function money(revenue, currencies) {
  if (!currencies.length) return '—';
  return currencies.map((c) => formatMoney(revenue[c] || 0, c)).join(' · ');
}

export async function mount(root, ctx) {
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const inputs = {
    period: h('select', { id: 'r-period', name: 'period' }, PERIODS.map(([value, label]) => h('option', { value }, label))),
    from: h('input', { id: 'r-from', name: 'from', type: 'date' }),
    to: h('input', { id: 'r-to', name: 'to', type: 'date' }),
  };
  if (ctx.query?.period && PERIODS.some(([p]) => p === ctx.query.period)) inputs.period.value = ctx.query.period;
  const filters = h(
    'form',
    { class: 'toolbar', 'aria-label': 'Report period' },
    field('r-period', 'Buckets', inputs.period),
    field('r-from', 'From (UTC day)', inputs.from),
    field('r-to', 'Until (UTC day)', inputs.to),
    h('button', { type: 'submit', class: 'primary' }, 'Show'),
  );

  const charts = {
    energy: new BarChart({ title: 'Energy delivered', format: formatEnergy, axis: formatKwhTick, color: '#0b5cad' }),
    sessions: new BarChart({ title: 'Sessions', format: formatCount, color: '#4a5563', counts: true }),
  };
  let revenueCharts = [];
  ctx.onDispose(() => [...Object.values(charts), ...revenueCharts].forEach((c) => c.destroy()));

  const figures = h('div', { class: 'grid figures' });
  const revenueBox = h('div', { class: 'grid-2' });
  const bucketTable = new LiveTable({
    caption: 'Figures per period',
    key: (b) => b.start,
    empty: 'No periods.',
    columns: [
      { label: 'Period', render: (b) => h('time', { datetime: b.start }, bucketLabel(b.period, b.start)) },
      { label: 'Sessions', render: (b) => formatCount(b.sessions) },
      { label: 'Energy', render: (b) => formatEnergy(b.energyWh) },
      { label: 'Revenue', render: (b) => money(b.revenue, b.currencies) },
    ],
  });
  const utilisationTable = new LiveTable({
    caption: 'Utilisation per station',
    key: (s) => String(s.stationId),
    empty: 'No stations.',
    columns: [
      { label: 'Station', render: (s) => (s.stationId === null ? h('span', { class: 'muted' }, 'Points in no station') : s.name) },
      { label: 'Connectors', render: (s) => formatCount(s.connectors) },
      { label: 'Charging time', render: (s) => formatDuration(s.busySeconds) },
      {
        label: 'Utilisation',
        render: (s) =>
          h(
            'span',
            { class: 'utilisation', 'data-field': 'utilisation' },
            s.utilisation === null ? null : h('meter', { min: 0, max: 1, value: s.utilisation, 'aria-hidden': 'true' }),
            ` ${percent(s.utilisation)}`,
          ),
      },
    ],
  });
  const faultTable = new LiveTable({
    caption: 'Faults and offline time per charger',
    key: (c) => c.chargePointId,
    empty: 'No charge points.',
    columns: [
      { label: 'Charge point', render: (c) => h('a', { href: `#/points/${encodeURIComponent(c.chargePointId)}` }, c.chargePointId) },
      { label: 'Now', render: (c) => (c.faultedConnectors ? badge('Faulted', `${c.faultedConnectors} faulted`) : c.online ? badge('Online') : badge('Offline')) },
      { label: 'Faults reported', render: (c) => h('span', { 'data-field': 'faults' }, formatCount(c.faults)) },
      { label: 'Last fault', render: (c) => (c.lastFaultAt ? h('time', { datetime: c.lastFaultAt }, formatDateTime(c.lastFaultAt)) : '—') },
      { label: 'Boots', render: (c) => formatCount(c.boots) },
      { label: 'Offline', render: (c) => h('span', { 'data-field': 'offline' }, c.offlineSeconds ? formatDuration(c.offlineSeconds) : '—') },
    ],
  });

  const spanNote = h('p', { class: 'muted' });
  const faultsShown = h('p', { class: 'muted', 'data-field': 'faults-shown' });
  const body = h('div', {}, loadingState());
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Reports'), h('p', { class: 'muted' }, 'Energy, revenue and sessions over time; utilisation, faults and offline time. Days, weeks and months are UTC.')),
      h('a', { href: '#/map', class: 'button' }, 'Station map'),
    ),
    filters,
    body,
  );
  const content = h(
    'div',
    {},
    spanNote,
    figures,
    h('div', { class: 'grid-2' }, h('section', { class: 'card' }, charts.energy.element), h('section', { class: 'card' }, charts.sessions.element)),
    revenueBox,
    h('section', { class: 'card' }, h('details', { class: 'report-table' }, h('summary', {}, 'Figures per period (table)'), bucketTable.element)),
    h(
      'section',
      { class: 'card', id: 'utilisation' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Utilisation per station')),
      h('p', { class: 'muted' }, 'The share of its connectors’ time with a session running, up to now.'),
      utilisationTable.element,
    ),
    h(
      'section',
      { class: 'card', id: 'faults' },
      h('div', { class: 'card-head' }, h('h2', {}, 'Faults and offline time')),
      h(
        'p',
        { class: 'muted' },
        'Faults: Faulted status notifications in the message log (kept for a limited number of days). Offline: the current outage only, since the charger was last seen; earlier outages are not recorded.',
      ),
      faultsShown,
      faultTable.element,
    ),
  );

  const query = () => {
    const q = { period: inputs.period.value };
    if (inputs.from.value) q.from = `${inputs.from.value}T00:00:00Z`;
    if (inputs.to.value) {
      const end = new Date(`${inputs.to.value}T00:00:00Z`);
      end.setUTCDate(end.getUTCDate() + 1);
      q.to = end.toISOString();
    }
    return q;
  };

  const render = (report, utilisation, faults) => {
    const { period, currencies } = report;
    const buckets = report.buckets.map((b) => ({ ...b, period, currencies }));
    charts.energy.set(period, buckets.map((b) => ({ start: b.start, value: b.energyWh })));
    charts.sessions.set(period, buckets.map((b) => ({ start: b.start, value: b.sessions })));
    for (const chart of revenueCharts) chart.destroy();
    revenueCharts = currencies.map(
      (currency, i) =>
        new BarChart({
          title: `Revenue (${currency})`,
          format: (minor) => formatMoney(minor, currency),
          color: COLORS[i % COLORS.length],
        }),
    );
    revenueCharts.forEach((chart, i) => chart.set(period, buckets.map((b) => ({ start: b.start, value: b.revenue[currencies[i]] || 0 }))));
    replace(revenueBox, revenueCharts.map((chart) => h('section', { class: 'card' }, chart.element)));
    const end = new Date(new Date(report.to).getTime() - 1).toISOString();
    spanNote.textContent = `${bucketLabel('day', report.from)} to ${bucketLabel('day', end)} (UTC), by the day each session started.`;
    replace(
      figures,
      figure('Sessions', formatCount(report.totals.sessions)),
      figure('Energy delivered', formatEnergy(report.totals.energyWh)),
      figure('Revenue', money(report.totals.revenue, currencies), currencies.length ? 'billed' : 'nothing billed'),
      figure(
        'Utilisation',
        percent(average(utilisation.items)),
        `${formatDateTime(utilisation.from)} – ${formatDateTime(utilisation.to)}`,
      ),
    );
    bucketTable.setRows([...buckets].reverse());
    utilisationTable.setRows(utilisation.items);
    faultTable.setRows(faults.items);
    faultsShown.textContent =
      faults.chargers > faults.items.length ? `The ${formatCount(faults.items.length)} chargers in most trouble of ${formatCount(faults.chargers)}: most faults, then faulted now, then longest offline.` : '';
    if (!inputs.from.value) inputs.from.value = utcDay(report.from);
    if (!inputs.to.value) inputs.to.value = utcDay(end);
  };

  const load = async () => {
    try {
      const report = await ctx.api.get('/api/cms/reports/sessions', query());
      const span = { from: report.from, to: report.to };
      const start = Math.max(new Date(report.from).getTime(), new Date(report.to).getTime() - MAX_SPAN_MS);
      span.from = new Date(start).toISOString();
      if (new Date(span.from) >= new Date()) {
        // A span wholly in the future: nothing happened yet.
        render(report, { from: span.from, to: span.to, items: [] }, { chargers: 0, items: [] });
      } else {
        const [utilisation, faults] = await Promise.all([
          ctx.api.get('/api/cms/reports/utilisation', span),
          ctx.api.get('/api/cms/reports/faults', span),
        ]);
        render(report, utilisation, faults);
      }
      if (body.firstChild !== content) replace(body, content);
      body.dataset.loaded = String(Number(body.dataset.loaded || 0) + 1);
    } catch (error) {
      replace(body, errorState(error, load));
    }
  };
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });
  inputs.period.addEventListener('change', () => {
    inputs.from.value = '';
    load();
  });

  // Live: what changes the figures is a session starting or stopping, or a
  // charger's status; the reports are asked for again a moment after.
  let timer = null;
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, 2000);
  };
  ctx.onDispose(() => clearTimeout(timer));
  ctx.subscribe(topics.adminSessions, (event) => {
    if (event.type === 'session.started' || event.type === 'session.stopped') soon();
  });
  ctx.subscribe(topics.chargers, soon);
  await ctx.keepLoaded(load);
}

/** The stations' utilisation weighted by their connectors. */
function average(items) {
  let busy = 0;
  let capacity = 0;
  for (const s of items) {
    if (s.utilisation === null) continue;
    busy += s.utilisation * s.connectors;
    capacity += s.connectors;
  }
  return capacity ? busy / capacity : null;
}
