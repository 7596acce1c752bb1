"""The lab's fake SMS gateway: what it records, its HTTP control surface, its CLI."""

from __future__ import annotations

import asyncio
import signal
import sys

import aiohttp
import pytest

from fs_plugin.warn.fake_gateway import FakeSmsGateway


async def test_records_answers_and_injects_failures(fake_gateway: FakeSmsGateway) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(fake_gateway.url, json={"to": "139", "text": "嗨"}) as resp:
            assert resp.status == 200
            assert await resp.json() == {"ok": True, "id": 1}
        async with http.post(fake_gateway.url, data=b"not json") as resp:
            assert resp.status == 400
        control = {"fail_next": 2, "status": 503, "retry_after": 1.5}
        async with http.post(fake_gateway.base_url + "/control", json=control) as resp:
            assert resp.status == 200
        for _ in range(2):
            async with http.post(fake_gateway.url, json={"to": "138"}) as resp:
                assert resp.status == 503
                assert resp.headers["Retry-After"] == "1.5"
        async with http.post(fake_gateway.url, json={"to": "137"}) as resp:
            assert resp.status == 200
        async with http.get(fake_gateway.base_url + "/messages") as resp:
            assert await resp.json() == [{"to": "139", "text": "嗨"}, {"to": "137"}]
        async with http.get(fake_gateway.base_url + "/requests") as resp:
            assert [r["status"] for r in await resp.json()] == [200, 400, 503, 503, 200]
        async with http.post(fake_gateway.base_url + "/control", json=[1]) as resp:
            assert resp.status == 400
        async with http.delete(fake_gateway.base_url + "/messages") as resp:
            assert resp.status == 200
    assert fake_gateway.messages == []
    assert fake_gateway.received == 5
    assert fake_gateway.requests == []


async def test_wait_for_times_out_when_nothing_arrives(fake_gateway: FakeSmsGateway) -> None:
    with pytest.raises(TimeoutError):
        await fake_gateway.wait_for(1, timeout_s=0.05)


def test_url_needs_a_started_gateway() -> None:
    with pytest.raises(RuntimeError):
        _ = FakeSmsGateway().url
    with pytest.raises(ValueError):
        FakeSmsGateway().fail_next(1, status=42)


async def test_cli_serves_until_terminated() -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "fs_plugin.warn.fake_gateway",
        "--port",
        "0",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    try:
        async with asyncio.timeout(20):
            url = ""
            while not url.startswith("http://"):
                line = await proc.stdout.readline()
                assert line, "the CLI exited before printing its URL"
                url = line.decode().strip()
        assert url.startswith("http://127.0.0.1:")
        assert url.endswith("/sms")
        async with aiohttp.ClientSession() as http:
            async with http.post(url, json={"to": "13912345678"}) as resp:
                assert resp.status == 200
            async with http.get(url.removesuffix("/sms") + "/messages") as resp:
                assert await resp.json() == [{"to": "13912345678"}]
        proc.send_signal(signal.SIGTERM)
        async with asyncio.timeout(10):
            assert await proc.wait() == 0
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
