// The customer's start page: wallet balance, the running sessions (asked for
// as such: GET /api/user/sessions/running, however many sessions are newer)
// and recent sessions, all live. Fed by GET /api/user/wallet, GET
// /api/user/sessions, ocppd.user.{id}.wallet and ocppd.user.{id}.session (the
// shell shows the started/stopped notifications on every page).

import { describeError, emptyState, h, LiveTable, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatEnergy, formatMoney, formatPower } from '/shared/format.js';
import { notStarted, TEXT as SESSION_TEXT } from '/shared/sessions.js';
import { sessionColumns } from './sessions.js';
import { messages } from '/shared/i18n.js';

const TEXT = messages('dashboard');

export async function mount(root, ctx) {
  const banner = h('div', { class: 'active-banner', 'aria-live': 'polite' });
  const balance = h('p', { class: 'value', 'data-figure': 'balance' }, '—');
  const balanceSub = h('p', { class: 'sub' }, TEXT.loading);
  const chargeCard = h('section', { class: 'card stat', 'aria-label': TEXT.find, 'data-card': 'charge' });
  const recent = new LiveTable({
    caption: TEXT.recent,
    key: (s) => s.id,
    empty: TEXT.noSessions,
    columns: sessionColumns({ link: (s, text) => h('a', { href: `#/session/${s.id}` }, text) }),
  });
  replace(
    root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, TEXT.hello), h('p', { class: 'muted' }, ctx.user.email))),
    banner,
    h(
      'div',
      { class: 'grid' },
      h(
        'section',
        { class: 'card stat', 'aria-label': TEXT.wallet },
        h('p', { class: 'label' }, TEXT.balance),
        balance,
        balanceSub,
        h('p', {}, h('a', { href: '#/wallet' }, TEXT.topUpLink)),
      ),
      chargeCard,
    ),
    h('section', { class: 'card', 'aria-labelledby': 'recent-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'recent-title' }, TEXT.recent), h('a', { href: '#/sessions' }, TEXT.all)), recent.element),
  );

  let active = new Map();
  let stoppedNotice = null;

  const renderChargeCard = () => {
    if (active.size) {
      const [first] = active.values();
      replace(
        chargeCard,
        h('p', { class: 'label' }, TEXT.chargingNow),
        h('p', { class: 'sub' }, TEXT.chargingSub({ count: active.size })),
        h('p', {}, h('a', { class: 'button primary', href: `#/session/${first.id}` }, TEXT.open)),
      );
    } else {
      replace(
        chargeCard,
        h('p', { class: 'label' }, TEXT.ready),
        h('p', { class: 'sub' }, TEXT.readySub),
        h('p', {}, h('a', { class: 'button primary', href: '#/stations' }, TEXT.find)),
      );
    }
  };

  const renderBanner = () => {
    renderChargeCard();
    if (active.size) {
      replace(
        banner,
        [...active.values()].map((s) =>
          h(
            'section',
            { class: 'banner', 'data-session-state': 'active', 'data-session': s.id },
            h(
              'p',
              {},
              h('span', { class: 'pulse', 'aria-hidden': 'true' }),
              h('strong', {}, TEXT.chargingAt(s.chargePointId)),
              ` · ${formatEnergy(s.energyWh ?? 0)}`,
              s.powerW ? ` · ${formatPower(s.powerW)}` : '',
              ` · ${TEXT.soFar(formatMoney(s.cost ?? 0, s.currency || s.tariff?.currency))}`,
            ),
            h('a', { class: 'button', href: `#/session/${s.id}` }, TEXT.open),
          ),
        ),
      );
    } else if (stoppedNotice) {
      const s = stoppedNotice;
      const cost = notStarted(s) ? SESSION_TEXT.notStartedLong : formatMoney(s.cost, s.currency);
      replace(
        banner,
        h(
          'section',
          { class: 'banner banner--done', 'data-session-state': 'stopped' },
          h('p', {}, h('strong', {}, TEXT.stoppedAt(s.chargePointId)), ` · ${formatEnergy(s.energyWh)} · ${cost}`),
          h('a', { class: 'button', href: `#/session/${s.id}` }, TEXT.details),
        ),
      );
    } else {
      replace(banner);
    }
  };

  const setWallet = (w) => {
    balance.textContent = formatMoney(w.balance, w.currency);
    balanceSub.textContent = w.held
      ? TEXT.available(formatMoney(w.available, w.currency), formatMoney(w.held, w.currency))
      : TEXT.availableToCharge;
  };

  const load = async () => {
    const [wallet, sessions, running] = await Promise.all([
      ctx.api.get('/api/user/wallet').catch((error) => ({ error })),
      ctx.api.get('/api/user/sessions', { limit: 5 }).catch((error) => ({ error })),
      ctx.api.get('/api/user/sessions/running').catch((error) => ({ error })),
    ]);
    if (wallet.error) {
      balanceSub.textContent = wallet.error.status === 404 ? TEXT.noWallet : describeError(wallet.error);
    } else {
      setWallet(wallet);
    }
    if (sessions.error) {
      replace(recent.element, emptyState(describeError(sessions.error)));
    } else {
      recent.setRows(sessions.items);
    }
    if (!running.error) {
      active = new Map(
        running.items.map((item) => {
          const s = { ...sessionOf({ data: item }), tariff: item.tariff };
          return [s.id, s];
        }),
      );
    }
    renderBanner();
  };

  ctx.subscribe(topics.userSession(ctx.user.id), (event) => {
    if (!event.type?.startsWith('session.')) return;
    const next = sessionOf(event);
    const session = mergeSession(recent.get(next.id) || active.get(next.id), next);
    recent.upsert(session).classList.add('flash');
    if (session.status === 'active') {
      active.set(session.id, { ...active.get(session.id), ...session });
    } else {
      active.delete(session.id);
      stoppedNotice = session;
    }
    renderBanner();
  });
  ctx.subscribe(topics.userWallet(ctx.user.id), (event) => {
    if (event.type !== 'wallet.transaction') return;
    balance.textContent = formatMoney(event.data.balance, event.data.currency);
    ctx.api.get('/api/user/wallet').then(setWallet, () => {});
  });
  await ctx.keepLoaded(load);
}
