// One charging point for its operator: live status and connectors, live meter
// values with a chart, the live OCPP message log, and the charger commands
// with the charger's answer. Fed by GET /api/cms/points/{id},
// GET /api/cms/points/{id}/messages, GET /api/cms/sessions, ocppd.chargers.status,
// ocppd.admin.sessions, ocppd.admin.meter.{id} and ocppd.admin.ocpp.{id} (only
// this charger's: the broker filters, not the page); commands go to
// POST /api/charger/{command}; a running session is closed by hand with
// POST /api/cms/sessions/{id}/close.

import { applyChargerEvent, staleOnlineNote } from '/shared/chargers.js';
import { LiveChart } from '/shared/chart.js';
import { badge, describeError, errorState, h, LiveTable, loadingState, OlderPages, replace } from '/shared/dom.js';
import { mergeSession, sessionOf, topics } from '/shared/events.js';
import { formatDateTime, formatEnergy, formatKwhTick, formatPower, formatTime } from '/shared/format.js';
import { connectorBadges } from './charging-points.js';
import { sessionTable } from './charging-sessions.js';
import { diagnosticsCard } from './diagnostics.js';

const TRIGGERS = ['StatusNotification', 'MeterValues', 'Heartbeat', 'BootNotification', 'DiagnosticsStatusNotification', 'FirmwareStatusNotification'];

/** The charger commands offered here: [command, title, fields, submit label]. */
const COMMANDS = [
  ['remote-start', 'Remote start', [['connectorId', 'Connector', 'number', '1'], ['idTag', 'Id tag', 'text', '']], 'Start'],
  ['remote-stop', 'Remote stop', [['transactionId', 'Transaction', 'number', '']], 'Stop'],
  ['reset', 'Reset', [['type', 'Type', ['Soft', 'Hard'], 'Soft']], 'Reset'],
  ['change-configuration', 'Change configuration', [['key', 'Key', 'text', 'HeartbeatInterval'], ['value', 'Value', 'text', '']], 'Change'],
  ['unlock-connector', 'Unlock connector', [['connectorId', 'Connector', 'number', '1']], 'Unlock'],
  ['trigger-message', 'Trigger message', [['requestedMessage', 'Message', TRIGGERS, 'StatusNotification'], ['connectorId', 'Connector (optional)', 'number', '']], 'Trigger'],
  ['get-configuration', 'Get configuration', [['key', 'Keys (comma-separated, optional)', 'text', '']], 'Get'],
];

