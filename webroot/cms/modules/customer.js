// One customer: who they are (edit, block), their wallet (credit or debit by hand with a
// reason), their cards and their sessions, live. Fed by GET /api/cms/users/{id}, its
// wallet transactions, GET /api/cms/tags?userId= and GET /api/cms/sessions?userId=;
// ocppd.admin.cms and ocppd.admin.sessions keep it current.

import { newIdempotencyKey } from '/shared/api.js';
import { badge, confirmDialog, errorState, formDialog, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatMoney, moneyInput, parseMoney } from '/shared/format.js';
import { sessionTable } from './charging-sessions.js';
import { customerLabel } from './customers.js';
import { editTag, tagActions, tagStatus } from './id-tags.js';

const KINDS = { top_up: 'Top-up', debit: 'Charging', refund: 'Refund', adjustment: 'Adjustment' };

export async function mount(root, ctx) {
  const id = Number(ctx.params.id);
  let user = null;
  const title = h('h1', {}, `Customer ${ctx.params.id}`);
  const head = h('div', { class: 'page-head' }, h('div', {}, h('p', {}, h('a', { href: '#/customers' }, '← Customers')), title));
  const body = h('div', {}, loadingState());
  replace(root, head, body);

  // -- who ------------------------------------------------------------------------------
  const facts = h('dl', { class: 'facts' });
  const actions = h('div', { class: 'row-actions' });
  const renderUser = () => {
    title.textContent = customerLabel(user);
    ctx.setTitle(customerLabel(user));
    const fact = (term, value) => [h('dt', {}, term), h('dd', {}, value)];
    replace(
      facts,
      fact('E-mail', user.email),
      fact('Name', user.name || h('span', { class: 'muted' }, 'Not given')),
      fact('Role', user.role === 'admin' ? 'Operator' : 'Customer'),
      fact('Status', h('span', { 'data-field': 'status' }, user.blocked ? [badge('Rejected', 'Blocked'), h('span', { class: 'muted' }, ` since ${formatDateTime(user.blockedAt)}`)] : badge('Accepted', 'Active'))),
      fact('Account since', formatDateTime(user.createdAt)),
      fact('Account number', String(user.id)),
    );
    replace(
      actions,
      h('button', { type: 'button', onclick: edit }, 'Edit'),
      h('button', { type: 'button', class: user.blocked ? '' : 'danger', 'data-action': 'block-user', onclick: toggleBlock }, user.blocked ? 'Unblock' : 'Block'),
    );
    renderWallet();
  };

  function edit() {
    formDialog({
      title: `Edit ${customerLabel(user)}`,
      values: { name: user.name || '', role: user.role },
      fields: [
        { name: 'name', label: 'Name' },
        { name: 'role', label: 'Role', type: 'select', options: [{ value: 'customer', label: 'Customer' }, { value: 'admin', label: 'Operator' }] },
      ],
      onSubmit: async (values) => {
        Object.assign(user, await ctx.api.put(`/api/cms/users/${id}`, { name: values.name || null, role: values.role }), { wallet: user.wallet });
        renderUser();
        ctx.notify('Saved.', 'ok');
      },
    });
  }

  async function toggleBlock() {
    const blocking = !user.blocked;
    const question = blocking
      ? `Block ${customerLabel(user)}? They are signed out everywhere, cannot sign in, and chargers refuse their cards until you unblock them.`
      : `Unblock ${customerLabel(user)}? They can sign in and charge with their cards again.`;
    if (!(await confirmDialog(question, { confirmLabel: blocking ? 'Block' : 'Unblock' }))) return;
    try {
      Object.assign(user, await ctx.api.put(`/api/cms/users/${id}`, { blocked: blocking }), { wallet: user.wallet });
      renderUser();
      ctx.notify(`${customerLabel(user)} ${blocking ? 'blocked' : 'unblocked'}.`, 'ok');
    } catch (error) {
      ctx.notify(error.message, 'bad');
    }
  }

  // -- wallet ----------------------------------------------------------------------------
  const balance = h('p', { class: 'value', 'data-figure': 'balance', 'aria-live': 'polite' }, '—');
  const balanceSub = h('p', { class: 'sub' });
  const renderWallet = () => {
    const w = user.wallet;
    balance.textContent = formatMoney(w.balance, w.currency);
    balanceSub.textContent = w.held ? `${formatMoney(w.held, w.currency)} held by running sessions · ${formatMoney(w.available, w.currency)} available` : 'Nothing held';
  };
  const transactions = new LiveTable({
    caption: 'Wallet transactions',
    key: (t) => t.id,
    empty: 'No transactions yet.',
    columns: [
      { label: 'When', render: (t) => formatDateTime(t.at) },
      { label: 'What', render: (t) => [KINDS[t.kind] || t.kind, t.reference ? h('span', { class: 'muted', 'data-field': 'reference' }, ` · ${t.reference}`) : null] },
      { label: 'Amount', class: 'num', render: (t) => h('span', { class: t.amount < 0 ? 'neg' : 'pos', 'data-field': 'amount' }, `${t.amount > 0 ? '+' : ''}${formatMoney(t.amount, t.currency)}`) },
      { label: 'Balance after', class: 'num', render: (t) => formatMoney(t.balance, t.currency) },
    ],
  });
  const olderTransactions = new OlderPages('Show older transactions', {
    fetchPage: (cursor) => ctx.api.get(`/api/cms/users/${id}/wallet/transactions`, { limit: 25, cursor }),
    append: (items) => transactions.appendRows(items),
  });

  function adjust() {
    const currency = user.wallet.currency;
    // One key per dialog: a double click, or a retry after a lost answer, posts once.
    const key = newIdempotencyKey();
    formDialog({
      title: `Adjust the wallet of ${customerLabel(user)}`,
      submitLabel: 'Post adjustment',
      values: { direction: 'credit' },
      fields: [
        { name: 'direction', label: 'Direction', type: 'select', options: [{ value: 'credit', label: 'Credit (add money)' }, { value: 'debit', label: 'Debit (take money)' }] },
        { name: 'amount', label: `Amount (${currency})`, required: true, inputmode: 'decimal', help: `Now ${formatMoney(user.wallet.available, currency)} available, e.g. ${moneyInput(500, currency)}` },
        { name: 'reason', label: 'Reason', required: true, help: 'Kept in the audit log and shown to the customer (3 to 128 characters).' },
      ],
      onSubmit: async (values) => {
        const minor = parseMoney(values.amount, currency);
        if (minor === null || minor <= 0) throw new Error('amount: enter an amount such as 5.00');
        const amount = values.direction === 'debit' ? -minor : minor;
        const answer = await ctx.api.post(`/api/cms/users/${id}/wallet/adjustments`, { amount, reason: values.reason }, { headers: { 'Idempotency-Key': key } });
        user.wallet = answer.wallet;
        renderWallet();
        transactions.upsert(answer.transaction).classList.add('flash');
        ctx.notify(`${amount > 0 ? 'Credited' : 'Debited'} ${formatMoney(Math.abs(amount), currency)}.`, 'ok');
      },
    });
  }

  // -- cards -------------------------------------------------------------------------------
  const savedTag = (tag) => {
    if (tag.userId !== id) cards.remove(tag.idTag);
    else cards.upsert(tag).classList.add('flash');
  };
  const cards = new LiveTable({
    caption: 'Cards',
    key: (t) => t.idTag,
    empty: 'No cards. Sessions started from the app get one of their own.',
    columns: [
      { label: 'Id tag', render: (t) => h('span', { class: 'mono' }, t.idTag) },
      { label: 'Parent', render: (t) => (t.parentIdTag ? h('span', { class: 'mono' }, t.parentIdTag) : '—') },
      { label: 'Expires', render: (t) => (t.expiresAt ? formatDateTime(t.expiresAt) : 'Never') },
      { label: 'Status', render: (t) => h('span', { 'data-field': 'status' }, tagStatus(t)) },
      { label: 'Actions', class: 'num', render: (t) => tagActions(ctx, t, savedTag) },
    ],
  });

  // -- sessions ------------------------------------------------------------------------------
  const sessions = sessionTable({ caption: 'Sessions of this customer', empty: 'No sessions yet.', ctx });
  const olderSessions = new OlderPages('Show older sessions', {
    fetchPage: (cursor) => ctx.api.get('/api/cms/sessions', { userId: id, limit: 25, cursor }),
    append: (items) => sessions.appendRows(items),
  });

  const section = (headId, text, extra, ...content) => h('section', { class: 'card', 'aria-labelledby': headId }, h('div', { class: 'card-head' }, h('h2', { id: headId }, text), extra), ...content);
  const content = h(
    'div',
    {},
    h(
      'div',
      { class: 'grid-2' },
      section('who-title', 'Account', actions, facts),
      section('wallet-title', 'Wallet', h('button', { type: 'button', class: 'primary', 'data-action': 'adjust', onclick: adjust }, 'Credit or debit'), h('div', { class: 'stat' }, balance, balanceSub)),
    ),
    section('tx-title', 'Wallet transactions', null, transactions.element, h('div', { class: 'more' }, olderTransactions.button)),
    section('cards-title', 'Cards', h('button', { type: 'button', onclick: () => editTag(ctx, null, { owner: id, saved: savedTag }) }, 'New card'), cards.element),
    section('sessions-title', 'Sessions', h('a', { href: '#/sessions' }, 'All sessions'), sessions.element, h('div', { class: 'more' }, olderSessions.button)),
  );

  const load = async () => {
    try {
      const [found, txPage, tagPage, sessionPage] = await Promise.all([
        ctx.api.get(`/api/cms/users/${id}`),
        ctx.api.get(`/api/cms/users/${id}/wallet/transactions`, { limit: 25 }),
        ctx.api.get('/api/cms/tags', { userId: id, limit: 200 }),
        ctx.api.get('/api/cms/sessions', { userId: id, limit: 25 }),
      ]);
      user = found;
      renderUser();
      transactions.setRows(txPage.items);
      olderTransactions.reset(txPage);
      cards.setRows(tagPage.items);
      sessions.setRows(sessionPage.items);
      olderSessions.reset(sessionPage);
      if (!content.isConnected) replace(body, content);
    } catch (error) {
      replace(body, errorState(error, load));
    }
  };

  // Balances move with sessions' bills too: re-read the wallet after a stop.
  const refreshWallet = async () => {
    try {
      const [found, txPage] = await Promise.all([ctx.api.get(`/api/cms/users/${id}`), ctx.api.get(`/api/cms/users/${id}/wallet/transactions`, { limit: 25 })]);
      user.wallet = found.wallet;
      renderWallet();
      for (const t of [...txPage.items].reverse()) if (!transactions.get(t.id)) transactions.upsert(t).classList.add('flash');
    } catch {
      // The next event or a reload tries again.
    }
  };
  ctx.subscribe(topics.adminCms, (event) => {
    const change = event.data || {};
    if (!user) return;
    if (change.kind === 'user' && change.id === id && change.data) {
      Object.assign(user, change.data, { wallet: user.wallet });
      renderUser();
    } else if (change.kind === 'wallet' && change.id === id) {
      refreshWallet();
    } else if (change.kind === 'tag' && change.data && (change.data.userId === id || cards.get(change.id))) {
      if (change.verb === 'deleted') cards.remove(change.id);
      else savedTag(change.data);
    }
  });
  ctx.subscribe(topics.adminSessions, (event) => {
    const s = sessionOf(event);
    if (!event.type?.startsWith('session.') || s.userId !== id) return;
    sessions.upsert(mergeSession(sessions.get(s.id), { customer: user && { userId: id, email: user.email, name: user.name }, ...s })).classList.add('flash');
    if (event.type === 'session.stopped') refreshWallet();
  });
  await ctx.keepLoaded(load);
}
