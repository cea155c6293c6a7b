"""
A charging point's page as an operator runs it (issue 18, items 3 and 4):
all 19 commands with forms built from their schemas, a confirmation naming
what an interrupting command ends and the session it would end (Cancel
sends nothing: the simulated charger receives no such frame), per-connector
power and energy charts seeded from the stored meter values (the same after
a reload) and continued live, "booted" and "last seen" following the
charger's messages, and the page on a 360 px phone.
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks

from ocppd.store import audit, messages, transactions
from tests.browser.base import ADMIN, CUSTOMER, TAGS, BrowserTestCase


def narrow(page: Any) -> None:
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate(
        "[...document.querySelectorAll('body *')]"
        ".filter(e => e.getBoundingClientRect().right > 361).slice(0, 5)"
        ".map(e => `${e.tagName}.${e.className} ${e.getBoundingClientRect().right}`)"
    )
    assert width <= 360, f"the page is {width} px wide on a 360 px screen: {wide}"


class PointCommandTests(BrowserTestCase):
    @inlineCallbacks
    def charging(self, charge_point_id: str) -> Any:
        """A charger with two connectors and the customer charging on connector 1 (2.50 kWh)."""
        charger = yield self.charger(charge_point_id, connectors=2)
        tx = yield charger.start(1, TAGS[CUSTOMER[0]], 1000)
        yield charger.status(1, "Charging")
        yield charger.meter(1, tx, 3500, 7000)
        yield self.daemon.wait_for(
            transactions.get_transaction, tx, until=lambda s: s is not None and s.energy_wh == 2500
        )
        return charger, tx

    @inlineCallbacks
    def test_confirmation_cancelled_then_confirmed(self) -> Any:
        """
        A hard reset asks first, naming the customer's running session and its
        energy; Cancel sends nothing (the charger's next frame is the command
        sent after). A remote stop, confirmed, reaches the charger and is audited.
        """
        from playwright.sync_api import expect

        charger, tx = yield self.charging("CP-CONFIRM")
        page = yield self.open(ADMIN, "/cms/#/points/CP-CONFIRM")
        yield self.wait_live(page)
        commands = page.get_by_role("region", name="Commands")
        dialog = page.get_by_role("alertdialog", name="Reset CP-CONFIRM?")

        def ask_reset() -> None:
            commands.get_by_label("Command", exact=True).select_option("reset")
            form = page.locator("form[data-command=reset]")
            form.get_by_label("Type").select_option("Hard")
            form.get_by_role("button", name="Send").click()
            expect(dialog).to_contain_text("every session running on it ends")
            expect(dialog.locator("[data-session]")).to_have_count(1)
            expect(dialog.locator("[data-field=customer]")).to_have_text(CUSTOMER[0])
            expect(dialog.locator("[data-field=energy]")).to_have_text("2.50 kWh so far")

        yield self.b(ask_reset)
        yield self.screenshot(page, "cms-point-confirm-reset")

        def cancel() -> None:
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_have_count(0)
            expect(page.locator(".command-answer")).to_be_empty()
            # Something harmless, sent after: the charger's next command frame.
            commands.get_by_label("Command", exact=True).select_option("clear-cache")
            page.locator("form[data-command=clear-cache]").get_by_role(
                "button", name="Send"
            ).click()
            expect(page.locator("[data-answer=clear-cache]")).to_contain_text('"Accepted"')

        yield self.b(cancel)
        self.assertEqual([action for action, _ in charger.commands], ["ClearCache"])

        def stop() -> None:
            commands.get_by_label("Command", exact=True).select_option("remote-stop")
            form = page.locator("form[data-command=remote-stop]")
            expect(form.get_by_label("Transaction id")).to_have_value(str(tx))
            form.get_by_role("button", name="Send").click()
            confirm = page.get_by_role("alertdialog", name=f"Stop transaction {tx}?")
            expect(confirm.locator("[data-field=energy]")).to_have_text("2.50 kWh so far")
            confirm.get_by_role("button", name="Stop charging").click()
            expect(page.locator("[data-answer=remote-stop]")).to_contain_text('"Accepted"')

        yield self.b(stop)
        self.assertEqual(
            charger.commands, [("ClearCache", {}), ("RemoteStopTransaction", {"transactionId": tx})]
        )
        entries = yield self.daemon.wait_for(
            lambda conn: audit.list_audit_entries(conn, charge_point_id="CP-CONFIRM"),
            until=lambda rows: any(r.action == "command.remote-stop" for r in rows),
        )
        self.assertFalse(any("reset" in r.action for r in entries), entries)

    @inlineCallbacks
    def test_every_command_from_its_schema(self) -> Any:
        """
        19 commands; a nested form (a charging profile) sent as built; a change
        of availability asks first only for Inoperative; out of range, nothing is sent.
        """
        from playwright.sync_api import expect

        charger = yield self.charger("CP-FORMS", connectors=2)
        page = yield self.open(ADMIN, "/cms/#/points/CP-FORMS")
        commands = page.get_by_role("region", name="Commands")

        def profile() -> None:
            expect(commands.get_by_label("Command", exact=True).locator("option")).to_have_count(19)
            commands.get_by_label("Command", exact=True).select_option("set-charging-profile")
            form = page.locator("form[data-command=set-charging-profile]")
            form.get_by_label("Connector id").fill("1")
            form.get_by_label("Charging profile id").fill("7")
            form.get_by_label("Stack level").fill("0")
            form.get_by_label("Charging profile purpose").select_option("TxDefaultProfile")
            form.get_by_label("Charging profile kind").select_option("Relative")
            form.get_by_label("Charging rate unit").select_option("A")
            form.get_by_label("Start period").fill("0")
            form.get_by_label("Limit").fill("16")
            form.get_by_role("button", name="Add to Charging schedule period").click()
            form.get_by_label("Start period").nth(1).fill("3600")
            form.get_by_label("Limit").nth(1).fill("8.5")
            form.get_by_role("button", name="Send").click()
            expect(page.locator("[data-answer=set-charging-profile]")).to_contain_text("Accepted")

        yield self.b(profile)
        yield self.screenshot(page, "cms-point-command-form")
        self.assertEqual(
            charger.commands[-1],
            (
                "SetChargingProfile",
                {
                    "connectorId": 1,
                    "csChargingProfiles": {
                        "chargingProfileId": 7,
                        "stackLevel": 0,
                        "chargingProfilePurpose": "TxDefaultProfile",
                        "chargingProfileKind": "Relative",
                        "chargingSchedule": {
                            "chargingRateUnit": "A",
                            "chargingSchedulePeriod": [
                                {"startPeriod": 0, "limit": 16},
                                {"startPeriod": 3600, "limit": 8.5},
                            ],
                        },
                    },
                },
            ),
        )

        def availability() -> None:
            commands.get_by_label("Command", exact=True).select_option("change-availability")
            form = page.locator("form[data-command=change-availability]")
            form.get_by_label("Connector id").fill("2")
            form.get_by_label("Type").select_option("Operative")
            form.get_by_role("button", name="Send").click()
            expect(page.locator("[data-answer=change-availability]")).to_contain_text("Accepted")
            form.get_by_label("Type").select_option("Inoperative")
            form.get_by_role("button", name="Send").click()
            dialog = page.get_by_role(
                "alertdialog", name="Make connector 2 of CP-FORMS inoperative?"
            )
            expect(dialog).to_contain_text("No session is running there now.")
            dialog.get_by_role("button", name="Make inoperative").click()
            expect(dialog).to_have_count(0)
            expect(page.locator(".command-answer")).to_contain_text("Change availability:")

        yield self.b(availability)
        yield self.daemon.wait_for(
            messages.list_messages,
            "CP-FORMS",
            until=lambda rows: sum(r.action == "ChangeAvailability" for r in rows) >= 4,
        )
        self.assertEqual(
            [p for a, p in charger.commands if a == "ChangeAvailability"],
            [{"connectorId": 2, "type": "Operative"}, {"connectorId": 2, "type": "Inoperative"}],
        )

        def refused() -> None:
            # Out of the range the API holds to: the browser says so, nothing is sent.
            commands.get_by_label("Command", exact=True).select_option("unlock-connector")
            form = page.locator("form[data-command=unlock-connector]")
            form.get_by_label("Connector id").fill("0")
            form.get_by_role("button", name="Send").click()
            expect(form.get_by_label("Connector id")).to_have_js_property("validity.valid", False)

        yield self.b(refused)
        self.assertNotIn("UnlockConnector", [a for a, _ in charger.commands])


class PointChartTests(BrowserTestCase):
    @inlineCallbacks
    def test_charts_per_connector_from_history_then_live(self) -> Any:
        """Each connector its own charts, the same after a reload; a push extends only its own."""
        from playwright.sync_api import expect

        charger = yield self.charger("CP-CHARTS", connectors=2)
        tx1 = yield charger.start(1, TAGS[CUSTOMER[0]], 1_000_000)
        tx2 = yield charger.start(2, TAGS[CUSTOMER[0]], 50_000)
        for n in range(3):
            yield charger.meter(1, tx1, 1_000_000 + 500 * (n + 1), 7000)
            yield charger.meter(2, tx2, 50_000 + 100 * (n + 1), 3000 + n)
        yield self.daemon.wait_for(
            transactions.get_transaction, tx2, until=lambda s: s.energy_wh == 300
        )
        page = yield self.open(ADMIN, "/cms/#/points/CP-CHARTS")
        one = page.locator("[data-connector='1'] .chart")
        two = page.locator("[data-connector='2'] .chart")

        def seeded() -> None:
            expect(one.first).to_have_attribute("data-points", "3")
            expect(two.first).to_have_attribute("data-points", "3")
            # Connector 2's register is its own meter's, never connector 1's.
            expect(two.nth(1).locator(".chart-latest")).to_contain_text("50.30 kWh")
            expect(one.nth(1).locator(".chart-latest")).to_contain_text("1,001.50 kWh")

        yield self.b(seeded)
        yield self.wait_live(page)
        yield charger.meter(2, tx2, 50_400, 3300)
        yield self.expect(lambda: expect(two.first).to_have_attribute("data-points", "4"))
        yield self.expect(lambda: expect(one.first).to_have_attribute("data-points", "3"))
        yield self.screenshot(page, "cms-point-charts")

        def reload() -> None:
            page.reload()
            expect(two.first).to_have_attribute("data-points", "4")
            expect(one.first).to_have_attribute("data-points", "3")
            expect(two.nth(1).locator(".chart-latest")).to_contain_text("50.40 kWh")
            page.get_by_label("Period", exact=True).select_option("1")
            expect(two.first).to_have_attribute("data-points", "4")

        yield self.b(reload)

    @inlineCallbacks
    def test_booted_and_last_seen_live_and_narrow(self) -> Any:
        """A boot and a message after the page opened show at once; at 360 px nothing sticks out."""
        from playwright.sync_api import expect

        charger = yield self.charger("CP-SEEN", connectors=2)
        yield self.daemon.wait_for(
            messages.list_messages, "CP-SEEN", until=lambda rows: len(rows) >= 6
        )
        page = yield self.open(ADMIN, "/cms/#/points/CP-SEEN", width=360, height=780)
        yield self.wait_live(page)
        booted = page.locator("[data-field=booted]")
        seen = page.locator("[data-field=last-seen]")
        before = yield self.b(
            lambda: (booted.get_attribute("datetime"), seen.get_attribute("datetime"))
        )
        yield charger.boot()
        yield self.expect(lambda: expect(booted).not_to_have_attribute("datetime", before[0]))
        after_boot = yield self.b(lambda: booted.get_attribute("datetime"))
        yield charger.status(2, "Unavailable")
        yield self.expect(lambda: expect(seen).not_to_have_attribute("datetime", after_boot))
        self.assertGreater(after_boot, before[0])
        yield self.b(lambda: narrow(page))
        yield self.screenshot(page, "cms-point-phone")

        def reset_form() -> None:
            from playwright.sync_api import expect

            page.get_by_label("Command", exact=True).select_option("reset")
            narrow(page)
            form = page.locator("form[data-command=reset]")
            form.get_by_label("Type").select_option("Soft")
            form.get_by_role("button", name="Send").click()
            dialog = page.get_by_role("alertdialog", name="Reset CP-SEEN?")
            expect(dialog).to_contain_text("No session is running there now.")
            box = dialog.bounding_box()
            assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= 360, box
            dialog.get_by_role("button", name="Cancel").click()
            expect(dialog).to_have_count(0)

        yield self.b(reset_form)
        self.assertEqual(charger.commands, [])
