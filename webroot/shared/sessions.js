// What a driver reads about prices, plugs and sessions: a tariff as price
// lines, a charger's plug and power, a stop reason in plain words, a start
// that never happened. The words are kept
// together in TEXT (one place to hand to a message catalogue later).

import { formatMoney, formatPower, secondsBetween } from './format.js';

export const TEXT = {
  perKwh: (price) => `${price} per kWh`,
  perMinute: (price) => `${price} per minute`,
  sessionFee: (price) => `${price} per session`,
  feeWhenCharging: 'The session fee is charged once energy flows or time is charged.',
  feeAlways: 'The session fee is charged for every session.',
  free: 'No price is set for this charger: its sessions are not billed.',
  freeShort: 'No price set: not billed',
  noEnergyPrice: 'No charge for energy',
  notStarted: 'Not started',
  noCharge: 'No charge',
  notStartedLong: 'Not started, no charge.',
  stopReasons: {
    user: 'you stopped it',
    funds: 'your wallet ran low',
    Local: 'stopped at the charger',
    Remote: 'stopped from the app',
    EVDisconnected: 'the car was unplugged',
    EmergencyStop: 'the emergency stop was pressed',
    HardReset: 'the charger restarted',
    SoftReset: 'the charger restarted',
    Reboot: 'the charger restarted',
    PowerLoss: 'the charger lost power',
    UnlockCommand: 'the connector was unlocked',
    DeAuthorized: 'the card or app was not accepted',
    Other: 'the charger ended it',
  },
  stoppedBecause: (why) => `Stopped because ${why}.`,
  // The plugs of docs/api.md (connectorType), as drivers know them.
  plugs: {
    Type1: 'Type 1',
    Type2: 'Type 2',
    CCS1: 'CCS (Combo 1)',
    CCS2: 'CCS (Combo 2)',
    CHAdeMO: 'CHAdeMO',
    Tesla: 'Tesla',
    Domestic: 'Household socket',
  },
  upTo: (power) => `up to ${power}`,
};

/** A charger's plug and maximum power in a few words ("Type 2 · up to 22.0 kW"); null if neither is known. */
export function plugSummary(charger) {
  const parts = [];
  if (charger?.connectorType) parts.push(TEXT.plugs[charger.connectorType] || charger.connectorType);
  if (charger?.maxPowerW) parts.push(TEXT.upTo(formatPower(charger.maxPowerW)));
  return parts.length ? parts.join(' · ') : null;
}

/**
 * A tariff (``{currency, pricePerKwh, pricePerMinute, sessionFee, sessionFeeAlways}``
 * in minor units) as short lines for reading, "€0.30 per kWh" first; null: not billed.
 */
export function priceLines(tariff) {
  if (!tariff) return [TEXT.free];
  const money = (minor) => formatMoney(minor, tariff.currency);
  const lines = [tariff.pricePerKwh ? TEXT.perKwh(money(tariff.pricePerKwh)) : TEXT.noEnergyPrice];
  if (tariff.pricePerMinute) lines.push(TEXT.perMinute(money(tariff.pricePerMinute)));
  if (tariff.sessionFee) lines.push(TEXT.sessionFee(money(tariff.sessionFee)));
  return lines;
}

/** The one-line price summary of a charger in a list: "€0.30 per kWh · €0.50 per session". */
export function priceSummary(tariff) {
  return tariff ? priceLines(tariff).join(' · ') : TEXT.freeShort;
}

/** When the session fee is owed, in words (null when there is none). */
export function feeNote(tariff) {
  if (!tariff || !tariff.sessionFee) return null;
  return tariff.sessionFeeAlways ? TEXT.feeAlways : TEXT.feeWhenCharging;
}

/** Why a session stopped, as a sentence; null when nobody said. */
export function stopReasonText(reason) {
  if (!reason) return null;
  return TEXT.stoppedBecause(TEXT.stopReasons[reason] || TEXT.stopReasons.Other);
}

/**
 * A session that never started: its start was refused (not Accepted), or it
 * ended at once with nothing delivered (0 Wh in under a second). It costs nothing.
 */
export function notStarted(session) {
  if (!session || session.status !== 'completed') return false;
  if (session.idTagStatus && session.idTagStatus !== 'Accepted') return true;
  const seconds = secondsBetween(session.startedAt, session.stoppedAt);
  return !session.energyWh && seconds !== null && seconds < 1;
}
