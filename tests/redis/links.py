"""A started ``RedisLink`` for a test: the connections a node would have."""

from __future__ import annotations

from twisted.internet import reactor
from twisted.trial.unittest import TestCase

from ocppd.redis.link import RedisLink


def started_link(testcase: TestCase, url: str) -> RedisLink:
    """
    A link to ``url``, connecting, closed when the test ends: after whatever
    uses it, whose cleanups the test adds later and so run first.
    """
    link = RedisLink(reactor=reactor, url=url)
    link.start()
    testcase.addCleanup(link.stop)
    return link
