"""
ocppd's ``Logger``: ``twisted.logger.Logger`` that cannot be made to forge or
flood log lines.

Log events carry values from outside: a charger's URL path, a push topic, an
id tag, an email typed at sign-in. Written raw, a value with a newline forges
a log line that looks like ocppd's own, terminal escapes rewrite what an
operator sees, and a 10 KB path floods the log. So every string field of an
event is made safe as it is emitted, once, for every observer (text, JSON,
journald): control characters (C0, DEL, C1), Unicode line and paragraph
separators, bidirectional overrides and lone surrogates become visible
``\\xNN`` / ``\\uNNNN`` escapes, and values longer than
:data:`MAX_LOGGED_LENGTH` are cut, saying how long they were.

Only string fields are rewritten: numbers, addresses and failures keep their
type, and the format strings are ocppd's own.
"""

from __future__ import annotations

import re
from typing import Any

from twisted.logger import Logger as _TwistedLogger
from twisted.logger import LogLevel

__all__ = ["MAX_LOGGED_LENGTH", "Logger", "loggable"]

#: Longest string field written whole; longer ones are cut to this many characters.
MAX_LOGGED_LENGTH = 1000

_UNSAFE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029\u202a-\u202e\u2066-\u2069\ud800-\udfff]")


def _escape(match: re.Match[str]) -> str:
    code = ord(match.group())
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def loggable(text: str, *, limit: int = MAX_LOGGED_LENGTH) -> str:
    """``text`` with unsafe characters escaped and cut to ``limit`` characters."""
    suffix = ""
    if len(text) > limit:
        suffix = f"... ({len(text)} characters)"
        text = text[:limit]
    return _UNSAFE.sub(_escape, text) + suffix


class Logger(_TwistedLogger):
    """A ``twisted.logger.Logger`` whose string fields are made :func:`loggable`."""

    def emit(self, level: LogLevel, format: str | None = None, **kwargs: Any) -> None:
        for key, value in kwargs.items():
            if isinstance(value, str) and (
                len(value) > MAX_LOGGED_LENGTH or _UNSAFE.search(value) is not None
            ):
                kwargs[key] = loggable(value)
        super().emit(level, format, **kwargs)
