"""
The charging fleet of a fault run, in a process of its own:

    python -m faultrun.chargers --url ws://127.0.0.1:PORT/ocpp/ --count 20 \
        --prefix FAULT --key KEY --record acks.jsonl

Each charger (``ocppd.sim``: the simulator and its transaction-keeping
outbox) charges on both connectors again and again: StartTransaction,
MeterValues every ``--meter-interval`` s, StopTransaction after half to
one and a half times ``--session`` s, resending a transaction message after a CALLERROR or a
timeout as a real charger does (``--attempts``).

Every CALLRESULT to a transaction message is appended to the record at
once (one JSON line: the time, the charger, the action, the request and the
answer), and so is every CALLERROR, timeout and lost connection, so a
killed run keeps what it saw. SIGUSR1 ends the run: no new sessions, every
session stopped, exit once every StopTransaction is answered (or given up).
"""

from __future__ import annotations

import argparse
import json
import random
import signal
import sys
import time
from collections.abc import Callable
from typing import IO, Any

from twisted.internet import reactor as _reactor
from twisted.internet.task import LoopingCall

from ocppd.ocpp.actions import TRANSACTION_ACTIONS
from ocppd.ocpp.frames import Call, CallError, CallResult, parse_frame
from ocppd.ocpp.schemas import SchemaRegistry
from ocppd.sim.charger import ChargerSettings, SimulatedCharger
from ocppd.sim.client import Fleet, charger_service
from ocppd.sim.outbox import Outbox

reactor: Any = _reactor


class Record:
    """The append-only record of what the chargers were told (JSON lines, flushed)."""

    def __init__(self, stream: IO[str]) -> None:
        self._stream = stream

    def write(self, kind: str, **fields: Any) -> None:
        self._stream.write(json.dumps({"t": time.time(), "kind": kind, **fields}) + "\n")
        self._stream.flush()


class RecordingOutbox(Outbox):
    """An outbox that records each transaction message's answer with its request."""

    def __init__(self, record: Record, charge_point_id: str, **kwargs: Any) -> None:
        super().__init__(charge_point_id, **kwargs)
        self._record = record
        self._cp = charge_point_id
        #: The transaction message in flight, and when it was sent.
        self._sent: dict[str, tuple[Call, float]] = {}

    def online(self, send: Callable[[str], None]) -> None:
        def sending(text: str) -> None:
            frame = parse_frame(text)
            if isinstance(frame, Call) and frame.action in TRANSACTION_ACTIONS:
                # One CALL in flight at a time.
                self._sent = {frame.unique_id: (frame, time.time())}
            send(text)

        super().online(sending)

    def offline(self) -> None:
        self._record.write("disconnect", cp=self._cp, in_flight=bool(self._sent))
        self._sent = {}
        super().offline()

    def reply_received(self, reply: CallResult | CallError) -> None:
        sent = self._sent.pop(reply.unique_id, None)
        if sent is not None:
            call, at = sent
            if isinstance(reply, CallResult):
                self._record.write(
                    "ack",
                    cp=self._cp,
                    action=call.action,
                    uid=call.unique_id,
                    req=call.payload,
                    res=reply.payload,
                    took=round(time.time() - at, 3),
                )
            else:
                self._record.write(
                    "refused",
                    cp=self._cp,
                    action=call.action,
                    code=reply.code,
                )
        super().reply_received(reply)

    def _expired(self, unique_id: str) -> None:
        sent = self._sent.pop(unique_id, None)
        if sent is not None:
            self._record.write("timeout", cp=self._cp, action=sent[0].action)
        super()._expired(unique_id)


