// The frame of both front ends: sign-in, the role check, the header with its
// navigation and live-connection indicator, and a hash router that mounts one
// page module at a time. A page module exports ``mount(container, ctx)``;
// what it subscribes or schedules through ``ctx`` is undone when the reader
// leaves the page.

import { Api } from './api.js';
import { connectionIndicator, PushClient } from './push.js';
import { describeError, h, replace, toast } from './dom.js';
import { formatTime } from './format.js';
import { chooseLanguage, language, languages, loaded, loadMessages, messages } from './i18n.js';

// The shell's words: "shell.*" of the message catalogue (shared/i18n/).
const TEXT = messages('shell');

/**
 * routes: [{path: '/points/:id', title, load: () => import(...), nav?: 'Label'}].
 * role: the role this front end requires ('admin' for the CMS), or null.
 */
export function startApp({ tree, product, routes, role = null, onSignedIn }) {
  const api = new Api(`ocppd.${tree}.token`);
  const app = new App({ tree, product, routes, role, onSignedIn, api });
  // A front end that loaded its own catalogue (the driver panel) has it; the
  // others get the shared words in English.
  (loaded() ? Promise.resolve() : loadMessages(['/shared/i18n'])).then(() => app.start());
  return app;
}

class App {
  constructor(options) {
    Object.assign(this, options);
    this.root = document.getElementById('app');
    this.page = null;
    this.push = null;
    this.user = null;
    this.globalDisposers = [];
    this.api.addEventListener('unauthorized', () => this.signedOut(TEXT.expired));
    window.addEventListener('hashchange', () => this.route(true));
  }

  async start() {
    if (!this.api.token) {
      this.showSignIn();
      return;
    }
    replace(this.root, h('div', { class: 'state state--loading', role: 'status' }, TEXT.loading));
    let me;
    try {
      me = await this.api.get('/api/auth/me');
    } catch (error) {
      if (error.status === 401) return; // 'unauthorized' showed the sign-in form
      replace(
        this.root,
        h(
          'div',
          { class: 'center-card' },
          h('h1', {}, TEXT.product(this.product)),
          h('p', { role: 'alert' }, describeError(error)),
          h('button', { type: 'button', onclick: () => this.start() }, TEXT.tryAgain),
        ),
      );
      return;
    }
    this.user = me.user;
    if (this.role && this.user.role !== this.role) {
      this.showRefusal();
      return;
    }
    this.showApp();
  }

  showSignIn(message) {
    document.title = TEXT.signInTitle(this.product);
    const error = h('p', { class: 'form-error', role: 'alert', hidden: !message }, message || '');
    const email = h('input', { id: 'signin-email', name: 'email', type: 'email', autocomplete: 'username', required: true });
    const password = h('input', {
      id: 'signin-password',
      name: 'password',
      type: 'password',
      autocomplete: 'current-password',
      required: true,
    });
    const submit = h('button', { type: 'submit', class: 'primary wide' }, TEXT.signIn);
    const form = h(
      'form',
      { class: 'signin', 'aria-labelledby': 'signin-title' },
      h('p', { class: 'brand-mark', 'aria-hidden': 'true' }, '⚡'),
      h('h1', { id: 'signin-title' }, TEXT.product(this.product)),
      h('p', { class: 'muted' }, this.role === 'admin' ? TEXT.signInOperators : TEXT.signInDrivers),
      h('div', { class: 'field' }, h('label', { for: 'signin-email' }, TEXT.email), email),
      h('div', { class: 'field' }, h('label', { for: 'signin-password' }, TEXT.password), password),
      error,
      submit,
    );
    form.addEventListener('submit', async (event) => {
      event.preventDefault();
      submit.disabled = true;
      error.hidden = true;
      try {
        const result = await this.api.post('/api/auth/login', { email: email.value.trim(), password: password.value });
        this.api.token = result.token;
        await this.start();
      } catch (e) {
        error.textContent = e.status === 401 ? TEXT.badPassword : describeError(e);
        error.hidden = false;
        password.select();
      } finally {
        submit.disabled = false;
      }
    });
    replace(this.root, h('main', { id: 'main', class: 'center' }, form));
    email.focus();
  }

  showRefusal() {
    document.title = TEXT.notAllowedTitle(this.product);
    replace(
      this.root,
      h(
        'main',
        { id: 'main', class: 'center' },
        h(
          'section',
          { class: 'center-card refusal', role: 'alert', 'data-refused': 'role' },
          h('h1', {}, TEXT.operatorsOnly),
          h('p', {}, TEXT.needsAdmin(this.user.email, this.user.role)),
          h(
            'div',
            { class: 'actions' },
            h('a', { class: 'button', href: '/user/' }, TEXT.toPanel),
            h('button', { type: 'button', onclick: () => this.signOut() }, TEXT.signOut),
          ),
        ),
      ),
    );
  }

