"""
``ocppctl status``: what an operator on call asks first, from where each
answer lives:

- **the daemon's ``GET /ready``** (``ocppd.health``), at the web listener of
  the same configuration (or ``--url``): node id, version, role, whether it is
  ready and what is wrong, its bus connection and its connected chargers;
- **the database**: chargers online per node (every node of the
  installation), and the embedded bus's backlog, lag (the age of its oldest
  unacknowledged message) and dead letters, which it journals in
  ``bus_journal`` (on a SQLite store, in the journal file beside it:
  ``ocppd.store.journal``), and the outbox waiting for the relay;
- **RabbitMQ** (``[bus] backend = amqp``): each durable queue's waiting
  messages and dead letters, by passive declarations (nothing is consumed);
  their lag is the daemon's (``/ready``'s ``consumers``: the oldest message
  its consumer of the queue holds), since the broker does not tell a
  message's age without taking it.

Each source is asked independently: one that cannot be reached is reported
as such and the others are still shown.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Generator
from datetime import datetime
from typing import TYPE_CHECKING, Any, TextIO

import attrs
import sqlalchemy as sa
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks

from ocppd.bus import topology
from ocppd.bus.envelope import Envelope
from ocppd.config import Config
from ocppd.roles import serves_chargers
from ocppd.store.tables import bus_journal, charge_points, outbox
from ocppd.timeutil import parse_iso

if TYPE_CHECKING:
    from ocppd.store.database import Database

__all__ = [
    "Status",
    "consumers_lag",
    "daemon_url",
    "from_database",
    "from_services",
    "print_status",
]

#: Seconds the daemon and the broker each have to answer.
TIMEOUT = 5.0
#: What each ``[ocppd] role`` runs, as the status line says it (``ocppd.roles``).
ROLE_MEANING = {
    "all": " (chargers, web and the processor in one process)",
    "edge": " (chargers and web; the processor runs elsewhere)",
    "processor": " (the processor and audit consumers only; no chargers)",
}


def daemon_url(config: Config) -> str | None:
    """``/ready``'s URL from ``[web] listen`` (tcp and ssl endpoints), or None."""
    # Endpoint strings escape a colon within a value as "\\:" (IPv6 addresses).
    parts = [part.replace("\\:", ":") for part in re.split(r"(?<!\\):", config.web.listen)]
    kind, args = parts[0], parts[1:]
    positional = [a for a in args if "=" not in a]
    options = dict(a.split("=", 1) for a in args if "=" in a)
    if kind not in ("tcp", "tcp6", "ssl") or not positional or not positional[0].isdigit():
        return None
    host = options.get("interface", "")
    if host in ("", "0.0.0.0"):
        host = "127.0.0.1"
    elif host == "::":
        host = "::1"
    if ":" in host:
        host = f"[{host}]"
    scheme = "https" if kind == "ssl" else "http"
    return f"{scheme}://{host}:{positional[0]}/ready"


@attrs.define
class Status:
    daemon: dict[str, Any] | None = None
    daemon_problem: str | None = None
    chargers_online: dict[str, int] = attrs.field(factory=dict)
    queues: dict[str, dict[str, Any]] = attrs.field(factory=dict)
    queues_problem: str | None = None
    outbox: dict[str, Any] = attrs.field(factory=dict)
    database_problem: str | None = None

    @property
    def ready(self) -> bool:
        return self.daemon is not None and self.daemon.get("status") == "ready"

    def to_json(self) -> dict[str, Any]:
        return {
            "ready": self.ready,
            "daemon": self.daemon,
            "daemonProblem": self.daemon_problem,
            "chargersOnline": self.chargers_online,
            "queues": self.queues,
            "queuesProblem": self.queues_problem,
            "outbox": self.outbox,
            "databaseProblem": self.database_problem,
        }


def chargers_online(conn: Connection) -> dict[str, int]:
    rows = conn.execute(
        sa.select(charge_points.c.node, sa.func.count())
        .where(charge_points.c.online.is_(True))
        .group_by(charge_points.c.node)
    )
    return {str(node or "?"): int(count) for node, count in rows}


def journal_queues(conn: Connection, node: str, now: datetime) -> dict[str, dict[str, Any]]:
    """The embedded bus's queues as its journal holds them: waiting, dead, lag."""
    j = bus_journal.c
    counts = conn.execute(
        sa.select(
            j.queue,
            sa.func.count().filter(j.dead_attempts.is_(None)),
            sa.func.count().filter(j.dead_attempts.is_not(None)),
            sa.func.min(j.seq).filter(j.dead_attempts.is_(None)),
        )
        .where(j.node == node)
        .group_by(j.queue)
    ).all()
    queues: dict[str, dict[str, Any]] = {}
    for queue, waiting, dead, oldest in counts:
        lag = None
        if oldest is not None:
            body = conn.execute(
                sa.select(j.body).where(j.node == node, j.seq == oldest, j.queue == queue)
            ).scalar()
            lag = _age(body, now)
        queues[queue] = {"waiting": int(waiting), "dead": int(dead), "lagSeconds": lag}
    return queues


