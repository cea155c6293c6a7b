"""Tests for ``ocppd.ocpp.actions``: action sets, inbound classification, kebab names."""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from ocppd.ocpp import actions, errors


class ActionSetTests(SynchronousTestCase):
    """The sets match OCPP 1.6 and the security whitepaper."""

    def test_sizes_and_overlap(self) -> None:
        """10 charger-initiated and 19 central-system-initiated actions share only
        DataTransfer; the security whitepaper adds 11."""
        self.assertEqual(len(actions.CHARGER_INITIATED), 10)
        self.assertEqual(len(actions.CENTRAL_SYSTEM_INITIATED), 19)
        self.assertEqual(
            actions.CHARGER_INITIATED & actions.CENTRAL_SYSTEM_INITIATED, {"DataTransfer"}
        )
        self.assertEqual(len(actions.SECURITY_EXTENSION), 11)
        self.assertFalse(actions.SECURITY_EXTENSION & actions.CHARGER_INITIATED)
        self.assertFalse(actions.SECURITY_EXTENSION & actions.CENTRAL_SYSTEM_INITIATED)
        self.assertEqual(len(actions.KNOWN), 39)

    def test_security_split(self) -> None:
        """The security actions split by sender without overlap."""
        self.assertEqual(
            actions.SECURITY_CHARGER_INITIATED | actions.SECURITY_CENTRAL_SYSTEM_INITIATED,
            actions.SECURITY_EXTENSION,
        )
        self.assertFalse(
            actions.SECURITY_CHARGER_INITIATED & actions.SECURITY_CENTRAL_SYSTEM_INITIATED
        )
        self.assertIn("SecurityEventNotification", actions.SECURITY_CHARGER_INITIATED)
        self.assertIn("CertificateSigned", actions.SECURITY_CENTRAL_SYSTEM_INITIATED)

    def test_transaction_actions(self) -> None:
        """The messages stored before they are acknowledged."""
        self.assertEqual(
            actions.TRANSACTION_ACTIONS, {"StartTransaction", "StopTransaction", "MeterValues"}
        )
        self.assertLessEqual(actions.TRANSACTION_ACTIONS, actions.CHARGER_INITIATED)

    def test_immutable(self) -> None:
        """The sets are frozensets: no module can change what another sees."""
        for value in (
            actions.CHARGER_INITIATED,
            actions.CENTRAL_SYSTEM_INITIATED,
            actions.SECURITY_EXTENSION,
            actions.KNOWN,
            actions.TRANSACTION_ACTIONS,
        ):
            self.assertIsInstance(value, frozenset)


class ClassifyInboundTests(SynchronousTestCase):
    """What a CALL from a charger gets, by action (OCPP-J 1.6 table 7)."""

    def test_table(self) -> None:
        """Supported -> None; not an action -> NotImplemented; a known action a central
        system does not take from a charger -> NotSupported."""
        rows = [
            ("BootNotification", None),
            ("Heartbeat", None),
            ("StartTransaction", None),
            ("DataTransfer", None),
            ("Reset", errors.NOT_SUPPORTED),
            ("RemoteStartTransaction", errors.NOT_SUPPORTED),
            ("GetConfiguration", errors.NOT_SUPPORTED),
            ("SecurityEventNotification", errors.NOT_SUPPORTED),
            ("SignCertificate", errors.NOT_SUPPORTED),
            ("InstallCertificate", errors.NOT_SUPPORTED),
            ("FooBar", errors.NOT_IMPLEMENTED),
            ("heartbeat", errors.NOT_IMPLEMENTED),
            ("BootNotificationResponse", errors.NOT_IMPLEMENTED),
            ("NotifyReport", errors.NOT_IMPLEMENTED),  # OCPP 2.0.1, not 1.6
            ("", errors.NOT_IMPLEMENTED),
        ]
        for action, expected in rows:
            self.assertEqual(actions.classify_inbound(action), expected, action)

    def test_every_charger_action_supported(self) -> None:
        """Every charger-initiated action is handled."""
        for action in actions.CHARGER_INITIATED:
            self.assertIsNone(actions.classify_inbound(action), action)

    def test_every_other_known_action_not_supported(self) -> None:
        """Every other known action is NotSupported, never NotImplemented."""
        for action in actions.KNOWN - actions.CHARGER_INITIATED:
            self.assertEqual(actions.classify_inbound(action), errors.NOT_SUPPORTED, action)

    def test_supported_parameter(self) -> None:
        """A daemon handling some security actions can say so."""
        supported = actions.CHARGER_INITIATED | {"SecurityEventNotification"}
        self.assertIsNone(
            actions.classify_inbound("SecurityEventNotification", supported=supported)
        )
        self.assertEqual(
            actions.classify_inbound("SignCertificate", supported=supported),
            errors.NOT_SUPPORTED,
        )


class KebabTests(SynchronousTestCase):
    """Action names <-> kebab-case names for URLs."""

    def test_examples(self) -> None:
        """The REST paths of DESIGN.md section 4 come out as expected."""
        rows = [
            ("RemoteStartTransaction", "remote-start-transaction"),
            ("ChangeConfiguration", "change-configuration"),
            ("Reset", "reset"),
            ("GetCompositeSchedule", "get-composite-schedule"),
            ("GetLocalListVersion", "get-local-list-version"),
            ("ExtendedTriggerMessage", "extended-trigger-message"),
        ]
        for action, kebab in rows:
            self.assertEqual(actions.kebab_case(action), kebab)
            self.assertEqual(actions.action_from_kebab(kebab), action)

    def test_round_trip_every_action(self) -> None:
        """Every known action survives the round trip, and kebab names are distinct."""
        names = {actions.kebab_case(action) for action in actions.KNOWN}
        self.assertEqual(len(names), len(actions.KNOWN))
        for action in actions.KNOWN:
            self.assertEqual(actions.action_from_kebab(actions.kebab_case(action)), action)

    def test_malformed_names_refused(self) -> None:
        """Names that are not lower-case kebab-case cannot alias a real action."""
        for name in [
            "",
            "Reset",
            "remote-Start-transaction",
            "remote--start",
            "-reset",
            "reset-",
            "remote_start",
            "reset\n",
            "remote start",
            "1reset",
        ]:
            self.assertRaises(ValueError, actions.action_from_kebab, name)

    def test_unknown_name_converts(self) -> None:
        """Conversion does not decide membership: the caller checks ``in KNOWN``."""
        self.assertEqual(actions.action_from_kebab("foo-bar"), "FooBar")
        self.assertNotIn("FooBar", actions.KNOWN)
