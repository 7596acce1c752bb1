"""What sofia + the dialplan put on a channel, for the lab switch to present.

Header names, their order and which ones appear follow the channel data a real
FreeSWITCH 1.10.12 sent after ``connect`` (shared fixtures ``esl/out_sync_pass``):
``Event-Name`` first, the ``Channel-*`` and ``Caller-*`` profile, then the
``variable_*`` set by sofia in the order it sets them, then the dialplan's own
variables. Values here are plain text; the ESL encoder URL-encodes them like
FreeSWITCH does.
"""

from __future__ import annotations

import uuid as uuidlib
from dataclasses import dataclass

from fs_plugin.lab.calls import LabCall

__all__ = ["ChannelIdentity", "channel_data_headers", "hangup_complete_headers"]

CORE_UUID = "7d1c4a0e-3f55-4c2b-9e1a-6c0f8b2d4e10"
HOSTNAME = "fsp-lab"
SIP_PORT = 5080


@dataclass(frozen=True, slots=True)
class ChannelIdentity:
    uuid: str
    call_id: str
    from_port: int
    created_us: int
    sequence: int
    #: How the INVITE came (``udp`` | ``tcp``): sofia's ``sip_via_protocol``.
    transport: str = "udp"
    #: The From tag the caller sent; ``None`` makes one up like SIPp's.
    from_tag: str | None = None
    #: The switch's SIP port the INVITE reached (Request-URI / To port).
    local_port: int = SIP_PORT

    @classmethod
    def new(cls, created_us: int, sequence: int) -> ChannelIdentity:
        uuid = str(uuidlib.uuid4())
        return cls(uuid, f"{uuid[:8]}@127.0.0.1", 5060 + sequence % 1000, created_us, sequence)


def _event_head(name: str, ident: ChannelIdentity, now_us: int) -> list[tuple[str, str]]:
    return [
        ("Event-Name", name),
        ("Core-UUID", CORE_UUID),
        ("FreeSWITCH-Hostname", HOSTNAME),
        ("FreeSWITCH-Switchname", HOSTNAME),
        ("FreeSWITCH-IPv4", "127.0.0.1"),
        ("FreeSWITCH-IPv6", "::1"),
        ("Event-Date-Timestamp", str(now_us)),
        ("Event-Sequence", str(ident.sequence)),
    ]


def _profile(prefix: str, call: LabCall, ident: ChannelIdentity, times: dict[str, int]) -> list[
    tuple[str, str]
]:
    name = call.caller_name or call.from_user
    chan = f"sofia/{call.profile}/{call.from_user}@{call.network_ip}:{ident.from_port}"
    return [
        (f"{prefix}-Direction", "inbound"),
        (f"{prefix}-Logical-Direction", "inbound"),
        (f"{prefix}-Username", call.from_user),
        (f"{prefix}-Dialplan", "XML"),
        (f"{prefix}-Caller-ID-Name", name),
        (f"{prefix}-Caller-ID-Number", call.from_user),
        (f"{prefix}-Orig-Caller-ID-Name", name),
        (f"{prefix}-Orig-Caller-ID-Number", call.from_user),
        (f"{prefix}-Network-Addr", call.network_ip),
        (f"{prefix}-ANI", call.from_user),
        (f"{prefix}-Destination-Number", call.to),
        (f"{prefix}-Unique-ID", ident.uuid),
        (f"{prefix}-Source", "mod_sofia"),
        (f"{prefix}-Context", call.profile),
        (f"{prefix}-Channel-Name", chan),
        (f"{prefix}-Profile-Index", "1"),
        (f"{prefix}-Profile-Created-Time", str(ident.created_us)),
        (f"{prefix}-Channel-Created-Time", str(ident.created_us)),
        (f"{prefix}-Channel-Answered-Time", str(times.get("answer", 0))),
        (f"{prefix}-Channel-Progress-Time", str(times.get("progress", 0))),
        (f"{prefix}-Channel-Progress-Media-Time", "0"),
        (f"{prefix}-Channel-Hangup-Time", str(times.get("end", 0))),
        (f"{prefix}-Channel-Transfer-Time", "0"),
        (f"{prefix}-Channel-Resurrect-Time", "0"),
        (f"{prefix}-Channel-Bridged-Time", "0"),
        (f"{prefix}-Channel-Last-Hold", "0"),
        (f"{prefix}-Channel-Hold-Accum", "0"),
        (f"{prefix}-Screen-Bit", "true"),
        (f"{prefix}-Privacy-Hide-Name", "false"),
        (f"{prefix}-Privacy-Hide-Number", "false"),
    ]


def _from_tag(ident: ChannelIdentity) -> str:
    return ident.from_tag or f"{ident.sequence}SIPpTag001"


