"""The counter-store contract, run unchanged on memory, a real Redis and a 3-master
Redis Cluster (the ``store`` fixture). Time moves only through the ManualClock, which the
Redis backends read through ``allow_time_override`` — no test sleeps."""

from __future__ import annotations

import pytest
from redis.crc import key_slot

from fs_plugin.clock import ManualClock
from fs_plugin.counters import (
    MAX_BATCH,
    SUB_BUCKETS,
    Acquire,
    CounterStore,
    CountResult,
    Distinct,
    DistinctResult,
    Flag,
    FlagResult,
    Get,
    GetFlag,
    Hit,
    HitResult,
    LeaseResult,
    Op,
    Release,
    ReleaseResult,
)

WINDOW = 60.0
BUCKET = WINDOW / SUB_BUCKETS


async def one(store: CounterStore, op: Op) -> object:
    (result,) = await store.execute([op])
    return result


# -- rate counters ---------------------------------------------------------------------


@pytest.mark.parametrize("limit", [1, 5, 30])
async def test_nth_hit_passes_and_next_is_over_until_the_window_passes(
    store: CounterStore, clock: ManualClock, limit: int
) -> None:
    for n in range(1, limit + 1):
        assert await one(store, Hit("caller:1", WINDOW, limit=limit)) == HitResult(n, False, True)
    # The refused hit is not added: a rejected call does not consume quota.
    over = HitResult(limit, True, False)
    assert await one(store, Hit("caller:1", WINDOW, limit=limit)) == over
    assert await one(store, Hit("caller:1", WINDOW, limit=limit)) == over
    # Still counted just before the window ends (the count never under-counts) ...
    clock.advance(WINDOW - 0.001)
    assert await one(store, Hit("caller:1", WINDOW, limit=limit)) == over
    # ... and gone once a window plus one sub-bucket has passed: back under the limit.
    clock.advance(BUCKET + 0.002)
    assert await one(store, Get("caller:1")) == CountResult(0)
    assert await one(store, Hit("caller:1", WINDOW, limit=limit)) == HitResult(1, False, True)


async def test_count_stays_within_the_documented_bound(
    store: CounterStore, clock: ManualClock
) -> None:
    # Hits every 7 s for ~3 windows: the reported count is never below the exact count of
    # the last window and never above the exact count of the last window + one sub-bucket.
    times: list[float] = []
    for _ in range(26):
        now = clock.time()
        times.append(now)
        result = await one(store, Hit("trunk:ent-1", WINDOW))
        assert isinstance(result, HitResult)
        exact = sum(1 for t in times if now - t < WINDOW)
        widest = sum(1 for t in times if now - t < WINDOW + BUCKET)
        assert exact <= result.count <= widest
        clock.advance(7.0)


async def test_hits_without_limit_always_add(store: CounterStore) -> None:
    results = await store.execute([Hit("callee:9", WINDOW) for _ in range(40)])
    assert [r.count for r in results if isinstance(r, HitResult)] == list(range(1, 41))
    assert all(isinstance(r, HitResult) and r.added and not r.over for r in results)


async def test_cost_and_peek(store: CounterStore) -> None:
    assert await one(store, Hit("k", WINDOW, limit=10, cost=4)) == HitResult(4, False, True)
    assert await one(store, Hit("k", WINDOW, limit=10, cost=6)) == HitResult(10, False, True)
    # A peek reads and says whether a hit of that cost would be over; it never adds.
    assert await one(store, Hit("k", WINDOW, limit=10, peek=True)) == HitResult(10, True, False)
    assert await one(store, Hit("k", WINDOW, limit=12, cost=2, peek=True)) == HitResult(
        10, False, False
    )
    assert await one(store, Get("k")) == CountResult(10)
    # A cost that does not fit is refused whole, even if a smaller one would fit.
    assert await one(store, Hit("k", WINDOW, limit=12, cost=3)) == HitResult(10, True, False)
    assert await one(store, Hit("k", WINDOW, limit=12, cost=2)) == HitResult(12, False, True)
    assert await one(store, Hit("k", WINDOW, limit=0, cost=0)) == HitResult(12, True, False)


