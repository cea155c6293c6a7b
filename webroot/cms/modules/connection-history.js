// A point's connection history: its newest connections (which node held the
// socket, when it opened and closed, for how long, and the close code and
// reason the node saw). Fed by GET /api/cms/points/{id}/connections, read
// when the page loads (no live update: a reload shows what is stored).

import { badge, describeError, h, LiveTable, replace } from '/shared/dom.js';
import { formatDateTime, formatDuration } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

const TEXT = messages('cms.connections');

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
    } catch (error) {
      replace(status, describeError(error));
    }
  };
  const element = h(
    'section',
    { class: 'card', id: 'connections', 'aria-labelledby': 'connections-title' },
    h('h2', { id: 'connections-title' }, TEXT.title),
    status,
    table.element,
  );
  return { element, refresh };
}
