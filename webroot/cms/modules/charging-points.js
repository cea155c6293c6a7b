// Charging points: searched on the server in any case (id, vendor, model, serial,
// firmware), filtered by station and registration, sorted, paged and exported as CSV,
// with live status and connector availability; create, edit, assign a station and a
// tariff, set the authorization key.
// Fed by GET /api/cms/points, /stations, /tariffs, ocppd.chargers.status and ocppd.admin.cms.

import { applyChargerEvent, staleOnlineNote } from '/shared/chargers.js';
import { badge, confirmDialog, formDialog, h, LiveTable, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime, formatPerKwh } from '/shared/format.js';
import { TEXT as SESSION_TEXT } from '/shared/sessions.js';
import { serverList } from './server-list.js';

const REGISTRATION = ['Accepted', 'Pending', 'Rejected'];

/**
 * A typed power in kW ("22", "7,4") -> integer W, null when empty; integer
 * arithmetic (no 7.4 * 1000 = 7400.000000001). Throws for anything else.
 */
export function parseKilowatts(text) {
  const cleaned = String(text ?? '').trim().replace(',', '.');
  if (!cleaned) return null;
  const match = /^(\d{1,4})(?:\.(\d{1,3}))?$/.exec(cleaned);
  const watts = match ? Number(match[1]) * 1000 + Number((match[2] || '').padEnd(3, '0')) : 0;
  if (!watts || watts > 1_000_000) throw new Error('maxPowerKw: a power in kW, from 0.001 to 1000, or empty');
  return watts;
}

export function connectorBadges(point) {
  const shown = (point.connectors || []).filter((c) => c.connectorId !== 0);
  if (!shown.length) return h('span', { class: 'muted' }, 'None reported');
  return h(
    'span',
    { class: 'connectors', 'data-field': 'connectors' },
    shown.map((c) => badge(c.status, `${c.connectorId}: ${c.status || 'Unknown'}`)),
  );
}

