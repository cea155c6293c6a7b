// Charging points: searched on the server in any case (id, vendor, model, serial,
// firmware), filtered by station and registration, sorted, paged and exported as CSV,
// with live status and connector availability; create, edit, assign a station and a
// tariff, set the authorization key.
// Fed by GET /api/cms/points, /stations, /tariffs, ocppd.chargers.status and ocppd.admin.cms.

import { applyChargerEvent, staleOnlineNote, statusText } from '/shared/chargers.js';
import { badge, confirmDialog, formDialog, h, LiveTable, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime, formatPerKwh, separators } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { TEXT as SESSION_TEXT } from '/shared/sessions.js';
import { serverList } from './server-list.js';

// "cms.points.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.points');

// OCPP's registration statuses; their words are "cms.points.registrations.*".
const REGISTRATION = ['Accepted', 'Pending', 'Rejected'];

/** A registration status in the reader's words (as it came if unknown). */
export function registrationText(status) {
  return TEXT.registrations[status] ?? status;
}

/**
 * A typed power in kW ("22", "7,4") -> integer W, null when empty; integer
 * arithmetic (no 7.4 * 1000 = 7400.000000001). Throws for anything else.
 */
export function parseKilowatts(text) {
  const cleaned = String(text ?? '').trim().replace(',', '.');
  if (!cleaned) return null;
  const match = /^(\d{1,4})(?:\.(\d{1,3}))?$/.exec(cleaned);
  const watts = match ? Number(match[1]) * 1000 + Number((match[2] || '').padEnd(3, '0')) : 0;
  if (!watts || watts > 1_000_000) throw new Error(`maxPowerKw: ${TEXT.badPower}`);
  return watts;
}

export function connectorBadges(point) {
  const shown = (point.connectors || []).filter((c) => c.connectorId !== 0);
  if (!shown.length) return h('span', { class: 'muted' }, TEXT.noneReported);
  return h(
    'span',
    { class: 'connectors', 'data-field': 'connectors' },
    shown.map((c) => badge(c.status, TEXT.connector(c.connectorId, statusText(c.status)))),
  );
}

