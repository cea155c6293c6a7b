// Charging stations: searched on the server in any case (name, address), sorted,
// paged and exported as CSV, with live online status; create, edit, delete.
// Fed by GET /api/cms/stations (each row names its chargers, online as presence
// says), ocppd.chargers.status and ocppd.admin.cms.

import { badge, confirmDialog, formDialog, h, LiveTable, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime } from '/shared/format.js';
import { serverList } from './server-list.js';

export async function mount(root, ctx) {
  const chargersOf = (station) => station.chargers || [];

  const table = new LiveTable({
    caption: 'Charging stations',
    key: (s) => s.id,
    empty: 'No stations yet. Create one, then add charging points to it.',
    columns: [
      { label: 'Name', render: (s) => h('strong', {}, s.name) },
      { label: 'Address', render: (s) => s.address || h('span', { class: 'muted' }, '—') },
      {
        label: 'Status',
        render: (s) => {
          const mine = chargersOf(s);
          if (!mine.length) return badge('Unknown', 'No chargers');
          return mine.some((p) => p.online) ? badge('Online') : badge('Offline');
        },
      },
      {
        label: 'Chargers online',
        class: 'num',
        render: (s) => {
          const mine = chargersOf(s);
          return h('span', { 'data-field': 'online-count' }, `${mine.filter((p) => p.online).length} / ${mine.length}`);
        },
      },
      { label: 'Location', render: (s) => (s.latitude !== null && s.latitude !== undefined ? `${s.latitude}, ${s.longitude}` : '—') },
      { label: 'Updated', render: (s) => formatDateTime(s.updatedAt) },
      {
        label: 'Actions',
        class: 'num',
        render: (s) =>
          h(
            'div',
            { class: 'row-actions' },
            h('button', { type: 'button', 'aria-label': `Edit ${s.name}`, onclick: () => edit(s) }, 'Edit'),
            h('button', { type: 'button', 'aria-label': `Delete ${s.name}`, onclick: () => remove(s) }, 'Delete'),
          ),
      },
    ],
  });
  const search = h('input', { id: 's-q', name: 'q', type: 'search', placeholder: 'Name or address', autocomplete: 'off', maxlength: 100 });
  const list = serverList({
    ctx,
    label: 'stations',
    path: '/api/cms/stations',
    csvPath: '/api/cms/stations.csv',
    csvName: 'stations.csv',
    moreLabel: 'Show more stations',
    table,
    filters: [{ name: 'q', label: 'Search', input: search }],
    sorts: [
      ['created', 'Oldest first'],
      ['-created', 'Newest first'],
      ['name', 'Name A–Z'],
      ['-name', 'Name Z–A'],
    ],
  });
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Charging stations'), h('p', { class: 'muted' }, 'A station is a site; its charging points are the chargers there. Search finds any part of a name or address, in any case.')),
      h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'New station'),
    ),
    list.form,
    list.body,
  );
  // A written station as the list shows it: with the chargers the row knew.
  const withChargers = (saved) => ({ ...saved, chargers: table.get(saved.id)?.chargers || saved.chargers || [] });

  const number = (text, field) => {
    if (text === '') return null;
    const value = Number(text.replace(',', '.'));
    if (!Number.isFinite(value)) throw new Error(`${field}: enter decimal degrees such as 52.5200`);
    return value;
  };

  function edit(station) {
    formDialog({
      title: station ? `Edit station ${station.name}` : 'New station',
      submitLabel: station ? 'Save' : 'Create station',
      values: station ? { ...station, latitude: station.latitude ?? '', longitude: station.longitude ?? '' } : {},
      fields: [
        { name: 'name', label: 'Name', required: true },
        { name: 'address', label: 'Address', autocomplete: 'street-address' },
        { name: 'latitude', label: 'Latitude', inputmode: 'decimal', help: 'Decimal degrees, optional' },
        { name: 'longitude', label: 'Longitude', inputmode: 'decimal' },
      ],
      onSubmit: async (values) => {
        const body = {
          name: values.name,
          address: values.address || null,
          latitude: number(values.latitude, 'latitude'),
          longitude: number(values.longitude, 'longitude'),
        };
        const saved = station ? await ctx.api.put(`/api/cms/stations/${station.id}`, body) : await ctx.api.post('/api/cms/stations', body);
        table.upsert(withChargers(saved)).classList.add('flash');
        ctx.notify(station ? `Station ${saved.name} saved.` : `Station ${saved.name} created.`, 'ok');
      },
    });
  }

  async function remove(station) {
    if (!(await confirmDialog(`Delete the station ${station.name}?`))) return;
    try {
      await ctx.api.delete(`/api/cms/stations/${station.id}`);
      table.remove(station.id);
      ctx.notify(`Station ${station.name} deleted.`, 'ok');
    } catch (error) {
      ctx.notify(error.message, 'bad');
    }
  }

  // Which shown station holds a charger, from the rows (each lists its chargers).
  const stationOf = (chargePointId) => [...table.rows.values()].map((r) => r.data).find((st) => chargersOf(st).some((c) => c.chargePointId === chargePointId));
  const setCharger = (stationId, chargePointId, change) => {
    const station = table.get(stationId);
    if (!station) return;
    const others = chargersOf(station).filter((c) => c.chargePointId !== chargePointId);
    const chargers = change ? [...others, change].sort((a, b) => (a.chargePointId < b.chargePointId ? -1 : 1)) : others;
    table.upsert({ ...station, chargers });
  };

  ctx.subscribe(topics.chargers, (event) => {
    if (event.type !== 'charger.online' && event.type !== 'charger.offline') return;
    const chargePointId = event.data?.chargePointId;
    const station = stationOf(chargePointId);
    if (station) setCharger(station.id, chargePointId, { chargePointId, online: event.type === 'charger.online' });
  });
  ctx.subscribe(topics.adminCms, (event) => {
    const change = event.data || {};
    if (change.kind === 'station') {
      if (change.verb === 'deleted') table.remove(change.id);
      // Another operator's edit of a shown row; a new station shows on the next search.
      else if (change.data && (table.get(change.id) || change.verb === 'created')) table.upsert(withChargers(change.data)).classList.add('flash');
    } else if (change.kind === 'point') {
      const chargePointId = String(change.id);
      const before = stationOf(chargePointId);
      const was = before ? chargersOf(before).find((c) => c.chargePointId === chargePointId) : null;
      if (before) setCharger(before.id, chargePointId, null);
      if (change.verb !== 'deleted' && change.data?.stationId != null) {
        setCharger(change.data.stationId, chargePointId, { chargePointId, online: was ? was.online : Boolean(change.data.online) });
      }
    }
  });
  await ctx.keepLoaded(list.load);
}