def _age(body: bytes | None, now: datetime) -> float | None:
    try:
        published = parse_iso(Envelope.from_bytes(bytes(body or b"")).time)
    except (ValueError, TypeError):
        return None  # not an envelope we can read: its age is unknown, not zero
    return round(max(0.0, (now - published).total_seconds()), 3)


def outbox_backlog(conn: Connection, node: str, now: datetime) -> dict[str, Any]:
    count, oldest = conn.execute(
        sa.select(sa.func.count(), sa.func.min(outbox.c.created_at)).where(outbox.c.node == node)
    ).one()
    lag = None if oldest is None else round(max(0.0, (now - oldest).total_seconds()), 3)
    return {"waiting": int(count), "lagSeconds": lag}


@inlineCallbacks
def fetch_ready(url: str, reactor: Any) -> Generator[Deferred[Any], Any, dict[str, Any]]:
    """The body of ``/ready`` (200 or 503 alike); fails if there is none."""
    import treq
    from twisted.web.client import HTTPConnectionPool

    pool = HTTPConnectionPool(reactor, persistent=False)
    response = yield treq.get(url, timeout=TIMEOUT, pool=pool, reactor=reactor)
    if response.code not in (200, 503):
        yield response.content()
        raise ValueError(f"HTTP {response.code} from {url}")
    # /ready's answer is small; a wrong --url must not load a huge page.
    body = yield treq.content(response)
    if len(body) > 1_000_000:
        raise ValueError(f"an answer of {len(body)} bytes from {url} is no /ready")
    data = json.loads(body)
    if not isinstance(data, dict):
        raise ValueError(f"not a /ready answer from {url}")
    return data


@inlineCallbacks
def broker_queues(config: Config, reactor: Any) -> Generator[Deferred[Any], Any, dict[str, Any]]:
    """Messages waiting and dead in each durable queue, by passive declarations."""
    import pika
    from pika.adapters.twisted_connection import TwistedProtocolConnection
    from twisted.internet.protocol import ClientCreator

    parameters = pika.URLParameters(config.bus.url)
    creator = ClientCreator(reactor, TwistedProtocolConnection, parameters)
    connect = creator.connectTCP(parameters.host, parameters.port, timeout=TIMEOUT)
    protocol = yield connect
    try:
        yield protocol.ready
        names = topology.default_topology(config.bus.prefix)
        queues: dict[str, Any] = {}
        for spec in names.queues:
            if spec.ephemeral:
                continue
            queues[spec.name] = {
                "waiting": (yield _count(protocol, names.queue_full_name(spec.name))),
                "dead": (yield _count(protocol, names.dead_letter_queue_full_name(spec.name))),
                # RabbitMQ does not say without taking the message: the daemon does.
                "lagSeconds": None,
            }
        return queues
    finally:
        protocol.transport.loseConnection()


@inlineCallbacks
def _count(protocol: Any, queue: str) -> Generator[Deferred[Any], Any, int | None]:
    # A channel per queue: a queue that does not exist (not declared yet) closes it.
    channel = yield protocol.channel()
    try:
        declared = yield channel.queue_declare(queue=queue, passive=True)
    except Exception:
        return None
    yield channel.close()
    return int(declared.method.message_count)


