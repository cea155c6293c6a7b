// One charging point for its operator: live status and connectors (booted and
// last seen follow its messages), power and energy charts per connector from
// the chosen period's history on (point-charts.js), the live OCPP message log,
// and all its commands, forms built from their schemas, with the charger's
// answer (command-forms.js). Fed by GET /api/cms/points/{id},
// GET /api/cms/points/{id}/messages, GET /api/cms/points/{id}/meter,
// GET /api/cms/commands, GET /api/cms/sessions, ocppd.chargers.status,
// GET /api/cms/points/{id}/connections (connection-history.js, again on each
// charger.online/offline),
// ocppd.admin.sessions, ocppd.admin.meter.{id} and ocppd.admin.ocpp.{id} (only
// this charger's: the broker filters, not the page); commands go to
// POST /api/charger/{command}; a running session is closed by hand with
// POST /api/cms/sessions/{id}/close.

import { applyChargerEvent, staleOnlineNote } from '/shared/chargers.js';
import { badge, errorState, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatEnergy, formatPower, formatTime } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { connectorBadges, registrationText } from './charging-points.js';
import { sessionTable } from './charging-sessions.js';
import { nameCustomer } from './customers-cache.js';
import { commandPanel } from './command-forms.js';
import { firmwarePicker } from './firmware-picker.js';
import { pointCharts } from './point-charts.js';
import { diagnosticsCard } from './diagnostics.js';
import { stopReasonText } from './stop-reasons.js';
import { connectionHistoryCard } from './connection-history.js';

// "cms.point.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.point');

