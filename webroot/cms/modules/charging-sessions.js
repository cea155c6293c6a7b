// Charging sessions across the network: searched on the server in any case (charger,
// card, customer), filtered, sorted, paged and exported as CSV; a live list in which new
// sessions appear and running ones show their energy climbing.
// Fed by GET /api/cms/sessions and ocppd.admin.sessions.

import { badge, h, LiveTable, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatDuration, formatEnergy, formatMoney, formatPower, secondsBetween } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { closeSessionButton } from './close-session.js';
import { customerCell, nameCustomer, remember } from './customers-cache.js';
import { serverList } from './server-list.js';
import { stopReasonText } from './stop-reasons.js';

// "cms.sessions.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.sessions');

/** A closed session's late stop from its charger (billed again on it), in words; null if none. */
function chargerStop(session) {
  if (!session.chargerStopReason) return null;
  return h('span', { class: 'muted', 'data-field': 'charger-stop-reason' }, ` · ${TEXT.chargerStop(stopReasonText(session.chargerStopReason))}`);
}

// ``ctx`` given: running sessions get a button to close them by hand.
export function sessionTable({ empty, caption, ctx = null }) {
  const table = new LiveTable({
    caption,
    key: (s) => s.id,
    empty,
    columns: [
      { label: TEXT.session, render: (s) => h('span', { class: 'mono' }, String(s.id)) },
      { label: TEXT.started, render: (s) => formatDateTime(s.startedAt) },
      { label: TEXT.chargePoint, render: (s) => h('a', { href: `#/points/${encodeURIComponent(s.chargePointId)}` }, `${s.chargePointId} · ${s.connectorId}`) },
      { label: TEXT.customer, render: customerCell },
      {
        label: TEXT.energy,
        class: 'num',
        render: (s) => h('span', { 'data-field': 'energy' }, formatEnergy(s.energyWh), s.status === 'active' && s.powerW ? h('span', { class: 'muted' }, ` · ${formatPower(s.powerW)}`) : null),
      },
      { label: TEXT.duration, class: 'num', render: (s) => formatDuration(secondsBetween(s.startedAt, s.stoppedAt)) },
      { label: TEXT.cost, class: 'num', render: (s) => h('span', { 'data-field': 'cost' }, formatMoney(s.cost, s.currency)) },
      { label: TEXT.status, render: (s) => [badge(s.status, s.status === 'active' ? TEXT.charging : TEXT.completed), s.stopReason ? h('span', { class: 'muted', 'data-field': 'stop-reason' }, ` ${stopReasonText(s.stopReason)}`) : null, chargerStop(s)] },
      ...(ctx ? [{ label: TEXT.actions, render: (s) => (s.status === 'active' ? closeSessionButton(ctx, s, (closed) => table.upsert(mergeSession(table.get(closed.id), closed))) : null) }] : []),
    ],
  });
  return table;
}

/** The instant a reader's day (a date input's value) starts, ``days`` later; '' for none. */
function dayStart(value, days = 0) {
  if (!value) return '';
  // Dates are the reader's days: midnight local time, sent as UTC instants.
  const start = new Date(`${value}T00:00:00`);
  start.setDate(start.getDate() + days);
  return start.toISOString();
}

export async function mount(root, ctx) {
  const table = sessionTable({ caption: TEXT.title, empty: TEXT.noMatch, ctx });
  const inputs = {
    q: h('input', { id: 'f-q', name: 'q', type: 'search', placeholder: TEXT.searchHint, autocomplete: 'off', maxlength: 100 }),
    chargePointId: h('input', { id: 'f-cp', name: 'chargePointId', placeholder: TEXT.all, autocomplete: 'off' }),
    status: h('select', { id: 'f-status', name: 'status' }, h('option', { value: '' }, TEXT.all), h('option', { value: 'active' }, TEXT.charging), h('option', { value: 'completed' }, TEXT.completed)),
    from: h('input', { id: 'f-from', name: 'from', type: 'date' }),
    to: h('input', { id: 'f-to', name: 'to', type: 'date' }),
  };
  const list = serverList({
    ctx,
    label: 'sessions',
    title: TEXT.listName,
    path: '/api/cms/sessions',
    csvPath: '/api/cms/sessions.csv',
    csvName: 'sessions.csv',
    moreLabel: TEXT.more,
    table,
    onPage: remember,
    filters: [
      { name: 'q', label: TEXT.search, input: inputs.q },
      { name: 'chargePointId', label: TEXT.chargePoint, input: inputs.chargePointId },
      { name: 'status', label: TEXT.status, input: inputs.status },
      { name: 'from', label: TEXT.from, input: inputs.from, value: () => dayStart(inputs.from.value) },
      { name: 'to', label: TEXT.until, input: inputs.to, value: () => dayStart(inputs.to.value, 1) },
    ],
    sorts: [
      ['-id', TEXT.sorts.newest],
      ['id', TEXT.sorts.oldest],
      ['-started', TEXT.sorts.latestStart],
      ['started', TEXT.sorts.earliestStart],
    ],
  });
  replace(
    root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro))),
    list.form,
    list.body,
  );

  // Whether a session pushed live belongs in the list as filtered (the server decides for
  // the pages; a customer's name is not in the event, so a search matches charger or card).
  const matches = (s) => {
    const q = list.query();
    const lower = (text) => String(text || '').toLowerCase();
    if (q.q && !lower(s.chargePointId).includes(lower(q.q)) && !lower(s.idTag).includes(lower(q.q))) return false;
    if (q.chargePointId && lower(s.chargePointId) !== lower(q.chargePointId)) return false;
    if (q.status && s.status !== q.status && !table.get(s.id)) return false;
    if (q.from && s.startedAt < q.from) return false;
    if (q.to && s.startedAt >= q.to) return false;
    return true;
  };

  ctx.subscribe(topics.adminSessions, (event) => {
    if (!event.type?.startsWith('session.')) return;
    const session = mergeSession(table.get(sessionOf(event).id), sessionOf(event));
    if (!matches(session)) return;
    table.upsert(session).classList.add('flash');
    nameCustomer(ctx, table, session);
  });
  await ctx.keepLoaded(list.load);
}
