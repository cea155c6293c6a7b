"""Tests for ocppd.ocpp.authorization_key: the one redaction of AuthorizationKey values."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp.authorization_key import REDACTED, new_authorization_key, redact


class RedactTests(SynchronousTestCase):
    def test_change_configuration(self) -> None:
        """A ChangeConfiguration of AuthorizationKey (any case) loses its value, in a copy."""
        for name in ("AuthorizationKey", "authorizationkey", "AUTHORIZATIONKEY"):
            request = {"key": name, "value": "s3cret-0123456789"}
            self.assertEqual(redact(request), {"key": name, "value": REDACTED})
            self.assertEqual(request["value"], "s3cret-0123456789")

    def test_get_configuration_answer(self) -> None:
        """A charger reporting the key in GetConfiguration: only that entry's value goes."""
        answer = {
            "configurationKey": [
                {"key": "AuthorizationKey", "readonly": False, "value": "s3cret"},
                {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                {"key": "AuthorizationKey", "readonly": False},
            ],
            "unknownKey": ["AuthorizationKey"],
        }
        self.assertEqual(
            redact(answer),
            {
                "configurationKey": [
                    {"key": "AuthorizationKey", "readonly": False, "value": REDACTED},
                    {"key": "HeartbeatInterval", "readonly": False, "value": "300"},
                    {"key": "AuthorizationKey", "readonly": False},
                ],
                "unknownKey": ["AuthorizationKey"],
            },
        )

    def test_everything_else_untouched(self) -> None:
        """Other payloads come back as the very same object (no copy on the hot path)."""
        for payload in [
            {"key": "HeartbeatInterval", "value": "60"},
            {"configurationKey": [{"key": "MeterValueSampleInterval", "value": "60"}]},
            {"key": ["AuthorizationKey"]},
            {"status": "Accepted"},
            {},
            [],
            None,
        ]:
            self.assertIs(redact(payload), payload)

    def test_new_authorization_key(self) -> None:
        """The key a command sets, only for ChangeConfiguration of AuthorizationKey."""
        change = {"key": "authorizationKey", "value": "k" * 16}
        self.assertEqual(new_authorization_key("ChangeConfiguration", change), "k" * 16)
        self.assertIsNone(new_authorization_key("DataTransfer", change))
        self.assertIsNone(
            new_authorization_key("ChangeConfiguration", {"key": "HeartbeatInterval", "value": "1"})
        )
