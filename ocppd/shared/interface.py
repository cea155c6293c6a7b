"""The shared-state interface: failure throttles, sliding windows, revocations."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from zope.interface import Interface

from ocppd.throttle import ThrottlePolicy

#: Called with the digest (``push.session.ticket_digest``) of a revoked token.
RevokedCallback = Callable[[str], object]


class SharedStateUnavailable(Exception):
    """The shared store cannot be reached; the caller answers 503 (fails closed)."""


class IFailures(Interface):
    """``ocppd.throttle.Throttle``'s semantics, asynchronous (one scope, one policy)."""

    def retry_after(key: str) -> Deferred[float | None]:
        """Seconds until ``key`` may try again, or None (nothing is counted)."""

    def begin(key: str) -> Deferred[float | None]:
        """
        None if ``key`` may try now (the attempt counts as a failure from now
        until :meth:`succeeded`), else the seconds it must wait (not counted).
        """

    def succeeded(key: str) -> Deferred[None]:
        """The attempt of ``key`` succeeded: its failures are forgiven."""


class IWindow(Interface):
    """``ocppd.api.ratelimit.RateLimiter``'s semantics, asynchronous."""

    def retry_after(key: str) -> Deferred[float | None]:
        """Seconds until ``key`` may act again, or None if it may now."""

    def record(key: str) -> Deferred[None]:
        """One event of ``key`` now."""


class ISharedState(Interface):
    def start() -> None:
        """Connect (a Redis store reconnects by itself)."""

    def stop() -> Deferred[None]:
        """Disconnect."""

    def failures(scope: str, policy: ThrottlePolicy) -> IFailures:
        """The failure counts of ``scope`` (one name per throttle)."""

    def window(scope: str, *, limit: int, window: float) -> IWindow:
        """At most ``limit`` events per key within ``window`` seconds."""

    def publish_revoked(digest: str) -> Deferred[None]:
        """Tell every node (this one included) that the token of ``digest`` is revoked."""

    def on_revoked(callback: RevokedCallback) -> None:
        """Call ``callback(digest)`` for every revocation published by any node."""
