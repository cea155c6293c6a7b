"""
The bus topology: every exchange, queue, binding and routing key of ocppd.

This is the one place where they are defined. Both bus implementations read a
:class:`Topology`: the embedded bus routes with it in memory, the RabbitMQ bus
declares it on the broker. Nothing else in ocppd spells an exchange or queue
name.

Naming:

- Exchanges are topic exchanges named ``<prefix>.<kind>``, for example
  ``ocppd.ocpp``. A routing key's first word decides its exchange
  (:data:`EXCHANGE_BY_FIRST_WORD`), so publishers only ever give a routing key.
- Queues have a short *logical* name (``processor``), which is what code and
  the ``IBus`` API use (``consume``, ``Delivery.queue``, ``dead_letters``); on
  the broker the queue is ``<prefix>.<name>`` (:meth:`Topology.queue_full_name`).
  The prefix keeps test runs and several deployments on one broker apart.
- Routing keys are dot-separated words; bindings use AMQP topic patterns
  (``*`` one word, ``#`` zero or more words, see :func:`topic_matches`).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from functools import lru_cache

import attrs

DEFAULT_PREFIX = "ocppd"

# Exchange kinds: the part of an exchange name after the prefix.
OCPP_EXCHANGE = "ocpp"
EVENTS_EXCHANGE = "events"
COMMANDS_EXCHANGE = "commands"
AUDIT_EXCHANGE = "audit"

#: Which exchange kind carries a routing key, by the key's first word.
EXCHANGE_BY_FIRST_WORD: dict[str, str] = {
    # OCPP traffic, see the ocpp_* helpers below.
    "ocpp": OCPP_EXCHANGE,
    # Domain events.
    "charger": EVENTS_EXCHANGE,
    "session": EVENTS_EXCHANGE,
    "charging": EVENTS_EXCHANGE,
    "wallet": EVENTS_EXCHANGE,
    "cms": EVENTS_EXCHANGE,
    # Charger commands issued through the REST API (for the audit trail).
    "command": COMMANDS_EXCHANGE,
    # Anything else worth an audit record.
    "audit": AUDIT_EXCHANGE,
}

# --- Routing keys -----------------------------------------------------------

#: Malformed input from a charger that we answered with a CALLERROR.
OCPP_REJECTED = "ocpp.rejected"
CHARGER_CONNECTED = "charger.connected"
CHARGER_DISCONNECTED = "charger.disconnected"


def _action_key(direction: str, action: str) -> str:
    # An action is one word (e.g. "StartTransaction"); a dot or wildcard in it
    # would silently change which bindings match, so refuse it here.
    if not action or "." in action or "*" in action or "#" in action:
        raise ValueError(f"invalid OCPP action {action!r}")
    return f"ocpp.{direction}.{action}"


#: ``ocpp_in``'s keys made so far (the charger-initiated actions: ten), by action:
#: every inbound message asks for one.
_INBOUND_KEYS: dict[str, str] = {}


def ocpp_in(action: str) -> str:
    """Routing key of an inbound CALL from a charger, published with our answer."""
    key = _INBOUND_KEYS.get(action)
    if key is None:
        key = _action_key("in", action)
        if len(_INBOUND_KEYS) < 64:
            _INBOUND_KEYS[action] = key
    return key


def ocpp_out(action: str) -> str:
    """Routing key of a command (CALL) we sent to a charger."""
    return _action_key("out", action)


def ocpp_reply(action: str) -> str:
    """Routing key of a charger's CALLRESULT/CALLERROR to a command of ours."""
    return _action_key("reply", action)


# --- Queues -----------------------------------------------------------------

#: The OCPP message processor: persistence, sessions, billing, charger state.
PROCESSOR_QUEUE = "processor"
#: The audit trail: commands and audit records.
AUDIT_QUEUE = "audit"
#: The funds guard's stops (ocppd/consumers/funds_stop.py): one queue, any node takes each.
FUNDS_STOP_QUEUE = "funds_stop"
#: What the notifier turns into pushes (docs/events.md); every node has its own.
NOTIFIER_PATTERNS = ("charger.#", "session.#", "wallet.#", "charging.#", "cms.#", "ocpp.#")
#: Most messages an ephemeral queue holds; beyond, its oldest are dropped.
EPHEMERAL_MAX_LENGTH = 10_000


