"""
Delivering notices: a webhook (a signed JSON POST, with treq) and e-mail
(SMTP, with ``twisted.mail``), each send retried with exponential back-off.

A channel's ``send`` fires once the receiver took the notice and fails
otherwise; ``Deliveries`` tries each notice on each channel up to
``max_attempts`` times, waiting ``retry_delay`` seconds, then twice that,
and so on (at most ``MAX_DELAY``), and logs a notice it gives up on. The
retries live in this process: a notice still being retried when the node
stops is logged as not delivered (docs/operations.md, "Alerts").
"""

from __future__ import annotations

from collections.abc import Sequence
from io import BytesIO
from typing import Any, Protocol

from twisted.internet.defer import Deferred, DeferredList, maybeDeferred
from twisted.internet.interfaces import IDelayedCall, IReactorTime
from twisted.python.failure import Failure

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
from ocppd.timeutil import from_timestamp

#: Longest wait between two tries of one delivery, seconds.
MAX_DELAY = 3600.0
#: Most bytes of a webhook receiver's answer read (and thrown away).
MAX_ANSWER = 65536


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
    """Each notice to each channel, retried with exponential back-off."""

    log = Logger()

    def __init__(
        self,
        channels: Sequence[Channel],
        *,
        clock: IReactorTime,
        retry_delay: float,
        max_attempts: int,
    ) -> None:
        self.channels = tuple(channels)
        self._clock = clock
        self._retry_delay = retry_delay
        self._max_attempts = max_attempts
        self._waiting: dict[IDelayedCall, tuple[Channel, Notice]] = {}
        self._sending: set[Deferred[None]] = set()
        self._stopped = False

    def delay(self, attempt: int) -> float:
        """Seconds to wait after try ``attempt`` (1: the first) failed."""
        return min(MAX_DELAY, self._retry_delay * 2 ** min(attempt - 1, 30))

    @property
    def pending(self) -> int:
        """Sends under way or waiting for their retry."""
        return len(self._waiting) + len(self._sending)

    def deliver(self, notice: Notice) -> None:
        for channel in self.channels:
            self._try(channel, notice, 1)

    def _try(self, channel: Channel, notice: Notice, attempt: int) -> None:
        sending = maybeDeferred(channel.send, notice)
        self._sending.add(sending)

        def sent(_: object) -> None:
            self.log.info(
                "Alert {alert_id} {event} delivered by {channel}: {summary}",
                alert_id=notice.alert.id,
                event=notice.event,
                channel=channel.name,
                summary=notice.alert.summary,
            )

        def failed(failure: Failure) -> None:
            reason = _reason(failure) if not failure.check(DeliveryFailed) else str(failure.value)
            if attempt >= self._max_attempts or self._stopped:
                self.log.error(
                    "Alert {alert_id} {event} NOT delivered by {channel} after {attempts}"
                    " tries ({reason}): {summary}",
                    alert_id=notice.alert.id,
                    event=notice.event,
                    channel=channel.name,
                    attempts=attempt,
                    reason=reason,
                    summary=notice.alert.summary,
                )
                return
            delay = self.delay(attempt)
            self.log.warn(
                "Alert {alert_id} {event} not delivered by {channel} ({reason}); try {next}"
                " in {delay:g} s",
                alert_id=notice.alert.id,
                event=notice.event,
                channel=channel.name,
                reason=reason,
                next=attempt + 1,
                delay=delay,
            )
            call = self._clock.callLater(delay, self._retry, channel, notice, attempt + 1)
            self._waiting[call] = (channel, notice)

        def done(result: object) -> object:
            self._sending.discard(sending)
            return result

        sending.addCallbacks(sent, failed).addBoth(done)

    def _retry(self, channel: Channel, notice: Notice, attempt: int) -> None:
        self._waiting = {c: v for c, v in self._waiting.items() if c.active()}
        self._try(channel, notice, attempt)

    def stop(self) -> Deferred[Any]:
        """Give up the retries waiting (logged); fires once the sends under way ended."""
        self._stopped = True
        waiting, self._waiting = self._waiting, {}
        for call, (channel, notice) in waiting.items():
            if call.active():
                call.cancel()
                self.log.warn(
                    "Alert {alert_id} {event} not delivered by {channel}: the node stopped"
                    " while it waited for a retry",
                    alert_id=notice.alert.id,
                    event=notice.event,
                    channel=channel.name,
                )
        return DeferredList(list(self._sending))
