"""
What the chargers were told was accepted, against what the store holds.

Pure comparison after one query of the store: every acknowledged
StartTransaction must be one ``transactions`` row (same charger, connector
and meterStart), every acknowledged StopTransaction must have closed its row
with its meterStop, every acknowledged MeterValues must be stored once per
sample (its energy reading at its timestamp) and every acknowledged CALL
must be in the message log once. Each finding is charged to the phase
(fault) during which the charger was told "accepted".
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import attrs
import sqlalchemy as sa

from ocppd.store import tables

ENERGY = "Energy.Active.Import.Register"


@attrs.define
class Phase:
    """One fault (or the steady start) of one configuration, and what it cost."""

    config: str
    name: str
    started: float
    restored: float = 0.0
    ended: float = 0.0
    log_from: int = 0
    log_to: int = 0
    log_lines: int = 0
    #: The most frequent kinds of log line in the phase: (count, kind).
    log_kinds: list[tuple[int, str]] = attrs.field(factory=list)
    recovery: float = 0.0
    rss_start_kib: int = 0
    rss_end_kib: int = 0
    acks: int = 0
    #: The longest a charger waited for an answer it got (seconds).
    slowest: float = 0.0
    lost: Counter[str] = attrs.field(factory=Counter)
    duplicated: Counter[str] = attrs.field(factory=Counter)
    errors: int = 0
    #: Sessions started in the phase that the store still holds active at the end.
    unclosed: int = 0
    #: Sessions started in the phase with more than one wallet debit.
    double_billed: int = 0
    #: Chargers that saw an error in the phase and had nothing accepted after it.
    unrecovered: int = 0

    @property
    def lost_total(self) -> int:
        return sum(self.lost.values())

    @property
    def duplicated_total(self) -> int:
        return sum(self.duplicated.values())


@attrs.define
class Totals:
    """Findings not charged to one phase: the state of the store at the end."""

    unclosed: list[int] = attrs.field(factory=list)
    double_billed: list[int] = attrs.field(factory=list)
    stops_acked: int = 0
    starts_acked: int = 0


def read_record(path: str) -> list[dict[str, Any]]:
    with open(path) as f:
        return [json.loads(line) for line in f if line.strip()]


def phase_at(phases: list[Phase], t: float) -> Phase:
    """The phase an event at ``t`` belongs to (the last one started before it)."""
    current = phases[0]
    for phase in phases:
        if phase.started <= t:
            current = phase
    return current


def recovery_times(phases: list[Phase], events: Iterable[dict[str, Any]]) -> None:
    """
    A phase's recovery: from the service's restoration until every charger
    that saw a refusal, a timeout or a lost connection in that phase had a
    transaction message accepted again (0 if all were back before).
    """
    errors: dict[tuple[int, str], float] = {}
    back: dict[tuple[int, str], float] = {}
    for event in events:
        if event["kind"] == "finished":
            break  # the fleet closing its own connections is no fault
        index = phases.index(phase_at(phases, event["t"]))
        key = (index, event["cp"]) if "cp" in event else None
        if key is None:
            continue
        if event["kind"] in ("refused", "timeout", "disconnect"):
            phases[index].errors += 1
            errors[key] = event["t"]
            back.pop(key, None)
        elif event["kind"] == "ack" and key in errors and key not in back:
            back[key] = event["t"]
    for (index, _cp), t in back.items():
        phase = phases[index]
        phase.recovery = max(phase.recovery, t - phase.restored)
    for key in errors.keys() - back.keys():
        phases[key[0]].unrecovered += 1


def _stamp(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def compare(url: str, record: list[dict[str, Any]], phases: list[Phase]) -> Totals:
    """Charge every acknowledged message the store lost or holds twice to its phase."""
    engine = sa.create_engine(url)
    with engine.connect() as conn:
        tx_rows = {r.id: r for r in conn.execute(sa.select(tables.transactions))}
        mv = tables.meter_values
        meter_counts: Counter[tuple[str, int, datetime]] = Counter()
        for r in conn.execute(
            sa.select(mv.c.charge_point_id, mv.c.transaction_id, mv.c.timestamp).where(
                mv.c.measurand == ENERGY
            )
        ):
            meter_counts[(r.charge_point_id, r.transaction_id, r.timestamp)] += 1
        ml = tables.message_log
        log_counts: Counter[tuple[str, str]] = Counter(
            (r.charge_point_id, r.unique_id)
            for r in conn.execute(
                sa.select(ml.c.charge_point_id, ml.c.unique_id).where(
                    ml.c.direction == "in", ml.c.message_type == "CALL"
                )
            )
        )
        wt = tables.wallet_transactions
        debits = Counter(
            r.session_id
            for r in conn.execute(
                sa.select(wt.c.session_id).where(wt.c.kind == "debit", wt.c.session_id.isnot(None))
            )
        )
    engine.dispose()

    starts: Counter[tuple[str, int, int, datetime]] = Counter(
        (r.charge_point_id, r.connector_id, r.meter_start_wh, r.started_at)
        for r in tx_rows.values()
    )
    totals = Totals()
    stopped: set[int] = set()
    for event in record:
        if event["kind"] != "ack":
            continue
        phase = phase_at(phases, event["t"])
        phase.acks += 1
        phase.slowest = max(phase.slowest, float(event.get("took", 0.0)))
        cp, action, req, res = event["cp"], event["action"], event["req"], event["res"]
        seen = log_counts[(cp, event["uid"])]
        if seen == 0:
            phase.lost["log"] += 1
        elif seen > 1:
            phase.duplicated["log"] += 1
        if action == "StartTransaction":
            totals.starts_acked += 1
            row = tx_rows.get(res["transactionId"])
            if row is None or row.charge_point_id != cp or row.meter_start_wh != req["meterStart"]:
                phase.lost["start"] += 1
            n = starts[(cp, req["connectorId"], req["meterStart"], _stamp(req["timestamp"]))]
            if n > 1:
                phase.duplicated["start"] += 1
        elif action == "StopTransaction":
            totals.stops_acked += 1
            tx = req["transactionId"]
            stopped.add(tx)
            row = tx_rows.get(tx)
            if row is None or row.stopped_at is None or row.meter_stop_wh != req["meterStop"]:
                phase.lost["stop"] += 1
        elif action == "MeterValues" and "transactionId" in req:
            for value in req["meterValue"]:
                key = (cp, req["transactionId"], _stamp(value["timestamp"]))
                n = meter_counts[key]
                if n == 0:
                    phase.lost["meter"] += 1
                elif n > 1:
                    phase.duplicated["meter"] += 1
    # Every session the chargers ended is closed by now (the run stops them
    # all and waits for the answers): a row still open is a session the
    # store believes active forever.
    totals.unclosed = sorted(t for t, r in tx_rows.items() if r.stopped_at is None)
    totals.double_billed = sorted(s for s, n in debits.items() if n > 1)
    for tx in totals.unclosed:
        phase_at(phases, tx_rows[tx].started_at.timestamp()).unclosed += 1
    for tx in totals.double_billed:
        if tx in tx_rows:
            phase_at(phases, tx_rows[tx].started_at.timestamp()).double_billed += 1
    return totals


_LOG_LINE = re.compile(r"^\S+ \[([^\]]+)\] (.*)$")
_VARYING = re.compile(r"0x[0-9a-f]+|[0-9a-f]{8,}|\d+")


def log_kinds(lines: list[str], top: int = 4) -> list[tuple[int, str]]:
    """
    The most frequent kinds of line among ``lines``: the logger, its level and
    the message's first words with numbers and ids blanked; traceback lines
    (not starting with a time) count as one kind.
    """
    kinds: Counter[str] = Counter()
    for line in lines:
        match = _LOG_LINE.match(line)
        if match is None:
            kinds["(traceback lines)"] += 1
            continue
        logger = match.group(1).rsplit(".", 1)[-1]
        kinds[f"{logger} {_VARYING.sub('N', match.group(2))[:60]}"] += 1
    return [(n, kind) for kind, n in kinds.most_common(top)]


def _tick_free(text: str) -> str:
    return text.replace("`", "'")


def log_section(phases: list[Phase]) -> str:
    """A Markdown list: per phase, its most frequent log lines."""
    out = []
    for p in phases:
        kinds = "; ".join(f"{n} x `{_tick_free(k)}`" for n, k in p.log_kinds) or "none"
        out.append(f"- {p.config}, {p.name} ({p.log_lines} lines): {kinds}")
    return "\n".join(out)


def _kib(k: int) -> str:
    return f"{k / 1024:.0f}"


def table(phases: list[Phase], totals: dict[str, Totals]) -> str:
    """The Markdown table: one row per fault and configuration."""
    lines = [
        "| config | fault | acked | lost | duplicated | unclosed | double-billed "
        "| errors seen | slowest answer s | log lines | recovery s | RSS MiB start→end |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    for p in phases:
        lost = f"{p.lost_total}" + (f" ({_detail(p.lost)})" if p.lost_total else "")
        dup = f"{p.duplicated_total}" + (
            f" ({_detail(p.duplicated)})" if p.duplicated_total else ""
        )
        lines.append(
            f"| {p.config} | {p.name} | {p.acks} | {lost} | {dup} | {p.unclosed} "
            f"| {p.double_billed} | {p.errors} | {p.slowest:.1f} | {p.log_lines} | {_recovery(p)} "
            f"| {_kib(p.rss_start_kib)}→{_kib(p.rss_end_kib)} |"
        )
    for config, t in totals.items():
        lines.append(
            f"| {config} | **at the end** ({t.starts_acked} starts, {t.stops_acked} stops acked) "
            f"| | | | {len(t.unclosed)} | {len(t.double_billed)} | | | | | |"
        )
    return "\n".join(lines)


def _recovery(p: Phase) -> str:
    text = f"{p.recovery:.1f}"
    return text + (f" ({p.unrecovered} never)" if p.unrecovered else "")


def _detail(counts: Counter[str]) -> str:
    return ", ".join(f"{k} {v}" for k, v in sorted(counts.items()) if v)
