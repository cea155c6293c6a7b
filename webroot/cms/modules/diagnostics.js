// A point's diagnostics: ask the charger for them (GetDiagnostics without a
// location: ocppd hands it an upload URL of its own), see its uploads arrive,
// and download or delete each (DELETE /api/cms/diagnostics/{id}, asked first,
// audited; older files are pruned by the server anyway, [files]
// diagnostics_keep_days). Fed by GET /api/cms/points/{id}/diagnostics; the
// charger's DiagnosticsStatusNotification (ocppd.admin.ocpp.{id}) says when
// to look again. Files come with the bearer token, so through fetch.

import { badge, confirmDialog, describeError, h, LiveTable, replace, toast } from '/shared/dom.js';
import { formatBytes, formatDateTime } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.diagnostics.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.diagnostics');

export function diagnosticsCard(ctx, chargePointId) {
  const status = h('p', { class: 'muted', 'aria-live': 'polite', 'data-field': 'diagnostics-request' });
  const download = async (upload) => {
    try {
      const response = await fetch(`/api/cms/diagnostics/${upload.id}/file`, { headers: { Authorization: `Bearer ${ctx.api.token}` } });
      if (!response.ok) throw new Error(TEXT.fetchFailed(response.status));
      const url = URL.createObjectURL(await response.blob());
      const link = h('a', { href: url, download: `${upload.id}-${upload.fileName}` });
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(url), 10_000);
    } catch (error) {
      toast(describeError(error), { kind: 'bad' });
    }
  };
  const table = new LiveTable({
    caption: TEXT.caption,
    key: (u) => u.id,
    empty: TEXT.empty,
    columns: [
      { label: TEXT.asked, render: (u) => formatDateTime(u.createdAt) },
      { label: TEXT.file, render: (u) => (u.receivedAt ? h('span', { class: 'mono', 'data-field': 'file-name' }, u.fileName) : badge('Pending', TEXT.waiting)) },
      { label: TEXT.size, class: 'num', render: (u) => formatBytes(u.size) },
      { label: TEXT.received, render: (u) => (u.receivedAt ? formatDateTime(u.receivedAt) : '—') },
      {
        label: '',
        render: (u) =>
          u.receivedAt
            ? h(
                'span',
                { class: 'row-actions' },
                h('button', { type: 'button', 'aria-label': TEXT.downloadNamed(u.fileName), onclick: () => download(u) }, TEXT.download),
                h('button', { type: 'button', class: 'danger', 'aria-label': TEXT.deleteNamed(u.fileName), onclick: () => remove(u) }, TEXT.delete),
              )
            : null,
      },
    ],
  });
  const remove = async (upload) => {
    const sure = await confirmDialog(TEXT.confirmDelete(upload.fileName, formatBytes(upload.size), chargePointId), { confirmLabel: TEXT.deleteFile });
    if (!sure) return;
    try {
      await ctx.api.delete(`/api/cms/diagnostics/${upload.id}`);
      toast(TEXT.deleted(upload.fileName));
      await refresh();
    } catch (error) {
      toast(describeError(error), { kind: 'bad' });
    }
  };
  const refresh = async () => {
    try {
      const page = await ctx.api.get(`/api/cms/points/${encodeURIComponent(chargePointId)}/diagnostics`, { limit: 20 });
      table.setRows(page.items);
    } catch (error) {
      replace(status, describeError(error));
    }
  };
  const ask = h('button', { type: 'button', class: 'primary' }, TEXT.ask);
  ask.addEventListener('click', async () => {
    ask.disabled = true;
    replace(status, TEXT.asking);
    try {
      const answer = await ctx.api.post('/api/charger/get-diagnostics', { chargePointId });
      replace(status, answer.fileName ? TEXT.willUpload(answer.fileName) : TEXT.nothing);
      await refresh();
    } catch (error) {
      replace(status, describeError(error));
    } finally {
      ask.disabled = false;
    }
  });
  const element = h('section', { class: 'card', 'aria-labelledby': 'diagnostics-title' }, h('div', { class: 'card-head' }, h('h2', { id: 'diagnostics-title' }, TEXT.title), ask), status, table.element);
  return { element, refresh };
}
