// One charger: its live status and connectors, and a Start button per free
// connector. Fed by GET /api/chargers/{id}, GET /api/user/wallet and
// ocppd.chargers.status; starts with POST /api/user/charging/start.

import { applyChargerEvent, STARTABLE } from '/shared/chargers.js';
import { badge, describeError, errorState, h, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime, formatMoney } from '/shared/format.js';

export async function mount(root, ctx) {
  const id = ctx.params.id;
  ctx.setTitle(`Charger ${id}`);
  const head = h('div', { class: 'page-head' }, h('div', {}, h('p', {}, h('a', { href: '#/stations' }, '← Stations')), h('h1', {}, `Charger ${id}`)));
  const body = h('div', {}, loadingState());
  const message = h('div', { class: 'start-message', role: 'alert' });
  replace(root, head, message, body);

  let charger = null;
  let wallet = null;
  let active = [];
  let starting = null;

  const render = () => {
    const connectors = charger.connectors.length
      ? charger.connectors.map((c) => {
          const mine = active.find((s) => s.connectorId === c.connectorId && s.chargePointId === id);
          const canStart = charger.online && STARTABLE.has(c.status) && !starting && !mine;
          return h(
            'div',
            { class: 'connector-card', 'data-connector': c.connectorId },
            h(
              'div',
              {},
              h('span', { class: 'connector-name' }, `Connector ${c.connectorId}`),
              ' ',
              badge(charger.online ? c.status : 'Offline', charger.online ? c.status || 'Unknown' : 'Offline'),
              c.errorCode && c.errorCode !== 'NoError' ? h('span', { class: 'muted' }, ` ${c.errorCode}`) : null,
            ),
            mine
              ? h('a', { class: 'button primary', href: `#/session/${mine.id}` }, 'Your session: open')
              : h(
                  'button',
                  {
                    type: 'button',
                    class: 'primary',
                    disabled: !canStart,
                    'aria-label': `Start charging on connector ${c.connectorId}`,
                    onclick: () => start(c.connectorId),
                  },
                  starting === c.connectorId ? 'Starting…' : 'Start charging',
                ),
          );
        })
      : h('p', { class: 'muted' }, 'This charger has not reported its connectors yet.');
    const funds =
      wallet && wallet.available < wallet.minimumToStart
        ? h(
            'p',
            { class: 'form-error' },
            `Starting needs ${formatMoney(wallet.minimumToStart, wallet.currency)} available in your wallet; you have ${formatMoney(wallet.available, wallet.currency)}. `,
            h('a', { href: '#/wallet' }, 'Top up'),
          )
        : null;
    replace(
      body,
      h(
        'div',
        { class: 'grid-2' },
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'connectors-title' },
          h('div', { class: 'card-head' }, h('h2', { id: 'connectors-title' }, 'Connectors'), h('span', { class: 'charger-state' }, charger.online ? badge('Online') : badge('Offline'))),
          funds,
          connectors,
        ),
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'about-title' },
          h('h2', { id: 'about-title' }, 'About this charger'),
          h(
            'dl',
            { class: 'facts' },
            h('dt', {}, 'Status'),
            h('dd', { class: 'charger-online' }, charger.online ? 'Connected' : 'Not connected'),
            h('dt', {}, 'Make'),
            h('dd', {}, [charger.vendor, charger.model].filter(Boolean).join(' ') || '—'),
            h('dt', {}, 'Last seen'),
            h('dd', {}, formatDateTime(charger.lastSeenAt)),
            wallet ? [h('dt', {}, 'Your wallet'), h('dd', {}, formatMoney(wallet.available, wallet.currency), ' available')] : null,
          ),
        ),
      ),
    );
  };

  const start = async (connectorId) => {
    starting = connectorId;
    replace(message);
    render();
    try {
      const answer = await ctx.api.post('/api/user/charging/start', { chargePointId: id, connectorId });
      ctx.notify('The charger accepted: plug in if you have not yet.', 'ok');
      ctx.navigate(answer.sessionId ? `/session/${answer.sessionId}` : `/session?command=${encodeURIComponent(answer.commandId || '')}`);
      return;
    } catch (error) {
      const text =
        error.code === 'insufficient_funds'
          ? [describeError(error), ' ', h('a', { href: '#/wallet' }, 'Top up your wallet')]
          : describeError(error);
      replace(message, h('p', { class: 'form-error' }, text));
    } finally {
      starting = null;
    }
    if (!ctx.disposed) render();
  };

  const load = async () => {
    try {
      charger = await ctx.api.get(`/api/chargers/${encodeURIComponent(id)}`);
    } catch (error) {
      replace(body, errorState(error.status === 404 ? { message: `There is no charger ${id}.` } : error, load));
      return;
    }
    [wallet, active] = await Promise.all([
      ctx.api.get('/api/user/wallet').catch(() => null),
      ctx.api.get('/api/user/sessions', { status: 'active' }).then((p) => p.items, () => []),
    ]);
    render();
  };

  ctx.subscribe(topics.chargers, (event) => {
    if (!charger || event.data?.chargePointId !== id) return;
    applyChargerEvent(charger, event);
    render();
  });
  ctx.subscribe(topics.userSession(ctx.user.id), (event) => {
    if (event.type === 'session.started' || event.type === 'session.stopped') load();
  });
  ctx.subscribe(topics.userWallet(ctx.user.id), () => {
    ctx.api.get('/api/user/wallet').then((w) => {
      wallet = w;
      if (charger) render();
    }, () => {});
  });
  await ctx.keepLoaded(load);
}
