// Customers (and operators): searched on the server in any case (e-mail, name or card),
// filtered, sorted, paged, exported as CSV; create an account; a row opens the customer.
// Fed by GET /api/cms/users; ocppd.admin.cms updates rows other operators change, and
// a wallet adjustment refreshes that customer's balance.

import { badge, formDialog, h, LiveTable, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime, formatMoney } from '/shared/format.js';
import { serverList } from './server-list.js';

export function customerLabel(user) {
  return user.name || user.email;
}

export async function mount(root, ctx) {
  const table = new LiveTable({
    caption: 'Customers',
    key: (u) => u.id,
    empty: 'Nobody matches this search.',
    onRowClick: (u) => ctx.navigate(`/customers/${u.id}`),
    columns: [
      {
        label: 'Customer',
        render: (u) => h('span', { class: 'stack' }, h('a', { href: `#/customers/${u.id}`, 'data-field': 'name' }, customerLabel(u)), u.name ? h('small', { class: 'muted' }, u.email) : null),
      },
      { label: 'Role', render: (u) => (u.role === 'admin' ? 'Operator' : 'Customer') },
      { label: 'Cards', class: 'num', render: (u) => String(u.tags) },
      { label: 'Wallet', class: 'num', render: (u) => (u.wallet ? h('span', { 'data-field': 'balance' }, formatMoney(u.wallet.balance, u.wallet.currency)) : h('span', { class: 'muted' }, '—')) },
      { label: 'Since', render: (u) => formatDateTime(u.createdAt) },
      { label: 'Status', render: (u) => (u.blocked ? badge('Rejected', 'Blocked') : badge('Accepted', 'Active')) },
    ],
  });
  const inputs = {
    q: h('input', { id: 'u-q', name: 'q', type: 'search', placeholder: 'E-mail, name or card', autocomplete: 'off', maxlength: 100 }),
    role: h('select', { id: 'u-role', name: 'role' }, h('option', { value: '' }, 'Everyone'), h('option', { value: 'customer' }, 'Customers'), h('option', { value: 'admin' }, 'Operators')),
    blocked: h('select', { id: 'u-blocked', name: 'blocked' }, h('option', { value: '' }, 'Any'), h('option', { value: 'false' }, 'Active'), h('option', { value: 'true' }, 'Blocked')),
  };
  const list = serverList({
    ctx,
    label: 'customers',
    path: '/api/cms/users',
    csvPath: '/api/cms/users.csv',
    csvName: 'customers.csv',
    moreLabel: 'Show more customers',
    table,
    filters: [
      { name: 'q', label: 'Search', input: inputs.q },
      { name: 'role', label: 'Role', input: inputs.role },
      { name: 'blocked', label: 'Status', input: inputs.blocked },
    ],
    sorts: [
      ['email', 'E-mail A–Z'],
      ['-email', 'E-mail Z–A'],
      ['name', 'Name A–Z'],
      ['-name', 'Name Z–A'],
      ['-created', 'Newest first'],
      ['created', 'Oldest first'],
    ],
  });
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Customers'), h('p', { class: 'muted' }, 'Accounts, their cards and wallets. Search finds any part of an e-mail, name or card, in any case.')),
      h('button', { type: 'button', class: 'primary', onclick: () => create() }, 'New customer'),
    ),
    list.form,
    list.body,
  );

  function create() {
    formDialog({
      title: 'New customer',
      submitLabel: 'Create',
      values: { role: 'customer' },
      fields: [
        { name: 'email', label: 'E-mail', type: 'email', required: true, autocomplete: 'off' },
        { name: 'name', label: 'Name', help: 'How operators will see them (optional).' },
        { name: 'role', label: 'Role', type: 'select', options: [{ value: 'customer', label: 'Customer' }, { value: 'admin', label: 'Operator' }] },
        { name: 'password', label: 'Password', type: 'password', autocomplete: 'new-password', help: 'At least 8 characters. Leave empty for a card-only account that cannot sign in.' },
      ],
      onSubmit: async (values) => {
        const body = { email: values.email, role: values.role, name: values.name || null };
        if (values.password) body.password = values.password;
        const user = await ctx.api.post('/api/cms/users', body);
        table.upsert(user).classList.add('flash');
        ctx.notify(`${customerLabel(user)} created.`, 'ok');
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
