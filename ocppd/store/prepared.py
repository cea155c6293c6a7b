"""
Statements of the processor's hot path, run on the driver's cursor.

SQLAlchemy's execution of a statement (its context, parameter building, result
wrapping) costs ten times what SQLite takes to run a keyed SELECT or UPDATE:
~100 us against ~8 us per statement measured, paid for every MeterValues.
A ``Prepared`` statement is compiled once per dialect, like
``ocppd.store.sql.append_new_rows``'s inserts: its SQL text, the bind
processors of its parameters and the result processors of its columns, all
SQLAlchemy's own, so what it stores and reads is exactly what
``conn.execute`` would, through the same connection and transaction.
"""

from __future__ import annotations

import operator
import weakref
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import attrs
import sqlalchemy as sa
from attrs import AttrsInstance
from sqlalchemy.engine import Connection, Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.sql.elements import ClauseElement

Processor = Callable[[Any], Any] | None
R = TypeVar("R", bound=AttrsInstance)


class _Compiled:
    """One statement's SQL text, parameters and result columns for one dialect."""

    def __init__(self, statement: ClauseElement, dialect: Dialect) -> None:
        compiled = statement.compile(dialect=dialect)
        assert isinstance(compiled, SQLCompiler)
        self.sql = compiled.string
        self.positional = compiled.positional
        binds = {name: bind for bind, name in compiled.bind_names.items()}
        self.names: tuple[str, ...] = tuple(compiled.positiontup or binds)
        #: Values of the parameters the statement binds itself (``status == 'active'``).
        self.defaults = {
            name: bind.effective_value for name, bind in binds.items() if not bind.required
        }
        self.binds: tuple[Processor, ...] = tuple(
            binds[name].type._cached_bind_processor(dialect) for name in self.names
        )
        escaped: Mapping[str, str] = compiled.escaped_bind_names or {}
        self.keys_sent = tuple(escaped.get(name, name) for name in self.names)
        columns = compiled._result_columns or []
        self.keys: tuple[str, ...] = tuple(column.keyname for column in columns)
        self.results: tuple[Processor, ...] = tuple(
            column.type._cached_result_processor(dialect, None) for column in columns
        )
        #: The columns that have a result processor: a session's row has 32
        #: columns and processors on 8 (its times), so ``row`` zips the raw
        #: row into a dict in one step and converts only those.
        self._records: dict[type[Any], Any] = {}
        self.processed: tuple[tuple[str, Callable[[Any], Any]], ...] = tuple(
            (key, process)
            for key, process in zip(self.keys, self.results, strict=True)
            if process is not None
        )

    def parameters(self, given: Mapping[str, Any]) -> Any:
        # A name the SQL uses twice (a time compared and set) is converted once.
        converted: dict[str, Any] = {}
        values = []
        for name, process in zip(self.names, self.binds, strict=True):
            if name in converted:
                values.append(converted[name])
                continue
            value = given[name] if name in given else self.defaults[name]
            if process is not None and value is not None:
                value = process(value)
            converted[name] = value
            values.append(value)
        return tuple(values) if self.positional else dict(zip(self.keys_sent, values, strict=True))

    def record(self, raw: Sequence[Any], cls: type[R]) -> R:
        """
        ``from_mapping(cls, self.row(raw))`` without the row's dict: ``cls``'s
        fields taken from ``raw`` in one step, in their order, and only the
        processed ones converted (a session read on every MeterValues).
        """
        plan = self._records.get(cls)
        if plan is None:
            plan = self._records[cls] = self._record_plan(cls)
        take, processed = plan
        values = list(take(raw))
        for place, process in processed:
            value = values[place]
            if value is not None:
                values[place] = process(value)
        factory: Callable[..., R] = cls
        return factory(*values)

    def _record_plan(
        self, cls: type[AttrsInstance]
    ) -> tuple[
        Callable[[Sequence[Any]], Sequence[Any]], tuple[tuple[int, Callable[[Any], Any]], ...]
    ]:
        fields = [field for field in attrs.fields(cls) if field.init]
        if any(field.kw_only for field in fields):
            # Positional arguments only mean the fields if every field takes one.
            raise TypeError(f"{cls.__name__} has keyword-only fields")
        where = {key: index for index, key in enumerate(self.keys)}
        indexes = [where[field.name] for field in fields]
        take = _taking(indexes)
        processed = tuple(
            (place, process)
            for place, process in (
                (place, self.results[index]) for place, index in enumerate(indexes)
            )
            if process is not None
        )
        return take, processed

    def row(self, raw: tuple[Any, ...]) -> dict[str, Any]:
        row = dict(zip(self.keys, raw, strict=True))
        for key, process in self.processed:
            value = row[key]
            if value is not None:
                row[key] = process(value)
        return row


