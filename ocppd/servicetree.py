"""
A parent service whose children start one after the other and stop in reverse.

Twisted's ``MultiService`` starts every child at once and ignores the
Deferred a ``startService`` returns; a node needs the database up before the
bus, the bus before the listeners. Here (as in Buildbot's
``AsyncMultiService``) each child's start is waited for before the next one
begins; a child whose start fails is stopped together with the ones before
it, in reverse, and the start fails. The stop goes in reverse too, waiting
for each child; one child's failing stop does not keep the others running.
"""

from __future__ import annotations

from collections.abc import Generator
from typing import Any

from twisted.application.service import Service
from twisted.internet.defer import CancelledError, Deferred, inlineCallbacks, maybeDeferred

from ocppd.logs import Logger


class OrderedServices(Service):
    """Children started in the order added, each waited for; stopped in reverse."""

    log = Logger()

    def __init__(self) -> None:
        self.children: list[Service] = []
        # Started, or starting: what a stop (or a failed start) must stop.
        self._up: list[Service] = []
        self._starting: Deferred[None] | None = None
        self._current: Deferred[Any] | None = None

    def add(self, child: Service) -> Service:
        """Append ``child``: it starts after every child added before it."""
        assert not self.running, "children are added before the start"
        self.children.append(child)
        return child

    def startService(self) -> Deferred[None]:
        super().startService()
        self._starting = self._start_children()
        return self._starting

    @inlineCallbacks
    def _start_children(self) -> Generator[Deferred[Any], Any, None]:
        for child in self.children:
            if not self.running:
                raise CancelledError()
            # Listed before it starts: a child that fails half-way is stopped
            # too, so its stopService copes with a partial start.
            self._up.append(child)
            self._current = maybeDeferred(child.startService)
            try:
                yield self._current
            except BaseException:
                self._current = None
                yield self._stop_started()
                raise
            self._current = None

    @inlineCallbacks
    def _stop_started(self) -> Generator[Deferred[Any], Any, None]:
        while self._up:
            child = self._up.pop()
            try:
                yield maybeDeferred(child.stopService)
            except Exception:
                self.log.failure("Could not stop {child}", child=child.name or type(child).__name__)

    @inlineCallbacks
    def stopService(self) -> Generator[Deferred[Any], Any, None]:
        super().stopService()
        starting, self._starting = self._starting, None
        if starting is not None and not starting.called:
            # A stop during the start: the child starting now gives up, the
            # start stops what it started (in reverse), and the stop waits for that.
            if self._current is not None:
                self._current.cancel()
            waited: Deferred[None] = Deferred()

            def done(result: object) -> object:
                waited.callback(None)
                return result  # the start's own outcome, for whoever waits on it

            starting.addBoth(done)
            yield waited
        yield self._stop_started()
