// Reports: energy delivered, revenue and sessions per UTC day, week or month
// (GET /api/cms/reports/sessions), utilisation per station and faults and
// offline time per charger over the same span (.../utilisation, .../faults).
// Aggregated by the server; a session counts in the bucket of its start.
// Kept current: a session that starts or stops, or a charger whose status
// changes, has the reports asked for again a moment later.

import { badge, errorState, h, LiveTable, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatCount, formatDateTime, formatDuration, formatEnergy, formatKwhTick, formatMoney, locale } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { BarChart } from './bar-chart.js';

// "cms.reports.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.reports');

// The buckets to choose from; their words are "cms.reports.periods.*".
const PERIODS = ['day', 'week', 'month'];
// The server bounds utilisation and faults to a year; a longer report shows its last year.
const MAX_SPAN_MS = 366 * 86400 * 1000;
const COLORS = ['#1b6e3a', '#8a5300', '#6b3fa0', '#b42318'];

const utcDay = (iso) => iso.slice(0, 10);
const percent = (share) =>
  share === null || share === undefined ? '—' : new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 1 }).format(share);

function bucketLabel(period, iso) {
  const options = period === 'month' ? { month: 'long', year: 'numeric', timeZone: 'UTC' } : { dateStyle: 'medium', timeZone: 'UTC' };
  const text = new Intl.DateTimeFormat(locale(), options).format(new Date(iso));
  return period === 'week' ? TEXT.weekOf(text) : text;
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
    period: h('select', { id: 'r-period', name: 'period' }, PERIODS.map((value) => h('option', { value }, TEXT.periods[value]))),
    from: h('input', { id: 'r-from', name: 'from', type: 'date' }),
    to: h('input', { id: 'r-to', name: 'to', type: 'date' }),
  };
  if (ctx.query?.period && PERIODS.includes(ctx.query.period)) inputs.period.value = ctx.query.period;
  const filters = h(
    'form',
    { class: 'toolbar', 'aria-label': TEXT.reportPeriod },
    field('r-period', TEXT.buckets, inputs.period),
    field('r-from', TEXT.fromDay, inputs.from),
    field('r-to', TEXT.untilDay, inputs.to),
    h('button', { type: 'submit', class: 'primary' }, TEXT.show),
  );

  const charts = {
    energy: new BarChart({ title: TEXT.energyDelivered, format: formatEnergy, axis: formatKwhTick, color: '#0b5cad' }),
    sessions: new BarChart({ title: TEXT.sessions, format: formatCount, color: '#4a5563', counts: true }),
  };
  let revenueCharts = [];
  ctx.onDispose(() => [...Object.values(charts), ...revenueCharts].forEach((c) => c.destroy()));

  const figures = h('div', { class: 'grid figures' });
  const revenueBox = h('div', { class: 'grid-2' });
  const bucketTable = new LiveTable({
    caption: TEXT.perPeriod,
    key: (b) => b.start,
    empty: TEXT.noPeriods,
    columns: [
      { label: TEXT.period, render: (b) => h('time', { datetime: b.start }, bucketLabel(b.period, b.start)) },
      { label: TEXT.sessions, render: (b) => formatCount(b.sessions) },
      { label: TEXT.energy, render: (b) => formatEnergy(b.energyWh) },
      { label: TEXT.revenue, render: (b) => money(b.revenue, b.currencies) },
    ],
  });
  const utilisationTable = new LiveTable({
    caption: TEXT.utilisationPerStation,
    key: (s) => String(s.stationId),
    empty: TEXT.noStations,
    columns: [
      { label: TEXT.station, render: (s) => (s.stationId === null ? h('span', { class: 'muted' }, TEXT.noStation) : s.name) },
      { label: TEXT.connectors, render: (s) => formatCount(s.connectors) },
      { label: TEXT.chargingTime, render: (s) => formatDuration(s.busySeconds) },
      {
        label: TEXT.utilisation,
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
    caption: TEXT.faultsPerCharger,
    key: (c) => c.chargePointId,
    empty: TEXT.noPoints,
    columns: [
      { label: TEXT.chargePoint, render: (c) => h('a', { href: `#/points/${encodeURIComponent(c.chargePointId)}` }, c.chargePointId) },
      { label: TEXT.now, render: (c) => (c.faultedConnectors ? badge('Faulted', TEXT.faulted({ count: c.faultedConnectors, n: formatCount(c.faultedConnectors) })) : c.online ? badge('Online') : badge('Offline')) },
      { label: TEXT.faultsReported, render: (c) => h('span', { 'data-field': 'faults' }, formatCount(c.faults)) },
      { label: TEXT.lastFault, render: (c) => (c.lastFaultAt ? h('time', { datetime: c.lastFaultAt }, formatDateTime(c.lastFaultAt)) : '—') },
      { label: TEXT.boots, render: (c) => formatCount(c.boots) },
      { label: TEXT.offline, render: (c) => h('span', { 'data-field': 'offline' }, c.offlineSeconds ? formatDuration(c.offlineSeconds) : '—') },
      { label: TEXT.outages, render: (c) => h('span', { 'data-field': 'outages' }, formatCount(c.outages)) },
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
      h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro)),
      h('a', { href: '#/map', class: 'button' }, TEXT.map),
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
    h('section', { class: 'card' }, h('details', { class: 'report-table' }, h('summary', {}, TEXT.perPeriodTable), bucketTable.element)),
    h(
      'section',
      { class: 'card', id: 'utilisation' },
      h('div', { class: 'card-head' }, h('h2', {}, TEXT.utilisationPerStation)),
      h('p', { class: 'muted' }, TEXT.utilisationNote),
      utilisationTable.element,
    ),
    h(
      'section',
      { class: 'card', id: 'faults' },
      h('div', { class: 'card-head' }, h('h2', {}, TEXT.faultsTitle)),
      h(
        'p',
        { class: 'muted' },
        TEXT.faultsNote,
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
          title: TEXT.revenueIn(currency),
          format: (minor) => formatMoney(minor, currency),
          color: COLORS[i % COLORS.length],
        }),
    );
    revenueCharts.forEach((chart, i) => chart.set(period, buckets.map((b) => ({ start: b.start, value: b.revenue[currencies[i]] || 0 }))));
    replace(revenueBox, revenueCharts.map((chart) => h('section', { class: 'card' }, chart.element)));
    const end = new Date(new Date(report.to).getTime() - 1).toISOString();
    spanNote.textContent = TEXT.span(bucketLabel('day', report.from), bucketLabel('day', end));
    replace(
      figures,
      figure(TEXT.sessions, formatCount(report.totals.sessions)),
      figure(TEXT.energyDelivered, formatEnergy(report.totals.energyWh)),
      figure(TEXT.revenue, money(report.totals.revenue, currencies), currencies.length ? TEXT.billed : TEXT.nothingBilled),
      figure(
        TEXT.utilisation,
        percent(average(utilisation.items)),
        `${formatDateTime(utilisation.from)} – ${formatDateTime(utilisation.to)}`,
      ),
    );
    bucketTable.setRows([...buckets].reverse());
    utilisationTable.setRows(utilisation.items);
    faultTable.setRows(faults.items);
    faultsShown.textContent =
      faults.chargers > faults.items.length ? TEXT.mostTrouble(formatCount(faults.items.length), formatCount(faults.chargers)) : '';
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
