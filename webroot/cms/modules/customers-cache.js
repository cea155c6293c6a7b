// Who a session's customer is, by user id: the CMS names people, not ids.
// Lists from the API carry ``customer``; a session pushed live carries only
// ``userId``, so the name is asked for once per user and kept for the page's life.

import { h } from '/shared/dom.js';
import { messages } from '/shared/i18n.js';

// "cms.customerCell.*" of the message catalogue (cms/i18n/).
const TEXT = messages('cms.customerCell');

const known = new Map();

/** The session with ``customer`` filled in (from the cache or one GET /api/cms/users/{id}). */
export async function withCustomer(ctx, session) {
  if (session.customer !== undefined || !session.userId) return session;
  if (!known.has(session.userId)) {
    known.set(
      session.userId,
      ctx.api.get(`/api/cms/users/${session.userId}`).then(
        (user) => ({ userId: user.id, email: user.email, name: user.name }),
        () => null,
      ),
    );
  }
  return { ...session, customer: await known.get(session.userId) };
}

/** Remember the customers a page of sessions named. */
export function remember(sessions) {
  for (const s of sessions) if (s.customer) known.set(s.customer.userId, Promise.resolve(s.customer));
}

/** The Customer cell: their name (or e-mail), linked to their page, the card below. */
export function customerCell(s) {
  const who = s.customer;
  if (!who) return [s.idTag, s.userId ? h('span', { class: 'muted' }, ` · ${TEXT.account(s.userId)}`) : null];
  return h(
    'span',
    { class: 'stack' },
    h('a', { href: `#/customers/${who.userId}`, 'data-field': 'customer' }, who.name || who.email),
    h('small', { class: 'muted mono' }, s.idTag),
  );
}

/** A session pushed live: once its customer is known, patched into its row (whatever is newest there). */
export async function nameCustomer(ctx, table, session) {
  const shown = table.get(session.id);
  if (!session.userId || session.customer !== undefined || (shown && shown.customer !== undefined)) return;
  const { customer } = await withCustomer(ctx, session);
  if (customer) table.patch(session.id, { customer });
}
