// The operator's overview: stations and chargers online, active sessions,
// energy and revenue today and this month, open alerts, recent sessions; all live.
// Fed by GET /api/cms/dashboard and, for liveness, ocppd.chargers.status,
// ocppd.admin.sessions, ocppd.admin.revenue and ocppd.admin.cms (each event
// reloads the figures, coalesced, so they always agree with the store).

import { errorState, h, loadingState, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatCount, formatEnergy, formatMoney } from '/shared/format.js';
import { messages, t } from '/shared/i18n.js';
import { alertsPanel } from './alerts-panel.js';
import { sessionTable } from './charging-sessions.js';
import { nameCustomer } from './customers-cache.js';

// "cms.dashboard.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.dashboard');

export async function mount(root, ctx) {
  const figures = {};
  const card = (key, label) => {
    figures[key] = { value: h('p', { class: 'value', 'data-figure': key }, '—'), sub: h('p', { class: 'sub' }) };
    return h('section', { class: 'card stat', 'aria-label': label }, h('p', { class: 'label' }, label), figures[key].value, figures[key].sub);
  };
  const recent = sessionTable({ caption: TEXT.recent, empty: TEXT.noSessions });
  const body = h('div', {}, loadingState());
  replace(root, h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro))), body);
  const grid = h(
    'div',
    { class: 'grid' },
    card('stations', TEXT.stationsOnline),
    card('chargers', TEXT.chargersOnline),
    card('active', TEXT.chargingNow),
    card('energy', TEXT.energyToday),
    card('revenue', TEXT.revenueToday),
  );
  const content = h(
    'div',
    {},
    grid,
    alertsPanel(ctx),
    h('section', { class: 'card', 'aria-labelledby': 'recent-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'recent-title' }, TEXT.recent), h('a', { href: '#/sessions' }, TEXT.allSessions)), recent.element),
  );

  const money = (byCurrency) => {
    const entries = Object.entries(byCurrency || {});
    return entries.length ? entries.map(([currency, minor]) => formatMoney(minor, currency)).join(' + ') : formatMoney(0, 'EUR');
  };

  const render = (d) => {
    figures.stations.value.textContent = `${formatCount(d.stations.online)} / ${formatCount(d.stations.total)}`;
    figures.stations.sub.textContent = d.stations.offline ? TEXT.offline({ count: d.stations.offline, n: formatCount(d.stations.offline) }) : TEXT.allOnline;
    figures.chargers.value.textContent = `${formatCount(d.chargers.online)} / ${formatCount(d.chargers.total)}`;
    figures.chargers.sub.textContent = d.chargers.offline ? TEXT.offline({ count: d.chargers.offline, n: formatCount(d.chargers.offline) }) : TEXT.allOnline;
    figures.active.value.textContent = formatCount(d.activeSessions);
    figures.active.sub.textContent = t('cms.dashboard.running', { count: d.activeSessions });
    figures.energy.value.textContent = formatEnergy(d.energyWh.today);
    figures.energy.sub.textContent = TEXT.thisMonth(formatEnergy(d.energyWh.month));
    figures.revenue.value.textContent = money(d.revenue.today);
    figures.revenue.sub.textContent = TEXT.thisMonth(money(d.revenue.month));
    recent.setRows(d.recentSessions || []);
  };

  let loading = null;
  let again = false;
  const load = async () => {
    // One request at a time; events during it ask for one more afterwards.
    if (loading) {
      again = true;
      return loading;
    }
    loading = (async () => {
      try {
        const d = await ctx.api.get('/api/cms/dashboard');
        render(d);
        if (!content.isConnected) replace(body, content);
      } catch (error) {
        replace(body, errorState(error, load));
      }
    })();
    await loading;
    loading = null;
    if (again && !ctx.disposed) {
      again = false;
      await load();
    }
  };
  let timer = null;
  const soon = (delay = 150) => {
    clearTimeout(timer);
    timer = setTimeout(load, delay);
  };
  ctx.onDispose(() => clearTimeout(timer));

  ctx.subscribe(topics.chargers, (event) => {
    if (event.type === 'charger.online' || event.type === 'charger.offline') soon();
  });
  ctx.subscribe(topics.adminSessions, (event) => {
    if (!event.type?.startsWith('session.')) return;
    const session = mergeSession(recent.get(sessionOf(event).id), sessionOf(event));
    recent.upsert(session).classList.add('flash');
    nameCustomer(ctx, recent, session);
    // Running sessions add energy all the time: their reloads are spaced out.
    soon(event.type === 'session.updated' ? 1000 : 150);
  });
  ctx.subscribe(topics.adminRevenue, () => soon());
  ctx.subscribe(topics.adminCms, () => soon());
  await ctx.keepLoaded(load);
}