def _taking(indexes: Sequence[int]) -> Callable[[Sequence[Any]], Sequence[Any]]:
    """The values at ``indexes``, in order (``itemgetter`` of one is no tuple)."""
    if len(indexes) == 1:
        (only,) = indexes
        return lambda raw: (raw[only],)
    return operator.itemgetter(*indexes)


class Prepared:
    """A statement with bind parameters, run on the driver's cursor of a connection."""

    def __init__(self, statement: ClauseElement) -> None:
        self._statement = statement
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def _for(self, dialect: Dialect) -> _Compiled:
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = _Compiled(self._statement, dialect)
        return compiled

    def many(self, conn: Connection, rows: Sequence[Mapping[str, Any]]) -> int:
        """
        The statement once per row of parameters (the driver's executemany,
        one prepared statement); the rows it affected in all.
        """
        if not rows:
            return 0
        compiled = self._for(conn.dialect)
        return self._executemany(conn, compiled, [compiled.parameters(row) for row in rows])

    def _executemany(self, conn: Connection, compiled: _Compiled, values: Sequence[Any]) -> int:
        driver = conn.connection.dbapi_connection
        assert driver is not None  # a connection in a transaction always has one
        dbapi = conn.dialect.loaded_dbapi
        cursor = driver.cursor()
        try:
            cursor.executemany(compiled.sql, values)
            return int(cursor.rowcount)
        except dbapi.Error as e:
            raise sa.exc.DBAPIError.instance(
                compiled.sql, values, e, dbapi.Error, dialect=conn.dialect
            ) from e
        finally:
            cursor.close()

    def sql(self, conn: Connection) -> str:
        """The statement's SQL text for ``conn``'s driver."""
        return self._for(conn.dialect).sql

    def keys(self, conn: Connection) -> tuple[str, ...]:
        """The keys of the statement's result columns, in order."""
        return self._for(conn.dialect).keys

    def result_processors(self, conn: Connection) -> dict[str, Processor]:
        """Each result column's processor (None: its value is read as the driver gives it)."""
        compiled = self._for(conn.dialect)
        return dict(zip(compiled.keys, compiled.results, strict=True))

    def names(self, conn: Connection) -> tuple[str, ...]:
        """The statement's parameter names, in the order ``many_values`` takes them."""
        return self._for(conn.dialect).names

    def many_values(self, conn: Connection, rows: Sequence[Sequence[Any]]) -> int:
        """
        ``many`` for rows of values in ``names`` order that the driver takes as
        they are (str, int, bytes, None): no dict per row, no bind processing.
        Only for columns whose SQLAlchemy type would pass such values unchanged.
        """
        if not rows:
            return 0
        compiled = self._for(conn.dialect)
        values: Sequence[Any] = rows
        if not compiled.positional:
            keys = compiled.keys_sent
            values = [dict(zip(keys, row, strict=True)) for row in rows]
        return self._executemany(conn, compiled, values)

    def first(self, conn: Connection, parameters: Mapping[str, Any]) -> dict[str, Any] | None:
        """The first row the statement returns, by column key, or None."""
        compiled, raw, _ = self._run(conn, parameters)
        return None if raw is None else compiled.row(tuple(raw))

    def first_record(
        self, conn: Connection, parameters: Mapping[str, Any], cls: type[R]
    ) -> R | None:
        """``first`` as a ``cls`` (``records.from_mapping``'s), or None."""
        compiled, raw, _ = self._run(conn, parameters)
        return None if raw is None else compiled.record(raw, cls)

    def record(self, conn: Connection, raw: Sequence[Any], cls: type[R]) -> R:
        """
        A row of this statement's columns read by other SQL (the driver's
        values, in this statement's column order) as ``first_record`` makes it.
        """
        return self._for(conn.dialect).record(raw, cls)

    def rowcount(self, conn: Connection, parameters: Mapping[str, Any]) -> int:
        """Run a statement that returns no rows (an UPDATE): the rows it matched."""
        return self._run(conn, parameters)[2]

    def _run(self, conn: Connection, parameters: Mapping[str, Any]) -> tuple[_Compiled, Any, int]:
        compiled = self._for(conn.dialect)
        driver = conn.connection.dbapi_connection
        assert driver is not None  # a connection in a transaction always has one
        dbapi = conn.dialect.loaded_dbapi
        values = compiled.parameters(parameters)
        cursor = driver.cursor()
        try:
            cursor.execute(compiled.sql, values)
            raw = cursor.fetchone() if cursor.description is not None else None
            if raw is not None:
                # Every row read: SQLite runs an UPDATE ... RETURNING to its end only then.
                cursor.fetchall()
            count: int = cursor.rowcount
        except dbapi.Error as e:
            # Raised as ``conn.execute`` raises it (``sa.exc.IntegrityError``, ...).
            raise sa.exc.DBAPIError.instance(
                compiled.sql, values, e, dbapi.Error, dialect=conn.dialect
            ) from e
        finally:
            cursor.close()
        return compiled, raw, count


