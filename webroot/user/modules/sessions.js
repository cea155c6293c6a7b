// The customer's charging history, newest first; a new session appears and a
// running one climbs without a reload. Fed by GET /api/user/sessions and
// ocppd.user.{id}.session.

import { badge, errorState, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatDuration, formatEnergy, formatMoney, secondsBetween } from '/shared/format.js';
import { notStarted, TEXT as SESSION_TEXT } from '/shared/sessions.js';
import { messages } from '/shared/i18n.js';

const TEXT = messages('history');

function statusBadge(s) {
  if (notStarted(s)) return badge('not-started', SESSION_TEXT.notStarted);
  return badge(s.status, s.status === 'active' ? TEXT.charging : TEXT.completed);
}

function costText(s) {
  return notStarted(s) ? SESSION_TEXT.noCharge : formatMoney(s.cost, s.currency);
}

export function sessionColumns({ link }) {
  return [
    { label: TEXT.started, render: (s) => link(s, formatDateTime(s.startedAt)) },
    { label: TEXT.charger, render: (s) => `${s.chargePointId} · ${s.connectorId}` },
    { label: TEXT.energy, class: 'num', render: (s) => h('span', { 'data-field': 'energy' }, formatEnergy(s.energyWh ?? (s.status === 'active' ? 0 : null))) },
    { label: TEXT.duration, class: 'num', render: (s) => formatDuration(secondsBetween(s.startedAt, s.stoppedAt)) },
    { label: TEXT.cost, class: 'num', render: (s) => h('span', { 'data-field': 'cost' }, costText(s)) },
    { label: TEXT.status, render: (s) => h('span', { 'data-field': 'status' }, statusBadge(s)) },
  ];
}

export async function mount(root, ctx) {
  const table = new LiveTable({
    caption: TEXT.caption,
    key: (s) => s.id,
    empty: TEXT.empty,
    columns: sessionColumns({
      link: (s, text) => h('a', { href: `#/session/${s.id}` }, text),
    }),
  });
  const older = new OlderPages(TEXT.older, {
    fetchPage: (cursor) => ctx.api.get('/api/user/sessions', { limit: 25, cursor }),
    append: (items) => table.appendRows(items),
  });
  const body = h('div', {}, loadingState());
  replace(root, h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro))), body);

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
