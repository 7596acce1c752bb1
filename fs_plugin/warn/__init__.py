"""Flash-SMS (闪信) warnings to called users, off the call path.

When a call is warned (or a label marks the caller), the called user gets a short
message such as ``【防骚扰提醒】来电021****0123疑似骚扰:房产中介，请谨慎接听``.
The call path calls :meth:`SmsSender.submit`, which never waits; workers deliver
through an adapter with deadlines, retries and a once-a-day dedupe per
(callee, caller).

Adapters: :class:`HttpSmsGateway` (JSON over HTTP). SMPP comes later.
:class:`~fs_plugin.warn.fake_gateway.FakeSmsGateway` is the lab's stand-in gateway.
"""

from __future__ import annotations

from fs_plugin.warn.dedupe import DayCalendar, DedupeStore, MemoryDedupe, dedupe_key
from fs_plugin.warn.http_gateway import HttpSmsGateway
from fs_plugin.warn.model import (
    DEFAULT_BODY,
    DEFAULT_TEXT_TEMPLATE,
    FailureKind,
    FlashSms,
    SmsDeliveryError,
    SmsGateway,
    render_body,
    render_text,
)
from fs_plugin.warn.sender import SenderSettings, SmsSender

__all__ = [
    "DEFAULT_BODY",
    "DEFAULT_TEXT_TEMPLATE",
    "DayCalendar",
    "DedupeStore",
    "FailureKind",
    "FlashSms",
    "HttpSmsGateway",
    "MemoryDedupe",
    "SenderSettings",
    "SmsDeliveryError",
    "SmsGateway",
    "SmsSender",
    "dedupe_key",
    "render_body",
    "render_text",
]
