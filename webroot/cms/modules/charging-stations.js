// Charging stations: searched on the server in any case (name, address), sorted,
// paged and exported as CSV, with live online status; create, edit, delete.
// Fed by GET /api/cms/stations (each row names its chargers, online as presence
// says), ocppd.chargers.status and ocppd.admin.cms.

import { badge, confirmDialog, formDialog, h, LiveTable, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatCount, formatDateTime, locale, separators } from '/shared/format.js';
import { messages } from '/shared/i18n.js';
import { serverList } from './server-list.js';

// "cms.stations.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.stations');

/** Decimal degrees in the reader's number format ("52,52" in German). */
function degrees(value, digits = 0) {
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: digits, maximumFractionDigits: 6 }).format(value);
}

/** Degrees as a person would type them back, with their decimal mark ("52,52" in German); '' for none. */
function degreesInput(value) {
  return value === null || value === undefined ? '' : String(value).replace('.', separators().decimal);
}

export async function mount(root, ctx) {
  const chargersOf = (station) => station.chargers || [];

  const table = new LiveTable({
    caption: TEXT.title,
    key: (s) => s.id,
    empty: TEXT.empty,
    columns: [
      { label: TEXT.name, render: (s) => h('strong', {}, s.name) },
      { label: TEXT.address, render: (s) => s.address || h('span', { class: 'muted' }, '—') },
      {
        label: TEXT.status,
        render: (s) => {
          const mine = chargersOf(s);
          if (!mine.length) return badge('Unknown', TEXT.noChargers);
          return mine.some((p) => p.online) ? badge('Online') : badge('Offline');
        },
      },
      {
        label: TEXT.chargersOnline,
        class: 'num',
        render: (s) => {
          const mine = chargersOf(s);
          return h('span', { 'data-field': 'online-count' }, `${formatCount(mine.filter((p) => p.online).length)} / ${formatCount(mine.length)}`);
        },
      },
      { label: TEXT.location, render: (s) => (s.latitude !== null && s.latitude !== undefined ? TEXT.coordinates(degrees(s.latitude), degrees(s.longitude)) : '—') },
      { label: TEXT.updated, render: (s) => formatDateTime(s.updatedAt) },
      {
        label: TEXT.actions,
        class: 'num',
        render: (s) =>
          h(
            'div',
            { class: 'row-actions' },
            h('button', { type: 'button', 'aria-label': TEXT.editNamed(s.name), onclick: () => edit(s) }, TEXT.edit),
            h('button', { type: 'button', 'aria-label': TEXT.deleteNamed(s.name), onclick: () => remove(s) }, TEXT.delete),
          ),
      },
    ],
  });
  const search = h('input', { id: 's-q', name: 'q', type: 'search', placeholder: TEXT.searchHint, autocomplete: 'off', maxlength: 100 });
  const list = serverList({
    ctx,
    label: 'stations',
    title: TEXT.listName,
    path: '/api/cms/stations',
    csvPath: '/api/cms/stations.csv',
    csvName: 'stations.csv',
    moreLabel: TEXT.more,
    table,
    filters: [{ name: 'q', label: TEXT.search, input: search }],
    sorts: [
      ['created', TEXT.sorts.oldest],
      ['-created', TEXT.sorts.newest],
      ['name', TEXT.sorts.nameAz],
      ['-name', TEXT.sorts.nameZa],
    ],
  });
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro)),
      h('button', { type: 'button', class: 'primary', onclick: () => edit(null) }, TEXT.new),
    ),
    list.form,
    list.body,
  );
  // A written station as the list shows it: with the chargers the row knew.
  const withChargers = (saved) => ({ ...saved, chargers: table.get(saved.id)?.chargers || saved.chargers || [] });

  const number = (text, field) => {
    if (text === '') return null;
    const value = Number(text.replace(',', '.'));
    if (!Number.isFinite(value)) throw new Error(`${field}: ${TEXT.badDegrees(degrees(52.52, 4))}`);
    return value;
  };

  function edit(station) {
    formDialog({
      title: station ? TEXT.editTitle(station.name) : TEXT.new,
      submitLabel: station ? TEXT.save : TEXT.create,
      values: station ? { ...station, latitude: degreesInput(station.latitude), longitude: degreesInput(station.longitude) } : {},
      fields: [
        { name: 'name', label: TEXT.name, required: true },
        { name: 'address', label: TEXT.address, autocomplete: 'street-address' },
        { name: 'latitude', label: TEXT.latitude, inputmode: 'decimal', help: TEXT.latitudeHelp },
        { name: 'longitude', label: TEXT.longitude, inputmode: 'decimal' },
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
        ctx.notify(station ? TEXT.saved(saved.name) : TEXT.created(saved.name), 'ok');
      },
    });
  }

  async function remove(station) {
    if (!(await confirmDialog(TEXT.confirmDelete(station.name)))) return;
    try {
      await ctx.api.delete(`/api/cms/stations/${station.id}`);
      table.remove(station.id);
      ctx.notify(TEXT.deleted(station.name), 'ok');
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
