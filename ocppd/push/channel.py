"""
The push channel of one node: the broker, its WebSocket factory and the
resource the web listener serves at ``/push``.

``publish`` is what the notifier calls; ``close_all`` is the clean stop.
"""

from __future__ import annotations

from collections.abc import Callable, Generator, Sequence
from typing import Any

from autobahn import util
from autobahn.twisted.resource import WebSocketResource
from twisted.internet import defer
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource

from ocppd.logs import Logger
from ocppd.proxies import TrustedProxies
from ocppd.push.broker import Broker
from ocppd.push.origins import OriginPolicy
from ocppd.push.session import SIGNED_OUT, Authenticator, SessionLimits, ticket_digest
from ocppd.push.topics import REALM, Principal
from ocppd.push.websocket import PushServerFactory, prepare_event


class PushChannel:
    log = Logger()

    def __init__(
        self,
        *,
        authenticate: Authenticator,
        clock: IReactorTime,
        allowed_origins: Sequence[str] = (),
        max_message_size: int = 65536,
        max_buffer: int = 1_048_576,
        max_subscriptions: int = 32,
        hello_timeout: float = 10.0,
        ping_interval: float = 30.0,
        ping_timeout: float = 15.0,
        open_handshake_timeout: float = 10.0,
        session_ids: Callable[[], int] = util.id,
        trusted_proxies: TrustedProxies | None = None,
    ) -> None:
        self._clock = clock
        self.broker = Broker(prepare=prepare_event)
        self.limits = SessionLimits(
            realm=REALM, hello_timeout=hello_timeout, max_subscriptions=max_subscriptions
        )
        self.factory = PushServerFactory(
            broker=self.broker,
            authenticate=authenticate,
            clock=clock,
            limits=self.limits,
            origins=OriginPolicy(allowed_origins),
            max_message_size=max_message_size,
            max_buffer=max_buffer,
            ping_interval=ping_interval,
            ping_timeout=ping_timeout,
            open_handshake_timeout=open_handshake_timeout,
            session_ids=session_ids,
            trusted_proxies=trusted_proxies,
        )

    def resource(self) -> IResource:
        return WebSocketResource(self.factory)

    def listening(self) -> bool:
        """Whether any session on this node subscribes to anything."""
        return self.broker.listening()

    def publish(self, topic: str, event: dict[str, Any]) -> int:
        """Send ``event`` to the subscribers of ``topic``; how many there were."""
        return self.broker.publish(topic, event)

    def revoke_ticket(self, token: str) -> int:
        """End the sessions that joined with ``token`` (just revoked); how many."""
        return self.revoke_digest(ticket_digest(token))

    def revoke_digest(self, digest: str) -> int:
        """
        End the sessions whose ticket has ``digest`` (``ticket_digest``): a
        revocation told by any node (``ocppd.shared``); how many.
        """
        ended = 0
        for protocol in list(self.factory.protocols_open):
            session = protocol.session
            if session is not None and session.ticket_digest == digest:
                session.end(SIGNED_OUT, "signed out")
                ended += 1
        if ended:
            self.log.info("Ended {count} push session(s) at sign-out", count=ended)
        return ended

    @property
    def session_count(self) -> int:
        return len(self.factory.protocols_open)

    @inlineCallbacks
    def close_all(self, timeout: float = 5.0) -> Generator[Deferred[Any], Any, None]:
        """
        GOODBYE to every session, then wait (up to ``timeout`` s) for the
        connections to close; whatever is still open then is dropped.
        """
        protocols = list(self.factory.protocols_open)
        if not protocols:
            return
        self.log.info("Closing {count} push session(s)", count=len(protocols))
        for protocol in protocols:
            if protocol.session is not None:
                protocol.session.shutdown()
        closed = self.factory.when_all_closed()
        closed.addTimeout(timeout, self._clock)
        try:
            yield closed
        except defer.TimeoutError:
            for protocol in list(self.factory.protocols_open):
                protocol.dropConnection(abort=True)


def ticket_authenticator(user_for_token: Callable[[str], Deferred[Any]]) -> Authenticator:
    """
    A session's ticket check from a token lookup (``Accounts.user_for_token``)
    that fires with a user record (``id``, ``email``, ``role``) or None.
    """

    def authenticate(ticket: str) -> Deferred[Principal | None]:
        def principal(user: Any) -> Principal | None:
            if user is None:
                return None
            return Principal(user_id=user.id, email=user.email, role=user.role)

        return user_for_token(ticket).addCallback(principal)

    return authenticate