  /** The language switch (remembered on this browser), where a front end speaks more than one. */
  languagePicker() {
    if (languages().length < 2) return null;
    const select = h(
      'select',
      { class: 'language', 'aria-label': TEXT.language, 'data-language': language() },
      // Each language named in itself: "Deutsch", "English", "français".
      languages().map((lang) => h('option', { value: lang, selected: lang === language() }, new Intl.DisplayNames([lang], { type: 'language' }).of(lang))),
    );
    select.addEventListener('change', () => chooseLanguage(select.value));
    return select;
  }

  showApp() {
    this.push = new PushClient({ token: this.api.token });
    this.push.addEventListener('refused', () => {
      // Maybe the token expired: asking the API finds out (401 signs out).
      this.api.get('/api/auth/me').catch(() => {});
    });
    this.nav = h(
      'ul',
      {},
      this.routes
        .filter((r) => r.nav)
        .map((r) => h('li', {}, h('a', { href: `#${r.path}`, 'data-path': r.path }, r.nav))),
    );
    const main = h('main', { id: 'main', tabindex: '-1' });
    this.staleNotice = h('div', { class: 'stale-notice', role: 'status', hidden: true, 'data-stale-notice': '' });
    this.push.addEventListener('state', () => this.markStale());
    const skip = h('a', { class: 'skip-link', href: '#main' }, TEXT.skip);
    skip.addEventListener('click', (event) => {
      event.preventDefault();
      main.focus();
    });
    const header = h(
      'header',
      { class: 'topbar' },
      h('a', { class: 'brand', href: '#/' }, h('span', { 'aria-hidden': 'true' }, '⚡'), ' ocppd ', h('span', { class: 'brand-product' }, this.product)),
      h('nav', { 'aria-label': TEXT.mainNav }, this.nav),
      h(
        'div',
        { class: 'topbar-right' },
        connectionIndicator(this.push),
        this.languagePicker(),
        h('span', { class: 'who', title: TEXT.signedInAs(this.user.email) }, this.user.email),
        h('button', { type: 'button', class: 'link', onclick: () => this.signOut() }, TEXT.signOut),
      ),
    );
    this.main = main;
    replace(this.root, skip, header, this.staleNotice, main);
    this.push.start();
    if (this.onSignedIn) this.onSignedIn(this.globalContext());
    this.route(false);
  }

  /**
   * While the push channel is down, what the page shows may be out of date:
   * say so, and dim the live figures (``data-stale`` on main). The pages
   * reload their data after the reconnect, which clears it.
   */
  markStale() {
    if (!this.main || !this.push) return;
    const live = this.push.state === 'online';
    if (live) {
      this.liveAt = new Date();
      delete this.main.dataset.stale;
      this.staleNotice.hidden = true;
      return;
    }
    // Not yet live (nothing shown is stale), or stopped on purpose (signing out).
    if (!this.liveAt || this.push.state === 'connecting' || this.push.state === 'stopped') return;
    this.main.dataset.stale = 'true';
    this.staleNotice.textContent = TEXT.stale(formatTime(this.liveAt.toISOString()));
    this.staleNotice.hidden = false;
  }

  globalContext() {
    return {
      api: this.api,
      push: this.push,
      user: this.user,
      navigate: (path) => this.navigate(path),
      subscribe: (topic, handler) => {
        const off = this.push.subscribe(topic, handler);
        this.globalDisposers.push(off);
        return off;
      },
      currentPath: () => this.currentPath(),
    };
  }

