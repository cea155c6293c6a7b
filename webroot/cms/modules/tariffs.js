// Tariffs: list, create, edit, delete; edits by other operators appear live.
// Fed by GET /api/cms/tariffs and ocppd.admin.cms; writes with POST/PUT/DELETE /api/cms/tariffs.

import { confirmDialog, errorState, formDialog, h, LiveTable, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime, formatMoney, formatPerKwh, formatPerMinute, moneyInput, parseMoney } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.tariffs.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.tariffs');

const CURRENCIES = ['EUR', 'USD', 'GBP', 'CHF', 'SEK', 'NOK', 'DKK', 'PLN', 'CZK', 'JPY'];

export async function mount(root, ctx) {
  const table = new LiveTable({
    caption: TEXT.title,
    key: (t) => t.id,
    empty: TEXT.empty,
    columns: [
      { label: TEXT.name, render: (t) => h('strong', {}, t.name) },
      { label: TEXT.energy, class: 'num', render: (t) => formatPerKwh(t.pricePerKwh, t.currency) },
      { label: TEXT.time, class: 'num', render: (t) => formatPerMinute(t.pricePerMinute, t.currency) },
      { label: TEXT.sessionFee, class: 'num', render: (t) => formatMoney(t.sessionFee, t.currency) },
      { label: TEXT.currency, render: (t) => t.currency },
      { label: TEXT.updated, render: (t) => formatDateTime(t.updatedAt) },
      {
        label: TEXT.actions,
        class: 'num',
        render: (t) =>
          h(
            'div',
            { class: 'row-actions' },
            h('button', { type: 'button', 'aria-label': TEXT.editNamed(t.name), onclick: () => edit(t) }, TEXT.edit),
            h('button', { type: 'button', 'aria-label': TEXT.deleteNamed(t.name), onclick: () => remove(t) }, TEXT.delete),
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
      h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro)),
      h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, TEXT.new),
    ),
    body,
  );

  function edit(tariff) {
    const currency = tariff?.currency || 'EUR';
    formDialog({
      title: tariff ? TEXT.editTitle(tariff.name) : TEXT.new,
      submitLabel: tariff ? TEXT.save : TEXT.create,
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
        { name: 'name', label: TEXT.name, required: true },
        { name: 'currency', label: TEXT.currency, type: 'select', options: CURRENCIES.map((c) => ({ value: c, label: c })) },
        { name: 'pricePerKwh', label: TEXT.pricePerKwh, required: true, inputmode: 'decimal', help: TEXT.priceHelp(moneyInput(35, currency)) },
        { name: 'pricePerMinute', label: TEXT.pricePerMinute, inputmode: 'decimal' },
        { name: 'sessionFee', label: TEXT.sessionFee, inputmode: 'decimal' },
      ],
      onSubmit: async (values) => {
        const body = { name: values.name, currency: values.currency };
        for (const field of ['pricePerKwh', 'pricePerMinute', 'sessionFee']) {
          const minor = parseMoney(values[field] || '0', values.currency);
          if (minor === null) throw new Error(`${field}: ${TEXT.badAmount(moneyInput(35, values.currency))}`);
          body[field] = minor;
        }
        const saved = tariff ? await ctx.api.put(`/api/cms/tariffs/${tariff.id}`, body) : await ctx.api.post('/api/cms/tariffs', body);
        table.upsert(saved).classList.add('flash');
        ctx.notify(tariff ? TEXT.saved(saved.name) : TEXT.created(saved.name), 'ok');
      },
    });
  }

  async function remove(tariff) {
    if (!(await confirmDialog(TEXT.confirmDelete(tariff.name)))) return;
    try {
      await ctx.api.delete(`/api/cms/tariffs/${tariff.id}`);
      table.remove(tariff.id);
      ctx.notify(TEXT.deleted(tariff.name), 'ok');
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
