// Every charger command on a point's page, each form built from its request's
// fields as GET /api/cms/commands describes them (the OCPP 1.6 schemas the API
// validates with, ranges included): no form is written by hand. A command
// that interrupts charging (reset, remote stop, unlock, making a connector
// inoperative) first asks in a dialog naming its consequence and the running
// sessions it would affect; Cancel sends nothing. Sent with
// POST /api/charger/{command}; the charger's answer is shown under the form.

import { badge, describeError, h, replace } from '/shared/dom.js';
import { formatEnergy } from '/shared/format.js';
import { language, messages } from '/shared/i18n.js';
import { withCustomer } from './customers-cache.js';

// "cms.commands.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.commands');

const connectorName = (n) => (n === 0 ? TEXT.wholeCharger : TEXT.connector(n));

/** An OCPP name in English words ("ChangeAvailability" -> "Change availability"). */
const words = (name) => name.replace(/([a-z])([A-Z])/g, '$1 $2').replace(/ ([A-Z])/g, (m, c) => ` ${c.toLowerCase()}`);

/**
 * A command's title: a few in an operator's words ("cms.commands.titles.*");
 * the others are OCPP's action names, split into words in English and kept
 * as the specification writes them in other languages (operators know them).
 */
export function commandTitle(form) {
  return TEXT.titles[form.command] ?? (language() === 'en' ? words(form.action) : form.action);
}

/**
 * What a command would interrupt, or null when it interrupts nothing:
 * {title, consequence, confirm, affects: (session) => bool}.
 */
export function interruption(command, request, chargePointId) {
  const connector = request.connectorId;
  if (command === 'reset') {
    return {
      title: TEXT.resetTitle(chargePointId),
      consequence: request.type === 'Hard' ? TEXT.resetHard : TEXT.resetSoft,
      confirm: request.type ? TEXT.resetTyped(request.type) : TEXT.reset,
      affects: () => true,
    };
  }
  if (command === 'remote-stop') {
    return {
      title: TEXT.stopTitle(request.transactionId),
      consequence: TEXT.stopConsequence,
      confirm: TEXT.stopConfirm,
      affects: (s) => s.transactionId === request.transactionId,
    };
  }
  if (command === 'unlock-connector') {
    return {
      title: TEXT.unlockTitle(connectorName(connector), chargePointId),
      consequence: TEXT.unlockConsequence,
      confirm: TEXT.unlockConfirm,
      affects: (s) => s.connectorId === connector,
    };
  }
  if (command === 'change-availability' && request.type === 'Inoperative') {
    return {
      title: TEXT.inoperativeTitle(connectorName(connector), chargePointId),
      consequence: TEXT.inoperativeConsequence(connectorName(connector)),
      confirm: TEXT.inoperativeConfirm,
      affects: (s) => connector === 0 || s.connectorId === connector,
    };
  }
  return null;
}

function sessionLine(session) {
  const who = session.customer ? session.customer.name || session.customer.email : TEXT.unknownCustomer(session.idTag);
  return h(
    'li',
    { 'data-session': session.id },
    TEXT.sessionOn(session.id, session.transactionId, connectorName(session.connectorId)),
    h('strong', { 'data-field': 'customer' }, who),
    session.customer && session.customer.name ? ` (${session.customer.email})` : '',
    ', ',
    h('span', { 'data-field': 'energy' }, TEXT.soFar(formatEnergy(session.energyWh))),
    '.',
  );
}

