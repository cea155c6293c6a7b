"""
``ocppctl``: the operator's command line.

    ocppctl --config etc/ocppd.ini db upgrade
    ocppctl user add EMAIL --role admin|customer        (password on stdin)
    ocppctl charger add CHARGEPOINTID [--station NAME] [--tariff NAME] (key on stdin)
    ocppctl tag add IDTAG [--user EMAIL] [--status S] [--expires ISO] [--parent IDTAG]
    ocppctl bus dead-letters list [--queue processor] [--json]
    ocppctl bus dead-letters replay [--queue processor] [--id ENVELOPEID ...]
    ocppctl status [--url URL] [--json]               (exit status 1 unless ready)

Secrets are read from standard input (a prompt on a terminal) so they never
appear in the process list or shell history.

Only ``db upgrade`` creates or migrates a database: every other command
refuses one that is missing or not at this version's schema, so that a wrong
``--config`` or working directory is an error naming the path, not a new
empty database. Every error is one line on standard error, exit status 1;
a database error shows the driver's message, never the SQL or its parameters.
"""

from __future__ import annotations

import argparse
import getpass
import json
import sys
from collections.abc import Callable, Generator, Sequence
from typing import Any, TextIO

import sqlalchemy as sa
from sqlalchemy.engine import Connection
from twisted.internet.defer import Deferred, inlineCallbacks, maybeDeferred
from twisted.python.failure import Failure

from ocppd.bus import topology
from ocppd.bus.interface import DeadLetter, Replay
from ocppd.config import Config, ConfigError, load_config
from ocppd.credentials import charger_key_problem, hash_charger_key, hash_password
from ocppd.ocpp.handshake import CHARGE_POINT_ID
from ocppd.store import chargers, migrate, stations, tags, tariffs, users
from ocppd.store.database import Database, describe_error
from ocppd.store.errors import AlreadyExists
from ocppd.timeutil import parse_iso, utcnow

TAG_STATUSES = ("Accepted", "Blocked", "Expired", "Invalid")


class CommandFailed(Exception):
    """An operator error: printed as one line, exit status 1."""


def read_secret(prompt: str, stdin: TextIO) -> str:
    if stdin.isatty():
        secret = getpass.getpass(prompt)
    else:
        # The exact string, less the line ending: a charger key is compared as sent.
        secret = stdin.readline().rstrip("\r\n")
    if not secret:
        raise CommandFailed("an empty secret was given on standard input")
    return secret


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="ocppctl", description="Administer an ocppd installation."
    )
    parser.add_argument("--config", "-c", help="configuration file (etc/ocppd.ini)")
    parser.add_argument(
        "--set", action="append", default=[], metavar="SECTION.OPTION=VALUE", help="override"
    )
    groups = parser.add_subparsers(dest="group", required=True)

    db = groups.add_parser("db", help="database").add_subparsers(dest="command", required=True)
    db.add_parser("upgrade", help="apply pending migrations")

    user = groups.add_parser("user", help="users").add_subparsers(dest="command", required=True)
    user_add = user.add_parser("add", help="add a user; password on stdin")
    user_add.add_argument("email")
    user_add.add_argument("--role", choices=("admin", "customer"), required=True)

    charger = groups.add_parser("charger", help="charge points").add_subparsers(
        dest="command", required=True
    )
    charger_add = charger.add_parser("add", help="add a charge point; authorization key on stdin")
    charger_add.add_argument("charge_point_id")
    charger_add.add_argument("--station", help="station name (created if absent)")
    charger_add.add_argument("--tariff", help="name of an existing tariff")
    charger_add.add_argument(
        "--no-key", action="store_true", help="no authorization key (profile 0; not recommended)"
    )

    tag = groups.add_parser("tag", help="id tags").add_subparsers(dest="command", required=True)
    tag_add = tag.add_parser("add", help="add an id tag")
    tag_add.add_argument("id_tag")
    tag_add.add_argument("--user", help="email of the owning user")
    tag_add.add_argument("--status", choices=TAG_STATUSES, default="Accepted")
    tag_add.add_argument("--expires", help="expiry, ISO-8601 (UTC if no offset)")
    tag_add.add_argument("--parent", help="parent id tag")
    bus = groups.add_parser("bus", help="the message bus (RabbitMQ)").add_subparsers(
        dest="command", required=True
    )
    dead = bus.add_parser("dead-letters", help="messages that failed every retry").add_subparsers(
        dest="action", required=True
    )
    dead_list = dead.add_parser("list", help="show the dead letters of a queue, oldest first")
    dead_list.add_argument("--queue", default=topology.PROCESSOR_QUEUE)
    dead_list.add_argument("--json", action="store_true", help="one JSON document")
    dead_replay = dead.add_parser("replay", help="put dead letters back on their work queue")
    dead_replay.add_argument("--queue", default=topology.PROCESSOR_QUEUE)
    dead_replay.add_argument(
        "--id", action="append", dest="ids", metavar="ENVELOPEID", help="only these (repeatable)"
    )
    dead_replay.add_argument(
        "--wait",
        type=_replay_wait,
        default=5.0,
        metavar="SECONDS",
        help="then watch this long for replayed letters that fail again (default 5)",
    )
    status = groups.add_parser(
        "status", help="the node, its readiness, chargers, queues, lag, dead letters"
    )
    status.add_argument("--url", help="the daemon's /ready (default: from [web] listen)")
    status.add_argument("--json", action="store_true", help="one JSON document")
    return parser


