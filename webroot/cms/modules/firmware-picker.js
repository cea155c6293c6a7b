// The firmware files ocppd serves ([files] firmware_dir, GET /api/cms/firmware)
// offered under UpdateFirmware's location: picking one fills in the absolute
// URL a charger downloads it from; any other URL can still be typed. With no
// file in the folder, or no [files] public_url to build URLs with, it says so.

import { describeError, h, replace } from '/shared/dom.js';
import { formatBytes, formatDateTime } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.firmware.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.firmware');

let uid = 0;

/** A choice of the served firmware files that fills in ``input`` (the location). */
export function firmwarePicker(ctx, input) {
  const holder = h('div', { class: 'picker', 'data-picker': 'firmware' }, h('small', { class: 'muted' }, TEXT.loading));
  const note = (text, kind = 'muted') => replace(holder, h('small', { class: kind, 'data-field': 'firmware-note' }, text));
  const show = (files) => {
    if (!files.length) return note(TEXT.empty);
    if (files.some((f) => !f.url)) return note(TEXT.noUrl);
    const id = `firmware-picker-${(uid += 1)}`;
    const select = h(
      'select',
      { id },
      h('option', { value: '' }, TEXT.choose),
      files.map((f) => h('option', { value: f.url }, TEXT.option(f.name, formatBytes(f.size), formatDateTime(f.modifiedAt)))),
    );
    select.addEventListener('change', () => {
      if (select.value) input.value = select.value;
    });
    // A URL typed by hand is no longer the file picked.
    input.addEventListener('input', () => {
      if (input.value !== select.value) select.value = '';
    });
    return replace(holder, h('label', { for: id }, TEXT.label), select);
  };
  ctx.api.get('/api/cms/firmware').then(
    (answer) => show(answer.items),
    (error) => note(describeError(error), 'form-error'),
  );
  return holder;
}
