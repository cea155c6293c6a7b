"""
Who may open an OCPP connection: HTTP Basic auth against the store, checked
before the WebSocket upgrade (OCPP 1.6 security profiles 1 and 2).
"""

from __future__ import annotations

import hashlib
import hmac
from collections import OrderedDict
from collections.abc import Generator
from typing import Any

import attrs
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.interfaces import IReactorTime
from twisted.internet.threads import deferToThread
from twisted.logger import Logger

from ocppd.credentials import hash_charger_key, verify_charger_key
from ocppd.ocpp.handshake import (
    BasicCredentials,
    HandshakeError,
    charge_point_id_from_path,
    parse_basic_auth,
)
from ocppd.store import chargers
from ocppd.store.database import Database
from ocppd.timeutil import from_timestamp

WWW_AUTHENTICATE = 'Basic realm="ocppd", charset="UTF-8"'


@attrs.frozen
class Admitted:
    charge_point_id: str
    registration_status: str


class ChargerAdmission:
    """
    Decide at the handshake whether a charger is let in.

    Verifying a key hash costs ~10 ms of CPU, done in a thread; successful
    checks are remembered (as a SHA-256 of the key, per stored hash) so that a
    site reconnecting after a network outage costs one hash per charger.
    """

    log = Logger()

    def __init__(
        self,
        database: Database,
        reactor: IReactorTime,
        *,
        unknown_chargers: str = "refuse",
        cache_size: int = 10_000,
    ) -> None:
        self._database = database
        self._reactor = reactor
        self._unknown_chargers = unknown_chargers
        self._cache_size = cache_size
        self._verified: OrderedDict[tuple[str, str], bytes] = OrderedDict()

    @inlineCallbacks
    def admit(
        self, path: str, authorization: str | None
    ) -> Generator[Deferred[Any], Any, Admitted]:
        """Fire with ``Admitted`` or fail with ``HandshakeError``."""
        charge_point_id = charge_point_id_from_path(path)
        credentials = parse_basic_auth(authorization)
        if credentials is not None and credentials.username != charge_point_id:
            # Security whitepaper A00.FR.204: the username is the charger's identity.
            raise HandshakeError(401, "Basic auth username does not match the charge point id")
        record = yield self._database.run(chargers.get_charge_point, charge_point_id)
        if record is None:
            return (yield self._admit_unknown(charge_point_id, credentials))
        if record.registration_status == "Rejected":
            raise HandshakeError(403, "charge point is rejected")
        if record.key_hash is not None:
            if credentials is None:
                raise HandshakeError(401, "authorization required")
            ok = yield self._check_key(charge_point_id, credentials.password, record.key_hash)
            if not ok:
                self.log.warn(
                    "Wrong authorization key from {charge_point_id}",
                    charge_point_id=charge_point_id,
                )
                raise HandshakeError(401, "wrong authorization key")
        return Admitted(charge_point_id, record.registration_status)

    @inlineCallbacks
    def _admit_unknown(
        self, charge_point_id: str, credentials: BasicCredentials | None
    ) -> Generator[Deferred[Any], Any, Admitted]:
        if self._unknown_chargers != "pending":
            raise HandshakeError(404, "unknown charge point")
        key_hash = None
        if credentials is not None:
            key_hash = yield deferToThread(hash_charger_key, credentials.password)
        yield self._database.run(
            chargers.register_pending_charge_point,
            charge_point_id,
            key_hash,
            now=from_timestamp(self._reactor.seconds()),
        )
        self.log.info(
            "Unknown charge point {charge_point_id} registered as Pending",
            charge_point_id=charge_point_id,
        )
        record = yield self._database.run(chargers.get_charge_point, charge_point_id)
        return Admitted(charge_point_id, record.registration_status if record else "Pending")

    @inlineCallbacks
    def _check_key(
        self, charge_point_id: str, key: str, key_hash: str
    ) -> Generator[Deferred[Any], Any, bool]:
        fingerprint = hashlib.sha256(key.encode("utf-8")).digest()
        cache_key = (charge_point_id, key_hash)
        remembered = self._verified.get(cache_key)
        if remembered is not None and hmac.compare_digest(remembered, fingerprint):
            self._verified.move_to_end(cache_key)
            return True
        ok = yield deferToThread(verify_charger_key, key, key_hash)
        if ok:
            self._verified[cache_key] = fingerprint
            while len(self._verified) > self._cache_size:
                self._verified.popitem(last=False)
        return ok
