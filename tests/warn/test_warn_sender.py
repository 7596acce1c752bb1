"""SmsSender end to end: real HTTP on loopback against the fake gateway."""

from __future__ import annotations

import asyncio
import datetime as dt
import inspect
import random
import socket
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from structlog.testing import capture_logs
from warn_support import RecordingSleep, make_sms

from fs_plugin.clock import ManualClock
from fs_plugin.warn import (
    FlashSms,
    HttpSmsGateway,
    MemoryDedupe,
    SenderSettings,
    SmsSender,
)
from fs_plugin.warn.dedupe import DedupeStore
from fs_plugin.warn.fake_gateway import FakeSmsGateway

SHANGHAI = ZoneInfo("Asia/Shanghai")


@asynccontextmanager
async def running(
    url: str,
    clock: ManualClock,
    *,
    settings: SenderSettings | None = None,
    sleep: RecordingSleep | None = None,
    dedupe: DedupeStore | None = None,
    start: bool = True,
    **gateway_kw: Any,
) -> AsyncIterator[SmsSender]:
    gateway = HttpSmsGateway(url, **gateway_kw)
    sender = SmsSender(
        gateway,
        settings,
        clock=clock,
        dedupe=dedupe,
        sleep=sleep or RecordingSleep(),
        rng=random.Random(7),
    )
    if start:
        sender.start()
    try:
        yield sender
    finally:
        await sender.close(timeout_s=2.0)
        await gateway.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


# -- delivery -----------------------------------------------------------------------------


