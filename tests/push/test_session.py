"""
Tests for ocppd.push.session and ocppd.push.broker: the WAMP state machine and
the fan-out, without sockets (a recording peer, a Clock, a scripted ticket check).
"""

from __future__ import annotations

import json
from typing import Any, cast

from twisted.internet.defer import Deferred, fail, succeed
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from ocppd.push.broker import Broker
from ocppd.push.session import SUBSCRIBE_READY_TIMEOUT, PushSession, SessionLimits, State
from ocppd.push.topics import Principal

CUSTOMER = Principal(user_id=2, email="jo@example.com", role="customer")
ADMIN = Principal(user_id=1, email="ops@example.com", role="admin")
HELLO = [1, "ocppd", {"roles": {"subscriber": {}}, "authmethods": ["ticket"]}]
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
LIMITS = SessionLimits(realm="ocppd", hello_timeout=10, max_subscriptions=3)


class Peer:
    def __init__(self) -> None:
        self.sent: list[Any] = []
        self.shared: list[Any] = []
        self.closed: tuple[int, str] | None = None

    def send(self, data: bytes) -> None:
        self.sent.append(json.loads(data))

    def send_shared(self, frame: Any) -> None:
        self.shared.append(json.loads(frame))

    def close(self, code: int, reason: str) -> None:
        self.closed = (code, reason)


