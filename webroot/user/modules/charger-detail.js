// One charger: its live status and connectors, what charging costs here, and
// a Start button per free connector, disabled with the reason shown when a
// start cannot succeed (offline, connector busy, already charging, wallet
// below the minimum). Fed by GET /api/chargers/{id}, GET /api/user/wallet,
// GET /api/user/sessions/running and ocppd.chargers.status; starts with
// POST /api/user/charging/start.

import { applyChargerEvent, STARTABLE } from '/shared/chargers.js';
import { badge, describeError, errorState, h, loadingState, replace } from '/shared/dom.js';
import { sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatMoney } from '/shared/format.js';
import { feeNote, plugSummary, priceLines } from '/shared/sessions.js';
import { messages } from '/shared/i18n.js';

const TEXT = messages('charger');

export async function mount(root, ctx) {
  const id = ctx.params.id;
  ctx.setTitle(TEXT.title(id));
  const head = h('div', { class: 'page-head' }, h('div', {}, h('p', {}, h('a', { href: '#/stations' }, TEXT.back)), h('h1', {}, TEXT.title(id))));
  const body = h('div', {}, loadingState());
  const message = h('div', { class: 'start-message', role: 'alert' });
  replace(root, head, message, body);

  let charger = null;
  let wallet = null;
  let running = [];
  let starting = null;

  const fundsShort = () => wallet && wallet.available < Math.max(1, wallet.minimumToStart);

  /** Why connector ``c`` cannot start now, as [sentence, link?]; null when it can. */
  const blocked = (c) => {
    if (!charger.online) return [TEXT.whyOffline];
    const charging = running[0];
    if (charging) return [TEXT.whyCharging(charging.chargePointId, charging.connectorId), h('a', { href: `#/session/${charging.id}` }, TEXT.openSession)];
    if (!STARTABLE.has(c.status)) return [TEXT.whyBusy(TEXT.busy[c.status] || TEXT.unknown)];
    if (fundsShort()) {
      const needed = formatMoney(Math.max(1, wallet.minimumToStart), wallet.currency);
      return [TEXT.whyFunds(needed, formatMoney(wallet.available, wallet.currency)), h('a', { href: '#/wallet' }, TEXT.topUp)];
    }
    return null;
  };

  const render = () => {
    const connectors = charger.connectors.length
      ? charger.connectors.map((c) => {
          const mine = running.find((s) => s.connectorId === c.connectorId && s.chargePointId === id);
          const reason = mine ? null : blocked(c);
          const reasonId = `why-${c.connectorId}`;
          return h(
            'div',
            { class: 'connector-card', 'data-connector': c.connectorId },
            h(
              'div',
              {},
              h('span', { class: 'connector-name' }, TEXT.connector(c.connectorId)),
              ' ',
              badge(charger.online ? c.status : 'Offline', charger.online ? (c.status ? null : TEXT.unknown) : TEXT.offline),
              c.errorCode && c.errorCode !== 'NoError' ? h('span', { class: 'muted' }, ` ${c.errorCode}`) : null,
            ),
            mine
              ? h('a', { class: 'button primary', href: `#/session/${mine.id}` }, TEXT.yourSession)
              : h(
                  'button',
                  {
                    type: 'button',
                    class: 'primary',
                    disabled: Boolean(reason) || starting !== null,
                    'aria-label': TEXT.startLabel(c.connectorId),
                    'aria-describedby': reason ? reasonId : null,
                    onclick: () => start(c.connectorId),
                  },
                  starting === c.connectorId ? TEXT.starting : TEXT.start,
                ),
            reason ? h('p', { class: 'why-not', id: reasonId, 'data-why': 'start' }, reason[0], reason[1] ? [' ', reason[1]] : null) : null,
          );
        })
      : h('p', { class: 'muted' }, TEXT.noConnectors);
    const note = feeNote(charger.tariff);
    replace(
      body,
      h(
        'div',
        { class: 'grid-2' },
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'connectors-title' },
          h('div', { class: 'card-head' }, h('h2', { id: 'connectors-title' }, TEXT.connectors), h('span', { class: 'charger-state' }, charger.online ? badge('Online', TEXT.online) : badge('Offline', TEXT.offline))),
          connectors,
        ),
        h(
          'section',
          { class: 'card price-card', 'aria-labelledby': 'price-title', 'data-card': 'price' },
          h('h2', { id: 'price-title' }, TEXT.price),
          h('ul', { class: 'price-lines' }, priceLines(charger.tariff).map((line) => h('li', {}, line))),
          note ? h('p', { class: 'help' }, note) : null,
        ),
        h(
          'section',
          { class: 'card', 'aria-labelledby': 'about-title' },
          h('h2', { id: 'about-title' }, TEXT.about),
          h(
            'dl',
            { class: 'facts' },
            h('dt', {}, TEXT.status),
            h('dd', { class: 'charger-online' }, charger.online ? TEXT.connected : TEXT.notConnected),
            plugSummary(charger) ? [h('dt', {}, TEXT.plug), h('dd', { 'data-field': 'plug' }, plugSummary(charger))] : null,
            h('dt', {}, TEXT.make),
            h('dd', {}, [charger.vendor, charger.model].filter(Boolean).join(' ') || '—'),
            h('dt', {}, TEXT.lastSeen),
            h('dd', {}, formatDateTime(charger.lastSeenAt)),
            wallet ? [h('dt', {}, TEXT.yourWallet), h('dd', {}, formatMoney(wallet.available, wallet.currency), TEXT.available)] : null,
          ),
        ),
      ),
    );
  };

  const startError = (error) => {
    if (error.status === 0) return describeError(error);
    if (error.code === 'insufficient_funds' && wallet) {
      const needed = formatMoney(Math.max(1, wallet.minimumToStart), wallet.currency);
      return [TEXT.whyFunds(needed, formatMoney(wallet.available, wallet.currency)), ' ', h('a', { href: '#/wallet' }, TEXT.topUp)];
    }
    if (error.status === 504) return TEXT.errors.timeout;
    return TEXT.errors[error.code] || describeError(error);
  };

  const start = async (connectorId) => {
    starting = connectorId;
    replace(message);
    render();
    try {
      const answer = await ctx.api.post('/api/user/charging/start', { chargePointId: id, connectorId });
      ctx.notify(TEXT.accepted, 'ok');
      ctx.navigate(answer.sessionId ? `/session/${answer.sessionId}` : `/session?command=${encodeURIComponent(answer.commandId || '')}`);
      return;
    } catch (error) {
      if (error.code === 'insufficient_funds') wallet = await ctx.api.get('/api/user/wallet').catch(() => wallet);
      replace(message, h('p', { class: 'form-error' }, startError(error)));
    } finally {
      starting = null;
    }
    if (!ctx.disposed) render();
  };

  const load = async () => {
    try {
      charger = await ctx.api.get(`/api/chargers/${encodeURIComponent(id)}`);
    } catch (error) {
      replace(body, errorState(error.status === 404 ? { message: TEXT.noSuch(id) } : error, load));
      return;
    }
    [wallet, running] = await Promise.all([
      ctx.api.get('/api/user/wallet').catch(() => null),
      ctx.api.get('/api/user/sessions/running').then((p) => p.items.map((item) => sessionOf({ data: item })), () => []),
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
