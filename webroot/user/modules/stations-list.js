// Stations near the customer: each with its chargers' live availability and
// whether the station is online. Fed by GET /api/stations and ocppd.chargers.status.

import { badge, emptyState, errorState, h, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { applyChargerEvent, chargerSummary } from '/shared/chargers.js';

export async function mount(root, ctx) {
  const search = h('input', { id: 'station-search', type: 'search', placeholder: 'Name or address', autocomplete: 'off' });
  const list = h('div', { class: 'station-list', 'aria-live': 'polite' });
  const body = h('div', {}, loadingState());
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, 'Stations'), h('p', { class: 'muted' }, 'Availability updates live.')),
      h('div', { class: 'field' }, h('label', { for: 'station-search' }, 'Find a station'), search),
    ),
    body,
  );

  let stations = [];
  const cards = new Map();

  const render = (station) => {
    const available = station.chargers.filter((c) => c.available).length;
    const card = h(
      'article',
      { class: 'card station', 'data-station': station.id, 'aria-labelledby': `station-${station.id}` },
      h(
        'div',
        { class: 'card-head' },
        h('h2', { id: `station-${station.id}` }, station.name),
        station.online ? badge('Online') : badge('Offline'),
      ),
      h('p', { class: 'address' }, station.address || 'No address given'),
      h(
        'p',
        { class: 'availability', 'data-available': available },
        station.chargers.length
          ? `${available} of ${station.chargers.length} charger${station.chargers.length === 1 ? '' : 's'} available`
          : 'No chargers yet',
      ),
      station.chargers.map((charger) =>
        h(
          'div',
          { class: 'charger-row', 'data-charger': charger.chargePointId },
          h('a', { href: `#/chargers/${encodeURIComponent(charger.chargePointId)}` }, charger.chargePointId),
          chargerSummary(charger),
        ),
      ),
    );
    const old = cards.get(station.id);
    if (old) old.replaceWith(card);
    cards.set(station.id, card);
    return card;
  };

  const filter = () => {
    const q = search.value.trim().toLowerCase();
    let shown = 0;
    for (const station of stations) {
      const hit = !q || `${station.name} ${station.address || ''}`.toLowerCase().includes(q);
      cards.get(station.id).hidden = !hit;
      if (hit) shown += 1;
    }
    body.querySelector('.no-match')?.remove();
    if (stations.length && !shown) body.append(h('p', { class: 'no-match muted' }, `No station matches “${search.value}”.`));
  };
  search.addEventListener('input', filter);

  const load = async () => {
    try {
      stations = await ctx.api.all('/api/stations');
    } catch (error) {
      replace(body, errorState(error, load));
      return;
    }
    if (!stations.length) {
      replace(body, emptyState('There are no stations yet.'));
      return;
    }
    cards.clear();
    replace(list, stations.map(render));
    replace(body, list);
    filter();
  };

  ctx.subscribe(topics.chargers, (event) => {
    for (const station of stations) {
      const charger = station.chargers.find((c) => c.chargePointId === event.data?.chargePointId);
      if (!charger) continue;
      applyChargerEvent(charger, event);
      station.online = station.chargers.some((c) => c.online);
      station.available = station.chargers.filter((c) => c.available).length;
      render(station);
      filter();
    }
  });
  await ctx.keepLoaded(load);
}
