// The session in progress: live energy, power, duration and cost, a chart of
// power over time, and a Stop button; says so the moment charging stops.
// Fed by GET /api/user/sessions and ocppd.user.{id}.session; stops with
// POST /api/user/charging/stop.

import { LiveChart } from '/shared/chart.js';
import { badge, describeError, emptyState, errorState, h, loadingState, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import {
  formatClock,
  formatDateTime,
  formatDuration,
  formatEnergy,
  formatMoney,
  formatPower,
  secondsBetween,
} from '/shared/format.js';

export async function mount(root, ctx) {
  const wantedId = ctx.params.id ? Number(ctx.params.id) : null;
  const waitingFor = ctx.query.get('command');
  const body = h('div', {}, loadingState());
  const announce = h('div', { class: 'visually-hidden', role: 'status', 'aria-live': 'assertive' });
  replace(root, h('div', { class: 'page-head' }, h('h1', {}, 'Charging')), announce, body);

  let session = null;
  let stopping = false;
  let chart = null;
  let last = null; // {at, energyWh} of the previous update, for power when none is sampled
  const figures = {};

  const stat = (key, label) => {
    figures[key] = h('p', { class: 'value', 'data-figure': key }, '—');
    return h('div', { class: 'card stat' }, h('p', { class: 'label' }, label), figures[key]);
  };

  const renderFigures = () => {
    if (!session) return;
    figures.energy.textContent = formatEnergy(session.energyWh);
    figures.power.textContent = session.status === 'active' ? formatPower(session.powerW) : '—';
    figures.cost.textContent = formatMoney(session.cost, session.currency);
    const seconds = secondsBetween(session.startedAt, session.stoppedAt);
    figures.duration.textContent = session.status === 'active' ? formatClock(seconds) : formatDuration(seconds);
  };

  const renderSession = () => {
    if (chart) chart.destroy();
    chart = new LiveChart({ title: 'Power over time', label: 'Power', format: formatPower, floor: 1000 });
    const done = session.status === 'completed';
    const stop = h(
      'button',
      { type: 'button', class: 'danger big', 'data-action': 'stop', disabled: stopping, onclick: stopCharging },
      stopping ? 'Stopping…' : 'Stop charging',
    );
    replace(
      body,
      done
        ? h(
            'section',
            { class: 'card stopped-notice', 'data-session-state': 'stopped', 'aria-labelledby': 'stopped-title' },
            h('h2', { id: 'stopped-title' }, 'Charging has stopped'),
            h(
              'p',
              {},
              `${formatEnergy(session.energyWh)} in ${formatDuration(secondsBetween(session.startedAt, session.stoppedAt))}, `,
              h('strong', {}, formatMoney(session.cost, session.currency)),
              session.stopReason ? ` (reason: ${session.stopReason}).` : '.',
            ),
            h('div', { class: 'actions' }, h('a', { class: 'button', href: '#/sessions' }, 'All sessions'), h('a', { class: 'button primary', href: '#/stations' }, 'Charge again')),
          )
        : h(
            'section',
            { class: 'banner', 'data-session-state': 'active' },
            h('p', {}, h('span', { class: 'pulse', 'aria-hidden': 'true' }), h('strong', {}, `Charging at ${session.chargePointId}`), `, connector ${session.connectorId}, since ${formatDateTime(session.startedAt)}`),
            stop,
          ),
      h('div', { class: 'grid' }, stat('energy', 'Energy'), stat('power', 'Power'), stat('duration', 'Duration'), stat('cost', done ? 'Cost' : 'Cost so far')),
      done ? null : h('section', { class: 'card' }, chart.element),
      h(
        'p',
        { class: 'muted' },
        'Session ',
        h('span', { class: 'mono' }, String(session.id)),
        ' · ',
        badge(session.status, done ? 'Completed' : 'Charging'),
      ),
    );
    renderFigures();
  };

  async function stopCharging() {
    stopping = true;
    renderSession();
    try {
      await ctx.api.post('/api/user/charging/stop', { sessionId: session.id });
      announce.textContent = 'Stop requested: waiting for the charger.';
    } catch (error) {
      stopping = false;
      renderSession();
      body.prepend(h('p', { class: 'form-error', role: 'alert' }, describeError(error)));
    }
  }

  const show = (next) => {
    const wasActive = session?.status === 'active';
    session = mergeSession(session?.id === next.id ? session : null, next);
    ctx.setTitle(session.status === 'active' ? `Charging at ${session.chargePointId}` : 'Charging stopped');
    if (wasActive && session.status === 'completed') {
      announce.textContent = `Charging has stopped. ${formatEnergy(session.energyWh)}, ${formatMoney(session.cost, session.currency)}.`;
    }
    renderSession();
  };

  const nothing = () => {
    session = null;
    replace(
      body,
      waitingFor
        ? h('div', { class: 'state', role: 'status', 'data-session-state': 'waiting' }, h('p', {}, h('span', { class: 'pulse', 'aria-hidden': 'true' }), 'Waiting for the charger to start… plug in your car.'))
        : emptyState('You are not charging right now.', h('a', { class: 'button primary', href: '#/stations' }, 'Find a charger')),
    );
  };

  const load = async () => {
    try {
      if (wantedId) {
        const found = await findSession(ctx, wantedId);
        if (!found) {
          replace(body, errorState({ message: 'This session is not one of yours, or does not exist.' }));
          return;
        }
        show(found);
      } else {
        const page = await ctx.api.get('/api/user/sessions', { status: 'active', limit: 1 });
        if (page.items.length) show(page.items[0]);
        else nothing();
      }
    } catch (error) {
      replace(body, errorState(error, load));
    }
  };

  ctx.subscribe(topics.userSession(ctx.user.id), (event) => {
    if (!event.type?.startsWith('session.')) {
      if (event.type === 'charging.stop.requested' && session && event.data?.sessionId === session.id) {
        announce.textContent = event.data.reason === 'funds' ? 'Your funds are used up: stopping.' : 'Stopping…';
      } else if (event.type === 'charging.start.expired' && !session && waitingFor && event.data?.commandId === waitingFor) {
        // The charger accepted but never started: the funds held for it are free again.
        replace(
          body,
          h(
            'div',
            { class: 'state', role: 'status', 'data-session-state': 'expired' },
            h('p', {}, 'The charger did not start charging, so nothing is held for it any more.'),
            h('a', { class: 'button primary', href: '#/stations' }, 'Try again'),
          ),
        );
      }
      return;
    }
    const next = sessionOf(event);
    const another = session && next.id !== session.id;
    if (another && !(session.status === 'completed' && event.type === 'session.started' && !wantedId)) return;
    if (another) session = null;
    if (!session && (wantedId ? next.id !== wantedId : event.type !== 'session.started' && event.type !== 'session.updated')) return;
    if (!session || (next.status && next.status !== session.status)) {
      show(next);
    } else {
      session = mergeSession(session, next);
    }
    if (event.type === 'session.updated' && session.status === 'active') {
      const at = next.liveAt || event.at;
      let power = next.powerW;
      if ((power === null || power === undefined) && last && next.energyWh !== undefined) {
        const hours = (new Date(at) - new Date(last.at)) / 3.6e6;
        if (hours > 0) power = Math.round((next.energyWh - last.energyWh) / hours);
        session.powerW = power;
      }
      last = { at, energyWh: next.energyWh };
      chart.push(at, power);
    }
    renderFigures();
  });
  ctx.every(1000, () => session?.status === 'active' && renderFigures());
  ctx.onDispose(() => chart?.destroy());
  await ctx.keepLoaded(load);
}

async function findSession(ctx, id) {
  let cursor = null;
  for (let pages = 0; pages < 10; pages += 1) {
    const page = await ctx.api.get('/api/user/sessions', { limit: 200, cursor });
    const found = page.items.find((s) => s.id === id);
    if (found || !page.next) return found || null;
    cursor = page.next;
  }
  return null;
}
