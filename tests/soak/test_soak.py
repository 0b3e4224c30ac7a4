"""The short chaos soak (the long one is ``make soak``): random faults of every kind, a
kill -9 and a restart, and the invariants checked after every round."""

from __future__ import annotations

from tests.soak.engine import run_soak


async def test_short_chaos_soak_keeps_every_invariant() -> None:
    stats = await run_soak(downloads=40, seed=20261126, kill_every=15)

    print(stats.summary())
    assert stats.downloads >= 40
    assert stats.kills >= 2
    assert sum(stats.faults.values()) >= 40  # every round met at least one fault
    assert stats.corrupt_final == 0
    assert stats.unverified_final == 0
    assert stats.secrets_in_logs == 0
    assert stats.loop_errors == 0
    assert stats.unexpected == []
    assert stats.recoveries > 0
