"""Calls routed through the dialplan files the way FreeSWITCH would route them.

The switch model (deploy_fsxml) loads the XML exactly as installed: the lab tree of
lab/compose.yaml, and a carrier tree laid out as dialplan/README.md says. A model of
the controller stands in for the socket application.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET

import pytest
from deploy_fsxml import Channel, Controller, Switch

HOOK = "127.0.0.1:8084 full"


def call(switch: Switch, controller: Controller, **profile: str) -> Channel:
    prof = {
        "context": "trunks",
        "destination_number": "13900001111",
        "caller_id_number": "02088886666",
        "network_addr": "192.0.2.10",
    }
    prof.update(profile)
    ch = Channel(profile=prof, variables={"sofia_profile_name": "trunks"})
    switch.controller = controller
    return switch.run(ch)


def controller_sets(*assignments: str, hangup: str | None = None) -> Controller:
    """A controller that runs ``set`` for each assignment, then hangs up or exits."""

    def run(switch: Switch, ch: Channel, data: str) -> None:
        assert data == HOOK
        for a in assignments:
            switch.execute(ch, "set", a)
        if hangup is not None:
            switch.hangup(ch, hangup)

    return run


def refused(switch: Switch, ch: Channel, data: str) -> None:
    """Nothing listens on 8084: the socket app returns at once."""
    assert data == HOOK


def wedged(switch: Switch, ch: Channel, data: str) -> None:
    """Accepts and never answers: the app returns after the socket error (~25 s)."""
    assert data == HOOK
    ch.post_dial_delay_s += 25.0


def contexts_run(ch: Channel) -> list[str]:
    seen: list[str] = []
    for ctx, _app, _data in ch.trace:
        if not seen or seen[-1] != ctx:
            seen.append(ctx)
    return seen


# -- the lab switch: trunk ent-1 (on_error=pass) ----------------------------------------


def test_pass_verdict_routes_to_the_routing_context(lab_switch: Switch) -> None:
    ch = call(lab_switch, controller_sets("fsp_verdict=pass", "fsp_rule=", "fsp_reason=ok"))
    assert ch["fsp_trunk"] == "ent-1"
    assert ch["fsp_verdict"] == "pass"
    assert contexts_run(ch) == ["trunks", "fsp_screen", "fsp_post", "lab_routing"]
    assert ch.answered and ch.hangup_cause == "NORMAL_CLEARING"
    assert ch.profile["destination_number"] == "13900001111"
    assert not [lvl for lvl, _ in ch.logs if lvl in ("WARNING", "ERR")]


def test_warn_verdict_keeps_the_label_and_routes(lab_switch: Switch) -> None:
    ctrl = controller_sets(
        "fsp_verdict=warn", "fsp_rule=label.harassment", "effective_caller_id_name=疑似骚扰",
        "sip_cid_type=pid",
    )
    ch = call(lab_switch, ctrl)
    assert ch.answered
    assert ch["effective_caller_id_name"] == "疑似骚扰" and ch["sip_cid_type"] == "pid"
    assert ch["fsp_verdict"] == "warn" and ch["fsp_rule"] == "label.harassment"


def test_block_is_the_controllers_hangup_and_nothing_runs_after_it(lab_switch: Switch) -> None:
    ch = call(lab_switch, controller_sets("fsp_verdict=block", hangup="UNWANTED"))
    assert ch.hangup_cause == "UNWANTED"
    assert not ch.answered
    assert contexts_run(ch) == ["trunks", "fsp_screen"]
    after_hook = [app for _, app, _ in ch.trace][[a for _, a, _ in ch.trace].index("socket"):]
    assert after_hook == ["socket", "set"]  # the controller's own set; no transfer


def test_refused_controller_with_on_error_pass_falls_back_and_routes(lab_switch: Switch) -> None:
    ch = call(lab_switch, refused)
    assert ch.answered and ch.hangup_cause == "NORMAL_CLEARING"
    assert ch["fsp_verdict"] == "fallback" and ch["fsp_rule"] == "dialplan.on_error"
    assert "on_error=pass" in ch["fsp_reason"]
    assert contexts_run(ch) == ["trunks", "fsp_screen", "fsp_post", "lab_routing"]
    assert [lvl for lvl, msg in ch.logs if "ent-1" in msg] == ["WARNING"]
    assert ch.post_dial_delay_s == 0


def test_wedged_controller_costs_the_socket_timeout_then_falls_back(lab_switch: Switch) -> None:
    ch = call(lab_switch, wedged)
    assert ch.answered and ch["fsp_verdict"] == "fallback"
    assert ch.post_dial_delay_s == 25.0


def test_a_verdict_from_before_the_hook_is_not_trusted(lab_switch: Switch) -> None:
    """A stale fsp_verdict (a transfer back in, a preset variable) must not pass a call."""
    switch = lab_switch
    switch.controller = refused
    ch = Channel(
        profile={"context": "trunks", "destination_number": "13900001111"},
        variables={"sofia_profile_name": "trunks", "fsp_verdict": "pass", "fsp_rule": "x"},
    )
    switch.run(ch)
    assert ch["fsp_verdict"] == "fallback" and ch["fsp_rule"] == "dialplan.on_error"


def test_block_verdict_without_a_hangup_is_enforced(lab_switch: Switch) -> None:
    ch = call(lab_switch, controller_sets("fsp_verdict=block", "fsp_rule=cid.not_allowed"))
    assert ch.hangup_cause == "CALL_REJECTED"
    assert not ch.answered


def test_unknown_verdict_value_is_treated_as_no_decision(lab_switch: Switch) -> None:
    ch = call(lab_switch, controller_sets("fsp_verdict=bogus"))
    assert ch["fsp_verdict"] == "fallback"
    assert ch.answered


def test_call_on_no_known_trunk_is_refused_in_the_lab(lab_switch: Switch) -> None:
    switch = lab_switch
    switch.controller = refused
    ch = Channel(profile={"context": "trunks", "destination_number": "13900001111",
                          "network_addr": "192.0.2.10"},
                 variables={"sofia_profile_name": "elsewhere"})
    switch.run(ch)
    assert ch.hangup_cause == "NO_ROUTE_DESTINATION"
    assert "fsp_trunk" not in ch.variables


# -- the carrier install: several trunks, on_error=block, routing in the same context --


def carrier_call(switch: Switch, controller: Controller, **variables: str) -> Channel:
    switch.controller = controller
    ch = Channel(
        profile={"context": "public", "destination_number": "13900001111",
                 "network_addr": variables.pop("network_addr", "192.0.2.10")},
        variables=dict(variables),
    )
    return switch.run(ch)


def test_refused_controller_with_on_error_block_rejects(carrier_switch: Switch) -> None:
    ch = carrier_call(carrier_switch, refused, sip_gateway="gw-nanhai")
    assert ch["fsp_trunk"] == "ent-2" and ch["fsp_on_error"] == "block"
    assert ch.hangup_cause == "CALL_REJECTED"
    assert not ch.answered
    assert ch["fsp_verdict"] == "fallback"
    assert [lvl for lvl, msg in ch.logs if "ent-2" in msg] == ["ERR"]
    assert "carrier_routed" not in ch.variables


def test_screened_call_continues_in_the_inbound_context_without_a_loop(
    carrier_switch: Switch,
) -> None:
    """fsp_routing_context defaults to public, the inbound context itself."""
    ch = carrier_call(carrier_switch, controller_sets("fsp_verdict=pass"),
                      sofia_profile_name="trunks")
    assert ch["fsp_trunk"] == "ent-1"
    assert ch["carrier_routed"] == "13900001111"
    assert ch.answered and ch.transfers == 3
    assert [c for _, app, c in ch.trace if app == "socket"] == [HOOK]


@pytest.mark.parametrize(
    ("variables", "trunk", "on_error"),
    [
        ({"sofia_profile_name": "trunks"}, "ent-1", "pass"),
        ({"sip_gateway": "gw-nanhai"}, "ent-2", "block"),
        ({"sofia_profile_name": "callcentre-b"}, "cc-2", "pass"),
        ({"network_addr": "198.51.100.7"}, "intl-hk", "pass"),
        ({"network_addr": "2001:db8:100::7"}, "intl-hk", "pass"),
    ],
)
def test_each_trunk_is_recognised(
    carrier_switch: Switch, variables: dict[str, str], trunk: str, on_error: str
) -> None:
    ch = carrier_call(carrier_switch, controller_sets("fsp_verdict=pass"), **variables)
    assert (ch["fsp_trunk"], ch["fsp_on_error"]) == (trunk, on_error)


def test_a_call_on_no_trunk_is_routed_unscreened(carrier_switch: Switch) -> None:
    def never(switch: Switch, ch: Channel, data: str) -> None:
        raise AssertionError("the hook must not run")

    ch = carrier_call(carrier_switch, never, network_addr="203.0.113.9")
    assert "fsp_trunk" not in ch.variables
    assert ch["carrier_routed"] == "13900001111"


def test_routing_context_can_be_overridden_per_trunk(carrier_switch: Switch) -> None:
    carrier_switch.contexts["special"] = ET.fromstring(
        '<context name="special"><extension name="x"><condition>'
        '<action application="set" data="special=yes"/><action application="answer"/>'
        "</condition></extension></context>"
    )
    ch = carrier_call(carrier_switch, controller_sets("fsp_verdict=pass"),
                      sofia_profile_name="trunks", fsp_routing_context="special")
    assert ch["special"] == "yes"


# -- the real controller's commands, applied by the dialplan model ----------------------


def real_controller(decision: object) -> Controller:
    from fs_plugin.transport.actions import decision_commands

    def run(switch: Switch, ch: Channel, data: str) -> None:
        assert data == HOOK
        for cmd in decision_commands(decision):  # type: ignore[arg-type]
            if cmd.call_command == "hangup":
                switch.hangup(ch, cmd.hangup_cause or "NORMAL_CLEARING")
            elif ch.state == "EXECUTE":
                switch.execute(ch, cmd.app or "", cmd.arg or "")

    return run


def test_real_controller_commands_pass_warn_block(lab_switch: Switch) -> None:
    from fs_plugin.screening.model import Decision, Verdict

    ok = call(lab_switch, real_controller(Decision(Verdict.PASS, None, "allowed")))
    assert ok.answered and ok["fsp_verdict"] == "pass"

    warn = call(lab_switch, real_controller(
        Decision(Verdict.WARN, "label.harassment", "labelled", label="疑似骚扰")))
    assert warn.answered and warn["effective_caller_id_name"] == "疑似骚扰"
    assert "sip_h_X-Fsp-Verdict" in warn.exported

    block = call(lab_switch, real_controller(
        Decision(Verdict.BLOCK, "cid.not_allowed", "spoofed", cause="UNWANTED")))
    assert block.hangup_cause == "UNWANTED" and not block.answered


# -- the model itself must catch the mistake the files avoid ----------------------------


def test_model_evaluates_conditions_at_hunt_time(lab_switch: Switch) -> None:
    """A verdict test in the socket's own extension sees the pre-socket value."""
    lab_switch.contexts["naive"] = ET.fromstring(
        '<context name="naive"><extension name="hook">'
        '<condition field="destination_number" expression="^(.+)$">'
        f'<action application="socket" data="{HOOK}"/></condition>'
        '<condition field="${fsp_verdict}" expression="^$">'
        '<action application="set" data="naive_fallback=yes"/>'
        '<action application="answer"/></condition></extension></context>'
    )
    lab_switch.controller = controller_sets("fsp_verdict=block", hangup="UNWANTED")
    ch = Channel(profile={"context": "naive", "destination_number": "1"})
    lab_switch.run(ch)
    # The "fallback" branch was chosen before the controller decided block.
    assert ("naive", "set", "naive_fallback=yes") not in ch.trace  # hangup stopped it
    lab_switch.controller = controller_sets("fsp_verdict=pass")
    ch = Channel(profile={"context": "naive", "destination_number": "1"})
    lab_switch.run(ch)
    assert ch["naive_fallback"] == "yes" and ch["fsp_verdict"] == "pass"
