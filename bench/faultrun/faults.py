"""
The faults of a run, each injected and restored while the chargers charge.

A fault is a name and a function of the run's services that blocks while the
fault lasts and returns once the service is restored (the moment recovery is
measured from).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable

import attrs

from .services import Daemon, Postgres, Rabbit


@attrs.define
class Services:
    daemon: Daemon
    prefix: str
    #: A charger of the run, named by the poison messages.
    charge_point_id: str
    postgres: Postgres | None = None
    rabbit: Rabbit | None = None

    @property
    def pg(self) -> Postgres:
        assert self.postgres is not None
        return self.postgres

    @property
    def mq(self) -> Rabbit:
        assert self.rabbit is not None
        return self.rabbit


@attrs.frozen
class Fault:
    name: str
    inject: Callable[[Services], None]


def broker_connections_killed(s: Services) -> None:
    s.mq.close_connections()


def broker_stopped(seconds: float) -> Callable[[Services], None]:
    def inject(s: Services) -> None:
        s.mq.stop_app()
        time.sleep(seconds)
        s.mq.start_app()

    return inject


def postgres_stopped(seconds: float) -> Callable[[Services], None]:
    def inject(s: Services) -> None:
        s.pg.stop()
        time.sleep(seconds)
        s.pg.start()

    return inject


def postgres_frozen(seconds: float) -> Callable[[Services], None]:
    def inject(s: Services) -> None:
        pids = s.pg.freeze()
        try:
            time.sleep(seconds)
        finally:
            s.pg.thaw(pids)

    return inject


def broker_alarm(seconds: float) -> Callable[[Services], None]:
    def inject(s: Services) -> None:
        s.mq.alarm(True)
        try:
            time.sleep(seconds)
        finally:
            s.mq.alarm(False)

    return inject


def poison_bodies(charge_point_id: str) -> list[bytes]:
    """
    Bodies no consumer can apply: not JSON, not an envelope, and well-formed
    envelopes (from a real charger of the run) whose OCPP request is nonsense,
    which only the processor's handler finds out.
    """
    from ocppd.bus.envelope import Envelope

    nonsense = {
        "uniqueId": "poison",
        "request": {"connectorId": "x", "transactionId": -1, "meterValue": 7},
        "response": {},
    }
    bodies = [b"\xff\xfe not json", b"{}"]
    for action in ("MeterValues", "StopTransaction", "StartTransaction"):
        envelope = Envelope.create(
            f"ocpp.in.{action}", nonsense, node="faults", charge_point_id=charge_point_id
        )
        bodies.append(envelope.to_bytes())
    return bodies


def poison_messages(s: Services) -> None:
    import pika  # only here: the product keeps pika inside ocppd/bus/amqp.py

    connection = pika.BlockingConnection(pika.URLParameters(s.mq.url))
    channel = connection.channel()
    for body in poison_bodies(s.charge_point_id):
        key = "ocpp.in.MeterValues"
        if body.startswith(b"{") and len(body) > 2:
            key = json.loads(body)["type"]
        channel.basic_publish(exchange=f"{s.prefix}.ocpp", routing_key=key, body=body)
    connection.close()


def ocppd_killed(s: Services) -> None:
    s.daemon.kill9()
    s.daemon.start()


def amqp_pg_faults() -> list[Fault]:
    return [
        Fault("broker connections killed", broker_connections_killed),
        Fault("broker stopped 10 s", broker_stopped(10)),
        Fault("broker stopped 60 s", broker_stopped(60)),
        Fault("PostgreSQL stopped 10 s", postgres_stopped(10)),
        Fault("PostgreSQL frozen 10 s", postgres_frozen(10)),
        Fault("RabbitMQ memory alarm 10 s", broker_alarm(10)),
        Fault("poison messages", poison_messages),
        Fault("ocppd kill -9 (1)", ocppd_killed),
        Fault("ocppd kill -9 (2)", ocppd_killed),
    ]


def embedded_faults() -> list[Fault]:
    return [
        Fault("ocppd kill -9 (1)", ocppd_killed),
        Fault("ocppd kill -9 (2)", ocppd_killed),
    ]
