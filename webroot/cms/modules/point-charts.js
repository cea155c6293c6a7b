// A point's power and energy-register charts, one pair per connector (a
// charger's meters are per connector: mixing them made the register zig-zag
// between two meters). Seeded for the chosen period from
// GET /api/cms/points/{id}/meter (thinned by the server), then continued
// live by the page from ocppd.admin.meter.{id} through ``push``.

import { LiveChart } from '/shared/chart.js';
import { describeError, h, replace } from '/shared/dom.js';
import { formatEnergy, formatKwhTick, formatPower } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.pointCharts.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.pointCharts');

const connectorName = (n) => (n === 0 ? TEXT.wholeCharger : TEXT.connector(n));

/** The periods offered, in hours; a day by default. Their words are "cms.pointCharts.periods.HOURS". */
const PERIODS = [1, 6, 24, 24 * 7, 24 * 30];

export function pointCharts(ctx, chargePointId) {
  const byConnector = new Map();
  const list = h('div', { class: 'connector-charts' });
  const note = h('p', { class: 'muted', role: 'status' });
  const period = h(
    'select',
    { id: 'chart-period', name: 'period' },
    PERIODS.map((hours) => h('option', { value: String(hours) }, TEXT.periods[hours])),
  );
  period.value = '24';

  // The period shown: from when (epoch ms), how many hours.
  const span = { from: Date.now() - 24 * 3600_000, hours: 24 };
  const charts = (connectorId) => {
    let entry = byConnector.get(connectorId);
    if (entry) return entry;
    // The axis spans the chosen period up to now, so one value is not drawn on an axis of years.
    const timeRange = () => [span.from / 1000, Date.now() / 1000];
    const clock = span.hours <= 24;
    const power = new LiveChart({ title: TEXT.power, label: TEXT.power, format: formatPower, floor: 1000, timeRange, clock });
    const energy = new LiveChart({ title: TEXT.energy, label: TEXT.energy, color: '#1b6e3a', format: formatEnergy, axis: formatKwhTick, floor: 1000, fromZero: false, timeRange, clock });
    const element = h(
      'section',
      { class: 'connector-chart', 'data-connector': connectorId, 'aria-label': connectorName(connectorId) },
      h('h3', {}, connectorName(connectorId)),
      h('div', { class: 'chart-pair' }, power.element, energy.element),
    );
    entry = { power, energy, element };
    byConnector.set(connectorId, entry);
    // In connector order, whenever one first appears.
    const after = [...list.children].find((el) => Number(el.dataset.connector) > connectorId);
    list.insertBefore(element, after || null);
    if (note.textContent === TEXT.none) note.textContent = '';
    return entry;
  };

  const clear = () => {
    for (const { power, energy } of byConnector.values()) {
      power.destroy();
      energy.destroy();
    }
    byConnector.clear();
    list.replaceChildren();
  };
  ctx.onDispose(clear);

  let connectorIds = [];
  let loads = 0;
  // Pushes that arrive while a history is on its way: applied after it.
  let held = null;
  const apply = (data, at) => {
    const { power, energy } = charts(data.connectorId);
    power.push(at, data.powerW);
    energy.push(at, data.energyWh);
  };
  const load = async () => {
    const mine = (loads += 1);
    held = held || [];
    const to = new Date();
    const from = new Date(to.getTime() - Number(period.value) * 3600_000);
    span.from = from.getTime();
    span.hours = Number(period.value);
    let history = { connectors: [] };
    let failure = null;
    try {
      history = await ctx.api.get(`/api/cms/points/${encodeURIComponent(chargePointId)}/meter`, { from: from.toISOString(), to: to.toISOString() });
    } catch (error) {
      failure = describeError(error);
    }
    if (mine !== loads) return; // a newer period was chosen meanwhile
    clear();
    const seen = new Set([...connectorIds, ...history.connectors.map((c) => c.connectorId)]);
    for (const id of [...seen].sort((a, b) => a - b)) charts(id);
    for (const { connectorId, points } of history.connectors) {
      const { power, energy } = charts(connectorId);
      power.setPoints(points.map((p) => [p.at, p.powerW]));
      energy.setPoints(points.map((p) => [p.at, p.energyWh]));
    }
    for (const [data, at] of held) apply(data, at);
    held = null;
    note.textContent = failure ? TEXT.failed(failure) : byConnector.size ? '' : TEXT.none;
  };
  period.addEventListener('change', load);

  return {
    element: h('div', { class: 'point-charts' }, h('div', { class: 'field field--inline' }, h('label', { for: 'chart-period' }, TEXT.period), period), note, list),
    /** Load the period's history; ``connectors`` (the point's) get charts even before their first value. */
    load(connectors = []) {
      connectorIds = connectors.filter((n) => n > 0);
      return load();
    },
    /** A ``meter.values`` push of this charger: onto its own connector's charts. */
    push(data, at) {
      if (!Number.isInteger(data.connectorId)) return;
      if (held) held.push([data, at]);
      else apply(data, at);
    },
  };
}
