"""
Fuzz of the push channel's WAMP parser and state machine (hypothesis):
whatever a browser sends, before or after it signed in, the session answers
with well-formed WAMP or ends with ABORT / GOODBYE and a close code, nothing
raises out of it, and nothing is logged as an error.

Sessions run without sockets (``tests.push.test_session``'s recording peer),
with the real ticket check of a node (``tests.api.inline``), so that a
ticket reaching the store is fuzzed too.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st
from twisted.trial.unittest import SynchronousTestCase

from ocppd.push.broker import Broker
from ocppd.push.channel import ticket_authenticator
from ocppd.push.session import CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR, PushSession, State
from ocppd.push.topics import CHARGERS_STATUS
from tests.api.inline import InlineNode
from tests.fuzz.profile import fuzz_settings
from tests.fuzz.strategies import integers, json_values, texts
from tests.logs import logged_errors
from tests.push.test_session import HELLO, LIMITS, Peer

#: Every message type of WAMP (and a few that are none).
TYPES = (1, 2, 3, 4, 5, 6, 8, 16, 17, 32, 33, 34, 35, 36, 48, 49, 50, 64, 65, 66, 67, 68, 69, 70)
types = st.sampled_from(TYPES) | integers

ids = st.integers(min_value=0, max_value=2**53) | integers | json_values
uris = st.sampled_from([CHARGERS_STATUS, "ocppd.admin.meter", "ocppd.user.1.session"]) | texts
details = st.dictionaries(
    st.sampled_from(["match", "acknowledge", "roles", "authmethods", "x"]) | texts,
    json_values,
    max_size=3,
)

#: Messages shaped like what a client sends, with any of their fields wrong.
shaped = st.one_of(
    st.tuples(st.just(1), uris, details),  # HELLO
    st.tuples(st.just(5), texts | json_values, details),  # AUTHENTICATE
    st.tuples(st.just(6), details, uris),  # GOODBYE
    st.tuples(st.just(3), details, uris),  # ABORT
    st.tuples(st.just(32), ids, details, uris),  # SUBSCRIBE
    st.tuples(st.just(34), ids, ids),  # UNSUBSCRIBE
    st.tuples(st.just(16), ids, details, uris, json_values, json_values),  # PUBLISH
    st.tuples(st.just(48), ids, details, uris),  # CALL
    st.tuples(st.just(64), ids, details, uris),  # REGISTER
).map(list)
#: Arrays starting with any type code, and any JSON at all.
loose = st.builds(lambda kind, rest: [kind, *rest], types, st.lists(json_values, max_size=6))
messages = st.one_of(shaped, shaped, loose, json_values)


def encoded(message: Any) -> tuple[bytes, bool]:
    """A text frame of ``message`` (lone surrogates as JSON escapes, as a browser's would be)."""
    return json.dumps(message).encode("ascii"), False


frames = st.one_of(
    messages.map(encoded),
    messages.map(encoded),
    st.tuples(st.binary(max_size=64), st.booleans()),  # not JSON, not UTF-8, "binary"
)


class WampFuzzTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.inline = InlineNode(self)
        admin = self.inline.add_user("ops@example.com", "admin password", "admin")
        self.ticket = self.inline.token(admin)
        self.authenticate = ticket_authenticator(self.inline.node.accounts.user_for_token)
        self.errors = logged_errors(self)

    def session(self) -> tuple[PushSession, Peer, Broker]:
        peer = Peer()
        broker = Broker()
        session = PushSession(
            session_id=7,
            peer=peer,
            broker=broker,
            authenticate=self.authenticate,
            clock=self.inline.clock,
            limits=LIMITS,
        )
        session.opened()
        return session, peer, broker

    def feed(self, session: PushSession, peer: Peer, frames: list[tuple[bytes, bool]]) -> None:
        """Every frame in turn: nothing raises; whatever is sent back is a WAMP message."""
        for payload, is_binary in frames:
            session.received(payload, is_binary)
            for sent in peer.sent:
                self.assertIsInstance(sent, list)
                self.assertIsInstance(sent[0], int)
            if peer.closed is not None:
                self.assertIn(peer.closed[0], (CLOSE_NORMAL, CLOSE_PROTOCOL_ERROR))
                self.assertIs(session.state, State.CLOSED)
        self.assertEqual(self.errors, [])

    def end(self, session: PushSession, broker: Broker) -> None:
        """However the session went, once its connection is gone it holds no subscription."""
        session.lost()
        self.assertEqual(session.subscriptions, {})
        self.assertEqual(broker.publish(CHARGERS_STATUS, {"type": "x"}), 0)

    @fuzz_settings(200)
    @given(st.lists(frames, min_size=1, max_size=4))
    def test_before_welcome(self, frames: list[tuple[bytes, bool]]) -> None:
        """Anything at all as a session's first messages."""
        session, peer, broker = self.session()
        self.feed(session, peer, frames)
        self.end(session, broker)

    @fuzz_settings(200)
    @given(st.lists(frames, min_size=1, max_size=4))
    def test_established(self, frames: list[tuple[bytes, bool]]) -> None:
        """Anything at all from a signed-in admin's session."""
        session, peer, broker = self.session()
        session.received(json.dumps(HELLO).encode(), False)
        session.received(json.dumps([5, self.ticket, {}]).encode(), False)
        self.assertIs(session.state, State.ESTABLISHED)
        peer.sent.clear()
        self.feed(session, peer, frames)
        self.end(session, broker)
