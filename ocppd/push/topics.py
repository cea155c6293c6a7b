"""
The push topics (DESIGN.md section 4, docs/events.md) and who may read them.

Pure: no I/O. The broker asks :func:`authorize` before every subscription.
"""

from __future__ import annotations

import enum
import re

import attrs

REALM = "ocppd"

CHARGERS_STATUS = "ocppd.chargers.status"
ADMIN_SESSIONS = "ocppd.admin.sessions"
ADMIN_METER = "ocppd.admin.meter"
ADMIN_OCPP = "ocppd.admin.ocpp"
ADMIN_CMS = "ocppd.admin.cms"
ADMIN_REVENUE = "ocppd.admin.revenue"

ADMIN_TOPICS = frozenset({ADMIN_SESSIONS, ADMIN_METER, ADMIN_OCPP, ADMIN_CMS, ADMIN_REVENUE})

ADMIN_ROLE = "admin"

# Canonical decimal ids only: "ocppd.user.01.session" must not be a second
# name for user 1's topic.
_USER_TOPIC = re.compile(r"^ocppd\.user\.([1-9][0-9]{0,17})\.(session|wallet)$")
# One charger's meter values or OCPP log: the id as the OCPP endpoint admits
# it (ocppd.ocpp.handshake.CHARGE_POINT_ID; its dots are part of the id).
_CHARGER_TOPIC = re.compile(r"^ocppd\.admin\.(?:meter|ocpp)\.[A-Za-z0-9._:+@~\-]{1,48}$")


def admin_meter_topic(charge_point_id: str) -> str:
    """One charger's ``meter.values`` (its point page); the broker sends only these."""
    return f"{ADMIN_METER}.{charge_point_id}"


def admin_ocpp_topic(charge_point_id: str) -> str:
    """One charger's live OCPP log (its point page); the broker sends only these."""
    return f"{ADMIN_OCPP}.{charge_point_id}"


def user_session_topic(user_id: int) -> str:
    return f"ocppd.user.{user_id}.session"


def user_wallet_topic(user_id: int) -> str:
    return f"ocppd.user.{user_id}.wallet"


@attrs.frozen
class Principal:
    """Who a push session authenticated as: the REST token's user."""

    user_id: int
    email: str
    role: str

    @property
    def is_admin(self) -> bool:
        return self.role == ADMIN_ROLE


class Decision(enum.Enum):
    ALLOWED = "allowed"
    #: A topic of ocppd that this principal may not read.
    NOT_AUTHORIZED = "not_authorized"
    #: Not a topic of ocppd at all.
    UNKNOWN = "unknown"


def authorize(principal: Principal, topic: str) -> Decision:
    """Whether ``principal`` may subscribe to ``topic`` (exact match)."""
    if topic == CHARGERS_STATUS:
        return Decision.ALLOWED
    if topic in ADMIN_TOPICS or _CHARGER_TOPIC.match(topic):
        return Decision.ALLOWED if principal.is_admin else Decision.NOT_AUTHORIZED
    match = _USER_TOPIC.match(topic)
    if match is not None:
        # Only the user's own: an admin reads sessions through ocppd.admin.*.
        allowed = int(match.group(1)) == principal.user_id
        return Decision.ALLOWED if allowed else Decision.NOT_AUTHORIZED
    return Decision.UNKNOWN