async def test_delivers_rendered_template_with_masked_caller(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    async with running(fake_gateway.url, clock) as sender:
        sms = make_sms(clock, callee="13912345678", caller="02112340123")
        assert sender.submit(sms) is True
        assert await sender.flush(5.0)
        stats = sender.stats()
    assert fake_gateway.messages == [
        {
            "to": "13912345678",
            "text": "【防骚扰提醒】来电021****0123疑似骚扰:房产中介，请谨慎接听",
            "kind": "flash",
            "ref": sms.call_uuid,
        }
    ]
    (request,) = fake_gateway.requests
    assert request.headers["Content-Type"].startswith("application/json")
    # Sent as UTF-8 text, not \\u escapes, so the platform's logs stay readable.
    assert "防骚扰提醒".encode() in request.body
    assert stats["sent"] == 1
    assert stats["queued"] == 1
    assert stats["pending"] == 0


async def test_body_shape_headers_and_masking_are_configurable(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    body = {
        "msisdn": "{callee}",
        "content": "{text}",
        "meta": {"from": "{caller}", "tags": ["{label}", "{call_uuid}"]},
        "priority": 1,
        "flash": True,
    }
    async with running(
        fake_gateway.url,
        clock,
        template="{caller_masked}: {label}",
        body=body,
        mask_caller=False,
        headers={"Authorization": "Bearer lab-token"},
    ) as sender:
        sms = make_sms(clock, caller="13800001111", label="疑似诈骗")
        sender.submit(sms)
        assert await sender.flush(5.0)
    assert fake_gateway.messages == [
        {
            "msisdn": "13912345678",
            "content": "13800001111: 疑似诈骗",
            "meta": {"from": "13800001111", "tags": ["疑似诈骗", sms.call_uuid]},
            "priority": 1,
            "flash": True,
        }
    ]
    assert fake_gateway.requests[0].headers["Authorization"] == "Bearer lab-token"


# -- dedupe ---------------------------------------------------------------------------------


async def test_dedupe_same_pair_same_day_not_next_day(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    async with running(fake_gateway.url, clock) as sender:
        assert sender.submit(make_sms(clock)) is True
        assert await sender.flush(5.0)
        clock.advance(3600)  # still the same day in Shanghai (19:06 → 20:06)
        assert sender.submit(make_sms(clock)) is False
        # Another caller to the same user is a different warning.
        assert sender.submit(make_sms(clock, caller="13700002222")) is True
        assert await sender.flush(5.0)
        clock.advance(6 * 3600)  # 02:06 the next day
        assert sender.submit(make_sms(clock)) is True
        assert await sender.flush(5.0)
        stats = sender.stats()
    assert [m["to"] for m in fake_gateway.messages] == ["13912345678"] * 3
    assert [m["text"][9:20] for m in fake_gateway.messages] == [
        "021****0123",
        "137****2222",
        "021****0123",
    ]
    assert stats["deduped"] == 1
    assert stats["sent"] == 3


@pytest.mark.parametrize(("zone", "sent_again"), [("Asia/Shanghai", True), ("UTC", False)])
async def test_dedupe_day_is_the_configured_zones_day(
    fake_gateway: FakeSmsGateway, zone: str, sent_again: bool
) -> None:
    # 23:30 in Shanghai; an hour later it is the next day there, still the same in UTC.
    clock = ManualClock(dt.datetime(2026, 11, 18, 23, 30, tzinfo=SHANGHAI).timestamp())
    async with running(fake_gateway.url, clock, settings=SenderSettings(timezone=zone)) as sender:
        assert sender.submit(make_sms(clock))
        assert await sender.flush(5.0)
        clock.advance(3600)
        assert sender.submit(make_sms(clock)) is sent_again
        assert await sender.flush(5.0)
    assert len(fake_gateway.messages) == (2 if sent_again else 1)


async def test_shared_store_dedupes_across_senders(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    shared = MemoryDedupe(clock=clock)
    async with (
        running(fake_gateway.url, clock, dedupe=shared) as switch_a,
        running(fake_gateway.url, clock, dedupe=shared) as switch_b,
    ):
        assert switch_a.submit(make_sms(clock))
        assert await switch_a.flush(5.0)
        # Switch B has not seen the pair itself, so it queues; the store stops it.
        assert switch_b.submit(make_sms(clock)) is True
        assert await switch_b.flush(5.0)
        assert switch_b.stats()["deduped"] == 1
        assert switch_b.stats()["sent"] == 0
        # Having learnt it, B now dedupes the pair without a queue slot.
        assert switch_b.submit(make_sms(clock)) is False
    assert len(fake_gateway.messages) == 1


async def test_a_flood_to_one_user_takes_one_queue_slot(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    async with running(fake_gateway.url, clock, start=False) as sender:
        results = [sender.submit(make_sms(clock)) for _ in range(50)]
        assert results == [True] + [False] * 49
        assert sender.stats()["pending"] == 1
        sender.start()
        assert await sender.flush(5.0)
    assert len(fake_gateway.messages) == 1


async def test_unreachable_dedupe_store_fails_open(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    class BrokenStore:
        async def seen(self, key: str, ttl_s: float) -> bool:
            raise ConnectionError("store down")

        async def forget(self, key: str) -> None:
            raise ConnectionError("store down")

    with capture_logs() as logs:
        async with running(fake_gateway.url, clock, dedupe=BrokenStore()) as sender:
            sender.submit(make_sms(clock))
            assert await sender.flush(5.0)
    assert len(fake_gateway.messages) == 1
    assert any(
        e["event"] == "flash_sms_dedupe_unavailable" and e["error"] == "ConnectionError"
        for e in logs
    )


async def test_dedupe_marks_live_until_the_day_ends(clock: ManualClock) -> None:
    class Recording(MemoryDedupe):
        ttls: list[float]

        async def seen(self, key: str, ttl_s: float) -> bool:
            self.ttls.append(ttl_s)
            return await super().seen(key, ttl_s)

    class Accepting:
        async def send(self, sms: FlashSms) -> None:
            return None

    store = Recording(clock=clock)
    store.ttls = []
    settings = SenderSettings(ttl_grace_s=600.0)
    sender = SmsSender(Accepting(), settings, clock=clock, dedupe=store)
    sender.start()
    sender.submit(make_sms(clock))
    assert await sender.flush(5.0)
    await sender.close()
    midnight = dt.datetime(2026, 11, 19, tzinfo=SHANGHAI).timestamp()
    assert store.ttls == [pytest.approx(midnight - clock.time() + 600.0)]


# -- retries --------------------------------------------------------------------------------


async def test_retries_on_500_then_succeeds(
    fake_gateway: FakeSmsGateway, clock: ManualClock, sleeper: RecordingSleep
) -> None:
    fake_gateway.fail_next(2, status=500)
    with capture_logs() as logs:
        async with running(fake_gateway.url, clock, sleep=sleeper) as sender:
            sender.submit(make_sms(clock))
            assert await sender.flush(5.0)
            stats = sender.stats()
    assert [r.status for r in fake_gateway.requests] == [500, 500, 200]
    assert stats["retries"] == 2
    assert stats["sent"] == 1
    assert stats["failed"] == 0
    # Exponential with jitter: retry n waits within [d/2, d], d = 0.5 * 2**(n-1).
    first, second = sleeper.delays
    assert 0.25 <= first <= 0.5
    assert 0.5 <= second <= 1.0
    retries = [e for e in logs if e["event"] == "flash_sms_retry"]
    assert [(e["attempt"], e["status"], e["kind"]) for e in retries] == [
        (1, 500, "status"),
        (2, 500, "status"),
    ]
    assert any(e["event"] == "flash_sms_sent" and e["attempts"] == 3 for e in logs)


async def test_429_is_retried_after_the_gateways_retry_after(
    fake_gateway: FakeSmsGateway, clock: ManualClock, sleeper: RecordingSleep
) -> None:
    fake_gateway.fail_next(1, status=429, retry_after=3)
    async with running(fake_gateway.url, clock, sleep=sleeper) as sender:
        sender.submit(make_sms(clock))
        assert await sender.flush(5.0)
        assert sender.stats()["sent"] == 1
    assert sleeper.delays == [3.0]
    assert [r.status for r in fake_gateway.requests] == [429, 200]


@pytest.mark.parametrize("status", [400, 401, 403, 404, 422])
async def test_no_retry_on_4xx(
    fake_gateway: FakeSmsGateway, clock: ManualClock, sleeper: RecordingSleep, status: int
) -> None:
    fake_gateway.fail_next(1, status=status)
    with capture_logs() as logs:
        async with running(fake_gateway.url, clock, sleep=sleeper) as sender:
            sender.submit(make_sms(clock))
            assert await sender.flush(5.0)
            stats = sender.stats()
            # The gateway refused this pair today; asking again would get the same answer.
            assert sender.submit(make_sms(clock)) is False
    assert fake_gateway.received == 1
    assert sleeper.delays == []
    assert stats["failed"] == 1
    assert stats["retries"] == 0
    rejected = [e for e in logs if e["event"] == "flash_sms_rejected"]
    assert [(e["status"], e["log_level"]) for e in rejected] == [(status, "error")]


async def test_gives_up_after_max_attempts_and_releases_the_pair(
    fake_gateway: FakeSmsGateway, clock: ManualClock, sleeper: RecordingSleep
) -> None:
    fake_gateway.fail_next(100, status=503)
    settings = SenderSettings(max_attempts=3)
    with capture_logs() as logs:
        async with running(fake_gateway.url, clock, settings=settings, sleep=sleeper) as sender:
            sender.submit(make_sms(clock))
            assert await sender.flush(5.0)
            stats = sender.stats()
            assert fake_gateway.received == 3
            assert stats["failed"] == 1
            assert stats["retries"] == 2
            assert stats["sent"] == 0
            assert len(sleeper.delays) == 2
            assert [e["attempt"] for e in logs if e["event"] == "flash_sms_gave_up"] == [3]
            # Undelivered, so the next call from that number may warn the user.
            fake_gateway.fail_next(0)
            assert sender.submit(make_sms(clock)) is True
            assert await sender.flush(5.0)
            assert sender.stats()["sent"] == 1
    assert len(fake_gateway.messages) == 1


async def test_every_request_has_a_deadline_and_timeouts_are_retried(
    fake_gateway: FakeSmsGateway, clock: ManualClock, sleeper: RecordingSleep
) -> None:
    fake_gateway.delay_s = 30.0
    settings = SenderSettings(max_attempts=2, attempt_timeout_s=0.2)
    started = time.monotonic()
    async with running(
        fake_gateway.url, clock, settings=settings, sleep=sleeper, timeout_s=10.0
    ) as sender:
        sender.submit(make_sms(clock))
        assert await sender.flush(5.0)
        stats = sender.stats()
    assert time.monotonic() - started < 3.0
    assert fake_gateway.received == 2
    assert stats["retries"] == 1
    assert stats["failed"] == 1


async def test_connection_errors_are_retried(clock: ManualClock, sleeper: RecordingSleep) -> None:
    url = f"http://127.0.0.1:{free_port()}/sms"  # nothing listens there
    settings = SenderSettings(max_attempts=3)
    with capture_logs() as logs:
        async with running(url, clock, settings=settings, sleep=sleeper) as sender:
            sender.submit(make_sms(clock))
            assert await sender.flush(5.0)
            stats = sender.stats()
    assert stats["retries"] == 2
    assert stats["failed"] == 1
    kinds = {e["kind"] for e in logs if e["event"] in ("flash_sms_retry", "flash_sms_gave_up")}
    assert kinds == {"connection"}


async def test_a_warning_too_old_to_matter_is_not_retried(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    fake_gateway.fail_next(100, status=500)
    # Backoff that moves the clock past max_age, as a long outage would.
    sleep = RecordingSleep(clock)
    settings = SenderSettings(max_attempts=5, backoff_base_s=8.0, max_age_s=8.5)
    async with running(fake_gateway.url, clock, settings=settings, sleep=sleep) as sender:
        sender.submit(make_sms(clock))
        assert await sender.flush(5.0)
        stats = sender.stats()
        # A warning created long ago is not sent at all.
        old = make_sms(clock, caller="13700002222")
        sender.submit(FlashSms(old.callee, old.caller, old.label, old.call_uuid, 0.0))
        assert await sender.flush(5.0)
        assert sender.stats()["expired"] == 2
    assert fake_gateway.received == 2  # first try and one retry; the third was too late
    assert stats["expired"] == 1
    assert stats["failed"] == 0


async def test_a_worker_survives_an_adapter_bug(clock: ManualClock) -> None:
    class Flaky:
        calls = 0

        async def send(self, sms: FlashSms) -> None:
            self.calls += 1
            if self.calls == 1:
                raise RuntimeError("adapter bug")

    with capture_logs() as logs:
        sender = SmsSender(Flaky(), SenderSettings(workers=1), clock=clock)
        async with sender:
            sender.submit(make_sms(clock))
            sender.submit(make_sms(clock, caller="13700002222"))
            assert await sender.flush(5.0)
            stats = sender.stats()
    assert stats["failed"] == 1
    assert stats["sent"] == 1
    assert any(e["event"] == "flash_sms_worker_error" for e in logs)


# -- never in the way of a call -------------------------------------------------------------


async def test_queue_full_drops_counts_and_returns_at_once(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    settings = SenderSettings(queue_max=2)
    with capture_logs() as logs:
        async with running(fake_gateway.url, clock, settings=settings, start=False) as sender:
            callers = [f"1370000{n:04d}" for n in range(5)]
            results = [sender.submit(make_sms(clock, caller=c)) for c in callers]
            assert results == [True, True, False, False, False]
            stats = sender.stats()
            assert stats["dropped"] == 3
            assert stats["queued"] == 2
            sender.start()
            assert await sender.flush(5.0)
    drops = [e for e in logs if e["event"] == "flash_sms_dropped"]
    # One error for the burst (rate-limited), carrying the count.
    assert len(drops) == 1
    assert drops[0]["log_level"] == "error"
    assert drops[0]["reason"] == "queue_full"
    assert drops[0]["queue_max"] == 2
    assert len(fake_gateway.messages) == 2


async def test_a_slow_gateway_never_delays_submit(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    assert not inspect.iscoroutinefunction(SmsSender.submit)
    fake_gateway.delay_s = 0.3
    settings = SenderSettings(workers=4)
    async with running(fake_gateway.url, clock, settings=settings) as sender:
        sender.submit(make_sms(clock, callee="13900000000"))
        await fake_gateway.wait_for(1)  # the gateway now holds a worker's request
        received = fake_gateway.received
        results = [
            sender.submit(make_sms(clock, callee=f"1390000{n:04d}")) for n in range(1, 201)
        ]
        # submit never yields to the loop: nothing moved while it ran ...
        assert fake_gateway.received == received
        # ... and it returned plain booleans while the gateway stalled.
        assert all(r is True for r in results)
        assert sender.stats()["pending"] == 201
        fake_gateway.delay_s = 0.0
        assert await sender.flush(10.0)
        assert sender.stats()["sent"] == 201


async def test_close_drains_queued_warnings(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    gateway = HttpSmsGateway(fake_gateway.url)
    sender = SmsSender(gateway, clock=clock)
    sender.start()
    for n in range(3):
        sender.submit(make_sms(clock, caller=f"1370000{n:04d}"))
    await sender.close(timeout_s=5.0)
    await gateway.close()
    assert len(fake_gateway.messages) == 3
    assert sender.stats()["sent"] == 3
    assert sender.stats()["dropped"] == 0


def _started_on_a_hung_gateway(
    fake_gateway: FakeSmsGateway, clock: ManualClock, *, workers: int
) -> tuple[HttpSmsGateway, SmsSender]:
    """A started sender whose gateway holds every request for 30 s."""
    fake_gateway.delay_s = 30.0
    gateway = HttpSmsGateway(fake_gateway.url, timeout_s=60.0)
    sender = SmsSender(gateway, SenderSettings(workers=workers, attempt_timeout_s=60.0),
                       clock=clock)
    sender.start()
    return gateway, sender


async def test_close_is_bounded_when_the_gateway_hangs(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    gateway, sender = _started_on_a_hung_gateway(fake_gateway, clock, workers=1)
    for n in range(3):
        sender.submit(make_sms(clock, caller=f"1370000{n:04d}"))
    await fake_gateway.wait_for(1)
    started = time.monotonic()
    with capture_logs() as logs:
        await sender.close(timeout_s=0.2)
    assert time.monotonic() - started < 2.0
    await gateway.close()
    # One cancelled in flight, two never started: all counted, none silently lost.
    assert sender.stats()["dropped"] == 3
    assert sender.stats()["pending"] == 0
    assert {e.get("reason") for e in logs if e["event"] == "flash_sms_dropped"} == {"shutdown"}
    # A closed sender refuses at once.
    assert sender.submit(make_sms(clock, caller="13700009999")) is False
    assert sender.stats()["dropped"] == 4


async def test_a_cancelled_close_still_stops_the_workers_and_counts_the_rest(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    gateway, sender = _started_on_a_hung_gateway(fake_gateway, clock, workers=2)
    workers = [t for t in asyncio.all_tasks() if t.get_name().startswith("flash-sms-")]
    assert len(workers) == 2
    for n in range(3):
        sender.submit(make_sms(clock, caller=f"1370000{n:04d}"))
    await fake_gateway.wait_for(2)  # both workers held by the gateway, one warning queued
    closing = asyncio.create_task(sender.close(timeout_s=60.0))
    await asyncio.sleep(0)  # close() runs until it waits for the queue to drain ...
    closing.cancel()  # ... when its caller's own deadline runs out
    async with asyncio.timeout(5):
        await asyncio.wait({closing})
    await gateway.close()
    assert closing.cancelled()
    # No worker left waiting on the queue for ever; nothing silently lost.
    assert all(t.done() for t in workers)
    assert sender.stats()["dropped"] == 3
    assert sender.stats()["pending"] == 0


async def test_submit_before_start_is_queued_and_sent_on_start(
    fake_gateway: FakeSmsGateway, clock: ManualClock
) -> None:
    gateway = HttpSmsGateway(fake_gateway.url)
    sender = SmsSender(gateway, clock=clock)
    assert sender.submit(make_sms(clock))
    assert not await sender.flush(0.1)  # no workers yet
    async with sender:
        assert await sender.flush(5.0)
    await gateway.close()
    await asyncio.sleep(0)
    assert len(fake_gateway.messages) == 1
