// The customer panel: routes, and the charging notifications shown on every page.

import { toast } from '/shared/dom.js';
import { sessionOf, topics } from '/shared/events.js';
import { formatEnergy, formatMoney } from '/shared/format.js';
import { notStarted, TEXT as SESSION_TEXT } from '/shared/sessions.js';
import { startApp } from '/shared/shell.js';

const TEXT = {
  started: (s) => `Charging started at ${s.chargePointId}, connector ${s.connectorId}.`,
  stopped: (s) => `Charging stopped at ${s.chargePointId}: ${formatEnergy(s.energyWh)}, ${formatMoney(s.cost, s.currency)}.`,
  neverStarted: (s) => `Charging at ${s.chargePointId} did not start. ${SESSION_TEXT.notStartedLong}`,
  fundsLow: 'Your wallet is running out: charging is being stopped.',
};

startApp({
  tree: 'user',
  product: 'Charging',
  routes: [
    { path: '/', id: 'dashboard', title: 'Dashboard', nav: 'Dashboard', load: () => import('./modules/dashboard.js') },
    { path: '/stations', id: 'stations', title: 'Stations', nav: 'Stations', load: () => import('./modules/stations-list.js') },
    { path: '/chargers/:id', id: 'charger', title: 'Charger', section: '/stations', load: () => import('./modules/charger-detail.js') },
    { path: '/session', id: 'session', title: 'Charging', nav: 'Charging', load: () => import('./modules/active-session.js') },
    { path: '/session/:id', id: 'session', title: 'Charging session', section: '/session', load: () => import('./modules/active-session.js') },
    { path: '/wallet', id: 'wallet', title: 'Wallet', nav: 'Wallet', load: () => import('./modules/wallet.js') },
    { path: '/sessions', id: 'sessions', title: 'History', nav: 'History', load: () => import('./modules/sessions.js') },
    { path: '/receipt/:id', id: 'receipt', title: 'Receipt', section: '/sessions', load: () => import('./modules/receipt.js') },
  ],
  onSignedIn(ctx) {
    ctx.subscribe(topics.userSession(ctx.user.id), (event) => {
      if (event.type === 'session.started') {
        const s = sessionOf(event);
        toast(TEXT.started(s), { kind: 'ok' });
      } else if (event.type === 'session.stopped') {
        const s = sessionOf(event);
        toast(notStarted(s) ? TEXT.neverStarted(s) : TEXT.stopped(s), {
          kind: 'ok',
          timeout: 10000,
        });
      } else if (event.type === 'charging.stop.requested' && event.data?.reason === 'funds') {
        toast(TEXT.fundsLow, { kind: 'bad', timeout: 10000 });
      }
    });
  },
});
