"""
The ceiling: a bare Autobahn (Twisted) WebSocket server answering every text
message with one canned CALLRESULT, without parsing it.

    python bench/ref_autobahn.py PORT

No OCPP CSMS on Twisted and Autobahn can answer faster than this: what ocppd
does beyond it (parsing, validation, handlers, the bus) is the gap
``bench/run`` reports as ocppd/ceiling.
"""

from __future__ import annotations

import sys
from typing import Any

from autobahn.twisted.websocket import WebSocketServerFactory, WebSocketServerProtocol
from autobahn.websocket.types import ConnectionRequest
from twisted.internet import reactor

CANNED = b'[3,"0",{"currentTime":"2027-01-01T00:00:00.000Z"}]'


class CannedAnswer(WebSocketServerProtocol):
    def onConnect(self, request: ConnectionRequest) -> Any:
        return "ocpp1.6" if "ocpp1.6" in request.protocols else None

    def onMessage(self, payload: bytes, isBinary: bool) -> None:
        self.sendMessage(CANNED)


def main() -> None:
    port = int(sys.argv[1])
    factory = WebSocketServerFactory(protocols=["ocpp1.6"])
    factory.protocol = CannedAnswer
    # The same limits ocppd sets, so both pay for the same checks.
    factory.setProtocolOptions(
        maxFramePayloadSize=65536, maxMessagePayloadSize=65536, webStatus=False
    )
    reactor.listenTCP(port, factory, backlog=1024, interface="127.0.0.1")
    print("listening", flush=True)
    reactor.run()


if __name__ == "__main__":
    main()
