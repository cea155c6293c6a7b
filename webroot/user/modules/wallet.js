// The prepaid wallet: live balance, top-up, and transactions appearing as they
// happen. Fed by GET /api/user/wallet, GET /api/user/wallet/transactions and
// ocppd.user.{id}.wallet; tops up with POST /api/user/wallet/top-up.
//
// A top-up is money: each intent (an amount the customer asked for) carries
// one Idempotency-Key, reused when that same intent is retried after a
// failure that may have reached the server, so it is credited once; every
// top-up button is disabled while a request is in flight. Without a payment
// provider (topUpAvailable false) the page offers no top-up and says why.
// With Stripe the answer is 202 with the payment page, which the browser
// opens; the wallet is credited by Stripe's webhook, shown here live.

import { newIdempotencyKey } from '/shared/api.js';
import { describeError, errorState, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { currencyDigits, formatDateTime, formatMoney, parseMoney } from '/shared/format.js';

const KINDS = { top_up: 'Top-up', debit: 'Charging', refund: 'Refund', adjustment: 'Adjustment by the operator' };
const UNAVAILABLE = 'Adding money here is not available yet. Ask the operator of this charging network to add credit to your wallet.';

/** What the customer reads when a top-up fails (never the server's own words). */
function topUpFailure(error) {
  if (error.code === 'top_up_unavailable') return UNAVAILABLE;
  if (error.code === 'payment_declined') return 'Your payment was declined. Nothing was added.';
  if (error.code === 'amount_not_payable') return 'This amount cannot be paid by card. Try a larger one.';
  if (error.code === 'payment_unavailable') return 'The payment service cannot be reached just now. Try again in a moment: you will not be charged twice.';
  if (error.status === 400) return 'This amount cannot be added. Try a smaller one.';
  if (error.status === 0) return describeError(error);
  return 'The top-up did not go through. Try again: you will not be charged twice.';
}

/** Only http(s) pages are followed: a payment page, never a script URL. */
function isWebUrl(url) {
  try {
    return ['https:', 'http:'].includes(new URL(url).protocol);
  } catch {
    return false;
  }
}

/** Whether a failed request may still have been carried out (so a retry must reuse its key). */
function uncertain(error) {
  return error.status === 0 || error.status >= 500 || error.status === 429;
}

export async function mount(root, ctx) {
  const body = h('div', {}, loadingState());
  replace(root, h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Wallet'), h('p', { class: 'muted' }, 'Prepaid balance for charging.'))), body);

  let wallet = null;
  const balance = h('p', { class: 'value', 'data-figure': 'balance', 'aria-live': 'polite' }, '—');
  const sub = h('p', { class: 'sub' });
  const rule = h('p', { class: 'muted wallet-rule' });
  const table = new LiveTable({
    caption: 'Wallet transactions',
    key: (t) => t.id,
    empty: 'No transactions yet. Top up to start charging.',
    columns: [
      { label: 'When', render: (t) => formatDateTime(t.at) },
      {
        label: 'What',
        render: (t) => [
          t.kind === 'refund' && t.amount < 0 ? 'Refund to your card' : KINDS[t.kind] || t.kind,
          t.sessionId ? [h('span', { class: 'muted' }, ` · session ${t.sessionId} · `), h('a', { href: `#/receipt/${t.sessionId}`, 'data-receipt-link': t.sessionId }, 'Receipt')] : null,
          // The operator's reason, in their words.
          t.kind === 'adjustment' && t.reference ? h('span', { class: 'muted' }, ` · ${t.reference}`) : null,
        ],
      },
      {
        label: 'Amount',
        class: 'num',
        render: (t) => h('span', { class: t.amount < 0 ? 'neg' : 'pos', 'data-field': 'amount' }, `${t.amount > 0 ? '+' : ''}${formatMoney(t.amount, t.currency || wallet.currency)}`),
      },
      { label: 'Balance after', class: 'num', render: (t) => formatMoney(t.balance, t.currency || wallet.currency) },
    ],
  });
  const older = new OlderPages('Show older transactions', {
    fetchPage: (cursor) => ctx.api.get('/api/user/wallet/transactions', { limit: 25, cursor }),
    append: (items) => table.appendRows(items),
  });

  const renderWallet = () => {
    balance.textContent = formatMoney(wallet.balance, wallet.currency);
    rule.textContent = `Starting a charge needs at least ${formatMoney(wallet.minimumToStart, wallet.currency)} available.`;
    sub.textContent = wallet.held
      ? `${formatMoney(wallet.available, wallet.currency)} available, ${formatMoney(wallet.held, wallet.currency)} held for charging`
      : `${formatMoney(wallet.available, wallet.currency)} available`;
  };

  const amountInput = h('input', { id: 'topup-amount', name: 'amount', inputmode: 'decimal', autocomplete: 'off', required: true });
  const topUpError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const topUpButton = h('button', { type: 'submit', class: 'primary' }, 'Top up');
  const topUpForm = h('form', { class: 'topup', 'aria-labelledby': 'topup-title' });
  let quickButtons = [];
  let inFlight = false;
  // The intent a retry would repeat: {amount, key}; a new amount is a new intent.
  let intent = null;

  const setBusy = (busy) => {
    inFlight = busy;
    for (const button of [topUpButton, ...quickButtons]) button.disabled = busy;
    topUpForm.setAttribute('aria-busy', String(busy));
  };

  const showUnavailable = () => {
    replace(topUpForm, h('h2', { id: 'topup-title' }, 'Top up'), h('p', { class: 'muted', 'data-topup': 'unavailable' }, UNAVAILABLE));
  };

  const topUp = async (amount) => {
    if (inFlight) return;
    if (!intent || intent.amount !== amount) intent = { amount, key: newIdempotencyKey() };
    const { key } = intent;
    topUpError.hidden = true;
    setBusy(true);
    try {
      const result = await ctx.api.post('/api/user/wallet/top-up', { amount }, { headers: { 'Idempotency-Key': key } });
      wallet = result.wallet;
      renderWallet();
      if (result.status === 'pending' && isWebUrl(result.redirectUrl)) {
        // Paid on the provider's page; its webhook credits the wallet, and
        // the push channel shows it here when the customer comes back. The
        // intent is kept: a second click reopens the same payment.
        ctx.notify('Opening the secure payment page…', 'ok');
        window.location.assign(result.redirectUrl);
        return;
      }
      intent = null;
      if (result.status === 'paid') {
        ctx.notify('This top-up is paid already and in your balance.', 'ok');
        return;
      }
      table.upsert(result.transaction).classList.add('flash');
      amountInput.value = '';
      ctx.notify(`Added ${formatMoney(result.transaction.amount, wallet.currency)} to your wallet.`, 'ok');
    } catch (error) {
      // A refusal is final: the next try is a new intent. An unknown outcome keeps the key.
      if (!uncertain(error)) intent = null;
      if (error.code === 'top_up_unavailable') {
        wallet = { ...wallet, topUpAvailable: false };
        showUnavailable();
        return;
      }
      topUpError.textContent = topUpFailure(error);
      topUpError.hidden = false;
    } finally {
      setBusy(false);
    }
  };
  topUpForm.addEventListener('submit', (event) => {
    event.preventDefault();
    if (inFlight) return;
    const amount = parseMoney(amountInput.value, wallet.currency);
    if (!amount) {
      topUpError.textContent = `Enter an amount such as 20 or 12.50 (${wallet.currency}).`;
      topUpError.hidden = false;
      amountInput.setAttribute('aria-invalid', 'true');
      amountInput.focus();
      return;
    }
    amountInput.removeAttribute('aria-invalid');
    topUp(amount);
  });

  const load = async () => {
    try {
      const [w, page] = await Promise.all([ctx.api.get('/api/user/wallet'), ctx.api.get('/api/user/wallet/transactions', { limit: 25 })]);
      wallet = w;
      older.reset(page);
      table.setRows(page.items);
    } catch (error) {
      replace(body, errorState(error, load));
      return;
    }
    const unit = 10 ** currencyDigits(wallet.currency);
    quickButtons = [10, 20, 50].map((n) =>
      h('button', { type: 'button', 'data-amount': n * unit, disabled: inFlight, onclick: () => topUp(n * unit) }, `+ ${formatMoney(n * unit, wallet.currency)}`),
    );
    if (wallet.topUpAvailable === false) {
      showUnavailable();
    } else {
      replace(
        topUpForm,
        h('h2', { id: 'topup-title' }, 'Top up'),
        h('div', { class: 'split', role: 'group', 'aria-label': 'Quick amounts' }, quickButtons),
        h('div', { class: 'field topup-other' }, h('label', { for: 'topup-amount' }, `Other amount (${wallet.currency})`), amountInput),
        topUpError,
        h('div', { class: 'actions' }, topUpButton),
      );
    }
    renderWallet();
    replace(
      body,
      h(
        'div',
        { class: 'grid-2' },
        h('section', { class: 'card stat', 'aria-label': 'Balance' }, h('p', { class: 'label' }, 'Balance'), balance, sub, rule),
        h('section', { class: 'card' }, topUpForm),
      ),
      h('section', { class: 'card', 'aria-labelledby': 'tx-title' }, h('h2', { id: 'tx-title' }, 'Transactions'), table.element, h('div', { class: 'more' }, older.button)),
    );
  };

  ctx.subscribe(topics.userWallet(ctx.user.id), (event) => {
    if (event.type !== 'wallet.transaction' || !wallet) return;
    const data = event.data || {};
    wallet = { ...wallet, balance: data.balance };
    renderWallet();
    if (data.transaction) {
      const tr = table.upsert({ balance: data.balance, currency: data.currency, ...data.transaction });
      tr.classList.add('flash');
    }
    // Holds are not in the event: the API knows what is available now.
    ctx.api.get('/api/user/wallet').then((w) => {
      wallet = w;
      renderWallet();
    }, () => {});
  });
  await ctx.keepLoaded(load);
}
