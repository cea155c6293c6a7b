// The audit log: every charger command, CMS change and decision on money,
// who made it and what came of it; newest first, filtered on the server
// (charger, operator's e-mail, kind, days), older pages on request.
// Fed by GET /api/cms/audit; ocppd.admin.cms and ocppd.admin.sessions say
// when something was audited, and the newest entries are fetched again.

import { badge, errorState, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime } from '/shared/format.js';

const KINDS = [
  ['', 'All'],
  ['command', 'Charger commands'],
  ['cms', 'CMS changes'],
  ['session', 'Session decisions'],
  ['charging', 'App starts and stops'],
];
const OUTCOMES = { requested: 'Pending', answered: 'Accepted', failed: 'Faulted' };

function summary(entry) {
  const d = entry.detail || {};
  if (d.reason) return `Reason: ${d.reason}`;
  if (d.note) return `Note: ${d.note}`;
  if (d.response?.status) return `Answer: ${d.response.status}`;
  if (d.error) return `Error: ${d.error.message || d.error.code || d.error}`;
  if (d.data?.name) return String(d.data.name);
  return '';
}

function detailCell(entry) {
  const text = JSON.stringify(entry.detail ?? null, null, 2);
  return h(
    'details',
    { class: 'audit-detail' },
    h('summary', {}, summary(entry) || 'Details'),
    h('pre', { class: 'payload' }, text.length > 4000 ? `${text.slice(0, 4000)}…` : text),
  );
}

export async function mount(root, ctx) {
  const table = new LiveTable({
    caption: 'Audit log, newest first',
    key: (e) => e.id,
    empty: 'No entries match these filters.',
    columns: [
      { label: 'Time', render: (e) => h('time', { datetime: e.at }, formatDateTime(e.at)) },
      { label: 'Action', render: (e) => h('span', { class: 'mono', 'data-field': 'action' }, e.action) },
      { label: 'Outcome', render: (e) => badge(OUTCOMES[e.outcome] || e.outcome, e.outcome) },
      { label: 'Charge point', render: (e) => (e.chargePointId ? h('a', { href: `#/points/${encodeURIComponent(e.chargePointId)}` }, e.chargePointId) : '—') },
      { label: 'By', render: (e) => (e.by ? e.by.email || `user ${e.by.userId}` : h('span', { class: 'muted' }, 'ocppd')) },
      { label: 'What', render: detailCell },
    ],
  });
  const older = new OlderPages('Show older entries', {
    fetchPage: (cursor) => ctx.api.get('/api/cms/audit', { ...query(), limit: 50, cursor }),
    append: (items) => table.appendRows(items),
  });
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const inputs = {
    chargePointId: h('input', { id: 'a-cp', name: 'chargePointId', placeholder: 'All', autocomplete: 'off' }),
    email: h('input', { id: 'a-email', name: 'email', type: 'email', placeholder: 'Anyone', autocomplete: 'off' }),
    kind: h('select', { id: 'a-kind', name: 'kind' }, KINDS.map(([value, label]) => h('option', { value }, label))),
    from: h('input', { id: 'a-from', name: 'from', type: 'date' }),
    to: h('input', { id: 'a-to', name: 'to', type: 'date' }),
  };
  const filters = h(
    'form',
    { class: 'toolbar', role: 'search', 'aria-label': 'Filter the audit log' },
    field('a-cp', 'Charge point', inputs.chargePointId),
    field('a-email', 'By (e-mail)', inputs.email),
    field('a-kind', 'Kind', inputs.kind),
    field('a-from', 'From', inputs.from),
    field('a-to', 'Until', inputs.to),
    h('button', { type: 'submit', class: 'primary' }, 'Apply'),
  );
  const body = h('div', {}, loadingState());
  replace(
    root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Audit log'), h('p', { class: 'muted' }, 'Every command, CMS change and billing decision: who, when, what, and the answer.'))),
    filters,
    body,
  );

  const query = () => {
    const q = {};
    for (const name of ['chargePointId', 'email', 'kind']) {
      const value = inputs[name].value.trim();
      if (value) q[name] = value;
    }
    // Dates are the reader's days: midnight local time, sent as UTC instants.
    if (inputs.from.value) q.from = new Date(`${inputs.from.value}T00:00:00`).toISOString();
    if (inputs.to.value) {
      const end = new Date(`${inputs.to.value}T00:00:00`);
      end.setDate(end.getDate() + 1);
      q.to = end.toISOString();
    }
    return q;
  };

  const load = async () => {
    try {
      const page = await ctx.api.get('/api/cms/audit', { ...query(), limit: 50 });
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

  // The audit consumer writes an entry shortly after the change it records:
  // the newest page is asked for again a moment after each, and what is new
  // goes on top.
  let timer = null;
  const newest = async () => {
    try {
      const page = await ctx.api.get('/api/cms/audit', { ...query(), limit: 50 });
      for (const entry of [...page.items].reverse()) {
        if (!table.get(entry.id)) table.upsert(entry).classList.add('flash');
      }
    } catch {
      // The next event, or a reload, tries again.
    }
  };
  const soon = () => {
    clearTimeout(timer);
    timer = setTimeout(newest, 800);
  };
  ctx.onDispose(() => clearTimeout(timer));
  ctx.subscribe(topics.adminCms, soon);
  ctx.subscribe(topics.adminSessions, (event) => {
    if (event.type === 'session.stopped' || event.type === 'session.reviewed') soon();
  });
  await ctx.keepLoaded(load);
}
