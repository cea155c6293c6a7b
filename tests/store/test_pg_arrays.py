"""
Tests of ``ocppd.store.pg_arrays``: the binary arrays of the unnest
statements, encoded without psycopg's list dumper.
"""

from __future__ import annotations

import struct
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from psycopg.types.json import Json
from sqlalchemy.dialects import postgresql
from twisted.trial.unittest import SynchronousTestCase

from ocppd import jsoncodec
from ocppd.store import tables, transactions
from ocppd.store.database import create_engine, normalize_url
from ocppd.store.pg_arrays import EncodedArray, array_encoder, client_utf8
from ocppd.store.sql import _unnest_insert
from tests.services import require_postgres

#: An engine's dialect (never connected), which carries ocppd's JSON serializer.
DIALECT = create_engine("postgresql://nobody@localhost/none").dialect


def element(data: bytes) -> bytes:
    return struct.pack(">i", len(data)) + data


class EncodingTests(SynchronousTestCase):
    """PostgreSQL's binary array format (``array_send``), or the list left to psycopg."""

    def encode(self, type_: sa.types.TypeEngine[Any], values: list[Any]) -> Any:
        return array_encoder(DIALECT, type_)(values, True)

    def test_integers(self) -> None:
        """Integers as int8 (oid 20) elements, a NULL as length -1 and the has-null flag."""
        encoded = self.encode(sa.Integer(), [1, None, 2**40, 1])
        self.assertIsInstance(encoded, EncodedArray)
        self.assertEqual(encoded.oid, 1016)
        self.assertEqual(
            bytes(encoded),
            struct.pack(">iiiii", 1, 1, 20, 4, 1)
            + element(struct.pack(">q", 1))
            + struct.pack(">i", -1)
            + element(struct.pack(">q", 2**40))
            + element(struct.pack(">q", 1)),
        )

    def test_text(self) -> None:
        """Text as UTF-8 text (oid 25) elements; no NULL, no flag."""
        encoded = self.encode(sa.String(20), ["a", "é{,}", "", "a"])
        self.assertEqual(encoded.oid, 1009)
        self.assertEqual(
            bytes(encoded),
            struct.pack(">iiiii", 1, 0, 25, 4, 1)
            + element(b"a")
            + element("é{,}".encode())
            + element(b"")
            + element(b"a"),
        )

    def test_times(self) -> None:
        """Naive times as timestamp (oid 1114): microseconds since 2000-01-01."""
        later = datetime(2000, 1, 2, 0, 0, 1, 5)
        encoded = self.encode(sa.DateTime(), [later, datetime(1999, 12, 31, 23, 59, 59)])
        self.assertEqual(encoded.oid, 1115)
        self.assertEqual(
            bytes(encoded),
            struct.pack(">iiiii", 1, 0, 1114, 2, 1)
            + element(struct.pack(">q", 86_401_000_005))
            + element(struct.pack(">q", -1_000_000)),
        )

    def test_json(self) -> None:
        """psycopg's ``Json`` wrappers through the engine's serializer, as json (oid 114) text."""
        encoded = self.encode(sa.JSON(), [Json({"a": [1, None]}), Json(None), None])
        self.assertEqual(encoded.oid, 199)
        self.assertEqual(
            bytes(encoded),
            struct.pack(">iiiii", 1, 1, 114, 3, 1)
            + element(jsoncodec.dumps({"a": [1, None]}).encode())
            + element(b"null")
            + struct.pack(">i", -1),
        )

    def test_left_to_psycopg(self) -> None:
        """
        Values not of the column's own type, or that it would send
        otherwise, stay a list (psycopg dumps them as before).
        """
        for type_, values in [
            (sa.Integer(), [1, True]),
            (sa.Integer(), [2**70]),
            (sa.Integer(), [1.0]),
            (sa.String(), ["a", 1]),
            (sa.String(), ["\ud800"]),
            (sa.DateTime(), [datetime(2026, 1, 1, tzinfo=UTC)]),
            (sa.DateTime(timezone=True), [datetime(2026, 1, 1, tzinfo=UTC)]),
            (postgresql.JSONB(), [Json(1)]),
            (sa.JSON(), ["1"]),
            (sa.Numeric(), [1]),
            (sa.Integer(), []),
        ]:
            self.assertIs(self.encode(type_, values), values, (type_, values))

    def test_text_only_for_utf8_clients(self) -> None:
        """Text is encoded only for a connection whose client encoding is UTF-8."""
        values = ["é"]
        self.assertIs(array_encoder(DIALECT, sa.String())(values, False), values)
        self.assertIsInstance(array_encoder(DIALECT, sa.Integer())([1], False), EncodedArray)

    def test_processor_columns_encoded(self) -> None:
        """
        Every column of the processor's appends (meter samples, message log)
        is one of the kinds encoded here, so none goes through psycopg's list dumper.
        """
        for table, columns in [
            (tables.meter_values, transactions.SAMPLE_COLUMNS),
            (
                tables.message_log,
                tuple(c.name for c in tables.message_log.c if c.name != "id"),
            ),
        ]:
            unnest = _unnest_insert(DIALECT, table, tuple(columns))
            for name, encode in zip(columns, unnest.encoders, strict=True):
                type_ = table.c[name].type
                value: Any = {
                    sa.Integer: 1,
                    sa.BigInteger: 1,
                    sa.String: "x",
                    sa.Text: "x",
                    sa.JSON: Json(1),
                }.get(type(type_), datetime(2026, 1, 1))
                self.assertIsInstance(encode([value, None], True), EncodedArray, name)


