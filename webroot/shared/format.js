// Numbers, money and times in the reader's locale (Intl). The API speaks
// integer Wh, integer W, integer minor units with an ISO 4217 currency, and
// UTC ISO-8601 times; these turn them into what a person reads.

import { formatLocale } from './i18n.js';

const formatters = new Map();

/** The reader's locale (their browser's, or the language they chose here: shared/i18n.js). */
export function locale() {
  return formatLocale();
}

function cached(kind, options, make) {
  const key = `${locale()}|${kind}|${JSON.stringify(options)}`;
  let f = formatters.get(key);
  if (!f) {
    f = make(locale(), options);
    formatters.set(key, f);
  }
  return f;
}

const number = (options) => cached('n', options, (l, o) => new Intl.NumberFormat(l, o));
const dateTime = (options) => cached('d', options, (l, o) => new Intl.DateTimeFormat(l, o));

const DASH = '—';

/** Digits after the decimal point of a currency (EUR 2, JPY 0, KWD 3). */
export function currencyDigits(currency) {
  return new Intl.NumberFormat('en', { style: 'currency', currency }).resolvedOptions()
    .maximumFractionDigits;
}

/** 1234, "EUR" -> "€12.34" (en) or "12,34 €" (de). */
export function formatMoney(minor, currency) {
  if (minor === null || minor === undefined || !currency) return DASH;
  const digits = currencyDigits(currency);
  return number({ style: 'currency', currency }).format(minor / 10 ** digits);
}

/** A price per kWh in minor units -> "€0.35/kWh". */
export function formatPerKwh(minor, currency) {
  return `${formatMoney(minor, currency)}/kWh`;
}

export function formatPerMinute(minor, currency) {
  return `${formatMoney(minor, currency)}/min`;
}

/** The decimal and grouping separators of a locale ("," and "." in de). */
export function separators(loc = locale()) {
  const parts = new Intl.NumberFormat(loc).formatToParts(12345.6);
  return {
    decimal: parts.find((p) => p.type === 'decimal')?.value || '.',
    group: parts.find((p) => p.type === 'group')?.value || ',',
  };
}

/**
 * What a person typed as an amount, in their locale ("12,50" in de, "12.50"
 * in en, "1.250,00" with grouping) -> integer minor units, or null if it is
 * not an amount of at most 9 integer digits and the currency's decimals.
 * The other mark (the point in de, the comma in en) is also taken as the
 * decimal mark when it cannot be grouping: one of it, with at most two digits
 * after ("12.5" in de and "12,50" in en are twelve and a half; "1.500" in de
 * is fifteen hundred).
 * Integer arithmetic only: 0.1 + 0.2 never becomes 30 cents and a bit.
 */
export function parseMoney(text, currency, loc = locale()) {
  const digits = currencyDigits(currency);
  const raw = String(text ?? '');
  if (raw.length > 32) return null;
  const { decimal, group } = separators(loc);
  // Spaces of any kind group thousands in some locales (fr: U+202F).
  let cleaned = raw.trim().replace(/[\s\u00a0\u202f']/g, '');
  const other = decimal === ',' ? '.' : ',';
  if (!cleaned.includes(decimal) && new RegExp(`^\\d{1,9}\\${other}\\d{0,2}$`).test(cleaned)) {
    cleaned = cleaned.replace(other, decimal);
  }
  if (group && group.trim()) {
    // Grouping only in threes left of the decimal mark: "1.250,00", never "12.50,00".
    const [whole, ...rest] = cleaned.split(decimal);
    if (whole.includes(group)) {
      if (!new RegExp(`^\\d{1,3}(\\${group}\\d{3})+$`).test(whole)) return null;
      cleaned = [whole.split(group).join(''), ...rest].join(decimal);
    }
  }
  if (decimal !== '.') cleaned = cleaned.replace(decimal, '.');
  const match = /^(\d{1,9})(?:\.(\d*))?$/.exec(cleaned);
  if (!match) return null;
  const fraction = match[2] || '';
  if (fraction.length > digits) return null;
  return Number(match[1]) * 10 ** digits + Number(fraction.padEnd(digits, '0') || 0);
}

/** Minor units -> the plain number a person would type back ("12.50"). */
export function moneyInput(minor, currency) {
  if (minor === null || minor === undefined) return '';
  const digits = currencyDigits(currency);
  return (minor / 10 ** digits).toFixed(digits).replace('.', separators().decimal);
}

/** 12345 Wh -> "12.35 kWh". */
export function formatEnergy(wh) {
  if (wh === null || wh === undefined) return DASH;
  return `${number({ minimumFractionDigits: 2, maximumFractionDigits: 2 }).format(wh / 1000)} kWh`;
}

/** 7400 W -> "7.4 kW". */
export function formatPower(w) {
  if (w === null || w === undefined) return DASH;
  return `${number({ minimumFractionDigits: 1, maximumFractionDigits: 1 }).format(w / 1000)} kW`;
}

/** 1536 -> "1.5 KiB" (en), "1,5 KiB" (de): a file's size. */
export function formatBytes(n) {
  if (n === null || n === undefined) return DASH;
  if (n < 1024) return `${number({}).format(n)} B`;
  const one = number({ minimumFractionDigits: 1, maximumFractionDigits: 1 });
  if (n < 1024 ** 2) return `${one.format(n / 1024)} KiB`;
  if (n < 1024 ** 3) return `${one.format(n / 1024 ** 2)} MiB`;
  return `${one.format(n / 1024 ** 3)} GiB`;
}

/** 80 -> "80%" (en), "80 %" (de). */
export function formatPercent(n) {
  return n === null || n === undefined ? DASH : number({ style: 'percent', maximumFractionDigits: 0 }).format(n / 100);
}

export function formatCount(n) {
  return n === null || n === undefined ? DASH : number({}).format(n);
}

/** An ISO-8601 time -> date and time in the reader's locale and time zone. */
export function formatDateTime(iso) {
  if (!iso) return DASH;
  return dateTime({ dateStyle: 'medium', timeStyle: 'short' }).format(new Date(iso));
}

export function formatTime(iso) {
  if (!iso) return DASH;
  return dateTime({ timeStyle: 'medium' }).format(new Date(iso));
}

/** Seconds -> "1:05:09" (hours:minutes:seconds), as a running clock reads. */
export function formatClock(seconds) {
  const s = Math.max(0, Math.floor(seconds));
  const hh = Math.floor(s / 3600);
  const mm = String(Math.floor((s % 3600) / 60)).padStart(2, '0');
  const ss = String(s % 60).padStart(2, '0');
  return `${hh}:${mm}:${ss}`;
}

/** Seconds -> "2 h 05 min", "12 min", "40 s". */
export function formatDuration(seconds) {
  if (seconds === null || seconds === undefined || Number.isNaN(seconds)) return DASH;
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const minutes = Math.floor(s / 60);
  if (minutes < 60) return `${minutes} min`;
  return `${Math.floor(minutes / 60)} h ${String(minutes % 60).padStart(2, '0')} min`;
}

/** Seconds between two ISO times (or until now). */
export function secondsBetween(startIso, endIso) {
  if (!startIso) return null;
  const end = endIso ? new Date(endIso) : new Date();
  return (end - new Date(startIso)) / 1000;
}

/** A chart tick: 12345 Wh -> "12.3 kWh". */
export function formatKwhTick(wh) {
  return `${number({ maximumFractionDigits: 1 }).format(wh / 1000)} kWh`;
}