  currentPath() {
    const hash = location.hash.replace(/^#/, '');
    return (hash.split('?')[0] || '/').replace(/\/+$/, '') || '/';
  }

  navigate(path) {
    if (location.hash === `#${path}`) this.route(true);
    else location.hash = path;
  }

  match(path) {
    const parts = path.split('/').filter(Boolean);
    for (const route of this.routes) {
      const pattern = route.path.split('/').filter(Boolean);
      if (pattern.length !== parts.length) continue;
      const params = {};
      const ok = pattern.every((segment, i) => {
        if (segment.startsWith(':')) {
          params[segment.slice(1)] = decodeURIComponent(parts[i]);
          return true;
        }
        return segment === parts[i];
      });
      if (ok) return { route, params };
    }
    return null;
  }

  async route(userNavigated) {
    if (!this.main) return;
    if (this.page) this.page.dispose();
    this.page = null;
    const path = this.currentPath();
    const query = new URLSearchParams(location.hash.split('?')[1] || '');
    const found = this.match(path);
    for (const link of this.nav.querySelectorAll('a')) {
      const active = found && link.dataset.path === (found.route.section || found.route.path);
      if (active) link.setAttribute('aria-current', 'page');
      else link.removeAttribute('aria-current');
    }
    if (!found) {
      document.title = TEXT.notFoundTitle(this.product);
      replace(
        this.main,
        h('div', { class: 'page' }, h('h1', { tabindex: '-1' }, TEXT.notFound), h('p', {}, h('a', { href: '#/' }, TEXT.backToStart))),
      );
      return;
    }
    const page = new PageContext(this, found.params, query, found.route);
    this.page = page;
    const container = h('div', { class: 'page', 'data-page': found.route.id || found.route.path });
    replace(this.main, container);
    page.setTitle(found.route.title);
    let module;
    try {
      module = await found.route.load();
    } catch (error) {
      if (!page.disposed) this.loadFailed(page, container, found.route, error);
      return;
    }
    if (page.disposed) return;
    try {
      await module.mount(container, page);
    } catch (error) {
      if (page.disposed) return;
      console.error(error);
      replace(container, h('h1', {}, found.route.title), h('div', { class: 'state state--error', role: 'alert' }, describeError(error)));
    }
    if (userNavigated && !page.disposed) {
      const heading = container.querySelector('h1');
      if (heading) {
        heading.setAttribute('tabindex', '-1');
        heading.focus();
      }
    }
  }

  /**
   * A page module that did not load (the daemon restarting, the network
   * away): a Retry button, and a retry by itself when the push channel
   * reconnects (the server is back). Chromium may remember a failed module
   * fetch for the document's life, so a retry that fails again reloads the
   * whole document, which fetches everything afresh.
   */
  loadFailed(page, container, route, error) {
    console.warn('page module failed to load', error);
    let tries = 0;
    const retry = async () => {
      tries += 1;
      button.disabled = true;
      try {
        await route.load();
      } catch {
        if (tries > 1 || this.push?.state === 'online') {
          location.reload();
          return;
        }
        button.disabled = false;
        return;
      }
      if (!page.disposed) this.route(false);
    };
    const button = h('button', { type: 'button', class: 'primary', 'data-action': 'retry', onclick: retry }, TEXT.retry);
    replace(
      container,
      h('h1', {}, route.title),
      h('div', { class: 'state state--error', role: 'alert', 'data-load-failed': '' }, h('p', {}, TEXT.loadFailed), h('p', {}, TEXT.loadRetrying), button),
    );
    page.onReconnect(retry);
  }

  async signOut() {
    // Leave the push channel first: signing out ends its session server-side.
    if (this.push) this.push.stop();
    try {
      if (this.api.token) await this.api.post('/api/auth/logout');
    } catch {
      // Signed out locally either way.
    }
    this.signedOut();
  }

  signedOut(message) {
    if (this.page) this.page.dispose();
    this.page = null;
    for (const off of this.globalDisposers.splice(0)) off();
    if (this.push) this.push.stop();
    this.push = null;
    this.main = null;
    this.user = null;
    this.api.token = null;
    this.showSignIn(message);
  }
}

/** What one mounted page may use; everything it registers is undone on dispose(). */
class PageContext {
  constructor(app, params, query, route) {
    this.app = app;
    this.api = app.api;
    this.push = app.push;
    this.user = app.user;
    this.params = params;
    this.query = query;
    this.route = route;
    this.disposed = false;
    this.disposers = [];
    // Loads in flight, and the pushes held until they are done (keepLoaded).
    this.loading = 0;
    this.held = [];
  }

  navigate(path) {
    this.app.navigate(path);
  }

  setTitle(title) {
    document.title = `${title} · ${TEXT.product(this.app.product)}`;
  }

  /** Subscribe for as long as the page is shown. */
  subscribe(topic, handler) {
    if (this.disposed) return () => {};
    const off = this.push.subscribe(topic, (event) => {
      if (this.disposed) return;
      if (this.loading) this.held.push([handler, event]);
      else handler(event);
    });
    this.disposers.push(off);
    return off;
  }

  /**
   * ``load`` (fetch a snapshot and render it) now and after each reconnect of the push
   * channel, when events may have been missed. Pushes that arrive while a load is in
   * flight are handled after it: a snapshot read before an event was stored must not
   * overwrite what that event showed. (Handlers set state, so one that the snapshot
   * already holds changes nothing.)
   */
  async keepLoaded(load) {
    this.onReconnect(() => this._load(load));
    await this._load(load);
  }

  async _load(load) {
    this.loading += 1;
    try {
      await load();
    } finally {
      this.loading -= 1;
      if (this.loading === 0) {
        for (const [handler, event] of this.held.splice(0)) {
          if (!this.disposed) handler(event);
        }
      }
    }
  }

  /** ``fn`` after each reconnect of the push channel (events may have been missed). */
  onReconnect(fn) {
    const listener = () => !this.disposed && fn();
    this.push.addEventListener('reconnected', listener);
    this.disposers.push(() => this.push.removeEventListener('reconnected', listener));
  }

  every(ms, fn) {
    const timer = setInterval(fn, ms);
    this.disposers.push(() => clearInterval(timer));
  }

  onDispose(fn) {
    this.disposers.push(fn);
  }

  notify(message, kind) {
    toast(message, { kind });
  }

  dispose() {
    this.disposed = true;
    for (const fn of this.disposers.splice(0).reverse()) {
      try {
        fn();
      } catch (error) {
        console.error(error);
      }
    }
  }
}
