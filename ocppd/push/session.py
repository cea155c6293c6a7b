"""
One WAMP v2 session of the push channel: the protocol state machine.

No I/O: bytes come in through :meth:`PushSession.received`, messages leave
through a :class:`Peer` (the WebSocket), time is an injected clock, and the
ticket is checked by an injected ``authenticate``. Only the broker role and
WAMP-Ticket authentication exist:

    HELLO ─▶ CHALLENGE(ticket) ─▶ AUTHENTICATE ─▶ WELCOME ─▶ SUBSCRIBE/UNSUBSCRIBE… ─▶ GOODBYE

Anything a peer may not send in the current state, and anything that does not
parse as a WAMP message, is a protocol violation: ABORT, then the WebSocket is
closed with 1002. Nothing a client sends raises out of this module.
"""

from __future__ import annotations

import enum
import hashlib
import json
from collections.abc import Callable
from typing import Any, Protocol

import attrs
import txaio

txaio.use_twisted()

from autobahn.wamp import message  # noqa: E402  (txaio needs its framework first)
from autobahn.wamp.exception import ProtocolError  # noqa: E402
from autobahn.wamp.role import RoleBrokerFeatures  # noqa: E402
from autobahn.wamp.serializer import JsonSerializer  # noqa: E402
from twisted.internet.defer import Deferred  # noqa: E402

from ocppd.jsoncodec import holds_unstorable  # noqa: E402
from ocppd.logs import Logger  # noqa: E402
from ocppd.push.broker import Broker  # noqa: E402
from ocppd.push.topics import Decision, Principal, authorize  # noqa: E402

# Error and close reasons (WAMP's own URIs where one fits).
NOT_AUTHORIZED = "wamp.error.not_authorized"
INVALID_URI = "wamp.error.invalid_uri"
INVALID_ARGUMENT = "wamp.error.invalid_argument"
NO_SUCH_SUBSCRIPTION = "wamp.error.no_such_subscription"
NO_SUCH_PROCEDURE = "wamp.error.no_such_procedure"
NO_SUCH_REALM = "wamp.error.no_such_realm"
NO_AUTH_METHOD = "wamp.error.no_auth_method"
AUTHENTICATION_FAILED = "wamp.error.authentication_failed"
PROTOCOL_VIOLATION = "wamp.error.protocol_violation"
TIMEOUT = "wamp.error.timeout"
SUBSCRIPTION_LIMIT = "ocppd.error.subscription_limit"
GOODBYE_AND_OUT = "wamp.close.goodbye_and_out"
SYSTEM_SHUTDOWN = "wamp.close.system_shutdown"
#: GOODBYE reason when the token the session signed in with is revoked (sign-out).
SIGNED_OUT = "ocppd.close.signed_out"

CLOSE_NORMAL = 1000
CLOSE_PROTOCOL_ERROR = 1002

#: A REST token is 43 characters; anything far longer is not one.
MAX_TICKET_LENGTH = 512

#: Seconds a SUBSCRIBED waits at most for the node to receive the topic's
#: events (``Broker.ready``; on RabbitMQ a consumer of the notifier's queue).
SUBSCRIBE_READY_TIMEOUT = 5.0

#: Every WAMP message type a client may send (CALL and REGISTER get an ERROR).
_FROM_CLIENTS = (
    message.Call,
    message.Register,
    message.Hello,
    message.Authenticate,
    message.Goodbye,
    message.Abort,
    message.Subscribe,
    message.Unsubscribe,
    message.Publish,
)


class Peer(Protocol):
    """The transport of one session (the WebSocket connection)."""

    def send(self, data: bytes) -> None:
        """Send one serialised WAMP message."""

    def send_shared(self, frame: Any) -> None:
        """Send an EVENT the broker prepared once for all its subscribers."""

    def close(self, code: int, reason: str) -> None:
        """Close the connection (1000, or 1002 after a protocol violation)."""


class Clock(Protocol):
    def callLater(self, delay: float, callable: Callable[..., Any], *args: Any) -> Any: ...


#: Checks a ticket (the REST bearer token): the user, or None if it is not valid.
Authenticator = Callable[[str], "Deferred[Principal | None]"]


def ticket_digest(ticket: str) -> str:
    return hashlib.sha256(ticket.encode("utf-8", "replace")).hexdigest()


