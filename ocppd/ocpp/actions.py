"""
The OCPP 1.6 actions, who may send them, and what to answer to the others.

Action names are case-sensitive, as in the specification and the JSON
schema file names: ``heartbeat`` is not an OCPP action.
"""

from __future__ import annotations

import re

from ocppd.ocpp.errors import NOT_IMPLEMENTED, NOT_SUPPORTED

__all__ = [
    "CENTRAL_SYSTEM_INITIATED",
    "CHARGER_INITIATED",
    "KNOWN",
    "SECURITY_CENTRAL_SYSTEM_INITIATED",
    "SECURITY_CHARGER_INITIATED",
    "SECURITY_EXTENSION",
    "TRANSACTION_ACTIONS",
    "action_from_kebab",
    "classify_inbound",
    "kebab_case",
]

#: OCPP 1.6 (edition 2) section 4: operations initiated by the charge point.
CHARGER_INITIATED: frozenset[str] = frozenset(
    {
        "Authorize",
        "BootNotification",
        "DataTransfer",
        "DiagnosticsStatusNotification",
        "FirmwareStatusNotification",
        "Heartbeat",
        "MeterValues",
        "StartTransaction",
        "StatusNotification",
        "StopTransaction",
    }
)

#: OCPP 1.6 section 5: operations initiated by the central system. DataTransfer
#: goes both ways.
CENTRAL_SYSTEM_INITIATED: frozenset[str] = frozenset(
    {
        "CancelReservation",
        "ChangeAvailability",
        "ChangeConfiguration",
        "ClearCache",
        "ClearChargingProfile",
        "DataTransfer",
        "GetCompositeSchedule",
        "GetConfiguration",
        "GetDiagnostics",
        "GetLocalListVersion",
        "RemoteStartTransaction",
        "RemoteStopTransaction",
        "ReserveNow",
        "Reset",
        "SendLocalList",
        "SetChargingProfile",
        "TriggerMessage",
        "UnlockConnector",
        "UpdateFirmware",
    }
)

#: "Improved security for OCPP 1.6-J" (whitepaper, edition 3) messages sent by
#: the charge point. Known, not handled yet: answered ``NotSupported``.
SECURITY_CHARGER_INITIATED: frozenset[str] = frozenset(
    {
        "LogStatusNotification",
        "SecurityEventNotification",
        "SignCertificate",
        "SignedFirmwareStatusNotification",
    }
)

#: Security whitepaper messages sent by the central system.
SECURITY_CENTRAL_SYSTEM_INITIATED: frozenset[str] = frozenset(
    {
        "CertificateSigned",
        "DeleteCertificate",
        "ExtendedTriggerMessage",
        "GetInstalledCertificateIds",
        "GetLog",
        "InstallCertificate",
        "SignedUpdateFirmware",
    }
)

#: Every security whitepaper action (their schemas ship with the ``ocpp``
#: package next to the 1.6 ones).
SECURITY_EXTENSION: frozenset[str] = SECURITY_CHARGER_INITIATED | SECURITY_CENTRAL_SYSTEM_INITIATED

#: Every action an OCPP 1.6J peer may legitimately name.
KNOWN: frozenset[str] = CHARGER_INITIATED | CENTRAL_SYSTEM_INITIATED | SECURITY_EXTENSION

#: Messages that must be stored before they are acknowledged (DESIGN.md
#: section 1: the answer goes out only after the bus confirmed the publish).
TRANSACTION_ACTIONS: frozenset[str] = frozenset(
    {"StartTransaction", "StopTransaction", "MeterValues"}
)


def classify_inbound(action: str, *, supported: frozenset[str] = CHARGER_INITIATED) -> str | None:
    """
    What to do with a CALL named ``action`` from a charger.

    Returns ``None`` when the action is one we handle (``supported``, by
    default every charger-initiated OCPP 1.6 action), else the CALLERROR
    code to answer with, following OCPP-J 1.6 table 7:

    - ``NotImplemented``, "Requested Action is not known by receiver": the
      name is no OCPP 1.6 (or security whitepaper) action at all;
    - ``NotSupported``, "Requested Action is recognized but not supported by
      the receiver": a real action that a central system does not take from
      a charger (``Reset``, ``RemoteStartTransaction``) or that we do not
      handle yet (the security whitepaper's).

    The ``ocpp`` package answers the other way round; we follow the
    specification (DESIGN.md section 6).
    """
    if action in supported:
        return None
    if action in KNOWN:
        return NOT_SUPPORTED
    return NOT_IMPLEMENTED


_WORD_START = re.compile(r"(?<!^)(?=[A-Z])")
_KEBAB = re.compile(r"[a-z][a-z0-9]*(?:-[a-z][a-z0-9]*)*\Z")


def kebab_case(action: str) -> str:
    """
    ``RemoteStartTransaction`` -> ``remote-start-transaction``.

    Every OCPP 1.6 action name is plain UpperCamelCase without acronyms, so
    a hyphen before each capital is exact and :func:`action_from_kebab`
    inverts it for every action in :data:`KNOWN`.
    """
    return _WORD_START.sub("-", action).lower()


def action_from_kebab(name: str) -> str:
    """
    ``remote-start-transaction`` -> ``RemoteStartTransaction``.

    Only converts: whether the result is an action we accept is the
    caller's question (``in KNOWN``, ``in CENTRAL_SYSTEM_INITIATED``). Raises
    ``ValueError`` for a name that is not lower-case kebab-case, so that
    ``Remote-Start``, ``remote--start`` or ``remote_start`` cannot alias a
    real action.
    """
    if not _KEBAB.match(name):
        raise ValueError(f"not a kebab-case name: {name!r}")
    return "".join(word.capitalize() for word in name.split("-"))
