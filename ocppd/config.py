"""
The daemon's configuration: one attrs class per section of ``etc/ocppd.ini``.

Every option has a default here and appears, commented, in ``etc/ocppd.ini``.
Values come from the file, then from command-line overrides
(``--set section.option=value``); every value is validated at start-up and an
error names the option that is wrong.
"""

from __future__ import annotations

import configparser
import os
import socket
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from ocppd.bounds import INT32_MAX


class ConfigError(ValueError):
    """A configuration value is missing, unknown or invalid; the message names it."""


def _int_option(minimum: int, rule: str) -> Callable[[str], Callable[[str], int]]:
    """Converters for integer options of at least ``minimum`` (``rule`` says so in errors)."""

    def option(name: str) -> Callable[[str], int]:
        def convert(text: str) -> int:
            try:
                value = int(text)
            except ValueError:
                raise ConfigError(f"{name}: {text!r} is not an integer") from None
            if value < minimum:
                raise ConfigError(f"{name}: {rule}, got {value}")
            return value

        return convert

    return option


def _int_between(minimum: int, maximum: int) -> Callable[[str], Callable[[str], int]]:
    """Converters for integer options from ``minimum`` to ``maximum``, both included."""

    def option(name: str) -> Callable[[str], int]:
        def convert(text: str) -> int:
            value = _int_option(minimum, f"must be at least {minimum}")(name)(text)
            if value > maximum:
                raise ConfigError(f"{name}: must be at most {maximum}, got {value}")
            return value

        return convert

    return option


_non_negative_int = _int_option(0, "must not be negative")
#: Retention periods in days: at most a century, so a cut-off date
#: (``now - timedelta(days=...)``) is always a date (a larger one overflowed
#: in the pruning timer, after the start had succeeded).
MAX_KEEP_DAYS = 36_500
_keep_days = _int_between(0, MAX_KEEP_DAYS)
_positive_keep_days = _int_between(1, MAX_KEEP_DAYS)
_positive_int = _int_option(1, "must be positive")
#: A WebSocket opening handshake with Basic auth takes about 300 bytes.
_handshake_size = _int_option(1024, "must be at least 1024 bytes")
#: Renewed every third of it: shorter would make a slow database look like a dead node.
_liveness_timeout = _int_option(30, "must be at least 30 seconds")


