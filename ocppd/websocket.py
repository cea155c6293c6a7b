"""What every Autobahn server factory of ocppd sets (OCPP chargers and the push channel)."""

from __future__ import annotations

from autobahn.twisted.websocket import WebSocketServerFactory


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
