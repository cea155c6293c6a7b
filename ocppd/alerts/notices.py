"""
An alert as the store keeps it, and its raise or resolve as what each
channel sends: the webhook's JSON body and signature, the e-mail. Pure.

The webhook is signed like Stripe's: ``X-Ocppd-Signature: sha256=HEX`` is
the HMAC-SHA256, keyed with ``[alerts] webhook_secret``, of
``"{timestamp}." + body``, where the timestamp (Unix seconds) is the
``X-Ocppd-Timestamp`` header of the same request. A receiver recomputes it
over the raw body, compares in constant time, and refuses a timestamp far
from its clock (a replayed request).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import datetime
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from typing import Any

import attrs

from ocppd.timeutil import format_iso

RAISED = "raised"
RESOLVED = "resolved"

SIGNATURE_HEADER = "X-Ocppd-Signature"
TIMESTAMP_HEADER = "X-Ocppd-Timestamp"
EVENT_HEADER = "X-Ocppd-Event"


@attrs.frozen
class Alert:
    """An open alert (a row of ``alerts``), or one just resolved (``resolved_at``)."""

    id: str
    key: str
    kind: str
    subject: str
    summary: str
    data: dict[str, Any]
    since: datetime | None
    raised_at: datetime
    node: str
    resolved_at: datetime | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "key": self.key,
            "kind": self.kind,
            "subject": self.subject,
            "summary": self.summary,
            "data": self.data,
            "since": None if self.since is None else format_iso(self.since),
            "raisedAt": format_iso(self.raised_at),
            "resolvedAt": None if self.resolved_at is None else format_iso(self.resolved_at),
            "node": self.node,
        }


@attrs.frozen
class Notice:
    """One alert raised or resolved: what every channel delivers."""

    event: str  # RAISED or RESOLVED
    alert: Alert

    @property
    def type(self) -> str:
        return f"alert.{self.event}"


def webhook_body(notice: Notice) -> bytes:
    """The JSON the webhook POSTs: ``{"type", "alert"}``."""
    body = {"type": notice.type, "alert": notice.alert.to_json()}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """The signature header's value for ``body`` sent at ``timestamp``."""
    signed = str(timestamp).encode("ascii") + b"." + body
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def verify(secret: str, timestamp: str, body: bytes, header: str) -> bool:
    """Whether ``header`` signs ``body`` at ``timestamp`` (what a receiver checks)."""
    if not timestamp.isascii() or not timestamp.isdigit():
        return False
    return hmac.compare_digest(signature(secret, int(timestamp), body), header)


def _one_line(text: str, limit: int = 200) -> str:
    """Text fit for a mail header: no control characters (no header injection), bounded."""
    cleaned = "".join(c if c.isprintable() else " " for c in text)
    return cleaned[:limit]


def email_message(
    notice: Notice, *, mail_from: str, mail_to: tuple[str, ...], at: datetime
) -> bytes:
    """The e-mail of ``notice``, as the bytes SMTP sends."""
    alert = notice.alert
    word = "ALERT" if notice.event == RAISED else "RESOLVED"
    message = EmailMessage()
    message["From"] = mail_from
    message["To"] = ", ".join(mail_to)
    message["Subject"] = f"[ocppd] {word}: {_one_line(alert.summary)}"
    message["Date"] = format_datetime(at)
    message["Message-ID"] = make_msgid(domain=mail_from.rpartition("@")[2] or None)
    lines = [
        f"{word}: {alert.summary}",
        "",
        f"Alert:    {alert.id} ({alert.kind})",
        f"About:    {alert.subject}",
        f"Raised:   {format_iso(alert.raised_at)} by node {alert.node}",
    ]
    if alert.since is not None:
        lines.append(f"Since:    {format_iso(alert.since)}")
    if alert.resolved_at is not None:
        lines.append(f"Resolved: {format_iso(alert.resolved_at)}")
    lines += ["", json.dumps(alert.data, indent=2, sort_keys=True)]
    message.set_content("\n".join(lines) + "\n")
    return message.as_bytes()
