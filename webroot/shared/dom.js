// Small DOM helpers shared by every page. Data only ever reaches the page as
// text (textContent, attributes), never as HTML, so nothing a charger or a
// user typed can run as script.

import { has, messages, t } from './i18n.js';

// The words of these helpers: "dom.*" of the message catalogue (shared/i18n/).
const TEXT = messages('dom');

/**
 * h('button', {class: 'primary', onclick: fn, 'data-id': 3}, 'Save')
 * Props: class, on<event> handlers, boolean attributes (true/false), the rest as attributes.
 */
export function h(tag, props = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(props || {})) {
    if (value === undefined || value === null || value === false) continue;
    if (key.startsWith('on') && typeof value === 'function') {
      el.addEventListener(key.slice(2), value);
    } else if (key === 'class') {
      el.className = value;
    } else if (key === 'value' && 'value' in el) {
      el.value = value;
    } else if (value === true) {
      el.setAttribute(key, '');
    } else {
      el.setAttribute(key, String(value));
    }
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

/** Replace the children of ``el``. */
export function replace(el, ...children) {
  el.replaceChildren();
  append(el, children);
  return el;
}

const BADGE_KINDS = {
  Available: 'ok',
  Online: 'ok',
  Accepted: 'ok',
  active: 'live',
  Charging: 'live',
  Preparing: 'live',
  SuspendedEV: 'warn',
  SuspendedEVSE: 'warn',
  Finishing: 'live',
  Reserved: 'warn',
  Pending: 'warn',
  Faulted: 'bad',
  Rejected: 'bad',
  Unavailable: 'muted',
  Offline: 'muted',
  completed: 'muted',
};

/** A status as text with a colour; the colour is never the only signal. */
export function badge(status, label) {
  // A status the catalogue names ("status.Charging") in the reader's words, else as it came.
  const text = label ?? (status && has(`status.${status}`) ? t(`status.${status}`) : status) ?? TEXT.unknown;
  return h('span', { class: `badge badge--${BADGE_KINDS[status] || 'muted'}`, 'data-status': status }, text);
}

export function emptyState(text, ...actions) {
  return h('div', { class: 'state state--empty', role: 'status' }, h('p', {}, text), actions);
}

export function errorState(error, retry) {
  return h(
    'div',
    { class: 'state state--error', role: 'alert' },
    h('p', {}, describeError(error)),
    retry ? h('button', { type: 'button', onclick: retry }, TEXT.tryAgain) : null,
  );
}

export function loadingState(text = TEXT.loading) {
  return h('div', { class: 'state state--loading', role: 'status', 'aria-busy': 'true' }, text);
}

/** What to tell a person about a failed call. */
export function describeError(error) {
  if (!error) return TEXT.somethingWrong;
  if (error.status === 0) return TEXT.unreachable;
  // The API's error codes in the reader's words ("error.charger_offline"); the server's own sentence otherwise.
  if (error.code && has(`error.${error.code}`)) return t(`error.${error.code}`);
  return error.message || String(error);
}

// -- notifications ---------------------------------------------------------------

/** A short message in the corner; read out by screen readers. */
export function toast(message, { kind = 'info', timeout = 6000 } = {}) {
  let box = document.getElementById('toasts');
  if (!box) {
    box = h('div', { id: 'toasts', class: 'toasts', role: 'status', 'aria-live': 'polite' });
    document.body.append(box);
  }
  const item = h(
    'div',
    { class: `toast toast--${kind}` },
    h('span', {}, message),
    h('button', { type: 'button', class: 'link', 'aria-label': TEXT.dismiss, onclick: () => item.remove() }, '×'),
  );
  box.append(item);
  if (timeout) setTimeout(() => item.remove(), timeout);
  return item;
}

// -- tables whose rows change live ------------------------------------------------

/**
 * A table keyed by ``key(row)``: ``upsert`` replaces or adds one row in place
 * (new rows first, as the lists are newest first), so live events never
 * re-render the whole list or lose the reader's place.
 */
/**
 * The "Show older …" button of a list paged by cursor (`{items, next}`). ``reset(page)``
 * after loading the first page; a click fetches ``fetchPage(cursor)`` and hands its items to
 * ``append``; the button hides when there is no older page, and a failure is a toast.
 */
export class OlderPages {
  constructor(label, { fetchPage, append }) {
    this.next = null;
    this.fetchPage = fetchPage;
    this.append = append;
    this.button = h('button', { type: 'button', hidden: true, 'data-older': '' }, label);
    this.button.addEventListener('click', () => this.load());
  }

  reset(page) {
    this.next = page.next;
    this.button.hidden = !this.next;
  }

  async load() {
    this.button.disabled = true;
    try {
      const page = await this.fetchPage(this.next);
      this.append(page.items);
      this.reset(page);
    } catch (error) {
      toast(describeError(error), { kind: 'bad' });
    } finally {
      this.button.disabled = false;
    }
  }
}

export class LiveTable {
  constructor({ columns, key, empty, caption, onRowClick, rowLabel }) {
    this.columns = columns;
    this.key = key;
    this.emptyText = empty;
    this.onRowClick = onRowClick;
    this.rowLabel = rowLabel;
    this.rows = new Map();
    this.body = h('tbody');
    this.table = h(
      'table',
      { class: 'table' },
      caption ? h('caption', { class: 'visually-hidden' }, caption) : null,
      h('thead', {}, h('tr', {}, columns.map((c) => h('th', { scope: 'col', class: c.class }, c.label)))),
      this.body,
    );
    this.empty = emptyState(empty);
    this.element = h('div', { class: 'table-wrap' }, this.table, this.empty);
    this._sync();
  }

  setRows(rows) {
    this.rows.clear();
    this.body.replaceChildren();
    for (const row of rows) this.upsert(row, { atEnd: true });
    this._sync();
  }

  appendRows(rows) {
    for (const row of rows) this.upsert(row, { atEnd: true });
  }

  get(id) {
    return this.rows.get(String(id))?.data;
  }

  upsert(row, { atEnd = false } = {}) {
    const id = String(this.key(row));
    const tr = this._render(row, id);
    const old = this.rows.get(id);
    if (old) {
      old.tr.replaceWith(tr);
    } else if (atEnd) {
      this.body.append(tr);
    } else {
      this.body.prepend(tr);
    }
    this.rows.set(id, { tr, data: row });
    this._sync();
    return tr;
  }

  /** Re-render one row from new data merged into the old (``patch`` may be a function). */
  patch(id, patch) {
    const old = this.rows.get(String(id));
    if (!old) return false;
    const data = typeof patch === 'function' ? patch(old.data) : { ...old.data, ...patch };
    this.upsert(data);
    return true;
  }

  remove(id) {
    const old = this.rows.get(String(id));
    if (!old) return;
    old.tr.remove();
    this.rows.delete(String(id));
    this._sync();
  }

  _render(row, id) {
    const tr = h('tr', { 'data-key': id });
    for (const column of this.columns) {
      const content = column.render(row);
      tr.append(h('td', { class: column.class, 'data-label': column.label }, content));
    }
    if (this.onRowClick) {
      tr.classList.add('clickable');
      tr.addEventListener('click', (event) => {
        if (event.target.closest('a, button, input, select')) return;
        this.onRowClick(row);
      });
    }
    return tr;
  }

  _sync() {
    const none = this.rows.size === 0;
    this.table.hidden = none;
    this.empty.hidden = !none;
  }
}

// -- forms in a dialog ---------------------------------------------------------------

/**
 * A modal form (native <dialog>: focus stays inside, Escape closes).
 * ``fields``: [{name, label, type ('text'|'number'|'password'|'select'|'checkbox'), options:[{value,label}],
 *  required, help, placeholder, autocomplete, inputmode}]. ``onSubmit(values)`` returns a promise;
 * an error it throws is shown in the dialog (a 400 naming a field marks that field).
 */
export function formDialog({ title, fields, values = {}, submitLabel = TEXT.save, onSubmit }) {
  const uid = `f${Math.random().toString(36).slice(2, 8)}`;
  const error = h('p', { class: 'form-error', role: 'alert', hidden: true });
  const inputs = {};
  const rows = fields.map((field) => {
    const id = `${uid}-${field.name}`;
    const helpId = field.help ? `${id}-help` : null;
    let input;
    const common = { id, name: field.name, required: field.required, 'aria-describedby': helpId };
    if (field.type === 'select') {
      input = h(
        'select',
        common,
        field.options.map((o) => h('option', { value: o.value }, o.label)),
      );
      input.value = values[field.name] ?? field.options[0]?.value ?? '';
    } else if (field.type === 'checkbox') {
      input = h('input', { ...common, type: 'checkbox' });
      input.checked = Boolean(values[field.name]);
    } else {
      input = h('input', {
        ...common,
        type: field.type || 'text',
        placeholder: field.placeholder,
        autocomplete: field.autocomplete || 'off',
        inputmode: field.inputmode,
        readonly: field.readonly,
      });
      input.value = values[field.name] ?? '';
    }
    inputs[field.name] = input;
    return h(
      'div',
      { class: `field${field.type === 'checkbox' ? ' field--check' : ''}` },
      h('label', { for: id }, field.label),
      input,
      field.help ? h('small', { id: helpId, class: 'help' }, field.help) : null,
    );
  });
  const submit = h('button', { type: 'submit', class: 'primary' }, submitLabel);
  const form = h(
    'form',
    { method: 'dialog', novalidate: false },
    h('h2', {}, title),
    rows,
    error,
    h(
      'div',
      { class: 'actions' },
      h('button', { type: 'button', onclick: () => dialog.close() }, TEXT.cancel),
      submit,
    ),
  );
  const dialog = h('dialog', { class: 'dialog', 'aria-label': title }, form);
  form.addEventListener('submit', async (event) => {
    event.preventDefault();
    const out = {};
    for (const [name, input] of Object.entries(inputs)) {
      input.removeAttribute('aria-invalid');
      out[name] = input.type === 'checkbox' ? input.checked : input.value.trim();
    }
    submit.disabled = true;
    error.hidden = true;
    try {
      await onSubmit(out);
      dialog.close();
    } catch (e) {
      error.textContent = describeError(e);
      error.hidden = false;
      const named = Object.keys(inputs).find((name) => (e.message || '').includes(name));
      if (named) {
        inputs[named].setAttribute('aria-invalid', 'true');
        inputs[named].focus();
      }
    } finally {
      submit.disabled = false;
    }
  });
  dialog.addEventListener('close', () => dialog.remove());
  document.body.append(dialog);
  dialog.showModal();
  return dialog;
}

/** Ask before something that cannot be undone. */
export function confirmDialog(message, { confirmLabel = TEXT.delete } = {}) {
  return new Promise((resolve) => {
    const dialog = h(
      'dialog',
      { class: 'dialog', role: 'alertdialog', 'aria-label': message },
      h('p', {}, message),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', onclick: () => dialog.close('no') }, TEXT.cancel),
        h('button', { type: 'button', class: 'danger', onclick: () => dialog.close('yes') }, confirmLabel),
      ),
    );
    dialog.addEventListener('close', () => {
      dialog.remove();
      resolve(dialog.returnValue === 'yes');
    });
    document.body.append(dialog);
    dialog.showModal();
  });
}
