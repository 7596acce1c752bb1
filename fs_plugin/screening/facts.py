"""CallFacts from FreeSWITCH channel data (the outbound ``connect`` reply, decoded)."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from fs_plugin.screening.model import CallFacts

__all__ = ["facts_from_channel_data"]


def _opt(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    return value if value else None


def _timestamp(value: str | None) -> int:
    if not value:
        return 0
    try:
        stamp = int(value)
    except ValueError:
        return 0
    return stamp if stamp > 0 else 0


def facts_from_channel_data(headers: Mapping[str, str]) -> CallFacts:
    """Build :class:`CallFacts` from decoded channel-data headers.

    ``variable_sip_P-Asserted-Identity`` holds only the user part (FreeSWITCH
    strips the URI). The Diversion header's raw value is where sofia keeps it,
    ``variable_sip_h_Diversion``; ``variable_sip_i_diversion`` is accepted too.
    Missing headers become ``None`` (or ``""`` for the required strings), never
    an error: screening must decide something for every call.
    """
    from_user = headers.get("variable_sip_from_user") or headers.get("Caller-Caller-ID-Number")
    return CallFacts(
        uuid=headers.get("Unique-ID") or headers.get("Channel-Unique-ID") or "",
        from_user=from_user or "",
        destination=headers.get("Caller-Destination-Number") or "",
        pai=_opt(headers, "variable_sip_P-Asserted-Identity"),
        diversion=_opt(headers, "variable_sip_h_Diversion")
        or _opt(headers, "variable_sip_i_diversion"),
        caller_id_name=_opt(headers, "Caller-Caller-ID-Name"),
        trunk_hint=_opt(headers, "variable_fsp_trunk"),
        sofia_profile=_opt(headers, "variable_sofia_profile_name"),
        # sofia names the gateway of an inbound call `sip_gateway`; `sip_gateway_name`
        # is set on legs it originates, kept as a second choice.
        gateway=_opt(headers, "variable_sip_gateway")
        or _opt(headers, "variable_sip_gateway_name"),
        network_ip=_opt(headers, "variable_sip_network_ip"),
        call_id=_opt(headers, "variable_sip_call_id"),
        user_agent=_opt(headers, "variable_sip_user_agent"),
        switch=_opt(headers, "FreeSWITCH-Hostname"),
        timestamp_us=_timestamp(headers.get("Event-Date-Timestamp")),
        # The codec's mapping is read-only and decodes lazily: kept as is (copying it would
        # decode ~150 values per call). A plain dict is copied, so the frozen facts cannot
        # change under the engine.
        variables=MappingProxyType(dict(headers)) if isinstance(headers, dict) else headers,
    )