async def test_limit_zero_refuses_everything(store: CounterStore) -> None:
    assert await one(store, Hit("blocked", WINDOW, limit=0)) == HitResult(0, True, False)
    assert await one(store, Get("blocked")) == CountResult(0)


async def test_get_of_a_missing_counter_is_zero(store: CounterStore) -> None:
    assert await one(store, Get("never-hit")) == CountResult(0)


async def test_changing_the_window_restarts_the_counter(store: CounterStore) -> None:
    await store.execute([Hit("cps:trunk", 1.0) for _ in range(3)])
    assert await one(store, Get("cps:trunk")) == CountResult(3)
    assert await one(store, Hit("cps:trunk", 2.0)) == HitResult(1, False, True)
    # Peeking with yet another window sees an empty counter and leaves the stored one.
    assert await one(store, Hit("cps:trunk", 5.0, peek=True)) == HitResult(0, False, False)
    assert await one(store, Get("cps:trunk")) == CountResult(1)


async def test_short_windows_slide(store: CounterStore, clock: ManualClock) -> None:
    # 1-second CPS caps: 3 per second, then the next second has room again.
    for _ in range(3):
        assert isinstance(r := await one(store, Hit("cps", 1.0, limit=3)), HitResult)
        assert not r.over
    assert await one(store, Hit("cps", 1.0, limit=3)) == HitResult(3, True, False)
    clock.advance(1.0 + 1.0 / SUB_BUCKETS + 0.001)
    assert await one(store, Hit("cps", 1.0, limit=3)) == HitResult(1, False, True)


# -- distinct members ------------------------------------------------------------------


async def test_distinct_counts_members_in_the_window(
    store: CounterStore, clock: ManualClock
) -> None:
    key = "wangiri:caller:1"
    assert await one(store, Distinct(key, "callee-a", WINDOW)) == DistinctResult(1, True)
    assert await one(store, Distinct(key, "callee-b", WINDOW)) == DistinctResult(2, True)
    assert await one(store, Distinct(key, "callee-a", WINDOW)) == DistinctResult(2, False)
    assert await one(store, Distinct(key, None, WINDOW)) == DistinctResult(2, False)
    clock.advance(40)
    assert await one(store, Distinct(key, "callee-a", WINDOW)) == DistinctResult(2, False)
    # callee-b was last seen 60 s ago: out; callee-a was refreshed 20 s ago: in.
    clock.advance(20)
    assert await one(store, Distinct(key, None, WINDOW)) == DistinctResult(1, False)
    clock.advance(40)
    assert await one(store, Distinct(key, None, WINDOW)) == DistinctResult(0, False)
    assert await one(store, Distinct(key, "callee-b", WINDOW)) == DistinctResult(1, True)


async def test_distinct_is_capped(store: CounterStore, clock: ManualClock) -> None:
    for i in range(8):
        result = await one(store, Distinct("robo", f"n{i}", WINDOW, cap=5))
        assert result == DistinctResult(min(i + 1, 5), True)
        clock.advance(1)
    # The oldest were dropped: n0..n2 are new again, n7 is still known.
    assert await one(store, Distinct("robo", "n7", WINDOW, cap=5)) == DistinctResult(5, False)
    assert await one(store, Distinct("robo", "n0", WINDOW, cap=5)) == DistinctResult(5, True)


# -- leases ----------------------------------------------------------------------------


async def test_leases_up_to_the_limit(store: CounterStore) -> None:
    key = "conc:ent-1"
    assert await one(store, Acquire(key, "uuid-1", 2, 300)) == LeaseResult(True, 1)
    assert await one(store, Acquire(key, "uuid-2", 2, 300)) == LeaseResult(True, 2)
    assert await one(store, Acquire(key, "uuid-3", 2, 300)) == LeaseResult(False, 2)
    # Re-acquiring a held lease renews it and is not refused by itself.
    assert await one(store, Acquire(key, "uuid-1", 2, 300)) == LeaseResult(True, 2)
    assert await one(store, Release(key, "uuid-1")) == ReleaseResult(True, 1)
    assert await one(store, Release(key, "uuid-1")) == ReleaseResult(False, 1)
    assert await one(store, Acquire(key, "uuid-3", 2, 300)) == LeaseResult(True, 2)
    assert await one(store, Release(key, "never-held")) == ReleaseResult(False, 2)


