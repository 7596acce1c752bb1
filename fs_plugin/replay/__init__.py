"""SIP trace replay: read pcap, pcapng and text traces into INVITE dialogs (call facts + timing).

``read_trace(path)`` streams :class:`TraceCall` values; each gives the
:class:`~fs_plugin.screening.model.CallFacts` the screening hook would have seen
(``to_facts()``) and how the call went (ringing, answer, who ended it).
"""

from __future__ import annotations

from fs_plugin.replay.dialogs import DialogGrouper, EndedBy, TraceCall
from fs_plugin.replay.reader import (
    Skip,
    SkipReason,
    TraceFormat,
    TraceResult,
    TraceStats,
    detect_format,
    read_trace,
)
from fs_plugin.replay.sip import ParseFailure, SipMessage, SipParseError, parse_message

__all__ = [
    "DialogGrouper",
    "EndedBy",
    "ParseFailure",
    "SipMessage",
    "SipParseError",
    "Skip",
    "SkipReason",
    "TraceCall",
    "TraceFormat",
    "TraceResult",
    "TraceStats",
    "detect_format",
    "parse_message",
    "read_trace",
]
