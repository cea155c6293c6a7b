// The words a page shows, from one message catalogue per language: flat JSON
// files of "area.name" keys (webroot/shared/i18n/ for the shared modules,
// webroot/user/i18n/ for the driver panel), loaded once before the app draws.
//
// An entry is a string with named placeholders ("Charging at {cp}") or, where
// the words follow a count, an object of plural forms keyed by
// Intl.PluralRules categories ({"one": "...", "other": "..."}) chosen by the
// `count` parameter. What a language lacks falls back to English, then to the
// key itself, so a missing word never breaks a page (the catalogue test fails
// instead: tests/browser/test_i18n.py).

const STORAGE_KEY = 'ocppd.language';

let english = {};
let current = {};
let chosen = 'en';
let supported = ['en'];
// Every prefix of a key ("cms", "cms.points", "cms.points.registrations"), made
// once per catalogue: a group's lookup (TEXT.registrations[status], per table
// row or map marker) is then a set lookup, not a scan of every key.
let groups = null;

function isGroup(prefix) {
  if (!groups) {
    groups = new Set();
    for (const key of [...Object.keys(english), ...Object.keys(current)]) {
      const parts = key.split('.');
      for (let i = 1; i < parts.length; i += 1) groups.add(parts.slice(0, i).join('.'));
    }
  }
  return groups.has(prefix);
}

/** Whether a catalogue has been loaded. */
export function loaded() {
  return Object.keys(english).length > 0;
}

/** The language of the words shown ("en", "de", ...). */
export function language() {
  return chosen;
}

export function languages() {
  return supported;
}

/** The manual choice remembered on this browser, or null. */
function remembered() {
  try {
    return localStorage.getItem(STORAGE_KEY);
  } catch {
    return null;
  }
}

/** The first of the reader's languages we have words for, unless they chose one here. */
export function pickLanguage(available, preferred = navigator.languages || [navigator.language]) {
  const manual = remembered();
  if (manual && available.includes(manual)) return manual;
  for (const tag of preferred) {
    const base = String(tag || '').toLowerCase().split('-')[0];
    if (available.includes(base)) return base;
  }
  return available[0];
}

/**
 * The locale numbers, money and dates are written in: the reader's own
 * (keeping their region, "de-AT"), unless they chose another language here,
 * then that language's.
 */
export function formatLocale() {
  const first = navigator.languages?.[0] || navigator.language || 'en';
  const manual = remembered();
  if (manual && supported.includes(manual) && first.toLowerCase().split('-')[0] !== manual) return manual;
  return first;
}

/** Remember a manual choice and draw the page again in it. */
export function chooseLanguage(lang) {
  try {
    localStorage.setItem(STORAGE_KEY, lang);
  } catch {
    // Private mode without storage: the choice lasts this page only.
  }
  location.reload();
}

async function fetchCatalogue(folder, lang) {
  const response = await fetch(`${folder}/${lang}.json`);
  if (!response.ok) throw new Error(`${folder}/${lang}.json: HTTP ${response.status}`);
  return response.json();
}

/**
 * English is needed to draw anything: while the server cannot give it (the
 * daemon restarting), ask again after 1 s, doubling to 30 s.
 */
async function retrying(load) {
  for (let delay = 1000; ; delay = Math.min(delay * 2, 30_000)) {
    try {
      return await load();
    } catch {
      await new Promise((resolve) => setTimeout(resolve, delay));
    }
  }
}

/**
 * Load the catalogues of `folders` in the reader's language (one of
 * `available`, English first) and set `<html lang>`. English is always
 * loaded: it is what a word missing from another language falls back to.
 */
export async function loadMessages(folders, available = ['en']) {
  supported = available;
  chosen = pickLanguage(available);
  const load = (lang) => Promise.all(folders.map((f) => fetchCatalogue(f, lang))).then((parts) => Object.assign({}, ...parts));
  const [en, own] = await Promise.all([retrying(() => load('en')), chosen === 'en' ? null : load(chosen).catch(() => null)]);
  english = en;
  if (!own) chosen = 'en';
  current = own || en;
  groups = null;
  document.documentElement.lang = chosen;
}

/** For tests and pages that build the catalogue themselves. */
export function setMessages(messages, lang = 'en') {
  english = messages;
  current = messages;
  chosen = lang;
  groups = null;
}

function fill(template, params) {
  return template.replace(/\{(\w+)\}/g, (whole, name) => (params && name in params ? String(params[name]) : whole));
}

const plurals = new Map();

function pluralForm(entry, count) {
  let rules = plurals.get(chosen);
  if (!rules) {
    rules = new Intl.PluralRules(chosen);
    plurals.set(chosen, rules);
  }
  return entry[rules.select(Number(count))] ?? entry.other;
}

/** The words of `key` in the reader's language, `params` filled in. */
export function t(key, params) {
  const entry = current[key] ?? english[key];
  if (entry === undefined) return key;
  if (typeof entry === 'object') return fill(pluralForm(entry, params?.count) ?? key, params);
  return fill(entry, params);
}

export function has(key) {
  return key in current || key in english;
}

/** The placeholders of an entry, in the order English first names them. */
function placeholderNames(key) {
  let entry = english[key] ?? current[key];
  if (entry && typeof entry === 'object') entry = entry.other;
  const names = [];
  for (const [, name] of String(entry ?? '').matchAll(/\{(\w+)\}/g)) if (!names.includes(name)) names.push(name);
  return names;
}

/**
 * A module's words as an object, read when used (so after loadMessages):
 * `TEXT.title` is the string of "area.title"; an entry with placeholders is a
 * function taking them in the order English names them (`TEXT.chargingAt(cp)`)
 * or as one object of named parameters; a key that is a prefix of others
 * ("area.errors") is such an object again, and an unknown name is undefined.
 * Its names enumerate (Object.entries(TEXT.plugs) lists the plugs).
 */
export function messages(area) {
  const prefix = `${area}.`;
  const names = () => {
    const found = new Set();
    for (const key of [...Object.keys(english), ...Object.keys(current)]) {
      if (key.startsWith(prefix)) found.add(key.slice(prefix.length).split('.')[0]);
    }
    return [...found];
  };
  return new Proxy(
    {},
    {
      ownKeys: () => names(),
      getOwnPropertyDescriptor(target, name) {
        if (typeof name !== 'string' || !names().includes(name)) return undefined;
        return { value: this.get(target, name), enumerable: true, configurable: true, writable: false };
      },
      get(_, name) {
        if (typeof name !== 'string') return undefined;
        const key = `${area}.${name}`;
        if (has(key)) {
          const names = placeholderNames(key);
          if (!names.length) return t(key);
          return (...args) => {
            const named = args.length === 1 && args[0] !== null && typeof args[0] === 'object' ? args[0] : Object.fromEntries(names.map((n, i) => [n, args[i]]));
            return t(key, named);
          };
        }
        return isGroup(key) ? messages(key) : undefined;
      },
    },
  );
}
