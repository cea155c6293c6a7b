"""
A webhook receiver and an SMTP server on real local sockets, for the
delivery tests: each records what it received; the webhook checks every
signature as a real receiver would.
"""

from __future__ import annotations

import json
from collections.abc import Generator, Iterator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks, succeed
from twisted.internet.task import deferLater
from twisted.internet.tcp import Client
from twisted.mail import smtp
from twisted.protocols.policies import WrappingFactory
from twisted.trial.unittest import TestCase
from twisted.web.resource import Resource
from twisted.web.server import Site
from zope.interface import implementer

from ocppd.alerts.notices import SIGNATURE_HEADER, TIMESTAMP_HEADER, verify

SECRET = "the-webhook-secret-0001"


class Waiters:
    """Deferreds that fire once a count of things was received."""

    def __init__(self) -> None:
        self.received: list[Any] = []
        self._waiting: list[tuple[int, Deferred[None]]] = []

    def add(self, item: Any) -> None:
        self.received.append(item)
        ready = [(n, d) for n, d in self._waiting if len(self.received) >= n]
        self._waiting = [(n, d) for n, d in self._waiting if len(self.received) < n]
        for _, d in ready:
            # On the next turn: whoever else waits on what was received runs first.
            reactor.callLater(0, d.callback, None)

    def when(self, count: int) -> Deferred[None]:
        if len(self.received) >= count:
            return succeed(None)
        d: Deferred[None] = Deferred()
        self._waiting.append((count, d))
        return d


class WebhookReceiver(Resource, Waiters):
    """Answers each POST with the next of ``codes`` (the last one repeats)."""

    isLeaf = True

    def __init__(self, codes: list[int], secret: str = SECRET) -> None:
        Resource.__init__(self)
        Waiters.__init__(self)
        self.codes = list(codes)
        self.secret = secret
        self.signed_ok: list[bool] = []
        self.timestamps: list[str] = []

    def render_POST(self, request: Any) -> bytes:
        body = request.content.read()
        timestamp = (request.getHeader(TIMESTAMP_HEADER) or "").strip()
        header = (request.getHeader(SIGNATURE_HEADER) or "").strip()
        self.signed_ok.append(verify(self.secret, timestamp, body, header))
        self.timestamps.append(timestamp)
        code = self.codes.pop(0) if len(self.codes) > 1 else self.codes[0]
        request.setResponseCode(code)
        self.add(json.loads(body))
        return b"{}"

    def bodies(self) -> Iterator[dict[str, Any]]:
        return iter(self.received)


class _Tracked(WrappingFactory):
    """A server factory whose connections the test waits to see closed."""

    def __init__(self, factory: Any) -> None:
        super().__init__(factory)
        self.closed: dict[Any, Deferred[None]] = {}

    def registerProtocol(self, p: Any) -> None:
        super().registerProtocol(p)
        self.closed[p] = Deferred()

    def unregisterProtocol(self, p: Any) -> None:
        super().unregisterProtocol(p)
        self.closed.pop(p).callback(None)


@inlineCallbacks
def _closed(factory: _Tracked) -> Generator[Deferred[Any], Any, None]:
    # The client closes (HTTP without keep-alive, SMTP after QUIT); its side
    # may still be closing when the server's is closed: wait for both.
    for p, closed in list(factory.closed.items()):
        p.transport.loseConnection()
        yield closed
    for _ in range(500):
        if not any(isinstance(s, Client) for s in reactor.getReaders() + reactor.getWriters()):
            return
        yield deferLater(reactor, 0.01, lambda: None)


def _listen(test: TestCase, factory: Any) -> int:
    tracked = _Tracked(factory)
    port = reactor.listenTCP(0, tracked, interface="127.0.0.1")
    test.addCleanup(port.stopListening)
    test.addCleanup(_closed, tracked)
    return int(port.getHost().port)


def listen_webhook(test: TestCase, codes: list[int]) -> tuple[WebhookReceiver, str]:
    receiver = WebhookReceiver(codes)
    port = _listen(test, Site(receiver))
    return receiver, f"http://127.0.0.1:{port}/hook"


@implementer(smtp.IMessage)
class _Message:
    def __init__(self, box: Mailbox, recipient: str) -> None:
        self.box = box
        self.recipient = recipient
        self.lines: list[bytes] = []

    def lineReceived(self, line: bytes) -> None:
        self.lines.append(line)

    def eomReceived(self) -> Deferred[None]:
        self.box.add((self.recipient, b"\n".join(self.lines)))
        return succeed(None)

    def connectionLost(self) -> None:
        pass


@implementer(smtp.IMessageDelivery)
class Mailbox(Waiters):
    """Takes every message for anyone; ``received`` holds (recipient, bytes)."""

    def receivedHeader(self, helo: Any, origin: Any, recipients: Any) -> bytes:
        return b"Received: by the test's SMTP server"

    def validateFrom(self, helo: Any, origin: Any) -> Any:
        return origin

    def validateTo(self, user: Any) -> Any:
        return lambda: _Message(self, str(user.dest))


class _MailFactory(smtp.SMTPFactory):
    protocol = smtp.ESMTP

    def __init__(self, box: Mailbox) -> None:
        super().__init__()
        self.box = box

    def buildProtocol(self, addr: Any) -> Any:
        p = super().buildProtocol(addr)
        p.delivery = self.box
        return p


def listen_smtp(test: TestCase) -> tuple[Mailbox, int]:
    box = Mailbox()
    return box, _listen(test, _MailFactory(box))


def logged_events(test: TestCase | Any) -> list[dict[str, Any]]:
    """Every event logged until ``test`` ends."""
    from twisted.logger import globalLogPublisher

    events: list[dict[str, Any]] = []
    globalLogPublisher.addObserver(events.append)
    test.addCleanup(globalLogPublisher.removeObserver, events.append)
    return events


def at_level(events: list[dict[str, Any]], level: str) -> list[dict[str, Any]]:
    return [e for e in events if getattr(e.get("log_level"), "name", None) == level]
