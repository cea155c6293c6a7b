// A point's connection history: its newest connections (which node held the
// socket, when it opened and closed, for how long, and the close code and
// reason the node saw). Fed by GET /api/cms/points/{id}/connections, read
// when the page loads and again on each live charger.online/charger.offline
// of this charger (``follow``, called by the point page).

import { badge, describeError, h, LiveTable, replace } from '/shared/dom.js';
import { formatDateTime, formatDuration } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

const TEXT = messages('cms.connections');

// The push comes from the bus event the processor stores the row from, possibly
// before its commit: read again after these pauses (ms) until the table shows it.
// Bounded: a row that never shows (a store that is down) costs four reads.
const RETRY_PAUSES = [500, 1500, 4000];
// Which time of a row a live event sets.
const EVENT_TIMES = { 'charger.online': 'connectedAt', 'charger.offline': 'disconnectedAt' };

function closed(c) {
  if (!c.disconnectedAt) return badge('Online', TEXT.open);
  // The code and the node's reason as they came (a WebSocket close code, a node's words).
  const parts = [c.closeCode === null ? '' : String(c.closeCode), c.closeReason || ''].filter(Boolean);
  return h('span', { 'data-field': 'close' }, parts.length ? parts.join(' · ') : '—');
}

export function connectionHistoryCard(ctx, chargePointId) {
  const status = h('p', { class: 'muted', 'aria-live': 'polite' });
  const table = new LiveTable({
    caption: TEXT.caption,
    key: (c) => c.connectionId,
    empty: TEXT.empty,
    columns: [
      { label: TEXT.node, render: (c) => h('span', { class: 'mono', 'data-field': 'node' }, c.node || '—') },
      { label: TEXT.connected, render: (c) => h('time', { datetime: c.connectedAt }, formatDateTime(c.connectedAt)) },
      { label: TEXT.disconnected, render: (c) => (c.disconnectedAt ? h('time', { datetime: c.disconnectedAt }, formatDateTime(c.disconnectedAt)) : '—') },
      { label: TEXT.duration, class: 'num', render: (c) => h('span', { 'data-field': 'duration' }, c.durationSeconds === null ? '—' : formatDuration(c.durationSeconds)) },
      { label: TEXT.closed, render: closed },
    ],
  });
  const refresh = async () => {
    try {
      const answer = await ctx.api.get(`/api/cms/points/${encodeURIComponent(chargePointId)}/connections`);
      table.setRows(answer.items);
      replace(status, '');
      return answer.items;
    } catch (error) {
      replace(status, describeError(error));
      return null;
    }
  };
  // The newest event wins: an older one's retries stop when another arrives.
  let following = 0;
  let timer = null;
  ctx.onDispose(() => clearTimeout(timer));
  const follow = async (event) => {
    const field = EVENT_TIMES[event.type];
    if (!field) return;
    const chain = ++following;
    clearTimeout(timer);
    // Both times are the node's, from the same event; 1 ms for the parse's rounding.
    const at = Date.parse(event.at) - 1;
    const shown = (items) => items.some((c) => c[field] && Date.parse(c[field]) >= at);
    for (const pause of [0, ...RETRY_PAUSES]) {
      if (pause) await new Promise((resolve) => (timer = setTimeout(resolve, pause)));
      if (chain !== following || ctx.disposed) return;
      const items = await refresh();
      if (chain !== following || !items || Number.isNaN(at) || shown(items)) return;
    }
  };
  const element = h(
    'section',
    { class: 'card', id: 'connections', 'aria-labelledby': 'connections-title' },
    h('h2', { id: 'connections-title' }, TEXT.title),
    status,
    table.element,
  );
  return { element, refresh, follow };
}
