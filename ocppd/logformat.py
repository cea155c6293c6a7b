"""
The daemon's log lines, ``[log] format = text | json``, one line per event.

Both formats are built from the same made-safe event (:func:`render`): the
message as Twisted formats it, with control characters escaped and cut to
:data:`MAX_MESSAGE_LENGTH`, whoever logged it (ocppd's own ``Logger`` makes
its fields safe as they are emitted; Twisted's, Autobahn's and pika's loggers
do not). A traceback keeps its lines, each escaped, each indented in the text
format, so nothing a charger or a browser sends can start a line that looks
like an event of ocppd's.

- ``text``: Twisted's classic layout, ``2026-12-07T04:44:48+0000
  [namespace#info] message``, time in UTC; traceback lines follow, each
  starting with a tab.
- ``json``: one JSON object per line: ``time`` (UTC ISO-8601, milliseconds),
  ``level``, ``namespace``, ``node_id`` (this node), ``message``, every
  field the event was logged with (``charge_point_id``, ``action``,
  ``unique_id``, ``address``...; strings escaped and cut like the message,
  other values as numbers, booleans or their text), and for a failure
  ``error`` (its type and message) and ``traceback``.
"""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from typing import IO, Any

from twisted.logger import FileLogObserver, ILogObserver, formatEvent
from twisted.python.failure import Failure

from ocppd.logs import loggable

__all__ = ["FORMATS", "MAX_MESSAGE_LENGTH", "json_line", "observer", "text_line"]

FORMATS = ("text", "json")
#: Longest message written whole (a message holds several fields).
MAX_MESSAGE_LENGTH = 4000
#: Longest traceback written whole, and longest line within it.
MAX_TRACEBACK_LENGTH = 20_000
_MAX_TRACEBACK_LINE = 1000
#: Keys of a legacy (twisted.python.log) event, already in the message or the error.
_LEGACY = frozenset({"format", "message", "time", "system", "isError", "failure", "why"})
#: Keys of a JSON line that a field of the same name must not replace.
_RESERVED = frozenset({"time", "level", "namespace", "node_id", "message", "error", "traceback"})


def _message(event: dict[str, Any]) -> str:
    return loggable(formatEvent(event), limit=MAX_MESSAGE_LENGTH)


def _time(event: dict[str, Any]) -> datetime:
    seconds = event.get("log_time")
    if not isinstance(seconds, (int, float)):
        return datetime.now(UTC)
    return datetime.fromtimestamp(seconds, UTC)


def _level(event: dict[str, Any]) -> str:
    level = event.get("log_level")
    return str(getattr(level, "name", "info"))


def _traceback_lines(failure: Failure) -> list[str]:
    try:
        text = failure.getTraceback()
    except Exception:  # a failure that cannot even describe itself
        text = f"{failure.type!r}: (traceback unavailable)"
    text = text[:MAX_TRACEBACK_LENGTH]
    return [loggable(line, limit=_MAX_TRACEBACK_LINE) for line in text.rstrip("\n").split("\n")]


def text_line(event: dict[str, Any]) -> str:
    """One event as ``text``: a line, plus tab-indented traceback lines."""
    stamp = _time(event).strftime("%Y-%m-%dT%H:%M:%S+0000")
    system = event.get("log_system")
    if not isinstance(system, str):
        system = f"{event.get('log_namespace', '-')}#{_level(event)}"
    line = f"{stamp} [{loggable(system, limit=200)}] {_message(event)}\n"
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        line += "".join(f"\t{text}\n" for text in _traceback_lines(failure))
    return line


def _field(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # JSON has no NaN or Infinity
    if value is None or isinstance(value, (bool, int, float)):
        return value
    text = value if isinstance(value, str) else _text_of(value)
    return loggable(text)


def _text_of(value: Any) -> str:
    try:
        return str(value)
    except Exception:
        return f"<{type(value).__name__}>"


def json_line(event: dict[str, Any], node_id: str) -> str:
    """One event as ``json``: one line holding one object."""
    record: dict[str, Any] = {
        "time": _time(event).isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "level": _level(event),
        "namespace": loggable(str(event.get("log_namespace", "-")), limit=200),
        "node_id": node_id,
        "message": _message(event),
    }
    # A twisted.python.log event (log.msg) holds its text in a tuple "message".
    legacy = isinstance(event.get("message"), tuple)
    for key, value in event.items():
        if key.startswith("log_") or (legacy and key in _LEGACY):
            continue  # Twisted's own keys, and the legacy ones the message and error hold
        if not isinstance(key, str) or not key.isidentifier():
            continue
        record["field_" + key if key in _RESERVED else key] = _field(value)
    failure = event.get("log_failure")
    if isinstance(failure, Failure):
        record["error"] = loggable(f"{type(failure.value).__name__}: {failure.getErrorMessage()}")
        record["traceback"] = "\n".join(_traceback_lines(failure))
    return json.dumps(record, ensure_ascii=False, default=str) + "\n"


def observer(format: str, out: IO[str], node_id: str) -> ILogObserver:
    """A log observer writing ``format`` lines to ``out``."""
    render: Callable[[dict[str, Any]], str]
    if format == "json":

        def render(event: dict[str, Any]) -> str:
            return json_line(event, node_id)
    else:
        render = text_line
    return FileLogObserver(out, render)


def twistd_log_file(twistd_options: Any) -> IO[str] | None:
    """
    Where twistd itself would log for these options (standard output with
    ``--nodaemon``, else ``--logfile``, rotated on SIGUSR1 as twistd does), or
    None where ocppd leaves logging to twistd (``--syslog``, ``--logger``).
    """
    if twistd_options.get("syslog") or twistd_options.get("logger"):
        return None
    name = twistd_options.get("logfile") or ""
    if name == "-" or (not name and twistd_options.get("nodaemon")):
        return sys.stdout
    from twisted.python.logfile import LogFile

    log_file = LogFile.fromFullPath(name or "twistd.log")
    import signal

    if not signal.getsignal(signal.SIGUSR1):

        def rotate(signum: int, frame: Any) -> None:
            from twisted.internet import reactor

            reactor.callFromThread(log_file.rotate)  # type: ignore[attr-defined]

        signal.signal(signal.SIGUSR1, rotate)
    return log_file