export async function mount(root, ctx) {
  let stations = new Map();
  let tariffs = new Map();

  const table = new LiveTable({
    caption: TEXT.title,
    key: (p) => p.chargePointId,
    empty: TEXT.empty,
    onRowClick: (p) => ctx.navigate(`/points/${encodeURIComponent(p.chargePointId)}`),
    columns: [
      { label: TEXT.chargePoint, render: (p) => h('a', { href: `#/points/${encodeURIComponent(p.chargePointId)}` }, p.chargePointId) },
      { label: TEXT.status, render: (p) => h('span', { 'data-field': 'online' }, p.online ? badge('Online') : badge('Offline'), staleOnlineNote(p)) },
      { label: TEXT.connectors, render: (p) => connectorBadges(p) },
      { label: TEXT.station, render: (p) => stations.get(p.stationId)?.name || h('span', { class: 'muted' }, '—') },
      {
        label: TEXT.tariff,
        render: (p) => {
          const t = tariffs.get(p.tariffId);
          return t ? `${t.name} (${formatPerKwh(t.pricePerKwh, t.currency)})` : h('span', { class: 'muted' }, TEXT.none);
        },
      },
      { label: TEXT.registration, render: (p) => badge(p.registrationStatus, registrationText(p.registrationStatus)) },
      { label: TEXT.key, render: (p) => (p.authorizationRequired ? TEXT.keySet : h('span', { class: 'muted' }, TEXT.none)) },
      { label: TEXT.lastSeen, render: (p) => formatDateTime(p.lastSeenAt) },
      {
        label: TEXT.actions,
        class: 'num',
        render: (p) =>
          h(
            'div',
            { class: 'row-actions' },
            h('button', { type: 'button', 'aria-label': TEXT.editNamed(p.chargePointId), onclick: () => edit(p) }, TEXT.edit),
            h('button', { type: 'button', 'aria-label': TEXT.deleteNamed(p.chargePointId), onclick: () => remove(p) }, TEXT.delete),
          ),
      },
    ],
  });
  // Disabled until the stations and tariffs to choose from are loaded.
  const newButton = h('button', { type: 'button', class: 'primary', disabled: true, onclick: () => edit(null) }, TEXT.new);
  const inputs = {
    q: h('input', { id: 'p-q', name: 'q', type: 'search', placeholder: TEXT.searchHint, autocomplete: 'off', maxlength: 100 }),
    stationId: h('select', { id: 'p-station', name: 'stationId' }, h('option', { value: '' }, TEXT.allStations)),
    registrationStatus: h('select', { id: 'p-registration', name: 'registrationStatus' }, h('option', { value: '' }, TEXT.any), REGISTRATION.map((r) => h('option', { value: r }, registrationText(r)))),
  };
  const list = serverList({
    ctx,
    label: 'points',
    title: TEXT.listName,
    path: '/api/cms/points',
    csvPath: '/api/cms/points.csv',
    csvName: 'charging-points.csv',
    moreLabel: TEXT.more,
    table,
    filters: [
      { name: 'q', label: TEXT.search, input: inputs.q },
      { name: 'stationId', label: TEXT.station, input: inputs.stationId },
      { name: 'registrationStatus', label: TEXT.registration, input: inputs.registrationStatus },
    ],
    sorts: [
      ['chargePointId', TEXT.sorts.idAz],
      ['-chargePointId', TEXT.sorts.idZa],
      ['-lastSeen', TEXT.sorts.lastSeen],
      ['-created', TEXT.sorts.newest],
      ['created', TEXT.sorts.oldest],
    ],
  });
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro)),
      newButton,
    ),
    list.form,
    list.body,
  );
  const stationOptions = () => {
    const chosen = inputs.stationId.value;
    replace(inputs.stationId, h('option', { value: '' }, TEXT.allStations), [...stations.values()].map((st) => h('option', { value: String(st.id) }, st.name)));
    inputs.stationId.value = chosen;
  };

  function edit(point) {
    const none = { value: '', label: TEXT.noneChoice };
    const fields = [
      point
        ? null
        : { name: 'chargePointId', label: TEXT.fields.id, required: true, help: TEXT.fields.idHelp },
      { name: 'stationId', label: TEXT.station, type: 'select', options: [none, ...[...stations.values()].map((s) => ({ value: String(s.id), label: s.name }))] },
      { name: 'tariffId', label: TEXT.tariff, type: 'select', options: [none, ...[...tariffs.values()].map((t) => ({ value: String(t.id), label: `${t.name} (${formatPerKwh(t.pricePerKwh, t.currency)})` }))] },
      { name: 'registrationStatus', label: TEXT.registration, type: 'select', options: REGISTRATION.map((r) => ({ value: r, label: registrationText(r) })) },
      { name: 'connectorType', label: TEXT.fields.plug, type: 'select', options: [none, ...Object.entries(SESSION_TEXT.plugs).map(([value, label]) => ({ value, label }))], help: TEXT.fields.plugHelp },
      { name: 'maxPowerKw', label: TEXT.fields.power, inputmode: 'decimal', help: TEXT.fields.powerHelp },
      { name: 'bootClosesSessions', label: TEXT.fields.bootCloses, type: 'checkbox', help: TEXT.fields.bootClosesHelp },
      {
        name: 'authorizationKey',
        label: point ? TEXT.fields.newKey : TEXT.fields.key,
        type: 'password',
        autocomplete: 'new-password',
        help: point
          ? TEXT.fields.newKeyHelp
          : TEXT.fields.keyHelp,
      },
      point ? null : { name: 'noKey', label: TEXT.fields.noKey, type: 'checkbox' },
    ].filter(Boolean);
    formDialog({
      title: point ? TEXT.editNamed(point.chargePointId) : TEXT.new,
      submitLabel: point ? TEXT.save : TEXT.create,
      values: point
        ? {
            stationId: String(point.stationId ?? ''),
            tariffId: String(point.tariffId ?? ''),
            registrationStatus: point.registrationStatus,
            connectorType: point.connectorType ?? '',
            // As the reader would type it back ("7,4" in German).
            maxPowerKw: point.maxPowerW ? String(point.maxPowerW / 1000).replace('.', separators().decimal) : '',
            bootClosesSessions: point.bootClosesSessions !== false,
          }
        : { registrationStatus: 'Accepted', bootClosesSessions: true },
      fields,
      onSubmit: async (values) => {
        const body = {
          stationId: values.stationId ? Number(values.stationId) : null,
          tariffId: values.tariffId ? Number(values.tariffId) : null,
          registrationStatus: values.registrationStatus,
          connectorType: values.connectorType || null,
          maxPowerW: parseKilowatts(values.maxPowerKw),
          bootClosesSessions: values.bootClosesSessions,
        };
        if (point) {
          if (values.authorizationKey) body.authorizationKey = values.authorizationKey;
        } else {
          body.chargePointId = values.chargePointId;
          if (!values.noKey && !values.authorizationKey) throw new Error(`authorizationKey: ${TEXT.needKey}`);
          body.authorizationKey = values.noKey ? null : values.authorizationKey;
        }
        const path = point ? `/api/cms/points/${encodeURIComponent(point.chargePointId)}` : '/api/cms/points';
        const saved = point ? await ctx.api.put(path, body) : await ctx.api.post(path, body);
        table.upsert(saved).classList.add('flash');
        ctx.notify(TEXT.saved(saved.chargePointId), 'ok');
      },
    });
  }

  async function remove(point) {
    if (!(await confirmDialog(TEXT.confirmDelete(point.chargePointId)))) return;
    try {
      await ctx.api.delete(`/api/cms/points/${encodeURIComponent(point.chargePointId)}`);
      table.remove(point.chargePointId);
      ctx.notify(TEXT.deleted(point.chargePointId), 'ok');
    } catch (error) {
      ctx.notify(error.message, 'bad');
    }
  }

  // The names of stations and tariffs to show and choose from (a network's few).
  const loadChoices = async () => {
    const [stationList, tariffList] = await Promise.all([ctx.api.all('/api/cms/stations'), ctx.api.all('/api/cms/tariffs')]);
    stations = new Map(stationList.map((st) => [st.id, st]));
    tariffs = new Map(tariffList.map((t) => [t.id, t]));
    stationOptions();
    newButton.disabled = false;
  };
  const load = async () => {
    try {
      await loadChoices();
    } catch (error) {
      ctx.notify(error.message, 'bad');
    }
    await list.load();
  };

  ctx.subscribe(topics.chargers, (event) => {
    const id = event.data?.chargePointId;
    const point = table.get(id);
    if (!point) return;
    const next = applyChargerEvent({ ...point, connectors: (point.connectors || []).map((c) => ({ ...c })) }, event);
    table.upsert(next).classList.add('flash');
  });
  ctx.subscribe(topics.adminCms, (event) => {
    const change = event.data || {};
    if (change.kind === 'point') {
      if (change.verb === 'deleted') table.remove(change.id);
      else if (change.data) table.upsert(change.data).classList.add('flash');
    } else if (change.kind === 'station' || change.kind === 'tariff') {
      const map = change.kind === 'station' ? stations : tariffs;
      if (change.verb === 'deleted') map.delete(change.id);
      else if (change.data) map.set(change.data.id, change.data);
      if (change.kind === 'station') stationOptions();
      table.setRows([...table.rows.values()].map((r) => r.data));
    }
  });
  await ctx.keepLoaded(load);
}
