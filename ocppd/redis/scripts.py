"""Lua scripts on the link's command connection, with Redis's outages said once."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import txredisapi
from twisted.internet.defer import Deferred, fail
from twisted.python.failure import Failure

from twisted import logger as twisted_logger

if TYPE_CHECKING:
    from ocppd.redis.link import RedisLink

#: The errors of a Redis that is up but cannot take the scripts now (a
#: read-only replica after a failover, loading its data after a restart, a
#: script running too long, out of memory): its users are unavailable, as
#: when Redis is unreachable, and come back by themselves.
REFUSING = re.compile(r"\b(READONLY|LOADING|BUSY|MASTERDOWN|OOM|TRYAGAIN|NOREPLICAS)\b")


class ScriptRunner:
    """
    Runs Lua scripts on the link's command connection and turns a Redis that
    is unreachable, or up but refusing writes (``REFUSING``), into
    ``unavailable``; each kind of outage is logged once as it starts and once
    as it ends. Presence and the shared limits each have one, worded for their
    callers, on the one link of the node.
    """

    def __init__(
        self,
        # An ocppd.logs.Logger, which makes fields safe; typed as its base
        # because a class attribute Logger read through an instance is one.
        log: twisted_logger.Logger,
        link: RedisLink,
        *,
        service: str,
        while_unreachable: str,
        while_refusing: str,
        unavailable: type[Exception],
    ) -> None:
        self._log = log
        self._link = link
        self._service = service
        self._while_unreachable = while_unreachable
        self._while_refusing = while_refusing
        self._unavailable = unavailable
        self._unreachable_logged = False
        self._refusing_logged = False

    def eval(self, script: str, keys: list[str], args: list[Any]) -> Deferred[Any]:
        address = str(self._link.address)
        commands = self._link.commands()
        if commands is None:
            if not self._unreachable_logged:
                self._unreachable_logged = True
                self._log.error(
                    "{service}: Redis at {address} is unreachable; {consequence}"
                    " until it is back (reconnecting by itself)",
                    service=self._service,
                    address=address,
                    consequence=self._while_unreachable,
                )
            return fail(self._unavailable(f"Redis at {address} is unreachable"))
        if self._unreachable_logged:
            self._unreachable_logged = False
            self._log.info(
                "{service}: Redis at {address} is reachable", service=self._service, address=address
            )

        def failed(failure: Failure) -> Any:
            if failure.check(txredisapi.ConnectionError):
                raise self._unavailable(f"Redis at {address}: {failure.getErrorMessage()}")
            if failure.check(txredisapi.ResponseError) and REFUSING.search(
                failure.getErrorMessage()
            ):
                if not self._refusing_logged:
                    self._refusing_logged = True
                    self._log.error(
                        "{service}: Redis at {address} refuses: {reason}; {consequence}"
                        " until it accepts writes again",
                        service=self._service,
                        address=address,
                        reason=failure.getErrorMessage()[:200],
                        consequence=self._while_refusing,
                    )
                raise self._unavailable(f"Redis at {address} refuses: {failure.value}")
            return failure

        def succeeded(result: Any) -> Any:
            if self._refusing_logged:
                self._refusing_logged = False
                self._log.info(
                    "{service}: Redis at {address} answers again",
                    service=self._service,
                    address=address,
                )
            return result

        return commands.eval(script, keys, args).addCallbacks(succeeded, failed)
