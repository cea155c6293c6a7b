"""
The database handle: a SQLAlchemy Engine and a thread pool of its own.

Query functions take a ``Connection`` and do their work inside the caller's
transaction. ``Database.run(func, ...)`` (Synapse's ``runInteraction``) runs
``func`` in one transaction on the pool and returns a Deferred, so the reactor
thread never waits on the database; ``run_sync`` does the same in the calling
thread, for ``ocppctl``, start-up and tests.

The pool is separate from the reactor's own thread pool so that slow queries
cannot starve DNS lookups or password hashing, and so its size can match the
engine: SQLite has a single writer, so it gets one thread (writes queue in
Python instead of failing with "database is locked"); PostgreSQL gets
``max_threads`` threads and as many pooled connections.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from typing import Any, Concatenate, ParamSpec, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import URL, Connection, Engine
from twisted.internet.defer import Deferred, fail
from twisted.python.threadpool import ThreadPool

from ocppd import jsoncodec
from ocppd.logs import Logger
from ocppd.metrics.histogram import Histogram

P = ParamSpec("P")
T = TypeVar("T")

SQLITE_FILE_NAME = "ocppd.sqlite3"
#: How long a SQLite connection waits for another process's write lock (an
#: ``ocppctl`` next to the daemon) before giving up, in milliseconds.
SQLITE_BUSY_TIMEOUT_MS = 10_000
#: Each SQLite connection's page cache at most, in KiB (``cache_size``, negative: KiB).
SQLITE_CACHE_KIB = 64 * 1024
#: WAL frames (pages) after which a commit copies the WAL into the database file.
SQLITE_WAL_AUTOCHECKPOINT = 4000
#: Bytes the WAL file keeps once a checkpoint let it start over (``journal_size_limit``).
SQLITE_JOURNAL_SIZE_LIMIT = 64 * 1024 * 1024
#: Seconds a new PostgreSQL connection may take (libpq ``connect_timeout``).
PG_CONNECT_TIMEOUT = 10
#: CPython's GIL switch interval in the daemon (``sys.setswitchinterval``;
#: the default is 5 ms). The reactor drops the GIL at every system call and,
#: while the database thread runs Python (a processor batch: rows, values,
#: results), waits up to the interval to get it back: with 5 ms, a request's
#: few system calls took tens of ms under load (``bench/gil_switch.py``).
GIL_SWITCH_INTERVAL = 0.0005
#: Seconds after which a PostgreSQL connection whose peer went silent fails
#: (TCP keepalives and ``tcp_user_timeout``), freeing its pool thread.
PG_DEAD_PEER_SECONDS = 60
#: Seconds a transaction may wait for a thread of the pool: none while the
#: pool keeps up, up to ``[ocpp] answer_timeout`` and beyond when it does not.
POOL_WAIT_BUCKETS = (0.0001, 0.0005, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0, 10.0, 30.0)


def default_sqlite_url(data_dir: str) -> str:
    """
    The embedded database's URL: ``ocppd.sqlite3`` in ``data_dir``.

    Nothing is created here: ``create_engine`` makes the directory for the
    daemon and ``ocppctl db upgrade``, while ``ocppctl``'s other commands
    refuse a missing database rather than create one somewhere unexpected.
    """
    return "sqlite:///" + os.path.join(os.path.abspath(data_dir), SQLITE_FILE_NAME)


def sqlite_file(url: str | URL) -> str | None:
    """The file of a SQLite URL; None for PostgreSQL or an in-memory SQLite."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() != "sqlite" or parsed.database in (None, "", ":memory:"):
        return None
    return os.path.abspath(parsed.database)


def location(url: str | URL) -> str:
    """Where a database is, for operators: the SQLite file, or the URL without its password."""
    path = sqlite_file(url)
    if path is not None:
        return path
    return sa.make_url(url).render_as_string(hide_password=True)


def describe_error(error: BaseException) -> str:
    """
    One line about a database error for an operator's eyes: the driver's own
    message, never the SQL statement or its parameters (a password hash, a key).
    """
    if isinstance(error, sa.exc.StatementError) and error.orig is not None:
        error = error.orig
    lines = str(error).strip().splitlines()
    name = type(error).__name__
    return f"{name}: {lines[0]}" if lines else name


#: The databases ``create_engine`` supports, by SQLAlchemy backend name.
BACKENDS = ("sqlite", "postgresql")


def check_url(url: str | URL) -> None:
    """Raise ValueError unless ``url`` is a database URL ocppd can use."""
    try:
        parsed = normalize_url(url)
    except sa.exc.ArgumentError:
        raise ValueError(f"{url!r} is not a database URL") from None
    if parsed.get_backend_name() not in BACKENDS:
        raise ValueError(f"unsupported database {parsed.drivername!r}: use {' or '.join(BACKENDS)}")