def print_status(status: Status, stdout: TextIO) -> None:
    """The status as lines for a terminal."""
    daemon = status.daemon
    if daemon is None:
        print(f"daemon     not answering: {status.daemon_problem}", file=stdout)
    else:
        state = daemon.get("status", "?")
        problems = daemon.get("problems") or {}
        detail = "; ".join(f"{name}: {text}" for name, text in problems.items())
        print(f"node       {daemon.get('node')} (ocppd {daemon.get('version')})", file=stdout)
        role = daemon.get("role")
        if isinstance(role, str):  # a daemon from before roles does not say
            print(f"role       {role}{ROLE_MEANING.get(role, '')}", file=stdout)
        print(f"daemon     {state}{': ' + detail if detail else ''}", file=stdout)
        bus = daemon.get("bus") or {}
        connected = "connected" if bus.get("connected") else "NOT connected"
        blocked = f", blocked ({bus['blocked']})" if bus.get("blocked") else ""
        print(f"bus        {bus.get('backend')}, {connected}{blocked}", file=stdout)
        services = daemon.get("services") or {}
        if services:
            parts = ", ".join(f"{name} {state}" for name, state in services.items())
            print(f"services   {parts}", file=stdout)
        if isinstance(role, str) and not serves_chargers(role):
            # Its /ready says 0 connected, which reads as "all chargers lost".
            print(f"chargers   none: this node takes no chargers (role {role})", file=stdout)
        else:
            chargers = (daemon.get("chargers") or {}).get("connected")
            print(f"chargers   {chargers} connected to this node", file=stdout)
    online = ", ".join(f"{node} {count}" for node, count in sorted(status.chargers_online.items()))
    total = sum(status.chargers_online.values())
    print(
        f"online     {total} chargers online in the database{': ' + online if online else ''}",
        file=stdout,
    )
    if status.database_problem is not None:
        print(f"database   unreachable: {status.database_problem}", file=stdout)
    if status.queues_problem is not None:
        print(f"queues     unknown: {status.queues_problem}", file=stdout)
    for name, queue in sorted(status.queues.items()):
        lag = queue.get("lagSeconds")
        lag_text = "" if lag is None else f", oldest {lag:g} s"
        print(
            f"queue      {name}: {_n(queue.get('waiting'))} waiting{lag_text}, "
            f"{_n(queue.get('dead'))} dead letters",
            file=stdout,
        )
    if status.outbox:
        lag = status.outbox.get("lagSeconds")
        lag_text = "" if lag is None else f", oldest {lag:g} s"
        print(
            f"outbox     {status.outbox['waiting']} events waiting for the relay{lag_text}",
            file=stdout,
        )


def from_database(status: Status, config: Config, now: datetime) -> None:
    """What the database says: chargers online, the embedded bus's queues, the outbox."""
    from ocppd.store import migrate
    from ocppd.store.database import Database, describe_error

    node = config.ocppd.node_id
    database = Database.from_url(config.store_url, max_threads=1)
    try:
        migrate.require_current(database.engine)
        status.chargers_online = database.run_sync(chargers_online)
        if config.bus.backend == "memory":
            status.queues = read_journal_queues(database, config, node, now)
        status.outbox = database.run_sync(outbox_backlog, node, now)
    except sa.exc.SQLAlchemyError as e:
        status.database_problem = describe_error(e)
    finally:
        database.engine.dispose()


def read_journal_queues(
    store: Database, config: Config, node: str, now: datetime
) -> dict[str, dict[str, Any]]:
    """
    ``journal_queues`` where the embedded bus journals: the journal file
    beside a SQLite store once a daemon of this version made it, else the store.
    """
    from ocppd.store.journal import journal_database, journal_file

    path = journal_file(config.store_url)
    journal = journal_database(config.store_url) if path and os.path.exists(path) else None
    if journal is None:
        return store.run_sync(journal_queues, node, now)
    try:
        return journal.run_sync(journal_queues, node, now)
    finally:
        journal.engine.dispose()


@inlineCallbacks
def from_services(
    status: Status, config: Config, url: str | None, reactor: Any
) -> Generator[Deferred[Any], Any, None]:
    """What the daemon's /ready and the broker say."""
    if url is None:
        status.daemon_problem = (
            f"cannot tell the web listener's address from web.listen = {config.web.listen}:"
            " give --url"
        )
    else:
        try:
            status.daemon = yield fetch_ready(url, reactor)
        except Exception as e:
            status.daemon_problem = f"{url}: {_reason(e)}"
    if config.bus.backend == "amqp":
        try:
            status.queues = yield broker_queues(config, reactor)
        except Exception as e:
            status.queues_problem = f"RabbitMQ: {_reason(e)}"
        else:
            consumers_lag(status)


def consumers_lag(status: Status) -> None:
    """
    The lag of each broker queue from the daemon's consumers (``/ready``'s
    ``consumers``): the age of the oldest message it holds of that queue.
    """
    consumers = (status.daemon or {}).get("consumers")
    if not isinstance(consumers, dict):
        return  # no daemon, or one from before it said
    for name, queue in status.queues.items():
        held = consumers.get(name)
        lag = held.get("lagSeconds") if isinstance(held, dict) else None
        if isinstance(lag, int | float) and not isinstance(lag, bool):
            queue["lagSeconds"] = lag


def _reason(error: BaseException) -> str:
    from twisted.python.failure import Failure

    # treq and Twisted wrap the cause (ResponseNeverReceived, ConnectError...).
    reasons = getattr(error, "reasons", None)
    if reasons and isinstance(reasons[0], Failure) and reasons[0].value is not None:
        return _reason(reasons[0].value)
    text = str(error) or type(error).__name__
    return text.splitlines()[0][:300] if text else type(error).__name__


def _n(value: Any) -> str:
    return "?" if value is None else str(value)
