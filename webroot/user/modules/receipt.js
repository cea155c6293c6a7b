// A finished session's receipt: station, charger, times, energy, the tariff's
// lines, the total and the VAT in it. Printable as it is (print styles in
// /user/receipt.css: the browser's "Save as PDF" gives a clean page), and
// downloadable as the server's PDF. Fed by GET /api/user/sessions/{id}/receipt
// and GET /api/user/sessions/{id}/receipt.pdf.

import { describeError, h, loadingState, replace } from '/shared/dom.js';
import { formatDateTime, formatDuration, formatEnergy, formatMoney, formatPerKwh, formatPerMinute, locale } from '/shared/format.js';

const LABELS = { fee: 'Session fee', energy: 'Energy', time: 'Time', adjustment: 'Adjustment' };

/** What the customer reads when there is no receipt to show (never the server's words). */
function noReceipt(error) {
  if (error.code === 'session_active') return 'This session is still charging. Its receipt is ready as soon as it stops.';
  if (error.code === 'receipt_pending') return 'This session is being checked by the operator. Its receipt follows their decision.';
  if (error.status === 404) return 'There is no such session of yours.';
  return describeError(error);
}

function lineDetail(line, currency) {
  if (line.kind === 'energy') return `${formatEnergy(line.quantity)} × ${formatPerKwh(line.unitPrice, currency)}`;
  if (line.kind === 'time') return `${formatDuration(line.quantity)} × ${formatPerMinute(line.unitPrice, currency)}`;
  if (line.kind === 'fee') return `1 × ${formatMoney(line.unitPrice, currency)}`;
  return 'Billed amount differs from the tariff (operator decision or tariff change)';
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
  const printButton = h('button', { type: 'button', onclick: () => window.print() }, 'Print');
  const pdfButton = h('button', { type: 'button', class: 'primary' }, 'Download PDF');
  pdfButton.addEventListener('click', () => downloadPdf(ctx, id, pdfButton));
  const actions = h('div', { class: 'actions no-print', hidden: true }, printButton, pdfButton);
  replace(
    root,
    h('div', { class: 'page-head no-print' }, h('div', {}, h('h1', {}, 'Receipt'), h('p', { class: 'muted' }, h('a', { href: '#/sessions' }, '← History'))), actions),
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
    ['Receipt', r.number],
    ['Customer', r.customer],
    r.station ? ['Station', [r.station.name, r.station.address].filter(Boolean).join(', ')] : null,
    ['Charger', `${r.charger.id}, connector ${s.connectorId}`],
    ['Started', formatDateTime(s.startedAt)],
    ['Stopped', formatDateTime(s.stoppedAt)],
    ['Duration', formatDuration(s.durationSeconds)],
    ['Energy', formatEnergy(s.energyWh)],
    r.tariff ? ['Tariff', r.tariff.name] : null,
  ].filter(Boolean);
  const vat = r.vat;
  return h(
    'article',
    { class: 'card receipt', 'aria-labelledby': 'receipt-title', 'data-receipt': r.number },
    h('header', { class: 'receipt-head' }, h('h2', { id: 'receipt-title' }, 'Charging receipt'), r.issuer ? h('p', { class: 'muted receipt-issuer' }, r.issuer) : null),
    h('dl', { class: 'receipt-facts' }, facts.map(([term, value]) => [h('dt', {}, term), h('dd', {}, value)])),
    h(
      'table',
      { class: 'receipt-lines' },
      h('caption', { class: 'visually-hidden' }, 'What was charged'),
      h('thead', {}, h('tr', {}, h('th', { scope: 'col' }, 'Item'), h('th', { scope: 'col' }, 'Quantity × price'), h('th', { scope: 'col', class: 'num' }, 'Amount'))),
      h(
        'tbody',
        {},
        r.lines.length
          ? r.lines.map((line) => h('tr', { 'data-line': line.kind }, h('td', {}, LABELS[line.kind] || line.kind), h('td', {}, lineDetail(line, c)), h('td', { class: 'num' }, formatMoney(line.amount, c))))
          : h('tr', {}, h('td', { colspan: 3 }, 'Free of charge')),
      ),
      h(
        'tfoot',
        {},
        h('tr', { class: 'receipt-total' }, h('th', { scope: 'row', colspan: 2 }, 'Total'), h('td', { class: 'num', 'data-figure': 'total' }, formatMoney(r.total, c))),
        vat.rateBasisPoints
          ? [
              h('tr', {}, h('th', { scope: 'row', colspan: 2 }, 'Net'), h('td', { class: 'num' }, formatMoney(vat.net, c))),
              h('tr', {}, h('th', { scope: 'row', colspan: 2 }, `VAT included (${percent(vat.rateBasisPoints)})`), h('td', { class: 'num', 'data-figure': 'vat' }, formatMoney(vat.amount, c))),
            ]
          : null,
      ),
    ),
  );
}

/** The server's PDF, fetched with the sign-in token and saved by the browser. */
async function downloadPdf(ctx, id, button) {
  button.disabled = true;
  try {
    const response = await fetch(`/api/user/sessions/${id}/receipt.pdf`, {
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
    ctx.notify('The PDF could not be downloaded. Try again in a moment.', 'bad');
  } finally {
    button.disabled = false;
  }
}