def notifier_patterns(inbound_actions: Collection[str] | None = None) -> tuple[str, ...]:
    """
    The bindings of a notifier queue: every key it may push. With
    ``inbound_actions``, of the charger's CALLs only those actions': what no
    browser is shown (Heartbeats, by default) is then routed past the
    notifier, on RabbitMQ past every node's queue, rather than dropped by it.
    """
    if inbound_actions is None:
        return NOTIFIER_PATTERNS
    ocpp = ("ocpp.out.#", "ocpp.reply.#", OCPP_REJECTED)
    inbound = tuple(ocpp_in(action) for action in sorted(inbound_actions))
    return (*(p for p in NOTIFIER_PATTERNS if p != "ocpp.#"), *ocpp, *inbound)


def notifier_queue(node_id: str) -> str:
    """The notifier queue of node ``node_id``: each node pushes every event to its browsers."""
    return f"notifier.{node_id}"


# --- Topic matching ---------------------------------------------------------


def _words(key: str) -> tuple[str, ...]:
    # As in RabbitMQ, the empty key has zero words (so "#" matches it) and
    # "a..b" has an empty middle word (which "*" matches).
    return tuple(key.split(".")) if key else ()


@lru_cache(maxsize=4096)
def topic_matches(pattern: str, routing_key: str) -> bool:
    """
    Whether ``routing_key`` matches the binding ``pattern``, with AMQP topic
    exchange semantics: words are separated by ``.``, ``*`` matches exactly one
    word, ``#`` matches zero or more words, anything else matches itself.
    """
    pat = _words(pattern)
    key = _words(routing_key)
    # Dynamic programming over (pattern position, key position): reachable[j]
    # is True when pat[:i] can match key[:j]. Linear in len(key) per pattern
    # word, so no exponential backtracking on patterns like "#.#.#.x".
    reachable = [True] + [False] * len(key)
    for word in pat:
        if word == "#":
            # "#" extends any reachable prefix by zero or more words.
            seen = False
            for j in range(len(key) + 1):
                seen = seen or reachable[j]
                reachable[j] = seen
        else:
            nxt = [False] * (len(key) + 1)
            for j in range(len(key)):
                if reachable[j] and (word == "*" or word == key[j]):
                    nxt[j + 1] = True
            reachable = nxt
    return reachable[len(key)]


# --- Topology ---------------------------------------------------------------


@attrs.frozen
class Exchange:
    """An exchange, by its full name (``<prefix>.<kind>``)."""

    name: str
    type: str = "topic"


@attrs.frozen
class Binding:
    """Bind a queue to ``exchange`` (full name) with a topic ``pattern``."""

    exchange: str
    pattern: str


@attrs.frozen
class QueueSpec:
    """A queue, by its logical (unprefixed) name, and what feeds it."""

    name: str
    bindings: tuple[Binding, ...]
    durable: bool = True
    #: For what is worthless after a restart (pushes to browsers): on RabbitMQ
    #: not durable, deleted with its consumer, capped at EPHEMERAL_MAX_LENGTH
    #: dropping the oldest, no retry or dead-letter queues; on every bus a full
    #: ephemeral queue drops its oldest message rather than refuse a publish.
    ephemeral: bool = False


def exchange_name(prefix: str, kind: str) -> str:
    """Full name of the exchange of ``kind`` (e.g. ``"events"``) under ``prefix``."""
    return f"{prefix}.{kind}"


def standard_exchanges(prefix: str = DEFAULT_PREFIX) -> tuple[Exchange, ...]:
    """The four ocppd exchanges under ``prefix``."""
    kinds = (OCPP_EXCHANGE, EVENTS_EXCHANGE, COMMANDS_EXCHANGE, AUDIT_EXCHANGE)
    return tuple(Exchange(exchange_name(prefix, kind)) for kind in kinds)


def bind(pattern: str, prefix: str = DEFAULT_PREFIX) -> Binding:
    """
    A binding of ``pattern`` on the exchange its first word belongs to.

    The first word must be literal (not ``*``/``#``): a pattern can only match
    keys that are published on one exchange.
    """
    first = pattern.split(".", 1)[0]
    kind = EXCHANGE_BY_FIRST_WORD.get(first)
    if kind is None:
        raise ValueError(f"pattern {pattern!r} does not start with a known word")
    return Binding(exchange_name(prefix, kind), pattern)


