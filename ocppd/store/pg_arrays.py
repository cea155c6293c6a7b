"""
PostgreSQL binary arrays of a batch's column values, encoded here rather
than by psycopg's list dumper.

The unnest statements (``sql._UnnestInsert``, the meter runs of
``transactions._MeteredRun``) send one binary array per column. psycopg
dumps a list element by element in Python (its sub-dumper, a length packed
and two appends each, after a scan for the element type): for the
processor's MeterValues, ~60 elements a message, that was the largest item
of its database thread on PostgreSQL (bench/RESULTS.md). Here each distinct
value of a column is encoded once and the array is joined in C
(``dict.fromkeys``, ``map``, ``bytes.join``): a batch's samples repeat most of
their values (the measurand, the unit, a message's times).

Only values of the column's own Python type (and None) take this way, as
exactly the bytes psycopg's binary dumpers make for them; anything else
(a bool for an integer, an aware time, an integer beyond 64 bits, text
that is not UTF-8-encodable) leaves the list to psycopg, as before. The
element types sent are those the statements cast anyway: integers as
``int8[]`` (cast to ``INTEGER[]`` on the server, which refuses a value out
of range as the cast of psycopg's choice did), text as ``text[]``, naive
times as ``timestamp[]``, JSON as ``json[]``.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from psycopg import adapters
from psycopg.adapt import Dumper
from psycopg.pq import Format
from psycopg.types.json import Json
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection, Dialect

_LENGTH = struct.Struct(">i").pack
_INT8 = struct.Struct(">iq").pack
#: One dimension: dimensions, has-null flag, element type, length, lower bound.
_HEAD = struct.Struct(">iiiii").pack
_NULL = _LENGTH(-1)
#: PostgreSQL's times count microseconds from here.
_EPOCH = datetime(2000, 1, 1)
_MICROSECOND = datetime.resolution


class EncodedArray(bytes):
    """A binary array ready to send; its class says its array type."""

    #: PostgreSQL's oid of the array type.
    oid = 0


class _EncodedArrayDumper(Dumper):
    """Sends an ``EncodedArray`` as it is, binary, with its class's array oid."""

    format = Format.BINARY

    def __init__(self, cls: type, context: Any = None) -> None:
        super().__init__(cls, context)
        assert issubclass(cls, EncodedArray)
        self.oid = cls.oid

    def dump(self, obj: Any) -> bytes:
        return bytes(obj)


def _array_class(name: str, oid: int) -> type[EncodedArray]:
    cls = type(name, (EncodedArray,), {"oid": oid})
    # psycopg's global adapters, which every connection made afterwards
    # copies: these classes exist nowhere else, so nothing else changes.
    adapters.register_dumper(cls, _EncodedArrayDumper)
    return cls


_Int8Array = _array_class("_Int8Array", 1016)
_TextArray = _array_class("_TextArray", 1009)
_TimestampArray = _array_class("_TimestampArray", 1115)
_JsonArray = _array_class("_JsonArray", 199)


def _int8(value: int) -> bytes:
    return _INT8(8, value)


def _text(value: str) -> bytes:
    data = value.encode()
    return _LENGTH(len(data)) + data


def _timestamp(value: datetime) -> bytes:
    if value.tzinfo is not None:
        raise ValueError("an aware time: psycopg sends it as timestamptz")
    return _INT8(8, (value - _EPOCH) // _MICROSECOND)


def _json(serializer: Callable[[Any], Any] | None) -> Callable[[Json], bytes]:
    def encode(value: Json) -> bytes:
        dumps = value.dumps or serializer
        if dumps is None:
            raise ValueError("no JSON serializer: psycopg's own")
        data = dumps(value.obj)
        if isinstance(data, str):
            data = data.encode()
        return _LENGTH(len(data)) + bytes(data)

    return encode


#: Element oid, the array's class, the Python type of its values, and one
#: value's encoding (its length and bytes).
_Kind = tuple[int, type[EncodedArray], type, Callable[[Any], bytes]]


def client_utf8(conn: Connection) -> bool:
    """
    Whether ``conn``'s driver connection sends text as UTF-8, as the text
    arrays here are encoded (psycopg encodes text in the client encoding).
    """
    driver = conn.connection.dbapi_connection
    return driver is not None and driver.info.encoding == "utf-8"


def array_encoder(
    dialect: Dialect, type_: sa.types.TypeEngine[Any]
) -> Callable[[list[Any], bool], Any]:
    """
    What to send for a list of ``type_``'s values (as its bind processor
    made them) as a binary array parameter: an ``EncodedArray`` of them, or
    the list itself for psycopg when a value is not of the kind encoded
    here (or ``type_`` is not one of those, or it is text and the
    connection's encoding is not UTF-8: the second argument, ``client_utf8``).
    """
    impl = type_._unwrapped_dialect_impl(dialect)
    kind: _Kind
    if isinstance(impl, sa.Integer):
        kind = (20, _Int8Array, int, _int8)
    elif isinstance(impl, sa.String):
        kind = (25, _TextArray, str, _text)
    elif isinstance(impl, sa.DateTime) and not impl.timezone:
        kind = (1114, _TimestampArray, datetime, _timestamp)
    elif isinstance(impl, sa.JSON) and not isinstance(impl, postgresql.JSONB):
        # The engine's serializer, which SQLAlchemy also gives psycopg's
        # adapters of each connection (``set_json_dumps``).
        kind = (114, _JsonArray, Json, _json(getattr(dialect, "_json_serializer", None)))
    else:
        return _as_it_is
    if kind[0] == 25:
        return lambda values, utf8: encode_array(kind, values) if utf8 else values
    return lambda values, _utf8: encode_array(kind, values)


def _as_it_is(values: list[Any], _utf8: bool) -> list[Any]:
    return values


def encode_array(kind: _Kind, values: list[Any]) -> EncodedArray | list[Any]:
    """``values`` as a one-dimensional binary array of ``kind``, or as they are (see the module)."""
    oid, cls, python_type, encode = kind
    types = set(map(type, values))
    types.discard(type(None))
    if not values or not types <= {python_type}:
        return values
    # Equal values of one type encode alike: each distinct one once.
    encoded: dict[Any, bytes] = dict.fromkeys(values, _NULL)
    try:
        for value in encoded:
            if value is not None:
                encoded[value] = encode(value)
    except (struct.error, ValueError, OverflowError, UnicodeError):
        return values
    head = _HEAD(1, None in encoded, oid, len(values), 1)
    return cls(head + b"".join(map(encoded.__getitem__, values)))
