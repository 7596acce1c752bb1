"""Sans-I/O codec for FreeSWITCH's event socket (ESL), both sides.

Client side (the plug-in): :class:`Connection` turns bytes from FreeSWITCH into typed
events and commands into bytes, checking every step against one state table
(``_state.py``). Switch side (the lab emulator): :class:`SwitchConnection` parses client
commands and the ``encode_*`` functions write FreeSWITCH-shaped frames.

This package imports no asyncio, no socket and nothing of fs_plugin but
``fs_plugin.errors`` (a test checks it).
"""

from __future__ import annotations

from fs_plugin.esl._commands import (
    EVENT_FORMATS,
    Api,
    Auth,
    BgApi,
    Command,
    Connect,
    EventSubscribe,
    Exit,
    Filter,
    Linger,
    Log,
    MyEvents,
    NoEvents,
    NoLinger,
    NoLog,
    RawCommand,
    SendMsg,
    command_verb,
    encode,
    execute,
    hangup,
)
from fs_plugin.esl._connection import DEFAULT_MAX_FRAME_SIZE, DEFAULT_MAX_HEADER_BYTES, Connection
from fs_plugin.esl._errors import LocalEslError, Reason, RemoteEslError
from fs_plugin.esl._frames import (
    NEED_DATA,
    ApiResponse,
    AuthRequest,
    ChannelData,
    CommandReply,
    ConnectionClosed,
    DisconnectNotice,
    EslEvent,
    Event,
    Frame,
    LogData,
    NeedData,
    RudeRejection,
    UnknownFrame,
)
from fs_plugin.esl._state import TRANSITIONS, Input, Role, State
from fs_plugin.esl._switch import (
    GOODBYE,
    SwitchConnection,
    encode_api_response,
    encode_auth_request,
    encode_channel_data,
    encode_command_reply,
    encode_disconnect_notice,
    encode_event_json,
    encode_event_plain,
    encode_log_data,
    encode_rude_rejection,
    parse_command,
)
from fs_plugin.esl._urlcode import fs_url_decode, fs_url_encode

__all__ = [
    "DEFAULT_MAX_FRAME_SIZE",
    "DEFAULT_MAX_HEADER_BYTES",
    "EVENT_FORMATS",
    "GOODBYE",
    "NEED_DATA",
    "TRANSITIONS",
    "Api",
    "ApiResponse",
    "Auth",
    "AuthRequest",
    "BgApi",
    "ChannelData",
    "Command",
    "CommandReply",
    "Connect",
    "Connection",
    "ConnectionClosed",
    "DisconnectNotice",
    "EslEvent",
    "Event",
    "EventSubscribe",
    "Exit",
    "Filter",
    "Frame",
    "Input",
    "Linger",
    "LocalEslError",
    "Log",
    "LogData",
    "MyEvents",
    "NeedData",
    "NoEvents",
    "NoLinger",
    "NoLog",
    "RawCommand",
    "Reason",
    "RemoteEslError",
    "Role",
    "RudeRejection",
    "SendMsg",
    "State",
    "SwitchConnection",
    "UnknownFrame",
    "command_verb",
    "encode",
    "encode_api_response",
    "encode_auth_request",
    "encode_channel_data",
    "encode_command_reply",
    "encode_disconnect_notice",
    "encode_event_json",
    "encode_event_plain",
    "encode_log_data",
    "encode_rude_rejection",
    "execute",
    "fs_url_decode",
    "fs_url_encode",
    "hangup",
    "parse_command",
]
