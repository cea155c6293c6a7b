// One customer: who they are (edit, block), their wallet (credit or debit by hand with a
// reason), their cards and their sessions, live. Fed by GET /api/cms/users/{id}, its
// wallet transactions, GET /api/cms/tags?userId= and GET /api/cms/sessions?userId=;
// ocppd.admin.cms and ocppd.admin.sessions keep it current.

import { newIdempotencyKey } from '/shared/api.js';
import { badge, confirmDialog, errorState, formDialog, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatMoney, moneyInput, parseMoney } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { sessionTable } from './charging-sessions.js';
import { customerLabel } from './customers.js';
import { editTag, tagActions, tagStatus } from './id-tags.js';

// "cms.customer.*" of the message catalogue (cms/i18n/); a transaction's kind is "cms.customer.kinds.KIND".
const TEXT = messages('cms.customer');

export async function mount(root, ctx) {
  const id = Number(ctx.params.id);
  let user = null;
  const title = h('h1', {}, TEXT.title(ctx.params.id));
  const head = h('div', { class: 'page-head' }, h('div', {}, h('p', {}, h('a', { href: '#/customers' }, `← ${TEXT.back}`)), title));
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
      fact(TEXT.email, user.email),
      fact(TEXT.name, user.name || h('span', { class: 'muted' }, TEXT.notGiven)),
      fact(TEXT.role, user.role === 'admin' ? TEXT.operator : TEXT.customer),
      fact(TEXT.status, h('span', { 'data-field': 'status' }, user.blocked ? [badge('Rejected', TEXT.blocked), h('span', { class: 'muted' }, ` ${TEXT.since(formatDateTime(user.blockedAt))}`)] : badge('Accepted', TEXT.active))),
      fact(TEXT.accountSince, formatDateTime(user.createdAt)),
      fact(TEXT.accountNumber, String(user.id)),
    );
    replace(
      actions,
      h('button', { type: 'button', onclick: edit }, TEXT.edit),
      h('button', { type: 'button', class: user.blocked ? '' : 'danger', 'data-action': 'block-user', onclick: toggleBlock }, user.blocked ? TEXT.unblock : TEXT.block),
    );
    renderWallet();
  };

  function edit() {
    formDialog({
      title: TEXT.editTitle(customerLabel(user)),
      values: { name: user.name || '', role: user.role },
      fields: [
        { name: 'name', label: TEXT.name },
        { name: 'role', label: TEXT.role, type: 'select', options: [{ value: 'customer', label: TEXT.customer }, { value: 'admin', label: TEXT.operator }] },
      ],
      onSubmit: async (values) => {
        Object.assign(user, await ctx.api.put(`/api/cms/users/${id}`, { name: values.name || null, role: values.role }), { wallet: user.wallet });
        renderUser();
        ctx.notify(TEXT.saved, 'ok');
      },
    });
  }

  async function toggleBlock() {
    const blocking = !user.blocked;
    const question = blocking
      ? TEXT.blockQuestion(customerLabel(user))
      : TEXT.unblockQuestion(customerLabel(user));
    if (!(await confirmDialog(question, { confirmLabel: blocking ? TEXT.block : TEXT.unblock }))) return;
    try {
      Object.assign(user, await ctx.api.put(`/api/cms/users/${id}`, { blocked: blocking }), { wallet: user.wallet });
      renderUser();
      ctx.notify(blocking ? TEXT.blockedNamed(customerLabel(user)) : TEXT.unblockedNamed(customerLabel(user)), 'ok');
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
    balanceSub.textContent = w.held ? TEXT.held(formatMoney(w.held, w.currency), formatMoney(w.available, w.currency)) : TEXT.nothingHeld;
  };
  const transactions = new LiveTable({
    caption: TEXT.transactions,
    key: (t) => t.id,
    empty: TEXT.noTransactions,
    columns: [
      { label: TEXT.when, render: (t) => formatDateTime(t.at) },
      { label: TEXT.what, render: (t) => [TEXT.kinds[t.kind] ?? t.kind, t.reference ? h('span', { class: 'muted', 'data-field': 'reference' }, ` · ${t.reference}`) : null] },
      { label: TEXT.amount, class: 'num', render: (t) => h('span', { class: t.amount < 0 ? 'neg' : 'pos', 'data-field': 'amount' }, `${t.amount > 0 ? '+' : ''}${formatMoney(t.amount, t.currency)}`) },
      { label: TEXT.balanceAfter, class: 'num', render: (t) => formatMoney(t.balance, t.currency) },
    ],
  });
  const olderTransactions = new OlderPages(TEXT.olderTransactions, {
    fetchPage: (cursor) => ctx.api.get(`/api/cms/users/${id}/wallet/transactions`, { limit: 25, cursor }),
    append: (items) => transactions.appendRows(items),
  });

  function adjust() {
    const currency = user.wallet.currency;
    // One key per dialog: a double click, or a retry after a lost answer, posts once.
    const key = newIdempotencyKey();
    formDialog({
      title: TEXT.adjustTitle(customerLabel(user)),
      submitLabel: TEXT.postAdjustment,
      values: { direction: 'credit' },
      fields: [
        { name: 'direction', label: TEXT.direction, type: 'select', options: [{ value: 'credit', label: TEXT.credit }, { value: 'debit', label: TEXT.debit }] },
        { name: 'amount', label: TEXT.amountIn(currency), required: true, inputmode: 'decimal', help: TEXT.amountHelp(formatMoney(user.wallet.available, currency), moneyInput(500, currency)) },
        { name: 'reason', label: TEXT.reason, required: true, help: TEXT.reasonHelp },
      ],
      onSubmit: async (values) => {
        const minor = parseMoney(values.amount, currency);
        if (minor === null || minor <= 0) throw new Error(`amount: ${TEXT.badAmount(moneyInput(500, currency))}`);
        const amount = values.direction === 'debit' ? -minor : minor;
        const answer = await ctx.api.post(`/api/cms/users/${id}/wallet/adjustments`, { amount, reason: values.reason }, { headers: { 'Idempotency-Key': key } });
        user.wallet = answer.wallet;
        renderWallet();
        transactions.upsert(answer.transaction).classList.add('flash');
        ctx.notify(amount > 0 ? TEXT.credited(formatMoney(amount, currency)) : TEXT.debited(formatMoney(-amount, currency)), 'ok');
      },
    });
  }

  // -- cards -------------------------------------------------------------------------------
  const savedTag = (tag) => {
    if (tag.userId !== id) cards.remove(tag.idTag);
    else cards.upsert(tag).classList.add('flash');
  };
  const cards = new LiveTable({
    caption: TEXT.cards,
    key: (t) => t.idTag,
    empty: TEXT.noCards,
    columns: [
      { label: TEXT.idTag, render: (t) => h('span', { class: 'mono' }, t.idTag) },
      { label: TEXT.parent, render: (t) => (t.parentIdTag ? h('span', { class: 'mono' }, t.parentIdTag) : '—') },
      { label: TEXT.expires, render: (t) => (t.expiresAt ? formatDateTime(t.expiresAt) : TEXT.never) },
      { label: TEXT.status, render: (t) => h('span', { 'data-field': 'status' }, tagStatus(t)) },
      { label: TEXT.actions, class: 'num', render: (t) => tagActions(ctx, t, savedTag) },
    ],
  });

  // -- sessions ------------------------------------------------------------------------------
  const sessions = sessionTable({ caption: TEXT.sessionsCaption, empty: TEXT.noSessions, ctx });
  const olderSessions = new OlderPages(TEXT.olderSessions, {
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
      section('who-title', TEXT.account, actions, facts),
      section('wallet-title', TEXT.wallet, h('button', { type: 'button', class: 'primary', 'data-action': 'adjust', onclick: adjust }, TEXT.creditOrDebit), h('div', { class: 'stat' }, balance, balanceSub)),
    ),
    section('tx-title', TEXT.transactions, null, transactions.element, h('div', { class: 'more' }, olderTransactions.button)),
    section('cards-title', TEXT.cards, h('button', { type: 'button', onclick: () => editTag(ctx, null, { owner: id, saved: savedTag }) }, TEXT.newCard), cards.element),
    section('sessions-title', TEXT.sessions, h('a', { href: '#/sessions' }, TEXT.allSessions), sessions.element, h('div', { class: 'more' }, olderSessions.button)),
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
