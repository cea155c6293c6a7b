"""
The contract of ``IPresence``: what every presence implementation must do.

``PresenceContractTests`` is a mixin; each implementation's tests subclass it
with ``twisted.trial.unittest.TestCase`` and provide ``make_presence``, which
gives presences of several nodes sharing one store (one hub, or one Redis key
prefix per test). The tests use real time (the global reactor) and short
leases, so they run unchanged on both.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from typing import Any

from twisted.internet import reactor
from twisted.internet.defer import Deferred, inlineCallbacks
from twisted.internet.task import deferLater
from twisted.trial.unittest import TestCase
from zope.interface.verify import verifyObject

from ocppd.presence.interface import IPresence, Owner

POLL_INTERVAL = 0.01
#: How long a wait on a real broker or store may take before the test fails:
#: a bound for a hang, not a deadline (polls end as soon as what they wait for
#: holds; under CI's load a reactor stalls for seconds).
POLL_TIMEOUT = 30.0
#: Long enough that a test's own calls finish well within it.
LEASE = 30.0


def sleep(seconds: float) -> Deferred[None]:
    return deferLater(reactor, seconds, lambda: None)


@inlineCallbacks
def eventually(
    check: Callable[[], Any], timeout: float = POLL_TIMEOUT
) -> Generator[Deferred[Any], Any, Any]:
    """Poll ``check`` (may return a Deferred) until truthy; fail after ``timeout`` s."""
    deadline = reactor.seconds() + timeout  # type: ignore[attr-defined]
    while True:
        result = yield check()
        if result:
            return result
        if reactor.seconds() > deadline:  # type: ignore[attr-defined]
            raise AssertionError(f"still {result!r} after {timeout} s")
        yield sleep(POLL_INTERVAL)


class PresenceContractTests:
    """Mixin: the IPresence contract. Subclasses provide ``make_presence``."""

    def make_presence(self, node_id: str, lease: float = LEASE) -> Deferred[IPresence]:
        """
        A connected presence for ``node_id`` on this test's store (shared by every
        presence the test makes), not yet renewing (call ``start``). The
        subclass stops it and removes what it stored when the test ends.
        """
        raise NotImplementedError

    def lose_store_data(self) -> Deferred[None]:
        """Forget everything the store holds for this test (Redis restarted without its data)."""
        raise NotImplementedError

    def _lost_calls(self, presence: IPresence) -> list[tuple[str, int]]:
        calls: list[tuple[str, int]] = []
        presence.on_lost(lambda cp, fence: calls.append((cp, fence)))
        return calls

    @inlineCallbacks
    def test_provides(self) -> Generator[Deferred[Any], Any, None]:
        a = yield self.make_presence("a")
        self.assertTrue(verifyObject(IPresence, a))

    @inlineCallbacks
    def test_claim_makes_owner(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("node-a")
        self.assertIsNone((yield a.owner("CP1")))
        fence = yield a.claim("CP1")
        self.assertEqual((yield a.owner("CP1")), Owner("node-a", fence))
        self.assertEqual((yield a.owner_node("CP1")), "node-a")
        self.assertIsNone((yield a.owner_node("CP2")))
        t.assertEqual(a.held(), {"CP1": fence})

    @inlineCallbacks
    def test_claim_refuses_malformed_id(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        for bad in ("", "a b", "CP\n1", "x" * 49):
            t.failureResultOf(a.claim(bad), ValueError)
        t.assertEqual(a.held(), {})

    @inlineCallbacks
    def test_fences_grow_across_nodes(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        f1 = yield a.claim("CP1")
        f2 = yield b.claim("CP1")
        f3 = yield a.claim("CP1")
        t.assertLess(f1, f2)
        t.assertLess(f2, f3)
        yield a.release("CP1", f3)
        f4 = yield b.claim("CP1")
        t.assertLess(f3, f4, "a release must not reset the fence")
        # Another charger has its own counter, unaffected.
        other = yield a.claim("CP2")
        t.assertEqual((yield a.owner("CP2")), Owner("a", other))

    @inlineCallbacks
    def test_takeover_tells_previous_owner(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        lost_a = self._lost_calls(a)
        lost_b = self._lost_calls(b)
        fa = yield a.claim("CP1")
        fb = yield b.claim("CP1")
        yield eventually(lambda: lost_a)
        t.assertEqual(lost_a, [("CP1", fa)])
        t.assertEqual(a.held(), {})
        t.assertEqual(b.held(), {"CP1": fb})
        t.assertEqual((yield b.owner("CP1")), Owner("b", fb))
        t.assertEqual(lost_b, [])

    @inlineCallbacks
    def test_reclaim_on_same_node_tells_nobody(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        lost_a = self._lost_calls(a)
        lost_b = self._lost_calls(b)
        yield a.claim("CP1")
        f2 = yield a.claim("CP1")
        # A takeover by b afterwards is told, so the absence above is not a delay.
        yield b.claim("CP1")
        yield eventually(lambda: lost_a)
        t.assertEqual(lost_a, [("CP1", f2)])
        t.assertEqual(lost_b, [])

    @inlineCallbacks
    def test_stale_release_changes_nothing(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        fa = yield a.claim("CP1")
        fb = yield b.claim("CP1")
        # a's socket closes late, after b took the charger.
        t.assertFalse((yield a.release("CP1", fa)))
        t.assertEqual((yield a.owner("CP1")), Owner("b", fb))
        # b releasing a's fence (a bug, or a forged value) changes nothing either.
        t.assertFalse((yield b.release("CP1", fa)))
        t.assertEqual((yield b.owner("CP1")), Owner("b", fb))

    @inlineCallbacks
    def test_release_current(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        fence = yield a.claim("CP1")
        t.assertTrue((yield a.release("CP1", fence)))
        t.assertIsNone((yield a.owner("CP1")))
        t.assertEqual(a.held(), {})
        t.assertFalse((yield a.release("CP1", fence)))

    @inlineCallbacks
    def test_late_renewal_does_not_overwrite_newer_owner(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        fa = yield a.claim("CP1")
        yield a.claim("CP2")
        fb = yield b.claim("CP1")
        # The renewal a sends before it learns of the takeover.
        stale = [("CP1", fa), ("CP2", a.held()["CP2"])]
        lost = yield a._renew(stale)  # type: ignore[attr-defined]
        t.assertEqual(lost, [("CP1", fa)])
        t.assertEqual((yield a.owner("CP1")), Owner("b", fb))

    @inlineCallbacks
    def test_renew_reports_lost_claims(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        lost_calls = self._lost_calls(a)
        # Enough claims for several batches of the Redis renewal (1,000 each).
        ids = [f"CP{i}" for i in range(2500)]
        for cp in ids:
            yield a.claim(cp)
        fences = a.held()
        taken = yield b.claim("CP1500")
        # The renewal or the takeover message, whichever comes first, reports it: once.
        yield a.renew()
        yield eventually(lambda: lost_calls)
        yield sleep(0.1)
        t.assertNotIn("CP1500", a.held())
        t.assertEqual(len(a.held()), 2499)
        t.assertEqual(lost_calls, [("CP1500", fences["CP1500"])])
        t.assertEqual((yield a.owner("CP1500")), Owner("b", taken))
        t.assertEqual((yield a.owner("CP2499")), Owner("a", fences["CP2499"]))
        t.assertEqual((yield a.renew()), [])

    @inlineCallbacks
    def test_owners_in_one_call(self) -> Generator[Deferred[Any], Any, None]:
        """Every id asked is answered: its owner, or None (unknown, released, never claimed)."""
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        t.assertEqual((yield a.owners([])), {})
        fa = yield a.claim("CP1")
        fb = yield b.claim("CP2")
        released = yield a.claim("CP3")
        yield a.release("CP3", released)
        # Ids no claim can have (a customer's start names any) are nobody's too.
        owners = yield b.owners(["CP1", "CP2", "CP3", "NEVER", "CP1", "a b", "", "x\ny"])
        t.assertEqual(
            owners,
            {
                "CP1": Owner("a", fa),
                "CP2": Owner("b", fb),
                "CP3": None,
                "NEVER": None,
                "a b": None,
                "": None,
                "x\ny": None,
            },
        )
        # More ids than one script run takes (Redis: 1,000 keys a run).
        ids = [f"CP{n}" for n in range(2500)]
        owners = yield a.owners(ids)
        t.assertEqual(list(owners), ids)
        t.assertEqual(
            {cp: o for cp, o in owners.items() if o is not None},
            {"CP1": Owner("a", fa), "CP2": Owner("b", fb)},
        )

    @inlineCallbacks
    def test_owners_forget_expired_claims(self) -> Generator[Deferred[Any], Any, None]:
        """A node that died: its claims are nobody's within the lease, as ``owners`` sees it."""
        t = self._t()
        dead = yield self.make_presence("dead", lease=0.2)
        live = yield self.make_presence("live")
        yield dead.claim("CP1")
        kept = yield live.claim("CP2")
        yield eventually(
            lambda: live.owners(["CP1", "CP2"]).addCallback(lambda owners: owners["CP1"] is None)
        )
        t.assertEqual(
            (yield live.owners(["CP1", "CP2"])), {"CP1": None, "CP2": Owner("live", kept)}
        )

    @inlineCallbacks
    def test_claim_expires_without_renewal(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        # A node that died without releasing: nothing renews its claim.
        a = yield self.make_presence("a", lease=0.2)
        fence = yield a.claim("CP1")
        yield eventually(lambda: a.owner("CP1").addCallback(lambda owner: owner is None))
        # A new claim afterwards still gets a greater fence.
        b = yield self.make_presence("b")
        t.assertGreater((yield b.claim("CP1")), fence)

    @inlineCallbacks
    def test_renewal_keeps_claim_beyond_lease(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a", lease=0.6)
        fence = yield a.claim("CP1")
        claimed_at = reactor.seconds()  # type: ignore[attr-defined]
        renewed_at = [claimed_at]
        held: Deferred[Any] = Deferred()
        renew = a.renew

        def checking_renew() -> Deferred[list[tuple[str, int]]]:
            # The claim is looked up at a timer's renewal, before it (when the
            # claim is oldest), once it is older than two leases. A tick that came
            # most of a lease after the previous renewal proves nothing (the
            # reactor stalled, as on a loaded machine): the next one is checked.
            now = reactor.seconds()  # type: ignore[attr-defined]
            if not held.called and now - claimed_at > 1.5 and now - renewed_at[-1] < 0.5:
                a.owner("CP1").chainDeferred(held)
            done = renew()
            done.addCallback(lambda result: (renewed_at.append(reactor.seconds()), result)[1])  # type: ignore[attr-defined]
            return done

        t.patch(a, "renew", checking_renew)
        a.start()
        owner = yield held.addTimeout(POLL_TIMEOUT, reactor)
        t.assertEqual(owner, Owner("a", fence))

    @inlineCallbacks
    def test_renewal_restores_expired_claim_nobody_took(
        self,
    ) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        # A node cut off from the store for longer than the lease keeps its socket.
        a = yield self.make_presence("a", lease=0.2)
        fence = yield a.claim("CP1")
        yield eventually(lambda: a.owner("CP1").addCallback(lambda owner: owner is None))
        t.assertEqual((yield a.renew()), [])
        t.assertEqual((yield a.owner("CP1")), Owner("a", fence))

    @inlineCallbacks
    def test_store_data_lost(self) -> Generator[Deferred[Any], Any, None]:
        """
        The store forgets everything: a renewal restores the node's claims (nobody
        claimed them since), and a later claim elsewhere still gets a greater fence.
        """
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        fence = yield a.claim("CP1")
        yield self.lose_store_data()
        t.assertIsNone((yield a.owner("CP1")))
        t.assertEqual((yield a.renew()), [])
        t.assertEqual((yield a.owner("CP1")), Owner("a", fence))
        yield self.lose_store_data()
        yield sleep(0.01)  # fences then come from the clock, in milliseconds
        t.assertGreater((yield b.claim("CP1")), fence)
        t.assertEqual((yield a.renew()), [("CP1", fence)])

    @inlineCallbacks
    def test_stop_releases_claims(self) -> Generator[Deferred[Any], Any, None]:
        t = self._t()
        a = yield self.make_presence("a")
        b = yield self.make_presence("b")
        yield a.claim("CP1")
        fb = yield b.claim("CP2")
        a.start()
        yield a.stop()
        t.assertIsNone((yield b.owner("CP1")))
        t.assertEqual((yield b.owner("CP2")), Owner("b", fb))

    def _t(self) -> TestCase:
        assert isinstance(self, TestCase)
        return self
