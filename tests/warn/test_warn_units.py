"""Pure parts of the flash-SMS package: rendering, validation, days, dedupe store, backoff."""

from __future__ import annotations

import datetime as dt
import random
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st
from warn_support import make_sms

from fs_plugin.clock import ManualClock
from fs_plugin.errors import ConfigError
from fs_plugin.screening.model import CallFacts, Decision, Verdict
from fs_plugin.warn import (
    DEFAULT_TEXT_TEMPLATE,
    DayCalendar,
    FailureKind,
    FlashSms,
    HttpSmsGateway,
    MemoryDedupe,
    SenderSettings,
    SmsDeliveryError,
    SmsSender,
    render_text,
)

# -- rendering and validation ---------------------------------------------------------------


def test_default_text_masks_the_caller(clock: ManualClock) -> None:
    sms = make_sms(clock, caller="02112340123", label="疑似骚扰:房产中介")
    assert render_text(DEFAULT_TEXT_TEMPLATE, sms) == (
        "【防骚扰提醒】来电021****0123疑似骚扰:房产中介，请谨慎接听"
    )
    assert render_text("{caller_masked}", sms, mask_caller=False) == "02112340123"
    # Short service numbers identify no subscriber and are shown as they are.
    assert render_text("{caller_masked}", make_sms(clock, caller="95555")) == "95555"


def test_label_text_with_braces_is_not_reinterpreted(clock: ManualClock) -> None:
    sms = make_sms(clock, label="{callee}")
    assert render_text("{label}", sms) == "{callee}"


@pytest.mark.parametrize(
    "template",
    ["{number}", "{callee.__class__}", "{label[0]}", "{callee!r}", "{callee:>20}", "{", "}x"],
)
def test_bad_templates_are_config_errors(template: str) -> None:
    with pytest.raises(ConfigError) as err:
        HttpSmsGateway("http://127.0.0.1:9/sms", template)
    assert err.value.key == "warn.template"


@pytest.mark.parametrize(
    ("body", "key"),
    [
        ({"to": "{phone}"}, "warn.body.to"),
        ({"x": {"y": ["ok", "{nope}"]}}, "warn.body.x.y[1]"),
        ({"to": object()}, "warn.body.to"),
    ],
)
def test_bad_bodies_name_the_offending_key(body: dict[str, Any], key: str) -> None:
    with pytest.raises(ConfigError) as err:
        HttpSmsGateway("http://127.0.0.1:9/sms", body=body)
    assert err.value.key == key


@pytest.mark.parametrize("url", ["ftp://host/sms", "127.0.0.1:9/sms", "http:///sms"])
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(ConfigError) as err:
        HttpSmsGateway(url)
    assert err.value.key == "warn.url"


def test_render_previews_the_body(clock: ManualClock) -> None:
    gateway = HttpSmsGateway("http://127.0.0.1:9/sms", "{label}")
    sms = make_sms(clock)
    assert gateway.render(sms) == {
        "to": sms.callee,
        "text": sms.label,
        "kind": "flash",
        "ref": sms.call_uuid,
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("queue_max", 0),
        ("workers", 0),
        ("max_attempts", 0),
        ("attempt_timeout_s", 0.0),
        ("backoff_base_s", -1.0),
        ("ttl_grace_s", -1.0),
    ],
)
def test_bad_sender_settings_are_config_errors(field: str, value: float) -> None:
    with pytest.raises(ConfigError) as err:
        kwargs: dict[str, Any] = {field: value}
        SenderSettings(**kwargs)
    assert err.value.key == f"warn.{field}"


def test_unknown_zone_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as err:
        SenderSettings(timezone="Mars/Olympus")
    assert err.value.key == "warn.timezone"
    with pytest.raises(ConfigError):
        DayCalendar("../../etc/passwd")


# -- the message for a call -----------------------------------------------------------------


def _facts(**kw: Any) -> CallFacts:
    base: dict[str, Any] = {"uuid": "u-1", "from_user": "02112340123", "destination": "13912345678"}
    base.update(kw)
    return CallFacts(**base)