class SessionTestCase(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.broker = Broker()
        self.tickets: dict[str, Deferred[Principal | None]] = {}

    def authenticate(self, ticket: str) -> Deferred[Principal | None]:
        return self.tickets.get(ticket, succeed(None))

    def open(self, limits: SessionLimits = LIMITS) -> tuple[PushSession, Peer]:
        peer = Peer()
        session = PushSession(
            session_id=99,
            peer=peer,
            broker=self.broker,
            authenticate=self.authenticate,
            clock=self.clock,
            limits=limits,
        )
        session.opened()
        return session, peer

    def send(self, session: PushSession, *messages: Any) -> None:
        for msg in messages:
            session.received(json.dumps(msg).encode(), False)

    def established(self, who: Principal = CUSTOMER) -> tuple[PushSession, Peer]:
        self.tickets["good"] = succeed(who)
        session, peer = self.open()
        self.send(session, HELLO, [5, "good", {}])
        self.assertEqual(session.state, State.ESTABLISHED)
        peer.sent.clear()
        return session, peer

    def assertAborted(self, peer: Peer, reason: str, code: int) -> None:
        self.assertEqual(peer.sent[-1][0], 3)
        self.assertEqual(peer.sent[-1][2], reason)
        self.assertEqual(peer.closed, (code, reason))


class HandshakeTests(SessionTestCase):
    def test_ticket_handshake(self) -> None:
        """HELLO -> CHALLENGE(ticket) -> AUTHENTICATE -> WELCOME naming the user."""
        pending: Deferred[Principal | None] = Deferred()
        self.tickets["tok"] = pending
        session, peer = self.open()
        self.send(session, HELLO)
        self.assertEqual(peer.sent, [[4, "ticket", {}]])
        self.send(session, [5, "tok", {}])
        self.assertEqual(session.state, State.AUTHENTICATING)
        pending.callback(CUSTOMER)
        welcome = peer.sent[-1]
        self.assertEqual(welcome[:2], [2, 99])
        details = welcome[2]
        self.assertEqual(
            {k: details[k] for k in ("realm", "authid", "authrole", "authmethod")},
            {"realm": "ocppd", "authid": "2", "authrole": "customer", "authmethod": "ticket"},
        )
        self.assertIn("broker", details["roles"])
        self.assertEqual(details["authextra"]["userId"], 2)
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.assertIsNone(peer.closed)

    def test_refusals(self) -> None:
        """Bad ticket, no ticket method, other realm, oversized ticket: ABORT and close 1000."""
        cases = [
            ([HELLO, [5, "bad", {}]], "wamp.error.authentication_failed"),
            ([HELLO, [5, "x" * 513, {}]], "wamp.error.authentication_failed"),
            ([[1, "ocppd", {"roles": {"subscriber": {}}}]], "wamp.error.no_auth_method"),
            ([[1, "elsewhere", HELLO[2]]], "wamp.error.no_such_realm"),
        ]
        for messages, reason in cases:
            session, peer = self.open()
            self.send(session, *messages)
            self.assertAborted(peer, reason, 1000)
            self.assertEqual(session.state, State.CLOSED)

    def test_ticket_check_error(self) -> None:
        """A failing ticket check (database down) is an ABORT, and logged."""
        self.tickets["tok"] = fail(RuntimeError("database down"))
        session, peer = self.open()
        self.send(session, HELLO, [5, "tok", {}])
        self.assertAborted(peer, "wamp.error.authentication_failed", 1000)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)

    def test_hello_timeout(self) -> None:
        """No WELCOME within hello_timeout: ABORT; a late ticket answer changes nothing."""
        pending: Deferred[Principal | None] = Deferred()
        self.tickets["tok"] = pending
        session, peer = self.open()
        self.send(session, HELLO, [5, "tok", {}])
        self.clock.advance(9.9)
        self.assertIsNone(peer.closed)
        self.clock.advance(0.1)
        self.assertAborted(peer, "wamp.error.timeout", 1000)
        count = len(peer.sent)
        pending.callback(CUSTOMER)
        self.assertEqual(len(peer.sent), count)
        self.assertEqual(session.state, State.CLOSED)

    def test_protocol_violations(self) -> None:
        """Garbage and out-of-order messages: ABORT protocol_violation, close 1002."""
        cases: list[tuple[list[bytes], bool]] = [
            ([b"not json"], False),
            ([b"{}"], False),
            ([b"[]"], False),
            ([b"[999]"], False),
            ([b'[1, "ocppd"]'], False),
            ([json.dumps(HELLO).encode()], True),
            ([b"[" * 3000 + b"]" * 3000], False),
            ([b'[32, 1, {}, "ocppd.chargers.status"]'], False),
            ([json.dumps(HELLO).encode(), json.dumps(HELLO).encode()], False),
            ([json.dumps(HELLO).encode(), b'[5, "slow", {}]', b'[6, {}, "x"]'], False),
            ([b'[2, 1, {"roles": {"broker": {}}}]'], False),
        ]
        self.tickets["slow"] = Deferred()
        for frames, binary in cases:
            session, peer = self.open()
            for frame in frames:
                session.received(frame, binary)
            self.assertAborted(peer, "wamp.error.protocol_violation", 1002)

    def test_unstorable_text_is_a_violation(self) -> None:
        """
        A lone surrogate or NUL (JSON escapes) anywhere in a message, before or
        after WELCOME: ABORT protocol_violation, close 1002; it never reaches a
        log line or the ticket check. An escaped surrogate pair is text.
        """
        self.tickets["good"] = succeed(ADMIN)
        for message in (
            [1, "ocppd\ud800", {"authmethods": ["ticket"]}],
            [5, "\udfff", {}],
            [1, "ocppd", {"authmethods": ["ticket"], "x": ["a\u0000"]}],
        ):
            session, peer = self.open()
            session.received(json.dumps(message).encode(), False)
            self.assertAborted(peer, "wamp.error.protocol_violation", 1002)
        session, peer = self.established(ADMIN)
        session.received(b'[32, 1, {}, "ocppd.admin.\\ud800"]', False)
        self.assertAborted(peer, "wamp.error.protocol_violation", 1002)
        session, peer = self.established(ADMIN)
        session.received(b'[32, 1, {}, "ocppd.\\ud83d\\ude00"]', False)
        self.assertEqual(peer.sent[-1][:3], [8, 32, 1])  # ERROR: no such topic, no abort
        self.assertIsNone(peer.closed)

    def test_client_abort(self) -> None:
        """An ABORT from the client just closes."""
        session, peer = self.open()
        self.send(session, [3, {}, "wamp.close.normal"])
        self.assertEqual(peer.closed, (1000, "aborted"))
        self.assertEqual(peer.sent, [])


