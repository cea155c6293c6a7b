// Charging sessions across the network: filters, and a live list in which new
// sessions appear and running ones show their energy climbing.
// Fed by GET /api/cms/sessions and ocppd.admin.sessions.

import { badge, errorState, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatDuration, formatEnergy, formatMoney, formatPower, secondsBetween } from '/shared/format.js';
import { closeSessionButton } from './close-session.js';
import { customerCell, nameCustomer, remember } from './customers-cache.js';

// ``ctx`` given: running sessions get a button to close them by hand.
export function sessionTable({ empty, caption, ctx = null }) {
  const table = new LiveTable({
    caption,
    key: (s) => s.id,
    empty,
    columns: [
      { label: 'Session', render: (s) => h('span', { class: 'mono' }, String(s.id)) },
      { label: 'Started', render: (s) => formatDateTime(s.startedAt) },
      { label: 'Charge point', render: (s) => h('a', { href: `#/points/${encodeURIComponent(s.chargePointId)}` }, `${s.chargePointId} · ${s.connectorId}`) },
      { label: 'Customer', render: customerCell },
      {
        label: 'Energy',
        class: 'num',
        render: (s) => h('span', { 'data-field': 'energy' }, formatEnergy(s.energyWh), s.status === 'active' && s.powerW ? h('span', { class: 'muted' }, ` · ${formatPower(s.powerW)}`) : null),
      },
      { label: 'Duration', class: 'num', render: (s) => formatDuration(secondsBetween(s.startedAt, s.stoppedAt)) },
      { label: 'Cost', class: 'num', render: (s) => h('span', { 'data-field': 'cost' }, formatMoney(s.cost, s.currency)) },
      { label: 'Status', render: (s) => [badge(s.status, s.status === 'active' ? 'Charging' : 'Completed'), s.stopReason ? h('span', { class: 'muted', 'data-field': 'stop-reason' }, ` ${s.stopReason}`) : null] },
      ...(ctx ? [{ label: 'Actions', render: (s) => (s.status === 'active' ? closeSessionButton(ctx, s, (closed) => table.upsert(mergeSession(table.get(closed.id), closed))) : null) }] : []),
    ],
  });
  return table;
}

export async function mount(root, ctx) {
  const table = sessionTable({ caption: 'Charging sessions', empty: 'No sessions match these filters.', ctx });
  const older = new OlderPages('Show older sessions', {
    fetchPage: (cursor) => ctx.api.get('/api/cms/sessions', { ...query(), limit: 50, cursor }),
    append: (items) => table.appendRows(items),
  });
  const body = h('div', {}, loadingState());
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const inputs = {
    chargePointId: h('input', { id: 'f-cp', name: 'chargePointId', placeholder: 'All', autocomplete: 'off' }),
    status: h('select', { id: 'f-status', name: 'status' }, h('option', { value: '' }, 'All'), h('option', { value: 'active' }, 'Charging'), h('option', { value: 'completed' }, 'Completed')),
    from: h('input', { id: 'f-from', name: 'from', type: 'date' }),
    to: h('input', { id: 'f-to', name: 'to', type: 'date' }),
  };
  const filters = h(
    'form',
    { class: 'toolbar', role: 'search', 'aria-label': 'Filter sessions' },
    field('f-cp', 'Charge point', inputs.chargePointId),
    field('f-status', 'Status', inputs.status),
    field('f-from', 'From', inputs.from),
    field('f-to', 'Until', inputs.to),
    h('button', { type: 'submit', class: 'primary' }, 'Apply'),
  );
  replace(root, h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Charging sessions'), h('p', { class: 'muted' }, 'Newest first; running sessions update live.'))), filters, body);

  const query = () => {
    const q = { chargePointId: inputs.chargePointId.value.trim(), status: inputs.status.value };
    // Dates are the reader's days: midnight local time, sent as UTC instants.
    if (inputs.from.value) q.from = new Date(`${inputs.from.value}T00:00:00`).toISOString();
    if (inputs.to.value) {
      const end = new Date(`${inputs.to.value}T00:00:00`);
      end.setDate(end.getDate() + 1);
      q.to = end.toISOString();
    }
    return q;
  };
  const matches = (s) => {
    const q = query();
    if (q.chargePointId && s.chargePointId !== q.chargePointId) return false;
    if (q.status && s.status !== q.status && !table.get(s.id)) return false;
    if (q.from && s.startedAt < q.from) return false;
    if (q.to && s.startedAt >= q.to) return false;
    return true;
  };

  const load = async () => {
    try {
      const page = await ctx.api.get('/api/cms/sessions', { ...query(), limit: 50 });
      remember(page.items);
      table.setRows(page.items);
      older.reset(page);
      replace(body, h('section', { class: 'card' }, table.element, h('div', { class: 'more' }, older.button)));
    } catch (error) {
      replace(body, errorState(error, load));
    }
  };
  filters.addEventListener('submit', (event) => {
    event.preventDefault();
    load();
  });

  ctx.subscribe(topics.adminSessions, (event) => {
    if (!event.type?.startsWith('session.')) return;
    const session = mergeSession(table.get(sessionOf(event).id), sessionOf(event));
    if (!matches(session)) return;
    table.upsert(session).classList.add('flash');
    nameCustomer(ctx, table, session);
  });
  await ctx.keepLoaded(load);
}
