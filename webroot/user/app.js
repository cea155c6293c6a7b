// The customer panel: routes, and the charging notifications shown on every page.
// The words come from the message catalogue (shared/i18n/ and user/i18n/), in
// the reader's language, loaded before anything is drawn.

import { toast } from '/shared/dom.js';
import { sessionOf, topics } from '/shared/events.js';
import { formatEnergy, formatMoney } from '/shared/format.js';
import { loadMessages, messages } from '/shared/i18n.js';
import { notStarted, TEXT as SESSION_TEXT } from '/shared/sessions.js';
import { startApp } from '/shared/shell.js';

/** The languages the driver panel speaks in full (docs/web.md, "Languages"). */
const LANGUAGES = ['en', 'de', 'fr'];

await loadMessages(['/shared/i18n', '/user/i18n'], LANGUAGES);

const TEXT = messages('app');

startApp({
  tree: 'user',
  product: TEXT.product,
  routes: [
    { path: '/', id: 'dashboard', title: TEXT.dashboard, nav: TEXT.dashboard, load: () => import('./modules/dashboard.js') },
    { path: '/stations', id: 'stations', title: TEXT.stations, nav: TEXT.stations, load: () => import('./modules/stations-list.js') },
    { path: '/chargers/:id', id: 'charger', title: TEXT.charger, section: '/stations', load: () => import('./modules/charger-detail.js') },
    { path: '/session', id: 'session', title: TEXT.charging, nav: TEXT.charging, load: () => import('./modules/active-session.js') },
    { path: '/session/:id', id: 'session', title: TEXT.session, section: '/session', load: () => import('./modules/active-session.js') },
    { path: '/wallet', id: 'wallet', title: TEXT.wallet, nav: TEXT.wallet, load: () => import('./modules/wallet.js') },
    { path: '/sessions', id: 'sessions', title: TEXT.history, nav: TEXT.history, load: () => import('./modules/sessions.js') },
    { path: '/receipt/:id', id: 'receipt', title: TEXT.receipt, section: '/sessions', load: () => import('./modules/receipt.js') },
  ],
  onSignedIn(ctx) {
    ctx.subscribe(topics.userSession(ctx.user.id), (event) => {
      if (event.type === 'session.started') {
        const s = sessionOf(event);
        toast(TEXT.started(s.chargePointId, s.connectorId), { kind: 'ok' });
      } else if (event.type === 'session.stopped') {
        const s = sessionOf(event);
        const text = notStarted(s)
          ? TEXT.neverStarted(s.chargePointId, SESSION_TEXT.notStartedLong)
          : TEXT.stopped(s.chargePointId, formatEnergy(s.energyWh), formatMoney(s.cost, s.currency));
        toast(text, { kind: 'ok', timeout: 10000 });
      } else if (event.type === 'charging.stop.requested' && event.data?.reason === 'funds') {
        toast(TEXT.fundsLow, { kind: 'bad', timeout: 10000 });
      }
    });
  },
});
