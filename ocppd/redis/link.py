"""
A node's two connections to Redis, shared by everything that uses Redis.

- The **command connection** carries every command of the node, in the order
  sent (so a presence release sent after a renewal is applied after it). A
  command without an answer within ``REPLY_TIMEOUT`` drops the connection,
  which is reopened.
- The **subscriber connection** is subscribed to every channel a user
  registered (``subscribe``), again on each reconnection; each message goes
  to its channel's handler.

Both reconnect by themselves (txredisapi's back-off, up to 10 s). Messages
published while the subscriber was away are lost: users that must not miss
one register ``on_connected`` and catch up (presence renews its claims).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

import attrs
import txredisapi
from twisted.internet.defer import CancelledError, Deferred, gatherResults, inlineCallbacks
from twisted.internet.endpoints import HostnameEndpoint
from twisted.internet.task import deferLater
from twisted.python.failure import Failure

from ocppd.logs import Logger
from ocppd.redis.address import parse_redis_url

#: Seconds a command may wait for its answer before the connection is
#: dropped (and reopened) and the call fails.
REPLY_TIMEOUT = 5.0
CONNECT_TIMEOUT = 5.0

MessageHandler = Callable[[Any], None]


@attrs.frozen
class _Subscription:
    on_message: MessageHandler
    #: What is missed while the subscription is down, for the log line.
    while_unsubscribed: str


class _Commands(txredisapi.RedisProtocol):
    """The command connection; the link's users hear of each (re)connection."""

    def connectionMade(self) -> Any:
        d = super().connectionMade()

        def ready(_: object) -> None:
            if self._ready:
                self.factory.link._connected()

        return d.addCallback(ready)


class _Listener(txredisapi.SubscriberProtocol):
    """The subscriber connection: every registered channel, subscribed on each connection."""

    def connectionMade(self) -> Any:
        d = super().connectionMade()

        def ready(_: object) -> None:
            if not self._ready:
                return  # authentication failed: txredisapi closes and says why
            link: RedisLink = self.factory.link
            link._listener = self
            for channel in list(link._subscriptions):
                link._subscribe_on(self, channel)
            link._connected()

        return d.addCallback(ready)

    def connectionLost(self, why: Failure) -> None:
        link: RedisLink = self.factory.link
        if link._listener is self:
            link._listener = None
        super().connectionLost(why)

    def messageReceived(self, pattern: Any, channel: Any, message: Any) -> None:
        name = channel.decode("utf-8", "replace") if isinstance(channel, bytes) else str(channel)
        self.factory.link._message(name, message)


class RedisLink:
    """See the module docstring. ``start`` opens the connections, ``stop`` closes them."""

    log = Logger()

    def __init__(self, *, reactor: Any, url: str) -> None:
        self.address = parse_redis_url(url)
        self._reactor = reactor
        self._commands: txredisapi.RedisFactory | None = None
        self._subscriber: txredisapi.RedisFactory | None = None
        self._subscriptions: dict[str, _Subscription] = {}
        self._on_connected: list[Callable[[], object]] = []
        self._listener: _Listener | None = None
        #: when_connected's pending polls, cancelled by stop.
        self._waits: set[Deferred[None]] = set()

    # For the users

    def subscribe(
        self, channel: str, on_message: MessageHandler, *, while_unsubscribed: str
    ) -> None:
        """
        Give every message of ``channel`` to ``on_message`` (one handler per
        channel), from now on and after every reconnection.
        """
        if channel in self._subscriptions:
            raise ValueError(f"{channel!r} has a handler already")
        self._subscriptions[channel] = _Subscription(on_message, while_unsubscribed)
        if self._listener is not None:
            self._subscribe_on(self._listener, channel)

    def on_connected(self, callback: Callable[[], object]) -> None:
        """Call ``callback()`` each time a connection is (re)established (and subscribed)."""
        self._on_connected.append(callback)

    def commands(self) -> Any:
        """The command connection's handler (txredisapi), or None while it is down."""
        factory = self._commands
        return factory.handler if factory is not None and factory.size else None

    def connected(self) -> bool:
        return all(f is not None and f.size for f in (self._commands, self._subscriber))

    @inlineCallbacks
    def when_connected(self, timeout: float) -> Generator[Deferred[Any], Any, bool]:
        """Wait up to ``timeout`` seconds for both connections; whether they are up."""
        deadline = self._reactor.seconds() + timeout
        while not self.connected():
            if self._commands is None or self._reactor.seconds() >= deadline:
                return False  # stopped, or still unreachable
            wait = deferLater(self._reactor, 0.05, lambda: None)
            self._waits.add(wait)
            try:
                yield wait
            except CancelledError:
                return False  # stopped
            finally:
                self._waits.discard(wait)
        return True

    # The connections

    def start(self) -> None:
        """Open both connections (kept open, reopened when lost)."""
        if self._commands is not None:
            return
        address = self.address
        # One connection: commands reach Redis in the order they were sent.
        self._commands = txredisapi.RedisFactory(
            str(address),
            address.db,
            1,
            isLazy=True,
            password=address.password,
            replyTimeout=REPLY_TIMEOUT,
        )
        self._subscriber = txredisapi.RedisFactory(
            str(address), None, 1, isLazy=True, password=address.password
        )
        for factory, protocol in ((self._commands, _Commands), (self._subscriber, _Listener)):
            factory.protocol = protocol
            factory.link = self
            factory.startConnecting(self._endpoint())

    def _endpoint(self) -> HostnameEndpoint:
        return HostnameEndpoint(
            self._reactor, self.address.host, self.address.port, timeout=CONNECT_TIMEOUT
        )

    def stop(self) -> Deferred[None]:
        for wait in list(self._waits):
            wait.cancel()
        connections = [f for f in (self._commands, self._subscriber) if f is not None]
        self._commands = self._subscriber = None
        self._listener = None
        closed = gatherResults([f.disconnect() for f in connections], consumeErrors=True)
        return closed.addCallback(lambda _: None)

    # From the protocols

    def _connected(self) -> None:
        for callback in list(self._on_connected):
            try:
                callback()
            except Exception:
                self.log.failure("Redis: a reconnection callback failed")

    def _subscribe_on(self, listener: _Listener, channel: str) -> None:
        def failed(failure: Failure) -> None:
            self.log.warn(
                "Redis: could not subscribe to {channel}: {reason}; {consequence}",
                channel=channel,
                reason=failure.getErrorMessage(),
                consequence=self._subscriptions[channel].while_unsubscribed,
            )

        try:
            listener.subscribe(channel).addErrback(failed)
        except txredisapi.ConnectionError as e:  # lost in the meantime: the next connection
            failed(Failure(e))

    def _message(self, channel: str, message: Any) -> None:
        subscription = self._subscriptions.get(channel)
        if subscription is None:
            self.log.warn("Redis: a message on {channel}, which has no handler", channel=channel)
            return
        try:
            subscription.on_message(message)
        except Exception:
            self.log.failure("Redis: the handler of {channel} failed", channel=channel)
