"""Helpers shared by the flash-SMS tests (imported by name: pytest puts this folder on
sys.path because test folders have no ``__init__.py``)."""

from __future__ import annotations

import asyncio
import itertools

from fs_plugin.clock import ManualClock
from fs_plugin.warn import FlashSms

_uuids = itertools.count(1)


class RecordingSleep:
    """Stands in for ``asyncio.sleep`` in backoff: notes the delay, yields once.

    With a clock it also moves that clock by the delay, as real waiting would.
    """

    def __init__(self, clock: ManualClock | None = None) -> None:
        self.delays: list[float] = []
        self._clock = clock

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)
        if self._clock is not None:
            self._clock.advance(seconds)
        await asyncio.sleep(0)


def make_sms(
    clock: ManualClock,
    *,
    callee: str = "13912345678",
    caller: str = "02112340123",
    label: str = "疑似骚扰:房产中介",
) -> FlashSms:
    return FlashSms(
        callee=callee,
        caller=caller,
        label=label,
        call_uuid=f"call-{next(_uuids):04d}",
        created_at=clock.time(),
    )