class Driver:
    """Keeps every connector of every charger charging, until told to finish."""

    def __init__(
        self,
        chargers: list[SimulatedCharger],
        id_tag_prefix: str,
        session: float,
        rng: random.Random,
    ) -> None:
        self.chargers = chargers
        #: One idTag per connector (same number): one tag on two connectors
        #: would be refused ConcurrentTx.
        self.id_tag_prefix = id_tag_prefix
        self.session = session
        self.rng = rng
        self.finishing = False
        self._ends: dict[tuple[str, int], float] = {}

    def tick(self) -> None:
        now = time.monotonic()
        for charger in self.chargers:
            for connector in charger.connectors.values():
                key = (charger.charge_point_id, connector.connector_id)
                if connector.session is None:
                    if not self.finishing and charger.accepted:
                        if charger.start_session(
                            connector.connector_id, self.id_tag(charger, connector.connector_id)
                        ):
                            # Staggered lengths, so stops do not all come at once.
                            self._ends[key] = now + self.session * self.rng.uniform(0.5, 1.5)
                elif self.finishing or now >= self._ends.get(key, now):
                    if connector.session.transaction_id is not None or self.finishing:
                        charger.stop_session(connector.connector_id, "Local")

    def id_tag(self, charger: SimulatedCharger, connector_id: int) -> str:
        return f"{self.id_tag_prefix}{charger.charge_point_id[-4:]}{connector_id}"

    def idle(self) -> bool:
        """Every session stopped and every transaction message answered or given up."""
        return all(
            c.connectors[n].session is None
            and not any(a in TRANSACTION_ACTIONS for a in c.outbox.queued_actions)
            for c in self.chargers
            for n in c.connectors
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="faultrun.chargers")
    parser.add_argument("--url", required=True)
    parser.add_argument("--count", type=int, default=20)
    parser.add_argument("--prefix", default="FAULT")
    parser.add_argument("--key", required=True)
    parser.add_argument("--id-tag-prefix", default="FAULTS")
    parser.add_argument("--record", required=True)
    parser.add_argument("--meter-interval", type=float, default=3.0)
    parser.add_argument("--session", type=float, default=30.0)
    parser.add_argument("--attempts", type=int, default=10)
    parser.add_argument("--retry-interval", type=float, default=2.0)
    parser.add_argument("--finish-timeout", type=float, default=240.0)
    options = parser.parse_args(argv)
    rng = random.Random(14)
    schemas = SchemaRegistry.load()
    stream = open(options.record, "a")
    record = Record(stream)
    chargers = []
    for n in range(options.count):
        cp = f"{options.prefix}{n:04d}"
        charger = SimulatedCharger(
            ChargerSettings(
                cp,
                connectors=2,
                meter_interval=options.meter_interval,
                time_scale=5.0,
                call_timeout=15.0,
            ),
            schemas=schemas,
            clock=reactor,
            rng=random.Random(rng.random()),
        )
        # The charger's own outbox, recording, with the resend policy of the run.
        charger.outbox = RecordingOutbox(
            record,
            cp,
            schemas=schemas,
            clock=reactor,
            timeout=15.0,
            may_send=charger._may_send,
            attempts=options.attempts,
            retry_interval=options.retry_interval,
        )
        chargers.append(charger)
    fleet = Fleet(
        chargers,
        lambda charger: charger_service(
            charger,
            base_url=options.url,
            key=options.key,
            reactor=reactor,
            rng=rng,
            initial_delay=0.5,
            max_delay=5.0,
        ),
    )
    driver = Driver(chargers, options.id_tag_prefix, options.session, rng)
    ticker = LoopingCall(driver.tick)
    deadline: list[float] = []

    def check_done() -> None:
        if driver.idle() or time.monotonic() > deadline[0]:
            record.write("finished", idle=driver.idle())
            fleet.stopService()
            reactor.callLater(1.0, reactor.stop)
        else:
            reactor.callLater(0.5, check_done)

    def finish() -> None:
        if driver.finishing:
            return
        driver.finishing = True
        deadline.append(time.monotonic() + options.finish_timeout)
        reactor.callLater(0.5, check_done)

    signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(finish))
    fleet.startService()
    ticker.start(0.5)
    reactor.run()
    stream.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