# cache_hash: every publish looks its routes up in an lru_cache keyed on the
# topology, and hashing its bindings each time cost more than routing did.
@attrs.frozen(cache_hash=True)
class Topology:
    """
    The exchanges and queues of one deployment (or one test).

    Validated at construction: queue names are unique, and every binding names
    a declared exchange, so a typo fails at start-up and not as lost messages.
    """

    exchanges: tuple[Exchange, ...]
    queues: tuple[QueueSpec, ...]
    prefix: str = DEFAULT_PREFIX

    def __attrs_post_init__(self) -> None:
        names = {exchange.name for exchange in self.exchanges}
        if len(names) != len(self.exchanges):
            raise ValueError("duplicate exchange names in topology")
        seen: set[str] = set()
        for queue in self.queues:
            if queue.name in seen:
                raise ValueError(f"duplicate queue {queue.name!r} in topology")
            seen.add(queue.name)
            for binding in queue.bindings:
                if binding.exchange not in names:
                    raise ValueError(
                        f"queue {queue.name!r} is bound to undeclared exchange {binding.exchange!r}"
                    )

    def exchange_for(self, routing_key: str) -> str:
        """
        The full name of the exchange that carries ``routing_key``, chosen by
        its first word; ValueError for an unknown word or an exchange this
        topology does not declare.
        """
        first = routing_key.split(".", 1)[0]
        kind = EXCHANGE_BY_FIRST_WORD.get(first)
        if kind is None:
            raise ValueError(f"no exchange for routing key {routing_key!r}")
        name = exchange_name(self.prefix, kind)
        if not any(exchange.name == name for exchange in self.exchanges):
            raise ValueError(f"exchange {name!r} for {routing_key!r} is not declared")
        return name

    def queues_for(self, exchange: str, routing_key: str) -> list[QueueSpec]:
        """The queues a message published on ``exchange`` with ``routing_key`` reaches."""
        return [
            queue
            for queue in self.queues
            if any(
                binding.exchange == exchange and topic_matches(binding.pattern, routing_key)
                for binding in queue.bindings
            )
        ]

    def route(self, routing_key: str) -> list[QueueSpec]:
        """The queues ``routing_key`` reaches on its exchange (ValueError as ``exchange_for``)."""
        # Every publish asks, with a few dozen distinct keys: remember the answers.
        return list(_route(self, routing_key))

    def queue(self, name: str) -> QueueSpec:
        """The queue with logical name ``name``; ValueError if it is not declared."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise ValueError(f"queue {name!r} is not declared in the topology")

    def queue_full_name(self, name: str) -> str:
        """The name of the queue on the broker: ``<prefix>.<name>``."""
        return f"{self.prefix}.{name}"

    def retry_queue_full_name(self, name: str, delay: float) -> str:
        """
        The broker queue where messages of queue ``name`` wait ``delay``
        seconds before their next attempt: ``<prefix>.<name>.retry.<ms>ms``.

        One queue per delay, because a classic queue expires (dead-letters)
        messages only from its head: a short delay behind a long one would
        wait for the long one. The delay is in the name so that changing
        ``retry_delays`` declares new queues instead of clashing with the
        arguments (``x-message-ttl``) of the existing ones.
        """
        return f"{self.prefix}.{name}.retry.{round(delay * 1000)}ms"

    def dead_letter_queue_full_name(self, name: str) -> str:
        """The broker queue holding the dead letters of queue ``name``: ``<prefix>.<name>.dead``."""
        return f"{self.prefix}.{name}.dead"


@lru_cache(maxsize=1024)
def _route(topology: Topology, routing_key: str) -> tuple[QueueSpec, ...]:
    return tuple(topology.queues_for(topology.exchange_for(routing_key), routing_key))


def make_topology(
    queues: Iterable[tuple[str, Iterable[str]]], prefix: str = DEFAULT_PREFIX
) -> Topology:
    """
    A topology with the standard exchanges and the given ``(name, patterns)``
    queues, each pattern bound on the exchange of its first word.
    """
    return Topology(
        exchanges=standard_exchanges(prefix),
        queues=tuple(
            QueueSpec(name, tuple(bind(pattern, prefix) for pattern in patterns))
            for name, patterns in queues
        ),
        prefix=prefix,
    )


def default_topology(
    prefix: str = DEFAULT_PREFIX,
    node_id: str | None = None,
    *,
    notifier_inbound: Collection[str] | None = None,
) -> Topology:
    """
    The topology of a running ocppd; with ``node_id``, that node's notifier
    queue too, bound as ``notifier_patterns(notifier_inbound)``.
    """
    topology = make_topology(
        [
            (PROCESSOR_QUEUE, ("ocpp.#", "charger.#")),
            (AUDIT_QUEUE, ("command.#", "audit.#", "charging.#")),
            (FUNDS_STOP_QUEUE, ("charging.stop.requested",)),
        ],
        prefix,
    )
    if node_id is None:
        return topology
    notifier = QueueSpec(
        notifier_queue(node_id),
        tuple(bind(pattern, prefix) for pattern in notifier_patterns(notifier_inbound)),
        durable=False,
        ephemeral=True,
    )
    return attrs.evolve(topology, queues=(*topology.queues, notifier))
