"""ocppd.bus.amqp.hold_loss_notice: a lost connection is told only once it counts as made."""

from __future__ import annotations

from twisted.application._client_service import _ReconnectingProtocolProxy
from twisted.internet.error import ConnectionDone, ConnectionLost
from twisted.internet.protocol import Protocol
from twisted.python.failure import Failure
from twisted.trial.unittest import SynchronousTestCase

from ocppd.bus.amqp import hold_loss_notice


class HoldLossNoticeTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.notices: list[Failure] = []
        self.proxy = _ReconnectingProtocolProxy(Protocol(), self.notices.append)

    def test_loss_while_preparing_is_not_relayed(self) -> None:
        """
        A connection lost during preparation is not reported to ClientService
        (which would raise NoTransition): the preparation fails instead.
        """
        release = hold_loss_notice(self.proxy)
        self.proxy.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(self.notices, [])
        self.assertRaises(ConnectionLost, release)
        self.assertEqual(self.notices, [])

    def test_loss_after_preparation_is_relayed(self) -> None:
        """Once prepared, a lost connection is reported as before."""
        release = hold_loss_notice(self.proxy)
        release()
        self.proxy.connectionLost(Failure(ConnectionDone()))
        self.assertEqual(len(self.notices), 1)

    def test_protocol_without_a_proxy(self) -> None:
        """A bare protocol (tests) needs no holding."""
        hold_loss_notice(Protocol())()
