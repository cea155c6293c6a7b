// Closing a session that cannot end, by hand: a button that asks for the
// reason in a dialog naming what the close does, then
// POST /api/cms/sessions/{id}/close. The pages learn the outcome from the
// session.stopped push as well as from the answer.

import { formDialog, h, toast } from '/shared/dom.js';
import { formatEnergy } from '/shared/format.js';
import { messages } from '/shared/i18n.js';

// "cms.close.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.close');

export function closeSessionButton(ctx, session, onClosed = () => {}) {
  return h(
    'button',
    {
      type: 'button',
      class: 'danger',
      'data-close-session': session.id,
      'aria-label': TEXT.closeSession(session.id),
      onclick: () => askToClose(ctx, session, onClosed),
    },
    TEXT.button,
  );
}

export function askToClose(ctx, session, onClosed = () => {}) {
  return formDialog({
    title: TEXT.title(session.id),
    submitLabel: TEXT.submit,
    fields: [
      {
        name: 'reason',
        label: TEXT.reason,
        required: true,
        placeholder: TEXT.reasonExample,
        help: TEXT.help(session.chargePointId, session.connectorId, formatEnergy(session.energyWh)),
      },
    ],
    onSubmit: async ({ reason }) => {
      const answer = await ctx.api.post(`/api/cms/sessions/${encodeURIComponent(session.id)}/close`, { reason });
      toast(TEXT.closed(session.id), { kind: 'ok' });
      onClosed(answer.session);
    },
  });
}