class ServerTests(SynchronousTestCase):
    """PostgreSQL reads the encoded arrays as it reads psycopg's of the same values."""

    def test_as_psycopg_sends_them(self) -> None:
        url = normalize_url(require_postgres()).render_as_string(hide_password=False)
        engine = create_engine(url, max_threads=1)
        self.addCleanup(engine.dispose)
        cases: list[tuple[str, sa.types.TypeEngine[Any], list[Any]]] = [
            ("INTEGER", sa.Integer(), [1, None, -(2**31), 2**31 - 1]),
            ("BIGINT", sa.BigInteger(), [2**40, None, -(2**63), 2**63 - 1]),
            ("VARCHAR", sa.String(), ['{1,"a"}', "NULL", "", None, "é\\\n"]),
            (
                "TIMESTAMP WITHOUT TIME ZONE",
                sa.DateTime(),
                [datetime(2026, 12, 8, 1, 2, 3, 456789), None, datetime(1970, 1, 1)],
            ),
            ("JSON", sa.JSON(), [Json({"a": [1, None, "é"]}), Json(None), None]),
        ]
        with engine.connect() as conn:
            driver = conn.connection.dbapi_connection
            assert driver is not None
            self.assertTrue(client_utf8(conn))
            for cast, type_, values in cases:
                encoded = array_encoder(engine.dialect, type_)(values, True)
                self.assertIsInstance(encoded, EncodedArray, cast)
                sql = (
                    f"SELECT v::TEXT FROM unnest(%b::{cast}[]) WITH ORDINALITY AS u(v, n)"
                    " ORDER BY n"
                )
                with driver.cursor() as cursor:
                    theirs = cursor.execute(sql, (values,)).fetchall()
                    ours = cursor.execute(sql, (encoded,)).fetchall()
                self.assertEqual(ours, theirs, cast)
                self.assertEqual(len(ours), len(values))

    def test_out_of_range_fails_on_the_server(self) -> None:
        """An int8 value beyond INTEGER fails the cast, as psycopg's int8 array did."""
        url = normalize_url(require_postgres()).render_as_string(hide_password=False)
        engine = create_engine(url, max_threads=1)
        self.addCleanup(engine.dispose)
        encoded = array_encoder(engine.dialect, sa.Integer())([2**31], True)
        with engine.connect() as conn, self.assertRaises(sa.exc.DataError):
            conn.exec_driver_sql("SELECT unnest(%b::INTEGER[])", (encoded,))
