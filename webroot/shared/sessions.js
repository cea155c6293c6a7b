// What a driver reads about prices, plugs and sessions: a tariff as price
// lines, a charger's plug and power, a stop reason in plain words, a start
// that never happened. The words are "sessions.*" of the message catalogue
// (shared/i18n/), read through TEXT.

import { formatMoney, formatPower, secondsBetween } from './format.js';
import { messages } from './i18n.js';

export const TEXT = messages('sessions');

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
