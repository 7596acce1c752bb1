"""Group SIP messages into INVITE dialogs and extract what a policy needs from each.

A dialog is keyed by Call-ID. Its call facts come from the first INVITE (what
the switch would have screened); its timing from the responses and the CANCEL
or BYE that followed. Dialogs are handed out as soon as they are over, so a
trace of any length is replayed in bounded memory:

- a final non-2xx response closes the dialog after :data:`CLOSE_GRACE_S` of
  capture time, because an auth challenge (401/407) is usually followed by a
  new INVITE on the same Call-ID, which continues the same call attempt;
- a BYE closes it after the same grace (retransmissions and the 200 OK follow);
- a dialog with no message for :data:`IDLE_TIMEOUT_S` is handed out as it is;
- at most :data:`MAX_OPEN_DIALOGS` are open at once, the least recently active
  is handed out first when the bound is reached.

Calls therefore come out in the order they ended, not the order they began.
"""

from __future__ import annotations

import heapq
from collections import OrderedDict
from dataclasses import dataclass
from enum import StrEnum
from types import MappingProxyType

from fs_plugin.replay.packets import Payload
from fs_plugin.replay.sip import (
    SipMessage,
    SipSketch,
    parse_message,
    parse_name_addr,
    uri_user,
)
from fs_plugin.screening.model import CallFacts

__all__ = [
    "CLOSE_GRACE_S",
    "IDLE_TIMEOUT_S",
    "MAX_OPEN_DIALOGS",
    "DialogGrouper",
    "EndedBy",
    "TraceCall",
]

#: 64 × T1 (RFC 3261 Timer B/H): how long retransmissions and auth retries may follow.
CLOSE_GRACE_S = 32.0
#: A dialog silent this long (capture time) is considered over. Long enough for a
#: long answered call without session timers; short enough to bound memory on
#: captures that miss the BYE.
IDLE_TIMEOUT_S = 4 * 3600.0
#: Open dialogs at once: far above any trunk's concurrent calls, and at a few hundred
#: bytes each, a bound on memory for a capture that never shows its dialogs ending.
MAX_OPEN_DIALOGS = 1_000_000
#: Call-IDs remembered after a dialog is handed out, so a late retransmitted INVITE
#: does not start a second copy of the same call.
MAX_CLOSED_REMEMBERED = 200_000


class EndedBy(StrEnum):
    CALLER = "caller"
    CALLEE = "callee"


@dataclass(frozen=True, slots=True)
class TraceCall:
    """One INVITE dialog seen in a trace: the call facts and how the call went.

    Times are seconds since the epoch (capture clock). ``final_status`` is the
    final response to the initial INVITE (``None`` if the trace never shows one);
    ``end_time`` is when the call ended: the CANCEL or BYE, or the final response
    of a rejected call. ``pai`` is the user part of the first
    P-Asserted-Identity and ``diversion`` the raw first Diversion header, as
    sofia presents them to the dialplan.
    """

    call_id: str
    from_user: str
    from_display: str
    pai: str | None
    diversion: str | None
    request_user: str
    to_user: str
    src_ip: str | None
    src_port: int | None
    dst_ip: str | None
    dst_port: int | None
    transport: str
    user_agent: str | None
    invite_time: float
    ringing_time: float | None
    final_status: int | None
    final_time: float | None
    answer_time: float | None
    end_time: float | None
    end_method: str | None
    ended_by: EndedBy | None
    where: str = ""

    @property
    def answered(self) -> bool:
        return self.answer_time is not None

    @property
    def callee(self) -> str:
        """The number called: Request-URI user, else To user (sofia's destination number)."""
        return self.request_user or self.to_user

    @property
    def caller_cancelled(self) -> bool:
        return self.end_method == "CANCEL"

    @property
    def ring_time_s(self) -> float | None:
        """``end − first 18x`` for a call that rang and was never answered, else ``None``."""
        if self.answer_time is not None or self.ringing_time is None or self.end_time is None:
            return None
        return max(0.0, self.end_time - self.ringing_time)

    @property
    def duration_s(self) -> float | None:
        """Answered time: BYE − 200 OK (``None`` if unanswered or the BYE is missing)."""
        if self.answer_time is None or self.end_time is None:
            return None
        return max(0.0, self.end_time - self.answer_time)

    def to_facts(self, *, trunk_hint: str | None = None) -> CallFacts:
        """The facts FreeSWITCH would have handed the screening hook for this INVITE."""
        variables = {
            "sip_call_id": self.call_id,
            "sip_from_user": self.from_user,
            "sip_to_user": self.to_user,
            "sip_req_user": self.request_user,
        }
        if self.pai is not None:
            variables["sip_P-Asserted-Identity"] = self.pai
        if self.diversion is not None:
            variables["sip_h_Diversion"] = self.diversion
        if self.src_ip is not None:
            variables["sip_network_ip"] = self.src_ip
        if self.src_port is not None:
            variables["sip_network_port"] = str(self.src_port)
        if self.user_agent is not None:
            variables["sip_user_agent"] = self.user_agent
        return CallFacts(
            uuid=self.call_id,
            from_user=self.from_user,
            destination=self.callee,
            pai=self.pai,
            diversion=self.diversion,
            caller_id_name=self.from_display or None,
            trunk_hint=trunk_hint,
            network_ip=self.src_ip,
            call_id=self.call_id,
            user_agent=self.user_agent,
            timestamp_us=round(self.invite_time * 1_000_000),
            variables=MappingProxyType(variables),
        )


