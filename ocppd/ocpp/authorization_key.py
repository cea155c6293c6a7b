"""
The ``AuthorizationKey`` configuration key (OCPP 1.6 security whitepaper): the
Basic-auth password of a charger, which a central system rotates with
ChangeConfiguration. It is write-only: its value never goes into the message
log, the audit log, a push event or an API answer. :func:`redact` is the one
place that removes it, applied where commands enter the traffic
(``ocpp.traffic``) and the audit trail (``api.commands``). Pure, no I/O.
"""

from __future__ import annotations

from typing import Any

#: What replaces the key's value wherever it is kept or shown.
REDACTED = "<redacted>"


def is_authorization_key(name: object) -> bool:
    """Whether ``name`` is the AuthorizationKey (configuration keys are case-insensitive)."""
    return isinstance(name, str) and name.lower() == "authorizationkey"


def new_authorization_key(action: str, payload: dict[str, Any]) -> str | None:
    """The key a command sets (ChangeConfiguration of AuthorizationKey), or None."""
    if action != "ChangeConfiguration" or not is_authorization_key(payload.get("key")):
        return None
    value = payload.get("value")
    return value if isinstance(value, str) else None


def _redacted_entry(entry: Any) -> Any:
    if isinstance(entry, dict) and is_authorization_key(entry.get("key")) and "value" in entry:
        return {**entry, "value": REDACTED}
    return entry


def redact(payload: Any) -> Any:
    """
    ``payload`` (any OCPP request or answer) without the AuthorizationKey's
    value: a ChangeConfiguration request setting it, or a GetConfiguration
    answer from a charger that reports it although it should not. Anything
    else is returned as it is (the same object, not a copy).
    """
    if not isinstance(payload, dict):
        return payload
    payload = _redacted_entry(payload)
    entries = payload.get("configurationKey")
    if isinstance(entries, list) and any(_redacted_entry(entry) is not entry for entry in entries):
        payload = {**payload, "configurationKey": [_redacted_entry(entry) for entry in entries]}
    return payload
