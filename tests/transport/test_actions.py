"""What each verdict puts on the wire, byte for byte where the captures show the form."""

from __future__ import annotations

from fs_plugin import esl
from fs_plugin.screening.model import Decision, Mode, RuleResult, Verdict
from fs_plugin.transport.actions import decision_commands


def _apps(decision: Decision) -> list[tuple[str | None, str | None]]:
    return [(c.app, c.arg) for c in decision_commands(decision)]


def test_block_sets_cdr_variables_then_hangs_up_with_cause() -> None:
    d = Decision(Verdict.BLOCK, "cid.not_allowed", "From 02155550123 not allowed on ent-1",
                 cause="UNWANTED", sip_status=607, policy_version="abc123")
    assert _apps(d) == [
        ("set", "fsp_verdict=block"),
        ("set", "fsp_rule=cid.not_allowed"),
        ("set", "fsp_reason=From 02155550123 not allowed on ent-1"),
        ("set", "fsp_policy=abc123"),
        ("hangup", "UNWANTED"),
    ]


def test_block_with_announcement_plays_in_early_media_first() -> None:
    d = Decision(Verdict.BLOCK, "cid.fake_plus86", "r", cause="CALL_REJECTED",
                 announcement="/usr/share/freeswitch/sounds/fsp/blocked.wav")
    apps = _apps(d)
    assert apps[-3:] == [("pre_answer", ""), ("playback",
                                               "/usr/share/freeswitch/sounds/fsp/blocked.wav"),
                         ("hangup", "CALL_REJECTED")]


def test_warn_labels_the_call_for_the_callee() -> None:
    d = Decision(Verdict.WARN, "label.real_estate", "labelled", label="疑似骚扰:房产中介")
    apps = _apps(d)
    assert ("set", "effective_caller_id_name=疑似骚扰:房产中介") in apps
    # Exported: sofia reads sip_cid_type on the B leg when it builds the INVITE.
    assert ("export", "sip_cid_type=pid") in apps
    assert ("export", "sip_h_X-Fsp-Verdict=warn") in apps
    assert ("export", "sip_h_X-Fsp-Rule=label.real_estate") in apps
    assert not any(app == "hangup" for app, _ in apps)


def test_pass_only_annotates() -> None:
    trail = (RuleResult("cid.malformed", False, Verdict.BLOCK, Mode.ENFORCE),)
    d = Decision(Verdict.PASS, None, "no rule fired", trail=trail)
    assert _apps(d) == [("set", "fsp_verdict=pass"), ("set", "fsp_rule="),
                        ("set", "fsp_reason=no rule fired")]


def test_fallback_is_visible_in_cdrs() -> None:
    d = Decision(Verdict.PASS, "system.fallback", "deadline", fallback=True)
    assert _apps(d)[0] == ("set", "fsp_verdict=fallback")


def test_reason_with_newlines_stays_one_header_line() -> None:
    d = Decision(Verdict.PASS, None, "line one\nline two\r\n%0A")
    wire = b"".join(esl.encode(c) for c in decision_commands(d))
    assert b"execute-app-arg: fsp_reason=line one line two %0A\n" in wire


def test_pipelined_block_matches_the_captured_wire_form() -> None:
    # fixtures esl/out_sync_block_unwanted: what a real 1.10.12 accepted and answered 607.
    cmds = [esl.execute("set", "fsp_verdict=block"), esl.execute("hangup", "UNWANTED")]
    assert b"".join(esl.encode(c) for c in cmds) == (
        b"sendmsg\ncall-command: execute\nexecute-app-name: set\n"
        b"execute-app-arg: fsp_verdict=block\n\n"
        b"sendmsg\ncall-command: execute\nexecute-app-name: hangup\n"
        b"execute-app-arg: UNWANTED\n\n"
    )


def test_control_characters_in_a_reason_are_shown_not_refused() -> None:
    # A caller's %00 decodes to NUL and cid.malformed quotes the number in its reason.
    d = Decision(Verdict.BLOCK, "cid.malformed", "From caller ID 0208888\x001234 is malformed",
                 cause="CALL_REJECTED", sip_status=603)
    apps = _apps(d)
    assert ("set", "fsp_reason=From caller ID 0208888\ufffd1234 is malformed") in apps
    wire = b"".join(esl.encode(c) for c in decision_commands(d))  # the codec accepts it
    assert b"\x00" not in wire