def normalize_url(url: str | URL) -> URL:
    """
    Parse ``url``, choosing psycopg 3 for PostgreSQL.

    SQLAlchemy's default PostgreSQL driver is psycopg2, which ocppd does not
    depend on; operators write the usual ``postgresql://`` (or the older
    ``postgres://``) and get ``postgresql+psycopg://``.
    """
    parsed = sa.make_url(url)
    if parsed.drivername in ("postgresql", "postgres"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed


def _configure_sqlite_connection(dbapi_connection: Any, connection_record: Any) -> None:
    """
    Per-connection SQLite settings (an engine ``connect`` event).

    - WAL lets readers (``ocppctl``, a second process) work while the daemon
      writes; it persists in the file, setting it again is cheap.
    - Foreign keys are off by default in SQLite, per connection.
    - ``busy_timeout`` makes a connection wait for another process's lock.
    - ``isolation_level = None`` stops the sqlite3 module from opening
      transactions behind SQLAlchemy's back (it would begin only at the first
      write, so a read-then-write transaction could see stale data); the
      ``begin`` event below opens them instead.
    - ``synchronous=FULL`` (not WAL's usual NORMAL): a commit must survive a
      power cut, since a transaction id handed to a charger must never be
      handed out again, and the embedded bus answers a charger only once its
      message is in the journal (``ocppd.store.journal``): with NORMAL, a
      power cut may roll back the last commits, and with them messages
      already acknowledged. It costs little: the processor's CPU per
      MeterValues measured the same with both (bench/RESULTS.md, issue 16).
    - ``temp_store=MEMORY``: a statement that may fail half-way in a longer
      transaction (a processor batch's multi-row INSERTs) keeps the pages it
      changes in a statement journal, which spilled to a temporary file past
      64 KiB: about half of what a batch of MeterValues wrote through system
      calls (bench/pages.py, bench/RESULTS.md). Kept in memory, it costs at
      most what one statement changes; temporary tables and indexes (a
      DISTINCT, an IN list) are in memory too. Sorts still spill to files.
    - ``cache_size`` of ``SQLITE_CACHE_KIB`` (64 MiB, not SQLite's 2 MiB):
      with 100 chargers a batch touches a leaf page of each index per
      charger, more than 2 MiB held, so a commit read pages back that it had
      just written and spilled dirty pages to the WAL before the commit
      wrote them again. A maximum, allocated as pages are read, per
      connection (the daemon's store and bus journal, an ``ocppctl``).
    - ``wal_autocheckpoint`` of ``SQLITE_WAL_AUTOCHECKPOINT`` frames (about
      16 MB, not 1,000): a checkpoint copies each page once however many
      commits rewrote it, so fewer checkpoints copy fewer pages (the hot
      index pages of every charger). Each takes longer, in the committing
      thread (the database thread), and a crash recovery reads up to that
      much WAL. 10,000 saved a little more and doubles both.
    - ``journal_size_limit`` of ``SQLITE_JOURNAL_SIZE_LIMIT`` (64 MiB): the
      WAL grows past the checkpoint size while a reader keeps an old
      snapshot; once it starts over, the file is cut back to this.
    - No ``mmap_size``: with this cache the database thread read 1-5 KB per
      MeterValues left, and a memory-mapped file turns an I/O error into a
      SIGBUS.
    """
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=FULL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA temp_store=MEMORY")
        cursor.execute(f"PRAGMA cache_size=-{SQLITE_CACHE_KIB}")
        cursor.execute(f"PRAGMA wal_autocheckpoint={SQLITE_WAL_AUTOCHECKPOINT}")
        cursor.execute(f"PRAGMA journal_size_limit={SQLITE_JOURNAL_SIZE_LIMIT}")
    finally:
        cursor.close()


def _begin_sqlite_transaction(conn: Connection) -> None:
    """
    Open every SQLite transaction with ``BEGIN IMMEDIATE`` (an engine ``begin`` event).

    Taking the write lock up front serialises transactions across processes,
    so read-modify-write sequences (allocate an id, stop a session) are
    atomic, and a transaction never fails half-way with SQLITE_BUSY when it
    upgrades from reading to writing: it waits ``busy_timeout`` at BEGIN.
    """
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def create_engine(
    url: str | URL,
    *,
    max_threads: int = 4,
    connect_args: Mapping[str, Any] | None = None,
) -> Engine:
    """
    An Engine configured for ocppd: see ``Database.from_url``.

    ``connect_args`` go to the DB-API ``connect()`` (for example psycopg's
    ``options="-csearch_path=..."``).
    """
    check_url(url)
    parsed = normalize_url(url)
    args = dict(connect_args or {})
    if parsed.get_backend_name() == "sqlite":
        # Connections move between the pool thread and run_sync callers, one
        # user at a time (the pool guarantees it).
        args.setdefault("check_same_thread", False)
        kwargs: dict[str, Any] = {}
        path = sqlite_file(parsed)
        if path is None:
            # One in-memory database exists per connection: share the one.
            kwargs["poolclass"] = sa.pool.StaticPool
        else:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        engine = sa.create_engine(
            parsed, connect_args=args, json_serializer=jsoncodec.dumps, **kwargs
        )
        sa.event.listen(engine, "connect", _configure_sqlite_connection)
        sa.event.listen(engine, "begin", _begin_sqlite_transaction)
        return engine
    # PostgreSQL, the other backend check_url lets through.
    args.setdefault("application_name", "ocppd")
    # A database host that vanished must not hold a pool thread for the
    # kernel's default (minutes to hours): connecting gives up after
    # PG_CONNECT_TIMEOUT, and a connection whose peer stops acknowledging
    # (or answering keepalives) fails after about PG_DEAD_PEER_SECONDS.
    # A server that keeps acknowledging but never answers (a hung process)
    # still holds its thread: answers time out meanwhile ([ocpp] answer_timeout).
    args.setdefault("connect_timeout", PG_CONNECT_TIMEOUT)
    args.setdefault("keepalives", 1)
    args.setdefault("keepalives_idle", PG_DEAD_PEER_SECONDS // 2)
    args.setdefault("keepalives_interval", PG_DEAD_PEER_SECONDS // 6)
    args.setdefault("keepalives_count", 3)
    args.setdefault("tcp_user_timeout", PG_DEAD_PEER_SECONDS * 1000)
    return sa.create_engine(
        parsed,
        connect_args=args,
        # JSON columns (the message log's payloads) written the fast way.
        json_serializer=jsoncodec.dumps,
        pool_size=max_threads,
        # Room for run_sync callers (start-up, ocppctl) beside the pool threads.
        max_overflow=max_threads,
        # A connection may have died with a PostgreSQL restart or failover.
        pool_pre_ping=True,
    )


class Database:
    """An Engine plus the thread pool its transactions run on."""

    log = Logger()

    def __init__(self, engine: Engine, *, reactor: Any = None, max_threads: int = 4) -> None:
        """
        ``reactor`` (an ``IReactorFromThreads`` and ``IReactorCore``) is the
        one ``start`` and ``run`` report to; only ``run_sync`` (``ocppctl``)
        does without. There is no fallback to the global reactor: whoever
        builds the Database says which.
        """
        if max_threads < 1:
            raise ValueError(f"max_threads must be at least 1, got {max_threads}")
        self.engine = engine
        self._reactor = reactor
        threads = 1 if engine.dialect.name == "sqlite" else max_threads
        self.threadpool = ThreadPool(minthreads=1, maxthreads=threads, name="ocppd-db")
        self._shutdown_trigger: Any = None
        #: Seconds each ``run`` waited for a thread of the pool (for the metrics).
        self.pool_waits = Histogram(POOL_WAIT_BUCKETS)
        #: ``run_held``'s pool connection and its DB-API connection, once it ran.
        self._held_fairy: Any = None
        self._held: Any = None

    def pool_state(self) -> tuple[int, int]:
        """Transactions waiting for a thread now, and threads busy (for the metrics)."""
        # Twisted's ThreadPool says it only through its (private) team's statistics.
        team = getattr(self.threadpool, "_team", None)
        if team is None:
            return 0, 0
        statistics = team.statistics()
        return statistics.backloggedWorkCount, statistics.busyWorkerCount

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        reactor: Any = None,
        max_threads: int = 4,
        connect_args: Mapping[str, Any] | None = None,
    ) -> Database:
        """
        A Database for ``url``: ``sqlite:///path`` or ``postgresql://...``.

        SQLite runs in WAL mode with foreign keys on, a busy timeout, and one
        thread. PostgreSQL uses psycopg 3, ``max_threads`` threads and a
        connection pool of the same size.
        """
        engine = create_engine(url, max_threads=max_threads, connect_args=connect_args)
        return cls(engine, reactor=reactor, max_threads=max_threads)

    @property
    def dialect(self) -> str:
        """``"sqlite"`` or ``"postgresql"``."""
        return self.engine.dialect.name

    @property
    def running(self) -> bool:
        """Whether ``run`` can be used (between ``start`` and ``stop``)."""
        return bool(self.threadpool.started)

    def _get_reactor(self) -> Any:
        if self._reactor is None:
            raise RuntimeError("Database built without a reactor: only run_sync() works")
        return self._reactor

    def start(self) -> None:
        """Start the thread pool. Also stopped at reactor shutdown, should ``stop`` be missed."""
        if self.threadpool.started:
            return
        reactor = self._get_reactor()  # before the threads: no pool left running on a refusal
        self.threadpool.start()
        self._shutdown_trigger = reactor.addSystemEventTrigger(
            "during", "shutdown", self._on_shutdown
        )

    def _on_shutdown(self) -> None:
        self._shutdown_trigger = None  # firing removed it already
        self.stop()

    def stop(self) -> None:
        """
        Stop the pool, waiting for the transactions in progress, and close the
        engine's connections. Safe to call more than once.
        """
        if self._shutdown_trigger is not None:
            self._get_reactor().removeSystemEventTrigger(self._shutdown_trigger)
            self._shutdown_trigger = None
        if self.threadpool.started:
            self.threadpool.stop()
        if self._held_fairy is not None:
            # Back to the pool (its threads are gone), then closed with it.
            self._held_fairy.close()
            self._held_fairy = self._held = None
        self.engine.dispose()

    def run(
        self, func: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Deferred[T]:
        """
        Run ``func(conn, *args, **kwargs)`` in one transaction on the pool.

        The Deferred fires with ``func``'s result after the commit, or fails
        with its exception after the rollback; it fails at once if the
        Database is not started, rather than waiting forever in the queue.

        Cancelling it (an answer that timed out) fails it at once with
        CancelledError: a call still queued is then never run, and one already
        running finishes (its commit stands) with its result dropped. A
        thread cannot be interrupted in a driver call: against a database that
        stopped answering, it waits until the connection fails.
        """
        return self._in_pool(self.run_sync, func, *args, **kwargs)

    def run_held(
        self, func: Callable[Concatenate[Any, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> Deferred[T]:
        """
        ``run``, with ``func`` given the DB-API connection (``sqlite3``) of a
        SQLite Database with one thread, which this Database holds for such
        calls from their first to ``stop``: ``BEGIN IMMEDIATE``, ``func``,
        ``COMMIT`` (a rollback if either fails), and nothing else. For the
        smallest, most frequent transactions (the bus journal's group
        commits): SQLAlchemy's ``Connection``, its pool checkout and return
        and its events cost about five times such a transaction's own work
        (bench/RESULTS.md).
        """
        if self.engine.dialect.name != "sqlite":
            raise ValueError("run_held is for SQLite (one thread) only")
        return self._in_pool(self.run_held_sync, func, *args, **kwargs)

    def run_held_sync(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """
        The same as ``run_held``, in the calling thread: for tests that run
        a node's transactions in theirs (never from a daemon's reactor thread).
        """
        conn = self._held
        if conn is None:
            # Checked out once and kept: only the pool's one thread uses it.
            self._held_fairy = self.engine.raw_connection()
            conn = self._held = self._held_fairy.driver_connection
        conn.execute("BEGIN IMMEDIATE")
        try:
            result = func(conn, *args, **kwargs)
            conn.commit()
        except BaseException:
            if conn.in_transaction:
                conn.rollback()
            raise
        return result

    def _in_pool(self, call: Callable[..., T], func: Any, *args: Any, **kwargs: Any) -> Deferred[T]:
        """``call(func, *args, **kwargs)`` on the pool: ``run``'s Deferred."""
        if not self.threadpool.started:
            return fail(RuntimeError("Database.run() before start() or after stop()"))
        reactor = self._get_reactor()
        abandoned = False

        def cancel(_: Deferred[T]) -> None:
            # Deferred.cancel fails ``done`` with CancelledError after this.
            nonlocal abandoned
            abandoned = True

        done: Deferred[T] = Deferred(cancel)
        queued = time.monotonic()
        began = queued

        def interaction() -> T | None:
            nonlocal began
            began = time.monotonic()
            if abandoned:
                return None  # cancelled while queued: nobody waits for it
            return call(func, *args, **kwargs)

        def finished(success: bool, result: Any) -> None:
            # Observed here, on the reactor thread: the histogram has no lock.
            self.pool_waits.observe(began - queued)
            if done.called:
                # Cancelled (an answer timed out) while running: its commit
                # stands, its result has nobody to go to.
                if not success:
                    self.log.warn(
                        "An abandoned database call failed: {error}",
                        error=describe_error(result.value),
                    )
                return
            if success:
                done.callback(result)
            else:
                done.errback(result)

        self.threadpool.callInThreadWithCallback(
            lambda success, result: reactor.callFromThread(finished, success, result),
            interaction,
        )
        return done

    def run_sync(
        self, func: Callable[Concatenate[Connection, P], T], *args: P.args, **kwargs: P.kwargs
    ) -> T:
        """
        The same as ``run``, in the calling thread: for ``ocppctl``, start-up
        and tests, never from the reactor thread of a running daemon.
        """
        with self.engine.begin() as conn:
            return func(conn, *args, **kwargs)
