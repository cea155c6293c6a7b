// Id tags (RFID cards, app tokens): searched on the server in any case (the tag, its
// parent or its owner), filtered by status, sorted, paged, exported as CSV; create, edit
// (owner, parent, expiry) and block. Fed by GET /api/cms/tags; writes with POST/PUT
// /api/cms/tags; changes by other operators arrive over ocppd.admin.cms.

import { badge, confirmDialog, formDialog, h, LiveTable, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime } from '/shared/format.js';
import { serverList } from './server-list.js';

const STATUSES = ['Accepted', 'Blocked', 'Expired', 'Invalid'];

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
  const pad = (n) => String(n).padStart(2, '0');
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}

/** The tag dialog, for a new tag or ``tag``; ``owner`` preset on a customer's page. */
export function editTag(ctx, tag, { owner = null, saved }) {
  formDialog({
    title: tag ? `Edit card ${tag.idTag}` : 'New card',
    submitLabel: tag ? 'Save' : 'Create card',
    values: tag
      ? { status: tag.status, parentIdTag: tag.parentIdTag || '', userId: tag.userId ?? '', expiresAt: localInput(tag.expiresAt) }
      : { status: 'Accepted', userId: owner ?? '' },
    fields: [
      ...(tag ? [] : [{ name: 'idTag', label: 'Id tag', required: true, help: 'Up to 20 characters, as the card reader sends it (any case).' }]),
      { name: 'status', label: 'Status', type: 'select', options: STATUSES.map((s) => ({ value: s, label: s })) },
      { name: 'userId', label: 'Owner (account id)', inputmode: 'numeric', help: 'Leave empty for a card of nobody.' },
      { name: 'parentIdTag', label: 'Parent id tag', help: 'A group: cards of one parent may stop each other’s sessions.' },
      { name: 'expiresAt', label: 'Expires', type: 'datetime-local', help: 'Leave empty for never.' },
    ],
    onSubmit: async (values) => {
      const userId = values.userId ? Number(values.userId) : null;
      if (values.userId && !Number.isInteger(userId)) throw new Error('userId: enter an account number');
      const body = { status: values.status, userId, parentIdTag: values.parentIdTag || null, expiresAt: isoOrNull(values.expiresAt) };
      const result = tag ? await ctx.api.put(`/api/cms/tags/${encodeURIComponent(tag.idTag)}`, body) : await ctx.api.post('/api/cms/tags', { idTag: values.idTag, ...body });
      saved(result);
      ctx.notify(tag ? `Card ${result.idTag} saved.` : `Card ${result.idTag} created.`, 'ok');
    },
  });
}

/** Block or unblock after a confirmation naming the consequence. */
export async function toggleBlock(ctx, tag, saved) {
  const blocking = tag.status !== 'Blocked';
  const question = blocking ? `Block card ${tag.idTag}? Chargers will refuse it from its next use.` : `Unblock card ${tag.idTag}? Chargers will accept it again.`;
  if (!(await confirmDialog(question, { confirmLabel: blocking ? 'Block' : 'Unblock' }))) return;
  try {
    const result = await ctx.api.put(`/api/cms/tags/${encodeURIComponent(tag.idTag)}`, { status: blocking ? 'Blocked' : 'Accepted' });
    saved(result);
    ctx.notify(`Card ${result.idTag} ${blocking ? 'blocked' : 'unblocked'}.`, 'ok');
  } catch (error) {
    ctx.notify(error.message, 'bad');
  }
}

export function tagStatus(tag) {
  if (tag.status === 'Accepted' && expired(tag)) return badge('Faulted', 'Expired');
  return badge(tag.status === 'Blocked' ? 'Rejected' : tag.status, tag.status);
}

export function tagActions(ctx, tag, saved) {
  return h(
    'div',
    { class: 'row-actions' },
    h('button', { type: 'button', 'aria-label': `Edit ${tag.idTag}`, onclick: () => editTag(ctx, tag, { saved }) }, 'Edit'),
    h('button', { type: 'button', class: tag.status === 'Blocked' ? '' : 'danger', 'aria-label': `${tag.status === 'Blocked' ? 'Unblock' : 'Block'} ${tag.idTag}`, 'data-action': 'block', onclick: () => toggleBlock(ctx, tag, saved) }, tag.status === 'Blocked' ? 'Unblock' : 'Block'),
  );
}

export async function mount(root, ctx) {
  // A write answers the tag without its owner's name: keep the one shown.
  const saved = (tag) => {
    const old = table.get(tag.idTag);
    table.upsert({ ...tag, owner: tag.owner ?? (old && old.userId === tag.userId ? old.owner : tag.userId ? { userId: tag.userId, email: `account ${tag.userId}`, name: null } : null) }).classList.add('flash');
  };
  const table = new LiveTable({
    caption: 'Id tags',
    key: (t) => t.idTag,
    empty: 'No card matches this search.',
    columns: [
      { label: 'Id tag', render: (t) => h('span', { class: 'mono', 'data-field': 'idTag' }, t.idTag) },
      { label: 'Owner', render: (t) => (t.owner ? h('a', { href: `#/customers/${t.owner.userId}` }, t.owner.name || t.owner.email) : h('span', { class: 'muted' }, 'Nobody')) },
      { label: 'Parent', render: (t) => (t.parentIdTag ? h('span', { class: 'mono' }, t.parentIdTag) : '—') },
      { label: 'Expires', render: (t) => (t.expiresAt ? formatDateTime(t.expiresAt) : 'Never') },
      { label: 'Status', render: (t) => h('span', { 'data-field': 'status' }, tagStatus(t)) },
      { label: 'Actions', class: 'num', render: (t) => tagActions(ctx, t, saved) },
    ],
  });
  const inputs = {
    q: h('input', { id: 't-q', name: 'q', type: 'search', placeholder: 'Card, parent or owner', autocomplete: 'off', maxlength: 100 }),
    status: h('select', { id: 't-status', name: 'status' }, h('option', { value: '' }, 'Any'), STATUSES.map((s) => h('option', { value: s }, s))),
  };
  const list = serverList({
    ctx,
    label: 'tags',
    path: '/api/cms/tags',
    csvPath: '/api/cms/tags.csv',
    csvName: 'id-tags.csv',
    moreLabel: 'Show more cards',
    table,
    filters: [
      { name: 'q', label: 'Search', input: inputs.q },
      { name: 'status', label: 'Status', input: inputs.status },
    ],
    sorts: [
      ['idTag', 'Id tag A–Z'],
      ['-idTag', 'Id tag Z–A'],
      ['-created', 'Newest first'],
      ['created', 'Oldest first'],
      ['expires', 'Expiring first'],
    ],
  });
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Id tags'), h('p', { class: 'muted' }, 'Cards and app tokens that may charge. A blocked card is refused at its next Authorize.')),
      h('button', { type: 'button', class: 'primary', onclick: () => editTag(ctx, null, { saved }) }, 'New card'),
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