#: The fields of :class:`TraceCall` taken from the INVITE, in field order.
_Facts = tuple[
    str, str, str, str | None, str | None, str, str, str | None, int | None, str | None,
    int | None, str, str | None, float,
]


class _Dialog:
    """Mutable working state of one open dialog (never leaves this module).

    ``facts`` holds the INVITE's fields of :class:`TraceCall` in field order, from
    ``call_id`` to ``invite_time``; the call is built once, when it is handed out.
    """

    __slots__ = (
        "answer_time",
        "cseq",
        "end_method",
        "end_time",
        "ended_by",
        "facts",
        "final_status",
        "final_time",
        "from_tag",
        "invite_time",
        "last_seen",
        "ringing_time",
        "src_ip",
        "src_port",
        "where",
    )

    def __init__(
        self,
        facts: _Facts,
        invite_time: float,
        src_ip: str | None,
        src_port: int | None,
        where: str,
        cseq: int,
        from_tag: str | None,
    ) -> None:
        self.facts = facts
        self.invite_time = invite_time
        self.src_ip = src_ip
        self.src_port = src_port
        self.where = where
        self.cseq = cseq
        self.from_tag = from_tag
        self.last_seen = invite_time
        self.ringing_time: float | None = None
        self.final_status: int | None = None
        self.final_time: float | None = None
        self.answer_time: float | None = None
        self.end_time: float | None = None
        self.end_method: str | None = None
        self.ended_by: EndedBy | None = None

    def result(self) -> TraceCall:
        end = self.end_time
        if end is None and self.final_status is not None and self.final_status >= 300:
            end = self.final_time
        return TraceCall(
            *self.facts, self.ringing_time, self.final_status, self.final_time,
            self.answer_time, end, self.end_method, self.ended_by, self.where,
        )


_NO_CALLS: list[TraceCall] = []

def _first_user(message: SipMessage, name: str) -> str | None:
    value = message.header(name)
    if value is None:
        return None
    return parse_name_addr(value).user or None


