// The customer's charging history, newest first; a new session appears and a
// running one climbs without a reload. Fed by GET /api/user/sessions and
// ocppd.user.{id}.session.

import { badge, errorState, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatDuration, formatEnergy, formatMoney, secondsBetween } from '/shared/format.js';

export function sessionColumns({ link }) {
  return [
    { label: 'Started', render: (s) => link(s, formatDateTime(s.startedAt)) },
    { label: 'Charger', render: (s) => `${s.chargePointId} · ${s.connectorId}` },
    { label: 'Energy', class: 'num', render: (s) => h('span', { 'data-field': 'energy' }, formatEnergy(s.energyWh)) },
    { label: 'Duration', class: 'num', render: (s) => formatDuration(secondsBetween(s.startedAt, s.stoppedAt)) },
    { label: 'Cost', class: 'num', render: (s) => h('span', { 'data-field': 'cost' }, formatMoney(s.cost, s.currency)) },
    { label: 'Status', render: (s) => badge(s.status, s.status === 'active' ? 'Charging' : 'Completed') },
  ];
}

export async function mount(root, ctx) {
  const table = new LiveTable({
    caption: 'Your charging sessions',
    key: (s) => s.id,
    empty: 'No charging sessions yet. Your sessions will appear here as soon as you charge.',
    columns: sessionColumns({
      link: (s, text) => h('a', { href: `#/session/${s.id}` }, text),
    }),
  });
  const older = new OlderPages('Show older sessions', {
    fetchPage: (cursor) => ctx.api.get('/api/user/sessions', { limit: 25, cursor }),
    append: (items) => table.appendRows(items),
  });
  const body = h('div', {}, loadingState());
  replace(root, h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'History'), h('p', { class: 'muted' }, 'Every session you charged, newest first.'))), body);

  const load = async () => {
    try {
      const page = await ctx.api.get('/api/user/sessions', { limit: 25 });
      table.setRows(page.items);
      older.reset(page);
      replace(body, h('section', { class: 'card' }, table.element, h('div', { class: 'more' }, older.button)));
    } catch (error) {
      replace(body, errorState(error, load));
    }
  };

  ctx.subscribe(topics.userSession(ctx.user.id), (event) => {
    if (!event.type?.startsWith('session.')) return;
    const session = sessionOf(event);
    const tr = table.upsert(mergeSession(table.get(session.id), session));
    tr.classList.add('flash');
  });
  await ctx.keepLoaded(load);
}
