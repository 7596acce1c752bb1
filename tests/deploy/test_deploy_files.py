"""The deployment files as files: XML shape, event socket, ACL, compose, Dockerfile."""

from __future__ import annotations

import importlib.util
import ipaddress
import re
import shutil
import subprocess
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
import yaml
from deploy_layout import DIALPLAN, LAB, REPO, compose

XML_FILES = sorted([*DIALPLAN.glob("*.xml"), *(LAB / "freeswitch").rglob("*.xml")])
#: mod_dptools applications the files may use (each one exists in FreeSWITCH 1.10).
KNOWN_APPS = {"set", "unset", "export", "log", "socket", "transfer", "hangup", "answer", "sleep"}
_COMMENT = re.compile(r"<!--.*?-->", re.DOTALL)


def rel(p: Path) -> str:
    return str(p.relative_to(REPO))


@pytest.mark.parametrize("path", XML_FILES, ids=rel)
def test_every_xml_file_parses(path: Path) -> None:
    ET.parse(path)


@pytest.mark.parametrize("path", XML_FILES, ids=rel)
def test_no_preprocessor_traps(path: Path) -> None:
    """FreeSWITCH's preprocessor works on lines and ignores comments (switch_xml.c)."""
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    for n, line in enumerate(lines, 1):
        if "<include>" in line or "</include>" in line:
            assert line.strip() in ("<include>", "</include>"), f"line {n} would be dropped"
        if "<?" in line:
            assert n == 1 and line.startswith("<?xml"), f"line {n} would be dropped"
        if "X-PRE-PROCESS" in line:
            assert re.search(r'<X-PRE-PROCESS cmd="(set|include)" data="[^"]*"/>', line), n
    for comment in _COMMENT.findall(text):
        assert "X-PRE-PROCESS" not in comment, "acted on even inside a comment"
        assert "$${" not in comment, "expanded even inside a comment"


def dialplan_elements(path: Path) -> ET.Element:
    root = ET.parse(path).getroot()
    assert root.tag == "include"
    return root


@pytest.mark.parametrize(
    "path", [DIALPLAN / "fsp_screening.xml", *sorted((LAB / "freeswitch/dialplan").glob("*.xml"))],
    ids=rel,
)
def test_dialplan_contexts_have_freeswitch_shape(path: Path) -> None:
    root = dialplan_elements(path)
    contexts = root.findall("context")
    assert contexts and len(contexts) == len(list(root))
    for ctx in contexts:
        assert ctx.get("name")
        check_extensions(ctx.findall("extension"))


def check_extensions(extensions: list[ET.Element]) -> None:
    assert extensions
    names = [e.get("name") for e in extensions]
    assert all(names) and len(set(names)) == len(names)
    for ext in extensions:
        conds = ext.findall("condition")
        assert conds and len(conds) == len(list(ext))
        # Actions only on the last condition: earlier ones are pure tests (an action
        # on a passing first condition would run even if a later one fails).
        assert all(not list(c) for c in conds[:-1]), ext.get("name")
        for act in conds[-1]:
            assert act.tag == "action"
            assert act.get("application") in KNOWN_APPS, act.get("application")


def test_trunk_file_is_extensions_for_an_inbound_context() -> None:
    root = dialplan_elements(DIALPLAN / "fsp_trunks.xml")
    exts = root.findall("extension")
    assert len(exts) == len(list(root))
    check_extensions(exts)
    for ext in exts:
        first = ext.find("condition")
        assert first is not None and first.get("field") == "${fsp_screened}"
        acts = [(a.get("application"), a.get("data", "")) for a in ext.iter("action")]
        assert acts[-1] == ("transfer", "$1 XML fsp_screen")
        assert {a for a, _ in acts} == {"set", "transfer"}


def all_actions() -> list[tuple[str, ET.Element]]:
    out = []
    for path in DIALPLAN.glob("*.xml"):
        for act in ET.parse(path).getroot().iter("action"):
            out.append((path.name, act))
    return out


