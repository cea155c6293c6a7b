"""Signing in to both front ends, and the CMS refusing customers."""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks

from tests.browser.base import ADMIN, CUSTOMER, BrowserTestCase


class SignInTests(BrowserTestCase):
    @inlineCallbacks
    def test_customer_signs_in_and_out(self) -> Any:
        """The panel asks for a sign-in, rejects a wrong password, shows the dashboard."""
        from playwright.sync_api import expect

        page = yield self.open(None, "/user/")
        yield self.screenshot(page, "user-signin")
        yield self.phone_screenshot(page, "user-signin-phone")

        def sign_in() -> None:
            page.get_by_label("Email").fill(CUSTOMER[0])
            page.get_by_label("Password").fill("wrong password")
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("alert")).to_have_text(
                "The email or the password is not right."
            )
            page.get_by_label("Password").fill(CUSTOMER[1])
            page.get_by_label("Password").press("Enter")
            expect(page.get_by_role("heading", level=1)).to_have_text("Hello")
            expect(page.locator(".who")).to_have_text(CUSTOMER[0])
            page.get_by_role("button", name="Sign out").click()
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()
            page.reload()
            expect(page.get_by_role("button", name="Sign in")).to_be_visible()

        yield self.b(sign_in)

    @inlineCallbacks
    def test_customer_cannot_open_the_cms(self) -> Any:
        """A customer signing in to the CMS, or coming with a token, sees a refusal, no data."""
        from playwright.sync_api import expect

        page = yield self.open(None, "/cms/")

        def sign_in() -> None:
            page.get_by_label("Email").fill(CUSTOMER[0])
            page.get_by_label("Password").fill(CUSTOMER[1])
            page.get_by_role("button", name="Sign in").click()
            expect(page.locator("[data-refused=role]")).to_contain_text("needs an admin account")
            expect(page.get_by_role("navigation")).to_have_count(0)

        yield self.b(sign_in)
        yield self.screenshot(page, "cms-refused")

        page = yield self.open(CUSTOMER, "/cms/#/points")

        def deep_link() -> Any:
            expect(page.locator("[data-refused=role]")).to_be_visible()
            expect(page.locator("table")).to_have_count(0)
            # The API is the real guard: the customer's own token gets 403.
            return page.evaluate(
                """async () => {
                    const token = localStorage.getItem('ocppd.cms.token');
                    const headers = {Authorization: 'Bearer ' + token};
                    const r = await fetch('/api/cms/points', {headers});
                    return r.status;
                }"""
            )

        status = yield self.b(deep_link)
        self.assertEqual(status, 403)

    @inlineCallbacks
    def test_admin_signs_in_to_the_cms(self) -> Any:
        """An operator signs in to the CMS and sees its navigation."""
        from playwright.sync_api import expect

        page = yield self.open(None, "/cms/")
        yield self.screenshot(page, "cms-signin")

        def sign_in() -> None:
            page.get_by_label("Email").fill(ADMIN[0])
            page.get_by_label("Password").fill(ADMIN[1])
            page.get_by_role("button", name="Sign in").click()
            nav = page.get_by_role("navigation", name="Main")
            for name in ["Dashboard", "Stations", "Charging points", "Sessions", "Tariffs"]:
                expect(nav.get_by_role("link", name=name)).to_be_visible()

        yield self.b(sign_in)