/** Ask before an interruption; resolves true only on the confirm button. */
export async function confirmInterruption(ctx, what, running) {
  const affected = await Promise.all(running.filter(what.affects).map((s) => withCustomer(ctx, s)));
  return new Promise((resolve) => {
    const dialog = h(
      'dialog',
      { class: 'dialog', role: 'alertdialog', 'aria-label': what.title, 'data-confirm': 'command' },
      h('h2', {}, what.title),
      h('p', { 'data-field': 'consequence' }, what.consequence),
      affected.length ? [h('p', {}, TEXT.affected), h('ul', { class: 'affected' }, affected.map(sessionLine))] : h('p', { class: 'muted' }, TEXT.noneAffected),
      h(
        'div',
        { class: 'actions' },
        h('button', { type: 'button', onclick: () => dialog.close('no') }, TEXT.cancel),
        h('button', { type: 'button', class: 'danger', onclick: () => dialog.close('yes') }, what.confirm),
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

// -- fields from their description ------------------------------------------------------

/**
 * A field's label: where the schema's name reads badly, "cms.commands.labels.*";
 * the others are the schema's name, as words in English ("connectorId" ->
 * "Connector id") and as the specification writes it in other languages.
 */
const label = (name) =>
  TEXT.labels[name] ??
  (language() === 'en'
    ? name
        .replace(/([a-z])([A-Z])/g, '$1 $2')
        .toLowerCase()
        .replace(/^./, (c) => c.toUpperCase())
    : name);

/** The server's note on a field it fills itself, in the reader's words where the catalogue has them. */
const noteText = (field) => (field.note ? (TEXT.notes[field.name] ?? field.note) : null);

let uid = 0;

/**
 * An input (or group) for one described field: {element, read()}, read()
 * giving the value to send or undefined to leave it out. ``pickers`` maps a
 * text field's path to a function making, from its input, a choice shown
 * under it that fills it in (the UpdateFirmware location's files).
 */
function fieldInput(field, path, defaults, pickers = {}) {
  const id = `cmd-${path.replace(/[^a-z0-9]+/gi, '-')}-${(uid += 1)}`;
  const title = label(field.name || 'item');
  const note = noteText(field);
  const help = [note, field.type === 'array' && field.items.type !== 'object' ? TEXT.listHelp : null].filter(Boolean).join(' · ');
  const helpId = help ? `${id}-help` : undefined;
  const row = (input, read, extra = null) => ({
    element: h('div', { class: 'field' }, h('label', { for: id }, title, field.required ? '' : h('span', { class: 'muted' }, ` ${TEXT.optional}`)), input, help ? h('small', { id: helpId, class: 'help' }, help) : null, extra),
    read,
    input,
  });
  const common = { id, name: field.name, required: field.required, 'aria-describedby': helpId, 'data-field-path': path };
  const initial = defaults?.[path];

  if (field.type === 'object') return objectGroup(field, path, defaults, pickers);
  if (field.type === 'array' && field.items.type === 'object') return arrayGroup(field, path, defaults, pickers);
  if (field.enum || field.type === 'boolean') {
    const options = field.enum || [true, false];
    const select = h(
      'select',
      common,
      h('option', { value: '' }, field.required ? TEXT.pick : TEXT.absent),
      options.map((o) => h('option', { value: String(o) }, String(o))),
    );
    if (initial !== undefined) select.value = String(initial);
    return row(select, () => {
      if (select.value === '') return undefined;
      return field.type === 'boolean' ? select.value === 'true' : select.value;
    });
  }
  if (field.type === 'array') {
    const input = h('input', { ...common, type: 'text', autocomplete: 'off' });
    return row(input, () => {
      const items = input.value.split(',').map((t) => t.trim()).filter(Boolean);
      if (!items.length) return undefined;
      return field.items.type === 'integer' || field.items.type === 'number' ? items.map(Number) : items;
    });
  }
  if (field.type === 'integer' || field.type === 'number') {
    const input = h('input', {
      ...common,
      type: 'number',
      inputmode: field.type === 'integer' ? 'numeric' : 'decimal',
      step: field.type === 'integer' ? '1' : String(field.multipleOf || 'any'),
      min: field.minimum,
      max: field.maximum,
      autocomplete: 'off',
    });
    if (initial !== undefined) input.value = String(initial);
    return row(input, () => (input.value.trim() === '' ? undefined : Number(input.value)));
  }
  if (field.format === 'date-time') {
    // The reader's local time, sent in UTC.
    const input = h('input', { ...common, type: 'datetime-local', step: '1' });
    return row(input, () => (input.value ? new Date(input.value).toISOString() : undefined));
  }
  const input = h('input', { ...common, type: field.format === 'uri' ? 'url' : 'text', maxlength: field.maxLength, autocomplete: 'off', spellcheck: 'false' });
  if (initial !== undefined) input.value = String(initial);
  return row(input, () => (input.value.trim() === '' ? undefined : input.value.trim()), pickers[path] ? pickers[path](input) : null);
}

/** A nested object: its fields in a fieldset; an optional one is left out until included. */
function objectGroup(field, path, defaults, pickers) {
  const children = field.fields.map((child) => fieldInput(child, path ? `${path}.${child.name}` : child.name, defaults, pickers));
  const inner = h('div', { class: 'fields' }, children.map((c) => c.element));
  if (!field.name) return { element: inner, read: () => readObject(children, field.fields) };
  const set = h('fieldset', { class: 'group', 'data-field-path': path }, h('legend', {}, label(field.name)));
  if (field.required) {
    set.append(inner);
    return { element: set, read: () => readObject(children, field.fields) ?? {} };
  }
  const toggle = h('input', { type: 'checkbox', id: `cmd-include-${(uid += 1)}` });
  const body = h('fieldset', { class: 'group-body', disabled: true }, inner);
  toggle.addEventListener('change', () => {
    body.disabled = !toggle.checked;
    body.hidden = !toggle.checked;
  });
  body.hidden = true;
  set.append(h('div', { class: 'field field--check' }, toggle, h('label', { for: toggle.id }, TEXT.include(label(field.name)))), body);
  return { element: set, read: () => (toggle.checked ? (readObject(children, field.fields) ?? {}) : undefined) };
}

function readObject(children, fields) {
  const out = {};
  children.forEach((child, i) => {
    const value = child.read();
    if (value !== undefined) out[fields[i].name] = value;
  });
  return Object.keys(out).length ? out : undefined;
}

/** A list of objects: one fieldset per item, added and removed by hand. */
function arrayGroup(field, path, defaults, pickers) {
  const items = [];
  const list = h('ol', { class: 'group-items' });
  const name = label(field.name);
  const add = () => {
    const entry = objectGroup({ ...field.items, name: null }, `${path}[${items.length}]`, defaults, pickers);
    const li = h('li', {}, h('fieldset', { class: 'group' }, h('legend', {}, TEXT.item(name, items.length + 1)), entry.element));
    const item = { entry, li };
    li.querySelector('fieldset').append(
      h('button', { type: 'button', class: 'link', onclick: () => { items.splice(items.indexOf(item), 1); li.remove(); } }, TEXT.remove),
    );
    items.push(item);
    list.append(li);
  };
  if (field.required || field.minItems) add();
  const element = h(
    'fieldset',
    { class: 'group', 'data-field-path': path },
    h('legend', {}, name, field.required ? '' : h('span', { class: 'muted' }, ` ${TEXT.optional}`)),
    field.note ? h('small', { class: 'help' }, noteText(field)) : null,
    list,
    h('button', { type: 'button', onclick: add }, TEXT.add(name)),
  );
  return { element, read: () => (items.length ? items.map((i) => i.entry.read() ?? {}) : undefined) };
}

/**
 * The commands card's content: a choice of command and its form.
 * ``running()`` gives the point's running sessions (for the confirmation),
 * ``defaults(command)`` a form's first values by field path, ``pickers(command)``
 * the choices that fill in its text fields, by path (see fieldInput).
 */
export function commandPanel(ctx, { chargePointId, forms, running, defaults = () => ({}), pickers = () => ({}) }) {
  const answer = h('section', { class: 'command-answer', 'aria-live': 'polite', 'aria-label': TEXT.answer });
  const holder = h('div', { class: 'command-holder' });
  const choice = h(
    'select',
    { id: 'command-choice', name: 'command' },
    forms.map((f) => h('option', { value: f.command }, commandTitle(f))),
  );

  const build = (form) => {
    const title = commandTitle(form);
    const root = fieldInput({ type: 'object', fields: form.fields, required: true }, '', defaults(form.command), pickers(form.command));
    const submit = h('button', { type: 'submit', class: 'primary' }, TEXT.send);
    const element = h('form', { class: 'command', 'data-command': form.command, 'aria-label': title }, h('h3', {}, title, title === form.action ? null : h('span', { class: 'muted mono' }, ` ${form.action}`)), root.element, h('div', { class: 'actions' }, submit));
    element.addEventListener('submit', async (event) => {
      event.preventDefault();
      const request = root.read() ?? {};
      const what = interruption(form.command, request, chargePointId);
      if (what && !(await confirmInterruption(ctx, what, running()))) return;
      submit.disabled = true;
      replace(answer, h('p', { class: 'muted' }, TEXT.waiting(title)));
      try {
        const reply = await ctx.api.post(`/api/charger/${form.command}`, { chargePointId, ...request });
        const shown = { ...reply };
        delete shown.commandId;
        replace(answer, h('h3', {}, `${title}: `, reply.status ? badge(reply.status) : TEXT.answered), h('pre', { 'data-answer': form.command }, JSON.stringify(shown, null, 2)));
      } catch (error) {
        replace(answer, h('h3', {}, `${title}: `, badge('Faulted', error.code || TEXT.failed)), h('p', { class: 'form-error', 'data-answer': form.command }, describeError(error)));
      } finally {
        submit.disabled = false;
      }
    });
    return element;
  };
  const show = () => {
    const form = forms.find((f) => f.command === choice.value);
    if (form) replace(holder, build(form));
  };
  choice.addEventListener('change', show);
  show();
  return {
    element: h('div', { class: 'command-panel' }, h('div', { class: 'field' }, h('label', { for: 'command-choice' }, TEXT.choose), choice), holder, answer),
    /** Show ``command``'s form (fresh, with its defaults). */
    choose(command) {
      choice.value = command;
      show();
    },
  };
}