class EstablishedTests(SessionTestCase):
    def test_subscribed_waits_for_the_broker_to_be_ready(self) -> None:
        """
        SUBSCRIBED only once ``Broker.ready`` fires (on RabbitMQ: the notifier
        consumes its queue), so a page never misses the next event; once only.
        """
        ready: Deferred[None] = Deferred()
        self.broker.ready = lambda: ready
        session, peer = self.established()
        self.send(session, [32, 7, {}, "ocppd.chargers.status"])
        self.assertEqual(peer.sent, [])
        ready.callback(None)
        self.assertEqual([m[:2] for m in peer.sent], [[33, 7]])
        self.clock.advance(60)
        self.assertEqual(len(peer.sent), 1)

    def test_subscribed_after_the_timeout_when_never_ready(self) -> None:
        """A broker that never gets ready delays SUBSCRIBED by SUBSCRIBE_READY_TIMEOUT only."""
        ready: Deferred[None] = Deferred()
        self.broker.ready = lambda: ready
        session, peer = self.established()
        self.send(session, [32, 8, {}, "ocppd.chargers.status"])
        self.clock.advance(SUBSCRIBE_READY_TIMEOUT - 0.1)
        self.assertEqual(peer.sent, [])
        self.clock.advance(0.1)
        self.assertEqual([m[:2] for m in peer.sent], [[33, 8]])
        ready.callback(None)
        self.assertEqual(len(peer.sent), 1)

    def test_no_subscribed_after_unsubscribing_before_ready(self) -> None:
        """An UNSUBSCRIBE before the broker got ready: no late SUBSCRIBED for it."""
        ready: Deferred[None] = Deferred()
        self.broker.ready = lambda: ready
        session, peer = self.established()
        self.send(session, [32, 9, {}, "ocppd.chargers.status"])
        (subscription_id,) = session.subscriptions
        self.send(session, [34, 10, subscription_id])
        ready.callback(None)
        self.assertEqual([m[0] for m in peer.sent], [35])

    def test_subscribe_authorized_and_refused(self) -> None:
        """SUBSCRIBED for allowed topics; ERROR not_authorized / invalid_uri otherwise."""
        session, peer = self.established()
        self.send(
            session,
            [32, 1, {}, "ocppd.chargers.status"],
            [32, 2, {}, "ocppd.user.2.session"],
            [32, 3, {}, "ocppd.user.3.session"],
            [32, 4, {}, "ocppd.admin.ocpp"],
            [32, 5, {}, "ocppd.elsewhere"],
            [32, 6, {"match": "prefix"}, "ocppd"],
        )
        self.assertEqual([m[0] for m in peer.sent[:2]], [33, 33])
        self.assertEqual(
            [(m[0], m[1], m[2], m[4]) for m in peer.sent[2:]],
            [
                (8, 32, 3, "wamp.error.not_authorized"),
                (8, 32, 4, "wamp.error.not_authorized"),
                (8, 32, 5, "wamp.error.invalid_uri"),
                (8, 32, 6, "wamp.error.invalid_argument"),
            ],
        )
        self.assertEqual(self.broker.subscribers("ocppd.chargers.status"), 1)
        self.assertEqual(session.state, State.ESTABLISHED)

    def test_subscription_limit(self) -> None:
        """At most max_subscriptions topics; the same topic again is the same subscription."""
        session, peer = self.established(ADMIN)
        for n, topic in enumerate(["sessions", "meter", "ocpp", "sessions", "cms"]):
            self.send(session, [32, n, {}, f"ocppd.admin.{topic}"])
        self.assertEqual([m[0] for m in peer.sent], [33, 33, 33, 33, 8])
        self.assertEqual(peer.sent[3][2], peer.sent[0][2])
        self.assertEqual(peer.sent[4][4], "ocppd.error.subscription_limit")

    def test_unsubscribe(self) -> None:
        """UNSUBSCRIBE ends a subscription; an unknown id is no_such_subscription."""
        session, peer = self.established()
        self.assertFalse(self.broker.listening())
        self.send(session, [32, 1, {}, "ocppd.chargers.status"])
        self.assertTrue(self.broker.listening())
        subscription = peer.sent[0][2]
        self.send(session, [34, 2, subscription], [34, 3, subscription])
        self.assertEqual(peer.sent[1], [35, 2])
        self.assertEqual(peer.sent[2][:2] + peer.sent[2][3:5], [8, 34, {}, NO_SUCH_SUBSCRIPTION])
        self.assertEqual(self.broker.subscribers("ocppd.chargers.status"), 0)
        self.assertFalse(self.broker.listening())

    def test_publish_call_register_refused(self) -> None:
        """Only an acknowledged PUBLISH gets an ERROR; CALL and REGISTER get one each."""
        session, peer = self.established(ADMIN)
        self.send(
            session,
            [16, 1, {}, "ocppd.admin.cms", [1]],
            [16, 2, {"acknowledge": True}, "ocppd.admin.cms", [1]],
            [48, 3, {}, "ocppd.proc"],
            [64, 4, {}, "ocppd.proc"],
        )
        self.assertEqual(
            [(m[1], m[2], m[4]) for m in peer.sent],
            [
                (16, 2, "wamp.error.not_authorized"),
                (48, 3, "wamp.error.no_such_procedure"),
                (64, 4, "wamp.error.not_authorized"),
            ],
        )
        self.assertIsNone(peer.closed)

    def test_goodbye(self) -> None:
        """A client GOODBYE is answered with goodbye_and_out and the socket closed."""
        session, peer = self.established()
        self.send(session, [32, 1, {}, "ocppd.chargers.status"])
        self.send(session, [6, {}, "wamp.close.close_realm"])
        self.assertEqual(peer.sent[-1], [6, {}, "wamp.close.goodbye_and_out"])
        self.assertEqual(peer.closed, (1000, "goodbye"))
        self.assertEqual(self.broker.subscribers("ocppd.chargers.status"), 0)

    def test_shutdown(self) -> None:
        """The node's GOODBYE; the client's answer closes, or the timeout does."""
        session, peer = self.established()
        session.shutdown()
        self.assertEqual(peer.sent[-1][0::2], [6, "wamp.close.system_shutdown"])
        self.assertIsNone(peer.closed)
        self.send(session, [6, {}, "wamp.close.goodbye_and_out"])
        self.assertEqual(peer.closed, (1000, "goodbye"))
        late, late_peer = self.established()
        late.shutdown()
        self.clock.advance(LIMITS.goodbye_timeout)
        self.assertEqual(late_peer.closed, (1000, "shutdown"))
        unauthenticated, raw_peer = self.open()
        unauthenticated.shutdown()
        self.assertEqual(raw_peer.closed, (1000, "wamp.close.system_shutdown"))

    def test_lost_forgets_subscriptions(self) -> None:
        """A lost connection leaves no subscription and no timer behind."""
        session, _ = self.established()
        self.send(session, [32, 1, {}, "ocppd.chargers.status"])
        session.lost()
        self.assertEqual(self.broker.subscribers("ocppd.chargers.status"), 0)
        self.assertFalse(self.broker.listening())
        self.assertEqual(self.clock.getDelayedCalls(), [])