def run(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    config = load_config(args.config, args.set)
    if args.group == "status":
        return run_status(config, args, stdout)
    if args.group == "bus":
        run_bus_command(config, args, stdout)
        return 0
    try:
        run_database_command(config, args, stdin, stdout)
    except migrate.SchemaNotCurrent as e:
        raise CommandFailed(e.explain(config.path)) from None
    return 0


def run_status(config: Config, args: argparse.Namespace, stdout: TextIO) -> int:
    """``ocppctl status`` (``ocppd.status``): 0 when the daemon says it is ready, else 1."""
    from ocppd.status import Status, daemon_url, from_database, from_services, print_status

    migrate.require_database_file(config.store_url)
    status = Status()
    from_database(status, config, utcnow())
    url = args.url or daemon_url(config)
    in_reactor(lambda reactor: from_services(status, config, url, reactor))
    if args.json:
        json.dump(status.to_json(), stdout, indent=2)
        print(file=stdout)
    else:
        print_status(status, stdout)
    return 0 if status.ready else 1


def in_reactor(work: Callable[[Any], Deferred[Any]]) -> Any:
    """Run ``work(reactor)`` in a reactor of our own until it ends; its result, or raise."""
    from twisted.internet import reactor

    outcome: list[Any] = []

    def start() -> None:
        d = maybeDeferred(work, reactor)
        d.addBoth(outcome.append)
        d.addBoth(lambda _: reactor.stop())

    reactor.callWhenRunning(start)
    reactor.run()
    if outcome and isinstance(outcome[0], Failure):
        outcome[0].raiseException()
    return outcome[0] if outcome else None


def run_database_command(
    config: Config, args: argparse.Namespace, stdin: TextIO, stdout: TextIO
) -> None:
    upgrading = (args.group, args.command) == ("db", "upgrade")
    if not upgrading:
        # Before the engine exists: connecting would create the file.
        migrate.require_database_file(config.store_url)
    database = Database.from_url(config.store_url, max_threads=1)
    try:
        if upgrading:
            migrate.upgrade(database.engine)
            print(f"database at revision {migrate.current_revision(database.engine)}", file=stdout)
            return
        migrate.require_current(database.engine)
        handler = {
            ("user", "add"): _user_add,
            ("charger", "add"): _charger_add,
            ("tag", "add"): _tag_add,
        }[(args.group, args.command)]
        handler(database, args, stdin, stdout)
    finally:
        database.engine.dispose()


def _user_add(database: Database, args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    password = read_secret("Password: ", stdin)
    if len(password) < 8:
        raise CommandFailed("a password needs at least 8 characters")
    user_id = database.run_sync(
        users.add_user, args.email, hash_password(password), args.role, now=utcnow()
    )
    print(f"user {args.email} added with id {user_id} ({args.role})", file=stdout)


def _charger_add(
    database: Database, args: argparse.Namespace, stdin: TextIO, stdout: TextIO
) -> None:
    charge_point_id = args.charge_point_id
    if not CHARGE_POINT_ID.fullmatch(charge_point_id):
        raise CommandFailed(
            f"{charge_point_id!r} is not a valid charge point id "
            "(1-48 characters: letters, digits, . _ : + @ ~ -)"
        )
    key_hash = None
    if not args.no_key:
        key = read_secret("Authorization key: ", stdin)
        problem = charger_key_problem(key)
        if problem is not None:
            raise CommandFailed(problem)
        key_hash = hash_charger_key(key)
    now = utcnow()

    def add(conn: Connection) -> None:
        station_id = tariff_id = None
        if args.station:
            station = stations.get_station_by_name(conn, args.station)
            station_id = (
                station.id if station else stations.add_station(conn, args.station, now=now)
            )
        if args.tariff:
            tariff = tariffs.get_tariff_by_name(conn, args.tariff)
            if tariff is None:
                raise CommandFailed(f"no tariff named {args.tariff!r}")
            tariff_id = tariff.id
        chargers.add_charge_point(
            conn, charge_point_id, key_hash, station_id=station_id, tariff_id=tariff_id, now=now
        )

    database.run_sync(add)
    print(f"charge point {charge_point_id} added", file=stdout)


def _tag_add(database: Database, args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> None:
    if len(args.id_tag) > 20:
        raise CommandFailed("an OCPP 1.6 idTag has at most 20 characters")
    try:
        expires = parse_iso(args.expires) if args.expires else None
    except ValueError:
        raise CommandFailed(f"--expires {args.expires!r} is not an ISO-8601 time") from None

    def add(conn: Connection) -> None:
        user_id = None
        if args.user:
            user = users.get_user_by_email(conn, args.user)
            if user is None:
                raise CommandFailed(f"no user {args.user!r}")
            user_id = user.id
        if args.parent and tags.get_id_tag(conn, args.parent) is None:
            raise CommandFailed(f"no parent id tag {args.parent!r}")
        tags.add_id_tag(
            conn,
            args.id_tag,
            status=args.status,
            expires_at=expires,
            parent_id_tag=args.parent,
            user_id=user_id,
            now=utcnow(),
        )

    database.run_sync(add)
    print(f"id tag {args.id_tag} added ({args.status})", file=stdout)


def run_bus_command(config: Config, args: argparse.Namespace, stdout: TextIO) -> None:
    """
    Talk to RabbitMQ with the daemon's own bus code, in a reactor of our own.
    The embedded bus keeps its dead letters inside the daemon's memory, where
    no other process can reach them.
    """
    if config.bus.backend != "amqp":
        raise CommandFailed(
            "the embedded bus keeps dead letters in the daemon's memory (see its log); "
            "this command needs [bus] backend = amqp"
        )
    from twisted.internet import reactor

    from ocppd.bus.amqp import AmqpBus

    bus = AmqpBus(
        topology.default_topology(config.bus.prefix),
        url=config.bus.url,
        reactor=reactor,
        retry_delays=config.bus.retry_delays,
        max_attempts=config.bus.max_attempts,
        connection_name=f"ocppctl {config.ocppd.node_id}",
    )

    @inlineCallbacks
    def dead_letters() -> Generator[Deferred[Any], Any, None]:
        bus.startService()
        try:
            yield bus.when_connected(failAfterFailures=1)
            if args.action == "list":
                letters = yield bus.dead_letters(args.queue)
                print_dead_letters(letters, stdout, as_json=args.json)
            else:
                replay = yield bus.replay_dead_letters(args.queue, args.ids, wait=args.wait)
                print_replay(replay, args.queue, args.wait, stdout)
        finally:
            yield bus.stopService()

    try:
        in_reactor(lambda _: dead_letters())
    except Exception as e:
        raise CommandFailed(f"bus: {e}") from None


def _replay_wait(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number of seconds: {text!r}") from None
    if not 0 <= seconds <= 3600:
        raise argparse.ArgumentTypeError("--wait must be between 0 and 3600 seconds")
    return seconds


def print_replay(replay: Replay, queue: str, wait: float, stdout: TextIO) -> None:
    print(f"{replay.count} dead letters replayed to {queue}", file=stdout)
    if replay.failed_again:
        print(
            f"{len(replay.failed_again)} failed again within {wait:g} s"
            " (still dead letters; fix the cause first):",
            file=stdout,
        )
        for letter_id in replay.failed_again:
            print(f"  {letter_id}", file=stdout)


def print_dead_letters(letters: list[DeadLetter], stdout: TextIO, *, as_json: bool) -> None:
    if as_json:
        json.dump(
            [
                {
                    "id": letter.id,
                    "queue": letter.queue,
                    "routingKey": letter.routing_key,
                    "attempts": letter.attempts,
                    "reason": letter.reason,
                    "failedAt": letter.failed_at,
                    "envelope": letter.envelope.to_dict(),
                }
                for letter in letters
            ],
            stdout,
            indent=2,
        )
        stdout.write("\n")
        return
    for letter in letters:
        print(
            f"{letter.id}  {letter.failed_at}  attempts={letter.attempts}  "
            f"{letter.routing_key}  {letter.envelope.charge_point_id or '-'}  {letter.reason}",
            file=stdout,
        )
    print(f"{len(letters)} dead letters", file=stdout)


def main(
    argv: Sequence[str] | None = None, stdin: TextIO = sys.stdin, stdout: TextIO = sys.stdout
) -> int:
    args = build_parser().parse_args(argv)
    try:
        status = run(args, stdin, stdout)
    except (CommandFailed, ConfigError) as e:
        print(f"ocppctl: {e}", file=sys.stderr)
        return 1
    except AlreadyExists as e:
        print(f"ocppctl: already exists: {e}", file=sys.stderr)
        return 1
    except OSError as e:
        # e.g. the data directory cannot be created or read.
        print(f"ocppctl: {e}", file=sys.stderr)
        return 1
    except sa.exc.SQLAlchemyError as e:
        # Not the exception itself: its text carries the statement and its
        # parameters (a password hash, a charger key hash).
        print(f"ocppctl: database error: {describe_error(e)}", file=sys.stderr)
        return 1
    return status


if __name__ == "__main__":
    sys.exit(main())
