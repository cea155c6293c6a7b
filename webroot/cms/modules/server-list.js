// A list searched, sorted and paged by the server (docs/api.md "Customers, id tags and
// wallets"): a search box (asked as you type, after a pause), filters, a sort, the first
// page and "Show more" for the next ones (cursor), and "Export CSV" of the whole list with
// the same filters. The page owns the table; this owns the query.

import { withQuery } from '/shared/api.js';
import { describeError, errorState, h, loadingState, OlderPages, replace } from '/shared/dom.js';
import { formatCount } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.list.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.list');

const PAGE = 50;
const TYPING_PAUSE = 300;

/**
 * ``filters``: [{name, label, input, value?}] (the search box is one, named ``q``;
 * ``value()`` turns the input's text into the query's, e.g. a day into an instant);
 * ``sorts``: [[value, label]]; ``table``: a LiveTable; ``path``/``csvPath``: the API's;
 * ``label``: the list's name in ids (``points``), ``title``: in words, for "Search {what}";
 * ``onPage(items)``: told of every page shown.
 */
export function serverList({ ctx, path, csvPath, csvName, filters, sorts, table, label, title = label, moreLabel, onPage = () => {} }) {
  const sort = h('select', { id: `${label}-sort`, name: 'sort' }, sorts.map(([value, text]) => h('option', { value }, text)));
  const field = (id, text, input) => h('div', { class: 'field' }, h('label', { for: id }, text), input);
  const count = h('p', { class: 'muted list-count', role: 'status', 'aria-live': 'polite' });
  const exportButton = h('button', { type: 'button', 'data-export': '' }, TEXT.exportCsv);
  const form = h(
    'form',
    { class: 'toolbar', role: 'search', 'aria-label': TEXT.searchList(title) },
    filters.map((f) => field(f.input.id, f.label, f.input)),
    field(sort.id, TEXT.sortBy, sort),
    h('div', { class: 'toolbar-actions' }, h('button', { type: 'submit', class: 'primary' }, TEXT.search), exportButton),
  );
  const query = () => {
    const q = { sort: sort.value };
    for (const f of filters) {
      const value = f.value ? f.value() : f.input.value.trim();
      if (value) q[f.name] = value;
    }
    return q;
  };
  let shown = 0;
  const showCount = (more) => {
    count.textContent = shown ? TEXT.shown({ count: shown, n: `${formatCount(shown)}${more ? '+' : ''}` }) : '';
  };
  const older = new OlderPages(moreLabel, {
    fetchPage: (cursor) => ctx.api.get(path, { ...query(), limit: PAGE, cursor }),
    append: (items) => {
      onPage(items);
      table.appendRows(items);
      shown += items.length;
    },
  });
  // The button is enabled again once a page is in and the next cursor known.
  const observer = new MutationObserver(() => showCount(Boolean(older.next)));
  observer.observe(older.button, { attributes: true, attributeFilter: ['hidden', 'disabled'] });
  ctx.onDispose(() => observer.disconnect());

  const body = h('div', {}, loadingState());
  let asked = 0;
  const load = async () => {
    const ticket = ++asked;
    try {
      const page = await ctx.api.get(path, { ...query(), limit: PAGE });
      // A slower answer to an older search never replaces a newer one.
      if (ticket !== asked) return;
      onPage(page.items);
      table.setRows(page.items);
      shown = page.items.length;
      older.reset(page);
      showCount(Boolean(page.next));
      if (!table.element.isConnected) replace(body, h('section', { class: 'card' }, count, table.element, h('div', { class: 'more' }, older.button)));
    } catch (error) {
      if (ticket === asked) replace(body, errorState(error, load));
    }
  };

  let timer = null;
  ctx.onDispose(() => clearTimeout(timer));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    clearTimeout(timer);
    load();
  });
  for (const f of filters) {
    const again = () => {
      clearTimeout(timer);
      timer = setTimeout(load, f.input.tagName === 'SELECT' ? 0 : TYPING_PAUSE);
    };
    f.input.addEventListener(f.input.tagName === 'SELECT' ? 'change' : 'input', again);
  }
  sort.addEventListener('change', () => load());

  exportButton.addEventListener('click', async () => {
    exportButton.disabled = true;
    try {
      await download(ctx, withQuery(csvPath, query()), csvName);
    } catch (error) {
      ctx.notify(describeError(error), 'bad');
    } finally {
      exportButton.disabled = false;
    }
  });

  return { form, body, load, query };
}

/** Save an export (the API wants the bearer token, so not a plain link). */
async function download(ctx, url, name) {
  const response = await fetch(url, { headers: { Authorization: `Bearer ${ctx.api.token}` }, cache: 'no-store' });
  if (!response.ok) {
    let message = TEXT.serverAnswered(response.status);
    try {
      message = (await response.json()).error.message || message;
    } catch {
      // Not the API's error format: the status says enough.
    }
    throw new Error(message);
  }
  const blob = await response.blob();
  const link = h('a', { href: URL.createObjectURL(blob), download: name, hidden: true });
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10_000);
}
