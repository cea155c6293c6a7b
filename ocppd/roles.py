"""
What a node runs, by ``[ocppd] role`` (``twistd ocppd --role``; docs/operations.md "Roles").

- ``all``: everything, as one process always did.
- ``edge``: what faces chargers and browsers: the OCPP and web listeners, push,
  presence, command routing, the funds-stop consumer (it sends stops to
  chargers) and this node's notifier (it pushes to this node's browsers), the
  timers. It answers chargers and publishes what they send; it stores none of it
  but its chargers' Heartbeats (``last_seen_at``, ``ocppd.ocpp.last_seen``), which
  it does not publish unless the message log keeps them.
- ``processor``: the consumers that store the chargers' traffic (processor and
  audit) with what they need (store, bus, outbox relay, alerts), and
  ``/health`` and ``/ready`` on ``[web] listen``: no OCPP, API or push.

The two halves meet only on a shared bus, so both need RabbitMQ: the embedded
bus lives inside one process.
"""

from __future__ import annotations

ALL = "all"
EDGE = "edge"
PROCESSOR = "processor"


def serves_chargers(role: str) -> bool:
    """Whether the node takes chargers and browsers (and so routes commands and pushes)."""
    return role != PROCESSOR


def stores_traffic(role: str) -> bool:
    """Whether the node runs the processor and audit consumers."""
    return role != EDGE


def role_problem(role: str, bus_backend: str) -> str | None:
    """Why a node of ``role`` cannot start on ``bus_backend``, in one line; None if it can."""
    if role == ALL or bus_backend == "amqp":
        return None
    return (
        f"[ocppd] role = {role} needs [bus] backend = amqp: the embedded bus does not leave"
        " its process, so what an edge publishes would never reach a processor"
    )
