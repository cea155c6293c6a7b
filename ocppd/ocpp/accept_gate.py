"""
Back-pressure at the OCPP listener: while too many opening handshakes wait for
their answer, the node stops accepting connections, and the chargers that
knock meanwhile wait in the kernel's listen backlog.

A restarted node gets every charger's reconnect at once. Accepting them all
would start all their handshakes together: each waits behind thousands of
others for admission (the store lookup, the presence claim), and every one
not answered within ``[ocpp] open_handshake_timeout`` is dropped, so a storm
times out whole waves of handshakes that the node has already paid for. Here
at most about ``max_handshakes`` are in the node's hands; the next is accepted
when one is answered (or refused, or gone).

A handshake counts from its accept: a storm's requests wait in their sockets
until the reactor reads them, and counting only complete requests would let
thousands be accepted first. A connection whose request is not complete within
``REQUEST_GRACE`` (1 s; a charger sends it at once) stops counting until it
is, so clients that send nothing (a slow-loris attack) cost a socket each, as
before, but cannot hold the gate shut. Once the request is complete the
handshake's timeout starts again, for the node's own work.

The bound is soft: Twisted accepts several connections per readable event of
the listening socket (``Port.numberAccepts``, which grows by 20 each time a
read fills it: in a storm, every time), and those already accepted are
served. At each resume the gate sets it to the room left below the limit, so
a long storm does not grow the overshoot to thousands.
"""

from __future__ import annotations

from typing import cast

from twisted.internet.interfaces import IPushProducer

from ocppd.logs import Logger


class AcceptGate:
    """
    Counts handshakes between accept and answer, and pauses the listening
    ports (``IPushProducer``: ``pauseProducing`` stops the accepts) at
    ``limit``, resuming them once the count is down to ``resume_at``.
    """

    log = Logger()

    def __init__(self, limit: int, *, resume_at: int | None = None) -> None:
        if limit < 1:
            raise ValueError("limit must be at least 1")
        self.limit = limit
        #: Resuming a little below the limit: not a pause and resume per answer.
        self.resume_at = max(0, limit - max(1, limit // 8)) if resume_at is None else resume_at
        self.waiting = 0
        self.paused = False
        #: How often the gate closed (for status and logs).
        self.pauses = 0
        self._ports: list[IPushProducer] = []

    def watch(self, port: object) -> bool:
        """Pause and resume ``port`` with the gate; False if it cannot be paused."""
        if not IPushProducer.providedBy(port):
            return False
        producer = cast(IPushProducer, port)
        self._ports.append(producer)
        if self.paused:
            producer.pauseProducing()
        return True

    def forget(self, port: object) -> None:
        """``port`` stopped listening."""
        self._ports = [p for p in self._ports if p is not port]

    def started(self) -> None:
        """A handshake waits for its request or for the node's answer."""
        self.waiting += 1
        if not self.paused and self.waiting >= self.limit:
            self.paused = True
            self.pauses += 1
            if self.pauses == 1 or self.pauses % 100 == 0:
                # A storm closes the gate hundreds of times: its first and every 100th.
                self.log.info(
                    "{waiting} OCPP handshakes wait for their answer: no more connections"
                    " accepted until fewer wait ([ocpp] max_handshakes; closed {pauses}"
                    " time(s) since start)",
                    waiting=self.waiting,
                    pauses=self.pauses,
                )
            for port in self._ports:
                port.pauseProducing()

    def finished(self) -> None:
        """A handshake was answered, refused, or its connection lost."""
        self.waiting -= 1
        if self.paused and self.waiting <= self.resume_at:
            self.paused = False
            room = max(1, self.limit - self.waiting)
            for port in self._ports:
                if isinstance(getattr(port, "numberAccepts", None), int):
                    port.numberAccepts = room  # type: ignore[attr-defined]
                port.resumeProducing()
