"""Tests for the shapes of ``ocppd.representations`` that the processor derives per message."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import attrs
from twisted.trial.unittest import SynchronousTestCase

from ocppd.representations import moved_session_json, session_json
from ocppd.store.records import SessionMeter, TransactionRecord

T0 = datetime(2026, 12, 8, 1, 0, tzinfo=UTC)


def charging() -> TransactionRecord:
    """An active session, metered once, every optional field set (a review too)."""
    values = {field.name: None for field in attrs.fields(TransactionRecord)}
    values.update(
        id=7,
        charge_point_id="CP1",
        connector_id=1,
        id_tag="TAG1",
        id_tag_status="Accepted",
        meter_start_wh=1000,
        started_at=T0,
        energy_wh=500,
        last_meter_wh=1500,
        last_meter_at=T0 + timedelta(minutes=1),
        status="active",
        confirmed=True,
        user_id=3,
        tariff_id=2,
        review_status="pending",
        review_reasons="energy",
        created_at=T0,
        updated_at=T0 + timedelta(minutes=1),
    )
    return TransactionRecord(**values)


class MovedSessionTests(SynchronousTestCase):
    def test_moved_session_json_is_session_json_of_the_moved_record(self) -> None:
        """
        A meter's move changes what ``session_json`` shows in ``energyWh``
        alone: the copy is the JSON of the record the move leaves (were
        another of the four values shown, this would differ).
        """
        session = charging()
        meter = SessionMeter(
            session, 2500, T0 + timedelta(minutes=2), 1500, T0 + timedelta(hours=1)
        )
        moved = meter.record()
        self.assertEqual(
            (moved.last_meter_wh, moved.last_meter_at, moved.energy_wh, moved.updated_at),
            tuple(meter[1:]),
        )
        self.assertEqual(
            moved_session_json(session_json(session), meter.energy_wh), session_json(moved)
        )

    def test_an_unmoved_meter_is_its_record(self) -> None:
        """``SessionMeter.of`` a record gives that very record back; a moved one a new one."""
        session = charging()
        self.assertIs(SessionMeter.of(session).record(), session)
        moved = SessionMeter.of(session)._replace(energy_wh=600)
        self.assertIsNot(moved.record(), session)
        self.assertEqual(moved.record(), attrs.evolve(session, energy_wh=600))
        self.assertEqual((moved.meter_start_wh, moved.started_at), (1000, T0))