async def test_expired_leases_are_pruned(store: CounterStore, clock: ManualClock) -> None:
    key = "conc:lost-hangups"
    assert await one(store, Acquire(key, "lost-1", 2, 30)) == LeaseResult(True, 1)
    clock.advance(10)
    assert await one(store, Acquire(key, "lost-2", 2, 30)) == LeaseResult(True, 2)
    assert await one(store, Acquire(key, "new-1", 2, 30)) == LeaseResult(False, 2)
    clock.advance(20)  # lost-1 expires now (30 s), lost-2 has 10 s left
    assert await one(store, Acquire(key, "new-1", 2, 30)) == LeaseResult(True, 2)
    clock.advance(29)  # lost-2 expired at +40; new-1 (taken at +30) lives until +60
    assert await one(store, Release(key, "lost-2")) == ReleaseResult(False, 1)
    clock.advance(1)  # a lease is dead at its expiry instant
    assert await one(store, Release(key, "new-1")) == ReleaseResult(False, 0)


async def test_renewing_a_lease_extends_it(store: CounterStore, clock: ManualClock) -> None:
    assert await one(store, Acquire("conc", "long-call", 1, 30)) == LeaseResult(True, 1)
    clock.advance(25)
    assert await one(store, Acquire("conc", "long-call", 1, 30)) == LeaseResult(True, 1)
    clock.advance(25)
    assert await one(store, Acquire("conc", "other", 1, 30)) == LeaseResult(False, 1)


# -- flags -----------------------------------------------------------------------------


async def test_flags_live_for_their_ttl(store: CounterStore, clock: ManualClock) -> None:
    assert await one(store, GetFlag("wangiri:caller:1")) == FlagResult(None, None)
    assert await one(store, Flag("wangiri:caller:1", 3600, "wangiri")) == FlagResult(
        "wangiri", 3600.0
    )
    clock.advance(600)
    result = await one(store, GetFlag("wangiri:caller:1"))
    assert isinstance(result, FlagResult) and result.is_set
    assert result.value == "wangiri"
    assert result.ttl_s == pytest.approx(3000.0, abs=0.01)
    assert await one(store, Flag("wangiri:caller:1", 60)) == FlagResult("1", 60.0)
    clock.advance(60)
    assert await one(store, GetFlag("wangiri:caller:1")) == FlagResult(None, None)


# -- batches ---------------------------------------------------------------------------


async def test_batch_across_many_keys_returns_results_in_op_order(store: CounterStore) -> None:
    keys = [f"callee:8613{i:09d}" for i in range(60)]
    # On a cluster these keys span many hash slots (and all three masters).
    assert len({key_slot(k.encode()) for k in keys}) > 30
    hits: list[Op] = [Hit(k, WINDOW, cost=i + 1) for i, k in enumerate(keys)]
    results = await store.execute(hits)
    assert results == tuple(HitResult(i + 1, False, True) for i in range(len(keys)))
    mixed: list[Op] = []
    for i, k in enumerate(reversed(keys)):
        mixed += [Get(k), Flag(k, 60, value=str(i)), GetFlag(k), Acquire(k, "x", 5, 60)]
    results = await store.execute(mixed)
    expected: list[object] = []
    for i in range(len(keys)):
        expected += [
            CountResult(len(keys) - i),
            FlagResult(str(i), 60.0),
            FlagResult(str(i), 60.0),
            LeaseResult(True, 1),
        ]
    assert list(results) == expected


async def test_ops_in_one_batch_see_each_other_in_order(store: CounterStore) -> None:
    ops: list[Op] = [
        Hit("pair:a>b", WINDOW, limit=2),
        Get("pair:a>b"),
        Hit("pair:a>b", WINDOW, limit=2),
        Hit("pair:a>b", WINDOW, limit=2),
        Acquire("c", "1", 1, 60),
        Release("c", "1"),
        Acquire("c", "2", 1, 60),
    ]
    assert await store.execute(ops) == (
        HitResult(1, False, True),
        CountResult(1),
        HitResult(2, False, True),
        HitResult(2, True, False),
        LeaseResult(True, 1),
        ReleaseResult(True, 0),
        LeaseResult(True, 1),
    )


