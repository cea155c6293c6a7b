// The session in progress: live energy, cost, power, state of charge and
// duration, the tariff it runs under, a chart of power over time, and a Stop
// button; says so the moment charging stops. Whole from its first second and
// after a reload: GET /api/user/sessions/{id} answers the running figures and
// the meter history the pushes (ocppd.user.{id}.session) then extend. The
// running session is found with GET /api/user/sessions/running; stops with
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
  formatPercent,
  formatPower,
  secondsBetween,
} from '/shared/format.js';
import { feeNote, notStarted, priceLines, stopReasonText, TEXT as SESSION_TEXT } from '/shared/sessions.js';
import { messages } from '/shared/i18n.js';

const TEXT = messages('session');

/**
 * Power points of a history: the charger's own power where it sent one, else
 * the rate between two energy readings (what the live page did for pushes).
 */
export function powerPoints(history) {
  const points = [];
  let previous = null;
  for (const point of history) {
    let power = point.powerW;
    if ((power === null || power === undefined) && previous && point.energyWh !== null && point.energyWh !== undefined) {
      const hours = (new Date(point.at) - new Date(previous.at)) / 3.6e6;
      if (hours > 0) power = Math.round((point.energyWh - previous.energyWh) / hours);
    }
    if (point.energyWh !== null && point.energyWh !== undefined) previous = point;
    points.push([point.at, power ?? null]);
  }
  return points;
}