def _positive_float(name: str) -> Callable[[str], float]:
    def convert(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise ConfigError(f"{name}: {text!r} is not a number") from None
        if not value > 0:
            raise ConfigError(f"{name}: must be positive, got {value}")
        return value

    return convert


def _seconds_at_least_one(name: str) -> Callable[[str], float]:
    # Autobahn's timers go through txaio's batched timer, which truncates
    # deadlines to whole seconds: a sub-second timeout could fire at once.
    def convert(text: str) -> float:
        value = _positive_float(name)(text)
        if value < 1:
            raise ConfigError(f"{name}: must be at least 1 second, got {value}")
        return value

    return convert


def _float_list(name: str) -> Callable[[str], tuple[float, ...]]:
    def convert(text: str) -> tuple[float, ...]:
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items:
            raise ConfigError(f"{name}: needs at least one delay")
        return tuple(_positive_float(name)(item) for item in items)

    return convert


def _choice(name: str, choices: Iterable[str]) -> Callable[[str], str]:
    allowed = tuple(choices)

    def convert(text: str) -> str:
        if text not in allowed:
            raise ConfigError(f"{name}: {text!r} is not one of {', '.join(allowed)}")
        return text

    return convert


def _boolean(name: str) -> Callable[[str], bool]:
    def convert(text: str) -> bool:
        lowered = text.strip().lower()
        if lowered in ("1", "yes", "true", "on"):
            return True
        if lowered in ("0", "no", "false", "off"):
            return False
        raise ConfigError(f"{name}: {text!r} is not a boolean")

    return convert


def _text(name: str) -> Callable[[str], str]:
    return lambda text: text.strip()


def _map_tiles(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        from ocppd.maptiles import tile_problem

        value = text.strip()
        problem = tile_problem(value)
        if problem is not None:
            raise ConfigError(f"{name}: {problem}")
        return value

    return convert


def _node_id(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        # Imported here like the store's checks: the rule lives with presence.
        from ocppd.presence.interface import check_node_id

        try:
            return check_node_id(text.strip())
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None

    return convert


def _default_node_id() -> str:
    """The host name, cut to what a node id may hold (it names keys and queues)."""
    host = socket.gethostname().split(".")[0]
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "._-") else "-" for c in host)
    return cleaned.lstrip("._-")[:63] or "ocppd"


#: What a node runs (docs/operations.md "Roles"): everything; the chargers' and
#: browsers' side without the durable queues' consumers; only those consumers.
ROLES = ("all", "edge", "processor")


@attrs.frozen
class DaemonConfig:
    """``[ocppd]``: identity of this node, what it runs and where it keeps its files."""

    node_id: str = attrs.field(factory=_default_node_id)
    data_dir: str = "var"
    role: str = "all"

    OPTIONS = {
        "node_id": _node_id,
        "data_dir": _text,
        "role": lambda name: _choice(name, ROLES),
    }


@attrs.frozen
class OcppConfig:
    """``[ocpp]``: the charger-facing WebSocket endpoint."""

    listen: str = "tcp:9000"
    #: "refuse": unknown charger ids get HTTP 404; "pending": they are registered
    #: as Pending and only BootNotification is served until an operator accepts them.
    unknown_chargers: str = "refuse"
    #: With unknown_chargers = pending: at most this many chargers wait as Pending;
    #: beyond it unknown chargers are refused (and a warning logged).
    max_pending_chargers: int = 100
    heartbeat_interval: int = 300
    #: Heartbeats in the message log (and its live view) too; see etc/ocppd.ini.
    log_heartbeats: bool = False
    ping_interval: float = 60.0
    ping_timeout: float = 30.0
    open_handshake_timeout: float = 10.0
    #: Bytes a client may send before its handshake is answered.
    max_handshake_size: int = 8192
    #: Accepted handshakes waiting for their answer at which the listener stops
    #: accepting connections until fewer wait (``ocppd.ocpp.accept_gate``).
    max_handshakes: int = 256
    max_message_size: int = 65536
    call_timeout: float = 30.0
    tag_cache_ttl: float = 60.0
    #: Seconds a successful charger login is remembered (0: never), the longest
    #: a key changed or a charger rejected on another node still admits it here.
    admission_cache_ttl: int = 30
    #: Seconds after which a charger whose node stopped renewing its liveness
    #: (the node died) is marked offline by any node's sweep (ocppd.ocpp.liveness).
    liveness_timeout: int = 180
    #: Seconds a charger's CALL may wait on the store or the bus before it is
    #: answered with an InternalError (the charger resends).
    answer_timeout: float = 10.0

    OPTIONS = {
        "listen": _text,
        "unknown_chargers": lambda name: _choice(name, ("refuse", "pending")),
        "max_pending_chargers": _positive_int,
        "heartbeat_interval": _positive_int,
        "log_heartbeats": _boolean,
        "ping_interval": _seconds_at_least_one,
        "ping_timeout": _seconds_at_least_one,
        "open_handshake_timeout": _seconds_at_least_one,
        "max_handshake_size": _handshake_size,
        "max_handshakes": _int_between(1, 100_000),
        "max_message_size": _positive_int,
        "call_timeout": _positive_float,
        "tag_cache_ttl": _positive_float,
        "admission_cache_ttl": _int_between(0, 300),
        "liveness_timeout": _liveness_timeout,
        "answer_timeout": _positive_float,
    }


def _network_list(name: str) -> Callable[[str], tuple[str, ...]]:
    def convert(text: str) -> tuple[str, ...]:
        from ocppd.proxies import parse_networks

        items = tuple(part.strip() for part in text.split(",") if part.strip())
        try:
            parse_networks(items)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None
        return items

    return convert


@attrs.frozen
class WebConfig:
    """``[web]``: the HTTP listener (REST API now; CMS, user panel and push later)."""

    listen: str = "tcp:8080"
    #: Largest accepted request body, bytes; a larger one gets 413.
    max_body_size: int = 1_048_576
    #: Seconds a sign-in token stays valid.
    token_ttl: int = 7 * 24 * 3600
    #: The front ends' folder (``cms/``, ``user/``, ``shared/``, npm's ``node_modules/``),
    #: relative to the working directory.
    webroot: str = "webroot"
    #: Seconds from a request's first byte (or the previous answer, on a
    #: keep-alive connection) to the end of its headers; then it is closed.
    header_timeout: float = 30.0
    #: Seconds a connection may stay silent (before a request, or within its body).
    idle_timeout: float = 60.0
    #: Proxies (addresses, CIDR blocks) whose ``X-Forwarded-For`` names the
    #: client, on both listeners (``ocppd.proxies``); empty: the socket's peer.
    trusted_proxies: tuple[str, ...] = ()
    #: The CMS map's tile server, a Leaflet URL template
    #: (``https://tile.example.org/{z}/{x}/{y}.png``); empty: no tiles, the
    #: stations on a plain background. Its host is allowed in the pages' img-src.
    map_tiles: str = ""
    #: The credit the tile server asks for, shown on the map (plain text).
    map_attribution: str = ""

    OPTIONS = {
        "listen": _text,
        "map_tiles": _map_tiles,
        "map_attribution": _text,
        "trusted_proxies": _network_list,
        "max_body_size": _positive_int,
        "token_ttl": _positive_int,
        "webroot": _text,
        "header_timeout": _positive_float,
        "idle_timeout": _positive_float,
    }


def _database_url(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        value = text.strip()
        if not value:
            return value
        # Imported here: reading the configuration (twistd --help) needs no SQLAlchemy.
        from ocppd.store.database import check_url

        try:
            check_url(value)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None
        return value

    return convert


@attrs.frozen
class StoreConfig:
    """``[store]``: the database."""

    #: Empty means SQLite in ``data_dir``; ``postgresql://...`` uses PostgreSQL.
    url: str = ""
    max_threads: int = 4
    #: Apply pending migrations at start-up (the embedded default wants this).
    auto_upgrade: bool = True
    #: Days consumers remember which bus messages they applied (the idempotency
    #: claims): far beyond any redelivery, then pruned hourly.
    keep_claims_days: int = 14
    #: Days the OCPP message log keeps frames, pruned hourly; 0 keeps them all.
    #: 30: a month of frames covers a billing period and the complaints about
    #: it, while the file stays bounded (docs/operations.md "Message log growth").
    keep_message_log_days: int = 30

    OPTIONS = {
        "url": _database_url,
        "max_threads": _positive_int,
        "auto_upgrade": _boolean,
        "keep_claims_days": _positive_keep_days,
        "keep_message_log_days": _keep_days,
    }


@attrs.frozen
class BusConfig:
    """``[bus]``: the message bus."""

    backend: str = "memory"
    url: str = "amqp://guest:guest@127.0.0.1:5672/%2F?heartbeat=15&blocked_connection_timeout=30"
    #: Prefix of every exchange and queue name on the broker.
    prefix: str = "ocppd"
    prefetch: int = 200
    quorum_queues: bool = False
    #: Seconds the daemon waits at start for the broker before taking chargers.
    connect_timeout: float = 10.0
    retry_delays: tuple[float, ...] = (1.0, 5.0, 30.0, 120.0)
    max_attempts: int = 5
    #: The embedded bus's flow control: a charger's answer waits while the
    #: processor has more than this many messages not yet taken (0: off).
    flow_limit: int = 5_000

    OPTIONS = {
        "backend": lambda name: _choice(name, ("memory", "amqp")),
        "url": _text,
        "prefix": _text,
        "prefetch": _positive_int,
        "quorum_queues": _boolean,
        "connect_timeout": _positive_float,
        "retry_delays": _float_list,
        "max_attempts": _positive_int,
        "flow_limit": _non_negative_int,
    }


def _redis_url(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        from ocppd.redis.address import parse_redis_url

        try:
            parse_redis_url(text)
        except ValueError as e:
            raise ConfigError(f"{name}: {e}") from None
        return text.strip()

    return convert


@attrs.frozen
class PresenceConfig:
    """``[presence]``: which node holds which charger (docs/presence.md)."""

    #: "memory": this process only (one node); "redis": shared by every node.
    backend: str = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    #: Seconds a node's claim on a charger lives unless renewed (every third of
    #: it): a node that dies loses its chargers within this.
    lease: float = 30.0
    #: Prefix of every Redis key and channel (one per installation).
    prefix: str = "ocppd"

    OPTIONS = {
        "backend": lambda name: _choice(name, ("memory", "redis")),
        "url": _redis_url,
        "lease": _seconds_at_least_one,
        "prefix": _node_id,
    }


def _currency(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        value = text.strip()
        if len(value) != 3 or not value.isascii() or not value.isalpha() or not value.isupper():
            raise ConfigError(f"{name}: {text!r} is not an ISO 4217 code such as EUR")
        return value

    return convert


#: Payment providers: "none" takes no payments (self-service top-up is off).
PAYMENT_PROVIDERS = ("none", "test", "stripe")


def _secret(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        value = text.strip()
        # It travels in HTTP headers and HMAC keys: printable ASCII, no spaces.
        if value and not (value.isascii() and value.isprintable() and " " not in value):
            raise ConfigError(f"{name}: printable ASCII without spaces only")
        return value

    return convert


def _https_url(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        value = text.strip()
        if value and not value.startswith(("https://", "http://")):
            raise ConfigError(f"{name}: {text!r} is not an http(s) URL")
        return value

    return convert


@attrs.frozen
class BillingConfig:
    """``[billing]``: customers' prepaid wallets and app-started sessions."""

    #: Currency of every customer wallet (tariffs in another currency are not debited).
    currency: str = "EUR"
    #: Minor units a wallet must hold (beyond what running sessions hold) to start charging.
    minimum_to_start: int = 500
    #: Largest single top-up, minor units.
    max_top_up: int = 50_000
    #: Stop an app-started session this many minor units before its hold runs out,
    #: for the cost that accrues while the remote stop travels to the charger.
    stop_margin: int = 0
    #: Payment provider for top-ups: "none" (top-up off until a provider is
    #: configured), "stripe" (Stripe Checkout; the wallet is credited by its
    #: signed webhook, docs/payments.md) or "test" (approves every payment:
    #: demos and tests only, and warned about at every start).
    payment_provider: str = "none"
    #: Stripe's secret API key (``sk_...`` or a restricted ``rk_...``) and the
    #: webhook endpoint's signing secret (``whsec_...``); never logged.
    stripe_secret_key: str = attrs.field(default="", repr=False)
    stripe_webhook_secret: str = attrs.field(default="", repr=False)
    #: Where Stripe's API is (tests point it at a local fake).
    stripe_api_url: str = "https://api.stripe.com"
    #: Seconds a webhook's signed timestamp may differ from our clock (replay window).
    stripe_webhook_tolerance: int = 300
    #: The page Stripe Checkout sends the customer back to, paid or not
    #: (the customer panel's wallet: https://HOST/user/#/wallet).
    checkout_return_url: str = ""
    #: VAT included in every price, in basis points (1900 = 19 %); receipts
    #: show it (ocppd.billing.receipt states the rounding). 0: no VAT line.
    vat_rate: int = 0
    #: Who issues the receipts (name, address, VAT number), printed at their top.
    receipt_issuer: str = ""
    #: Seconds the funds an app start holds stay held while the charger, having
    #: accepted RemoteStartTransaction, sends no StartTransaction (the idea of
    #: OCPP's ConnectionTimeOut); then they are released.
    start_timeout: int = 180
    #: A stopped session beyond any of these is held for operator review
    #: instead of debited: seconds, Wh, and minor units of its cost.
    max_session_seconds: int = 48 * 3600
    max_session_wh: int = 300_000
    max_session_cost: int = 30_000
    #: Seconds a charger's clock may be ahead of ours (a start or stop time after
    #: we received it), or a start may precede the charger's registration, before
    #: the session is held for review.
    clock_tolerance: int = 900
    #: Minor units no debit takes a wallet below without an operator's decision
    #: (a debit that would is held for review); negative allows credit.
    wallet_floor: int = 0

    OPTIONS = {
        "currency": _currency,
        # Money options fit the store's integer columns of minor units.
        "minimum_to_start": _int_between(0, INT32_MAX),
        "max_top_up": _int_between(1, INT32_MAX),
        "stop_margin": _int_between(0, INT32_MAX),
        "payment_provider": lambda name: _choice(name, PAYMENT_PROVIDERS),
        "stripe_secret_key": _secret,
        "stripe_webhook_secret": _secret,
        "stripe_api_url": _https_url,
        "stripe_webhook_tolerance": _int_between(1, 3600),
        "checkout_return_url": _https_url,
        "vat_rate": _int_between(0, 10_000),
        "receipt_issuer": _text,
        "start_timeout": _int_between(30, 86_400),
        "max_session_seconds": _int_between(60, 366 * 86_400),
        "max_session_wh": _int_between(1, 10**9),
        "max_session_cost": _int_between(1, INT32_MAX),
        "clock_tolerance": _int_between(0, 366 * 86_400),
        "wallet_floor": _int_between(-INT32_MAX, INT32_MAX),
    }

    def __attrs_post_init__(self) -> None:
        if self.payment_provider == "stripe":
            for option in ("stripe_secret_key", "stripe_webhook_secret", "checkout_return_url"):
                if not getattr(self, option):
                    raise ConfigError(
                        f"billing.{option} is required with payment_provider = stripe"
                    )


def _origin_list(name: str) -> Callable[[str], tuple[str, ...]]:
    def convert(text: str) -> tuple[str, ...]:
        origins = tuple(part.strip() for part in text.split(",") if part.strip())
        for origin in origins:
            if origin != "*" and "://" not in origin:
                raise ConfigError(f"{name}: {origin!r} is not an origin like https://host[:port]")
        return origins

    return convert


@attrs.frozen
class PushConfig:
    """``[push]``: the WAMP channel for browsers at ``/push`` on the web listener."""

    #: Pages allowed to connect; empty: pages of the host the browser connected to.
    allowed_origins: tuple[str, ...] = ()
    #: Largest accepted WebSocket frame and message from a browser, bytes.
    max_message_size: int = 65536
    #: Bytes a browser that stopped reading may leave unsent beyond the socket
    #: buffer before it is disconnected.
    max_buffer: int = 1_048_576
    max_subscriptions: int = 32
    #: Seconds from the WebSocket opening to the end of the WAMP authentication.
    hello_timeout: float = 10.0
    ping_interval: float = 30.0
    ping_timeout: float = 15.0
    open_handshake_timeout: float = 10.0

    OPTIONS = {
        "allowed_origins": _origin_list,
        "max_message_size": _positive_int,
        "max_buffer": _positive_int,
        "max_subscriptions": _positive_int,
        "hello_timeout": _seconds_at_least_one,
        "ping_interval": _seconds_at_least_one,
        "ping_timeout": _seconds_at_least_one,
        "open_handshake_timeout": _seconds_at_least_one,
    }


@attrs.frozen
class LogConfig:
    """``[log]``: the daemon's log lines (``ocppd.logformat``)."""

    #: "text": Twisted's classic lines; "json": one JSON object per line.
    format: str = "text"

    OPTIONS = {"format": lambda name: _choice(name, ("text", "json"))}


def _http_url(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        value = text.strip()
        if value and not value.lower().startswith(("http://", "https://")):
            raise ConfigError(f"{name}: {value!r} is not an http:// or https:// URL")
        return value

    return convert


def _address_list(name: str) -> Callable[[str], tuple[str, ...]]:
    def convert(text: str) -> tuple[str, ...]:
        addresses = tuple(part.strip() for part in text.split(",") if part.strip())
        for address in addresses:
            if "@" not in address or any(c.isspace() or ord(c) < 0x20 for c in address):
                raise ConfigError(f"{name}: {address!r} is not an e-mail address")
        return addresses

    return convert


def _address(name: str) -> Callable[[str], str]:
    def convert(text: str) -> str:
        addresses = _address_list(name)(text)
        if len(addresses) != 1:
            raise ConfigError(f"{name}: one e-mail address, got {text!r}")
        return addresses[0]

    return convert


@attrs.frozen
class AlertsConfig:
    """``[alerts]``: conditions an operator is told of, and how (``ocppd.alerts``)."""

    #: Seconds between two evaluations of the rules.
    interval: int = 60
    #: A registered charger offline for more than this many minutes; 0: no rule.
    offline_minutes: int = 15
    #: A connector whose last StatusNotification said Faulted.
    faulted: bool = True
    #: A session open for more than this many hours; 0: no rule.
    session_hours: int = 24
    #: Dead letters present in a queue.
    dead_letters: bool = True
    #: The oldest unprocessed message of a queue older than this many seconds; 0: no rule.
    lag_seconds: int = 300
    #: Raised and resolved alerts are POSTed here as JSON (empty: no webhook).
    webhook_url: str = ""
    #: The HMAC-SHA256 key of the webhook's signature header (required with a URL).
    webhook_secret: str = ""
    webhook_timeout: float = 10.0
    #: Alerts are mailed through this SMTP server (empty: no e-mail).
    smtp_host: str = ""
    smtp_port: int = 25
    #: Refuse to send unless the server offers STARTTLS (else used when offered).
    smtp_starttls: bool = False
    smtp_username: str = ""
    smtp_password: str = ""
    mail_from: str = "ocppd@localhost"
    mail_to: tuple[str, ...] = ()
    #: Seconds before the first retry of a failed delivery; doubled at each next one.
    retry_delay: float = 5.0
    #: Tries of one delivery (the first included) before it is given up and logged.
    max_attempts: int = 8

    OPTIONS = {
        "interval": _int_between(5, 86_400),
        "offline_minutes": _int_between(0, 525_600),
        "faulted": _boolean,
        "session_hours": _int_between(0, 8_784),
        "dead_letters": _boolean,
        "lag_seconds": _int_between(0, 86_400),
        "webhook_url": _http_url,
        "webhook_secret": _text,
        "webhook_timeout": _positive_float,
        "smtp_host": _text,
        "smtp_port": _int_between(1, 65_535),
        "smtp_starttls": _boolean,
        "smtp_username": _text,
        "smtp_password": _text,
        "mail_from": _address,
        "mail_to": _address_list,
        "retry_delay": _positive_float,
        "max_attempts": _int_between(1, 100),
    }

    def __attrs_post_init__(self) -> None:
        if self.webhook_url and len(self.webhook_secret) < 16:
            raise ConfigError(
                "alerts.webhook_secret: a webhook needs a secret of at least 16 characters"
            )
        if self.smtp_host and not self.mail_to:
            raise ConfigError("alerts.mail_to: an SMTP server needs at least one recipient")


@attrs.frozen
class MetricsConfig:
    """``[metrics]``: Prometheus metrics on a listener of their own (``ocppd.metrics``)."""

    #: Endpoint of the ``GET /metrics`` listener; empty: no metrics (the default).
    listen: str = ""

    OPTIONS = {"listen": _text}


@attrs.frozen
class FilesConfig:
    """
    ``[files]``: files chargers transfer over the web listener: diagnostics
    they upload (GetDiagnostics) and firmware they download (UpdateFirmware).
    """

    #: The web listener's address as chargers reach it (``https://cms.example.com``):
    #: a GetDiagnostics sent without a location gets an upload URL under it.
    #: Empty: a location must be given.
    public_url: str = ""
    #: Where uploaded diagnostics are kept; empty: ``<data_dir>/diagnostics``.
    #: Several nodes need one shared folder (any node may take an upload).
    diagnostics_dir: str = ""
    #: Largest diagnostics upload, bytes; a larger one gets 413.
    max_diagnostics_size: int = 50 * 1024 * 1024
    #: Seconds an upload URL stays valid.
    upload_ttl: int = 24 * 3600
    #: Days a received diagnostics file is kept (then deleted, with its row); 0: no age limit.
    diagnostics_keep_days: int = 30
    #: Most bytes all kept diagnostics files may take: beyond, the oldest are deleted
    #: first. 0: no limit.
    max_diagnostics_total: int = 2 * 1024 * 1024 * 1024
    #: Firmware files served at ``/firmware/<name>`` for UpdateFirmware; empty: none.
    firmware_dir: str = ""

    OPTIONS = {
        "public_url": _http_url,
        "diagnostics_dir": _text,
        "max_diagnostics_size": _positive_int,
        "upload_ttl": _positive_int,
        "diagnostics_keep_days": _keep_days,
        "max_diagnostics_total": _non_negative_int,
        "firmware_dir": _text,
    }


@attrs.frozen
class ReportsConfig:
    """``[reports]``: the history the operators' reports read."""

    #: Days a charger's connections are kept after they ended (offline time and
    #: outages per charger, the point page's connection history), pruned
    #: hourly; 0 keeps them all. 400: a year's report with a month to spare.
    connection_history_days: int = 400

    OPTIONS = {"connection_history_days": _keep_days}


SECTIONS: dict[str, type] = {
    "ocppd": DaemonConfig,
    "ocpp": OcppConfig,
    "web": WebConfig,
    "store": StoreConfig,
    "bus": BusConfig,
    "presence": PresenceConfig,
    "billing": BillingConfig,
    "push": PushConfig,
    "log": LogConfig,
    "alerts": AlertsConfig,
    "metrics": MetricsConfig,
    "files": FilesConfig,
    "reports": ReportsConfig,
}


@attrs.frozen
class Config:
    """The whole configuration, one attribute per section."""

    ocppd: DaemonConfig = attrs.field(factory=DaemonConfig)
    ocpp: OcppConfig = attrs.field(factory=OcppConfig)
    web: WebConfig = attrs.field(factory=WebConfig)
    store: StoreConfig = attrs.field(factory=StoreConfig)
    bus: BusConfig = attrs.field(factory=BusConfig)
    presence: PresenceConfig = attrs.field(factory=PresenceConfig)
    billing: BillingConfig = attrs.field(factory=BillingConfig)
    push: PushConfig = attrs.field(factory=PushConfig)
    log: LogConfig = attrs.field(factory=LogConfig)
    alerts: AlertsConfig = attrs.field(factory=AlertsConfig)
    metrics: MetricsConfig = attrs.field(factory=MetricsConfig)
    files: FilesConfig = attrs.field(factory=FilesConfig)
    reports: ReportsConfig = attrs.field(factory=ReportsConfig)
    #: The file the configuration was read from, for resolving relative paths.
    path: str | None = None

    @property
    def data_dir(self) -> str:
        """``data_dir`` resolved against the directory the daemon runs in."""
        return os.path.abspath(self.ocppd.data_dir)

    @property
    def store_url(self) -> str:
        """The SQLAlchemy URL of the store; SQLite in ``data_dir`` by default."""
        if self.store.url:
            return self.store.url
        # Imported here: reading the configuration (twistd --help) needs no SQLAlchemy.
        from ocppd.store.database import default_sqlite_url

        return default_sqlite_url(self.data_dir)

    @property
    def diagnostics_dir(self) -> str:
        """Where diagnostics uploads are kept, absolute."""
        return os.path.abspath(
            self.files.diagnostics_dir or os.path.join(self.data_dir, "diagnostics")
        )


def check_listeners(config: Config) -> None:
    """
    Raise ConfigError naming the first listener whose endpoint string cannot
    work (``tcp:notaport``, an unknown type, a missing certificate file).

    Parsing builds the endpoint without opening it. Only the daemon checks:
    ``ocppctl`` reads the same file without the sockets systemd hands the daemon.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    for name, description in (
        ("ocpp.listen", config.ocpp.listen),
        ("web.listen", config.web.listen),
        ("metrics.listen", config.metrics.listen),
    ):
        if not description and name == "metrics.listen":
            continue  # off
        try:
            serverFromString(reactor, description)
        except (
            Exception
        ) as e:  # each endpoint type fails its own way: ValueError, KeyError, OSError
            raise ConfigError(f"{name}: {description!r} is not a usable endpoint: {e}") from None


def parse_override(text: str) -> tuple[str, str, str]:
    """Split ``section.option=value`` into its three parts."""
    key, sep, value = text.partition("=")
    section, dot, option = key.strip().partition(".")
    if not sep or not dot or not section or not option:
        raise ConfigError(f"override {text!r} is not of the form section.option=value")
    return section, option, value


def load_config(path: str | None = None, overrides: Iterable[str] = ()) -> Config:
    """
    Read ``path`` (if given) and apply ``overrides``; raise ConfigError naming
    the first unknown section/option or invalid value.
    """
    raw: dict[str, dict[str, str]] = {name: {} for name in SECTIONS}
    if path is not None:
        parser = configparser.ConfigParser(interpolation=None)
        try:
            with open(path, encoding="utf-8") as f:
                parser.read_file(f)
        except OSError as e:
            raise ConfigError(f"cannot read configuration {path}: {e.strerror}") from e
        except configparser.Error as e:
            raise ConfigError(f"{path}: {e}") from e
        for section in parser.sections():
            for option, value in parser.items(section):
                raw.setdefault(section, {})[option] = value
    for override in overrides:
        section, option, value = parse_override(override)
        raw.setdefault(section, {})[option] = value

    sections: dict[str, Any] = {}
    for section, values in raw.items():
        cls = SECTIONS.get(section)
        if cls is None:
            raise ConfigError(f"unknown section [{section}]")
        kwargs = {}
        for option, value in values.items():
            factory = cls.OPTIONS.get(option)  # type: ignore[attr-defined]
            if factory is None:
                raise ConfigError(f"unknown option {section}.{option}")
            kwargs[option] = factory(f"{section}.{option}")(value)
        sections[section] = cls(**kwargs)
    return Config(path=path, **sections)
