"""
SQL helpers shared by the query modules, hiding the few differences between
SQLite and PostgreSQL that the queries meet.
"""

from __future__ import annotations

import functools
import itertools
import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler

from ocppd.store.pg_arrays import array_encoder, client_utf8
from ocppd.store.prepared import driver_rowcount, driver_rows
from ocppd.store.types import UTCDateTime


def dialect_insert(dialect: str, table: sa.Table) -> postgresql.Insert | sqlite.Insert:
    """
    The INSERT of the engine named ``dialect`` (``conn.dialect.name``), which
    has ``on_conflict_do_nothing/do_update``; for statements built once.
    """
    if dialect == "postgresql":
        return postgresql.insert(table)
    if dialect == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"ocppd does not support {dialect}")


@functools.cache
def _insert_new_statement(
    dialect: str, table: sa.Table, key: sa.Column[Any] | None = None
) -> sa.Insert:
    """
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING <key>`` without values,
    built once per table: the values travel as parameters, so SQLAlchemy
    neither rebuilds the statement nor recomputes its cache key per row (it
    was most of the cost of a hot insert).
    """
    if key is None:
        key = next(iter(table.primary_key.columns))
    return dialect_insert(dialect, table).on_conflict_do_nothing().returning(key)


def insert_new(conn: Connection, table: sa.Table, values: Mapping[str, Any]) -> Any | None:
    """
    ``INSERT ... ON CONFLICT DO NOTHING RETURNING <key>``: the new row's first
    primary-key column, or None if a unique key already had the row.

    A conflict is not an error here, so it neither spoils the caller's
    transaction (as a failed INSERT does on PostgreSQL) nor races with a
    concurrent writer: whoever inserts second simply learns the row exists.
    Foreign-key and CHECK violations still raise. ``values`` are plain
    values (no SQL expressions).
    """
    statement = _insert_new_statement(conn.dialect.name, table)
    return conn.execute(statement, dict(values)).scalar()


def insert_new_rows(
    conn: Connection,
    table: sa.Table,
    rows: Sequence[Mapping[str, Any]],
    *,
    key: sa.Column[Any] | None = None,
) -> list[Any]:
    """
    Insert ``rows`` skipping those whose unique key exists; the ``key``
    column (by default the first of the primary key) of the new rows.

    On PostgreSQL one ``INSERT ... SELECT FROM unnest(...) RETURNING`` of
    an array per column (``_unnest_insert``); on SQLite multi-row INSERTs
    on the driver's cursor, in pages well inside its bound-parameter limit
    (``_multirow_insert_new``). RETURNING, unlike ``rowcount``, means the same
    thing on both engines and drivers. Every row must have the same keys,
    all of them plain column values.
    """
    if not rows:
        return []
    if key is None:
        key = next(iter(table.primary_key.columns))
    if conn.dialect.name == "postgresql":
        unnest = _unnest_insert(conn.dialect, table, tuple(rows[0]), key.name)
        result = conn.exec_driver_sql(unnest.sql, unnest.arrays(rows, client_utf8(conn)))
        process = unnest.returned
        if process is None:
            return [row[0] for row in result]
        return [process(row[0]) for row in result]
    return _multirow_insert_new(conn, table, rows, key)


#: Most bound values in one of SQLite's multi-row statements: its oldest limit (999).
SQLITE_MAX_VALUES = 999


def _multirow_insert_new(
    conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]], key: sa.Column[Any]
) -> list[Any]:
    """
    ``insert_new_rows`` on SQLite: ``INSERT ... VALUES (...), (...) ON
    CONFLICT DO NOTHING RETURNING <key>`` on the driver's cursor, as many rows
    a statement as SQLite's bound values allow, what SQLAlchemy's
    "insertmanyvalues" sends, without its Python per row (the processor's
    claims, a statement per batch). Values through the columns' bind
    processors, the keys through the key's result processor.
    """
    dialect = conn.dialect
    names = tuple(rows[0])
    in_order = _values_getter(names)
    values = _bound_values(
        [in_order(row) for row in rows], _column_processors(dialect, table, names)
    )
    statements = _multirow_statements(dialect, table, names, values, key.name)
    returned = key.type._cached_result_processor(dialect, None)
    found = [row[0] for page_rows in driver_rows(conn, statements) for row in page_rows]
    return found if returned is None else [returned(value) for value in found]


