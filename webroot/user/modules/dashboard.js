// The customer's start page: wallet balance, the active-session banner and
// recent sessions, all live. Fed by GET /api/user/wallet, GET /api/user/sessions,
// ocppd.user.{id}.wallet and ocppd.user.{id}.session (the shell shows the
// started/stopped notifications on every page).

import { emptyState, h, LiveTable, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatEnergy, formatMoney, formatPower } from '/shared/format.js';
import { sessionColumns } from './sessions.js';

export async function mount(root, ctx) {
  const banner = h('div', { class: 'active-banner', 'aria-live': 'polite' });
  const balance = h('p', { class: 'value', 'data-figure': 'balance' }, '—');
  const balanceSub = h('p', { class: 'sub' }, 'Loading…');
  const recent = new LiveTable({
    caption: 'Recent sessions',
    key: (s) => s.id,
    empty: 'No sessions yet.',
    columns: sessionColumns({ link: (s, text) => h('a', { href: `#/session/${s.id}` }, text) }),
  });
  replace(
    root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, 'Hello'), h('p', { class: 'muted' }, ctx.user.email))),
    banner,
    h(
      'div',
      { class: 'grid' },
      h(
        'section',
        { class: 'card stat', 'aria-label': 'Wallet' },
        h('p', { class: 'label' }, 'Wallet balance'),
        balance,
        balanceSub,
        h('p', {}, h('a', { href: '#/wallet' }, 'Top up or see transactions')),
      ),
      h(
        'section',
        { class: 'card stat', 'aria-label': 'Find a charger' },
        h('p', { class: 'label' }, 'Ready to charge?'),
        h('p', { class: 'sub' }, 'See which chargers are free right now.'),
        h('p', {}, h('a', { class: 'button primary', href: '#/stations' }, 'Find a charger')),
      ),
    ),
    h('section', { class: 'card', 'aria-labelledby': 'recent-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'recent-title' }, 'Recent sessions'), h('a', { href: '#/sessions' }, 'All sessions')), recent.element),
  );

  let active = new Map();
  let stoppedNotice = null;

  const renderBanner = () => {
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
              h('strong', {}, `Charging at ${s.chargePointId}`),
              ` · ${formatEnergy(s.energyWh)}`,
              s.powerW ? ` · ${formatPower(s.powerW)}` : '',
              ` · ${formatMoney(s.cost, s.currency)} so far`,
            ),
            h('a', { class: 'button', href: `#/session/${s.id}` }, 'Open session'),
          ),
        ),
      );
    } else if (stoppedNotice) {
      const s = stoppedNotice;
      replace(
        banner,
        h(
          'section',
          { class: 'banner banner--done', 'data-session-state': 'stopped' },
          h('p', {}, h('strong', {}, `Charging stopped at ${s.chargePointId}`), ` · ${formatEnergy(s.energyWh)} · ${formatMoney(s.cost, s.currency)}`),
          h('a', { class: 'button', href: `#/session/${s.id}` }, 'Details'),
        ),
      );
    } else {
      replace(banner);
    }
  };

  const setWallet = (w) => {
    balance.textContent = formatMoney(w.balance, w.currency);
    balanceSub.textContent = w.held ? `${formatMoney(w.available, w.currency)} available (${formatMoney(w.held, w.currency)} held)` : 'Available to charge';
  };

  const load = async () => {
    const [wallet, sessions] = await Promise.all([
      ctx.api.get('/api/user/wallet').catch((error) => ({ error })),
      ctx.api.get('/api/user/sessions', { limit: 5 }).catch((error) => ({ error })),
    ]);
    if (wallet.error) {
      balanceSub.textContent = wallet.error.status === 404 ? 'The wallet is not available on this server.' : wallet.error.message;
    } else {
      setWallet(wallet);
    }
    if (sessions.error) {
      replace(recent.element, emptyState(sessions.error.message));
    } else {
      recent.setRows(sessions.items);
      active = new Map(sessions.items.filter((s) => s.status === 'active').map((s) => [s.id, s]));
    }
    renderBanner();
  };

  ctx.subscribe(topics.userSession(ctx.user.id), (event) => {
    if (!event.type?.startsWith('session.')) return;
    const session = mergeSession(recent.get(sessionOf(event).id) || active.get(sessionOf(event).id), sessionOf(event));
    recent.upsert(session).classList.add('flash');
    if (session.status === 'active') {
      active.set(session.id, session);
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
