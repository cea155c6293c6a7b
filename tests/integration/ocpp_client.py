"""
A real OCPP 1.6 charger for the tests: the ``ocpp`` package's ChargePoint over
``websockets``. Both are asyncio libraries, so the charger runs in its own
thread with its own event loop while the reactor serves it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call_result
from twisted.internet import reactor
from twisted.internet.defer import Deferred
from twisted.internet.threads import blockingCallFromThread, deferToThread

from tests.integration.clients import basic_auth


class TestChargePoint(ChargePoint):
    """Answers the central system's commands like a compliant charger."""

    @on("ClearCache")
    def on_clear_cache(self) -> Any:
        return call_result.ClearCache(status="Accepted")

    @on("RemoteStartTransaction")
    def on_remote_start(self, id_tag: str, connector_id: int | None = None, **kwargs: Any) -> Any:
        return call_result.RemoteStartTransaction(status="Accepted")


Scenario = Callable[[TestChargePoint], Awaitable[Any]]


async def _run(url: str, charge_point_id: str, key: str, scenario: Scenario) -> Any:
    async with websockets.connect(
        url,
        subprotocols=["ocpp1.6"],  # type: ignore[list-item]
        additional_headers={"Authorization": basic_auth(charge_point_id, key)},
        open_timeout=5,
    ) as ws:
        assert ws.subprotocol == "ocpp1.6", ws.subprotocol
        charge_point = TestChargePoint(charge_point_id, ws, response_timeout=10)
        runner = asyncio.ensure_future(charge_point.start())
        try:
            return await scenario(charge_point)
        finally:
            runner.cancel()


def run_charger(url: str, charge_point_id: str, key: str, scenario: Scenario) -> Deferred[Any]:
    """Run ``scenario`` against a connected ChargePoint in a thread; fire with its result."""
    return deferToThread(asyncio.run, _run(url, charge_point_id, key, scenario))


async def in_reactor(func: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """
    From the charger's thread, call ``func`` in the reactor thread and await its
    result, without blocking the charger's event loop (it must keep answering).
    """
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        None, lambda: blockingCallFromThread(reactor, func, *args, **kwargs)
    )
