"""
A node whose start fails: ``when_started`` fails with one line saying what and
why, and nothing is left listening. (``tests/integration/test_twistd.py`` shows
the same ends the twistd process with exit status 1.)
"""

from __future__ import annotations

import os
import socket
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.trial.unittest import TestCase

from ocppd.consumers.processor import OcppProcessor
from ocppd.service import OcppdService, StartupError
from ocppd.store import migrate
from tests.integration.daemon import held_port, start_service


class StartFailureTests(TestCase):
    timeout = 30

    @inlineCallbacks
    def failed_start(self, *overrides: str) -> Any:
        """Start a node that must fail; return the service and the failure's one line."""
        # No database: each start here fails on its own, before or at the store.
        self.service, _ = start_service(self, *overrides, migrated=False)
        error = yield self.assertFailure(self.service.when_started(), StartupError)
        self.assertEqual(len(str(error).splitlines()), 1, str(error))
        self.assertNothingListens(self.service)
        return str(error)

    def assertNothingListens(self, service: OcppdService) -> None:
        node = service.ocppd
        self.assertEqual((service.web_port, service.ocpp_port), (None, None))
        ours = [
            reader
            for reader in reactor.getReaders()  # type: ignore[attr-defined]
            if getattr(reader, "factory", None) in (node.web_site, node.ocpp_factory)
        ]
        self.assertEqual(ours, [])

    @inlineCallbacks
    def assert_busy_port_refused(self, option: str, purpose: str) -> Any:
        """Listening on a port this test holds fails with a line naming the listener and why."""
        listen = f"tcp:{held_port(self)}:interface=127.0.0.1"
        line = yield self.failed_start(f"{option}={listen}")
        self.assertEqual(line, f"cannot listen on {listen} for {purpose}: address already in use")

    def test_busy_ocpp_port(self) -> Any:
        """The OCPP port is taken: refused; the web listener, opened first, is closed too."""
        return self.assert_busy_port_refused("ocpp.listen", "OCPP")

    def test_busy_web_port(self) -> Any:
        """The web port is taken: refused before any charger could connect."""
        return self.assert_busy_port_refused("web.listen", "the web")

    @inlineCallbacks
    def test_missing_database_not_created(self) -> Any:
        """auto_upgrade off and no database: refused, naming the file and the command."""
        line = yield self.failed_start("store.auto_upgrade=false")
        path = os.path.join(self.service.ocppd.config.data_dir, "ocppd.sqlite3")
        self.assertEqual(line, f"no database at {path}: run `ocppctl db upgrade`")
        self.assertFalse(os.path.exists(path))

    @inlineCallbacks
    def test_database_behind_refused(self) -> Any:
        """auto_upgrade off and a database at an older revision: refused, and left as it was."""
        data_dir = os.path.abspath(self.mktemp())
        url = f"sqlite:///{data_dir}/ocppd.sqlite3"
        migrate.upgrade(url, revision="0001")
        line = yield self.failed_start("store.auto_upgrade=false", f"ocppd.data_dir={data_dir}")
        self.assertIn("is at revision 0001; this version of ocppd needs", line)
        self.assertTrue(line.endswith("run `ocppctl db upgrade`"), line)
        self.assertEqual(migrate.current_revision(self.service.ocppd.database.engine), "0001")

    @inlineCallbacks
    def test_database_unreachable(self) -> Any:
        """PostgreSQL not answering: the line names the server (not the password) and why."""
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            closed = sock.getsockname()[1]  # nothing listens here once the socket is closed
        line = yield self.failed_start(f"store.url=postgresql://ocppd:s3cret@127.0.0.1:{closed}/x")
        where = f"postgresql+psycopg://ocppd:***@127.0.0.1:{closed}/x"
        self.assertTrue(
            line.startswith(f"cannot use the database {where}: OperationalError: "), line
        )
        self.assertNotIn("s3cret", line)

    @inlineCallbacks
    def test_edge_on_the_embedded_bus(self) -> Any:
        """An edge without RabbitMQ: refused before anything starts (no processor could see it)."""
        line = yield self.failed_start("ocppd.role=edge")
        self.assertEqual(
            line,
            "[ocppd] role = edge needs [bus] backend = amqp: the embedded bus does not leave"
            " its process, so what an edge publishes would never reach a processor",
        )
        self.assertFalse(any(child.running for child in self.service.children))
        path = os.path.join(self.service.ocppd.config.data_dir, "ocppd.sqlite3")
        self.assertFalse(os.path.exists(path))

    @inlineCallbacks
    def test_processor_on_the_embedded_bus(self) -> Any:
        """A processor without RabbitMQ: refused the same way, nothing started."""
        line = yield self.failed_start("ocppd.role=processor")
        self.assertTrue(line.startswith("[ocppd] role = processor needs [bus] backend = amqp"))
        self.assertFalse(any(child.running for child in self.service.children))
        path = os.path.join(self.service.ocppd.config.data_dir, "ocppd.sqlite3")
        self.assertFalse(os.path.exists(path))

    @inlineCallbacks
    def test_unexpected_error_fails_the_start(self) -> Any:
        """A fault nobody foresaw fails the start too, nothing listens, its traceback is logged."""

        def broken(processor: OcppProcessor, queue: str) -> Any:
            raise RuntimeError("no consumer today")

        self.patch(OcppProcessor, "start", broken)
        service, _ = start_service(self)
        yield self.assertFailure(service.when_started(), RuntimeError)
        self.assertNothingListens(service)
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 1)
