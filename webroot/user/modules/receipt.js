// A finished session's receipt: station, charger, times, energy, the tariff's
// lines, the total and the VAT in it. Printable as it is (print styles in
// /user/receipt.css: the browser's "Save as PDF" gives a clean page), and
// downloadable as the server's PDF. Fed by GET /api/user/sessions/{id}/receipt
// and GET /api/user/sessions/{id}/receipt.pdf.

import { describeError, h, loadingState, replace } from '/shared/dom.js';
import { formatDateTime, formatDuration, formatEnergy, formatMoney, formatPerKwh, formatPerMinute, locale } from '/shared/format.js';
import { language, messages } from '/shared/i18n.js';

// "receipt.*" of the message catalogue (user/i18n/).
const TEXT = messages('receipt');

/** What the customer reads when there is no receipt to show (never the server's words). */
function noReceipt(error) {
  if (error.code === 'session_active') return TEXT.stillCharging;
  if (error.code === 'receipt_pending') return TEXT.pending;
  if (error.status === 404) return TEXT.noSuch;
  return describeError(error);
}

function lineDetail(line, currency) {
  if (line.kind === 'energy') return `${formatEnergy(line.quantity)} × ${formatPerKwh(line.unitPrice, currency)}`;
  if (line.kind === 'time') return `${formatDuration(line.quantity)} × ${formatPerMinute(line.unitPrice, currency)}`;
  if (line.kind === 'fee') return `1 × ${formatMoney(line.unitPrice, currency)}`;
  return TEXT.differs;
}

function percent(basisPoints) {
  return new Intl.NumberFormat(locale(), { style: 'percent', maximumFractionDigits: 2 }).format(basisPoints / 10000);
}

function ensureStyles() {
  if (!document.querySelector('link[data-receipt-styles]')) {
    document.head.append(h('link', { rel: 'stylesheet', href: '/user/receipt.css', 'data-receipt-styles': true }));
  }
}

export async function mount(root, ctx) {
  ensureStyles();
  const id = Number(ctx.params.id);
  const body = h('div', {}, loadingState());
  const printButton = h('button', { type: 'button', onclick: () => window.print() }, TEXT.print);
  const pdfButton = h('button', { type: 'button', class: 'primary' }, TEXT.pdf);
  pdfButton.addEventListener('click', () => downloadPdf(ctx, id, pdfButton));
  const actions = h('div', { class: 'actions no-print', hidden: true }, printButton, pdfButton);
  replace(
    root,
    h('div', { class: 'page-head no-print' }, h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, h('a', { href: '#/sessions' }, TEXT.back))), actions),
    body,
  );

  const load = async () => {
    let receipt;
    try {
      receipt = await ctx.api.get(`/api/user/sessions/${id}/receipt`);
    } catch (error) {
      replace(body, h('div', { class: 'state state--error', role: 'alert' }, h('p', { 'data-receipt': 'none' }, noReceipt(error))));
      return;
    }
    actions.hidden = false;
    replace(body, render(receipt));
  };
  await ctx.keepLoaded(load);
}

function render(r) {
  const c = r.currency;
  const s = r.session;
  const facts = [
    [TEXT.number, r.number],
    [TEXT.customer, r.customer],
    r.station ? [TEXT.station, [r.station.name, r.station.address].filter(Boolean).join(', ')] : null,
    [TEXT.charger, TEXT.chargerConnector(r.charger.id, s.connectorId)],
    [TEXT.started, formatDateTime(s.startedAt)],
    [TEXT.stopped, formatDateTime(s.stoppedAt)],
    [TEXT.duration, formatDuration(s.durationSeconds)],
    [TEXT.energy, formatEnergy(s.energyWh)],
    r.tariff ? [TEXT.tariff, r.tariff.name] : null,
  ].filter(Boolean);
  const vat = r.vat;
  return h(
    'article',
    { class: 'card receipt', 'aria-labelledby': 'receipt-title', 'data-receipt': r.number },
    h('header', { class: 'receipt-head' }, h('h2', { id: 'receipt-title' }, TEXT.heading), r.issuer ? h('p', { class: 'muted receipt-issuer' }, r.issuer) : null),
    h('dl', { class: 'receipt-facts' }, facts.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    h(
      'table',
      { class: 'receipt-lines' },
      h('caption', { class: 'visually-hidden' }, TEXT.caption),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, TEXT.item), h('th', { scope: 'col' }, TEXT.quantity), h('th', { scope: 'col', class: 'num' }, TEXT.amount))),
      h(
        'tbody',
        {},
        r.lines.length
          ? r.lines.map((line) => h('tr', { 'data-line': line.kind }, h('td', {}, TEXT.lines[line.kind] || line.kind), h('td', {}, lineDetail(line, c)), h('td', { class: 'num' }, formatMoney(line.amount, c))))
          : h('tr', {}, h('td', { colspan: 3 }, TEXT.free)),
      ),
      h(
        'tfoot',
        {},
        h('tr', { class: 'receipt-total' }, h('th', { scope: 'row', colspan: 2 }, TEXT.total), h('td', { class: 'num', 'data-figure': 'total' }, formatMoney(r.total, c))),
        vat.rateBasisPoints
          ? [
              h('tr', {}, h('th', { scope: 'row', colspan: 2 }, TEXT.net), h('td', { class: 'num' }, formatMoney(vat.net, c))),
              h('tr', {}, h('th', { scope: 'row', colspan: 2 }, TEXT.vat(percent(vat.rateBasisPoints))), h('td', { class: 'num', 'data-figure': 'vat' }, formatMoney(vat.amount, c))),
            ]
          : null,
      ),
    ),
  );
}

/** The server's PDF in the reader's language, fetched with the sign-in token and saved by the browser. */
async function downloadPdf(ctx, id, button) {
  button.disabled = true;
  try {
    const response = await fetch(`/api/user/sessions/${id}/receipt.pdf?lang=${encodeURIComponent(language())}`, {
      headers: { Authorization: `Bearer ${ctx.api.token}` },
      cache: 'no-store',
    });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    const url = URL.createObjectURL(await response.blob());
    const link = h('a', { href: url, download: `receipt-${id}.pdf`, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
  } catch {
    ctx.notify(TEXT.pdfFailed, 'bad');
  } finally {
    button.disabled = false;
  }
}
