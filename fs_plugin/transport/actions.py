"""A decision, turned into what FreeSWITCH must be told on the outbound socket.

All of it goes out in one write right after the channel data arrives (two round
trips per call, DESIGN.md). In synchronous socket mode FreeSWITCH runs the
commands in order; when the controller then disconnects, the ``socket`` app
returns and the dialplan goes on — unless the call was hung up.

Every verdict sets ``fsp_verdict``, ``fsp_rule`` and ``fsp_reason`` on the channel so
the switch's own CDRs carry them. A WARN also puts the label in front of the
callee: ``effective_caller_id_name`` (originate copies it from this leg into the B
leg's caller ID) with ``sip_cid_type=pid`` exported (sofia reads it on the B leg's own
channel when it builds the INVITE, so a plain ``set`` here would not reach it: the
label goes out as the P-Asserted-Identity display name) and exported ``X-Fsp-*``
headers for the B leg.
"""

from __future__ import annotations

from fs_plugin import esl
from fs_plugin.screening.model import Decision, Verdict

__all__ = ["decision_commands"]

#: Channel-variable values must stay on one header line; the codec would fall back
#: to a body, but a reason is only a CDR annotation, so it is flattened and cut.
_MAX_VAR_LEN = 200


#: Control characters a header line cannot carry (a caller's ``%00`` decodes to NUL and
#: a reason quotes the number): shown as U+FFFD instead of refusing the whole decision.
_CONTROLS = {c: "\ufffd" for c in (*range(0x20), 0x7F)}


def _flat(text: str) -> str:
    return " ".join(text.split()).translate(_CONTROLS)[:_MAX_VAR_LEN]


def decision_commands(decision: Decision) -> list[esl.SendMsg]:
    """The ``sendmsg`` commands that carry ``decision`` out, in order (``exit`` not included)."""
    verdict = "fallback" if decision.fallback else decision.verdict.value
    cmds = [
        esl.execute("set", f"fsp_verdict={verdict}"),
        esl.execute("set", f"fsp_rule={decision.rule or ''}"),
        esl.execute("set", f"fsp_reason={_flat(decision.reason)}"),
    ]
    if decision.policy_version:
        cmds.append(esl.execute("set", f"fsp_policy={decision.policy_version}"))
    if decision.verdict is Verdict.BLOCK:
        if decision.announcement:
            # Early media: the caller hears the announcement before the final response,
            # without the call ever being answered (no charge).
            cmds.append(esl.execute("pre_answer", ""))
            cmds.append(esl.execute("playback", decision.announcement))
        cmds.append(esl.execute("hangup", decision.cause or "CALL_REJECTED"))
        return cmds
    if decision.verdict is Verdict.WARN:
        cmds.append(esl.execute("export", f"sip_h_X-Fsp-Verdict={verdict}"))
        if decision.rule:
            cmds.append(esl.execute("export", f"sip_h_X-Fsp-Rule={decision.rule}"))
        if decision.label:
            label = _flat(decision.label)
            cmds.append(esl.execute("set", f"effective_caller_id_name={label}"))
            cmds.append(esl.execute("export", "sip_cid_type=pid"))
    return cmds
