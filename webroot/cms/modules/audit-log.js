// The audit log: every charger command, CMS change and decision on money,
// who made it and what came of it; newest first, filtered on the server
// (charger, operator's e-mail, kind, days), older pages on request.
// Fed by GET /api/cms/audit; ocppd.admin.cms and ocppd.admin.sessions say
// when something was audited, and the newest entries are fetched again.

import { badge, errorState, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { stopReasonText } from './stop-reasons.js';

// "cms.audit.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.audit');

// The kinds to filter by; their words are "cms.audit.kinds.*" ("all" for none).
const KINDS = ['', 'command', 'cms', 'session', 'charging'];
// An outcome's badge colour; its words are "cms.audit.outcomes.*".
const OUTCOMES = { requested: 'Pending', answered: 'Accepted', failed: 'Faulted' };

function summary(entry) {
  const d = entry.detail || {};
  // A session's stop reason in the reader's words; an operator's own reason as written.
  if (d.reason) return TEXT.reason(stopReasonText(d.reason));
  if (d.note) return TEXT.note(d.note);
  if (d.response?.status) return TEXT.answer(d.response.status);
  if (d.error) return TEXT.error(d.error.message || d.error.code || d.error);
  if (d.data?.name) return String(d.data.name);
  return '';
}

function detailCell(entry) {
  const text = JSON.stringify(entry.detail ?? null, null, 2);
  return h(
    'details',
    { class: 'audit-detail' },
    h('summary', {}, summary(entry) || TEXT.details),
    h('pre', { class: 'payload' }, text.length > 4000 ? `${text.slice(0, 4000)}…` : text),
  );
}

export async function mount(root, ctx) {
  const table = new LiveTable({
    caption: TEXT.caption,
    key: (e) => e.id,
    empty: TEXT.empty,
    columns: [
      { label: TEXT.time, render: (e) => h('time', { datetime: e.at }, formatDateTime(e.at)) },
      { label: TEXT.action, render: (e) => h('span', { class: 'mono', 'data-field': 'action' }, e.action) },
      { label: TEXT.outcome, render: (e) => badge(OUTCOMES[e.outcome] || e.outcome, TEXT.outcomes[e.outcome] ?? e.outcome) },
      { label: TEXT.chargePoint, render: (e) => (e.chargePointId ? h('a', { href: `#/points/${encodeURIComponent(e.chargePointId)}` }, e.chargePointId) : '—') },
      { label: TEXT.by, render: (e) => (e.by ? e.by.email || TEXT.user(e.by.userId) : h('span', { class: 'muted' }, 'ocppd')) },
      { label: TEXT.what, render: detailCell },
    ],
  });
  const older = new OlderPages(TEXT.older, {
    fetchPage: (cursor) => ctx.api.get('/api/cms/audit', { ...query(), limit: 50, cursor }),
    append: (items) => table.appendRows(items),
  });
  const field = (id, label, input) => h('div', { class: 'field' }, h('label', { for: id }, label), input);
  const inputs = {
    chargePointId: h('input', { id: 'a-cp', name: 'chargePointId', placeholder: TEXT.all, autocomplete: 'off' }),
    email: h('input', { id: 'a-email', name: 'email', type: 'email', placeholder: TEXT.anyone, autocomplete: 'off' }),
    kind: h('select', { id: 'a-kind', name: 'kind' }, KINDS.map((value) => h('option', { value }, TEXT.kinds[value || 'all']))),
    from: h('input', { id: 'a-from', name: 'from', type: 'date' }),
    to: h('input', { id: 'a-to', name: 'to', type: 'date' }),
  };
  const filters = h(
    'form',
    { class: 'toolbar', role: 'search', 'aria-label': TEXT.filter },
    field('a-cp', TEXT.chargePoint, inputs.chargePointId),
    field('a-email', TEXT.byEmail, inputs.email),
    field('a-kind', TEXT.kind, inputs.kind),
    field('a-from', TEXT.from, inputs.from),
    field('a-to', TEXT.until, inputs.to),
    h('button', { type: 'submit', class: 'primary' }, TEXT.apply),
  );
  const body = h('div', {}, loadingState());
  replace(
    root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro))),
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
