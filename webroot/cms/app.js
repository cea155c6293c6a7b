// The operator CMS: admins only (the API refuses anyone else anyway).

import { startApp } from '/shared/shell.js';

startApp({
  tree: 'cms',
  product: 'Operator CMS',
  role: 'admin',
  routes: [
    { path: '/', id: 'dashboard', title: 'Dashboard', nav: 'Dashboard', load: () => import('./modules/dashboard.js') },
    { path: '/stations', id: 'stations', title: 'Charging stations', nav: 'Stations', load: () => import('./modules/charging-stations.js') },
    { path: '/points', id: 'points', title: 'Charging points', nav: 'Charging points', load: () => import('./modules/charging-points.js') },
    { path: '/points/:id', id: 'point', title: 'Charging point', section: '/points', load: () => import('./modules/charging-point-detail-view.js') },
    { path: '/sessions', id: 'sessions', title: 'Charging sessions', nav: 'Sessions', load: () => import('./modules/charging-sessions.js') },
    { path: '/customers', id: 'customers', title: 'Customers', nav: 'Customers', load: () => import('./modules/customers.js') },
    { path: '/customers/:id', id: 'customer', title: 'Customer', section: '/customers', load: () => import('./modules/customer.js') },
    { path: '/tags', id: 'tags', title: 'Id tags', nav: 'Id tags', load: () => import('./modules/id-tags.js') },
    { path: '/tariffs', id: 'tariffs', title: 'Tariffs', nav: 'Tariffs', load: () => import('./modules/tariffs.js') },
    { path: '/audit', id: 'audit', title: 'Audit log', nav: 'Audit log', load: () => import('./modules/audit-log.js') },
    { path: '/reports', id: 'reports', title: 'Reports', nav: 'Reports', load: () => import('./modules/reports.js') },
    { path: '/map', id: 'map', title: 'Station map', nav: 'Map', load: () => import('./modules/map.js') },
  ],
});
