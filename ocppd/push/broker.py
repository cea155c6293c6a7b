"""
The WAMP broker role: which session reads which topic, and the fan-out of an
event to them.

Pure: no I/O. One subscription id per topic, shared by every session that
subscribes to it (as WAMP allows and Crossbar does), so an EVENT is the same
bytes for all of them: it is serialised and framed once per publication, not
once per subscriber.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import count
from typing import TYPE_CHECKING, Any, Protocol

import txaio

txaio.use_twisted()

from autobahn import util  # noqa: E402  (txaio needs its framework first)
from autobahn.wamp import message  # noqa: E402
from autobahn.wamp.serializer import JsonSerializer  # noqa: E402

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred


class Subscriber(Protocol):
    """What the broker needs from a session."""

    def deliver(self, frame: Any) -> None:
        """Send one EVENT, as returned by the broker's ``prepare``."""


class _Subscription:
    def __init__(self, subscription_id: int, topic: str) -> None:
        self.id = subscription_id
        self.topic = topic
        # A dict keeps subscription order, so fan-out order is deterministic.
        self.subscribers: dict[Subscriber, None] = {}


def _nothing_to_wait_for() -> None:
    return None


def _identity(data: bytes) -> Any:
    return data


class Broker:
    """
    Subscriptions by topic, and ``publish``. ``prepare`` turns a serialised
    EVENT into what each subscriber's ``deliver`` gets; the WebSocket layer
    frames it once there (Autobahn's ``PreparedMessage``).
    """

    def __init__(
        self,
        *,
        prepare: Callable[[bytes], Any] = _identity,
        publication_ids: Callable[[], int] = util.id,
    ) -> None:
        self._prepare = prepare
        self._publication_ids = publication_ids
        self._serializer = JsonSerializer()
        self._by_topic: dict[str, _Subscription] = {}
        self._by_id: dict[int, _Subscription] = {}
        # Router-scope ids (WAMP): sequential is fine and never collides.
        self._subscription_ids = count(1)
        #: Called with ``listening()`` each time it changes (the first
        #: subscription of a node, or the last one gone): the notifier on
        #: RabbitMQ consumes its queue only while someone listens.
        self.listening_observers: list[Callable[[bool], None]] = []
        #: What a new subscription's SUBSCRIBED waits for (None: nothing): on
        #: RabbitMQ the node's first subscription starts the notifier's
        #: consumer, and its queue exists only once that has started; a
        #: client told SUBSCRIBED before then could miss the next event.
        self.ready: Callable[[], Deferred[None] | None] = _nothing_to_wait_for

    def _listening_changed(self, listening: bool) -> None:
        for observer in list(self.listening_observers):
            observer(listening)

    def subscribe(self, subscriber: Subscriber, topic: str) -> int:
        """Add ``subscriber`` to ``topic`` (idempotent); the subscription id."""
        subscription = self._by_topic.get(topic)
        first = not self._by_topic
        if subscription is None:
            subscription = _Subscription(next(self._subscription_ids), topic)
            self._by_topic[topic] = subscription
            self._by_id[subscription.id] = subscription
        subscription.subscribers[subscriber] = None
        if first:
            # The node's first subscription: observers see listening() true.
            self._listening_changed(True)
        return subscription.id

    def unsubscribe(self, subscriber: Subscriber, subscription_id: int) -> bool:
        """Remove ``subscriber`` from a subscription; whether it was subscribed."""
        subscription = self._by_id.get(subscription_id)
        if subscription is None or subscriber not in subscription.subscribers:
            return False
        del subscription.subscribers[subscriber]
        if not subscription.subscribers:
            del self._by_id[subscription.id]
            del self._by_topic[subscription.topic]
            if not self._by_topic:
                self._listening_changed(False)
        return True

    def subscribers(self, topic: str) -> int:
        """How many sessions read ``topic``."""
        subscription = self._by_topic.get(topic)
        return 0 if subscription is None else len(subscription.subscribers)

    def listening(self) -> bool:
        """Whether any session subscribes to any topic (a topic goes with its last reader)."""
        return bool(self._by_topic)

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        """
        Send ``event`` (the one positional argument of the EVENT) to every
        subscriber of ``topic``; how many it was sent to. Raises ``TypeError``
        or ``ValueError`` for an event that is not JSON.
        """
        subscription = self._by_topic.get(topic)
        if subscription is None or not subscription.subscribers:
            return 0
        msg: Any = message.Event(
            subscription=subscription.id, publication=self._publication_ids(), args=[event]
        )
        data, _ = self._serializer.serialize(msg)
        frame = self._prepare(data)
        # A copy: a delivery may end a session, which unsubscribes it.
        targets = list(subscription.subscribers)
        for subscriber in targets:
            subscriber.deliver(frame)
        return len(targets)
