// Tariffs: list, create, edit, delete; edits by other operators appear live.
// Fed by GET /api/cms/tariffs and ocppd.admin.cms; writes with POST/PUT/DELETE /api/cms/tariffs.

import { confirmDialog, errorState, formDialog, h, LiveTable, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime, formatMoney, formatPerKwh, formatPerMinute, moneyInput, parseMoney } from '/shared/format.js';

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'JPY'];

export async function mount(root, ctx) {
  const table = new LiveTable({
    caption: 'Tariffs',
    key: (t) => t.id,
    empty: 'No tariffs yet. A charging point without a tariff charges nothing.',
    columns: [
      { label: 'Name', render: (t) => h('strong', {}, t.name) },
      { label: 'Energy', class: 'num', render: (t) => formatPerKwh(t.pricePerKwh, t.currency) },
      { label: 'Time', class: 'num', render: (t) => formatPerMinute(t.pricePerMinute, t.currency) },
      { label: 'Session fee', class: 'num', render: (t) => formatMoney(t.sessionFee, t.currency) },
      { label: 'Currency', render: (t) => t.currency },
      { label: 'Updated', render: (t) => formatDateTime(t.updatedAt) },
      {
        label: 'Actions',
        class: 'num',
        render: (t) =>
          h(
            'div',
            { class: 'row-actions' },
            h('button', { type: 'button', 'aria-label': `Edit ${t.name}`, onclick: () => edit(t) }, 'Edit'),
            h('button', { type: 'button', 'aria-label': `Delete ${t.name}`, onclick: () => remove(t) }, 'Delete'),
          ),
      },
    ],
  });
  const body = h('div', {}, loadingState());
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Tariffs'), h('p', { class: 'muted' }, 'Prices per kWh, per minute and per session, in the tariff’s currency.')),
      h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'New tariff'),
    ),
    body,
  );

  function edit(tariff) {
    const currency = tariff?.currency || 'EUR';
    formDialog({
      title: tariff ? `Edit tariff ${tariff.name}` : 'New tariff',
      submitLabel: tariff ? 'Save' : 'Create tariff',
      values: tariff
        ? {
            name: tariff.name,
            currency,
            pricePerKwh: moneyInput(tariff.pricePerKwh, currency),
            pricePerMinute: moneyInput(tariff.pricePerMinute, currency),
            sessionFee: moneyInput(tariff.sessionFee, currency),
          }
        : { currency, pricePerMinute: '0', sessionFee: '0' },
      fields: [
        { name: 'name', label: 'Name', required: true },
        { name: 'currency', label: 'Currency', type: 'select', options: CURRENCIES.map((c) => ({ value: c, label: c })) },
        { name: 'pricePerKwh', label: 'Price per kWh', required: true, inputmode: 'decimal', help: 'In the currency, e.g. 0.35' },
        { name: 'pricePerMinute', label: 'Price per minute', inputmode: 'decimal' },
        { name: 'sessionFee', label: 'Session fee', inputmode: 'decimal' },
      ],
      onSubmit: async (values) => {
        const body = { name: values.name, currency: values.currency };
        for (const field of ['pricePerKwh', 'pricePerMinute', 'sessionFee']) {
          const minor = parseMoney(values[field] || '0', values.currency);
          if (minor === null) throw new Error(`${field}: enter an amount such as 0.35`);
          body[field] = minor;
        }
        const saved = tariff ? await ctx.api.put(`/api/cms/tariffs/${tariff.id}`, body) : await ctx.api.post('/api/cms/tariffs', body);
        table.upsert(saved).classList.add('flash');
        ctx.notify(tariff ? `Tariff ${saved.name} saved.` : `Tariff ${saved.name} created.`, 'ok');
      },
    });
  }

  async function remove(tariff) {
    if (!(await confirmDialog(`Delete the tariff ${tariff.name}?`))) return;
    try {
      await ctx.api.delete(`/api/cms/tariffs/${tariff.id}`);
      table.remove(tariff.id);
      ctx.notify(`Tariff ${tariff.name} deleted.`, 'ok');
    } catch (error) {
      ctx.notify(error.message, 'bad');
    }
  }

  const load = async () => {
    try {
      table.setRows(await ctx.api.all('/api/cms/tariffs'));
      replace(body, h('section', { class: 'card' }, table.element));
    } catch (error) {
      replace(body, errorState(error, load));
    }
  };

  ctx.subscribe(topics.adminCms, (event) => {
    const change = event.data || {};
    if (change.kind !== 'tariff') return;
    if (change.verb === 'deleted') table.remove(change.id);
    else if (change.data) table.upsert(change.data).classList.add('flash');
  });
  await ctx.keepLoaded(load);
}