def _escapes_unstorable_text(payload: bytes) -> bool:
    """
    Whether a JSON message escapes text no log, store or answer can hold
    (``ocppd.jsoncodec.unstorable``): only a ``\\u`` escape can make it, and
    a browser's JSON.stringify writes one for little else, so the second
    parse is for hostile messages only.
    """
    if b"\\u" not in payload:
        return False
    try:
        return holds_unstorable(json.loads(payload))
    except (ValueError, RecursionError):
        return False  # not JSON: the serializer says so next


class State(enum.Enum):
    HELLO = "hello"
    CHALLENGED = "challenged"
    AUTHENTICATING = "authenticating"
    ESTABLISHED = "established"
    #: We sent GOODBYE and wait for the client's.
    CLOSING = "closing"
    CLOSED = "closed"


@attrs.frozen
class SessionLimits:
    realm: str
    #: Seconds from the WebSocket opening to WELCOME.
    hello_timeout: float
    max_subscriptions: int
    #: Seconds to wait for the client's GOODBYE after ours, before closing anyway.
    goodbye_timeout: float = 2.0


class PushSession:
    """One browser's WAMP session; see the module docstring."""

    log = Logger()

    def __init__(
        self,
        *,
        session_id: int,
        peer: Peer,
        broker: Broker,
        authenticate: Authenticator,
        clock: Clock,
        limits: SessionLimits,
    ) -> None:
        self.session_id = session_id
        self.state = State.HELLO
        self.principal: Principal | None = None
        #: SHA-256 of the ticket it joined with: sign-out ends the session.
        self.ticket_digest: str | None = None
        #: subscription id -> topic
        self.subscriptions: dict[int, str] = {}
        self._peer = peer
        self._broker = broker
        self._authenticate = authenticate
        self._clock = clock
        self._limits = limits
        self._serializer = JsonSerializer()
        self._timer: Any = None

    # --- from the transport -----------------------------------------------------

    def opened(self) -> None:
        """The WebSocket is open: the client has ``hello_timeout`` to be welcomed."""
        self._timer = self._clock.callLater(self._limits.hello_timeout, self._hello_timed_out)

    def received(self, payload: bytes, is_binary: bool) -> None:
        """One WebSocket message from the client."""
        if self.state is State.CLOSED:
            return
        if _escapes_unstorable_text(payload):
            self._violation("a message holds NUL or an unpaired surrogate")
            return
        try:
            messages = self._serializer.unserialize(payload, is_binary)
        except ProtocolError as e:
            self._violation(str(e))
            return
        except Exception as e:
            # Autobahn's parsers mostly raise ProtocolError; whatever else a
            # hostile message provokes is a violation too, never a crash.
            self._violation(f"unparseable message: {type(e).__name__}")
            return
        for msg in messages:
            if self.state is State.CLOSED:
                return
            self._dispatch(msg)

    def lost(self) -> None:
        """The connection is gone, for whatever reason."""
        self.state = State.CLOSED
        self._cancel_timer()
        for subscription_id in list(self.subscriptions):
            self._broker.unsubscribe(self, subscription_id)
        self.subscriptions.clear()

    # --- from the node ------------------------------------------------------------

    def deliver(self, frame: Any) -> None:
        """An EVENT of one of this session's subscriptions (called by the broker)."""
        if self.state is State.ESTABLISHED:
            self._peer.send_shared(frame)

    def shutdown(self) -> None:
        """The node stops: GOODBYE, then close once the client answers (or soon anyway)."""
        self.end(SYSTEM_SHUTDOWN, "the server is shutting down")

    def end(self, reason: str, text: str) -> None:
        """GOODBYE with ``reason`` (ABORT before WELCOME), then close."""
        if self.state is State.ESTABLISHED:
            self._unsubscribe_all()
            self._send(message.Goodbye(reason, text))
            self.state = State.CLOSING
            self._cancel_timer()
            self._timer = self._clock.callLater(self._limits.goodbye_timeout, self._close_now)
        elif self.state is not State.CLOSED:
            self._abort(reason, text)

    # --- the state machine ------------------------------------------------------------

    def _dispatch(self, msg: Any) -> None:
        if not isinstance(msg, _FROM_CLIENTS):
            self._violation(f"a client does not send {type(msg).__name__.upper()}")
            return
        if isinstance(msg, message.Abort):
            self.log.debug(
                "Push session {session} aborted by the client: {reason}",
                session=self.session_id,
                reason=msg.reason,
            )
            self._close(CLOSE_NORMAL, "aborted")
            return
        handler = {
            State.HELLO: self._in_hello,
            State.CHALLENGED: self._in_challenged,
            State.AUTHENTICATING: self._in_authenticating,
            State.ESTABLISHED: self._in_established,
            State.CLOSING: self._in_closing,
        }[self.state]
        handler(msg)

    def _in_hello(self, msg: Any) -> None:
        if not isinstance(msg, message.Hello):
            self._violation(f"{type(msg).__name__.upper()} before HELLO")
            return
        if msg.realm != self._limits.realm:
            self._abort(NO_SUCH_REALM, f"no realm {msg.realm!r}; use {self._limits.realm!r}")
            return
        if "ticket" not in (msg.authmethods or []):
            self._abort(NO_AUTH_METHOD, "authenticate with ticket: the REST API token")
            return
        self.state = State.CHALLENGED
        self._send(message.Challenge("ticket", {}))

    def _in_challenged(self, msg: Any) -> None:
        if not isinstance(msg, message.Authenticate):
            self._violation(f"{type(msg).__name__.upper()} instead of AUTHENTICATE")
            return
        ticket = msg.signature
        if not ticket or len(ticket) > MAX_TICKET_LENGTH:
            self._abort(AUTHENTICATION_FAILED, "invalid ticket")
            return
        self.state = State.AUTHENTICATING
        self.ticket_digest = ticket_digest(ticket)
        d = self._authenticate(ticket)
        d.addCallbacks(self._authenticated, self._authentication_error)

    def _authenticated(self, principal: Principal | None) -> None:
        if self.state is not State.AUTHENTICATING:
            return  # timed out or the connection went meanwhile
        if principal is None:
            self.log.info("Push session {session}: invalid ticket", session=self.session_id)
            self._abort(AUTHENTICATION_FAILED, "invalid or expired ticket")
            return
        self._cancel_timer()
        self.principal = principal
        self.state = State.ESTABLISHED
        self._send(
            message.Welcome(
                self.session_id,
                {"broker": RoleBrokerFeatures()},
                realm=self._limits.realm,
                authid=str(principal.user_id),
                authrole=principal.role,
                authmethod="ticket",
                authprovider="ocppd",
                authextra={
                    "userId": principal.user_id,
                    "email": principal.email,
                    "role": principal.role,
                },
            )
        )
        self.log.info(
            "Push session {session} joined as user {user_id} ({role})",
            session=self.session_id,
            user_id=principal.user_id,
            role=principal.role,
        )

    def _authentication_error(self, failure: Any) -> None:
        self.log.failure(
            "Push session {session}: ticket check failed", failure, session=self.session_id
        )
        if self.state is State.AUTHENTICATING:
            self._abort(AUTHENTICATION_FAILED, "the ticket could not be checked; try again")

    def _in_authenticating(self, msg: Any) -> None:
        self._violation(f"{type(msg).__name__.upper()} before WELCOME")

    def _in_established(self, msg: Any) -> None:
        if isinstance(msg, message.Subscribe):
            self._subscribe(msg)
        elif isinstance(msg, message.Unsubscribe):
            self._unsubscribe(msg)
        elif isinstance(msg, message.Publish):
            # Browsers only listen; an unacknowledged PUBLISH gets no answer (WAMP).
            if msg.acknowledge:
                self._error(msg, NOT_AUTHORIZED, "publishing is not allowed")
        elif isinstance(msg, message.Call):
            self._error(msg, NO_SUCH_PROCEDURE, "this router has no procedures")
        elif isinstance(msg, message.Register):
            self._error(msg, NOT_AUTHORIZED, "registering procedures is not allowed")
        elif isinstance(msg, message.Goodbye):
            self._unsubscribe_all()
            self._send(message.Goodbye(GOODBYE_AND_OUT))
            self._close(CLOSE_NORMAL, "goodbye")
        else:
            self._violation(f"{type(msg).__name__.upper()} in an established session")

    def _in_closing(self, msg: Any) -> None:
        if isinstance(msg, message.Goodbye):
            self._close(CLOSE_NORMAL, "goodbye")
        # Anything else crossed our GOODBYE on the wire: ignored.

    # --- subscriptions ------------------------------------------------------------

    def _subscribe(self, msg: Any) -> None:
        assert self.principal is not None
        topic = msg.topic
        if msg.match not in (None, "exact"):
            self._error(msg, INVALID_ARGUMENT, "only exact topic matching is offered")
            return
        decision = authorize(self.principal, topic)
        if decision is not Decision.ALLOWED:
            self.log.info(
                "Push session {session} (user {user_id}) refused topic {topic}: {decision}",
                session=self.session_id,
                user_id=self.principal.user_id,
                topic=topic,
                decision=decision.value,
            )
            if decision is Decision.UNKNOWN:
                self._error(msg, INVALID_URI, f"no topic {topic!r}")
            else:
                self._error(msg, NOT_AUTHORIZED, f"not allowed to read {topic!r}")
            return
        if topic not in self.subscriptions.values():
            if len(self.subscriptions) >= self._limits.max_subscriptions:
                self._error(
                    msg,
                    SUBSCRIPTION_LIMIT,
                    f"at most {self._limits.max_subscriptions} subscriptions per session",
                )
                return
        subscription_id = self._broker.subscribe(self, topic)
        self.subscriptions[subscription_id] = topic
        ready = self._broker.ready()
        if ready is None or ready.called:
            self._send(message.Subscribed(msg.request, subscription_id))
            return
        # Confirmed once the node receives the topic's events (the broker's
        # ``ready``), or after ``SUBSCRIBE_READY_TIMEOUT`` whatever happens:
        # a stalled broker must not leave the page waiting for good.
        request = msg.request
        timer = self._clock.callLater(
            SUBSCRIBE_READY_TIMEOUT, self._confirm_subscription, request, subscription_id
        )

        def confirm(_: object) -> None:
            if timer.active():
                timer.cancel()
                self._confirm_subscription(request, subscription_id)

        ready.addBoth(confirm)

    def _confirm_subscription(self, request: int, subscription_id: int) -> None:
        """SUBSCRIBED, unless the session ended or unsubscribed meanwhile."""
        if self.state is State.ESTABLISHED and subscription_id in self.subscriptions:
            self._send(message.Subscribed(request, subscription_id))

    def _unsubscribe(self, msg: Any) -> None:
        if self.subscriptions.pop(msg.subscription, None) is None:
            self._error(msg, NO_SUCH_SUBSCRIPTION, "no such subscription")
            return
        self._broker.unsubscribe(self, msg.subscription)
        self._send(message.Unsubscribed(msg.request))

    def _unsubscribe_all(self) -> None:
        for subscription_id in list(self.subscriptions):
            self._broker.unsubscribe(self, subscription_id)
        self.subscriptions.clear()

    # --- sending and ending ---------------------------------------------------------

    def _send(self, msg: Any) -> None:
        data, _ = self._serializer.serialize(msg)
        self._peer.send(data)

    def _error(self, request: Any, error: str, text: str) -> None:
        self._send(message.Error(request.MESSAGE_TYPE, request.request, error, args=[text]))

    def _abort(self, reason: str, text: str, code: int = CLOSE_NORMAL) -> None:
        self._send(message.Abort(reason, text))
        self._close(code, reason)

    def _violation(self, text: str) -> None:
        self.log.info(
            "Push session {session}: protocol violation: {reason}",
            session=self.session_id,
            reason=text,
        )
        self._abort(PROTOCOL_VIOLATION, text, CLOSE_PROTOCOL_ERROR)

    def _hello_timed_out(self) -> None:
        self._timer = None
        if self.state in (State.HELLO, State.CHALLENGED, State.AUTHENTICATING):
            self._abort(TIMEOUT, f"not authenticated within {self._limits.hello_timeout:g} s")

    def _close_now(self) -> None:
        self._timer = None
        self._close(CLOSE_NORMAL, "shutdown")

    def _close(self, code: int, reason: str) -> None:
        self.lost()
        self._peer.close(code, reason)

    def _cancel_timer(self) -> None:
        timer, self._timer = self._timer, None
        if timer is not None and timer.active():
            timer.cancel()
