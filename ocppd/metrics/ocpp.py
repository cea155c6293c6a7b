"""
What the OCPP endpoint counts while metrics are on (``[metrics] listen``):
connections opened and closed, every CALL by action, direction and outcome,
the answer latency of the charger's CALLs and the round trip of our commands.

This runs on every message, so it is plain integers and lists bumped in
place, no locks (the reactor thread alone touches them) and no allocation
per message: each label set's slot exists from the start. Prometheus reads
them at a scrape (``ocppd.metrics.collector``).

Label values come only from fixed sets: an action outside the OCPP 1.6 list
(and the security whitepaper's) is counted as ``other``, an error code
outside OCPP-J's table as ``other``, a close code in a bucket. A charger
cannot add a time series by sending a new name.
"""

from __future__ import annotations

from collections.abc import Iterable

from ocppd.metrics.histogram import Histogram
from ocppd.ocpp.actions import CENTRAL_SYSTEM_INITIATED, KNOWN, SECURITY_CENTRAL_SYSTEM_INITIATED
from ocppd.ocpp.errors import CALL_ERROR_CODES

__all__ = [
    "ANSWER_BUCKETS",
    "COMMAND_BUCKETS",
    "OTHER",
    "OcppMetrics",
    "close_code_label",
]

#: The label of an action or error code outside the known sets.
OTHER = "other"
#: The outcome of a CALL answered with a CALLRESULT.
CALLRESULT = "CALLRESULT"
#: Outcomes of a command that got no answer.
TIMEOUT = "timeout"
DISCONNECTED = "disconnected"
CANCELLED = "cancelled"

#: Seconds: a Heartbeat is answered in well under a millisecond, a
#: StartTransaction waits on the store and the bus (``[ocpp] answer_timeout``, 10 s).
ANSWER_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)
#: Seconds: a charger answers a command over the network, up to ``[ocpp] call_timeout``.
COMMAND_BUCKETS: tuple[float, ...] = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

#: RFC 6455 close codes shown as themselves (1004 is reserved, 1005 and 1006
#: are what a peer reports when there was no close frame or no clean close).
_NAMED_CLOSE_CODES = frozenset(
    {1000, 1001, 1002, 1003, 1005, 1006, 1007, 1008, 1009, 1010, 1011, 1012, 1013, 1014, 1015}
)


def close_code_label(code: int | None) -> str:
    """
    The label of a WebSocket close code: RFC 6455's own codes as
    themselves, 4000 (ocppd's "replaced by a newer connection") too, the
    other application codes as ``3xxx`` and ``4xxx``; ``none`` when the
    connection ended without one.
    """
    if code is None:
        return "none"
    if code in _NAMED_CLOSE_CODES or code == 4000:
        return str(code)
    if 3000 <= code <= 3999:
        return "3xxx"
    if 4000 <= code <= 4999:
        return "4xxx"
    return OTHER


class _Outcomes(dict[str, int]):
    """Counts per outcome of one action and direction, every outcome present from the start."""

    __slots__ = ()

    def __init__(self, outcomes: Iterable[str]) -> None:
        super().__init__(dict.fromkeys(outcomes, 0))

    def bump(self, outcome: str) -> None:
        if outcome in self:
            self[outcome] += 1
        else:
            self[OTHER] += 1


_ANSWERED = (CALLRESULT, *sorted(CALL_ERROR_CODES), OTHER)
_COMMANDED = (*_ANSWERED, TIMEOUT, DISCONNECTED, CANCELLED)
#: Actions we may send a charger.
_COMMANDS = CENTRAL_SYSTEM_INITIATED | SECURITY_CENTRAL_SYSTEM_INITIATED


class OcppMetrics:
    """The OCPP endpoint's counts on one node (one object, shared by every connection)."""

    def __init__(self) -> None:
        self.connections_opened = 0
        #: Per close-code label (``close_code_label``).
        self.connections_closed: dict[str, int] = {}
        #: The charger's CALLs: per action (every known one, and ``other``), per outcome.
        self.inbound: dict[str, _Outcomes] = {
            action: _Outcomes(_ANSWERED) for action in (*sorted(KNOWN), OTHER)
        }
        #: Seconds from taking a CALL to sending its answer, per action it is handled for.
        self.answer_seconds: dict[str, Histogram] = {}
        #: Our commands: per action, per outcome (the charger's answer, or why none came).
        self.outbound: dict[str, _Outcomes] = {
            action: _Outcomes(_COMMANDED) for action in (*sorted(_COMMANDS), OTHER)
        }
        #: Seconds from sending a command to the charger's answer, per action.
        self.command_seconds: dict[str, Histogram] = {
            action: Histogram(COMMAND_BUCKETS) for action in (*sorted(_COMMANDS), OTHER)
        }

    # --- connections ----------------------------------------------------------------

    def opened(self) -> None:
        self.connections_opened += 1

    def closed(self, code: int | None) -> None:
        label = close_code_label(code)
        self.connections_closed[label] = self.connections_closed.get(label, 0) + 1

    # --- the charger's CALLs ----------------------------------------------------------

    def answered(self, action: str, outcome: str, seconds: float) -> None:
        """A CALL the handlers took was answered with ``outcome`` after ``seconds``."""
        outcomes = self.inbound.get(action)
        if outcomes is None:
            outcomes = self.inbound[OTHER]
            action = OTHER
        outcomes.bump(outcome)
        latency = self.answer_seconds.get(action)
        if latency is None:
            # Made at the first answer: only the ~10 actions a charger sends us get one.
            latency = self.answer_seconds[action] = Histogram(ANSWER_BUCKETS)
        latency.observe(seconds)

    def rejected(self, action: str | None, code: str) -> None:
        """A frame refused before any handler (malformed, unknown action, invalid payload)."""
        outcomes = self.inbound.get(action) if action is not None else None
        (outcomes if outcomes is not None else self.inbound[OTHER]).bump(code)

    # --- our commands -----------------------------------------------------------------

    def command_settled(self, action: str, outcome: str, seconds: float | None) -> None:
        """
        A command ended with ``outcome``: the charger's answer after
        ``seconds`` (a round trip), or a timeout, a disconnect, a cancel (None).
        """
        outcomes = self.outbound.get(action)
        if outcomes is None:
            outcomes = self.outbound[OTHER]
            action = OTHER
        outcomes.bump(outcome)
        if seconds is not None:
            self.command_seconds[action].observe(seconds)
