// The push topics and their event payloads (docs/events.md), read in one place.

export const topics = {
  chargers: 'ocppd.chargers.status',
  userSession: (userId) => `ocppd.user.${userId}.session`,
  userWallet: (userId) => `ocppd.user.${userId}.wallet`,
  adminSessions: 'ocppd.admin.sessions',
  adminMeter: 'ocppd.admin.meter',
  adminOcpp: 'ocppd.admin.ocpp',
  // One charger's: the broker sends a point page only its charger's events.
  adminMeterOf: (chargePointId) => `ocppd.admin.meter.${chargePointId}`,
  adminOcppOf: (chargePointId) => `ocppd.admin.ocpp.${chargePointId}`,
  adminCms: 'ocppd.admin.cms',
  adminRevenue: 'ocppd.admin.revenue',
};

/**
 * The session of a ``session.*`` event, with the running figures of
 * ``live`` (energy, power, cost while charging) folded in.
 */
export function sessionOf(event) {
  const data = event.data || {};
  const session = { ...(data.session || data) };
  const live = data.live || session.live || null;
  delete session.live;
  if (live) {
    if (live.energyWh !== undefined && live.energyWh !== null) session.energyWh = live.energyWh;
    if (live.cost !== undefined && live.cost !== null) session.cost = live.cost;
    if (live.currency) session.currency = live.currency;
    session.powerW = live.powerW ?? null;
    session.liveAt = live.at || event.at;
  }
  return session;
}

export const isSessionEvent = (event) => event.type?.startsWith('session.');

/** Merge a newer view of a session into an older one, never going back in time. */
export function mergeSession(old, next) {
  if (!old) return next;
  if (old.status === 'completed' && next.status === 'active') return old; // a late update
  const merged = { ...old, ...next };
  for (const key of ['energyWh', 'cost', 'powerW', 'currency']) {
    if (next[key] === undefined || next[key] === null) merged[key] = old[key];
  }
  return merged;
}