async def test_tagged_ops_on_related_keys(store: CounterStore) -> None:
    ns = store.namespace
    tag = "caller:862088880001"
    ops: list[Op] = [
        Hit("per-minute", 60, limit=10, tag=tag),
        Hit("per-hour", 3600, limit=100, tag=tag),
        Distinct("callees", "13900001111", 3600, tag=tag),
    ]
    assert await store.execute(ops) == (
        HitResult(1, False, True),
        HitResult(1, False, True),
        DistinctResult(1, True),
    )
    shown = await store.show("{caller:862088880001}:*")
    assert sorted(shown) == [
        f"{ns}:{{caller:862088880001}}:distinct:callees",
        f"{ns}:{{caller:862088880001}}:rate:per-hour",
        f"{ns}:{{caller:862088880001}}:rate:per-minute",
    ]
    # The same logical key under another tag is another counter.
    assert await one(store, Get("per-minute")) == CountResult(0)


async def test_empty_batch(store: CounterStore) -> None:
    assert await store.execute([]) == ()


async def test_oversized_batch_is_refused_before_running(store: CounterStore) -> None:
    with pytest.raises(ValueError):
        await store.execute([Hit("k", WINDOW)] * (MAX_BATCH + 1))
    assert await one(store, Get("k")) == CountResult(0)


# -- show / reset / ping ---------------------------------------------------------------


async def test_show_and_reset(store: CounterStore, clock: ManualClock) -> None:
    ns = store.namespace
    await store.execute(
        [
            Hit("caller:1", WINDOW),
            Hit("caller:1", WINDOW),
            Hit("caller:2", WINDOW),
            Distinct("caller:1", "callee:9", WINDOW),
            Acquire("trunk:ent-1", "uuid-1", 10, 120),
            Flag("caller:1", 30, "bombing"),
        ]
    )
    shown = await store.show()
    assert shown == {
        f"{ns}:{{caller:1}}:rate:caller:1": {"kind": "rate", "window_s": WINDOW, "count": 2},
        f"{ns}:{{caller:2}}:rate:caller:2": {"kind": "rate", "window_s": WINDOW, "count": 1},
        f"{ns}:{{caller:1}}:distinct:caller:1": {"kind": "distinct", "members": 1},
        f"{ns}:{{trunk:ent-1}}:lease:trunk:ent-1": {
            "kind": "lease",
            "count": 1,
            "leases": {"uuid-1": 120.0},
        },
        f"{ns}:{{caller:1}}:flag:caller:1": {"kind": "flag", "value": "bombing", "ttl_s": 30.0},
    }
    assert sorted(await store.show("*caller:1*")) == [
        f"{ns}:{{caller:1}}:distinct:caller:1",
        f"{ns}:{{caller:1}}:flag:caller:1",
        f"{ns}:{{caller:1}}:rate:caller:1",
    ]
    assert sorted(await store.show("*:rate:*")) == [
        f"{ns}:{{caller:1}}:rate:caller:1",
        f"{ns}:{{caller:2}}:rate:caller:2",
    ]
    assert len(await store.show("*", limit=2)) == 2
    # reset deletes only what matches, and says how many keys went.
    assert await store.reset("{caller:1}:*") == 3
    assert sorted(await store.show()) == [
        f"{ns}:{{caller:2}}:rate:caller:2",
        f"{ns}:{{trunk:ent-1}}:lease:trunk:ent-1",
    ]
    assert await one(store, Get("caller:1")) == CountResult(0)
    assert await store.reset("nothing-matches*") == 0
    # Expired state is not shown.
    await store.execute([Flag("short", 30)])
    assert f"{ns}:{{short}}:flag:short" in await store.show()
    clock.advance(30)
    assert f"{ns}:{{short}}:flag:short" not in await store.show()
    assert await store.reset("*:rate:*") == 1
    assert await store.reset("*:lease:*") == 1
    assert await store.show() == {}


async def test_ping(store: CounterStore) -> None:
    await store.ping()
