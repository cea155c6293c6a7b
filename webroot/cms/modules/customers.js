// Customers (and operators): searched on the server in any case (e-mail, name or card),
// filtered, sorted, paged, exported as CSV; create an account; a row opens the customer.
// Fed by GET /api/cms/users; ocppd.admin.cms updates rows other operators change, and
// a wallet adjustment refreshes that customer's balance.

import { badge, formDialog, h, LiveTable, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatCount, formatDateTime, formatMoney } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { serverList } from './server-list.js';

// "cms.customers.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.customers');

export function customerLabel(user) {
  return user.name || user.email;
}

export async function mount(root, ctx) {
  const table = new LiveTable({
    caption: TEXT.title,
    key: (u) => u.id,
    empty: TEXT.empty,
    onRowClick: (u) => ctx.navigate(`/customers/${u.id}`),
    columns: [
      {
        label: TEXT.customer,
        render: (u) => h('span', { class: 'stack' }, h('a', { href: `#/customers/${u.id}`, 'data-field': 'name' }, customerLabel(u)), u.name ? h('small', { class: 'muted' }, u.email) : null),
      },
      { label: TEXT.role, render: (u) => (u.role === 'admin' ? TEXT.operator : TEXT.customer) },
      { label: TEXT.cards, class: 'num', render: (u) => formatCount(u.tags) },
      { label: TEXT.wallet, class: 'num', render: (u) => (u.wallet ? h('span', { 'data-field': 'balance' }, formatMoney(u.wallet.balance, u.wallet.currency)) : h('span', { class: 'muted' }, '—')) },
      { label: TEXT.since, render: (u) => formatDateTime(u.createdAt) },
      { label: TEXT.status, render: (u) => (u.blocked ? badge('Rejected', TEXT.blocked) : badge('Accepted', TEXT.active)) },
    ],
  });
  const inputs = {
    q: h('input', { id: 'u-q', name: 'q', type: 'search', placeholder: TEXT.searchHint, autocomplete: 'off', maxlength: 100 }),
    role: h('select', { id: 'u-role', name: 'role' }, h('option', { value: '' }, TEXT.everyone), h('option', { value: 'customer' }, TEXT.customersOnly), h('option', { value: 'admin' }, TEXT.operators)),
    blocked: h('select', { id: 'u-blocked', name: 'blocked' }, h('option', { value: '' }, TEXT.any), h('option', { value: 'false' }, TEXT.active), h('option', { value: 'true' }, TEXT.blocked)),
  };
  const list = serverList({
    ctx,
    label: 'customers',
    title: TEXT.listName,
    path: '/api/cms/users',
    csvPath: '/api/cms/users.csv',
    csvName: 'customers.csv',
    moreLabel: TEXT.more,
    table,
    filters: [
      { name: 'q', label: TEXT.search, input: inputs.q },
      { name: 'role', label: TEXT.role, input: inputs.role },
      { name: 'blocked', label: TEXT.status, input: inputs.blocked },
    ],
    sorts: [
      ['email', TEXT.sorts.emailAz],
      ['-email', TEXT.sorts.emailZa],
      ['name', TEXT.sorts.nameAz],
      ['-name', TEXT.sorts.nameZa],
      ['-created', TEXT.sorts.newest],
      ['created', TEXT.sorts.oldest],
    ],
  });
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro)),
      h('button', { type: 'button', class: 'primary', onclick: () => create() }, TEXT.new),
    ),
    list.form,
    list.body,
  );

  function create() {
    formDialog({
      title: TEXT.new,
      submitLabel: TEXT.create,
      values: { role: 'customer' },
      fields: [
        { name: 'email', label: TEXT.email, type: 'email', required: true, autocomplete: 'off' },
        { name: 'name', label: TEXT.name, help: TEXT.nameHelp },
        { name: 'role', label: TEXT.role, type: 'select', options: [{ value: 'customer', label: TEXT.customer }, { value: 'admin', label: TEXT.operator }] },
        { name: 'password', label: TEXT.password, type: 'password', autocomplete: 'new-password', help: TEXT.passwordHelp },
      ],
      onSubmit: async (values) => {
        const body = { email: values.email, role: values.role, name: values.name || null };
        if (values.password) body.password = values.password;
        const user = await ctx.api.post('/api/cms/users', body);
        table.upsert(user).classList.add('flash');
        ctx.notify(TEXT.created(customerLabel(user)), 'ok');
      },
    });
  }

  ctx.subscribe(topics.adminCms, (event) => {
    const change = event.data || {};
    if (change.kind === 'user' && change.data && table.get(change.id)) table.upsert(change.data).classList.add('flash');
    if (change.kind === 'wallet' && change.data && table.get(change.id)) {
      table.patch(change.id, (u) => ({ ...u, wallet: { balance: change.data.balance, currency: change.data.currency } }));
    }
  });
  await ctx.keepLoaded(list.load);
}
