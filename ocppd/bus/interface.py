# Zope interface methods take no self and have no body; mypy without the
# mypy-zope plugin reports both.
# mypy: disable-error-code="misc, empty-body"
"""
The bus seam: what every part of ocppd publishes to and consumes from.

Two implementations provide it: ``ocppd.bus.memory`` (embedded, in-process)
and ``ocppd.bus.amqp`` (RabbitMQ). Both pass ``tests/bus/contract.py``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import attrs
from twisted.internet.defer import Deferred
from zope.interface import Attribute, Interface

from ocppd.bus.envelope import Envelope


class BusError(Exception):
    """Publishing failed: the bus did not accept the message."""


def encode_envelope(envelope: Envelope) -> bytes:
    """
    The envelope as the bytes both buses carry; ``BusError`` if it cannot be
    encoded (a payload that is not JSON), so a publish fails the same way on
    every bus.
    """
    try:
        return envelope.to_bytes()
    except (TypeError, ValueError, RecursionError) as e:
        raise BusError(f"envelope {envelope.id} is not serialisable: {e}") from None


@attrs.frozen
class Delivery:
    """One delivery of an envelope to a consumer."""

    envelope: Envelope
    routing_key: str
    queue: str
    #: 1 on the first delivery, incremented on each retry.
    attempt: int
    #: The embedded bus's journal record of this delivery (None on RabbitMQ
    #: and in ephemeral queues): what a consumer that settles in its own
    #: transaction removes there (``MemoryBus.journal_settler``).
    journal_seq: int | None = None


@attrs.frozen
class DeadLetter:
    """A message that failed ``max_attempts`` times and was set aside."""

    id: str
    queue: str
    routing_key: str
    envelope: Envelope
    attempts: int
    reason: str
    #: ISO-8601 UTC time the message was dead-lettered.
    failed_at: str


@attrs.frozen
class Replay:
    """What a replay of dead letters did."""

    #: The envelope ids put back on the work queue, in the order they were replayed.
    replayed: tuple[str, ...]
    #: Those of them that were dead letters again when the replay ended.
    failed_again: tuple[str, ...]

    @property
    def count(self) -> int:
        return len(self.replayed)


def replay_outcome(replayed: list[str], dead_now: list[DeadLetter]) -> Replay:
    """The ``Replay`` of ``replayed``, given the dead letters found after it."""
    back = {letter.id for letter in dead_now}
    failed_again = tuple(dict.fromkeys(i for i in replayed if i in back))
    return Replay(replayed=tuple(replayed), failed_again=failed_again)


#: A handler returns None or a Deferred; success acks, an exception (or a failed
#: Deferred) schedules a retry.
Handler = Callable[[Delivery], Any]


class IConsumer(Interface):
    queue = Attribute("The name of the queue consumed.")
    concurrency = Attribute(
        "The most deliveries handed to the handler at once: what it asked for, capped by"
        " the bus (AMQP: the prefetch)."
    )

    def stop() -> Deferred[None]:
        """Stop taking new deliveries; fires when in-flight handlers have finished."""


class IBus(Interface):
    def publish(routing_key: str, envelope: Envelope) -> Deferred[None]:
        """
        Publish ``envelope`` with ``routing_key`` on the exchange the topology
        assigns to that key. Fires with None once the bus has accepted the
        message (for AMQP: the broker's publisher confirm); fails with
        ``BusError`` otherwise. A message is never silently dropped once this
        has fired successfully, unless no queue is bound to its routing key.
        Neither the publisher nor any consumer may change the envelope's
        payload once published: the embedded bus hands the object itself to
        every consumer of it.
        """

    def consume(queue: str, handler: Handler, concurrency: int = 1) -> Deferred[IConsumer]:
        """
        Start delivering messages of ``queue`` (declared by the topology) to
        ``handler``, in publication order, with at most ``concurrency``
        handlers running at once (1: each waits for the previous to finish).
        Success acks the message; failure redelivers it after the next back-off
        delay, and after ``max_attempts`` moves it to the dead letters with the
        reason. With ``concurrency`` above 1 a later message may finish (and
        be retried) before an earlier one: consumers must not depend on order.
        """

    def dead_letters(queue: str) -> Deferred[list[DeadLetter]]:
        """The dead letters of ``queue``, oldest first."""

    def replay_dead_letters(
        queue: str, ids: list[str] | None = None, wait: float = 0.0
    ) -> Deferred[Replay]:
        """
        Put dead letters (all, or those with ``ids``) back on ``queue`` at
        attempt 1, each once: only the letters there when the replay starts
        are replayed, so a letter that fails again during the replay is not
        replayed again (the replay always ends). A replayed letter keeps its
        envelope id, so a consumer deduplicates one delivered twice. After
        ``wait`` more seconds, fires with the ``Replay``: which letters were
        replayed and which of them were dead letters again by then.
        """
