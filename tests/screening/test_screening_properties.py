"""Hypothesis: decide never raises, whatever FreeSWITCH (or a caller) puts in the facts."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fs_plugin.policy import load_policy
from fs_plugin.screening import (
    CallFacts,
    CounterReadings,
    Verdict,
    decide,
    explain,
    fallback_decision,
    plan_counters,
)

REPO = Path(__file__).resolve().parents[2]
EXAMPLE = load_policy(REPO / "policies")

number_like = st.one_of(
    st.text(max_size=40),
    st.text(alphabet="+0123456789-() ", max_size=24),
    st.sampled_from(["anonymous", "", "+86", "0086", "sip:@", "<sip:02088886666@h>;x=y",
                     "02088887777", "13900009999", "ent-1"]),
)
optional = st.one_of(st.none(), number_like)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    from_user=number_like, destination=st.text(max_size=20), pai=optional, diversion=optional,
    trunk_hint=st.one_of(st.none(), st.sampled_from(["ent-1", "cc-1", "intl-gw", "ic-1",
                                                     "ent-suspended", "mkt-1"]),
                         st.text(max_size=8)),
    gateway=optional, sofia_profile=optional,
    network_ip=st.one_of(st.none(), st.ip_addresses().map(str), st.text(max_size=16)),
    timestamp_us=st.integers(min_value=-(2**63), max_value=2**63),
)
def test_decide_never_raises(from_user: str, destination: str, pai: str | None,
                             diversion: str | None, trunk_hint: str | None, gateway: str | None,
                             sofia_profile: str | None, network_ip: str | None,
                             timestamp_us: int) -> None:
    f = CallFacts("u", from_user, destination, pai=pai, diversion=diversion,
                  trunk_hint=trunk_hint, gateway=gateway, sofia_profile=sofia_profile,
                  network_ip=network_ip, timestamp_us=max(timestamp_us, 0))
    d = decide(f, EXAMPLE, now=1_780_272_000.0)
    assert d.verdict in Verdict
    # Planning never raises either, and a failed store still gives a decision.
    plan = plan_counters(f, EXAMPLE, now=1_780_272_000.0)
    failed = decide(f, EXAMPLE, CounterReadings(plan, None, "down"), now=1_780_272_000.0)
    assert failed.verdict in Verdict
    assert (d.sip_status is not None) == (d.verdict is Verdict.BLOCK)
    assert explain(d)
    assert fallback_decision(f, EXAMPLE, "x").fallback