def test_one_synchronous_socket_hook_then_the_post_screening_transfer() -> None:
    hooks = [(f, a) for f, a in all_actions() if a.get("application") == "socket"]
    assert len(hooks) == 1, "the controller address lives in one place"
    data = hooks[0][1].get("data", "")
    assert data == "127.0.0.1:8084 full"
    assert "async" not in data.split()

    root = ET.parse(DIALPLAN / "fsp_screening.xml").getroot()
    hook_ext = root.find("context[@name='fsp_screen']/extension")
    assert hook_ext is not None
    apps = [(a.get("application"), a.get("data")) for a in hook_ext.iter("action")]
    i = apps.index(("socket", data))
    assert ("unset", "fsp_verdict") in apps[:i]
    assert apps[i + 1] == ("transfer", "$1 XML fsp_post")  # a new hunt after the socket


def test_post_screening_context_covers_every_outcome() -> None:
    root = ET.parse(DIALPLAN / "fsp_screening.xml").getroot()
    post = root.find("context[@name='fsp_post']")
    assert post is not None
    fields = [c.get("field") for c in post.iter("condition")]
    assert "${fsp_verdict}" in fields and "${fsp_on_error}" in fields
    last = post.findall("extension")[-1].find("condition")
    assert last is not None and last.get("field") is None  # a catch-all fallback
    routes = [a.get("data") for a in post.iter("action") if a.get("application") == "transfer"]
    assert routes and all(r == "${destination_number} XML ${fsp_routing_context}" for r in routes)
    hangups = [a.get("data") for a in post.iter("action") if a.get("application") == "hangup"]
    assert hangups and set(hangups) == {"CALL_REJECTED"}


def test_routing_context_is_set_once_as_a_global() -> None:
    for path in (DIALPLAN / "fsp_vars.xml", LAB / "freeswitch/vars.xml"):
        sets = re.findall(r'cmd="set" data="fsp_routing_context=(\w+)"', path.read_text())
        assert len(sets) == 1, path
    lab_ctx = re.findall(r'fsp_routing_context=(\w+)', (LAB / "freeswitch/vars.xml").read_text())
    lab_names = {c.get("name") for p in (LAB / "freeswitch/dialplan").glob("*.xml")
                 for c in ET.parse(p).getroot().iter("context")}
    assert lab_ctx[0] in lab_names


# -- event socket and ACL -------------------------------------------------------------


def settings(path: Path) -> dict[str, str]:
    root = ET.parse(path).getroot()
    assert root.tag == "configuration" and root.get("name") == "event_socket.conf"
    params = root.findall("settings/param")
    assert len(params) == len(list(root.iter("param")))
    return {p.get("name", ""): p.get("value", "") for p in params}


def acl_lists(path: Path) -> dict[str, ET.Element]:
    root = ET.parse(path).getroot()
    assert root.tag == "configuration" and root.get("name") == "acl.conf"
    return {lst.get("name", ""): lst for lst in root.findall("network-lists/list")}


@pytest.mark.parametrize(
    "path",
    [DIALPLAN / "event_socket.conf.xml", LAB / "freeswitch/autoload_configs/event_socket.conf.xml"],
    ids=rel,
)
def test_event_socket_is_loopback_with_a_real_password_and_an_acl(path: Path) -> None:
    s = settings(path)
    assert ipaddress.ip_address(s["listen-ip"]).is_loopback
    assert s["listen-port"] == "8021"
    assert s["password"] and s["password"].lower() != "cluecon"
    acl = acl_lists(DIALPLAN / "acl.conf.xml")[s["apply-inbound-acl"]]
    assert acl.get("default") == "deny"
    nodes = acl.findall("node")
    assert nodes and all(n.get("type") == "allow" for n in nodes)
    assert all(ipaddress.ip_network(n.get("cidr", "")).is_loopback for n in nodes)


def test_production_password_is_an_obvious_placeholder() -> None:
    assert "CHANGE_ME" in settings(DIALPLAN / "event_socket.conf.xml")["password"]


def test_lab_password_is_the_one_the_controller_gets() -> None:
    lab = settings(LAB / "freeswitch/autoload_configs/event_socket.conf.xml")["password"]
    env = compose()["services"]["fs-plugin"]["environment"]
    assert env["FSP_ESL_PASSWORD"] == lab