def _sofia_variables(call: LabCall, ident: ChannelIdentity) -> list[tuple[str, str]]:
    host, port, local = call.network_ip, str(ident.from_port), str(ident.local_port)
    v: list[tuple[str, str]] = [
        ("variable_direction", "inbound"),
        ("variable_uuid", ident.uuid),
        ("variable_session_id", str(ident.sequence)),
        ("variable_sip_from_user", call.from_user),
        ("variable_sip_from_port", port),
        ("variable_sip_from_uri", f"{call.from_user}@{host}:{port}"),
        ("variable_sip_from_host", host),
        ("variable_channel_name", f"sofia/{call.profile}/{call.from_user}@{host}:{port}"),
        ("variable_sip_call_id", ident.call_id),
        ("variable_sip_local_network_addr", "127.0.0.1"),
        ("variable_sip_network_ip", host),
        ("variable_sip_network_port", port),
        ("variable_sip_invite_stamp", str(ident.created_us)),
        ("variable_sip_received_ip", host),
        ("variable_sip_received_port", port),
        ("variable_sip_via_protocol", ident.transport),
    ]
    if call.user_agent:
        v.append(("variable_sip_user_agent", call.user_agent))
    v += [
        ("variable_sip_from_user_stripped", call.from_user),
        ("variable_sip_from_tag", _from_tag(ident)),
        ("variable_sofia_profile_name", call.profile),
        ("variable_sofia_profile_url", f"sip:mod_sofia@127.0.0.1:{ident.local_port}"),
        ("variable_recovery_profile_name", call.profile),
    ]
    if call.gateway:
        v.append(("variable_sip_gateway", call.gateway))
    if call.pai is not None:
        # sofia keeps only the user part of P-Asserted-Identity (fixtures README point 2).
        v.append(("variable_sip_P-Asserted-Identity", call.pai))
        v.append(("variable_sip_cid_type", "pid"))
    if call.diversion is not None:
        v.append(("variable_sip_h_Diversion", call.diversion))
    name = call.caller_name or call.from_user
    v += [
        ("variable_sip_from_display", name),
        ("variable_sip_full_from", f'"{name}" <sip:{call.from_user}@{host}:{port}>;'
                                   f"tag={_from_tag(ident)}"),
        ("variable_sip_full_to", f"<sip:{call.to}@127.0.0.1:{local}>"),
        ("variable_sip_req_user", call.to),
        ("variable_sip_req_port", local),
        ("variable_sip_req_uri", f"{call.to}@127.0.0.1:{local}"),
        ("variable_sip_req_host", "127.0.0.1"),
        ("variable_sip_to_user", call.to),
        ("variable_sip_to_port", local),
        ("variable_sip_to_uri", f"{call.to}@127.0.0.1:{local}"),
        ("variable_sip_to_host", "127.0.0.1"),
        ("variable_sip_contact_user", call.from_user),
        ("variable_sip_contact_port", port),
        ("variable_sip_contact_uri", f"{call.from_user}@{host}:{port}"),
        ("variable_sip_contact_host", host),
        ("variable_rtp_use_codec_string", "PCMU,PCMA"),
        ("variable_sip_via_host", host),
        ("variable_sip_via_port", port),
        ("variable_max_forwards", "70"),
        ("variable_endpoint_disposition", "DELAYED NEGOTIATION"),
        ("variable_call_uuid", ident.uuid),
    ]
    return v


def _dialplan_variables(call: LabCall) -> list[tuple[str, str]]:
    out = []
    if call.trunk is not None:
        out.append(("variable_fsp_trunk", call.trunk))
    out.append(("variable_fsp_on_error", call.on_error))
    return out


def channel_data_headers(
    call: LabCall, ident: ChannelIdentity, now_us: int, controller: str
) -> list[tuple[str, str]]:
    """The channel data the ``socket`` app sends after ``connect`` (without the reply headers)."""
    chan = f"sofia/{call.profile}/{call.from_user}@{call.network_ip}:{ident.from_port}"
    head = _event_head("CHANNEL_DATA", ident, now_us)
    channel_state = [
        ("Channel-State", "CS_EXECUTE"),
        ("Channel-Call-State", "RINGING"),
        ("Channel-State-Number", "4"),
        ("Channel-Name", chan),
        ("Unique-ID", ident.uuid),
        ("Call-Direction", "inbound"),
        ("Presence-Call-Direction", "inbound"),
        ("Channel-HIT-Dialplan", "true"),
        ("Channel-Call-UUID", ident.uuid),
        ("Answer-State", "ringing"),
    ]
    return [
        *head,
        *_profile("Channel", call, ident, {}),
        *channel_state,
        *_profile("Caller", call, ident, {}),
        *_sofia_variables(call, ident),
        *_dialplan_variables(call),
        ("variable_current_application_data", f"{controller} full"),
        ("variable_current_application", "socket"),
    ]


def hangup_complete_headers(
    call: LabCall,
    ident: ChannelIdentity,
    *,
    cause: str,
    disposition: str,
    progress_us: int,
    answer_us: int,
    end_us: int,
    channel_vars: dict[str, str],
) -> list[tuple[str, str]]:
    """``CHANNEL_HANGUP_COMPLETE`` as FreeSWITCH reports it (fixtures README 7 and 10b)."""
    times = {"progress": progress_us, "answer": answer_us, "end": end_us}
    chan = f"sofia/{call.profile}/{call.from_user}@{call.network_ip}:{ident.from_port}"
    billsec = (end_us - answer_us) // 1_000_000 if answer_us else 0
    duration = (end_us - ident.created_us) // 1_000_000
    out = [
        *_event_head("CHANNEL_HANGUP_COMPLETE", ident, end_us),
        ("Hangup-Cause", cause),
        ("Channel-State", "CS_REPORTING"),
        ("Channel-Call-State", "HANGUP"),
        ("Channel-State-Number", "11"),
        ("Channel-Name", chan),
        ("Unique-ID", ident.uuid),
        ("Call-Direction", "inbound"),
        ("Answer-State", "hangup"),
        *_profile("Caller", call, ident, times),
        *_sofia_variables(call, ident),
        *_dialplan_variables(call),
        *((f"variable_{k}", v) for k, v in channel_vars.items() if not k.startswith("fsp_trunk")),
        ("variable_sip_hangup_disposition", disposition),
        ("variable_hangup_cause", cause),
        ("variable_start_uepoch", str(ident.created_us)),
        ("variable_progress_uepoch", str(progress_us)),
        ("variable_answer_uepoch", str(answer_us)),
        ("variable_end_uepoch", str(end_us)),
        ("variable_duration", str(duration)),
        ("variable_billsec", str(billsec)),
    ]
    return out
