"""
The Autobahn edge of a simulated charger: moves text frames, reconnects.

Each charger gets its own ``WebSocketClientFactory`` (its URL ends in its
id, its Basic-auth header carries its key) inside a ``ClientService`` that
reconnects with exponential back-off and jitter, so a site that loses the
central system does not come back as a thundering herd. A refused
handshake (wrong key, unknown charger) counts as a failed attempt too:
Twisted's policy only sees TCP connections, so the charger's own count of
refused handshakes is added to the attempt number.
"""

from __future__ import annotations

import base64
import random
from collections.abc import Callable
from typing import Any

from autobahn.twisted.websocket import WebSocketClientFactory, WebSocketClientProtocol
from autobahn.websocket.protocol import WebSocketProtocol
from autobahn.websocket.util import parse_url
from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import MultiService
from twisted.internet.endpoints import HostnameEndpoint, wrapClientTLS
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.ssl import optionsForClientTLS

from ocppd.logs import Logger
from ocppd.sim.charger import SimulatedCharger

SUBPROTOCOL = "ocpp1.6"


class SimClientProtocol(WebSocketClientProtocol):
    """One charger's WebSocket; the charger is the factory's."""

    _log = Logger()
    factory: SimClientFactory
    _opened = False

    def onOpen(self) -> None:
        if self.websocket_protocol_in_use != SUBPROTOCOL:
            # onClose counts it as a refused handshake.
            self.sendClose(1000, "ocpp1.6 required")
            return
        self._opened = True
        self.factory.charger.connection_made(self)

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        if self._opened and not isBinary:
            self.factory.charger.text_received(payload.decode("utf-8"))

    def onClose(self, wasClean: bool, code: int | None, reason: str | None) -> None:
        if self._opened:
            self._opened = False
            self.factory.charger.connection_lost(f"{code} {reason}")
        else:
            # Refused before opening (401, 404, no ocpp1.6): back off harder.
            self.factory.charger.handshake_failed(str(reason))

    # MessageTransport, for SimulatedCharger
    def send_text(self, text: str) -> None:
        if self.state != WebSocketProtocol.STATE_OPEN:
            # Closing (a reset, or the server going away): Autobahn would raise.
            # Nothing is lost: when the close completes, the outbox takes back
            # the call in flight and resends transaction messages after the
            # next boot.
            return
        self.sendMessage(text.encode("utf-8"), isBinary=False)

    def close(self, code: int, reason: str) -> None:
        self.sendClose(code, reason)


class SimClientFactory(WebSocketClientFactory):
    protocol = SimClientProtocol  # type: ignore[assignment]

    def __init__(self, url: str, charger: SimulatedCharger, key: str | None) -> None:
        headers = {}
        if key is not None:
            token = base64.b64encode(f"{charger.charge_point_id}:{key}".encode()).decode()
            headers["Authorization"] = f"Basic {token}"
        super().__init__(url, protocols=[SUBPROTOCOL], headers=headers)
        self.charger = charger
        # A dead central system must be noticed, and a hung handshake given up.
        self.setProtocolOptions(autoPingInterval=60, autoPingTimeout=30, openHandshakeTimeout=30)


def charger_url(base_url: str, charge_point_id: str) -> str:
    """``ws://host:9000/ocpp/`` + ``CP-1`` (a trailing slash is added if missing)."""
    return base_url.rstrip("/") + "/" + charge_point_id


def endpoint_for(reactor: Any, url: str) -> IStreamClientEndpoint:
    """A client endpoint for a ``ws://`` or ``wss://`` URL."""
    secure, host, port, _resource, _path, _params = parse_url(url)
    endpoint: IStreamClientEndpoint = HostnameEndpoint(reactor, host, port)
    if secure:
        endpoint = wrapClientTLS(optionsForClientTLS(host), endpoint)
    return endpoint


def charger_service(
    charger: SimulatedCharger,
    *,
    base_url: str,
    key: str | None,
    reactor: Any,
    rng: random.Random,
    initial_delay: float = 1.0,
    max_delay: float = 60.0,
) -> ClientService:
    """The reconnecting service that keeps ``charger`` connected to ``base_url``."""
    url = charger_url(base_url, charger.charge_point_id)
    policy = backoffPolicy(initialDelay=initial_delay, maxDelay=max_delay, jitter=rng.random)

    def retry(attempt: int) -> float:
        return policy(attempt + charger.handshake_failures)

    service = ClientService(
        endpoint_for(reactor, url),
        SimClientFactory(url, charger, key),
        retryPolicy=retry,
        clock=reactor,
    )
    service.setName(charger.charge_point_id)
    return service


class Fleet(MultiService):
    """
    Many simulated chargers, each with its reconnecting service; stopping
    the fleet stops their timers, then closes their sockets.
    """

    log = Logger()

    def __init__(
        self,
        chargers: list[SimulatedCharger],
        make_service: Callable[[SimulatedCharger], ClientService],
    ) -> None:
        super().__init__()
        self.chargers = chargers
        for charger in chargers:
            make_service(charger).setServiceParent(self)

    def stopService(self) -> Any:
        for charger in self.chargers:
            charger.stop()
        return super().stopService()


__all__ = ["Fleet", "SimClientFactory", "SimClientProtocol", "charger_service", "charger_url"]
