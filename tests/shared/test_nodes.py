"""
Two nodes (``ocppd.service.Ocppd`` each, on its own store and Clock) whose
shared state is one Redis key prefix, as with ``[presence] backend = redis``:
a guesser cannot spread sign-in failures over nodes, and a sign-out on one
node ends that token's push sessions on the other.
"""

from __future__ import annotations

import uuid
from collections.abc import Generator
from typing import Any

import attrs
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.api.errors import ApiError
from ocppd.push.session import SIGNED_OUT, ticket_digest
from ocppd.service import Ocppd
from ocppd.shared.redis import RedisSharedState
from tests.api.inline import InlineNode
from tests.presence.contract import eventually
from tests.presence.test_redis import delete_prefix, require_redis
from tests.redis.links import started_link

EMAIL, PASSWORD = "ops@example.com", "correct horse battery"
STRANGER = "198.51.100.66"


@attrs.define
class FakeSession:
    ticket_digest: str
    ended: list[str] = attrs.Factory(list)

    def end(self, reason: str, message: str) -> None:
        self.ended.append(reason)


@attrs.define(eq=False)
class FakeProtocol:
    session: FakeSession


class TwoNodeTests(TestCase):
    def setUp(self) -> None:
        url = require_redis()
        prefix = "t" + uuid.uuid4().hex[:10]
        self.addCleanup(delete_prefix, prefix)

        def shared(node: Ocppd) -> RedisSharedState:
            link = started_link(self, url)
            state = RedisSharedState(clock=node.reactor, link=link, prefix=prefix)
            state.start()
            self.addCleanup(state.stop)
            return state

        self.patch(Ocppd, "_make_shared_state", shared)
        self.a = InlineNode(self)
        self.b = InlineNode(self)
        for inline in (self.a, self.b):
            inline.add_user(EMAIL, PASSWORD, "admin")
        return eventually(  # type: ignore[no-any-return]
            lambda: all(n.node.shared.connected() for n in (self.a, self.b))  # type: ignore[attr-defined]
        )

    @inlineCallbacks
    def test_sign_in_failures_counted_across_nodes(self) -> Generator[Deferred[Any], Any, None]:
        for n in range(3):
            with self.assertRaises(ApiError) as wrong:
                yield self.a.node.accounts.login(EMAIL, f"guess {n}", STRANGER)
            self.assertEqual(wrong.exception.status, 401)
        # The fourth guess, on the other node, must wait as it would on the first.
        with self.assertRaises(ApiError) as refused:
            yield self.b.node.accounts.login(EMAIL, PASSWORD, STRANGER)
        self.assertEqual(
            (refused.exception.status, refused.exception.headers), (429, {"Retry-After": "1"})
        )

    @inlineCallbacks
    def test_sign_out_ends_push_sessions_on_every_node(self) -> Generator[Deferred[Any], Any, None]:
        user_id = self.a.add_user("two@example.com", PASSWORD, "customer")
        token = self.a.token(user_id)
        here = FakeSession(ticket_digest(token))
        there = FakeSession(ticket_digest(token))
        other = FakeSession(ticket_digest("another token"))
        _open(self.a.node, here)
        for session in (there, other):
            _open(self.b.node, session)
        revoked = yield self.a.node.accounts.logout(f"Bearer {token}")
        self.assertTrue(revoked)
        self.assertEqual(len(here.ended), 1)  # at once on the node signed out of
        yield eventually(lambda: there.ended)
        self.assertEqual(there.ended, [SIGNED_OUT])
        self.assertEqual(other.ended, [])


def _open(node: Ocppd, session: FakeSession) -> None:
    """A push session of ``node`` that joined with the ticket of ``session``."""
    node.push.factory.protocols_open[FakeProtocol(session)] = None  # type: ignore[index]
