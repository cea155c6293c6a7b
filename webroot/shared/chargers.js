// What the customer pages share about a charger's live state.

import { badge, h } from '/shared/dom.js';
import { has, messages, t } from './i18n.js';

// "chargers.*" of the message catalogue (shared/i18n/).
const TEXT = messages('chargers');

/** Apply an ``ocppd.chargers.status`` event to a charger as GET /api/chargers/{id} shows it. */
export function applyChargerEvent(charger, event) {
  const data = event.data || {};
  if (event.type === 'charger.online') charger.online = true;
  if (event.type === 'charger.offline') charger.online = false;
  // A live event is newer than what the store last recorded.
  if (event.type === 'charger.online' || event.type === 'charger.offline') charger.onlineSource = 'live';
  if (event.type === 'connector.status' && data.connectorId) {
    let connector = charger.connectors.find((c) => c.connectorId === data.connectorId);
    if (!connector) {
      connector = { connectorId: data.connectorId };
      charger.connectors.push(connector);
      charger.connectors.sort((a, b) => a.connectorId - b.connectorId);
    }
    connector.status = data.status;
    connector.errorCode = data.errorCode ?? connector.errorCode;
    connector.statusAt = event.at;
  }
  charger.available = charger.online && charger.connectors.some((c) => c.status === 'Available');
  return charger;
}

/**
 * A note when ``online`` is the store's last record because presence was
 * unreachable (``onlineSource: "store"``, docs/presence.md): it may be stale.
 */
export function staleOnlineNote(charger) {
  if (charger.onlineSource !== 'store') return null;
  return h(
    'span',
    { class: 'muted', 'data-field': 'online-stale', title: TEXT.staleTitle },
    ` ${TEXT.stale}`,
  );
}

/** A connector's status in the reader's words ("status.*"), as it came if the catalogue lacks it. */
export function statusText(status) {
  return status && has(`status.${status}`) ? t(`status.${status}`) : status || TEXT.unknown;
}

/** Connectors' statuses as badges, or "Offline" for a charger that is not connected. */
export function chargerSummary(charger) {
  if (!charger.online) return badge('Offline');
  if (!charger.connectors.length) return badge('Unknown', TEXT.noConnectors);
  return h(
    'span',
    { class: 'connectors' },
    charger.connectors.map((c) => badge(c.status, TEXT.connector(c.connectorId, statusText(c.status)))),
  );
}

/** Statuses in which a remote start makes sense (a plugged-in car shows Preparing). */
export const STARTABLE = new Set(['Available', 'Preparing']);
