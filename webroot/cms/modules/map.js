// The station map: every station with coordinates as a marker coloured by
// what its connectors can do now (available, occupied, faulted, unavailable,
// offline), live; the same as a list for reading, and the stations without
// coordinates named. Leaflet from npm (/vendor/leaflet/); tiles from the
// server in [web] map_tiles (GET /api/cms/map), or none: the markers on a
// plain background. Fed by GET /api/stations (every page) and
// ocppd.chargers.status; ocppd.admin.cms (a station or point changed, a
// charger given a station) reloads.

import * as L from '/vendor/leaflet/dist/leaflet-src.esm.js';

import { badge, errorState, h, LiveTable, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { formatCount, locale } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.map.*" of the message catalogue (cms/i18n/); a state's words are "cms.map.states.STATE".
const TEXT = messages('cms.map');

const STATES = {
  available: { color: '#1b6e3a', badge: 'Available' },
  occupied: { color: '#0b5cad', badge: 'Charging' },
  faulted: { color: '#b42318', badge: 'Faulted' },
  unavailable: { color: '#8a5300', badge: 'Reserved' },
  offline: { color: '#8d96a3', badge: 'Offline' },
};
const OCCUPIED = new Set(['Preparing', 'Charging', 'SuspendedEV', 'SuspendedEVSE', 'Finishing', 'Reserved']);
// Beyond that a map of markers is of no use anyway.
const MAX_STATIONS = 10000;

/** Leaflet's sheet and ours, once per page (no <style>: the CSP allows sheets from 'self'). */
function styleSheets() {
  for (const href of ['/vendor/leaflet/dist/leaflet.css', '/cms/map.css']) {
    if (!document.querySelector(`link[href="${href}"]`)) {
      document.head.append(h('link', { rel: 'stylesheet', href }));
    }
  }
}

/** What a station's connectors can do now, and the counts behind it. */
export function stationState(station) {
  const counts = { available: 0, occupied: 0, faulted: 0, unavailable: 0, offline: 0 };
  for (const charger of station.chargers || []) {
    const connectors = charger.connectors?.length ? charger.connectors : [{ status: 'Unavailable' }];
    for (const connector of connectors) {
      if (!charger.online) counts.offline += 1;
      else if (connector.status === 'Available') counts.available += 1;
      else if (OCCUPIED.has(connector.status)) counts.occupied += 1;
      else if (connector.status === 'Faulted') counts.faulted += 1;
      else counts.unavailable += 1;
    }
  }
  const total = Object.values(counts).reduce((a, b) => a + b, 0);
  const state = ['available', 'occupied', 'faulted', 'unavailable'].find((s) => counts[s] > 0) || 'offline';
  return { state, counts, total };
}

const stateName = (state) => TEXT.states[state];

function summary({ counts, total }) {
  if (!total) return TEXT.noChargers;
  return TEXT.available({ count: total, available: formatCount(counts.available), total: formatCount(total) });
}

/** Decimal degrees to four places, in the reader's number format. */
function degrees(value) {
  return new Intl.NumberFormat(locale(), { minimumFractionDigits: 4, maximumFractionDigits: 4 }).format(value);
}

const hasPlace = (s) => s.latitude !== null && s.latitude !== undefined && s.longitude !== null && s.longitude !== undefined;

export async function mount(root, ctx) {
  styleSheets();
  const stations = new Map(); // id -> station as /api/stations shows it
  const markers = new Map(); // id -> Leaflet circle marker
  const mapBox = h('div', { class: 'station-map', role: 'region', 'aria-label': TEXT.mapLabel });
  const legend = h(
    'ul',
    { class: 'map-legend', 'aria-label': TEXT.legend },
    Object.keys(STATES).map((key) => h('li', {}, h('span', { class: `map-dot map-dot--${key}`, 'aria-hidden': 'true' }), stateName(key))),
  );
  const unplaced = h('p', { class: 'muted', 'data-field': 'unplaced' });
  const table = new LiveTable({
    caption: TEXT.caption,
    key: (s) => s.id,
    empty: TEXT.empty,
    columns: [
      { label: TEXT.station, render: (s) => h('strong', {}, s.name) },
      {
        label: TEXT.now,
        render: (s) => {
          const { state, total } = stationState(s);
          return total ? badge(STATES[state].badge, stateName(state)) : badge('Unknown', TEXT.noChargers);
        },
      },
      { label: TEXT.connectors, render: (s) => h('span', { 'data-field': 'availability' }, summary(stationState(s))) },
      { label: TEXT.chargers, render: (s) => (s.chargers.length ? s.chargers.map((c, i) => [i ? ', ' : '', h('a', { href: `#/points/${encodeURIComponent(c.chargePointId)}` }, c.chargePointId)]) : '—') },
      { label: TEXT.place, render: (s) => (hasPlace(s) ? TEXT.coordinates(degrees(s.latitude), degrees(s.longitude)) : h('span', { class: 'muted' }, TEXT.notOnMap)) },
    ],
  });
  const body = h('div', {}, loadingState());
  replace(
    root,
    h('div', { class: 'page-head' }, h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro))),
    body,
  );
  const content = h(
    'div',
    {},
    h('section', { class: 'card' }, mapBox, legend, unplaced),
    h('section', { class: 'card' }, h('div', { class: 'card-head' }, h('h2', {}, TEXT.stations)), table.element),
  );

  let map = null;
  let fitted = false;
  const setUp = (settings) => {
    replace(body, content);
    map = L.map(mapBox, { attributionControl: true, zoomControl: false, worldCopyJump: true }).setView([20, 0], 2);
    // Leaflet's own zoom buttons are titled in English: ours in the reader's words.
    L.control.zoom({ zoomInTitle: TEXT.zoomIn, zoomOutTitle: TEXT.zoomOut }).addTo(map);
    if (settings.tiles) {
      const layer = L.tileLayer(settings.tiles, { maxZoom: 19 });
      // Leaflet writes the credit as HTML: ours is the operator's text, escaped.
      layer.options.attribution = h('span', {}, settings.attribution || '').innerHTML;
      layer.addTo(map);
      mapBox.dataset.tiles = 'on';
    } else {
      mapBox.classList.add('station-map--plain');
      mapBox.dataset.tiles = 'off';
    }
    map.attributionControl.setPrefix('Leaflet');
    const resize = new ResizeObserver(() => map.invalidateSize());
    resize.observe(mapBox);
    ctx.onDispose(() => {
      resize.disconnect();
      map.remove();
    });
  };

  const popup = (s) => {
    const info = stationState(s);
    return h(
      'div',
      { class: 'map-popup' },
      h('p', {}, h('strong', {}, s.name)),
      s.address ? h('p', {}, s.address) : null,
      h('p', {}, TEXT.stateSummary(stateName(info.state), summary(info))),
      h('p', {}, s.chargers.map((c, i) => [i ? ', ' : '', h('a', { href: `#/points/${encodeURIComponent(c.chargePointId)}` }, c.chargePointId)])),
    );
  };

  const draw = (s) => {
    const old = markers.get(s.id);
    if (!hasPlace(s)) {
      if (old) {
        old.remove();
        markers.delete(s.id);
      }
      return;
    }
    const { state } = stationState(s);
    const style = { radius: 10, weight: 2, color: '#ffffff', fillColor: STATES[state].color, fillOpacity: 0.95 };
    let marker = old;
    if (marker) {
      marker.setLatLng([s.latitude, s.longitude]).setStyle(style);
    } else {
      marker = L.circleMarker([s.latitude, s.longitude], style).addTo(map);
      markers.set(s.id, marker);
    }
    // Leaflet takes an element as is (a string would be parsed as HTML).
    marker.bindTooltip(h('span', {}, TEXT.tooltip(s.name, stateName(state))));
    marker.bindPopup(() => popup(stations.get(s.id) || s));
    const path = marker.getElement();
    if (path) {
      path.setAttribute('data-station', String(s.id));
      path.setAttribute('data-state', state);
      path.setAttribute('aria-label', TEXT.markerLabel(s.name, stateName(state), summary(stationState(s))));
    }
  };

  const show = (s) => {
    stations.set(s.id, s);
    draw(s);
    table.upsert(s, { atEnd: true });
  };

  const load = async () => {
    try {
      const [settings, found] = await Promise.all([ctx.api.get('/api/cms/map'), allStations()]);
      if (!map) setUp(settings);
      for (const id of [...markers.keys()]) {
        if (!found.some((s) => s.id === id)) {
          markers.get(id).remove();
          markers.delete(id);
        }
      }
      stations.clear();
      table.setRows([]);
      for (const s of found) show(s);
      const away = found.filter((s) => !hasPlace(s));
      unplaced.textContent = away.length ? TEXT.unplaced(new Intl.ListFormat(locale()).format(away.map((s) => s.name))) : '';
      const placed = found.filter(hasPlace);
      if (placed.length && !fitted) {
        map.fitBounds(L.latLngBounds(placed.map((s) => [s.latitude, s.longitude])).pad(0.2), { maxZoom: 14 });
        fitted = true;
      }
      mapBox.dataset.markers = String(markers.size);
    } catch (error) {
      if (!map) replace(body, errorState(error, load));
      else ctx.notify(TEXT.updateFailed(error.message || error), 'error');
    }
  };

  const allStations = () => ctx.api.all('/api/stations', {}, { max: MAX_STATIONS });

  /** Apply a charger's change to the station holding it (one in none is not on the map). */
  const apply = (chargePointId, change) => {
    for (const s of stations.values()) {
      const charger = s.chargers.find((c) => c.chargePointId === chargePointId);
      if (!charger) continue;
      change(charger);
      show({ ...s, chargers: [...s.chargers] });
      return;
    }
  };

  let timer = null;
  const reloadSoon = () => {
    clearTimeout(timer);
    timer = setTimeout(load, 1000);
  };
  ctx.onDispose(() => clearTimeout(timer));
  ctx.subscribe(topics.chargers, (event) => {
    const data = event.data || {};
    if (event.type === 'charger.online' || event.type === 'charger.offline') {
      apply(data.chargePointId, (c) => {
        c.online = event.type === 'charger.online';
      });
    } else if (event.type === 'connector.status') {
      apply(data.chargePointId, (c) => {
        // A status comes from a connected charger.
        c.online = true;
        const others = c.connectors.filter((k) => k.connectorId !== data.connectorId);
        if (data.connectorId > 0) others.push({ connectorId: data.connectorId, status: data.status, errorCode: data.errorCode });
        c.connectors = others.sort((a, b) => a.connectorId - b.connectorId);
      });
    }
  });
  ctx.subscribe(topics.adminCms, reloadSoon);
  await ctx.keepLoaded(load);
}