def _multirow_statements(
    dialect: Dialect,
    table: sa.Table,
    names: tuple[str, ...],
    values: list[Any],
    returning: str | None,
) -> list[tuple[str, list[Any]]]:
    """
    ``INSERT INTO table (names) VALUES (?, ...), (?, ...) ON CONFLICT DO
    NOTHING [RETURNING returning]`` of ``values`` (``_bound_values``: every
    row's values in ``names`` order, one row after the other, as the driver
    binds them), in statements of ``_page_sizes`` rows: SQLite inserts them
    in order, and a row whose unique key an earlier row of the same
    statement took is skipped like one stored before.

    The statement sizes are few (a full page, and the powers of two below
    it), so that the driver's statement cache (128 texts a connection)
    keeps each prepared: with one text per row count, batches of changing
    sizes prepared their last statement anew (about 25,000 instructions a
    row of the meter's, several times a statement's run, bench/RESULTS.md).
    """
    width = len(names)
    texts = _multirow_texts.setdefault(dialect, {}).setdefault((table, names, returning), {})
    statements = []
    first = 0
    for rows in _page_sizes(len(values) // width, _full_page(width)):
        text = texts.get(rows)
        if text is None:
            text = texts[rows] = _multirow_text(dialect, table, names, returning, rows)
        last = first + rows * width
        statements.append((text, values[first:last]))
        first = last
    return statements


def _full_page(width: int) -> int:
    """
    Rows in a full statement of ``width`` values a row: the most whose
    values ``SQLITE_MAX_VALUES`` allows, rounded down to a power of two.
    """
    return 1 << (max(1, SQLITE_MAX_VALUES // width).bit_length() - 1)


def _page_sizes(count: int, full: int) -> list[int]:
    """
    ``count`` rows as the row counts of consecutive statements: pages of
    ``full`` (a power of two), then what is left as its binary digits,
    largest first (at most one statement of each smaller power of two).
    """
    sizes = [full] * (count // full)
    left = count % full
    size = full
    while left:
        size >>= 1
        if left & size:
            sizes.append(size)
            left -= size
    return sizes


def _multirow_text(
    dialect: Dialect, table: sa.Table, names: tuple[str, ...], returning: str | None, rows: int
) -> str:
    """The SQL text of ``_multirow_statements``' statement of ``rows`` rows."""
    quote = dialect.identifier_preparer.quote
    row_clause = f"({', '.join('?' * len(names))})"
    text = (
        f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
        f"({', '.join(quote(name) for name in names)}) "
        f"VALUES {', '.join([row_clause] * rows)} ON CONFLICT DO NOTHING"
    )
    if returning is not None:
        text += f" RETURNING {quote(returning)}"
    return text


#: ``_multirow_text``s by dialect, then (table, columns, RETURNING column), then row count.
_multirow_texts: weakref.WeakKeyDictionary[Dialect, dict[Any, dict[int, str]]] = (
    weakref.WeakKeyDictionary()
)


def _processed(
    values: list[Any], process: Callable[[Any], Any], times: dict[datetime, Any]
) -> list[Any]:
    """
    ``values`` through a column's bind processor. The rows of a batch share
    few times (a message's samples, its arrival): each distinct one is
    converted once (equal aware times are one instant, so they convert alike).
    """
    converted: list[Any] = []
    # Neighbours are often the very same time (a message's four samples
    # share its arrival and their timestamp): no hash of it then.
    last: Any = converted
    done: Any = None
    for value in values:
        if value is last:
            converted.append(done)
            continue
        last = value
        if type(value) is datetime:
            done = times.get(value)
            if done is None:
                done = times[value] = process(value)
        else:
            done = process(value)
        converted.append(done)
    return converted


@attrs.frozen
class _UnnestInsert:
    """
    PostgreSQL's insert of many rows as one statement: ``INSERT INTO t
    (columns) SELECT * FROM unnest(%b::type[], ...) ON CONFLICT DO NOTHING``,
    one array parameter per column. Binary (``%b``): psycopg's text arrays
    quote each element through a regular expression in Python, which cost
    more than the executemany they replace; binary ones pack each element
    with its C dumper (client CPU per 400 meter samples: executemany 4.6-6.9
    ms, text arrays 5.3-9.1, binary 1.6-2.3).

    The executemany it replaces (in psycopg's pipeline) cost the processor's
    thread psycopg's Python per row and the server a Bind and an Execute per
    row (bench/RESULTS.md). Each array is cast to the type SQLAlchemy casts
    one such value to (``render_bind_cast``: a ``VARCHAR`` without its
    length), so a value too long for its column still fails on assignment
    instead of being cut by the cast, and the values are those SQLAlchemy's
    bind processors make, as ``conn.execute`` would send them. Rows within
    the statement that share a unique key are one conflict like any other:
    the first is stored, the rest skipped (as the executemany did), and the
    row count is how many were new. ``unnest`` yields the arrays in order,
    so rows are inserted (and numbered) in the order given.
    """

    sql: str
    names: tuple[str, ...]
    processors: tuple[Callable[[Any], Any] | None, ...]
    #: The result processor of the RETURNING column, if any.
    returned: Callable[[Any], Any] | None
    #: Each column's array as sent (``pg_arrays.array_encoder``).
    encoders: tuple[Callable[[list[Any], bool], Any], ...]

    def arrays(self, rows: Sequence[Mapping[str, Any]], utf8: bool) -> tuple[Any, ...]:
        """
        ``rows``' values, one array parameter per column in the statement's
        order; ``utf8``: the connection's ``pg_arrays.client_utf8``.
        """
        return self.arrays_of([tuple(row[name] for name in self.names) for row in rows], utf8)

    def arrays_of(self, rows: Sequence[Sequence[Any]], utf8: bool) -> tuple[Any, ...]:
        """``arrays`` of rows of values in ``names`` order."""
        arrays: list[Any] = []
        for column, process, encode in zip(
            zip(*rows, strict=True), self.processors, self.encoders, strict=True
        ):
            values = list(column)
            arrays.append(
                encode(values if process is None else _processed(values, process, {}), utf8)
            )
        return tuple(arrays)


_unnest_inserts: weakref.WeakKeyDictionary[Dialect, dict[Any, _UnnestInsert]] = (
    weakref.WeakKeyDictionary()
)


def _unnest_insert(
    dialect: Dialect, table: sa.Table, columns: tuple[str, ...], returning: str | None = None
) -> _UnnestInsert:
    """``_UnnestInsert`` of ``columns`` of ``table`` on PostgreSQL, built once per dialect."""
    prepared = _unnest_inserts.setdefault(dialect, {})
    key = (table, columns, returning)
    if key not in prepared:
        compiled = (
            dialect_insert(dialect.name, table)
            .on_conflict_do_nothing()
            .compile(dialect=dialect, column_keys=list(columns))
        )
        assert isinstance(compiled, SQLCompiler)
        quote = dialect.identifier_preparer.quote
        arrays = [binary_array(dialect, table.c[name].type, compiled) for name in columns]
        sql = (
            f"INSERT INTO {dialect.identifier_preparer.format_table(table)} "
            f"({', '.join(quote(name) for name in columns)}) "
            f"SELECT * FROM unnest({', '.join(arrays)}) ON CONFLICT DO NOTHING"
        )
        returned = None
        if returning is not None:
            sql += f" RETURNING {quote(returning)}"
            returned = table.c[returning].type._cached_result_processor(dialect, None)
        processors = tuple(table.c[name].type._cached_bind_processor(dialect) for name in columns)
        encoders = tuple(array_encoder(dialect, table.c[name].type) for name in columns)
        prepared[key] = _UnnestInsert(sql, columns, processors, returned, encoders)
    return prepared[key]


def binary_array(
    dialect: Dialect, type_: sa.types.TypeEngine[Any], compiled: SQLCompiler | None = None
) -> str:
    """
    A binary array parameter of ``type_``'s values on PostgreSQL, cast as
    SQLAlchemy casts one such value (``%b::VARCHAR[]``: no length, so a value
    too long for its column fails on assignment rather than being cut); its
    values must be what ``type_``'s bind processor makes (``bind_array``).
    """
    if compiled is None:
        compiled = _any_compiled(dialect)
    impl = type_._unwrapped_dialect_impl(dialect)
    if not impl.render_bind_cast:
        raise NotImplementedError(f"{type_!r}: no PostgreSQL cast to an array")
    return compiled.render_bind_cast(type_, impl, "%b") + "[]"


def _any_compiled(dialect: Dialect) -> SQLCompiler:
    compiled = sa.select(sa.literal_column("1")).compile(dialect=dialect)
    assert isinstance(compiled, SQLCompiler)
    return compiled


def bind_array(
    dialect: Dialect, type_: sa.types.TypeEngine[Any], values: list[Any], utf8: bool
) -> Any:
    """
    ``values`` as ``type_``'s bind processor sends them (None stays None),
    as the parameter of a ``binary_array`` (``pg_arrays``: encoded here;
    ``utf8``: the connection's ``pg_arrays.client_utf8``).
    """
    encoders = _array_encoders.setdefault(dialect, {})
    encode = encoders.get(type_)
    if encode is None:
        encode = encoders[type_] = array_encoder(dialect, type_)
    process = type_._cached_bind_processor(dialect)
    if process is None:
        return encode(values, utf8)
    processed = _processed(values, lambda value: None if value is None else process(value), {})
    return encode(processed, utf8)


_array_encoders: weakref.WeakKeyDictionary[
    Dialect, dict[sa.types.TypeEngine[Any], Callable[[list[Any], bool], Any]]
] = weakref.WeakKeyDictionary()


#: Each column's bind processor (None: its values go as they are), per
#: dialect (an engine's, which carries its JSON serializer), table and
#: columns: what the multi-row statements on SQLite convert.
_Processors = tuple[Callable[[Any], Any] | None, ...]
_bind_processors: weakref.WeakKeyDictionary[Dialect, dict[Any, _Processors]] = (
    weakref.WeakKeyDictionary()
)


def _column_processors(dialect: Dialect, table: sa.Table, columns: tuple[str, ...]) -> _Processors:
    prepared = _bind_processors.setdefault(dialect, {})
    key = (table, columns)
    processors = prepared.get(key)
    if processors is None:
        processors = prepared[key] = tuple(
            table.c[name].type.dialect_impl(dialect).bind_processor(dialect) for name in columns
        )
    return processors


def _values_getter(names: tuple[str, ...]) -> Callable[[Mapping[str, Any]], tuple[Any, ...]]:
    """A row's values of ``names``, in order, as a tuple (``itemgetter`` of one is no tuple)."""
    if len(names) == 1:
        (name,) = names
        return lambda row: (row[name],)
    return operator.itemgetter(*names)


def append_new_rows(conn: Connection, table: sa.Table, rows: Sequence[Mapping[str, Any]]) -> int:
    """
    Insert ``rows`` skipping those whose unique key exists; how many were new.

    For appends too hot for ``insert_new_rows`` (the message log), with the
    columns' SQLAlchemy bind processors applied here, so stored values are
    exactly what ``conn.execute`` would store, without SQLAlchemy's per-row
    parameter building: ``append_new_values`` of the rows' values. Every row
    must have the same keys, all of them plain column values.
    """
    if not rows:
        return 0
    columns = tuple(rows[0])
    in_order = _values_getter(columns)
    return append_new_values(conn, table, columns, [in_order(row) for row in rows])


def append_new_values(
    conn: Connection, table: sa.Table, columns: tuple[str, ...], rows: Sequence[Sequence[Any]]
) -> int:
    """
    ``append_new_rows`` of rows of plain values of ``columns``, in that
    order (the meter samples, built as tuples: no dict per row).

    On PostgreSQL one statement of an array per column (``_UnnestInsert``);
    on SQLite multi-row INSERTs on the driver's cursor
    (``_multirow_statements``: SQLite's work per row is less than in an
    executemany of one row a statement, 5.2 against 6.3 us of CPU for a
    MeterValues' four samples), whose row counts it sums. No RETURNING.
    """
    if not rows:
        return 0
    if conn.dialect.name == "postgresql":
        unnest = _unnest_insert(conn.dialect, table, columns)
        arrays = unnest.arrays_of(rows, client_utf8(conn))
        return conn.exec_driver_sql(unnest.sql, arrays).rowcount
    values = _bound_values(rows, _column_processors(conn.dialect, table, columns))
    return driver_rowcount(conn, _multirow_statements(conn.dialect, table, columns, values, None))


def _bound_values(
    rows: Sequence[Sequence[Any]], processors: tuple[Callable[[Any], Any] | None, ...]
) -> list[Any]:
    """
    ``rows`` (values in the statement's order) as the multi-row statements
    bind them: one list of every row's values, row after row, each column's
    through its bind processor. Only the columns that have one (times,
    JSON) are touched, each as one slice of the list: no row is taken apart
    or built again (the meter's 13 values a row, transposed and back, were
    most of this). The rows of a batch share few times (a message's
    samples, its arrival): each column converts each distinct one once
    (equal aware times are one instant, so they convert alike).
    """
    width = len(processors)
    if set(map(len, rows)) - {width}:
        raise ValueError(f"rows of {width} values expected")
    values = list(itertools.chain.from_iterable(rows))
    for index, process in enumerate(processors):
        if process is not None:
            values[index::width] = _processed(values[index::width], process, {})
    return values


def utc(value: datetime) -> sa.BindParameter[datetime]:
    """
    A time as a bound parameter of type ``UTCDateTime``.

    Needed where the parameter's type is not inferred from a column (CASE
    branches, SET values computed in SQL): a plain datetime parameter would be
    stored with its local wall-clock time instead of being converted to UTC.
    """
    return sa.literal(value, UTCDateTime())


def later_of(column: sa.ColumnElement[datetime], value: datetime) -> sa.ColumnElement[datetime]:
    """``max(column, value)`` with NULL as the earliest time, portable (no GREATEST in SQLite)."""
    return sa.case((sa.or_(column.is_(None), column < utc(value)), utc(value)), else_=column)


def at_least_zero(expression: sa.ColumnElement[int]) -> sa.ColumnElement[int]:
    """``max(0, expression)``, portable."""
    return sa.case((expression > 0, expression), else_=sa.literal(0, sa.BigInteger()))
