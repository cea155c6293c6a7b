"""
Reading the CMS's paged lists and their CSV exports as an operator, over real
HTTP: shared by the tests of each list (people, stations, points, sessions).
"""

from __future__ import annotations

import csv
import io
from typing import Any
from urllib.parse import urlencode

import treq
from twisted.internet import reactor
from twisted.internet.defer import inlineCallbacks
from twisted.web.client import HTTPConnectionPool

from tests.api.test_api import ApiTestCase


class ListReading(ApiTestCase):
    """An ``ApiTestCase`` whose ``token`` (set in ``setUp``) reads lists."""

    token: str

    @inlineCallbacks
    def get(self, path: str, **query: Any) -> Any:
        """One page (or answer) of ``path``, which must be 200."""
        code, body, _ = yield self.request("GET", f"{path}?{urlencode(query)}", token=self.token)
        self.assertEqual(code, 200, body)
        return body

    @inlineCallbacks
    def all_pages(self, path: str, **query: Any) -> Any:
        """Every item of a list, following its ``next`` cursors to the end."""
        items: list[Any] = []
        body = yield self.get(path, **query)
        items += body["items"]
        while body["next"]:
            body = yield self.get(path, **query, cursor=body["next"])
            items += body["items"]
        return items

    @inlineCallbacks
    def csv_rows(self, path: str, **query: Any) -> Any:
        """A CSV export's rows, checked to be an attachment of ``text/csv``."""
        response = yield treq.get(
            self.url(f"{path}?{urlencode(query)}"),
            headers={"Authorization": f"Bearer {self.token}"},
            pool=HTTPConnectionPool(reactor, persistent=False),
        )
        text = yield response.text("utf-8")
        self.assertEqual(response.code, 200, text)
        self.assertEqual(
            response.headers.getRawHeaders("content-type"), ["text/csv; charset=utf-8"]
        )
        self.assertIn("attachment", response.headers.getRawHeaders("content-disposition")[0])
        return list(csv.reader(io.StringIO(text)))
