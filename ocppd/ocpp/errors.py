"""
OCPP-J 1.6 CALLERROR codes and the exception that carries one.

Every layer that rejects something a charger sent (frame parsing, schema
validation, action dispatch, handlers) raises :class:`OcppError` with one of
the codes below, so the protocol can turn any refusal into a CALLERROR frame
without knowing where it came from.

The codes are those of OCPP-J 1.6 section 4.2.3, table 7 ("Valid Error
Codes"), spelled exactly as the specification spells them, including
``OccurenceConstraintViolation`` (one "r"): chargers match on the string.
"""

from __future__ import annotations

from typing import Any

#: "Requested Action is not known by receiver".
NOT_IMPLEMENTED = "NotImplemented"
#: "Requested Action is recognized but not supported by the receiver".
NOT_SUPPORTED = "NotSupported"
#: "An internal error occurred and the receiver was not able to process the
#: requested Action successfully".
INTERNAL_ERROR = "InternalError"
#: "Payload for Action is incomplete".
PROTOCOL_ERROR = "ProtocolError"
#: "During the processing of Action a security issue occurred preventing
#: receiver from completing the Action successfully".
SECURITY_ERROR = "SecurityError"
#: "Payload for Action is syntactically incorrect or not conform the PDU
#: structure for Action".
FORMATION_VIOLATION = "FormationViolation"
#: "Payload is syntactically correct but at least one field contains an
#: invalid value".
PROPERTY_CONSTRAINT_VIOLATION = "PropertyConstraintViolation"
#: "Payload for Action is syntactically correct but at least one of the
#: fields violates occurence constraints" (the specification's spelling).
OCCURENCE_CONSTRAINT_VIOLATION = "OccurenceConstraintViolation"
#: "Payload for Action is syntactically correct but at least one of the
#: fields violates data type constraints (e.g. "somestring": 12)".
TYPE_CONSTRAINT_VIOLATION = "TypeConstraintViolation"
#: "Any other error not covered by the previous ones".
GENERIC_ERROR = "GenericError"

#: Every code OCPP-J 1.6 allows in a CALLERROR we send.
CALL_ERROR_CODES: frozenset[str] = frozenset(
    {
        NOT_IMPLEMENTED,
        NOT_SUPPORTED,
        INTERNAL_ERROR,
        PROTOCOL_ERROR,
        SECURITY_ERROR,
        FORMATION_VIOLATION,
        PROPERTY_CONSTRAINT_VIOLATION,
        OCCURENCE_CONSTRAINT_VIOLATION,
        TYPE_CONSTRAINT_VIOLATION,
        GENERIC_ERROR,
    }
)


class OcppError(Exception):
    """
    A refusal that becomes a CALLERROR ``[4, id, code, description, details]``.

    ``code`` is one of :data:`CALL_ERROR_CODES` when we raise it ourselves;
    it is not checked here because the same class also represents a CALLERROR
    a charger sent us, whose code we keep verbatim even when it is not one of
    the specification's (we log it rather than lose it). ``details`` must be
    JSON-serialisable: it is sent as the frame's ``errorDetails`` object.
    """

    code: str
    description: str
    details: dict[str, Any]

    def __init__(
        self, code: str, description: str = "", details: dict[str, Any] | None = None
    ) -> None:
        super().__init__(code, description)
        self.code = code
        self.description = description
        self.details = {} if details is None else details

    def __str__(self) -> str:
        if self.description:
            return f"{self.code}: {self.description}"
        return self.code

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(code={self.code!r}, description={self.description!r}, "
            f"details={self.details!r})"
        )


class AnswerTimedOut(Exception):
    """
    An answer waited on the store or the bus longer than ``[ocpp]
    answer_timeout``: the charger gets an InternalError and resends.
    """

    def __init__(self, action: str, timeout: float) -> None:
        super().__init__(f"no answer to {action} within {timeout:g} s")
        self.action = action
        self.timeout = timeout