export async function mount(root, ctx) {
  const id = ctx.params.id;
  ctx.setTitle(`Charging point ${id}`);
  const body = h('div', {}, loadingState());
  replace(root, h('div', { class: 'page-head' }, h('div', {}, h('p', {}, h('a', { href: '#/points' }, '← Charging points')), h('h1', {}, id))), body);

  let point = null;
  let active = { items: [] };
  const status = h('div', { class: 'point-status' });
  const log = h('ol', { class: 'log', 'aria-label': 'OCPP messages, newest first', 'data-log': id });
  const logKeys = new Set();
  const olderLog = new OlderPages('Show older messages', {
    fetchPage: (cursor) => ctx.api.get(`/api/cms/points/${encodeURIComponent(id)}/messages`, { limit: 100, cursor }),
    append: (items) => addLog(items, { atEnd: true }),
  });
  const power = new LiveChart({ title: 'Power', label: 'Power', format: formatPower, floor: 1000 });
  const energy = new LiveChart({
    title: 'Energy register',
    label: 'Energy',
    color: '#1b6e3a',
    format: formatEnergy,
    axis: formatKwhTick,
    floor: 1000,
    fromZero: false,
  });
  ctx.onDispose(() => {
    power.destroy();
    energy.destroy();
  });
  const meterText = h('p', { class: 'meter-latest', 'data-field': 'meter', 'aria-live': 'polite' }, 'No meter values since this page opened.');
  const diagnostics = diagnosticsCard(ctx, id);
  // Stops that changed no session: unknown ones, and a charger's own stop
  // after its session was closed (on its last reading) without it.
  const stops = new LiveTable({
    caption: 'Stops that changed no session',
    key: (s) => s.id,
    empty: '',
    columns: [
      { label: 'Received', render: (s) => formatDateTime(s.receivedAt) },
      { label: 'Transaction', render: (s) => h('span', { class: 'mono' }, String(s.transactionId)) },
      { label: 'Meter stop', class: 'num', render: (s) => formatEnergy(s.meterStopWh) },
      { label: 'Stopped', render: (s) => formatDateTime(s.stoppedAt) },
      { label: 'Reason', render: (s) => s.reason || '—' },
    ],
  });
  const stopsCard = h(
    'section',
    { class: 'card', 'aria-labelledby': 'stops-title', hidden: true },
    h('h2', { id: 'stops-title' }, 'Stops that changed no session'),
    h('p', { class: 'muted' }, 'StopTransactions for a session this charger does not have, or that came after the session was closed on its last reading (billed then; shown here for you to judge).'),
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
  const sessions = sessionTable({ caption: 'Running sessions of this point', empty: 'No session running here.', ctx });
  const answer = h('section', { class: 'command-answer', 'aria-live': 'polite', 'aria-label': 'The charger’s answer' });

  const renderStatus = () => {
    replace(
      status,
      h(
        'dl',
        { class: 'facts' },
        h('dt', {}, 'Connection'),
        h('dd', { 'data-field': 'online' }, point.online ? badge('Online') : badge('Offline'), staleOnlineNote(point), point.lastSeenAt ? h('span', { class: 'muted' }, ` last seen ${formatDateTime(point.lastSeenAt)}`) : null),
        h('dt', {}, 'Connectors'),
        h('dd', {}, connectorBadges(point)),
        h('dt', {}, 'Registration'),
        h('dd', {}, badge(point.registrationStatus)),
        h('dt', {}, 'Make'),
        h('dd', {}, [point.vendor, point.model].filter(Boolean).join(' ') || '—'),
        h('dt', {}, 'Firmware'),
        h('dd', {}, point.firmwareVersion || '—'),
        h('dt', {}, 'Serial number'),
        h('dd', {}, point.serialNumber || '—'),
        h('dt', {}, 'Booted'),
        h('dd', {}, formatDateTime(point.bootAt)),
        h('dt', {}, 'Firmware update'),
        h('dd', { 'data-field': 'firmware-status' }, fileStatus(point.firmwareStatus, point.firmwareStatusAt)),
        h('dt', {}, 'Diagnostics'),
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
      h('span', { class: `dir dir--${m.direction}`, title: m.direction === 'in' ? 'From the charger' : 'To the charger' }, m.direction === 'in' ? 'IN' : 'OUT'),
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
    if (!log.children.length) replace(log, h('li', { class: 'muted empty' }, 'No messages yet.'));
    else log.querySelector('.empty')?.remove();
  };

  const commandCard = ([command, title, fields, submitLabel]) => {
    const inputs = {};
    const form = h(
      'form',
      { class: 'command', 'data-command': command, 'aria-label': title },
      h('h3', {}, title),
      fields.map(([name, label, type, value]) => {
        const fieldId = `${command}-${name}`;
        const input = Array.isArray(type)
          ? h('select', { id: fieldId, name }, type.map((o) => h('option', { value: o }, o)))
          : h('input', { id: fieldId, name, type, value, min: type === 'number' ? '0' : undefined, autocomplete: 'off' });
        input.value = value;
        inputs[name] = { input, type };
        return h('div', { class: 'field' }, h('label', { for: fieldId }, label), input);
      }),
      h('button', { type: 'submit' }, submitLabel),
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      const request = { chargePointId: id };
      for (const [name, { input, type }] of Object.entries(inputs)) {
        const text = input.value.trim();
        if (text === '') continue;
        if (type === 'number') request[name] = Number(text);
        else if (command === 'get-configuration' && name === 'key') request.key = text.split(',').map((k) => k.trim()).filter(Boolean);
        else request[name] = text;
      }
      const button = form.querySelector('button');
      button.disabled = true;
      replace(answer, h('p', { class: 'muted' }, `${title}: waiting for the charger…`));
      try {
        const reply = await ctx.api.post(`/api/charger/${command}`, request);
        const shown = { ...reply };
        delete shown.commandId;
        replace(
          answer,
          h('h3', {}, `${title}: `, reply.status ? badge(reply.status) : 'answered'),
          h('pre', { 'data-answer': command }, JSON.stringify(shown, null, 2)),
        );
      } catch (error) {
        replace(answer, h('h3', {}, `${title}: `, badge('Faulted', error.code || 'failed')), h('p', { class: 'form-error', 'data-answer': command }, describeError(error)));
      } finally {
        button.disabled = false;
      }
    });
    return form;
  };

  const load = async () => {
    try {
      const [p, messages, running] = await Promise.all([
        ctx.api.get(`/api/cms/points/${encodeURIComponent(id)}`),
        ctx.api.get(`/api/cms/points/${encodeURIComponent(id)}/messages`, { limit: 100 }).catch(() => ({ items: [], next: null })),
        ctx.api.get('/api/cms/sessions', { chargePointId: id, status: 'active', limit: 50 }).catch(() => ({ items: [] })),
      ]);
      point = p;
      active = running;
      sessions.setRows(running.items || []);
      olderLog.reset(messages);
      logKeys.clear();
      log.replaceChildren();
      addLog(messages.items, { atEnd: true });
      if (active.items[0]) {
        meterText.textContent = `Charging: ${formatEnergy(active.items[0].energyWh)} in transaction ${active.items[0].transactionId}.`;
      }
    } catch (error) {
      replace(body, errorState(error.status === 404 ? { message: `There is no charging point ${id}.` } : error, load));
      return;
    }
    renderStatus();
    diagnostics.refresh();
    loadStops();
    if (!status.isConnected) {
      const commands = h('div', { class: 'commands' }, COMMANDS.map(commandCard));
      const stop = commands.querySelector('[data-command=remote-stop] input');
      const running = active.items?.[0];
      if (running && stop) stop.value = String(running.transactionId);
      replace(
        body,
        h(
          'div',
          { class: 'grid-2' },
          h('section', { class: 'card', 'aria-labelledby': 'status-title' }, h('h2', { id: 'status-title' }, 'Status'), status),
          h('section', { class: 'card', 'aria-labelledby': 'meter-title' }, h('h2', { id: 'meter-title' }, 'Meter values'), meterText, power.element, energy.element),
        ),
        h('section', { class: 'card', 'aria-labelledby': 'running-title' }, h('h2', { id: 'running-title' }, 'Running sessions'), sessions.element),
        h('section', { class: 'card', 'aria-labelledby': 'commands-title' }, h('h2', { id: 'commands-title' }, 'Commands'), commands, answer),
        diagnostics.element,
        stopsCard,
        h('section', { class: 'card', 'aria-labelledby': 'log-title' }, h('h2', { id: 'log-title' }, 'OCPP message log'), log, h('div', { class: 'more' }, olderLog.button)),
      );
    }
  };

  ctx.subscribe(topics.chargers, (event) => {
    if (!point || event.data?.chargePointId !== id) return;
    applyChargerEvent(point, event);
    renderStatus();
  });
  ctx.subscribe(topics.adminSessions, (event) => {
    if (!event.type?.startsWith('session.')) return;
    const session = sessionOf(event);
    if (session.chargePointId !== id || (!sessions.get(session.id) && session.status !== 'active')) return;
    sessions.upsert(mergeSession(sessions.get(session.id), session)).classList.add('flash');
  });
  ctx.subscribe(topics.adminMeterOf(id), (event) => {
    const m = event.data || {};
    const at = m.sampledAt || event.at;
    power.push(at, m.powerW);
    energy.push(at, m.energyWh);
    meterText.textContent = `Connector ${m.connectorId}${m.transactionId ? `, transaction ${m.transactionId}` : ''}: ${formatPower(m.powerW)}, register ${formatEnergy(m.energyWh)} at ${formatTime(at)}.`;
  });
  ctx.subscribe(topics.adminOcppOf(id), (event) => {
    const m = event.data || {};
    // The charger's firmware and diagnostics transfers, as it reports them.
    const field = { FirmwareStatusNotification: 'firmware', DiagnosticsStatusNotification: 'diagnostics' }[m.action];
    // A stop may change no session (the processor keeps it a moment later).
    if (m.action === 'StopTransaction' && m.direction === 'in' && m.messageType === 'CALL') setTimeout(loadStops, 1000);
    if (point && field && m.direction === 'in' && m.messageType === 'CALL' && typeof m.payload?.status === 'string') {
      point[`${field}Status`] = m.payload.status;
      point[`${field}StatusAt`] = m.at || event.at;
      renderStatus();
      if (field === 'diagnostics') diagnostics.refresh();
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

function fileStatus(status, at) {
  if (!status) return '—';
  return [badge(FILE_STATUS_KINDS[status] || status, status), h('span', { class: 'muted' }, ` ${formatDateTime(at)}`)];
}

/** Firmware and diagnostics states, as the badges colour them. */
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
