// Id tags (RFID cards, app tokens): searched on the server in any case (the tag, its
// parent or its owner), filtered by status, sorted, paged, exported as CSV; create, edit
// (owner, parent, expiry) and block. Fed by GET /api/cms/tags; writes with POST/PUT
// /api/cms/tags; changes by other operators arrive over ocppd.admin.cms.

import { badge, confirmDialog, formDialog, h, LiveTable, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { serverList } from './server-list.js';

// "cms.tags.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.tags');

// OCPP's id tag statuses; their words are "cms.tags.statuses.*".
const STATUSES = ['Accepted', 'Blocked', 'Expired', 'Invalid'];

function statusName(status) {
  return TEXT.statuses[status] ?? status;
}

function expired(tag) {
  return tag.expiresAt && new Date(tag.expiresAt) <= new Date();
}

/** The ISO time of a ``datetime-local`` value (the reader's time), or null. */
function isoOrNull(local) {
  return local ? new Date(local).toISOString() : null;
}

/** A ``datetime-local`` value for an ISO time, in the reader's time. */
function localInput(iso) {
  if (!iso) return '';
  const d = new Date(iso);
  // The reader's wall-clock time written as if it were UTC: "2026-12-07T13:05".
  return new Date(d.getTime() - d.getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
}

/** The tag dialog, for a new tag or ``tag``; ``owner`` preset on a customer's page. */
export function editTag(ctx, tag, { owner = null, saved }) {
  formDialog({
    title: tag ? TEXT.editTitle(tag.idTag) : TEXT.new,
    submitLabel: tag ? TEXT.save : TEXT.create,
    values: tag
      ? { status: tag.status, parentIdTag: tag.parentIdTag || '', userId: tag.userId ?? '', expiresAt: localInput(tag.expiresAt) }
      : { status: 'Accepted', userId: owner ?? '' },
    fields: [
      ...(tag ? [] : [{ name: 'idTag', label: TEXT.idTag, required: true, help: TEXT.idTagHelp }]),
      { name: 'status', label: TEXT.status, type: 'select', options: STATUSES.map((s) => ({ value: s, label: statusName(s) })) },
      { name: 'userId', label: TEXT.ownerField, inputmode: 'numeric', help: TEXT.ownerHelp },
      { name: 'parentIdTag', label: TEXT.parentField, help: TEXT.parentHelp },
      { name: 'expiresAt', label: TEXT.expires, type: 'datetime-local', help: TEXT.expiresHelp },
    ],
    onSubmit: async (values) => {
      const userId = values.userId ? Number(values.userId) : null;
      if (values.userId && !Number.isInteger(userId)) throw new Error(`userId: ${TEXT.badOwner}`);
      const body = { status: values.status, userId, parentIdTag: values.parentIdTag || null, expiresAt: isoOrNull(values.expiresAt) };
      const result = tag ? await ctx.api.put(`/api/cms/tags/${encodeURIComponent(tag.idTag)}`, body) : await ctx.api.post('/api/cms/tags', { idTag: values.idTag, ...body });
      saved(result);
      ctx.notify(tag ? TEXT.saved(result.idTag) : TEXT.created(result.idTag), 'ok');
    },
  });
}

/** Block or unblock after a confirmation naming the consequence. */
export async function toggleBlock(ctx, tag, saved) {
  const blocking = tag.status !== 'Blocked';
  const question = blocking ? TEXT.blockQuestion(tag.idTag) : TEXT.unblockQuestion(tag.idTag);
  if (!(await confirmDialog(question, { confirmLabel: blocking ? TEXT.block : TEXT.unblock }))) return;
  try {
    const result = await ctx.api.put(`/api/cms/tags/${encodeURIComponent(tag.idTag)}`, { status: blocking ? 'Blocked' : 'Accepted' });
    saved(result);
    ctx.notify(blocking ? TEXT.blocked(result.idTag) : TEXT.unblocked(result.idTag), 'ok');
  } catch (error) {
    ctx.notify(error.message, 'bad');
  }
}

export function tagStatus(tag) {
  if (tag.status === 'Accepted' && expired(tag)) return badge('Faulted', statusName('Expired'));
  return badge(tag.status === 'Blocked' ? 'Rejected' : tag.status, statusName(tag.status));
}

export function tagActions(ctx, tag, saved) {
  return h(
    'div',
    { class: 'row-actions' },
    h('button', { type: 'button', 'aria-label': TEXT.editNamed(tag.idTag), onclick: () => editTag(ctx, tag, { saved }) }, TEXT.edit),
    h('button', { type: 'button', class: tag.status === 'Blocked' ? '' : 'danger', 'aria-label': tag.status === 'Blocked' ? TEXT.unblockNamed(tag.idTag) : TEXT.blockNamed(tag.idTag), 'data-action': 'block', onclick: () => toggleBlock(ctx, tag, saved) }, tag.status === 'Blocked' ? TEXT.unblock : TEXT.block),
  );
}

export async function mount(root, ctx) {
  // A write answers the tag without its owner's name: keep the one shown.
  const saved = (tag) => {
    const old = table.get(tag.idTag);
    table.upsert({ ...tag, owner: tag.owner ?? (old && old.userId === tag.userId ? old.owner : tag.userId ? { userId: tag.userId, email: TEXT.account(tag.userId), name: null } : null) }).classList.add('flash');
  };
  const table = new LiveTable({
    caption: TEXT.title,
    key: (t) => t.idTag,
    empty: TEXT.empty,
    columns: [
      { label: TEXT.idTag, render: (t) => h('span', { class: 'mono', 'data-field': 'idTag' }, t.idTag) },
      { label: TEXT.owner, render: (t) => (t.owner ? h('a', { href: `#/customers/${t.owner.userId}` }, t.owner.name || t.owner.email) : h('span', { class: 'muted' }, TEXT.nobody)) },
      { label: TEXT.parent, render: (t) => (t.parentIdTag ? h('span', { class: 'mono' }, t.parentIdTag) : '—') },
      { label: TEXT.expires, render: (t) => (t.expiresAt ? formatDateTime(t.expiresAt) : TEXT.never) },
      { label: TEXT.status, render: (t) => h('span', { 'data-field': 'status' }, tagStatus(t)) },
      { label: TEXT.actions, class: 'num', render: (t) => tagActions(ctx, t, saved) },
    ],
  });
  const inputs = {
    q: h('input', { id: 't-q', name: 'q', type: 'search', placeholder: TEXT.searchHint, autocomplete: 'off', maxlength: 100 }),
    status: h('select', { id: 't-status', name: 'status' }, h('option', { value: '' }, TEXT.any), STATUSES.map((s) => h('option', { value: s }, statusName(s)))),
  };
  const list = serverList({
    ctx,
    label: 'tags',
    title: TEXT.listName,
    path: '/api/cms/tags',
    csvPath: '/api/cms/tags.csv',
    csvName: 'id-tags.csv',
    moreLabel: TEXT.more,
    table,
    filters: [
      { name: 'q', label: TEXT.search, input: inputs.q },
      { name: 'status', label: TEXT.status, input: inputs.status },
    ],
    sorts: [
      ['idTag', TEXT.sorts.idAz],
      ['-idTag', TEXT.sorts.idZa],
      ['-created', TEXT.sorts.newest],
      ['created', TEXT.sorts.oldest],
      ['expires', TEXT.sorts.expiring],
    ],
  });
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro)),
      h('button', { type: 'button', class: 'primary', onclick: () => editTag(ctx, null, { saved }) }, TEXT.new),
    ),
    list.form,
    list.body,
  );

  ctx.subscribe(topics.adminCms, (event) => {
    const change = event.data || {};
    if (change.kind !== 'tag') return;
    if (change.verb === 'deleted') table.remove(change.id);
    else if (change.data && table.get(change.id)) saved(change.data);
  });
  await ctx.keepLoaded(list.load);
}
