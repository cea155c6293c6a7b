"""Tests for ocppd.config."""

from __future__ import annotations

import configparser
import os
import re

from twisted.trial.unittest import SynchronousTestCase

from ocppd.config import (
    MAX_KEEP_DAYS,
    SECTIONS,
    Config,
    ConfigError,
    check_listeners,
    load_config,
)

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
INI = os.path.join(ROOT, "etc", "ocppd.ini")


class LoadConfigTests(SynchronousTestCase):
    def write(self, text: str) -> str:
        path = self.mktemp()
        with open(path, "w") as f:
            f.write(text)
        return path

    def test_defaults_without_file(self) -> None:
        """Without a file every option has its default: embedded store and bus, port 9000."""
        config = load_config()
        self.assertEqual(config.ocpp.listen, "tcp:9000")
        self.assertEqual(config.bus.backend, "memory")
        self.assertTrue(config.store_url.startswith("sqlite:///"))
        self.assertTrue(config.store_url.endswith(os.path.join("var", "ocppd.sqlite3")))

    def test_presence(self) -> None:
        """Presence is embedded by default; a Redis URL and lease are taken as given."""
        self.assertEqual(load_config().presence.backend, "memory")
        config = load_config(
            None,
            [
                "presence.backend=redis",
                "presence.url=redis://cache:6380/2",
                "presence.lease=10",
                "ocppd.node_id=node-2.eu_west",
            ],
        )
        self.assertEqual(config.presence.url, "redis://cache:6380/2")
        self.assertEqual(config.presence.lease, 10.0)
        self.assertEqual(config.ocppd.node_id, "node-2.eu_west")

    def test_default_node_id_is_valid(self) -> None:
        from ocppd.presence.interface import check_node_id

        check_node_id(Config().ocppd.node_id)

    def test_file_then_overrides(self) -> None:
        """Command-line overrides win over the file."""
        path = self.write("[ocpp]\nlisten = tcp:9100\nheartbeat_interval = 60\n")
        self.assertFalse(load_config(path, []).ocpp.log_heartbeats)
        config = load_config(
            path, ["ocpp.listen=tcp:9200", "bus.retry_delays=0.5, 2", "ocpp.log_heartbeats=yes"]
        )
        self.assertEqual(config.ocpp.listen, "tcp:9200")
        self.assertEqual(config.ocpp.heartbeat_interval, 60)
        self.assertTrue(config.ocpp.log_heartbeats)
        self.assertEqual(config.bus.retry_delays, (0.5, 2.0))
        self.assertEqual(config.bus.flow_limit, 5000)
        self.assertEqual(load_config(path, ["bus.flow_limit=0"]).bus.flow_limit, 0)

    def test_errors_name_the_option(self) -> None:
        """Every invalid value is refused with a message naming section.option."""
        cases = [
            (["ocpp.heartbeat_interval=soon"], "ocpp.heartbeat_interval"),
            (["ocpp.heartbeat_interval=0"], "ocpp.heartbeat_interval"),
            (["ocpp.ping_timeout=0.5"], "ocpp.ping_timeout"),
            (["ocpp.unknown_chargers=maybe"], "ocpp.unknown_chargers"),
            (["store.auto_upgrade=perhaps"], "store.auto_upgrade"),
            (["ocpp.log_heartbeats=often"], "ocpp.log_heartbeats"),
            (["store.keep_message_log_days=-1"], "store.keep_message_log_days"),
            (["ocpp.max_handshake_size=512"], "ocpp.max_handshake_size"),
            (["ocpp.max_pending_chargers=0"], "ocpp.max_pending_chargers"),
            (["bus.retry_delays=1,-2"], "bus.retry_delays"),
            (["bus.flow_limit=-1"], "bus.flow_limit"),
            (["bus.flow_limit=many"], "bus.flow_limit"),
            (["ocpp.nonsense=1"], "ocpp.nonsense"),
            (["nowhere.listen=1"], "nowhere"),
            (["no-equals-sign"], "no-equals-sign"),
            (["store.url=mysql://u@db/ocppd"], "store.url"),
            (["ocppd.node_id=a b"], "ocppd.node_id"),
            (["ocppd.node_id="], "ocppd.node_id"),
            (["ocppd.node_id=node:1"], "ocppd.node_id"),
            (["presence.backend=etcd"], "presence.backend"),
            (["presence.url=http://127.0.0.1:6379/0"], "presence.url"),
            (["presence.url=redis://127.0.0.1:6379/9999"], "presence.url"),
            (["presence.lease=0.5"], "presence.lease"),
            (["presence.prefix=a b"], "presence.prefix"),
            (["store.url=not a url"], "store.url"),
        ]
        for overrides, name in cases:
            with self.assertRaises(ConfigError) as caught:
                load_config(None, overrides)
            self.assertIn(name, str(caught.exception))

    def test_listeners_checked(self) -> None:
        """An endpoint string that cannot listen is an error naming its option; nothing opens."""
        check_listeners(load_config(None, ["ocpp.listen=tcp:0", "web.listen=unix:x.sock"]))
        self.assertFalse(os.path.exists("x.sock"))
        cases = [
            ("ocpp.listen=tcp:notaport", "ocpp.listen"),
            ("web.listen=nonsense:8080", "web.listen"),
            ("ocpp.listen=tcp:9000:colour=blue", "ocpp.listen"),
            ("web.listen=ssl:8443:privateKey=/nonexistent.pem", "web.listen"),
            ("metrics.listen=tcp:notaport", "metrics.listen"),
        ]
        for override, name in cases:
            config = load_config(None, [override])  # loading alone does not parse listeners
            with self.assertRaises(ConfigError) as caught:
                check_listeners(config)
            self.assertIn(f"{name}: {override.partition('=')[2]!r}", str(caught.exception))

    def test_metrics_off_unless_listened_for(self) -> None:
        """``[metrics] listen`` is empty (off) by default, and then not checked as an endpoint."""
        self.assertEqual(load_config().metrics.listen, "")
        check_listeners(load_config())
        on = load_config(None, ["metrics.listen= tcp:9100:interface=127.0.0.1 "])
        self.assertEqual(on.metrics.listen, "tcp:9100:interface=127.0.0.1")
        check_listeners(on)

    def test_billing_defaults_take_no_money(self) -> None:
        """No payment provider by default (no top-ups); "test" only when chosen."""
        self.assertEqual(load_config().billing.payment_provider, "none")
        chosen = load_config(None, ["billing.payment_provider=test"])
        self.assertEqual(chosen.billing.payment_provider, "test")
        with self.assertRaises(ConfigError) as caught:
            load_config(None, ["billing.payment_provider=stripe"])
        self.assertIn("billing.stripe_secret_key is required", str(caught.exception))

    def test_stripe_settings(self) -> None:
        """Stripe needs its key, webhook secret and return page; secrets stay out of repr."""
        stripe = [
            "billing.payment_provider=stripe",
            "billing.stripe_secret_key=sk_test_abc",
            "billing.stripe_webhook_secret=whsec_abc",
            "billing.checkout_return_url=https://charge.example.com/user/#/wallet",
        ]
        billing = load_config(None, stripe).billing
        self.assertEqual(billing.stripe_secret_key, "sk_test_abc")
        self.assertNotIn("sk_test_abc", repr(billing))
        self.assertNotIn("whsec_abc", repr(billing))
        for missing in stripe[1:]:
            with self.assertRaises(ConfigError):
                load_config(None, [s for s in stripe if s != missing])
        for bad in ("billing.stripe_secret_key=sk test", "billing.checkout_return_url=/wallet"):
            with self.assertRaises(ConfigError):
                load_config(None, [*stripe, bad])

    def test_billing_bounds(self) -> None:
        """Every billing bound is an integer within its range; the message names it."""
        for option, bad in [
            ("start_timeout", "29"),
            ("start_timeout", "86401"),
            ("max_session_seconds", "1e9"),
            ("max_session_seconds", str(367 * 86400)),
            ("max_session_wh", "0"),
            ("max_session_cost", str(2**31)),
            ("clock_tolerance", "-1"),
            ("wallet_floor", str(-(2**31))),
            ("wallet_floor", "ten"),
            ("minimum_to_start", str(2**31)),
            ("max_top_up", str(2**31)),
            ("stop_margin", str(2**31)),
        ]:
            with self.assertRaises(ConfigError) as caught:
                load_config(None, [f"billing.{option}={bad}"])
            self.assertIn(f"billing.{option}", str(caught.exception))
        self.assertEqual(
            load_config(None, ["billing.wallet_floor=-500"]).billing.wallet_floor, -500
        )

    def test_retention_bounds(self) -> None:
        """
        A retention period is at most a century (a larger one overflowed the
        pruning timer's cut-off date after a successful start): the start
        refuses it, naming the option; a century loads.
        """
        for option in (
            "store.keep_claims_days",
            "store.keep_message_log_days",
            "files.diagnostics_keep_days",
            "reports.connection_history_days",
        ):
            with self.assertRaises(ConfigError) as caught:
                load_config(None, [f"{option}={MAX_KEEP_DAYS + 1}"])
            self.assertIn(option, str(caught.exception))
            section, name = option.split(".")
            loaded = load_config(None, [f"{option}={MAX_KEEP_DAYS}"])
            self.assertEqual(getattr(getattr(loaded, section), name), MAX_KEEP_DAYS)

    def test_unreadable_file(self) -> None:
        """A missing file is a ConfigError naming it, not a traceback."""
        with self.assertRaises(ConfigError) as caught:
            load_config("/nonexistent/ocppd.ini")
        self.assertIn("/nonexistent/ocppd.ini", str(caught.exception))

    def test_postgres_url(self) -> None:
        """A store url replaces the SQLite default."""
        config = load_config(None, ["store.url=postgresql://u@db/ocppd"])
        self.assertEqual(config.store_url, "postgresql://u@db/ocppd")