def test_for_call_builds_a_warning_for_a_labelled_warn() -> None:
    decision = Decision(verdict=Verdict.WARN, rule="label.real_estate", reason="", label="疑似骚扰")
    sms = FlashSms.for_call(_facts(pai="02112349999"), decision, created_at=5.0)
    assert sms == FlashSms("13912345678", "02112349999", "疑似骚扰", "u-1", 5.0)
    normalised = FlashSms.for_call(
        _facts(), decision, created_at=5.0, callee="+8613912345678", caller="+862112340123"
    )
    assert normalised is not None
    assert (normalised.callee, normalised.caller) == ("+8613912345678", "+862112340123")


@pytest.mark.parametrize(
    "decision",
    [
        Decision(verdict=Verdict.BLOCK, rule="label.fraud", reason="", label="疑似诈骗"),
        Decision(verdict=Verdict.WARN, rule="pattern.wangiri", reason="", label=None),
        Decision(verdict=Verdict.PASS, rule=None, reason=""),
    ],
)
def test_for_call_needs_a_ringing_call_and_a_label(decision: Decision) -> None:
    assert FlashSms.for_call(_facts(), decision, created_at=5.0) is None


def test_delivery_error_fields() -> None:
    err = SmsDeliveryError(FailureKind.STATUS, retryable=False, status=400, detail="bad msisdn")
    assert (err.kind, err.retryable, err.status, err.retry_after_s) == (
        FailureKind.STATUS,
        False,
        400,
        None,
    )


# -- days and the dedupe store --------------------------------------------------------------


def test_days_are_local_days() -> None:
    shanghai = ZoneInfo("Asia/Shanghai")
    cal = DayCalendar("Asia/Shanghai")
    late = dt.datetime(2026, 11, 18, 23, 59, 59, tzinfo=shanghai).timestamp()
    midnight = dt.datetime(2026, 11, 19, tzinfo=shanghai).timestamp()
    assert cal.day(late) == ("2026-11-18", midnight)
    assert cal.day(midnight) == ("2026-11-19", midnight + 86400)
    # Going back in time (a message created before the cached day) is recomputed too.
    assert cal.day(late)[0] == "2026-11-18"


def test_a_daylight_saving_day_has_its_real_length() -> None:
    zone = ZoneInfo("America/New_York")
    cal = DayCalendar("America/New_York")
    noon = dt.datetime(2026, 3, 8, 12, tzinfo=zone).timestamp()  # spring forward
    start = dt.datetime(2026, 3, 8, tzinfo=zone).timestamp()
    day, end = cal.day(noon)
    assert day == "2026-03-08"
    assert end - start == 23 * 3600


async def test_memory_dedupe_marks_forgets_and_expires() -> None:
    clock = ManualClock()
    store = MemoryDedupe(clock=clock)
    assert await store.seen("a", 100.0) is False
    assert await store.seen("a", 100.0) is True
    await store.forget("a")
    assert await store.seen("a", 100.0) is False
    assert await store.seen("b", 500.0) is False
    clock.advance(101)
    assert await store.seen("c", 500.0) is False
    assert len(store) == 2  # "a" swept
    assert await store.seen("a", 100.0) is False


def test_memory_dedupe_is_bounded() -> None:
    store = MemoryDedupe(clock=ManualClock(), max_entries=3)
    for key in "abcd":
        assert store.check_and_mark(key, 1000.0) is False
    assert len(store) == 3
    assert store.evicted == 1
    assert store.check_and_mark("a", 1000.0) is False  # the oldest went first
    assert store.check_and_mark("d", 1000.0) is True


# -- backoff --------------------------------------------------------------------------------


class _Never:
    async def send(self, sms: FlashSms) -> None:  # pragma: no cover - never started
        raise AssertionError


@given(attempt=st.integers(1, 30), seed=st.integers(0, 2**32))
def test_backoff_is_jittered_exponential_and_capped(attempt: int, seed: int) -> None:
    settings = SenderSettings(backoff_base_s=0.5, backoff_max_s=10.0)
    sender = SmsSender(_Never(), settings, rng=random.Random(seed))
    ceiling = min(10.0, 0.5 * 2 ** (attempt - 1))
    assert ceiling / 2 <= sender.backoff_s(attempt) <= ceiling


def test_retry_after_is_honoured_but_capped() -> None:
    sender = SmsSender(_Never(), SenderSettings(backoff_max_s=10.0), rng=random.Random(1))
    slow = SmsDeliveryError(FailureKind.STATUS, retryable=True, status=429, retry_after_s=3600)
    assert sender.backoff_s(1, slow) == 10.0
