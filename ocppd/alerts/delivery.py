"""
Delivering notices: a webhook (a signed JSON POST, with treq) and e-mail
(SMTP, with ``twisted.mail``), each send retried with exponential back-off.

A channel's ``send`` fires once the receiver took the notice and fails
otherwise; ``Deliveries`` tries each notice on each channel up to
``max_attempts`` times, waiting ``retry_delay`` seconds, then twice that,
and so on (at most ``MAX_DELAY``), and logs a notice it gives up on. The
notices wait in the store (``ocppd.alerts.queue``), so a restart or a dead
node loses none: any node sends them (docs/operations.md, "Alerts").
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from io import BytesIO
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList, inlineCallbacks, maybeDeferred, succeed
from twisted.internet.interfaces import IReactorTime
from twisted.internet.task import LoopingCall
from twisted.python.failure import Failure

from ocppd.alerts import queue
from ocppd.alerts.notices import (
    EVENT_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    Notice,
    email_message,
    signature,
    webhook_body,
)
from ocppd.logs import Logger
from ocppd.store.database import Database
from ocppd.timeutil import from_timestamp

#: Longest wait between two tries of one delivery, seconds.
MAX_DELAY = 3600.0
#: Most bytes of a webhook receiver's answer read (and thrown away).
MAX_ANSWER = 65536
#: Seconds between two looks for due notices (retries, another node's leftovers).
POLL = 5.0
#: Notices claimed (and sent at once) per round trip.
BATCH = 20


class DeliveryFailed(Exception):
    """The receiver did not take the notice; ``str()`` says why (no secrets)."""


class Channel(Protocol):
    name: str

    def send(self, notice: Notice) -> Deferred[None]: ...


class _TooLong(Exception):
    pass


class WebhookChannel:
    """POSTs each notice as JSON, signed (``ocppd.alerts.notices``); a 2xx answer takes it."""

    name = "webhook"

    def __init__(
        self, *, url: str, secret: str, timeout: float, clock: IReactorTime, http: Any
    ) -> None:
        self.url = url
        self._secret = secret
        self._timeout = timeout
        self._clock = clock
        #: treq's API (``treq.client.HTTPClient``, or ``StubTreq`` in tests).
        self._http = http

    def send(self, notice: Notice) -> Deferred[None]:
        import treq

        body = webhook_body(notice)
        # Signed at each try: a receiver's window on the timestamp stays short.
        timestamp = int(self._clock.seconds())
        headers = {
            "Content-Type": ["application/json"],
            EVENT_HEADER: [notice.type],
            TIMESTAMP_HEADER: [str(timestamp)],
            SIGNATURE_HEADER: [signature(self._secret, timestamp, body)],
        }
        posted = self._http.post(self.url, data=body, headers=headers, timeout=self._timeout)

        def answered(response: Any) -> Deferred[None]:
            seen = [0]

            def collect(data: bytes) -> None:
                seen[0] += len(data)
                if seen[0] > MAX_ANSWER:
                    raise _TooLong()

            read = treq.collect(response, collect)

            def judged(_: object) -> None:
                if not 200 <= response.code < 300:
                    raise DeliveryFailed(f"HTTP {response.code}")

            def long(failure: Failure) -> None:
                failure.trap(_TooLong)
                judged(None)

            return read.addCallbacks(judged, long)

        return posted.addCallback(answered)


class EmailChannel:
    """Mails each notice through one SMTP server (STARTTLS when offered, or required)."""

    name = "email"

    def __init__(
        self,
        *,
        host: str,
        port: int,
        starttls: bool,
        username: str,
        password: str,
        mail_from: str,
        mail_to: tuple[str, ...],
        timeout: float,
        reactor: Any,
    ) -> None:
        self.host = host
        self.port = port
        self._starttls = starttls
        self._username = username
        self._password = password
        self.mail_from = mail_from
        self.mail_to = mail_to
        self._timeout = timeout
        self._reactor = reactor

    def send(self, notice: Notice) -> Deferred[None]:
        from twisted.mail.smtp import ESMTPSenderFactory

        message = email_message(
            notice,
            mail_from=self.mail_from,
            mail_to=self.mail_to,
            at=from_timestamp(self._reactor.seconds()),
        )
        sent: Deferred[Any] = Deferred()
        factory = ESMTPSenderFactory(
            self._username.encode("utf-8") if self._username else None,
            self._password.encode("utf-8") if self._password else None,
            self.mail_from,
            list(self.mail_to),
            BytesIO(message),
            sent,
            retries=0,  # Deliveries retries, with back-off
            timeout=int(self._timeout),
            heloFallback=True,
            requireAuthentication=bool(self._username),
            requireTransportSecurity=self._starttls,
            # Names the server for STARTTLS's certificate check.
            hostname=self.host,
        )
        self._reactor.connectTCP(self.host, self.port, factory, timeout=self._timeout)

        def accepted(result: tuple[int, list[Any]]) -> None:
            if not result[0]:
                raise DeliveryFailed("no recipient was accepted")

        def refused(failure: Failure) -> None:
            raise DeliveryFailed(_reason(failure)) from None

        return sent.addCallbacks(accepted, refused)


def _reason(failure: Failure) -> str:
    text = failure.getErrorMessage().splitlines()
    return f"{type(failure.value).__name__}: {text[0][:200] if text else ''}"


class Deliveries:
    """
    Sends the notices waiting in the store (``ocppd.alerts.queue``) through
    their channels: every ``poll`` seconds and whenever woken (an evaluation
    staged some), a batch at a time; a failed try is due again after the
    back-off, on whichever node comes first.
    """

    log = Logger()

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        database: Database,
        clock: IReactorTime,
        retry_delay: float,
        max_attempts: int,
        lease: float = 120.0,
        poll: float = POLL,
    ) -> None:
        self.channels = {channel.name: channel for channel in channels}
        self._database = database
        self._clock = clock
        self._retry_delay = retry_delay
        self._max_attempts = max_attempts
        self._lease = lease
        self._poll = poll
        self._loop: LoopingCall | None = None
        self._pass: Deferred[int] | None = None
        self._again = False
        self._stopped = False

    @property
    def channel_names(self) -> tuple[str, ...]:
        return tuple(self.channels)

    def delay(self, attempt: int) -> float:
        """Seconds to wait after try ``attempt`` (1: the first) failed."""
        return min(MAX_DELAY, self._retry_delay * 2 ** min(attempt - 1, 30))

    def start(self) -> None:
        if not self.channels:
            return  # nothing is staged for delivery
        self._loop = LoopingCall(self.wake)
        self._loop.clock = self._clock
        self._loop.start(self._poll, now=True)

    def stop(self) -> Deferred[Any]:
        """Stop polling; fires once the sends under way have settled (they stay in the store)."""
        self._stopped = True
        loop, self._loop = self._loop, None
        if loop is not None and loop.running:
            loop.stop()
        self._again = False
        running = self._pass
        return succeed(None) if running is None else running.addBoth(lambda _: None)

    def wake(self) -> None:
        """Send what is due now (once the pass under way, if any, has ended)."""
        if self._stopped:
            return
        if self._pass is not None:
            self._again = True
            return
        self._pass = self.send_due()

        def ended(_: object) -> None:
            self._pass = None
            if self._again:
                self._again = False
                self.wake()

        self._pass.addBoth(ended)

    @inlineCallbacks
    def send_due(self) -> Generator[Deferred[Any], Any, int]:
        """
        Claim the due notices in batches, send them, settle each, until none
        is due (a resolve behind its raise is due once the raise went); how
        many were sent.
        """
        sent = 0
        try:
            while True:
                now = from_timestamp(self._clock.seconds())
                until = from_timestamp(self._clock.seconds() + self._lease)
                claimed = yield self._database.run(queue.claim, now, until, BATCH)
                results = yield DeferredList(
                    [self._send(pending) for pending in claimed], consumeErrors=True
                )
                for ok, outcome in results:
                    if ok:
                        sent += bool(outcome)
                    else:
                        # Its claim runs out and it is tried again: nothing lost.
                        self.log.failure("Could not settle an alert notice", outcome)
                if not claimed or self._stopped:
                    return sent
        except Exception:
            self.log.failure("Could not read or settle the alert notices; tried again soon")
            return sent

    @inlineCallbacks
    def _send(self, pending: queue.Pending) -> Generator[Deferred[Any], Any, bool]:
        notice, attempt = pending.notice, pending.attempts + 1
        fields = {
            "alert_id": notice.alert.id,
            "event": notice.event,
            "channel": pending.channel,
            "summary": notice.alert.summary,
        }
        channel = self.channels.get(pending.channel)
        if channel is None:
            self.log.warn(
                "Alert {alert_id} {event}: no {channel} channel configured any more; dropped",
                **fields,
            )
            yield self._database.run(queue.delivered, pending.id)
            return False
        try:
            yield maybeDeferred(channel.send, notice)
        except Exception as e:
            reason = str(e) if isinstance(e, DeliveryFailed) else _reason(Failure())
            yield self._failed(pending, attempt, reason, fields)
            return False
        yield self._database.run(queue.delivered, pending.id)
        self.log.info("Alert {alert_id} {event} delivered by {channel}: {summary}", **fields)
        return True

    def _failed(
        self, pending: queue.Pending, attempt: int, reason: str, fields: dict[str, Any]
    ) -> Deferred[None]:
        if attempt >= self._max_attempts:
            self.log.error(
                "Alert {alert_id} {event} NOT delivered by {channel} after {attempts} tries"
                " ({reason}): {summary}",
                attempts=attempt,
                reason=reason,
                **fields,
            )
            return self._database.run(queue.delivered, pending.id)
        delay = self.delay(attempt)
        self.log.warn(
            "Alert {alert_id} {event} not delivered by {channel} ({reason}); try {next} in"
            " {delay:g} s",
            reason=reason,
            next=attempt + 1,
            delay=delay,
            **fields,
        )
        next_at = from_timestamp(self._clock.seconds() + delay)
        return self._database.run(queue.retry_at, pending.id, attempt, next_at)
