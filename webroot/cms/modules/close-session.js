// Closing a session that cannot end, by hand: a button that asks for the
// reason in a dialog naming what the close does, then
// POST /api/cms/sessions/{id}/close. The pages learn the outcome from the
// session.stopped push as well as from the answer.

import { formDialog, h, toast } from '/shared/dom.js';
import { formatEnergy } from '/shared/format.js';

export function closeSessionButton(ctx, session, onClosed = () => {}) {
  return h(
    'button',
    {
      type: 'button',
      class: 'danger',
      'data-close-session': session.id,
      'aria-label': `Close session ${session.id}`,
      onclick: () => askToClose(ctx, session, onClosed),
    },
    'Close…',
  );
}

export function askToClose(ctx, session, onClosed = () => {}) {
  return formDialog({
    title: `Close session ${session.id}?`,
    submitLabel: 'Close session',
    fields: [
      {
        name: 'reason',
        label: 'Reason (kept in the audit log)',
        required: true,
        placeholder: 'e.g. charger replaced, its stop will never come',
        help: `${session.chargePointId} connector ${session.connectorId}: the session ends on its last meter reading (${formatEnergy(session.energyWh)}) and is billed as if the charger had stopped it. The charger is not told.`,
      },
    ],
    onSubmit: async ({ reason }) => {
      const answer = await ctx.api.post(`/api/cms/sessions/${encodeURIComponent(session.id)}/close`, { reason });
      toast(`Session ${session.id} closed.`, { kind: 'ok' });
      onClosed(answer.session);
    },
  });
}
