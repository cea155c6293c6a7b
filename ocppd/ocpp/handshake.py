"""
Pure parsing of the OCPP-J opening handshake: the URL path and HTTP Basic auth.

No I/O here; ``admission.py`` decides with the store whether to let a charger in.
"""

from __future__ import annotations

import base64
import binascii
import re
from urllib.parse import unquote

import attrs
from twisted.logger import LogLevel

SUBPROTOCOL = "ocpp1.6"
PATH_PREFIX = "/ocpp/"

#: OCPP 1.6 identities are CiString(48) at most in the security whitepaper;
#: restrict to printable characters without '/' so they are safe in paths,
#: routing keys and logs. Always used with ``fullmatch``: ``$`` would also
#: match before a trailing newline (``/ocpp/CP3%0A``).
CHARGE_POINT_ID = re.compile(r"[A-Za-z0-9._:+@~\-]{1,48}")


class HandshakeError(Exception):
    """
    The handshake must be refused with ``status`` (an HTTP status code) and
    ``headers``; the refusal is logged once, at ``level``, with
    ``charge_point_id`` once the path has given one.
    """

    charge_point_id: str | None = None

    def __init__(
        self,
        status: int,
        reason: str,
        *,
        headers: tuple[tuple[str, str], ...] = (),
        level: LogLevel = LogLevel.info,
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.headers = headers
        self.level = level


@attrs.frozen
class BasicCredentials:
    username: str
    password: str


def charge_point_id_from_path(path: str) -> str:
    """
    The charger id in ``/ocpp/{chargePointId}``; HTTP 404 for any other path
    (OCPP-J 1.6 section 3.1: an unknown endpoint SHOULD get 404).
    """
    path = path.split("?", 1)[0]
    if not path.startswith(PATH_PREFIX):
        raise HandshakeError(404, "not an OCPP endpoint")
    charge_point_id = unquote(path[len(PATH_PREFIX) :])
    if not CHARGE_POINT_ID.fullmatch(charge_point_id):
        raise HandshakeError(404, "malformed charge point id")
    return charge_point_id


def parse_basic_auth(header: str | None) -> BasicCredentials | None:
    """
    Decode an ``Authorization: Basic`` header; None when absent. A malformed
    header is refused with 401 rather than treated as absent.
    """
    if header is None:
        return None
    scheme, _, token = header.strip().partition(" ")
    if scheme.lower() != "basic":
        raise HandshakeError(401, "only HTTP Basic authentication is supported")
    try:
        decoded = base64.b64decode(token.strip(), validate=True).decode("utf-8")
    except (binascii.Error, UnicodeDecodeError):
        raise HandshakeError(401, "malformed Basic credentials") from None
    username, sep, password = decoded.partition(":")
    if not sep:
        raise HandshakeError(401, "malformed Basic credentials")
    return BasicCredentials(username, password)


def choose_subprotocol(offered: list[str]) -> str | None:
    """``ocpp1.6`` if the charger offered it, else None (the caller then closes)."""
    return SUBPROTOCOL if SUBPROTOCOL in offered else None
