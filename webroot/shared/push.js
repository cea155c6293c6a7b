// The one WAMP client of every page: autobahn-js (npm autobahn-browser,
// served at /vendor/) connected to /push, realm "ocppd", WAMP-Ticket with the
// REST token. It keeps one WAMP subscription per topic however many pages
// listen, reconnects with exponential back-off and jitter, subscribes again
// after each reconnect, and tells pages to reload what they may have missed.
//
// States: "connecting", "online", "offline" (will retry), "refused" (the
// ticket or a subscription was refused), "stopped".

import { messages } from './i18n.js';

const AUTOBAHN_URL = '/vendor/autobahn-browser/autobahn.min.js';

let autobahnLoading = null;

/** autobahn-browser is a classic script that defines ``window.autobahn``. */
export function loadAutobahn() {
  if (window.autobahn) return Promise.resolve(window.autobahn);
  if (!autobahnLoading) {
    autobahnLoading = new Promise((resolve, reject) => {
      const script = document.createElement('script');
      script.src = AUTOBAHN_URL;
      script.onload = () =>
        window.autobahn ? resolve(window.autobahn) : reject(new Error('autobahn did not load'));
      script.onerror = () => {
        autobahnLoading = null;
        script.remove();
        reject(new Error(`cannot load ${AUTOBAHN_URL}`));
      };
      document.head.append(script);
    });
  }
  return autobahnLoading;
}

export function pushUrl() {
  return `${location.protocol === 'https:' ? 'wss' : 'ws'}://${location.host}/push`;
}

const AUTH_REFUSALS = new Set([
  'wamp.error.authentication_failed',
  'wamp.error.not_authorized',
  'wamp.error.no_auth_method',
  // The server ends a session whose token was signed out (in another tab, say).
  'ocppd.close.signed_out',
]);

export class PushClient extends EventTarget {
  constructor({
    token,
    url = pushUrl(),
    realm = 'ocppd',
    initialDelay = 1000,
    maxDelay = 30000,
    jitter = 0.25,
  }) {
    super();
    this.token = token;
    this.url = url;
    this.realm = realm;
    this.initialDelay = initialDelay;
    this.maxDelay = maxDelay;
    this.jitter = jitter;
    this.state = 'stopped';
    this.detail = '';
    this.session = null;
    this.connection = null;
    this.attempt = 0;
    this.connects = 0;
    this.retryAt = null;
    this._timer = null;
    this.pendingCount = 0;
    /** topic -> {handlers: Set, subscription: autobahn Subscription | null} */
    this.topics = new Map();
  }

  start() {
    if (this.state !== 'stopped') return;
    this._connect();
  }

  stop() {
    this._setState('stopped');
    clearTimeout(this._timer);
    const connection = this.connection;
    this.connection = null;
    this.session = null;
    if (connection) {
      try {
        connection.close();
      } catch {
        // Already closing: nothing to do.
      }
    }
  }

  /** Call ``handler(event)`` for each EVENT on ``topic``; returns the unsubscribe function. */
  subscribe(topic, handler) {
    let entry = this.topics.get(topic);
    if (!entry) {
      entry = { handlers: new Set(), subscription: null, pending: null };
      this.topics.set(topic, entry);
    }
    entry.handlers.add(handler);
    if (this.session && !entry.subscription && !entry.pending) this._subscribe(topic, entry);
    return () => this._unsubscribe(topic, handler);
  }

  _unsubscribe(topic, handler) {
    const entry = this.topics.get(topic);
    if (!entry) return;
    entry.handlers.delete(handler);
    if (entry.handlers.size) return;
    this.topics.delete(topic);
    if (entry.subscription && this.session && this.session.isOpen) {
      try {
        this.session.unsubscribe(entry.subscription).catch(() => {});
      } catch {
        // The session closed meanwhile (autobahn-js throws then): nothing to undo.
      }
    }
  }

  async _connect() {
    clearTimeout(this._timer);
    this.retryAt = null;
    this._setState('connecting');
    let autobahn;
    try {
      autobahn = await loadAutobahn();
    } catch (error) {
      this._closed('unreachable', { message: error.message });
      return;
    }
    if (this.state === 'stopped') return;
    // Autobahn's own reconnect stops for good after a router's GOODBYE or
    // ABORT; ours keeps going (with the same back-off) until stop().
    const connection = new autobahn.Connection({
      url: this.url,
      realm: this.realm,
      authmethods: ['ticket'],
      onchallenge: (session, method) => {
        if (method !== 'ticket') throw new Error(`unexpected challenge ${method}`);
        return this.token;
      },
      max_retries: 0,
      retry_if_unreachable: false,
    });
    this.connection = connection;
    connection.onopen = (session) => {
      if (connection !== this.connection) return;
      this.session = session;
      this.attempt = 0;
      this.connects += 1;
      for (const [topic, entry] of this.topics) {
        entry.subscription = null;
        entry.pending = null;
        this._subscribe(topic, entry);
      }
      this._setState('online');
      if (this.connects > 1) this.dispatchEvent(new CustomEvent('reconnected'));
    };
    connection.onclose = (reason, details) => {
      if (connection === this.connection) this._closed(reason, details || {});
      return true; // no retry by autobahn: ours follows
    };
    connection.open();
  }