def test_trunk_extensions_agree_with_the_policy() -> None:
    policy = REPO / "policies" / "trunks.yaml"
    if not policy.exists():
        pytest.skip("policies/trunks.yaml not present")
    trunks = {t["id"]: t for t in yaml.safe_load(policy.read_text())["trunks"]}
    root = ET.parse(DIALPLAN / "fsp_trunks.xml").getroot()
    for ext in root.findall("extension"):
        sets = dict(
            a.get("data", "").partition("=")[::2]
            for a in ext.iter("action") if a.get("application") == "set"
        )
        assert sets["fsp_trunk"] in trunks, sets["fsp_trunk"]
        assert sets["fsp_on_error"] in ("pass", "block")
        declared = trunks[sets["fsp_trunk"]].get("on_error")
        if declared is not None:
            assert sets["fsp_on_error"] == declared, sets["fsp_trunk"]


# -- compose ---------------------------------------------------------------------------


def _compose_cmd() -> list[str] | None:
    docker = shutil.which("docker")
    if docker and subprocess.run([docker, "compose", "version"], capture_output=True,
                                 timeout=30).returncode == 0:
        return [docker, "compose"]
    legacy = shutil.which("docker-compose")
    return [legacy] if legacy else None


def test_compose_config_validates(tmp_path: Path) -> None:
    cmd = _compose_cmd()
    if cmd is None:
        pytest.skip("neither 'docker compose' nor 'docker-compose' is installed")
    res = subprocess.run([*cmd, "-f", str(LAB / "compose.yaml"), "config", "-q"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    # The same command refuses a file with a misspelt key: it validates, not just parses.
    bad = tmp_path / "compose.yaml"
    bad.write_text("services:\n  plugin:\n    image: fs-plugin:1\n    restartt: always\n")
    res = subprocess.run([*cmd, "-f", str(bad), "config", "-q"],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode != 0 and "restartt" in res.stderr + res.stdout


def _no_registry_host(image: str) -> bool:
    # name:tag only: a first path part with a dot or a port would be a registry host.
    first = image.split("/")[0]
    return "/" not in image or not ("." in first or ":" in first or first == "localhost")


def test_compose_services_images_and_mounts() -> None:
    services = compose()["services"]
    assert {"freeswitch", "fs-plugin", "redis", "postgres", "sipp"} <= set(services)
    for name, svc in services.items():
        if "image" in svc:
            image = re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", svc["image"])
            assert re.fullmatch(r"[a-z0-9][a-z0-9._/-]*:[\w.-]+", image), (name, image)
            assert _no_registry_host(image), (name, image)
    fs = services["freeswitch"]
    assert "1.10" in fs["image"]
    plugin = services["fs-plugin"]
    assert plugin["build"]["dockerfile"] == "docker/Dockerfile"
    assert plugin["network_mode"] == "service:freeswitch"
    assert "../policies:/etc/fs-plugin/policies:ro" in plugin["volumes"]
    assert any(v.startswith("./sipp:") for v in services["sipp"]["volumes"])
    assert any(v.startswith("../dialplan:") for v in fs["volumes"])


# -- Dockerfile ------------------------------------------------------------------------

DOCKERFILE = REPO / "docker" / "Dockerfile"


def instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_basics() -> None:
    ins = instructions()
    assert ins[0] == ("FROM", "python:3.11-slim")
    ops = [op for op, _ in ins]
    user_at = max(i for i, op in enumerate(ops) if op == "USER")
    assert ins[user_at][1] not in ("root", "0", "0:0")
    assert user_at > max(i for i, op in enumerate(ops) if op == "RUN")
    assert any(op == "RUN" and "pip install ." in arg for op, arg in ins)
    assert "HEALTHCHECK" in ops
    cmd = dict(ins)["CMD"]
    assert "--policy" in cmd and "/etc/fs-plugin/policies" in cmd
    assert '"0.0.0.0:8084"' in cmd and '"freeswitch:8021"' in cmd
    assert dict(ins)["ENTRYPOINT"] == '["fs-plugin"]'


def test_dockerfile_names_no_registry_host() -> None:
    for op, arg in instructions():
        if op == "FROM":
            assert _no_registry_host(arg.split()[0])
    text = DOCKERFILE.read_text()
    assert not re.search(r"\b[\w-]+\.(io|com|org|net|cn)\b", text)


def test_healthcheck_reads_listening_sockets(tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("fsp_healthcheck", REPO / "docker/healthcheck.py")
    assert spec and spec.loader
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    head = "  sl  local_address rem_address   st tx_queue rx_queue\n"
    tcp = tmp_path / "tcp"
    tcp.write_text(head + "   0: 0100007F:1F94 00000000:0000 0A 00000000:00000000\n"
                   "   1: 0100007F:1F55 0100007F:9C40 01 00000000:00000000\n")
    assert mod.listening(8084, (tcp,)) is True
    assert mod.listening(8021, (tcp,)) is False  # established, not listening
    assert mod.listening(8084, (tmp_path / "missing",)) is False


# -- container review ------------------------------------------------------------------


def _shell_blocks(markdown: str, heading: str) -> list[str]:
    """The command lines of the ``sh`` blocks under one ``## heading`` of a README."""
    section = markdown.split(f"\n## {heading}\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", section, re.DOTALL)
    return [line.split("#", 1)[0].strip() for b in blocks for line in b.splitlines()]


def test_postgres_is_healthy_only_when_it_takes_tcp_connections() -> None:
    """The controller connects over TCP (postgres:5432). On a first start the image's
    init runs a temporary server on the Unix socket only (listen_addresses=''); a
    socket probe calls that healthy, the controller starts, is refused, and the ledger
    (opened once, at start) stays off for the life of the process."""
    services = compose()["services"]
    dsn = services["fs-plugin"]["environment"]["FSP_JOURNAL_DSN"]
    assert "@postgres:5432/" in dsn
    probe = " ".join(services["postgres"]["healthcheck"]["test"][1:])
    assert "pg_isready" in probe
    host = re.search(r"(?:-h|--host)[ =](\S+)", probe)
    assert host is not None and host.group(1) in ("127.0.0.1", "localhost"), probe


def test_caller_waits_for_the_controller_to_listen() -> None:
    """`up -d` returns once fs-plugin is started, not listening: a call placed before the
    outbound socket is bound takes the dialplan's fail-safe (200, unscreened) instead
    of the blocked call the walk-through shows. The image's HEALTHCHECK is that socket."""
    assert any(op == "HEALTHCHECK" and "8084" in arg for op, arg in instructions())
    depends = compose()["services"]["sipp"]["depends_on"]
    assert isinstance(depends, dict), depends
    assert depends["fs-plugin"]["condition"] == "service_healthy"
    # The walk-through's wait step names the controller (freeswitch is healthy already
    # when `up -d` returns: fs-plugin is created only then).
    readme = (LAB / "README.md").read_text(encoding="utf-8")
    section = readme.split("\n## From nothing to a blocked call\n", 1)[1]
    wait = next(line for line in section.splitlines() if "compose.yaml ps" in line)
    assert "fs-plugin" in wait, wait


def test_failsafe_walkthrough_keeps_the_controller_stopped() -> None:
    """`docker compose run` starts the services the run one depends on (sipp depends on
    fs-plugin), so after `stop fs-plugin` a plain `run --rm sipp` restarts the
    controller and the call is screened: the fail-safe is never shown."""
    assert "fs-plugin" in compose()["services"]["sipp"]["depends_on"]
    cmds = _shell_blocks((LAB / "README.md").read_text(encoding="utf-8"), "The fail-safe, live")
    stop = next(i for i, c in enumerate(cmds) if c.endswith("stop fs-plugin"))
    start = next(i for i, c in enumerate(cmds) if c.endswith("start fs-plugin"))
    runs = [c for c in cmds[stop:start] if re.search(r"\brun\b.*\bsipp\b", c)]
    assert runs, cmds
    for cmd in runs:
        assert "--no-deps" in cmd.split(), cmd
