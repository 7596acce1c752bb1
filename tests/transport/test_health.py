"""The health monitor's hysteresis, driven by samples (no waiting)."""

from __future__ import annotations

from fs_plugin.transport.health import HealthMonitor, HealthSettings


def _monitor(inflight: list[int]) -> tuple[HealthMonitor, list[bool]]:
    changes: list[bool] = []
    m = HealthMonitor(HealthSettings(max_lag_s=0.1, sustained=1, hard_lag_s=0.5,
                                     max_inflight=10, recover_after_s=1.0),
                      lambda: inflight[0], changes.append)
    return m, changes


def test_lag_pauses_and_sustained_health_resumes() -> None:
    inflight = [0]
    m, changes = _monitor(inflight)
    m.observe(0.01, now=0.0)
    assert changes == [] and m.healthy
    m.observe(0.2, now=0.1)
    assert changes == [False] and not m.healthy
    m.observe(0.01, now=0.2)
    m.observe(0.01, now=1.1)  # healthy for 0.9 s only
    assert changes == [False]
    m.observe(0.01, now=1.25)
    assert changes == [False, True] and m.healthy


def test_a_relapse_restarts_the_recovery_hold() -> None:
    inflight = [0]
    m, changes = _monitor(inflight)
    m.observe(0.5, now=0.0)
    m.observe(0.0, now=0.5)
    m.observe(0.3, now=0.9)  # relapse
    m.observe(0.0, now=1.6)
    assert changes == [False]
    m.observe(0.0, now=2.7)
    assert changes == [False, True]


def test_inflight_bound_pauses() -> None:
    inflight = [11]
    m, changes = _monitor(inflight)
    m.observe(0.0, now=0.0)
    assert changes == [False]
    inflight[0] = 3
    m.observe(0.0, now=0.1)
    m.observe(0.0, now=1.2)
    assert changes == [False, True]
    assert m.max_seen_lag_s == 0.0


def test_one_late_sample_is_not_overload_but_a_long_stall_is() -> None:
    changes: list[bool] = []
    m = HealthMonitor(HealthSettings(max_lag_s=0.1, sustained=3, hard_lag_s=0.25,
                                     recover_after_s=1.0), lambda: 0, changes.append)
    m.observe(0.15, now=0.0)  # a GC pause
    m.observe(0.01, now=0.2)
    m.observe(0.15, now=0.4)
    m.observe(0.15, now=0.6)
    assert changes == []
    m.observe(0.15, now=0.8)  # third late sample in a row: falling behind
    assert changes == [False]
    m2 = HealthMonitor(HealthSettings(hard_lag_s=0.25), lambda: 0, changes.append)
    m2.observe(0.3, now=0.0)  # one stall longer than the deadline
    assert changes == [False, False]
