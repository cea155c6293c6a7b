"""
Replaying a recorded stream (``tests.consumers.recorded_stream``) through the
processor, and the canonical record of what it came to: per step the rows it
changed, per delivery its events and pushes, and the final tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from twisted.internet.task import Clock
from twisted.python.failure import Failure

from ocppd.api.closing import close_tx
from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.bus.outbox import Outbox
from ocppd.consumers.base import FollowUp
from ocppd.consumers.closing import Closings
from ocppd.consumers.notifier import push_events, shown_inbound
from ocppd.consumers.policy import BillingPolicy
from ocppd.consumers.processor import OcppProcessor
from ocppd.consumers.stop_billing import StopBilling
from ocppd.consumers.tariff_cache import TariffCache
from ocppd.store import chargers, messages, tags, tariffs, transactions, users, wallets
from ocppd.store.database import Database
from ocppd.store.tables import message_log, metadata
from ocppd.timeutil import format_iso, parse_iso

#: The node that published the stream, and when its clock starts.
NODE = "n1"
T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)

TIME_ARGS = ("now", "started_at")


def _top_up(conn: Connection, *, user_id: int, amount: int, key: str, now: datetime) -> None:
    wallets.post_transaction(
        conn, user_id, kind="top_up", amount=amount, currency="EUR", idempotency_key=key, now=now
    )


def _add_user(conn: Connection, *, email: str, now: datetime) -> None:
    users.add_user(conn, email, "not-a-hash", "customer", now=now)


def _add_charge_point(
    conn: Connection, *, charge_point_id: str, tariff_id: int | None, now: datetime
) -> None:
    chargers.add_charge_point(conn, charge_point_id, None, tariff_id=tariff_id, now=now)


def _add_id_tag(conn: Connection, *, id_tag: str, user_id: int | None, now: datetime) -> None:
    tags.add_id_tag(conn, id_tag, user_id=user_id, now=now)


def _add_tariff(conn: Connection, *, name: str, **kwargs: Any) -> None:
    tariffs.add_tariff(conn, name, **kwargs)


def _close_by_hand(conn: Connection, *, transaction_id: int, now: datetime) -> None:
    """An operator's close (``POST /api/cms/sessions/{id}/close``), without its events."""
    close_tx(conn, transaction_id, Closings(StopBilling(BillingPolicy(), TariffCache())), now=now)


#: What the request path writes meanwhile, by the stream's name for it.
STORE_OPS: dict[str, Callable[..., Any]] = {
    "add_user": _add_user,
    "add_tariff": _add_tariff,
    "add_charge_point": _add_charge_point,
    "add_id_tag": _add_id_tag,
    "top_up": _top_up,
    "create_request": wallets.create_request,
    "allocate_transaction": transactions.allocate_transaction,
    "close_by_hand": _close_by_hand,
}


def _json(value: Any) -> Any:
    """``value`` as the bus would carry it (JSON), datetimes as ISO-8601 UTC."""
    return json.loads(json.dumps(value, default=_default, sort_keys=True))


def _default(value: Any) -> Any:
    if isinstance(value, datetime):
        return format_iso(value)
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    raise TypeError(f"not JSON: {value!r}")


def _follow_up(follow_up: FollowUp) -> dict[str, Any]:
    return {
        "key": follow_up.routing_key,
        "chargePointId": follow_up.charge_point_id,
        "payload": _json(follow_up.payload),
    }


#: The notifier's bindings on a node with the default ``[ocpp] log_heartbeats``.
NOTIFIED = topology.notifier_patterns(shown_inbound(log_heartbeats=False))


def _pushes(envelope: Envelope) -> list[Any]:
    if not any(topology.topic_matches(pattern, envelope.type) for pattern in NOTIFIED):
        return []
    return [[topic, _json(event)] for topic, event in push_events(envelope)]


def replay(database: Database, steps: list[dict[str, Any]]) -> dict[str, Any]:
    """
    Apply ``steps`` in order: store ops directly, batches through the
    processor's ``apply_batch`` as its consumer does (a batch whose
    transaction fails is applied again message by message). For each step,
    the rows it changed; for each delivery, what came of it (events) and the
    pushes of the traffic and of its events, in order; and the final tables.
    """
    clock = Clock()
    clock.advance(T0.timestamp())
    outbox = Outbox(node=NODE, clock=clock)
    processor = OcppProcessor(None, database, clock=clock, outbox=outbox)  # type: ignore[arg-type]
    record: list[dict[str, Any]] = []
    tables = dump_tables(database)
    for step in steps:
        if "store" in step:
            args = dict(step["args"])
            for name in TIME_ARGS:
                if name in args:
                    args[name] = parse_iso(args[name])
            database.run_sync(STORE_OPS[step["store"]], **args)
            entry: dict[str, Any] = {"store": step["store"]}
        else:
            clock.advance(parse_iso(step["at"]).timestamp() - clock.seconds())
            entry = {"deliveries": _apply(database, processor, step)}
        after = dump_tables(database)
        entry["changes"] = _changes(tables, after)
        tables = after
        record.append(entry)
    return {"steps": record, "tables": tables}


