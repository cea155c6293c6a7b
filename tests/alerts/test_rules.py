"""The alert rules and notices: pure logic, no I/O."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email import message_from_bytes

from twisted.trial.unittest import SynchronousTestCase

from ocppd.alerts import rules
from ocppd.alerts.notices import (
    RAISED,
    RESOLVED,
    Alert,
    Notice,
    email_message,
    signature,
    verify,
    webhook_body,
)
from ocppd.alerts.rules import (
    FaultedConnector,
    Observation,
    OfflineCharger,
    OpenSession,
    QueueState,
    Rules,
    changes,
    conditions,
    observed_elsewhere,
)
from ocppd.config import load_config

NOW = datetime(2026, 12, 7, 12, 0, tzinfo=UTC)


def offline(cp: str, minutes: float) -> OfflineCharger:
    return OfflineCharger(cp, NOW - timedelta(minutes=minutes))


class ConditionTests(SynchronousTestCase):
    def test_offline_beyond_the_threshold_only(self) -> None:
        """A charger offline for more than N minutes holds; one offline for N or less does not."""
        seen = Observation(offline=(offline("CP-1", 16), offline("CP-2", 15), offline("CP-3", 1)))
        found = conditions(Rules(offline_after=timedelta(minutes=15)), seen, NOW)
        self.assertEqual(list(found), ["charger_offline:CP-1"])
        condition = found["charger_offline:CP-1"]
        self.assertEqual((condition.kind, condition.subject), (rules.OFFLINE, "CP-1"))
        self.assertEqual(condition.since, NOW - timedelta(minutes=16))
        self.assertIn("16 minutes", condition.summary)

    def test_each_faulted_connector_is_its_own_condition(self) -> None:
        at = NOW - timedelta(minutes=3)
        seen = Observation(
            faulted=(
                FaultedConnector("CP-1", 1, "GroundFailure", "relay", at),
                FaultedConnector("CP-1", 2, "OtherError", None, at),
            )
        )
        found = conditions(Rules(), seen, NOW)
        self.assertEqual(sorted(found), ["connector_faulted:CP-1/1", "connector_faulted:CP-1/2"])
        self.assertEqual(found["connector_faulted:CP-1/1"].data["errorCode"], "GroundFailure")

    def test_long_sessions(self) -> None:
        seen = Observation(
            sessions=(
                OpenSession(7, "CP-1", 1, NOW - timedelta(hours=25)),
                OpenSession(8, "CP-1", 2, NOW - timedelta(hours=23)),
            )
        )
        found = conditions(Rules(session_after=timedelta(hours=24)), seen, NOW)
        self.assertEqual(list(found), ["session_long:7"])
        self.assertIn("25 hours", found["session_long:7"].summary)

    def test_dead_letters_and_lag(self) -> None:
        seen = Observation(
            queues=(
                QueueState("n1/processor", dead=2, lag_seconds=301.0),
                QueueState("n1/audit", dead=0, lag_seconds=299.0),
                QueueState("processor", dead=None, lag_seconds=None),  # RabbitMQ, unknown
            )
        )
        found = conditions(Rules(lag_after=300.0), seen, NOW)
        self.assertEqual(sorted(found), ["dead_letters:n1/processor", "lag:n1/processor"])

    def test_rules_that_are_off_find_nothing(self) -> None:
        seen = Observation(
            offline=(offline("CP-1", 600),),
            faulted=(FaultedConnector("CP-1", 1, "OtherError", None, NOW),),
            sessions=(OpenSession(7, "CP-1", 1, NOW - timedelta(days=9)),),
            queues=(QueueState("n1/processor", 5, 9999.0),),
        )
        off = Rules(
            offline_after=None,
            faulted=False,
            session_after=None,
            dead_letters=False,
            lag_after=None,
        )
        self.assertEqual(conditions(off, seen, NOW), {})
        self.assertEqual(len(conditions(Rules(), seen, NOW)), 5)

    def test_rules_from_config(self) -> None:
        """0 turns a threshold off; the others become durations."""
        config = load_config(
            None, ["alerts.offline_minutes=0", "alerts.session_hours=2", "alerts.lag_seconds=30"]
        )
        made = Rules.from_config(config.alerts)
        self.assertEqual(
            (made.offline_after, made.session_after, made.lag_after),
            (None, timedelta(hours=2), 30.0),
        )


class ChangeTests(SynchronousTestCase):
    def holding(self, *keys: str) -> dict[str, rules.Condition]:
        seen = Observation(offline=tuple(offline(key, 60) for key in keys))
        return conditions(Rules(), seen, NOW)

    def test_new_conditions_are_raised_once(self) -> None:
        """A condition with an open alert is not raised again; one without is."""
        decided = changes(
            {"charger_offline:CP-1": rules.OFFLINE}, self.holding("CP-1", "CP-2"), frozenset()
        )
        self.assertEqual([c.key for c in decided.raised], ["charger_offline:CP-2"])
        self.assertEqual(decided.resolved, ())

    def test_cleared_conditions_are_resolved(self) -> None:
        open_kinds = {"charger_offline:CP-1": rules.OFFLINE, "lag:n1/processor": rules.LAG}
        decided = changes(open_kinds, self.holding(), frozenset())
        self.assertEqual(sorted(decided.resolved), sorted(open_kinds))
        self.assertEqual(decided.raised, ())

    def test_an_incomplete_kind_resolves_nothing(self) -> None:
        """What was not read (a list cut at its bound, RabbitMQ unreachable) is not cleared."""
        open_kinds = {
            "charger_offline:CP-9": rules.OFFLINE,
            "dead_letters:audit": rules.DEAD_LETTERS,
        }
        decided = changes(open_kinds, self.holding(), frozenset({rules.DEAD_LETTERS}))
        self.assertEqual(decided.resolved, ("charger_offline:CP-9",))

    def test_another_nodes_consumer_lag_is_left_to_it(self) -> None:
        """Each node reads its own consumers' lag: it does not resolve another node's."""
        open_alerts = {
            "lag:n2/processor": (rules.LAG, "n2/processor"),
            "lag:n1/processor": (rules.LAG, "n1/processor"),
            "lag:n2/outbox": (rules.LAG, "n2/outbox"),  # from the store: every node sees it
        }
        elsewhere = observed_elsewhere(open_alerts, "n1", ["processor", "audit"])
        self.assertEqual(elsewhere, frozenset({"lag:n2/processor"}))
        open_kinds = {key: kind for key, (kind, _) in open_alerts.items()}
        decided = changes(open_kinds, {}, frozenset(), elsewhere)
        self.assertEqual(sorted(decided.resolved), ["lag:n1/processor", "lag:n2/outbox"])


ALERT = Alert(
    id="a" * 32,
    key="connector_faulted:CP-1/1",
    kind=rules.FAULTED,
    subject="CP-1",
    summary="Charger CP-1 connector 1 Faulted (GroundFailure)",
    data={"chargePointId": "CP-1", "info": "bad\r\nBcc: x@evil"},
    since=NOW,
    raised_at=NOW,
    node="n1",
)


class NoticeTests(SynchronousTestCase):
    def test_signature_round_trip(self) -> None:
        """What a receiver recomputes matches; another body, time or key does not."""
        body = webhook_body(Notice(RAISED, ALERT))
        header = signature("s" * 16, 1_800_000_000, body)
        self.assertTrue(header.startswith("sha256="))
        self.assertTrue(verify("s" * 16, "1800000000", body, header))
        self.assertFalse(verify("s" * 16, "1800000001", body, header))
        self.assertFalse(verify("t" * 16, "1800000000", body, header))
        self.assertFalse(verify("s" * 16, "1800000000", body + b" ", header))
        self.assertFalse(verify("s" * 16, "-1", body, header))

    def test_webhook_body(self) -> None:
        import json

        body = json.loads(webhook_body(Notice(RESOLVED, attrs_evolve(ALERT))))
        self.assertEqual(body["type"], "alert.resolved")
        self.assertEqual(body["alert"]["id"], ALERT.id)
        self.assertEqual(body["alert"]["resolvedAt"], "2026-12-07T13:00:00.000Z")

    def test_email_cannot_be_given_headers_by_a_charger(self) -> None:
        """Charger text stays in the body; the subject holds no line break."""
        alert = attrs_evolve(ALERT, summary="Charger CP-1\r\nBcc: x@evil.example")
        raw = email_message(
            Notice(RAISED, alert),
            mail_from="ocppd@example.com",
            mail_to=("ops@example.com",),
            at=NOW,
        )
        parsed = message_from_bytes(raw)
        self.assertIsNone(parsed["Bcc"])
        self.assertTrue(parsed["Subject"].startswith("[ocppd] ALERT: Charger CP-1"))
        self.assertEqual(parsed["To"], "ops@example.com")


def attrs_evolve(alert: Alert, **changes: object) -> Alert:
    import attrs

    values = {"resolved_at": NOW + timedelta(hours=1), **changes}
    return attrs.evolve(alert, **values)  # type: ignore[arg-type]
