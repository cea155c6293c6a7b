// Charging stations: list with live online status, create, edit, delete.
// Fed by GET /api/cms/stations, GET /api/cms/points (which chargers a station
// has), ocppd.chargers.status and ocppd.admin.cms.

import { badge, confirmDialog, errorState, formDialog, h, LiveTable, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatDateTime } from '/shared/format.js';

export async function mount(root, ctx) {
  let points = new Map(); // chargePointId -> point
  const chargersOf = (station) => [...points.values()].filter((p) => p.stationId === station.id);

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
  const body = h('div', {}, loadingState());
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Charging stations'), h('p', { class: 'muted' }, 'A station is a site; its charging points are the chargers there.')),
      h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, 'New station'),
    ),
    body,
  );

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
        table.upsert(saved).classList.add('flash');
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

  const load = async () => {
    try {
      const [stations, pointList] = await Promise.all([ctx.api.all('/api/cms/stations'), ctx.api.all('/api/cms/points')]);
      points = new Map(pointList.map((p) => [p.chargePointId, p]));
      table.setRows(stations);
      replace(body, h('section', { class: 'card' }, table.element));
    } catch (error) {
      replace(body, errorState(error, load));
    }
  };

  const refreshStation = (stationId) => {
    if (stationId !== null && stationId !== undefined) table.patch(stationId, {});
  };

  ctx.subscribe(topics.chargers, (event) => {
    const point = points.get(event.data?.chargePointId);
    if (!point || (event.type !== 'charger.online' && event.type !== 'charger.offline')) return;
    point.online = event.type === 'charger.online';
    refreshStation(point.stationId);
  });
  ctx.subscribe(topics.adminCms, (event) => {
    const change = event.data || {};
    if (change.kind === 'station') {
      if (change.verb === 'deleted') table.remove(change.id);
      else if (change.data) table.upsert(change.data).classList.add('flash');
    } else if (change.kind === 'point') {
      const before = points.get(String(change.id));
      if (change.verb === 'deleted') points.delete(String(change.id));
      else if (change.data) points.set(change.data.chargePointId, change.data);
      refreshStation(before?.stationId);
      refreshStation(change.data?.stationId);
    }
  });
  await ctx.keepLoaded(load);
}
