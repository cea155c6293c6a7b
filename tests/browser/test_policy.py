"""
The web listener's Content-Security-Policy in a real browser: in force, and
loose enough for the pages (every browser test fails on a console error, a
CSP violation included, so every page they visit is checked too).
"""

from __future__ import annotations

from typing import Any

from twisted.internet.defer import inlineCallbacks

from tests.api.test_api import CUSTOMER
from tests.browser.base import BrowserTestCase

#: Each tries what the policy forbids and says whether it worked.
ATTEMPTS = """
() => {
  const refused = [];
  document.addEventListener('securitypolicyviolation', (e) => refused.push(e.effectiveDirective));
  const worked = {};
  // A string timer is eval when it fires, in the page's own context (eval
  // within page.evaluate itself is exempt: Playwright asks the browser so).
  setTimeout('window.__timer = true', 0);
  const script = document.createElement('script');
  script.textContent = 'window.__inline = true';
  document.head.append(script);
  worked.inlineScript = window.__inline === true;
  const probe = document.createElement('p');
  probe.setAttribute('style', 'display: none');
  document.body.append(probe);
  worked.styleAttribute = getComputedStyle(probe).display === 'none';
  const img = new Image();
  img.src = 'https://example.com/pixel.png';
  return new Promise((resolve) => setTimeout(() => {
    worked.eval = window.__timer === true;
    resolve({ worked, refused });
  }, 100));
}
"""


class ContentSecurityPolicyTests(BrowserTestCase):
    @inlineCallbacks
    def test_policy_in_force(self) -> Any:
        """
        In a signed-in page: eval (a string timer), an injected inline
        script, a style attribute and an image from elsewhere are all refused.
        """
        page = yield self.open(CUSTOMER, "/user/")
        yield self.wait_live(page)
        # What follows provokes violations on purpose; the page's load did not.
        self.allow_console_error("Content Security Policy")
        result = yield self.b(lambda: page.evaluate(ATTEMPTS))
        self.assertEqual(
            result["worked"],
            {"eval": False, "inlineScript": False, "styleAttribute": False},
        )
        self.assertEqual(
            sorted(set(result["refused"])),
            ["img-src", "script-src", "script-src-elem", "style-src-attr"],
        )
