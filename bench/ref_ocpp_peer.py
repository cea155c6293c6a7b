"""
The peer: a minimal central system on the ``ocpp`` package's ``ChargePoint``
over ``websockets``, what a Python user would write instead of ocppd.

    python bench/ref_ocpp_peer.py PORT

It answers BootNotification, Heartbeat, StartTransaction and MeterValues the
way the ``ocpp`` package's own examples do (schema validation on, as shipped);
it stores nothing and publishes nothing, so it does less than ocppd.
"""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime
from typing import Any

from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from ocpp.v16.enums import Action, AuthorizationStatus, RegistrationStatus
from websockets.asyncio.server import ServerConnection, serve
from websockets.typing import Subprotocol


def _now() -> str:
    return datetime.now(UTC).isoformat()


class CentralSystemChargePoint(ChargePoint):
    @on(Action.boot_notification)
    def on_boot_notification(self, **kwargs: Any) -> call_result.BootNotification:
        return call_result.BootNotification(
            current_time=_now(), interval=300, status=RegistrationStatus.accepted
        )

    @on(Action.heartbeat)
    def on_heartbeat(self) -> call_result.Heartbeat:
        return call_result.Heartbeat(current_time=_now())

    @on(Action.start_transaction)
    def on_start_transaction(self, **kwargs: Any) -> call_result.StartTransaction:
        return call_result.StartTransaction(
            transaction_id=1, id_tag_info={"status": AuthorizationStatus.accepted}
        )

    @on(Action.meter_values)
    def on_meter_values(self, **kwargs: Any) -> call_result.MeterValues:
        return call_result.MeterValues()


async def on_connect(connection: ServerConnection) -> None:
    assert connection.request is not None
    charge_point_id = connection.request.path.rstrip("/").split("/")[-1]
    charge_point = CentralSystemChargePoint(charge_point_id, connection)
    try:
        await charge_point.start()
    except Exception:  # the charger went away: what websockets raises then
        return


async def main() -> None:
    port = int(sys.argv[1])
    async with serve(
        on_connect, "127.0.0.1", port, subprotocols=[Subprotocol("ocpp1.6")], backlog=1024
    ) as server:
        print("listening", flush=True)
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
