"""Wallets, their transactions and the funds held by app-started sessions, on both engines."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import sqlalchemy as sa
from twisted.internet.defer import DeferredList, inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.store import tags, users, wallets
from ocppd.store.database import Database
from tests.store.fixtures import make_postgres_database, make_sqlite_database

T0 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 29, 10, 5, tzinfo=UTC)

if TYPE_CHECKING:
    _Base = TestCase
else:
    _Base = object


class WalletTestsMixin(_Base):
    database: Database

    def make_database(self) -> Database:
        raise NotImplementedError

    def setUp(self) -> None:
        self.database = self.make_database()
        self.query = self.database.run_sync
        self.user = self.query(users.add_user, "a@example.com", "x", "customer", now=T0)
        self.other = self.query(users.add_user, "b@example.com", "x", "customer", now=T0)

    def post(self, amount: int, key: str, kind: str = "top_up", user: int | None = None) -> Any:
        return self.query(
            wallets.post_transaction,
            self.user if user is None else user,
            kind=kind,
            amount=amount,
            currency="EUR",
            idempotency_key=key,
            now=T0,
        )

    def test_new_wallet_is_empty(self) -> None:
        view = self.query(wallets.wallet_view, self.user, currency="EUR", now=T0)
        self.assertEqual((view.currency, view.balance, view.held, view.available), ("EUR", 0, 0, 0))

    def test_post_changes_balance_once_per_key(self) -> None:
        first, posted = self.post(1000, "pay:1")
        self.assertTrue(posted)
        self.assertEqual((first.amount, first.balance_after, first.kind), (1000, 1000, "top_up"))
        again, posted_again = self.post(1000, "pay:1")
        self.assertFalse(posted_again)
        self.assertEqual(again.id, first.id)
        debit, _ = self.post(-250, wallets.debit_key(7), kind="debit")
        self.assertEqual(debit.balance_after, 750)
        self.assertEqual(
            self.query(wallets.wallet_view, self.user, currency="EUR", now=T0).balance, 750
        )

    def test_other_currency_refused(self) -> None:
        self.post(100, "pay:1")
        with self.assertRaises(ValueError):
            self.query(
                wallets.post_transaction,
                self.user,
                kind="top_up",
                amount=1,
                currency="USD",
                idempotency_key="pay:2",
                now=T0,
            )

    def test_float_amount_refused(self) -> None:
        with self.assertRaises(TypeError):
            self.post(1.5, "pay:1")  # type: ignore[arg-type]

    def test_transactions_page_is_own_and_newest_first(self) -> None:
        for n in range(3):
            self.post(100 + n, f"pay:{n}")
        self.post(5, "pay:other", user=self.other)
        page = self.query(wallets.transactions_page, self.user, before_id=None, limit=2)
        self.assertEqual([t.amount for t in page], [102, 101])
        rest = self.query(wallets.transactions_page, self.user, before_id=page[-1].id, limit=5)
        self.assertEqual([t.amount for t in rest], [100])

    def test_holds_reduce_available_until_finished(self) -> None:
        self.post(1000, "pay:1")
        request_id = self.query(
            wallets.create_request,
            user_id=self.user,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="T",
            command_id="c1",
            hold=1000,
            now=T0,
        )
        view = self.query(wallets.wallet_view, self.user, currency="EUR", now=T0)
        self.assertEqual((view.balance, view.held, view.available), (1000, 1000, 0))
        claimed = self.query(
            wallets.claim_request_for_session,
            session_id=42,
            user_id=self.user,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="T",
            now=T0,
        )
        self.assertEqual(
            (claimed.id, claimed.status, claimed.session_id), (request_id, "started", 42)
        )
        self.assertTrue(self.query(wallets.mark_stop_requested, request_id, "funds", now=T0))
        self.assertFalse(self.query(wallets.mark_stop_requested, request_id, "user", now=T0))
        self.query(wallets.set_request_status, request_id, "completed", now=T0)
        self.assertEqual(self.query(wallets.held, self.user), 0)

    def test_claim_needs_matching_request(self) -> None:
        self.query(
            wallets.create_request,
            user_id=self.user,
            charge_point_id="CP1",
            connector_id=1,
            id_tag="T",
            command_id="c1",
            hold=10,
            now=T0,
        )
        for other in ({"connector_id": 2}, {"user_id": self.other}, {"id_tag": "U"}):
            args = {
                "user_id": self.user,
                "charge_point_id": "CP1",
                "connector_id": 1,
                "id_tag": "T",
            }
            args.update(other)
            self.assertIsNone(
                self.query(wallets.claim_request_for_session, session_id=1, now=T0, **args)
            )

    def stale_requests(self, count: int) -> list[int]:
        return [
            self.query(
                wallets.create_request,
                user_id=self.user,
                charge_point_id="CP1",
                connector_id=n + 1,
                id_tag="T",
                command_id=f"c{n}",
                hold=100,
                now=T0,
            )
            for n in range(count)
        ]

    def test_expire_requests(self) -> None:
        """
        Requests still ``requested`` from before the cut-off are released
        (``failed``) and returned, oldest first, at most ``limit`` a call; newer
        and started ones are not; a released one is never returned again.
        """
        old = self.stale_requests(3)
        self.query(
            wallets.claim_request_for_session,
            session_id=9,
            user_id=self.user,
            charge_point_id="CP1",
            connector_id=3,
            id_tag="T",
            now=T0,
        )
        newer = self.query(
            wallets.create_request,
            user_id=self.user,
            charge_point_id="CP1",
            connector_id=9,
            id_tag="T",
            command_id="new",
            hold=100,
            now=T1,
        )
        first = self.query(wallets.expire_requests, requested_before=T1, now=T1, limit=1)
        rest = self.query(wallets.expire_requests, requested_before=T1, now=T1, limit=10)
        again = self.query(wallets.expire_requests, requested_before=T1, now=T1, limit=10)
        self.assertEqual(
            ([r.id for r in first], [r.id for r in rest], again), ([old[0]], [old[1]], [])
        )
        self.assertEqual({r.status for r in first + rest}, {"failed"})
        self.assertEqual(self.query(wallets.get_request, newer).status, "requested")
        self.assertEqual(self.query(wallets.held, self.user), 200)

    def test_every_customer_gets_one_stable_id_tag(self) -> None:
        tag = self.query(tags.user_id_tag, self.user, now=T0)
        self.assertEqual(len(tag), 20)
        self.assertEqual(self.query(tags.user_id_tag, self.user, now=T0), tag)
        self.assertNotEqual(self.query(tags.user_id_tag, self.other, now=T0), tag)
        record = self.query(tags.get_id_tag, tag)
        self.assertEqual((record.user_id, record.status), (self.user, "Accepted"))

    @inlineCallbacks
    def test_concurrent_posts_of_one_key_credit_once(self) -> Any:
        self.post(0, "open")
        results = yield DeferredList(
            [
                self.database.run(
                    wallets.post_transaction,
                    self.user,
                    kind="debit",
                    amount=-300,
                    currency="EUR",
                    idempotency_key=wallets.debit_key(9),
                    now=T0,
                )
                for _ in range(4)
            ],
            consumeErrors=True,
        )
        self.assertTrue(all(ok for ok, _ in results), results)
        self.assertEqual(sum(1 for _, (_, posted) in results if posted), 1)
        view = self.query(wallets.wallet_view, self.user, currency="EUR", now=T0)
        self.assertEqual(view.balance, -300)


class SQLiteWalletTests(WalletTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_sqlite_database(self)


class PostgresWalletTests(WalletTestsMixin, TestCase):
    def make_database(self) -> Database:
        return make_postgres_database(self)

    def test_sweeps_skip_what_another_sweep_releases(self) -> None:
        """
        While one node's sweep has released requests but not yet committed,
        another node's sweep passes them by instead of waiting to release them
        again (which would announce each release twice).
        """
        self.stale_requests(3)
        with self.database.engine.connect() as first, self.database.engine.connect() as second:
            with first.begin():
                mine = wallets.expire_requests(first, requested_before=T1, now=T1, limit=10)
                with second.begin():
                    # Waiting for the first would never end here (one thread):
                    # fail instead of hanging.
                    second.execute(sa.text("SET LOCAL lock_timeout = '5s'"))
                    theirs = wallets.expire_requests(second, requested_before=T1, now=T1, limit=10)
        self.assertEqual((len(mine), theirs), (3, []))