export async function mount(root, ctx) {
  const wantedId = ctx.params.id ? Number(ctx.params.id) : null;
  const waitingFor = ctx.query.get('command');
  const body = h('div', {}, loadingState());
  const announce = h('div', { class: 'visually-hidden', role: 'status', 'aria-live': 'assertive' });
  replace(root, h('div', { class: 'page-head' }, h('h1', {}, TEXT.title)), announce, body);

  let session = null;
  let tariff = null;
  let rendered = null; // `${id}:${status}` of the layout on screen
  let stopping = false;
  let chart = null;
  let last = null; // {at, energyWh} of the newest reading, for power when none is sampled
  const figures = {};
  let stopButton = null;
  let costNote = null;

  const stat = (key, label) => {
    figures[key] = h('p', { class: 'value', 'data-figure': key }, '—');
    return h('div', { class: 'card stat', 'data-stat': key }, h('p', { class: 'label' }, label), figures[key], key === 'cost' ? costNote : null);
  };

  const renderFigures = () => {
    if (!session) return;
    const active = session.status === 'active';
    const idle = notStarted(session);
    figures.energy.textContent = formatEnergy(session.energyWh ?? (active ? 0 : null));
    figures.cost.textContent = idle ? SESSION_TEXT.noCharge : formatMoney(session.cost ?? (active ? 0 : null), session.currency || tariff?.currency);
    figures.power.textContent = active ? formatPower(session.powerW ?? 0) : '—';
    figures.soc.textContent = session.socPercent === null || session.socPercent === undefined ? '—' : formatPercent(session.socPercent);
    figures.soc.closest('.stat').hidden = session.socPercent === null || session.socPercent === undefined;
    const seconds = secondsBetween(session.startedAt, session.stoppedAt);
    figures.duration.textContent = active ? formatClock(seconds) : formatDuration(seconds);
    if (costNote) {
      // Before the fee is owed, when it will be; once it is, that the cost includes it.
      const owed = tariff?.sessionFee && ((session.cost ?? 0) > 0 || tariff.sessionFeeAlways);
      const note = !active || !tariff?.sessionFee ? null : owed ? TEXT.includesFee(formatMoney(tariff.sessionFee, tariff.currency)) : feeNote(tariff);
      costNote.textContent = note || '';
      costNote.hidden = !note;
    }
    if (stopButton) {
      stopButton.disabled = stopping;
      stopButton.textContent = stopping ? TEXT.stopping : TEXT.stop;
    }
  };

  const priceCard = () =>
    h(
      'section',
      { class: 'card price-card', 'aria-labelledby': 'price-title', 'data-card': 'price' },
      h('h2', { id: 'price-title' }, TEXT.price),
      h('ul', { class: 'price-lines' }, priceLines(tariff).map((line) => h('li', {}, line))),
    );

  const renderSession = () => {
    const key = `${session.id}:${session.status}`;
    if (rendered === key) {
      renderFigures();
      return;
    }
    rendered = key;
    const done = session.status === 'completed';
    costNote = h('p', { class: 'sub', 'data-field': 'fee-note' });
    stopButton = done
      ? null
      : h('button', { type: 'button', class: 'danger big', 'data-action': 'stop', onclick: stopCharging }, TEXT.stop);
    const idle = notStarted(session);
    const reason = stopReasonText(session.stopReason);
    replace(
      body,
      // Energy and cost first: on a phone they are what shows without scrolling.
      h(
        'div',
        { class: 'grid figures' },
        stat('energy', TEXT.energy),
        stat('cost', done ? TEXT.cost : TEXT.costSoFar),
        stat('power', TEXT.power),
        stat('duration', TEXT.duration),
        stat('soc', TEXT.soc),
      ),
      done
        ? h(
            'section',
            { class: 'card stopped-notice', 'data-session-state': 'stopped', 'aria-labelledby': 'stopped-title' },
            h('h2', { id: 'stopped-title' }, idle ? TEXT.notStartedTitle : TEXT.stoppedTitle),
            idle
              ? h('p', {}, SESSION_TEXT.notStartedLong)
              : h(
                  'p',
                  {},
                  TEXT.stoppedSummary(formatEnergy(session.energyWh), formatDuration(secondsBetween(session.startedAt, session.stoppedAt))),
                  h('strong', {}, formatMoney(session.cost, session.currency)),
                  '.',
                ),
            reason ? h('p', { 'data-field': 'stop-reason' }, reason) : null,
            h(
              'div',
              { class: 'actions' },
              // A billed session has a receipt (an unpriced or held one says why on its page).
              idle ? null : h('a', { class: 'button', href: `#/receipt/${session.id}`, 'data-action': 'receipt' }, TEXT.receipt),
              h('a', { class: 'button', href: '#/sessions' }, TEXT.all),
              h('a', { class: 'button primary', href: '#/stations' }, TEXT.again),
            ),
          )
        : h(
            'section',
            { class: 'banner', 'data-session-state': 'active' },
            h('p', {}, h('span', { class: 'pulse', 'aria-hidden': 'true' }), h('strong', {}, TEXT.chargingAt(session.chargePointId)), TEXT.where(session.connectorId, formatDateTime(session.startedAt))),
            stopButton,
          ),
      h('div', { class: 'grid-2' }, h('section', { class: 'card' }, chart.element), priceCard()),
      h('p', { class: 'muted' }, TEXT.session, h('span', { class: 'mono' }, String(session.id)), ' · ', badge(session.status, done ? TEXT.completed : TEXT.charging)),
    );
    renderFigures();
  };

  async function stopCharging() {
    stopping = true;
    renderFigures();
    try {
      await ctx.api.post('/api/user/charging/stop', { sessionId: session.id });
      announce.textContent = TEXT.stopRequested;
    } catch (error) {
      stopping = false;
      renderFigures();
      body.querySelector('.form-error')?.remove();
      body.prepend(h('p', { class: 'form-error', role: 'alert' }, describeError(error)));
    }
  }

  const newChart = () => {
    if (chart) chart.destroy();
    const span = () => {
      const from = new Date(session.startedAt).getTime() / 1000;
      const to = (session.stoppedAt ? new Date(session.stoppedAt).getTime() : Date.now()) / 1000;
      return [from, to];
    };
    chart = new LiveChart({ title: TEXT.chart, label: TEXT.power, format: formatPower, floor: 1000, timeRange: span });
  };

  /** A snapshot ({session, tariff, live, history}) from a load. */
  const showSnapshot = (snapshot) => {
    const next = sessionOf({ data: snapshot });
    if (snapshot.live) next.socPercent = snapshot.live.socPercent ?? null;
    const same = session?.id === next.id;
    session = mergeSession(same ? session : null, next);
    tariff = snapshot.tariff;
    if (!same || !chart) newChart();
    rendered = same ? rendered : null;
    const history = snapshot.history || [];
    chart.setPoints(powerPoints(history));
    const energyPoints = history.filter((p) => p.energyWh !== null && p.energyWh !== undefined);
    last = energyPoints.length ? energyPoints[energyPoints.length - 1] : null;
    ctx.setTitle(session.status === 'active' ? TEXT.chargingAt(session.chargePointId) : TEXT.stoppedTitleBar);
    renderSession();
  };

  const nothing = () => {
    session = null;
    rendered = null;
    replace(
      body,
      waitingFor
        ? h('div', { class: 'state', role: 'status', 'data-session-state': 'waiting' }, h('p', {}, h('span', { class: 'pulse', 'aria-hidden': 'true' }), TEXT.waiting))
        : emptyState(TEXT.notCharging, h('a', { class: 'button primary', href: '#/stations' }, TEXT.find)),
    );
  };

  const snapshotOf = (id) => ctx.api.get(`/api/user/sessions/${encodeURIComponent(id)}`);

  const load = async () => {
    try {
      if (wantedId) {
        showSnapshot(await snapshotOf(wantedId));
      } else {
        const running = await ctx.api.get('/api/user/sessions/running');
        if (running.items.length) showSnapshot(await snapshotOf(running.items[0].session.id));
        else nothing();
      }
    } catch (error) {
      rendered = null;
      replace(body, errorState(error.status === 404 ? { message: TEXT.notYours } : error, load));
    }
  };

  const loadSession = (id) =>
    snapshotOf(id).then(showSnapshot, (error) => {
      rendered = null;
      replace(body, errorState(error, load));
    });

  ctx.subscribe(topics.userSession(ctx.user.id), (event) => {
    if (!event.type?.startsWith('session.')) {
      if (event.type === 'charging.stop.requested' && session && event.data?.sessionId === session.id) {
        announce.textContent = event.data.reason === 'funds' ? TEXT.fundsStopping : TEXT.stopping;
      } else if (event.type === 'charging.start.expired' && !session && waitingFor && event.data?.commandId === waitingFor) {
        // The charger accepted but never started: the funds held for it are free again.
        replace(
          body,
          h(
            'div',
            { class: 'state', role: 'status', 'data-session-state': 'expired' },
            h('p', {}, TEXT.expired),
            h('a', { class: 'button primary', href: '#/stations' }, TEXT.tryAgain),
          ),
        );
      }
      return;
    }
    const next = sessionOf(event);
    if (event.data?.live) next.socPercent = event.data.live.socPercent ?? null;
    const another = session && next.id !== session.id;
    if (another && !(session.status === 'completed' && event.type === 'session.started' && !wantedId)) return;
    if (!session || another) {
      // A session this page shows from now on: its snapshot has its tariff and history.
      const wanted = wantedId ? next.id === wantedId : event.type === 'session.started' || event.type === 'session.updated';
      if (wanted) loadSession(next.id);
      return;
    }
    const wasActive = session.status === 'active';
    session = mergeSession(session, next);
    if (wasActive && session.status === 'completed') {
      stopping = false;
      announce.textContent = TEXT.announceStopped(formatEnergy(session.energyWh), formatMoney(session.cost, session.currency));
      ctx.setTitle(TEXT.stoppedTitleBar);
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
    renderSession();
  });
  ctx.every(1000, () => {
    if (session?.status !== 'active') return;
    renderFigures();
    chart?.redraw();
  });
  ctx.onDispose(() => chart?.destroy());
  await ctx.keepLoaded(load);
}
