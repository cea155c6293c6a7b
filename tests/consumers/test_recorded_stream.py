"""
The processor's output on a recorded stream is what it was (issue 16: a
faster processor stores the same rows, publishes the same events and makes
the same pushes). See ``tests.consumers.recorded_stream``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

from twisted.trial.unittest import TestCase

from ocppd.store.database import Database
from tests.consumers import recorded_stream, stream_replay
from tests.store.fixtures import make_postgres_database, make_sqlite_database

#: Differences shown when the record differs (the first ones, in document order).
SHOWN = 20


def differences(expected: Any, actual: Any, path: str = "") -> Iterator[str]:
    """Where ``actual`` differs from ``expected``, as ``path: expected != actual`` lines."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        for key in sorted(set(expected) | set(actual)):
            if key not in actual:
                yield f"{path}/{key}: missing"
            elif key not in expected:
                yield f"{path}/{key}: unexpected {actual[key]!r}"
            else:
                yield from differences(expected[key], actual[key], f"{path}/{key}")
    elif isinstance(expected, list) and isinstance(actual, list):
        for index, (e, a) in enumerate(zip(expected, actual, strict=False)):
            yield from differences(e, a, f"{path}[{index}]")
        if len(expected) != len(actual):
            yield f"{path}: {len(expected)} items expected, {len(actual)} found"
    elif expected != actual or type(expected) is not type(actual):
        yield f"{path}: {expected!r} != {actual!r}"


class RecordedStreamTests(TestCase):
    def setUp(self) -> None:
        with open(recorded_stream.GOLDEN, encoding="utf-8") as f:
            self.golden = json.load(f)
        self.steps = recorded_stream.read_stream()

    def assertSameRecord(self, database: Database) -> None:
        record = stream_replay.replay(database, self.steps)
        found = list(differences(self.golden, record))
        if found:
            self.fail(
                f"{len(found)} differences from {recorded_stream.GOLDEN}:\n"
                + "\n".join(found[:SHOWN])
            )

    def test_sqlite(self) -> None:
        """On SQLite, the stream stores, publishes and pushes what the golden record says."""
        self.assertSameRecord(make_sqlite_database(self))

    def test_postgres(self) -> None:
        """On PostgreSQL too: the same record, surrogate ids aside."""
        self.assertSameRecord(make_postgres_database(self))

    def test_stream_is_its_script(self) -> None:
        """The committed stream is what ``build_stream`` writes (no hand edits to drift)."""
        self.assertEqual(json.loads(json.dumps(recorded_stream.build_stream())), self.steps)

    def test_redelivered_meter_values_change_nothing(self) -> None:
        """
        A MeterValues is applied without a claim (``OcppProcessor.needs_claim``):
        delivered again, it changes no table and announces and pushes again
        exactly what its first delivery did (the live ``session.updated``).
        """
        first: dict[str, Any] = {}
        redelivered = 0
        for step, recorded in zip(self.steps, self.golden["steps"], strict=True):
            batch, deliveries = step.get("batch", []), recorded.get("deliveries", [])
            for envelope, delivery in zip(batch, deliveries, strict=True):
                if envelope["type"] != "ocpp.in.MeterValues":
                    continue
                if envelope["id"] not in first:
                    first[envelope["id"]] = delivery
                    continue
                redelivered += 1
                self.assertEqual(len(batch), 1)  # the step's changes are its alone
                self.assertEqual(recorded["changes"], {})
                self.assertEqual(delivery, first[envelope["id"]])
                self.assertEqual(delivery["applied"], True)
                self.assertEqual([e["key"] for e in delivery["events"]], ["session.updated"])
        self.assertEqual(redelivered, 1)

    def test_record_covers_the_story(self) -> None:
        """
        The stream exercises what it claims to: every event kind, a failure,
        a redelivery, reviews, debits, unmatched stops and pushes.
        """
        deliveries = [d for step in self.golden["steps"] for d in step.get("deliveries", [])]
        keys = {e["key"] for d in deliveries for e in d.get("events", [])}
        self.assertEqual(
            keys,
            {
                "session.started",
                "session.updated",
                "session.stopped",
                "charging.started",
                "charging.stop.requested",
                "charging.stopped",
                "wallet.transaction",
            },
        )
        self.assertIn(True, [d.get("failed", False) for d in deliveries])
        self.assertIn(False, [d.get("applied") for d in deliveries])
        tables = self.golden["tables"]
        reviews = {t["review_reasons"] for t in tables["transactions"]} - {None}
        self.assertEqual(len(reviews), 4)
        self.assertEqual(sum(1 for w in tables["wallet_transactions"] if w["kind"] == "debit"), 7)
        self.assertTrue(tables["unmatched_stops"])
        # Sessions that cannot end, closed by what proves them over (issue 18).
        closed = {t["id"]: (t["stop_reason"], t["cost"]) for t in tables["transactions"]}
        self.assertEqual(
            [closed[tx] for tx in (8, 9, 10, 11, 12, 13)],
            [
                ("charger rebooted", 137),  # 2000 Wh, 3 min, the fee; then the charger's stop
                ("charger rebooted", 0),  # metered, nothing delivered: no fee, no time
                ("superseded", 0),
                ("connector available", None),  # a charger without a tariff
                ("charger rebooted", 78),  # the charger's lower stop waits for review
                ("closed by operator", 100),  # 84 at the close, then the charger's stop
            ],
        )
        # The charger's own stop after the close: one correction each, once.
        corrections = [
            (w["session_id"], w["amount"])
            for w in tables["wallet_transactions"]
            if w["idempotency_key"].startswith("correction:")
        ]
        self.assertEqual(corrections, [(8, -21), (13, -16)])
        late = {t["id"]: t["charger_stop_reason"] for t in tables["transactions"]}
        self.assertEqual([late[tx] for tx in (8, 12, 13)], ["PowerLoss", "PowerLoss", "Local"])
        self.assertEqual(
            {t["id"]: t["review_reasons"] for t in tables["transactions"]}[12],
            "late_stop_below_billed",
        )
        self.assertTrue(tables["outbox"])
        self.assertGreater(sum(len(d["pushes"]) for d in deliveries), 100)

    def test_differences_found(self) -> None:
        """A changed value, a missing row and an extra key are each reported."""
        changed = json.loads(json.dumps(self.golden))
        changed["tables"]["transactions"][0]["cost"] += 1
        changed["tables"]["meter_values"].pop()
        changed["steps"][0]["extra"] = 1
        found = list(differences(self.golden, changed))
        self.assertEqual(len(found), 3, found)