export async function mount(root, ctx) {
  let stations = new Map();
  let tariffs = new Map();

  const table = new LiveTable({
    caption: 'Charging points',
    key: (p) => p.chargePointId,
    empty: 'No charging points yet. Add one with the id and key the charger will use.',
    onRowClick: (p) => ctx.navigate(`/points/${encodeURIComponent(p.chargePointId)}`),
    columns: [
      { label: 'Charge point', render: (p) => h('a', { href: `#/points/${encodeURIComponent(p.chargePointId)}` }, p.chargePointId) },
      { label: 'Status', render: (p) => h('span', { 'data-field': 'online' }, p.online ? badge('Online') : badge('Offline'), staleOnlineNote(p)) },
      { label: 'Connectors', render: (p) => connectorBadges(p) },
      { label: 'Station', render: (p) => stations.get(p.stationId)?.name || h('span', { class: 'muted' }, '—') },
      {
        label: 'Tariff',
        render: (p) => {
          const t = tariffs.get(p.tariffId);
          return t ? `${t.name} (${formatPerKwh(t.pricePerKwh, t.currency)})` : h('span', { class: 'muted' }, 'None');
        },
      },
      { label: 'Registration', render: (p) => badge(p.registrationStatus) },
      { label: 'Key', render: (p) => (p.authorizationRequired ? 'Set' : h('span', { class: 'muted' }, 'None')) },
      { label: 'Last seen', render: (p) => formatDateTime(p.lastSeenAt) },
      {
        label: 'Actions',
        class: 'num',
        render: (p) =>
          h(
            'div',
            { class: 'row-actions' },
            h('button', { type: 'button', 'aria-label': `Edit ${p.chargePointId}`, onclick: () => edit(p) }, 'Edit'),
            h('button', { type: 'button', 'aria-label': `Delete ${p.chargePointId}`, onclick: () => remove(p) }, 'Delete'),
          ),
      },
    ],
  });
  // Disabled until the stations and tariffs to choose from are loaded.
  const newButton = h('button', { type: 'button', class: 'primary', disabled: true, onclick: () => edit(null) }, 'New charging point');
  const inputs = {
    q: h('input', { id: 'p-q', name: 'q', type: 'search', placeholder: 'Id, vendor, model or serial', autocomplete: 'off', maxlength: 100 }),
    stationId: h('select', { id: 'p-station', name: 'stationId' }, h('option', { value: '' }, 'All stations')),
    registrationStatus: h('select', { id: 'p-registration', name: 'registrationStatus' }, h('option', { value: '' }, 'Any'), REGISTRATION.map((r) => h('option', { value: r }, r))),
  };
  const list = serverList({
    ctx,
    label: 'points',
    path: '/api/cms/points',
    csvPath: '/api/cms/points.csv',
    csvName: 'charging-points.csv',
    moreLabel: 'Show more charging points',
    table,
    filters: [
      { name: 'q', label: 'Search', input: inputs.q },
      { name: 'stationId', label: 'Station', input: inputs.stationId },
      { name: 'registrationStatus', label: 'Registration', input: inputs.registrationStatus },
    ],
    sorts: [
      ['chargePointId', 'Id A–Z'],
      ['-chargePointId', 'Id Z–A'],
      ['-lastSeen', 'Last seen first'],
      ['-created', 'Newest first'],
      ['created', 'Oldest first'],
    ],
  });
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Charging points'), h('p', { class: 'muted' }, 'Status and connectors update live. Search finds any part of an id, vendor, model or serial number, in any case.')),
      newButton,
    ),
    list.form,
    list.body,
  );
  const stationOptions = () => {
    const chosen = inputs.stationId.value;
    replace(inputs.stationId, h('option', { value: '' }, 'All stations'), [...stations.values()].map((st) => h('option', { value: String(st.id) }, st.name)));
    inputs.stationId.value = chosen;
  };

  function edit(point) {
    const none = { value: '', label: '— none —' };
    const fields = [
      point
        ? null
        : { name: 'chargePointId', label: 'Charge point id', required: true, help: 'Exactly as the charger puts it in its URL' },
      { name: 'stationId', label: 'Station', type: 'select', options: [none, ...[...stations.values()].map((s) => ({ value: String(s.id), label: s.name }))] },
      { name: 'tariffId', label: 'Tariff', type: 'select', options: [none, ...[...tariffs.values()].map((t) => ({ value: String(t.id), label: `${t.name} (${formatPerKwh(t.pricePerKwh, t.currency)})` }))] },
      { name: 'registrationStatus', label: 'Registration', type: 'select', options: REGISTRATION.map((r) => ({ value: r, label: r })) },
      { name: 'connectorType', label: 'Plug', type: 'select', options: [none, ...Object.entries(SESSION_TEXT.plugs).map(([value, label]) => ({ value, label }))], help: 'Shown to drivers before they start.' },
      { name: 'maxPowerKw', label: 'Maximum power (kW)', inputmode: 'decimal', help: 'Shown to drivers; leave empty if unknown.' },
      {
        name: 'authorizationKey',
        label: point ? 'New authorization key' : 'Authorization key',
        type: 'password',
        autocomplete: 'new-password',
        help: point
          ? 'At least 16 characters; leave empty to keep the current key.'
          : 'The HTTP Basic password the charger sends: at least 16 characters, best random.',
      },
      point ? null : { name: 'noKey', label: 'No authentication (the charger sends no key)', type: 'checkbox' },
    ].filter(Boolean);
    formDialog({
      title: point ? `Edit ${point.chargePointId}` : 'New charging point',
      submitLabel: point ? 'Save' : 'Create charging point',
      values: point
        ? {
            stationId: String(point.stationId ?? ''),
            tariffId: String(point.tariffId ?? ''),
            registrationStatus: point.registrationStatus,
            connectorType: point.connectorType ?? '',
            maxPowerKw: point.maxPowerW ? String(point.maxPowerW / 1000) : '',
          }
        : { registrationStatus: 'Accepted' },
      fields,
      onSubmit: async (values) => {
        const body = {
          stationId: values.stationId ? Number(values.stationId) : null,
          tariffId: values.tariffId ? Number(values.tariffId) : null,
          registrationStatus: values.registrationStatus,
          connectorType: values.connectorType || null,
          maxPowerW: parseKilowatts(values.maxPowerKw),
        };
        if (point) {
          if (values.authorizationKey) body.authorizationKey = values.authorizationKey;
        } else {
          body.chargePointId = values.chargePointId;
          if (!values.noKey && !values.authorizationKey) throw new Error('authorizationKey: set a key, or tick “No authentication”');
          body.authorizationKey = values.noKey ? null : values.authorizationKey;
        }
        const path = point ? `/api/cms/points/${encodeURIComponent(point.chargePointId)}` : '/api/cms/points';
        const saved = point ? await ctx.api.put(path, body) : await ctx.api.post(path, body);
        table.upsert(saved).classList.add('flash');
        ctx.notify(`${saved.chargePointId} saved.`, 'ok');
      },
    });
  }

  async function remove(point) {
    if (!(await confirmDialog(`Delete the charging point ${point.chargePointId}?`))) return;
    try {
      await ctx.api.delete(`/api/cms/points/${encodeURIComponent(point.chargePointId)}`);
      table.remove(point.chargePointId);
      ctx.notify(`${point.chargePointId} deleted.`, 'ok');
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
