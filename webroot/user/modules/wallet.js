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
import { currencyDigits, formatDateTime, formatMoney, moneyInput, parseMoney } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "wallet.*" of the message catalogue (user/i18n/).
const TEXT = messages('wallet');

/** What the customer reads when a top-up fails (never the server's own words). */
function topUpFailure(error) {
  const known = TEXT.failures[error.code];
  if (known) return known;
  if (error.status === 400) return TEXT.failures.tooLarge;
  if (error.status === 0) return describeError(error);
  return TEXT.failures.other;
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
  replace(root, h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro))), body);

  let wallet = null;
  const balance = h('p', { class: 'value', 'data-figure': 'balance', 'aria-live': 'polite' }, '—');
  const sub = h('p', { class: 'sub' });
  const rule = h('p', { class: 'muted wallet-rule' });
  const table = new LiveTable({
    caption: TEXT.caption,
    key: (t) => t.id,
    empty: TEXT.empty,
    columns: [
      { label: TEXT.when, render: (t) => formatDateTime(t.at) },
      {
        label: TEXT.what,
        render: (t) => [
          t.kind === 'refund' && t.amount < 0 ? TEXT.refundToCard : TEXT.kinds[t.kind] || t.kind,
          t.sessionId ? [h('span', { class: 'muted' }, ` · ${TEXT.session(t.sessionId)} · `), h('a', { href: `#/receipt/${t.sessionId}`, 'data-receipt-link': t.sessionId }, TEXT.receipt)] : null,
          // The operator's reason, in their words.
          t.kind === 'adjustment' && t.reference ? h('span', { class: 'muted' }, ` · ${t.reference}`) : null,
        ],
      },
      {
        label: TEXT.amount,
        class: 'num',
        render: (t) => h('span', { class: t.amount < 0 ? 'neg' : 'pos', 'data-field': 'amount' }, `${t.amount > 0 ? '+' : ''}${formatMoney(t.amount, t.currency || wallet.currency)}`),
      },
      { label: TEXT.balanceAfter, class: 'num', render: (t) => formatMoney(t.balance, t.currency || wallet.currency) },
    ],
  });
  const older = new OlderPages(TEXT.older, {
    fetchPage: (cursor) => ctx.api.get('/api/user/wallet/transactions', { limit: 25, cursor }),
    append: (items) => table.appendRows(items),
  });

  const renderWallet = () => {
    balance.textContent = formatMoney(wallet.balance, wallet.currency);
    rule.textContent = TEXT.rule(formatMoney(wallet.minimumToStart, wallet.currency));
    sub.textContent = wallet.held
      ? TEXT.availableHeld(formatMoney(wallet.available, wallet.currency), formatMoney(wallet.held, wallet.currency))
      : TEXT.available(formatMoney(wallet.available, wallet.currency));
  };

  const amountInput = h('input', { id: 'topup-amount', name: 'amount', inputmode: 'decimal', autocomplete: 'off', required: true });
  const topUpError = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const topUpButton = h('button', { type: 'submit', class: 'primary' }, TEXT.topUp);
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
    replace(topUpForm, h('h2', { id: 'topup-title' }, TEXT.topUp), h('p', { class: 'muted', 'data-topup': 'unavailable' }, TEXT.failures.top_up_unavailable));
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
        ctx.notify(TEXT.opening, 'ok');
        window.location.assign(result.redirectUrl);
        return;
      }
      intent = null;
      if (result.status === 'paid') {
        ctx.notify(TEXT.paidAlready, 'ok');
        return;
      }
      table.upsert(result.transaction).classList.add('flash');
      amountInput.value = '';
      ctx.notify(TEXT.added(formatMoney(result.transaction.amount, wallet.currency)), 'ok');
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
      topUpError.textContent = TEXT.enterAmount(moneyInput(2000, wallet.currency), moneyInput(1250, wallet.currency), wallet.currency);
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
        h('h2', { id: 'topup-title' }, TEXT.topUp),
        h('div', { class: 'split', role: 'group', 'aria-label': TEXT.quick }, quickButtons),
        h('div', { class: 'field topup-other' }, h('label', { for: 'topup-amount' }, TEXT.other(wallet.currency)), amountInput),
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
        h('section', { class: 'card stat', 'aria-label': TEXT.balance }, h('p', { class: 'label' }, TEXT.balance), balance, sub, rule),
        h('section', { class: 'card' }, topUpForm),
      ),
      h('section', { class: 'card', 'aria-labelledby': 'tx-title' }, h('h2', { id: 'tx-title' }, TEXT.transactions), table.element, h('div', { class: 'more' }, older.button)),
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
