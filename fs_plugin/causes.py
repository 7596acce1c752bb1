"""Hangup causes: FreeSWITCH name, Q.850 code and the SIP final response sofia sends.

The table is data, written once. Every row was measured on a real FreeSWITCH
1.10.12: the shared fixtures ``esl/more/sip_hangup_cause_map.*`` (``hangup
<cause>`` on an unanswered inbound call) and, for ``UNWANTED`` (RFC 8197, 607),
``esl/out_sync_block_unwanted``. A cause FreeSWITCH does not know becomes
NORMAL_CLEARING on the wire, which sofia answers with 480.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["CAUSES", "UNKNOWN_CAUSE_STATUS", "Cause", "cause_by_name", "sip_status_for"]


@dataclass(frozen=True, slots=True)
class Cause:
    name: str
    #: Q.850 cause value; ``None`` for FreeSWITCH-internal causes sent as ``Reason: SIP;…``.
    q850: int | None
    sip_status: int
    sip_phrase: str


#: What sofia sends for a cause it does not recognise (measured: ``NOT_A_REAL_CAUSE`` → 480).
UNKNOWN_CAUSE_STATUS = 480

CAUSES: tuple[Cause, ...] = (
    # Measured on the wire as `Reason: SIP;cause=819;text="UNWANTED"` (no Q.850 value).
    Cause('UNWANTED', None, 607, 'Unwanted'),
    Cause('CALL_REJECTED', 21, 603, 'Decline'),
    Cause('USER_BUSY', 17, 486, 'Busy Here'),
    Cause('NO_ANSWER', 19, 480, 'Temporarily Unavailable'),
    Cause('NO_USER_RESPONSE', 18, 408, 'Request Timeout'),
    Cause('NORMAL_CLEARING', 16, 480, 'Temporarily Unavailable'),
    Cause('UNALLOCATED_NUMBER', 1, 404, 'Not Found'),
    Cause('NO_ROUTE_TRANSIT_NET', 2, 404, 'Not Found'),
    Cause('NO_ROUTE_DESTINATION', 3, 404, 'Not Found'),
    Cause('NUMBER_CHANGED', 22, 410, 'Gone'),
    Cause('DESTINATION_OUT_OF_ORDER', 27, 502, 'Bad Gateway'),
    Cause('INVALID_NUMBER_FORMAT', 28, 484, 'Address Incomplete'),
    Cause('FACILITY_REJECTED', 29, 501, 'Not Implemented'),
    Cause('NORMAL_UNSPECIFIED', 31, 480, 'Temporarily Unavailable'),
    Cause('NORMAL_CIRCUIT_CONGESTION', 34, 503, 'Service Unavailable'),
    Cause('NETWORK_OUT_OF_ORDER', 38, 503, 'Service Unavailable'),
    Cause('NORMAL_TEMPORARY_FAILURE', 41, 503, 'Service Unavailable'),
    Cause('SWITCH_CONGESTION', 42, 503, 'Service Unavailable'),
    Cause('REQUESTED_CHAN_UNAVAIL', 44, 503, 'Service Unavailable'),
    Cause('OUTGOING_CALL_BARRED', 52, 403, 'Forbidden'),
    Cause('INCOMING_CALL_BARRED', 54, 403, 'Forbidden'),
    Cause('BEARERCAPABILITY_NOTAUTH', 57, 403, 'Forbidden'),
    Cause('BEARERCAPABILITY_NOTAVAIL', 58, 503, 'Service Unavailable'),
    Cause('SERVICE_UNAVAILABLE', 63, 480, 'Temporarily Unavailable'),
    Cause('BEARERCAPABILITY_NOTIMPL', 65, 488, 'Not Acceptable Here'),
    Cause('FACILITY_NOT_IMPLEMENTED', 69, 501, 'Not Implemented'),
    Cause('SERVICE_NOT_IMPLEMENTED', 79, 501, 'Not Implemented'),
    Cause('INCOMPATIBLE_DESTINATION', 88, 488, 'Not Acceptable Here'),
    Cause('INVALID_CALL_REFERENCE', 81, 480, 'Temporarily Unavailable'),
    Cause('MANDATORY_IE_MISSING', 96, 480, 'Temporarily Unavailable'),
    Cause('RECOVERY_ON_TIMER_EXPIRE', 102, 504, 'Gateway Time-out'),
    Cause('INTERWORKING', 127, 480, 'Temporarily Unavailable'),
    Cause('ORIGINATOR_CANCEL', None, 487, 'Request Terminated'),
    Cause('ALLOTTED_TIMEOUT', None, 480, 'Temporarily Unavailable'),
    Cause('MEDIA_TIMEOUT', None, 480, 'Temporarily Unavailable'),
    Cause('PROGRESS_TIMEOUT', None, 480, 'Temporarily Unavailable'),
    Cause('GATEWAY_DOWN', None, 503, 'Service Unavailable'),
    Cause('LOSE_RACE', None, 480, 'Temporarily Unavailable'),
    Cause('USER_NOT_REGISTERED', None, 480, 'Temporarily Unavailable'),
    Cause('SUBSCRIBER_ABSENT', 20, 480, 'Temporarily Unavailable'),
    Cause('EXCHANGE_ROUTING_ERROR', 25, 483, 'Too Many Hops'),
    Cause('CHAN_NOT_IMPLEMENTED', 66, 480, 'Temporarily Unavailable'),
    Cause('MANAGER_REQUEST', None, 480, 'Temporarily Unavailable'),
    Cause('SYSTEM_SHUTDOWN', None, 480, 'Temporarily Unavailable'),
)

_BY_NAME = {c.name: c for c in CAUSES}


def cause_by_name(name: str) -> Cause | None:
    """The table row for a FreeSWITCH cause name (case-sensitive, as FreeSWITCH spells it)."""
    return _BY_NAME.get(name)


def sip_status_for(name: str) -> int:
    """The SIP status a real FreeSWITCH sends hanging up an unanswered call with ``name``."""
    cause = _BY_NAME.get(name)
    return cause.sip_status if cause is not None else UNKNOWN_CAUSE_STATUS
