"""An HTTP SMS gateway adapter: one JSON POST per warning (aiohttp).

Most carrier SMS platforms (and flash-SMS platforms in particular) take a JSON POST;
the body shape differs between vendors, so it is a template: every string in
``body`` is rendered with the placeholders of :data:`~fs_plugin.warn.model.BODY_PLACEHOLDERS`,
``{text}`` being the message rendered from ``template``. The defaults are
:data:`~fs_plugin.warn.model.DEFAULT_TEXT_TEMPLATE` and
:data:`~fs_plugin.warn.model.DEFAULT_BODY`.

The caller's number is shown masked (first 3 and last 4 digits) in ``{caller_masked}``
unless ``mask_caller=False``: the text goes to a third party's handset and through the
SMS platform's logs. ``{caller}`` is the clear number for bodies that need it.

Status handling: 2xx accepted; 429 and 5xx retryable (with ``Retry-After`` when given);
any other status (4xx, a 3xx redirect, which is not followed because a POST must not
silently become a GET) is final. Timeouts and connection errors are retryable.
An SMPP adapter (binds, windowing, delivery receipts) comes later.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from types import TracebackType
from typing import Any, Final
from urllib.parse import urlsplit

import aiohttp

from fs_plugin.errors import ConfigError
from fs_plugin.warn.model import (
    DEFAULT_BODY,
    DEFAULT_TEXT_TEMPLATE,
    TEXT_PLACEHOLDERS,
    FailureKind,
    FlashSms,
    SmsDeliveryError,
    check_body,
    check_template,
    render_body,
)

__all__ = ["DEFAULT_HTTP_TIMEOUT_S", "HttpSmsGateway"]

#: Per-request deadline. SMS platforms answer in tens of milliseconds when healthy; a
#: few seconds rides out a hiccup without tying a worker up for long.
DEFAULT_HTTP_TIMEOUT_S: Final = 3.0

#: Bytes of an error response kept for the log: enough for a vendor's error code.
_ERROR_BODY_MAX: Final = 256

_dumps = functools.partial(json.dumps, ensure_ascii=False, separators=(",", ":"))


def _retry_after(value: str | None) -> float | None:
    # Only the delta-seconds form; an HTTP-date is rare from SMS platforms and the
    # sender's own backoff is a fine substitute.
    if value is None:
        return None
    try:
        seconds = float(value.strip())
    except ValueError:
        return None
    return seconds if seconds >= 0 else None


class HttpSmsGateway:
    """:class:`~fs_plugin.warn.model.SmsGateway` over HTTP(S) with a JSON body."""

    def __init__(
        self,
        url: str,
        template: str = DEFAULT_TEXT_TEMPLATE,
        *,
        timeout_s: float = DEFAULT_HTTP_TIMEOUT_S,
        headers: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        mask_caller: bool = True,
        max_connections: int = 8,
    ) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ConfigError(f"not an http(s) URL: {url!r}", key="warn.url")
        if not timeout_s > 0:
            raise ConfigError(f"must be > 0, got {timeout_s!r}", key="warn.timeout_s")
        if max_connections < 1:
            raise ConfigError("must be >= 1", key="warn.max_connections")
        check_template(template, TEXT_PLACEHOLDERS, key="warn.template")
        self._body: Mapping[str, Any] = DEFAULT_BODY if body is None else body
        check_body(self._body, key="warn.body")
        self.url = url
        self._template = template
        self._timeout = aiohttp.ClientTimeout(total=timeout_s)
        self._headers = dict(headers or {})
        self._mask = mask_caller
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def render(self, sms: FlashSms) -> dict[str, Any]:
        """The JSON object this gateway would post for ``sms`` (also for previews)."""
        return render_body(self._body, self._template, sms, mask_caller=self._mask)

    def _open(self) -> aiohttp.ClientSession:
        # Created on first use, inside the running loop; no await between the check in
        # send() and this assignment, so concurrent workers share one session.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=self._max_connections),
            timeout=self._timeout,
            headers=self._headers,
            json_serialize=_dumps,
        )
        return self._session

    async def send(self, sms: FlashSms) -> None:
        session = self._session or self._open()
        payload = self.render(sms)
        try:
            async with session.post(self.url, json=payload, allow_redirects=False) as resp:
                status = resp.status
                if 200 <= status < 300:
                    return
                detail = (await resp.content.read(_ERROR_BODY_MAX)).decode("utf-8", "replace")
                retry_after = _retry_after(resp.headers.get("Retry-After"))
        except TimeoutError as exc:
            raise SmsDeliveryError(
                FailureKind.TIMEOUT, retryable=True, detail=type(exc).__name__
            ) from exc
        except (aiohttp.ClientError, OSError) as exc:
            raise SmsDeliveryError(
                FailureKind.CONNECTION, retryable=True, detail=type(exc).__name__
            ) from exc
        raise SmsDeliveryError(
            FailureKind.STATUS,
            retryable=status == 429 or status >= 500,
            status=status,
            retry_after_s=retry_after,
            detail=detail,
        )

    async def close(self) -> None:
        session, self._session = self._session, None
        if session is not None:
            await session.close()

    async def __aenter__(self) -> HttpSmsGateway:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()
