"""A fake HTTP SMS gateway for the lab and the tests: it records what it is sent.

Use it from code::

    async with FakeSmsGateway() as gw:          # binds 127.0.0.1 on a free port
        sender = SmsSender(HttpSmsGateway(gw.url))
        ...
        await gw.wait_for(1)
        gw.messages                              # JSON bodies it accepted
        gw.fail_next(2, status=503)              # the next two POSTs fail
        gw.delay_s = 1.0                         # answer slowly

or from a shell (``python -m fs_plugin.warn.fake_gateway --port 8089``), which prints
the URL to post to on its first line and then serves until interrupted. Over HTTP:

- ``POST <path>`` (default ``/sms``): a message. 200 ``{"ok": true, "id": n}``, or the
  injected failure status, or 400 when the body is not a JSON object.
- ``GET /messages``: JSON list of accepted bodies; ``DELETE /messages`` forgets all.
- ``GET /requests``: every request seen, with the status it was answered.
- ``POST /control`` ``{"fail_next": n, "status": 500, "delay_s": 0.0}``: inject failures.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import sys
from collections import deque
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType, TracebackType
from typing import Any, Final

from aiohttp import web

from fs_plugin.clock import Clock, SystemClock

__all__ = ["DEFAULT_MAX_RECORDS", "FakeSmsGateway", "ReceivedRequest", "main"]

#: Requests remembered. A lab run that sends more keeps the newest; counts stay exact.
DEFAULT_MAX_RECORDS: Final = 10_000

#: Bytes accepted per request body: far above any SMS, small enough to stay harmless.
_BODY_MAX: Final = 64 * 1024


@dataclass(frozen=True, slots=True)
class ReceivedRequest:
    """One request as the fake received it, and how it answered."""

    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    #: The decoded JSON body, or ``None`` when it was not JSON.
    payload: Any
    status: int
    received_at: float

    def as_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "path": self.path,
            "status": self.status,
            "payload": self.payload,
            "received_at": self.received_at,
        }


class FakeSmsGateway:
    """An aiohttp server on loopback that stands in for an SMS platform."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        path: str = "/sms",
        clock: Clock | None = None,
        max_records: int = DEFAULT_MAX_RECORDS,
    ) -> None:
        self._host = host
        self._port = port
        self._path = path
        self._clock = clock or SystemClock()
        self._records: deque[ReceivedRequest] = deque(maxlen=max_records)
        self.received = 0
        self._fail_count = 0
        self._fail_status = 500
        self._retry_after: float | None = None
        #: Seconds to wait before answering a message (a slow gateway).
        self.delay_s = 0.0
        self._changed = asyncio.Event()
        self._stopping = asyncio.Event()
        self._runner: web.AppRunner | None = None
        self._bound: tuple[str, int] | None = None

    # -- control ------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 500, *, retry_after: float | None = None) -> None:
        """Answer the next ``count`` messages with ``status`` (and ``Retry-After``)."""
        if count < 0 or not 100 <= status <= 599:
            raise ValueError("count must be >= 0 and status an HTTP status")
        self._fail_count = count
        self._fail_status = status
        self._retry_after = retry_after

    def clear(self) -> None:
        self._records.clear()

    @property
    def requests(self) -> list[ReceivedRequest]:
        return list(self._records)

    @property
    def messages(self) -> list[Any]:
        """JSON bodies of the messages the fake accepted (2xx), oldest first."""
        return [
            r.payload
            for r in self._records
            if r.method == "POST" and r.path == self._path and 200 <= r.status < 300
        ]

    async def wait_for(self, count: int, timeout_s: float = 5.0) -> list[ReceivedRequest]:
        """Wait until ``count`` messages in total have been received (any status)."""
        async with asyncio.timeout(timeout_s):
            while self.received < count:
                self._changed.clear()
                await self._changed.wait()
        return self.requests

    # -- server -------------------------------------------------------------------------

    @property
    def url(self) -> str:
        """Where to POST messages."""
        return self.base_url + self._path

    @property
    def base_url(self) -> str:
        if self._bound is None:
            raise RuntimeError("the fake gateway is not started")
        host, port = self._bound
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    async def start(self) -> None:
        app = web.Application(client_max_size=_BODY_MAX)
        app.router.add_post(self._path, self._message)
        app.router.add_get("/messages", self._list_messages)
        app.router.add_delete("/messages", self._clear)
        app.router.add_get("/requests", self._list_requests)
        app.router.add_post("/control", self._control)
        # A short shutdown: in-flight handlers are released by _stopping at close.
        runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self._host, self._port)
        await site.start()
        self._runner = runner
        address = runner.addresses[0]
        self._bound = (str(address[0]), int(address[1]))

    async def close(self) -> None:
        self._stopping.set()
        runner, self._runner = self._runner, None
        if runner is not None:
            await runner.cleanup()

    async def __aenter__(self) -> FakeSmsGateway:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # -- handlers -----------------------------------------------------------------------

    async def _message(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            payload = json.loads(body)
        except ValueError:
            payload = None
        headers: dict[str, str] = {}
        if self._fail_count > 0:
            self._fail_count -= 1
            status = self._fail_status
            if self._retry_after is not None:
                headers["Retry-After"] = f"{self._retry_after:g}"
            answer: dict[str, Any] = {"ok": False, "error": "injected failure"}
        elif not isinstance(payload, dict):
            status = 400
            answer = {"ok": False, "error": "body must be a JSON object"}
        else:
            status = 200
            answer = {"ok": True, "id": self.received + 1}
        # Recorded on arrival, so a client that times out on a slow answer still sees
        # its request counted.
        self._records.append(
            ReceivedRequest(
                method=request.method,
                path=request.path,
                headers=MappingProxyType(dict(request.headers)),
                body=body,
                payload=payload,
                status=status,
                received_at=self._clock.time(),
            )
        )
        self.received += 1
        self._changed.set()
        if self.delay_s > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.delay_s):
                    await self._stopping.wait()
        return web.json_response(answer, status=status, headers=headers)

    async def _list_messages(self, _request: web.Request) -> web.Response:
        return web.json_response(self.messages, dumps=_dumps)

    async def _list_requests(self, _request: web.Request) -> web.Response:
        return web.json_response([r.as_json() for r in self._records], dumps=_dumps)

    async def _clear(self, _request: web.Request) -> web.Response:
        self.clear()
        return web.json_response({"ok": True})

    async def _control(self, request: web.Request) -> web.Response:
        try:
            order = await request.json()
            if not isinstance(order, dict):
                raise ValueError("not an object")
            if "delay_s" in order:
                self.delay_s = float(order["delay_s"])
            if "fail_next" in order:
                retry = order.get("retry_after")
                self.fail_next(
                    int(order["fail_next"]),
                    int(order.get("status", 500)),
                    retry_after=None if retry is None else float(retry),
                )
        except (ValueError, TypeError) as exc:
            return web.json_response({"ok": False, "error": str(exc)}, status=400)
        return web.json_response(
            {"ok": True, "fail_next": self._fail_count, "delay_s": self.delay_s}
        )


def _dumps(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False)


async def _serve(host: str, port: int, path: str) -> None:
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with FakeSmsGateway(host, port, path=path) as gateway:
        print(gateway.url, flush=True)
        await stop.wait()


def main(argv: Sequence[str] | None = None) -> int:
    """CLI: serve a fake SMS gateway until SIGINT/SIGTERM; prints its URL first."""
    parser = argparse.ArgumentParser(
        prog="python -m fs_plugin.warn.fake_gateway",
        description="Fake HTTP SMS gateway that records what it receives (lab use).",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to bind (loopback)")
    parser.add_argument("--port", type=int, default=0, help="port (0 = any free port)")
    parser.add_argument("--path", default="/sms", help="path messages are posted to")
    args = parser.parse_args(argv)
    asyncio.run(_serve(args.host, args.port, args.path))
    return 0


if __name__ == "__main__":
    sys.exit(main())