  _closed(reason, details) {
    this.session = null;
    this.connection = null;
    for (const entry of this.topics.values()) {
      entry.subscription = null;
      entry.pending = null;
    }
    this.pendingCount = 0;
    this._pending(0);
    if (this.state === 'stopped') return;
    const refused = AUTH_REFUSALS.has(details.reason);
    if (refused) this.dispatchEvent(new CustomEvent('refused', { detail: details }));
    const base = Math.min(this.maxDelay, this.initialDelay * 2 ** this.attempt);
    const delay = base * (1 - this.jitter + Math.random() * 2 * this.jitter);
    this.attempt += 1;
    this.retryAt = Date.now() + delay;
    this._setState(refused ? 'refused' : 'offline', details.message || details.reason || reason);
    this._timer = setTimeout(() => this._connect(), delay);
  }

  _subscribe(topic, entry) {
    const session = this.session;
    this._pending(+1);
    entry.pending = session
      .subscribe(topic, (args) => this._deliver(topic, args && args[0]))
      .then(
        (subscription) => {
          if (session !== this.session) return; // closed meanwhile: the count was reset
          this._pending(-1);
          entry.pending = null;
          if (this.topics.get(topic) !== entry) {
            session.unsubscribe(subscription).catch(() => {});
            return;
          }
          entry.subscription = subscription;
        },
        (error) => {
          if (session !== this.session) return;
          this._pending(-1);
          entry.pending = null;
          this.dispatchEvent(
            new CustomEvent('subscribe-failed', { detail: { topic, error: error?.error || String(error) } }),
          );
        },
      );
  }

  /** Subscriptions asked for and not yet answered (tests wait for none). */
  _pending(delta) {
    this.pendingCount += delta;
    this.dispatchEvent(new CustomEvent('pending', { detail: this.pendingCount }));
  }

  _deliver(topic, event) {
    const entry = this.topics.get(topic);
    if (!entry || !event) return;
    for (const handler of [...entry.handlers]) {
      try {
        handler(event, topic);
      } catch (error) {
        // One page's bug must not cut the others off from their events.
        console.error('push handler failed', topic, error);
      }
    }
  }

  _setState(state, detail = '') {
    this.state = state;
    this.detail = detail;
    this.dispatchEvent(new CustomEvent('state', { detail: { state, detail } }));
  }
}

// "push.*" of the message catalogue (shared/i18n/).
const TEXT = messages('push');

/** The visible connection indicator: a dot and a word, with the detail as a tooltip. */
export function connectionIndicator(push) {
  const label = document.createElement('span');
  const retry = document.createElement('span');
  retry.className = 'push-retry';
  // A countdown read out every second would drown everything else.
  retry.setAttribute('aria-hidden', 'true');
  const el = document.createElement('span');
  el.className = 'push-indicator';
  el.setAttribute('role', 'status');
  el.setAttribute('aria-live', 'polite');
  const dot = document.createElement('span');
  dot.className = 'dot';
  dot.setAttribute('aria-hidden', 'true');
  el.append(dot, label, retry);
  let ticker = null;
  const render = () => {
    el.dataset.pushState = push.state;
    label.textContent = TEXT.states[push.state] || push.state;
    el.title =
      push.state === 'online'
        ? TEXT.on
        : push.detail
          ? TEXT.offBecause(push.detail)
          : TEXT.off;
    clearInterval(ticker);
    retry.textContent = '';
    if (push.retryAt && (push.state === 'offline' || push.state === 'refused')) {
      const tick = () => {
        const seconds = Math.max(0, Math.ceil((push.retryAt - Date.now()) / 1000));
        retry.textContent = ` · ${TEXT.retryIn(seconds)}`;
      };
      tick();
      ticker = setInterval(tick, 1000);
    }
  };
  push.addEventListener('state', render);
  push.addEventListener('pending', () => {
    el.dataset.pushPending = String(push.pendingCount);
  });
  el.dataset.pushPending = String(push.pendingCount);
  render();
  return el;
}
