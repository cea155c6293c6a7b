// The dashboard's open alerts (docs/operations.md "Alerts"): what the evaluator
// raised and has not resolved, newest first. Fed by GET /api/cms/alerts and
// reloaded on each cms.alert.* event of ocppd.admin.cms (coalesced).

import { emptyState, errorState, h, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatCount, formatDateTime } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.alerts.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.alerts');

// Each kind's badge colour; its words are "cms.alerts.kinds.KIND".
const KINDS = {
  charger_offline: 'bad',
  connector_faulted: 'bad',
  session_long: 'warn',
  dead_letters: 'bad',
  lag: 'warn',
};

/**
 * What an alert is about, in the reader's words from its data (the server's
 * summary is English; it is shown for a kind, or data, this page does not know).
 */
export function alertSummary(alert, now = Date.now()) {
  const d = alert.data || {};
  const known = (...names) => names.every((name) => d[name] !== undefined && d[name] !== null);
  if (alert.kind === 'charger_offline' && known('chargePointId', 'lastSeenAt')) {
    return TEXT.summaries.charger_offline(d.chargePointId, formatDateTime(d.lastSeenAt));
  }
  if (alert.kind === 'connector_faulted' && known('chargePointId', 'connectorId', 'errorCode')) {
    return TEXT.summaries.connector_faulted(d.chargePointId, d.connectorId, d.errorCode);
  }
  if (alert.kind === 'session_long' && known('sessionId', 'chargePointId', 'connectorId', 'startedAt')) {
    const hours = Math.max(0, Math.floor((now - new Date(d.startedAt).getTime()) / 3_600_000));
    return TEXT.summaries.session_long({ count: hours, id: d.sessionId, cp: d.chargePointId, connector: d.connectorId, hours: formatCount(hours) });
  }
  if (alert.kind === 'dead_letters' && known('queue')) return TEXT.summaries.dead_letters(d.queue);
  if (alert.kind === 'lag' && known('queue', 'lagSeconds')) return TEXT.summaries.lag(d.queue, formatCount(Math.round(d.lagSeconds)));
  return alert.summary;
}

function alertItem(alert) {
  const kind = KINDS[alert.kind] || 'muted';
  const label = TEXT.kinds[alert.kind] ?? alert.kind;
  const charger = alert.data?.chargePointId;
  const summary = alertSummary(alert);
  const about = charger ? h('a', { href: `#/points/${encodeURIComponent(charger)}` }, summary) : summary;
  return h(
    'li',
    { 'data-alert': alert.key },
    h('span', { class: `badge badge--${kind}` }, label),
    ' ',
    about,
    h('span', { class: 'muted' }, ` · ${TEXT.since(formatDateTime(alert.since || alert.raisedAt))}`),
  );
}

/** The panel's element; it loads itself now and on every alert event until the page goes. */
export function alertsPanel(ctx) {
  const count = h('span', { class: 'muted', 'data-figure': 'alerts' });
  const body = h('div', {});
  const element = h(
    'section',
    { class: 'card', 'aria-labelledby': 'alerts-title' },
    h('div', { class: 'card-head' }, h('h2', { id: 'alerts-title' }, TEXT.title), count),
    body,
  );
  const render = (alerts) => {
    count.textContent = alerts.length ? TEXT.open({ count: alerts.length, n: formatCount(alerts.length) }) : '';
    replace(body, alerts.length ? h('ul', { class: 'alerts' }, alerts.map(alertItem)) : emptyState(TEXT.none));
  };
  let timer = null;
  const load = async () => {
    try {
      render((await ctx.api.get('/api/cms/alerts')).alerts);
    } catch (error) {
      replace(body, errorState(error, load));
    }
  };
  ctx.onDispose(() => clearTimeout(timer));
  ctx.subscribe(topics.adminCms, (event) => {
    if (event.data?.kind !== 'alert') return;
    clearTimeout(timer);
    timer = setTimeout(load, 150);
  });
  // Events missed while the push channel was away: read the list again.
  ctx.onReconnect(load);
  load();
  return element;
}