class ShippedIniTests(SynchronousTestCase):
    def test_every_option_documented_with_its_default(self) -> None:
        """etc/ocppd.ini shows every option, commented, with the default the code uses."""
        with open(INI) as f:
            text = f.read()
        uncommented = "\n".join(
            line[2:] if re.match(r"^# \w+ =", line) else line for line in text.splitlines()
        )
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string(uncommented)
        defaults = Config()
        for section, cls in SECTIONS.items():
            for option in cls.OPTIONS:
                self.assertTrue(parser.has_option(section, option), f"{section}.{option} missing")
                shown = parser.get(section, option)
                if option == "node_id":
                    continue
                parsed = load_config(None, [f"{section}.{option}={shown}"]) if shown else defaults
                self.assertEqual(
                    getattr(getattr(parsed, section), option),
                    getattr(getattr(defaults, section), option),
                    f"{section}.{option}",
                )

    def test_shipped_ini_loads(self) -> None:
        """The shipped file itself loads (all commented: the defaults)."""
        self.assertEqual(load_config(INI).ocpp, Config().ocpp)


class NodeExampleTests(SynchronousTestCase):
    def test_scale_out_example_loads(self) -> None:
        """etc/ocppd-node.ini.example is a valid configuration for a node on the three services."""
        config = load_config(os.path.join(ROOT, "etc", "ocppd-node.ini.example"))
        self.assertEqual(
            (config.ocppd.node_id, config.bus.backend, config.presence.backend),
            ("ocppd-1", "amqp", "redis"),
        )
        self.assertTrue(config.store.url.startswith("postgresql://"))
        self.assertFalse(config.store.auto_upgrade)
        self.assertEqual(config.metrics.listen, "tcp:9100:interface=127.0.0.1")
