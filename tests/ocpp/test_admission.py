"""Tests for ocppd.ocpp.admission: who may open an OCPP connection."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.credentials import hash_charger_key
from ocppd.ocpp import admission as admission_module
from ocppd.ocpp.admission import ChargerAdmission
from ocppd.ocpp.handshake import HandshakeError
from ocppd.store import chargers
from tests.integration.clients import basic_auth
from tests.store.fixtures import make_sqlite_database

NOW = datetime(2026, 11, 29, tzinfo=UTC)


class AdmissionTests(TestCase):
    def setUp(self) -> None:
        self.database = make_sqlite_database(self)
        self.database.run_sync(chargers.add_charge_point, "CP1", hash_charger_key("k1"), now=NOW)
        self.database.run_sync(chargers.add_charge_point, "OPEN", None, now=NOW)
        self.database.run_sync(
            chargers.add_charge_point,
            "BAD",
            hash_charger_key("k"),
            registration_status="Rejected",
            now=NOW,
        )

    @inlineCallbacks
    def refused(self, admission: ChargerAdmission, path: str, auth: str | None) -> Any:
        try:
            yield admission.admit(path, auth)
        except HandshakeError as e:
            return e.status
        self.fail(f"{path} was admitted")

    @inlineCallbacks
    def test_decisions(self) -> Any:
        """Right key in; wrong/missing/mismatched 401; unknown 404; rejected 403; keyless in."""
        admission = ChargerAdmission(self.database, reactor)
        admitted = yield admission.admit("/ocpp/CP1", basic_auth("CP1", "k1"))
        self.assertEqual(
            (admitted.charge_point_id, admitted.registration_status), ("CP1", "Accepted")
        )
        self.assertEqual((yield self.refused(admission, "/ocpp/CP1", basic_auth("CP1", "k2"))), 401)
        self.assertEqual((yield self.refused(admission, "/ocpp/CP1", None)), 401)
        self.assertEqual((yield self.refused(admission, "/ocpp/CP1", basic_auth("CP9", "k1"))), 401)
        self.assertEqual(
            (yield self.refused(admission, "/ocpp/NOPE", basic_auth("NOPE", "x"))), 404
        )
        self.assertEqual((yield self.refused(admission, "/ocpp/BAD", basic_auth("BAD", "k"))), 403)
        admitted = yield admission.admit("/ocpp/OPEN", None)
        self.assertEqual(admitted.charge_point_id, "OPEN")

    @inlineCallbacks
    def test_verified_key_remembered(self) -> Any:
        """A reconnect with an already verified key costs no second PBKDF2; a wrong key fails."""
        calls: list[str] = []
        real = admission_module.verify_charger_key

        def counting(key: str, key_hash: str) -> bool:
            calls.append(key)
            return real(key, key_hash)

        self.patch(admission_module, "verify_charger_key", counting)
        admission = ChargerAdmission(self.database, reactor)
        for _ in range(3):
            yield admission.admit("/ocpp/CP1", basic_auth("CP1", "k1"))
        self.assertEqual(calls, ["k1"])
        self.assertEqual((yield self.refused(admission, "/ocpp/CP1", basic_auth("CP1", "k9"))), 401)
        # A new key hash (the operator rotated the key) invalidates what was remembered.
        self.database.run_sync(chargers.set_charge_point_key, "CP1", hash_charger_key("k2"))
        self.assertEqual((yield self.refused(admission, "/ocpp/CP1", basic_auth("CP1", "k1"))), 401)

    @inlineCallbacks
    def test_pending_policy(self) -> Any:
        """With unknown_chargers=pending an unknown id is registered Pending with its key hashed."""
        admission = ChargerAdmission(self.database, reactor, unknown_chargers="pending")
        admitted = yield admission.admit("/ocpp/NEW", basic_auth("NEW", "its-key"))
        self.assertEqual(admitted.registration_status, "Pending")
        record = self.database.run_sync(chargers.get_charge_point, "NEW")
        self.assertEqual(record.registration_status, "Pending")
        self.assertNotIn("its-key", record.key_hash)
        # Its next connection must present the same key.
        self.assertEqual(
            (yield self.refused(admission, "/ocpp/NEW", basic_auth("NEW", "other"))), 401
        )