class BrokerTests(SessionTestCase):
    def test_listening_observers_told_of_first_and_last(self) -> None:
        """Observers hear when the node gets its first subscription and loses its last."""
        broker = Broker()
        heard: list[bool] = []
        broker.listening_observers.append(heard.append)
        a, b = object(), object()
        first = broker.subscribe(cast(Any, a), "ocppd.chargers.status")
        broker.subscribe(cast(Any, b), "ocppd.chargers.status")
        other = broker.subscribe(cast(Any, a), "ocppd.admin.cms")
        self.assertEqual(heard, [True])
        broker.unsubscribe(cast(Any, a), first)
        broker.unsubscribe(cast(Any, a), other)
        self.assertEqual(heard, [True])  # b still reads a topic
        broker.unsubscribe(cast(Any, b), first)
        self.assertEqual(heard, [True, False])
        broker.subscribe(cast(Any, b), "ocppd.admin.cms")
        self.assertEqual(heard, [True, False, True])

    def test_fan_out_prepares_once(self) -> None:
        """One EVENT per publication, serialised and prepared once for every subscriber."""
        prepared: list[bytes] = []

        def prepare(data: bytes) -> bytes:
            prepared.append(data)
            return data

        self.broker = Broker(prepare=prepare, publication_ids=lambda: 7)
        sessions = [self.established() for _ in range(3)]
        for session, _ in sessions:
            self.send(session, [32, 1, {}, "ocppd.chargers.status"])
        ids = {peer.sent[0][2] for _, peer in sessions}
        self.assertEqual(len(ids), 1)
        event = {"type": "charger.online", "at": "2026-11-29T10:00:00Z", "data": {}}
        self.assertEqual(self.broker.publish("ocppd.chargers.status", event), 3)
        self.assertEqual(len(prepared), 1)
        (subscription,) = ids
        for _, peer in sessions:
            self.assertEqual(peer.shared, [[36, subscription, 7, {}, [event]]])
        self.assertEqual(self.broker.publish("ocppd.admin.cms", event), 0)

    def test_no_events_before_welcome_or_after_close(self) -> None:
        """Only an established session is sent EVENTs."""
        session, peer = self.established()
        self.send(session, [32, 1, {}, "ocppd.chargers.status"])
        session.shutdown()
        self.broker.publish("ocppd.chargers.status", {"type": "x", "at": "", "data": {}})
        self.assertEqual(peer.shared, [])

    def test_session_ending_during_fan_out(self) -> None:
        """A subscriber removed while an event is being delivered does not disturb the others."""
        first, first_peer = self.established()
        second, second_peer = self.established()
        for session in (first, second):
            self.send(session, [32, 1, {}, "ocppd.chargers.status"])
        original = first_peer.send_shared

        def cut_off(frame: Any) -> None:
            original(frame)
            first.lost()
            second.lost()

        first_peer.send_shared = cut_off  # type: ignore[method-assign]
        self.assertEqual(self.broker.publish("ocppd.chargers.status", {"n": 1}), 2)
        self.assertEqual((len(first_peer.shared), second_peer.shared), (1, []))
        self.assertEqual(self.broker.subscribers("ocppd.chargers.status"), 0)


class LoggedTopicTests(SessionTestCase):
    def test_refused_topic_logged_safely(self) -> None:
        """
        A topic a browser sends is escaped and cut in the log (issue 13 item
        16): terminal escapes cannot rewrite what an operator sees (the WAMP
        parser already refuses whitespace, not other control characters),
        10 KB cannot flood it.
        """
        from twisted.logger import formatEvent, globalLogPublisher

        events: list[dict[str, Any]] = []
        globalLogPublisher.addObserver(events.append)
        self.addCleanup(globalLogPublisher.removeObserver, events.append)
        session, _ = self.established()
        forged = "ocppd.x\x1b[2J\x1b[1;1H\x08\x08[ocppd]_admin_signed_in"
        self.send(session, [32, 1, {}, forged], [32, 2, {}, "ocppd." + "x" * 10_000])
        lines = [formatEvent(e) for e in events if "refused topic" in e.get("log_format", "")]
        self.assertEqual(len(lines), 2)
        self.assertIn("ocppd.x\\x1b[2J\\x1b[1;1H\\x08\\x08[ocppd]", lines[0])
        self.assertNotIn("\x1b", lines[0])
        self.assertLess(len(lines[1]), 1200)
        self.assertIn("(10006 characters)", lines[1])