def _apply(
    database: Database, processor: OcppProcessor, step: dict[str, Any]
) -> list[dict[str, Any]]:
    envelopes = [Envelope(**e) for e in step["batch"]]
    try:
        outcomes = database.run_sync(processor.apply_batch, envelopes)
    except Exception:
        outcomes = []
        for envelope in envelopes:
            try:
                outcomes.extend(database.run_sync(processor.apply_batch, [envelope]))
            except Exception:
                outcomes.append(Failure())
    deliveries = []
    for envelope, outcome in zip(envelopes, outcomes, strict=True):
        entry: dict[str, Any] = {"id": envelope.id, "pushes": _pushes(envelope)}
        if isinstance(outcome, Failure):
            entry["failed"] = True
        else:
            applied, follow_ups = outcome
            entry["applied"] = applied
            entry["events"] = [_follow_up(f) for f in follow_ups]
            for follow_up in follow_ups:
                event = Envelope(
                    id="event",
                    type=follow_up.routing_key,
                    time=step["at"],
                    node=NODE,
                    charge_point_id=follow_up.charge_point_id,
                    payload=_json(follow_up.payload),
                )
                entry["pushes"] += _pushes(event)
        deliveries.append(entry)
    return deliveries


def _changes(before: dict[str, list[Any]], after: dict[str, list[Any]]) -> dict[str, Any]:
    """Per table, the rows ``after`` has that ``before`` had not, and those it lost."""
    changes: dict[str, Any] = {}
    for table, rows in after.items():
        old = [json.dumps(r, sort_keys=True) for r in before[table]]
        new = [json.dumps(r, sort_keys=True) for r in rows]
        added = [r for r, text in zip(rows, new, strict=True) if text not in old]
        removed = [r for r, text in zip(before[table], old, strict=True) if text not in new]
        if added or removed:
            changes[table] = {"added": added, "removed": removed}
    return changes


# --- the canonical dump --------------------------------------------------------------------

#: Surrogate keys, replaced by their rank: the order of rows is behaviour (the
#: message log, dumped as its frames, lists by id), the numbers are not (PostgreSQL's sequences skip
#: what a rolled-back savepoint or a conflicting insert took; SQLite does not).
RANKED = {"message_log": "id", "outbox": "id", "wallet_transactions": "id", "unmatched_stops": "id"}
#: Surrogate keys left out: a sample's id says in which statement of its batch
#: it was appended (a StopTransaction's transactionData before the batch's
#: MeterValues), which is no behaviour; rows are sorted by content instead.
DROPPED = {"meter_values": ("id",)}
#: The outbox's envelope carries a random id given at staging.
RANDOM_ENVELOPE_FIELDS = ("id",)


def _row(table: str, mapping: dict[str, Any]) -> dict[str, Any]:
    row = {k: v for k, v in mapping.items() if k not in DROPPED.get(table, ())}
    if table == "outbox":
        envelope = json.loads(row["envelope"])
        for field in RANDOM_ENVELOPE_FIELDS:
            envelope.pop(field)
        row["envelope"] = envelope
    return _json(row)


def _logged_frames(conn: Connection) -> list[dict[str, Any]]:
    """
    The message log as its readers see it: frames (``messages.row_frames``),
    one row of the log holding an inbound exchange's call and answer.
    """
    rows = conn.execute(sa.select(message_log).order_by(message_log.c.id))
    return [attrs.asdict(frame) for row in rows for frame in messages.row_frames(row)]


def dump_tables(database: Database) -> dict[str, list[Any]]:
    """Every row of every table, canonical (sorted, JSON, surrogate ids ranked or dropped)."""

    def dump(conn: Connection) -> dict[str, list[Any]]:
        tables: dict[str, list[Any]] = {}
        for table in metadata.sorted_tables:
            if table is message_log:
                rows = _logged_frames(conn)
            else:
                rows = [dict(r) for r in conn.execute(sa.select(table)).mappings()]
            ranked = RANKED.get(table.name)
            if ranked is not None:
                rows.sort(key=lambda r: r[ranked])
                for rank, r in enumerate(rows, 1):
                    r[ranked] = rank
                tables[table.name] = [_row(table.name, r) for r in rows]
            else:
                canonical = [_row(table.name, r) for r in rows]
                canonical.sort(key=lambda r: json.dumps(r, sort_keys=True))
                tables[table.name] = canonical
        return tables

    return database.run_sync(dump)