class DialogGrouper:
    """Feed parsed messages in capture order with :meth:`add`; finished calls come back.

    :meth:`flush` hands out whatever is still open at the end of the trace.
    Messages of other methods (REGISTER, OPTIONS, …) and of unknown dialogs are
    counted and otherwise ignored.
    """

    def __init__(
        self,
        *,
        close_grace_s: float = CLOSE_GRACE_S,
        idle_timeout_s: float = IDLE_TIMEOUT_S,
        max_open: int = MAX_OPEN_DIALOGS,
        source: str = "",
        position_separator: str = "#",
    ) -> None:
        # ``where`` of a call is "<source><separator><frame or line>" (``trace.pcap#12``).
        self._source = source
        self._separator = position_separator
        self._grace = close_grace_s
        self._idle = idle_timeout_s
        self._max_open = max_open
        # Both maps are ordered by a time that only grows with insertion (last activity,
        # closing deadline with a fixed grace), so expiry only ever looks at the front.
        self._open: OrderedDict[str, _Dialog] = OrderedDict()
        self._closing: OrderedDict[str, tuple[float, _Dialog]] = OrderedDict()
        self._closed: OrderedDict[str, None] = OrderedDict()
        # (invite time, call id) of every dialog started, popped lazily once handed out:
        # the earliest start still open is the replay's watermark.
        self._starts: list[tuple[float, str]] = []
        self.messages = 0
        self.ignored = 0
        self.missing_call_id = 0

    @property
    def open_dialogs(self) -> int:
        return len(self._open) + len(self._closing)

    def oldest_start(self) -> float | None:
        """The earliest INVITE time of a dialog not handed out yet (``None``: none open).

        No call still to come out of this grouper began before it, so events of the
        calls already out that happen before it can be run in time order.
        """
        starts = self._starts
        while starts:
            when, call_id = starts[0]
            dialog = self._open.get(call_id)
            if dialog is None:
                closing = self._closing.get(call_id)
                dialog = closing[1] if closing is not None else None
            if dialog is not None and dialog.invite_time == when:
                return when
            heapq.heappop(starts)
        return None

    def add(self, message: SipMessage, meta: Payload) -> list[TraceCall]:
        """Account one parsed message; return the calls that finished (usually none)."""
        cseq = message.cseq or (-1, "")
        sketch = SipSketch(message.method, message.status, message.call_id, *cseq)
        return self.add_sketch(sketch, meta, message)

    def add_sketch(
        self, sketch: SipSketch, meta: Payload, message: SipMessage | None = None
    ) -> list[TraceCall]:
        """Account one message from its sketch; the full parse happens only when needed.

        Only a new INVITE, a retried INVITE and a BYE need more than the sketch;
        then ``message`` is used, or ``meta.data`` is parsed (which may raise
        :class:`~fs_plugin.replay.sip.SipParseError`).
        """
        self.messages += 1
        now = meta.ts
        done = _NO_CALLS
        if self._closing:
            first = next(iter(self._closing.values()))
            if first[0] <= now:
                done = self._expire_closing(now)
        if self._open:
            first_open = next(iter(self._open.values()))
            if first_open.last_seen + self._idle <= now:
                done = done + self._expire_idle(now) if done else self._expire_idle(now)

        call_id = sketch.call_id
        if not call_id:
            self.missing_call_id += 1
            return done
        status = sketch.status
        dialog = self._open.get(call_id)
        if dialog is None:
            closing = self._closing.get(call_id)
            if closing is not None:
                dialog = closing[1]
        if status == 0:
            method = sketch.method
            if method == "INVITE":
                if dialog is None:
                    if call_id in self._closed:
                        self.ignored += 1
                        return done
                    full = message or parse_message(meta.data)
                    started = self._start(call_id, full, meta)
                    if started is None:
                        self.ignored += 1
                        return done
                    if len(self._open) > self._max_open:
                        _, oldest = self._open.popitem(last=False)
                        done = [*done, oldest.result()]
                    return done
                if sketch.cseq > dialog.cseq:
                    full = message or parse_message(meta.data)
                    if not parse_name_addr(full.header("to") or "").tag:
                        # A new INVITE outside the dialog with a higher CSeq: the caller
                        # retries (after 401/407); the attempt goes on, its final to come.
                        dialog.cseq = sketch.cseq
                        if dialog.final_status is not None and dialog.answer_time is None:
                            dialog.final_status = None
                            dialog.final_time = None
                            self._reopen(call_id, dialog)
            elif dialog is None:
                self.ignored += 1
                return done
            elif method == "CANCEL":
                if dialog.end_time is None and dialog.answer_time is None:
                    dialog.end_time = now
                    dialog.end_method = "CANCEL"
                    dialog.ended_by = EndedBy.CALLER
            elif method == "BYE" and dialog.end_time is None:
                full = message or parse_message(meta.data)
                dialog.end_time = now
                dialog.end_method = "BYE"
                dialog.ended_by = self._who(dialog, full, meta)
                self._close(call_id, dialog, now)
            dialog.last_seen = now
            if call_id in self._open:
                self._open.move_to_end(call_id)
            return done
        if dialog is None:
            self.ignored += 1
            return done
        if sketch.cseq_method != "INVITE" or sketch.cseq != dialog.cseq:
            # Responses to CANCEL/BYE, or to a re-INVITE, say nothing about the call's setup.
            return done
        if status < 200:
            if status >= 180 and dialog.ringing_time is None and dialog.final_status is None:
                dialog.ringing_time = now
        elif dialog.final_status is None:
            dialog.final_status = status
            dialog.final_time = now
            if status < 300:
                dialog.answer_time = now
                if dialog.end_method == "CANCEL":
                    # The 200 OK won the race against the CANCEL: the call was answered
                    # and will end with a BYE.
                    dialog.end_time = dialog.end_method = dialog.ended_by = None
            else:
                self._close(call_id, dialog, now)
        dialog.last_seen = now
        if call_id in self._open:
            self._open.move_to_end(call_id)
        return done

    def flush(self) -> list[TraceCall]:
        """Hand out every dialog still open (end of trace), oldest first."""
        dialogs = [d for _, d in self._closing.values()] + list(self._open.values())
        dialogs.sort(key=lambda d: d.invite_time)
        self._closing.clear()
        self._open.clear()
        return [d.result() for d in dialogs]

    # -- internals ------------------------------------------------------------------------

    def _start(self, call_id: str, message: SipMessage, meta: Payload) -> _Dialog | None:
        cseq = message.cseq
        from_value = message.header("from")
        to_value = message.header("to")
        if cseq is None or from_value is None or to_value is None:
            return None
        sender = parse_name_addr(from_value)
        to = parse_name_addr(to_value)
        if to.tag:
            # An INVITE inside a dialog we never saw start (re-INVITE): not a new call.
            return None
        src, sport = meta.src or None, meta.sport or None
        if src is None:
            src, sport = _via_sent_by(message.header("via"))
        facts: _Facts = (
            call_id, sender.user, sender.display, _first_user(message, "p-asserted-identity"),
            message.header("diversion"), uri_user(message.request_uri), to.user, src, sport,
            meta.dst, meta.dport, meta.transport, message.header("user-agent"), meta.ts,
        )
        where = f"{self._source}{self._separator}{meta.frame}"
        dialog = _Dialog(facts, meta.ts, src, sport, where, cseq[0], sender.tag)
        self._open[call_id] = dialog
        starts = self._starts
        heapq.heappush(starts, (meta.ts, call_id))
        if len(starts) > 2 * self.open_dialogs + 1024:
            # Entries of handed-out dialogs behind a long-open one: rebuild (bounded ~2x).
            self._starts = [(d.invite_time, k) for k, d in self._open.items()]
            self._starts += [(d.invite_time, k) for k, (_, d) in self._closing.items()]
            heapq.heapify(self._starts)
        return dialog

    @staticmethod
    def _who(dialog: _Dialog, message: SipMessage, meta: Payload) -> EndedBy:
        # The From tag is the caller's in every request the caller sends in the dialog;
        # a BYE from the callee carries the callee's tag in From (RFC 3261 §12.2.1.1).
        tag = parse_name_addr(message.header("from") or "").tag
        if dialog.from_tag is not None and tag is not None:
            return EndedBy.CALLER if tag == dialog.from_tag else EndedBy.CALLEE
        if meta.src is not None and dialog.src_ip is not None:
            same = meta.src == dialog.src_ip and meta.sport == dialog.src_port
            return EndedBy.CALLER if same else EndedBy.CALLEE
        return EndedBy.CALLER

    def _close(self, call_id: str, dialog: _Dialog, now: float) -> None:
        self._open.pop(call_id, None)
        self._closing.pop(call_id, None)
        self._closing[call_id] = (now + self._grace, dialog)

    def _reopen(self, call_id: str, dialog: _Dialog) -> None:
        if self._closing.pop(call_id, None) is not None:
            self._open[call_id] = dialog

    def _finish(self, call_id: str, dialog: _Dialog) -> TraceCall:
        closed = self._closed
        closed[call_id] = None
        if len(closed) > MAX_CLOSED_REMEMBERED:
            closed.popitem(last=False)
        return dialog.result()

    def _expire_closing(self, now: float) -> list[TraceCall]:
        out: list[TraceCall] = []
        closing = self._closing
        while closing:
            call_id, (deadline, dialog) = next(iter(closing.items()))
            if deadline > now:
                break
            del closing[call_id]
            out.append(self._finish(call_id, dialog))
        return out

    def _expire_idle(self, now: float) -> list[TraceCall]:
        out: list[TraceCall] = []
        opened = self._open
        while opened:
            call_id, dialog = next(iter(opened.items()))
            if dialog.last_seen + self._idle > now:
                break
            del opened[call_id]
            out.append(self._finish(call_id, dialog))
        return out


def _via_sent_by(via: str | None) -> tuple[str | None, int | None]:
    """Host and port of the top Via's sent-by (text logs carry no packet addresses)."""
    if not via:
        return None, None
    _, _, rest = via.partition(" ")
    sent_by = rest.strip().partition(";")[0].partition(",")[0].strip()
    if sent_by.startswith("["):
        host, _, tail = sent_by[1:].partition("]")
        port_text = tail.lstrip(":")
    else:
        host, _, port_text = sent_by.rpartition(":") if sent_by.count(":") == 1 else (
            sent_by,
            "",
            "",
        )
    port = int(port_text) if port_text.isascii() and port_text.isdigit() else None
    return host or None, port