def driver_rows(
    conn: Connection, statements: Sequence[tuple[str, Sequence[Any]]]
) -> list[Sequence[Any]]:
    """
    Every row of each statement (SQL text of the driver's, and its values),
    run in order in ``conn``'s transaction, as the driver returns them (no
    result processing).

    On PostgreSQL several go in one pipeline (psycopg's pipeline mode): all
    sent before the first answer is read, so N statements cost about one
    round trip instead of N, and the server still runs them one after the
    other, each seeing the ones before it. A failure raises as
    ``conn.exec_driver_sql`` raises it (the server skips the rest); the
    transaction is then in error and must be rolled back.
    """
    driver = conn.connection.dbapi_connection
    assert driver is not None  # a connection in a transaction always has one
    dbapi = conn.dialect.loaded_dbapi
    cursors: list[Any] = []
    sql: str = ""
    values: Sequence[Any] = ()
    try:
        if conn.dialect.name == "postgresql" and len(statements) > 1:
            with driver.pipeline():
                for sql, values in statements:
                    cursor = driver.cursor()
                    cursors.append(cursor)
                    cursor.execute(sql, values)
                # The first fetch sends the pipeline and reads answers up to its own.
                return [cursor.fetchall() for cursor in cursors]
        rows = []
        for sql, values in statements:
            cursor = driver.cursor()
            cursors.append(cursor)
            cursor.execute(sql, values)
            rows.append(cursor.fetchall())
        return rows
    except dbapi.Error as e:
        # In a pipeline the statement named is the last one sent, not the one that failed.
        raise sa.exc.DBAPIError.instance(sql, values, e, dbapi.Error, dialect=conn.dialect) from e
    finally:
        for cursor in cursors:
            cursor.close()


def driver_rowcount(conn: Connection, statements: Sequence[tuple[str, Sequence[Any]]]) -> int:
    """
    Run statements that return no rows (SQL text of the driver's, and its
    values) in order in ``conn``'s transaction, on one cursor; the rows they
    changed in all. A failure raises as ``conn.exec_driver_sql`` raises it.
    """
    driver = conn.connection.dbapi_connection
    assert driver is not None  # a connection in a transaction always has one
    dbapi = conn.dialect.loaded_dbapi
    cursor = driver.cursor()
    changed = 0
    sql: str = ""
    values: Sequence[Any] = ()
    try:
        for sql, values in statements:
            cursor.execute(sql, values)
            changed += cursor.rowcount
    except dbapi.Error as e:
        raise sa.exc.DBAPIError.instance(sql, values, e, dbapi.Error, dialect=conn.dialect) from e
    finally:
        cursor.close()
    return changed
