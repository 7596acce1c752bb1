"""Fixtures: the lab switch and a carrier switch installed per dialplan/README.md."""

from __future__ import annotations

import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from deploy_fsxml import Switch, preprocess
from deploy_layout import CORE_GLOBALS, DIALPLAN, freeswitch_mounts


@pytest.fixture
def lab_switch() -> Switch:
    mounts = freeswitch_mounts()
    variables = dict(CORE_GLOBALS)
    text = preprocess(mounts["/etc/freeswitch"] / "freeswitch.xml", mounts, variables)
    return Switch(ET.fromstring(text), variables)


#: A carrier's vanilla-style tree, reduced to what matters: the inbound context
#: "public" includes public/*.xml at its top and routes DIDs after it.
_CARRIER_FREESWITCH_XML = """<?xml version="1.0"?>
<document type="freeswitch/xml">
  <X-PRE-PROCESS cmd="include" data="vars.xml"/>
  <section name="configuration" description="Various Configuration">
    <X-PRE-PROCESS cmd="include" data="autoload_configs/*.xml"/>
  </section>
  <section name="dialplan" description="Regex/XML Dialplan">
    <X-PRE-PROCESS cmd="include" data="dialplan/*.xml"/>
  </section>
</document>
"""
_CARRIER_VARS = """<include>
  <X-PRE-PROCESS cmd="set" data="domain=carrier.example"/>
  <X-PRE-PROCESS cmd="include" data="fsp_vars.xml"/>
</include>
"""
_CARRIER_PUBLIC = """<include>
  <context name="public">
    <extension name="outside_call" continue="true">
      <condition>
        <action application="set" data="outside_call=true"/>
      </condition>
    </extension>
    <X-PRE-PROCESS cmd="include" data="public/*.xml"/>
    <extension name="carrier_did">
      <condition field="destination_number" expression="^(1[3-9]\\d{9})$">
        <action application="set" data="carrier_routed=$1"/>
        <action application="answer"/>
        <action application="hangup" data="NORMAL_CLEARING"/>
      </condition>
    </extension>
  </context>
</include>
"""


@pytest.fixture
def carrier_switch(tmp_path: Path) -> Switch:
    """The files installed where dialplan/README.md says, into a vanilla-like tree."""
    conf = tmp_path / "freeswitch"
    (conf / "autoload_configs").mkdir(parents=True)
    (conf / "dialplan" / "public").mkdir(parents=True)
    (conf / "freeswitch.xml").write_text(_CARRIER_FREESWITCH_XML)
    (conf / "vars.xml").write_text(_CARRIER_VARS)
    (conf / "dialplan" / "public.xml").write_text(_CARRIER_PUBLIC)
    shutil.copy(DIALPLAN / "fsp_vars.xml", conf / "fsp_vars.xml")
    shutil.copy(DIALPLAN / "event_socket.conf.xml", conf / "autoload_configs")
    shutil.copy(DIALPLAN / "acl.conf.xml", conf / "autoload_configs")
    shutil.copy(DIALPLAN / "fsp_screening.xml", conf / "dialplan")
    shutil.copy(DIALPLAN / "fsp_trunks.xml", conf / "dialplan" / "public" / "00_fsp_trunks.xml")
    variables = dict(CORE_GLOBALS)
    text = preprocess(conf / "freeswitch.xml", {"/etc/freeswitch": conf}, variables)
    return Switch(ET.fromstring(text), variables)