export async function mount(root, ctx) {
  const id = ctx.params.id;
  ctx.setTitle(TEXT.title(id));
  const body = h('div', {}, loadingState());
  replace(root, h('div', { class: 'page-head' }, h('div', {}, h('p', {}, h('a', { href: '#/points' }, `← ${TEXT.back}`)), h('h1', {}, id))), body);

  let point = null;
  let active = { items: [] };
  const status = h('div', { class: 'point-status' });
  const log = h('ol', { class: 'log', 'aria-label': TEXT.logLabel, 'data-log': id });
  const logKeys = new Set();
  const olderLog = new OlderPages(TEXT.olderMessages, {
    fetchPage: (cursor) => ctx.api.get(`/api/cms/points/${encodeURIComponent(id)}/messages`, { limit: 100, cursor }),
    append: (items) => addLog(items, { atEnd: true }),
  });
  const charts = pointCharts(ctx, id);
  let forms = null;
  const meterText = h('p', { class: 'meter-latest', 'data-field': 'meter', 'aria-live': 'polite' }, TEXT.noMeter);
  const diagnostics = diagnosticsCard(ctx, id);
  const connections = connectionHistoryCard(ctx, id);
  // Stops that changed no session: unknown ones, and a charger's own stop
  // after its session was closed (on its last reading) without it.
  const stops = new LiveTable({
    caption: TEXT.stopsTitle,
    key: (s) => s.id,
    empty: '',
    columns: [
      { label: TEXT.received, render: (s) => formatDateTime(s.receivedAt) },
      { label: TEXT.transaction, render: (s) => h('span', { class: 'mono' }, String(s.transactionId)) },
      { label: TEXT.meterStop, class: 'num', render: (s) => formatEnergy(s.meterStopWh) },
      { label: TEXT.stopped, render: (s) => formatDateTime(s.stoppedAt) },
      { label: TEXT.reason, render: (s) => (s.reason ? stopReasonText(s.reason) : '—') },
    ],
  });
  const stopsCard = h(
    'section',
    { class: 'card', 'aria-labelledby': 'stops-title', hidden: true },
    h('h2', { id: 'stops-title' }, TEXT.stopsTitle),
    h('p', { class: 'muted' }, TEXT.stopsNote),
    stops.element,
  );
  const loadStops = async () => {
    try {
      const page = await ctx.api.get(`/api/cms/points/${encodeURIComponent(id)}/unmatched-stops`, { limit: 20 });
      stops.setRows(page.items);
      stopsCard.hidden = page.items.length === 0;
    } catch {
      // Secondary: the page works without it.
    }
  };
  const sessions = sessionTable({ caption: TEXT.runningCaption, empty: TEXT.noneRunning, ctx });
  const running = () => [...sessions.rows.values()].map((r) => r.data).filter((s) => s.status === 'active');

  const renderStatus = () => {
    replace(
      status,
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, TEXT.connection),
        h('dd', { 'data-field': 'online' }, point.online ? badge('Online') : badge('Offline'), staleOnlineNote(point), point.lastSeenAt ? h('span', { class: 'muted' }, ` ${TEXT.lastSeen} `, h('time', { datetime: point.lastSeenAt, 'data-field': 'last-seen' }, formatDateTime(point.lastSeenAt))) : null),
        h('dt', {}, TEXT.connectors),
        h('dd', {}, connectorBadges(point)),
        h('dt', {}, TEXT.registration),
        h('dd', {}, badge(point.registrationStatus, registrationText(point.registrationStatus))),
        h('dt', {}, TEXT.make),
        h('dd', {}, [point.vendor, point.model].filter(Boolean).join(' ') || '—'),
        h('dt', {}, TEXT.firmware),
        h('dd', {}, point.firmwareVersion || '—'),
        h('dt', {}, TEXT.serial),
        h('dd', {}, point.serialNumber || '—'),
        h('dt', {}, TEXT.booted),
        h('dd', {}, point.bootAt ? h('time', { datetime: point.bootAt, 'data-field': 'booted' }, formatDateTime(point.bootAt)) : '—'),
        h('dt', {}, TEXT.bootCloses),
        h('dd', { 'data-field': 'boot-closes-sessions' }, point.bootClosesSessions === false ? TEXT.bootClosesOff : TEXT.bootClosesOn),
        h('dt', {}, TEXT.firmwareUpdate),
        h('dd', { 'data-field': 'firmware-status' }, fileStatus(point.firmwareStatus, point.firmwareStatusAt)),
        h('dt', {}, TEXT.diagnostics),
        h('dd', { 'data-field': 'diagnostics-status' }, fileStatus(point.diagnosticsStatus, point.diagnosticsStatusAt)),
      ),
    );
  };

  const logKey = (m) => `${m.direction}|${m.messageType}|${m.uniqueId}|${m.action || ''}`;
  const logLine = (m) => {
    const payload = JSON.stringify(m.payload ?? null);
    return h(
      'li',
      { 'data-action': m.action || '', 'data-direction': m.direction },
      h('time', { datetime: m.at }, formatTime(m.at)),
      h('span', { class: `dir dir--${m.direction}`, title: m.direction === 'in' ? TEXT.fromCharger : TEXT.toCharger }, m.direction === 'in' ? 'IN' : 'OUT'),
      h(
        'span',
        {},
        h('span', { class: 'action' }, m.action || '—'),
        ' ',
        h('span', { class: 'muted' }, messageTypeName(m.messageType)),
        h('code', { class: 'payload' }, payload.length > 400 ? `${payload.slice(0, 400)}…` : payload),
      ),
    );
  };
  const addLog = (messages, { atEnd }) => {
    for (const m of messages) {
      const key = logKey(m);
      if (logKeys.has(key)) continue;
      logKeys.add(key);
      if (atEnd) log.append(logLine(m));
      else log.prepend(logLine(m));
    }
    if (!log.children.length) replace(log, h('li', { class: 'muted empty' }, TEXT.noMessages));
    else log.querySelector('.empty')?.remove();
  };

  const load = async () => {
    try {
      const [p, messages, running, described] = await Promise.all([
        ctx.api.get(`/api/cms/points/${encodeURIComponent(id)}`),
        ctx.api.get(`/api/cms/points/${encodeURIComponent(id)}/messages`, { limit: 100 }).catch(() => ({ items: [], next: null })),
        ctx.api.get('/api/cms/sessions', { chargePointId: id, status: 'active', limit: 50 }).catch(() => ({ items: [] })),
        forms ? { commands: forms } : ctx.api.get('/api/cms/commands'),
      ]);
      point = p;
      forms = described.commands;
      // Before the pushes held during this load are handled (ctx.keepLoaded).
      await charts.load(point.connectors.map((c) => c.connectorId));
      active = running;
      sessions.setRows(running.items || []);
      olderLog.reset(messages);
      logKeys.clear();
      log.replaceChildren();
      addLog(messages.items, { atEnd: true });
      if (active.items[0]) {
        meterText.textContent = TEXT.charging(formatEnergy(active.items[0].energyWh), active.items[0].transactionId);
      }
    } catch (error) {
      replace(body, errorState(error.status === 404 ? { message: TEXT.noSuchPoint(id) } : error, load));
      return;
    }
    renderStatus();
    diagnostics.refresh();
    connections.refresh();
    loadStops();
    if (!status.isConnected) {
      const commands = commandPanel(ctx, {
        chargePointId: id,
        forms,
        running,
        // A remote stop names the running session's transaction to begin with.
        defaults: (command) => (command === 'remote-stop' && running()[0] ? { transactionId: running()[0].transactionId } : {}),
        // UpdateFirmware's location: one of the files ocppd serves, or any URL typed.
        pickers: (command) => (command === 'update-firmware' ? { location: (input) => firmwarePicker(ctx, input) } : {}),
      });
      replace(
        body,
        h(
          'div',
          { class: 'grid-2' },
          h('section', { class: 'card', 'aria-labelledby': 'status-title' }, h('h2', { id: 'status-title' }, TEXT.status), status),
          h('section', { class: 'card', 'aria-labelledby': 'meter-title' }, h('h2', { id: 'meter-title' }, TEXT.meterValues), meterText),
        ),
        h('section', { class: 'card', 'aria-labelledby': 'charts-title' }, h('h2', { id: 'charts-title' }, TEXT.charts), charts.element),
        h('section', { class: 'card', 'aria-labelledby': 'running-title' }, h('h2', { id: 'running-title' }, TEXT.running), sessions.element),
        h('section', { class: 'card', 'aria-labelledby': 'commands-title' }, h('h2', { id: 'commands-title' }, TEXT.commands), commands.element),
        diagnostics.element,
        connections.element,
        stopsCard,
        h('section', { class: 'card', 'aria-labelledby': 'log-title' }, h('h2', { id: 'log-title' }, TEXT.log), log, h('div', { class: 'more' }, olderLog.button)),
      );
    }
  };

  const later = (a, b) => (!a || (b && new Date(b) > new Date(a)) ? b : a);
  const seen = (at) => {
    point.lastSeenAt = later(point.lastSeenAt, at);
  };
  const booted = (boot, at) => {
    point.bootAt = later(point.bootAt, at);
    point.vendor = boot.chargePointVendor ?? point.vendor;
    point.model = boot.chargePointModel ?? point.model;
    point.firmwareVersion = boot.firmwareVersion ?? point.firmwareVersion;
    point.serialNumber = boot.chargePointSerialNumber ?? point.serialNumber;
    renderStatus();
  };

  ctx.subscribe(topics.chargers, (event) => {
    if (!point || event.data?.chargePointId !== id) return;
    applyChargerEvent(point, event);
    if (event.type === 'charger.online') seen(event.at);
    renderStatus();
    connections.follow(event);
  });
  ctx.subscribe(topics.adminSessions, (event) => {
    if (!event.type?.startsWith('session.')) return;
    const session = sessionOf(event);
    if (session.chargePointId !== id || (!sessions.get(session.id) && session.status !== 'active')) return;
    sessions.upsert(mergeSession(sessions.get(session.id), session)).classList.add('flash');
    nameCustomer(ctx, sessions, session);
  });
  ctx.subscribe(topics.adminMeterOf(id), (event) => {
    const m = event.data || {};
    const at = m.sampledAt || event.at;
    charts.push(m, at);
    const values = { connector: m.connectorId, transaction: m.transactionId, power: formatPower(m.powerW), energy: formatEnergy(m.energyWh), time: formatTime(at) };
    meterText.textContent = m.transactionId ? TEXT.meterInTransaction(values) : TEXT.meter(values);
  });
  ctx.subscribe(topics.adminOcppOf(id), (event) => {
    const m = event.data || {};
    // The charger's firmware and diagnostics transfers, as it reports them.
    const field = TRANSFERS[m.action];
    // A stop may change no session (the processor keeps it a moment later).
    if (m.action === 'StopTransaction' && m.direction === 'in' && m.messageType === 'CALL') setTimeout(loadStops, 1000);
    const at = m.at || event.at;
    if (point && m.direction === 'in') {
      // Anything the charger says is a sign of life; a boot says what it is.
      seen(at);
      if (m.action === 'BootNotification' && m.messageType === 'CALL') booted(m.payload || {}, at);
      else if (!field) renderStatus();
    }
    if (point && field && m.direction === 'in' && m.messageType === 'CALL' && typeof m.payload?.status === 'string') {
      point[field.status] = m.payload.status;
      point[field.at] = m.at || event.at;
      renderStatus();
      if (field.status === 'diagnosticsStatus') diagnostics.refresh();
    }
    addLog([{ ...m, at: m.at || event.at }], { atEnd: false });
  });
  ctx.subscribe(topics.adminCms, (event) => {
    const change = event.data || {};
    if (change.kind === 'point' && String(change.id) === id && change.data) {
      point = { ...point, ...change.data };
      renderStatus();
    }
  });
  await ctx.keepLoaded(load);
}

/** The charger's reports of its firmware and diagnostics transfers: the point's fields they set. */
const TRANSFERS = {
  FirmwareStatusNotification: { status: 'firmwareStatus', at: 'firmwareStatusAt' },
  DiagnosticsStatusNotification: { status: 'diagnosticsStatus', at: 'diagnosticsStatusAt' },
};

function fileStatus(status, at) {
  if (!status) return '—';
  return [badge(FILE_STATUS_KINDS[status] || status, TEXT.fileStatuses[status] ?? status), h('span', { class: 'muted' }, ` ${formatDateTime(at)}`)];
}

/** Firmware and diagnostics states, as the badges colour them; their words are "cms.point.fileStatuses.*". */
const FILE_STATUS_KINDS = {
  Idle: 'Unavailable',
  Downloaded: 'Available',
  Installed: 'Available',
  Uploaded: 'Available',
  Downloading: 'Charging',
  Installing: 'Charging',
  Uploading: 'Charging',
  DownloadFailed: 'Faulted',
  InstallationFailed: 'Faulted',
  UploadFailed: 'Faulted',
};

function messageTypeName(type) {
  return { 2: 'CALL', 3: 'CALLRESULT', 4: 'CALLERROR' }[type] || type || '';
}
