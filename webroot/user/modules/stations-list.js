// Stations near the customer: each with its chargers' live availability,
// what charging costs on each, and whether the station is online. A long list
// shows a page at a time ("Show more"), never thousands of pixels at once.
// Fed by GET /api/stations and ocppd.chargers.status.

import { badge, emptyState, errorState, h, loadingState, replace } from '/shared/dom.js';
import { topics } from '/shared/events.js';
import { applyChargerEvent, chargerSummary } from '/shared/chargers.js';
import { plugSummary, priceSummary } from '/shared/sessions.js';
import { messages } from '/shared/i18n.js';

const TEXT = messages('stations');
/** Stations shown at first, and added by each "Show more". */
export const PAGE_SIZE = 12;

export async function mount(root, ctx) {
  const search = h('input', { id: 'station-search', type: 'search', placeholder: TEXT.placeholder, autocomplete: 'off' });
  const list = h('div', { class: 'station-list', 'aria-live': 'polite' });
  const moreButton = h('button', { type: 'button', 'data-action': 'more' });
  const moreCount = h('p', { class: 'muted', 'data-field': 'shown' });
  const more = h('div', { class: 'more' }, moreCount, moreButton);
  let limit = PAGE_SIZE;
  const body = h('div', {}, loadingState());
  replace(
    root,
    h(
      'div',
      { class: 'page-head' },
      h('div', {}, h('h1', {}, TEXT.title), h('p', { class: 'muted' }, TEXT.intro)),
      h('div', { class: 'field' }, h('label', { for: 'station-search' }, TEXT.find), search),
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
      h('p', { class: 'address' }, station.address || TEXT.noAddress),
      h(
        'p',
        { class: 'availability', 'data-available': available },
        station.chargers.length ? TEXT.available(available, station.chargers.length) : TEXT.noChargers,
      ),
      station.chargers.map((charger) =>
        h(
          'div',
          { class: 'charger-row', 'data-charger': charger.chargePointId },
          h(
            'div',
            {},
            h('a', { href: `#/chargers/${encodeURIComponent(charger.chargePointId)}` }, charger.chargePointId),
            plugSummary(charger) ? h('p', { class: 'price', 'data-field': 'plug' }, plugSummary(charger)) : null,
            h('p', { class: 'price', 'data-field': 'price' }, priceSummary(charger.tariff)),
          ),
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
    let hits = 0;
    let shown = 0;
    for (const station of stations) {
      const hit = !q || `${station.name} ${station.address || ''}`.toLowerCase().includes(q);
      if (hit) hits += 1;
      const show = hit && hits <= limit;
      cards.get(station.id).hidden = !show;
      if (show) shown += 1;
    }
    body.querySelector('.no-match')?.remove();
    if (stations.length && !hits) body.append(h('p', { class: 'no-match muted' }, TEXT.noMatch(search.value)));
    more.hidden = hits <= shown;
    moreCount.textContent = TEXT.shown(shown, hits);
    moreButton.textContent = TEXT.more(Math.min(PAGE_SIZE, hits - shown));
  };
  search.addEventListener('input', () => {
    limit = PAGE_SIZE;
    filter();
  });
  moreButton.addEventListener('click', () => {
    limit += PAGE_SIZE;
    filter();
  });

  const load = async () => {
    try {
      stations = await ctx.api.all('/api/stations');
    } catch (error) {
      replace(body, errorState(error, load));
      return;
    }
    if (!stations.length) {
      replace(body, emptyState(TEXT.none));
      return;
    }
    cards.clear();
    replace(list, stations.map(render));
    replace(body, list, more);
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
