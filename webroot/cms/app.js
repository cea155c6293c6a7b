// The operator CMS: admins only (the API refuses anyone else anyway).
// The words come from the message catalogue (shared/i18n/ and cms/i18n/), in
// the reader's language, loaded before anything is drawn.

import { loadMessages, messages } from '/shared/i18n.js';
import { startApp } from '/shared/shell.js';

/** The languages the CMS speaks in full (docs/web.md, "Languages"). */
const LANGUAGES = ['en', 'de', 'fr'];

await loadMessages(['/shared/i18n', '/cms/i18n'], LANGUAGES);

const TEXT = messages('cms.app');

startApp({
  tree: 'cms',
  product: TEXT.product,
  role: 'admin',
  routes: [
    { path: '/', id: 'dashboard', title: TEXT.dashboard, nav: TEXT.dashboard, load: () => import('./modules/dashboard.js') },
    { path: '/stations', id: 'stations', title: TEXT.stationsTitle, nav: TEXT.stations, load: () => import('./modules/charging-stations.js') },
    { path: '/points', id: 'points', title: TEXT.pointsTitle, nav: TEXT.points, load: () => import('./modules/charging-points.js') },
    { path: '/points/:id', id: 'point', title: TEXT.point, section: '/points', load: () => import('./modules/charging-point-detail-view.js') },
    { path: '/sessions', id: 'sessions', title: TEXT.sessionsTitle, nav: TEXT.sessions, load: () => import('./modules/charging-sessions.js') },
    { path: '/customers', id: 'customers', title: TEXT.customers, nav: TEXT.customers, load: () => import('./modules/customers.js') },
    { path: '/customers/:id', id: 'customer', title: TEXT.customer, section: '/customers', load: () => import('./modules/customer.js') },
    { path: '/tags', id: 'tags', title: TEXT.tags, nav: TEXT.tags, load: () => import('./modules/id-tags.js') },
    { path: '/tariffs', id: 'tariffs', title: TEXT.tariffs, nav: TEXT.tariffs, load: () => import('./modules/tariffs.js') },
    { path: '/audit', id: 'audit', title: TEXT.audit, nav: TEXT.audit, load: () => import('./modules/audit-log.js') },
    { path: '/reports', id: 'reports', title: TEXT.reports, nav: TEXT.reports, load: () => import('./modules/reports.js') },
    { path: '/map', id: 'map', title: TEXT.mapTitle, nav: TEXT.map, load: () => import('./modules/map.js') },
  ],
});
