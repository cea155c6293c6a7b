"""What every Autobahn server factory of ocppd sets (OCPP chargers and the push channel)."""

from __future__ import annotations

from types import FunctionType
from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol


def harden(
    factory: WebSocketServerFactory,
    *,
    max_message_size: int,
    ping_interval: float,
    ping_timeout: float,
    open_handshake_timeout: float,
) -> None:
    """
    Autobahn's server defaults have no frame or message size limit and never
    ping (DESIGN.md section 6); and it answers plain HTTP GETs with a status
    page naming itself. Set limits, pings and timeouts explicitly.

    Autobahn has no bound on the opening handshake's size either: the OCPP
    protocol bounds it where Autobahn buffers it (``[ocpp] max_handshake_size``);
    the push channel's handshake is parsed by twisted.web, which bounds it.
    """
    factory.setProtocolOptions(
        maxFramePayloadSize=max_message_size,
        maxMessagePayloadSize=max_message_size,
        autoPingInterval=ping_interval,
        autoPingTimeout=ping_timeout,
        openHandshakeTimeout=open_handshake_timeout,
        closeHandshakeTimeout=5,
        failByDrop=False,
        webStatus=False,
    )


class SharedProtocolOptions:
    """
    A mixin for a ``WebSocketServerFactory``: its protocol options live once,
    on a protocol class made for the factory, not on every connection.

    At each connection Autobahn copies the factory's ~30 options onto the new
    protocol instance, unless the instance already has them, and pretty-prints
    the list for a debug line whose argument is built at any log level: about
    1 ms of CPU per connection (a reconnect storm of 10,000 chargers: 10 s) and
    30 more entries in each connection's ``__dict__``. Here the factory's
    protocol is a subclass holding the options as class attributes, kept equal
    to the factory's by ``setProtocolOptions`` and ``resetProtocolOptions``, and
    listing none to copy. A protocol class assigned to the factory later is
    served as Autobahn does (copied per connection).
    """

    protocol: type[WebSocketServerProtocol]

    def resetProtocolOptions(self) -> None:
        super().resetProtocolOptions()  # type: ignore[misc]
        self._share_options()

    def setProtocolOptions(self, **options: Any) -> None:
        super().setProtocolOptions(**options)  # type: ignore[misc]
        self._share_options()

    def _share_options(self) -> None:
        protocol = self.protocol
        if vars(protocol).get("_options_of") is not self:
            protocol = type(
                protocol.__name__,
                (protocol,),
                {"_options_of": self, "CONFIG_ATTRS": (), "__module__": protocol.__module__},
            )
            self.protocol = protocol
        for name in WebSocketServerProtocol.CONFIG_ATTRS:
            value = getattr(self, name)
            if isinstance(value, FunctionType):
                # e.g. perMessageCompressionAccept: called as the instance's
                # attribute, never as a method of it.
                value = staticmethod(value)
            setattr(protocol, name, value)
