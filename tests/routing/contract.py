"""
The contract of ``ICommandTransport``: what every command transport must do.

``TransportContractTests`` is a mixin; each implementation's tests subclass
it with ``TestCase`` and provide ``make_pair``: a caller's and an owner's
transport that reach each other (one shared object in process, two
connections on RabbitMQ). Real time, short timeouts; every test uses its own
node ids (and on RabbitMQ its own prefix), so tests never see each other.
"""

from __future__ import annotations

import uuid
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, gatherResults, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase

from ocppd.routing.errors import NodeUnreachable, TransportTimeout
from ocppd.routing.interface import ICommandTransport

#: Long enough for a broker round trip, short enough to keep the suite fast.
SHORT = 0.5
LONG = 5.0


def node_id() -> str:
    return "n" + uuid.uuid4().hex[:10]


def echo(body: bytes) -> Deferred[bytes]:
    d: Deferred[bytes] = Deferred()
    reactor.callLater(0, d.callback, b"re:" + body)
    return d


class TransportContractTests:
    def make_pair(self) -> Deferred[tuple[ICommandTransport, ICommandTransport]]:
        """(caller, owner): started, connected, cleaned up after the test."""
        raise NotImplementedError

    def kill_owner(self, owner: ICommandTransport) -> Deferred[None]:
        """The owner's node dies: its transport goes without a word."""
        raise NotImplementedError

    @property
    def _case(self) -> TestCase:
        assert isinstance(self, TestCase)
        return self

    @inlineCallbacks
    def test_request_reply(self) -> Any:
        """A request reaches the node's handler, and its reply comes back."""
        caller, owner = yield self.make_pair()
        node = node_id()
        serving = yield owner.serve(node, echo)
        self._case.addCleanup(serving.stop)
        reply = yield caller.request(node, b'{"x":1}', LONG)
        self._case.assertEqual(reply, b're:{"x":1}')

    @inlineCallbacks
    def test_replies_are_correlated(self) -> Any:
        """Concurrent requests each get their own reply, whatever order they finish in."""
        caller, owner = yield self.make_pair()
        node = node_id()

        def slow_echo(body: bytes) -> Deferred[bytes]:
            # The first request finishes last.
            return deferLater(reactor, 0.3 - 0.1 * int(body), lambda: b"re:" + body)

        serving = yield owner.serve(node, slow_echo)
        self._case.addCleanup(serving.stop)
        replies = yield gatherResults([caller.request(node, b"%d" % n, LONG) for n in range(3)])
        self._case.assertEqual(replies, [b"re:0", b"re:1", b"re:2"])

    @inlineCallbacks
    def test_unknown_node_fails_at_once(self) -> Any:
        """A node that never served: NodeUnreachable, long before the timeout."""
        caller, _ = yield self.make_pair()
        started = reactor.seconds()
        yield self._case.assertFailure(caller.request(node_id(), b"{}", 60), NodeUnreachable)
        self._case.assertLess(reactor.seconds() - started, 30)

    @inlineCallbacks
    def test_no_reply_times_out(self) -> Any:
        """A handler that never answers: TransportTimeout at the deadline, not a hang."""
        caller, owner = yield self.make_pair()
        node = node_id()
        taken: list[bytes] = []

        def never(body: bytes) -> Deferred[bytes]:
            taken.append(body)
            return Deferred()

        serving = yield owner.serve(node, never)
        self._case.addCleanup(serving.stop)
        # A request nobody took by its deadline may expire on the way (RabbitMQ's
        # TTL), and on a loaded machine SHORT can pass before the owner's reactor
        # reads it: a deadline that passed untaken is tried again, longer, with
        # a body of its own (an earlier one may still be taken late).
        sent: list[bytes] = []
        deadline = SHORT
        while not taken and deadline <= LONG:
            sent.append(b'{"try":%d}' % len(sent))
            yield self._case.assertFailure(
                caller.request(node, sent[-1], deadline), TransportTimeout
            )
            deadline *= 2
        self._case.assertTrue(taken, f"no request taken of {sent}")
        self._case.assertEqual(sorted(set(taken)), sorted(taken))  # each at most once
        self._case.assertLessEqual(set(taken), set(sent))

    @inlineCallbacks
    def test_late_reply_dropped(self) -> Any:
        """A reply after the deadline is dropped; the next request gets its own."""
        caller, owner = yield self.make_pair()
        node = node_id()
        delays = [SHORT * 2, 0.0]

        def handler(body: bytes) -> Deferred[bytes]:
            return deferLater(reactor, delays.pop(0), lambda: b"re:" + body)

        serving = yield owner.serve(node, handler)
        self._case.addCleanup(serving.stop)
        yield self._case.assertFailure(caller.request(node, b"late", SHORT), TransportTimeout)
        yield deferLater(reactor, SHORT * 2, lambda: None)  # the late reply arrives meanwhile
        reply = yield caller.request(node, b"next", LONG)
        self._case.assertEqual(reply, b"re:next")

    @inlineCallbacks
    def test_owner_dies_mid_command(self) -> Any:
        """The owner goes while running a command: the caller times out, it does not hang."""
        caller, owner = yield self.make_pair()
        node = node_id()
        running: Deferred[None] = Deferred()

        def handler(body: bytes) -> Deferred[bytes]:
            running.callback(None)
            return Deferred()

        yield owner.serve(node, handler)
        asked = caller.request(node, b"{}", 2.0)
        yield running
        yield self.kill_owner(owner)
        yield self._case.assertFailure(asked, TransportTimeout, NodeUnreachable)

    @inlineCallbacks
    def test_requests_to_a_gone_node_expire(self) -> Any:
        """
        Requests for a node that stopped serving fail, and expire: the node
        serving again later never runs them.
        """
        caller, owner = yield self.make_pair()
        node = node_id()
        taken: list[bytes] = []

        def handler(body: bytes) -> Deferred[bytes]:
            taken.append(body)
            return echo(body)

        serving = yield owner.serve(node, handler)
        yield caller.request(node, b"before", LONG)
        yield serving.stop()
        yield self._case.assertFailure(
            caller.request(node, b"stale", SHORT), TransportTimeout, NodeUnreachable
        )
        yield deferLater(reactor, SHORT, lambda: None)  # past its TTL
        serving = yield owner.serve(node, handler)
        self._case.addCleanup(serving.stop)
        reply = yield caller.request(node, b"after", LONG)
        self._case.assertEqual((reply, taken), (b"re:after", [b"before", b"after"]))
