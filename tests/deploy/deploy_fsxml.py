"""A small model of how FreeSWITCH 1.10 loads XML and runs the XML dialplan.

Enough of FreeSWITCH's behaviour to check the project's dialplan/ and lab/freeswitch/
files the way the switch would use them, with each rule taken from its source:

- switch_xml.c ``preprocess``: line by line; ``$${var}`` replaced by the global (empty
  when unset); lines holding ``<include>``, ``</include>`` or ``<?`` dropped whole;
  ``<X-PRE-PROCESS cmd="set|include" data="..."/>`` acted on wherever it appears, even
  inside a comment; a relative include is relative to the including file's directory,
  a glob expands in sorted order.
- mod_dialplan_xml ``dialplan_hunt``/``parse_exten``: the context is looked up by name
  (else ``global``); extensions in order; every condition is evaluated at hunt time
  (``${...}`` fields expanded from the channel, other fields are caller-profile
  fields); ``break`` defaults to on-false; ``$N`` in action data comes from the last
  condition's regex; the first matching extension ends the hunt unless it has
  ``continue="true"``; no extension at all means NO_ROUTE_DESTINATION.
- switch_core_state_machine ``standard_on_execute``: applications run in order while
  the channel stays in the execute state; ``transfer`` sends it back to routing (a new
  hunt), ``hangup`` ends it.
- switch_channel ``get_variable``: channel variable, then caller-profile field, then
  global variable. Application data is expanded when the application runs.
"""

from __future__ import annotations

import ipaddress
import re
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

__all__ = [
    "Acl",
    "Channel",
    "Controller",
    "Switch",
    "preprocess",
]

_PRE = re.compile(r'<X-PRE-PROCESS\s+cmd="([^"]*)"\s+data="([^"]*)"\s*/>', re.IGNORECASE)
_GLOBAL = re.compile(r"\$\$\{([^}]*)\}")

#: Caller-profile fields a condition may name without ``${}`` (switch_caller.c).
PROFILE_FIELDS = (
    "destination_number", "caller_id_number", "caller_id_name", "network_addr",
    "context", "dialplan", "username", "ani", "rdnis", "source", "uuid",
)
#: Transfers before the model gives up: a routing loop, not a dialplan.
MAX_TRANSFERS = 20


def preprocess(
    path: Path, mounts: Mapping[str, Path], variables: dict[str, str], depth: int = 0
) -> str:
    """The text FreeSWITCH hands its XML parser for ``path`` (a host path)."""
    if depth > 20:
        raise RecursionError(f"include depth at {path}")
    out: list[str] = []
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = _GLOBAL.sub(lambda m: variables.get(m.group(1), ""), raw)
        if "<include>" in line or "</include>" in line or "<?" in line:
            continue
        pre = _PRE.search(line)
        if pre is None:
            out.append(line)
            continue
        cmd, data = pre.group(1).lower(), pre.group(2)
        if cmd == "set":
            name, _, value = data.partition("=")
            variables[name.strip()] = value.strip()
        elif cmd == "include":
            for target in _glob(path.parent, data, mounts):
                out.append(preprocess(target, mounts, variables, depth + 1))
        else:
            raise NotImplementedError(f"X-PRE-PROCESS cmd={cmd} in {path}")
    return "\n".join(out)


def _glob(cwd: Path, pattern: str, mounts: Mapping[str, Path]) -> list[Path]:
    if pattern.startswith("/"):
        for prefix, host in mounts.items():
            if pattern.startswith(prefix.rstrip("/") + "/"):
                rel = PurePosixPath(pattern).relative_to(prefix)
                return sorted(host.glob(str(rel)))
        raise FileNotFoundError(f"absolute include {pattern} is not on a mounted path")
    return sorted(cwd.glob(pattern))


@dataclass(frozen=True, slots=True)
class Acl:
    """One ``<list>`` of acl.conf: first matching node wins, else the default."""

    default_allow: bool
    nodes: tuple[tuple[bool, ipaddress.IPv4Network | ipaddress.IPv6Network], ...]

    def allows(self, ip: str) -> bool:
        addr = ipaddress.ip_address(ip)
        for allow, net in self.nodes:
            if addr.version == net.version and addr in net:
                return allow
        return self.default_allow


def acls_from(doc: ET.Element) -> dict[str, Acl]:
    lists: dict[str, Acl] = {}
    for cfg in doc.iter("configuration"):
        if cfg.get("name") != "acl.conf":
            continue
        for lst in cfg.iter("list"):
            nodes = tuple(
                (n.get("type") == "allow", ipaddress.ip_network(n.get("cidr", ""), strict=True))
                for n in lst.iter("node")
            )
            lists[lst.get("name", "")] = Acl(lst.get("default") == "allow", nodes)
    return lists


@dataclass
class Channel:
    """One inbound call leg as the dialplan sees it."""

    profile: dict[str, str]
    variables: dict[str, str] = field(default_factory=dict)
    state: str = "ROUTING"
    hangup_cause: str | None = None
    exported: list[str] = field(default_factory=list)
    logs: list[tuple[str, str]] = field(default_factory=list)
    trace: list[tuple[str, str, str]] = field(default_factory=list)  # (context, app, data)
    transfers: int = 0
    answered: bool = False
    post_dial_delay_s: float = 0.0

    def __getitem__(self, name: str) -> str:
        return self.variables[name]


#: What the "controller" does when the socket app connects: it may set variables and
#: hang up through the callbacks, like the sendmsg commands of the real controller.
Controller = Callable[["Switch", Channel, str], None]


class Switch:
    """The loaded configuration of one FreeSWITCH, able to route calls through it."""

    def __init__(self, doc: ET.Element, globals_: Mapping[str, str]) -> None:
        self.doc = doc
        self.globals = dict(globals_)
        self.acls = acls_from(doc)
        dialplan = [s for s in doc.iter("section") if s.get("name") == "dialplan"]
        if len(dialplan) != 1:
            raise ValueError("expected one dialplan section")
        self.contexts: dict[str, ET.Element] = {}
        for ctx in dialplan[0].findall("context"):
            # switch_xml_find_child: the first context of a name wins.
            self.contexts.setdefault(ctx.get("name", ""), ctx)
        self.controller: Controller | None = None

    # -- variables ---------------------------------------------------------------------
    def get_var(self, ch: Channel, name: str) -> str:
        if name in ch.variables:
            return ch.variables[name]
        if name in ch.profile:
            return ch.profile[name]
        return self.globals.get(name, "")

    def expand(self, ch: Channel, text: str) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            if text.startswith("${", i):
                depth, j = 1, i + 2
                while j < len(text) and depth:
                    if text.startswith("${", j):
                        depth, j = depth + 1, j + 2
                        continue
                    depth -= text[j] == "}"
                    j += 1
                inner = text[i + 2 : j - 1]
                out.append(self._api_or_var(ch, inner))
                i = j
            else:
                out.append(text[i])
                i += 1
        return "".join(out)

    def _api_or_var(self, ch: Channel, inner: str) -> str:
        call = re.fullmatch(r"(\w+)\((.*)\)", inner, re.DOTALL)
        if call is None:
            return self.get_var(ch, inner)
        api, args = call.group(1), self.expand(ch, call.group(2)).split()
        if api == "acl":
            acl = self.acls.get(args[1]) if len(args) > 1 else None
            return "true" if acl is not None and acl.allows(args[0]) else "false"
        raise NotImplementedError(f"api {api}")

    # -- hunting -----------------------------------------------------------------------
    def hunt(self, ch: Channel) -> list[tuple[str, str]] | None:
        ctx = self.contexts.get(ch.profile["context"]) or self.contexts.get("global")
        if ctx is None:
            return None
        # Like FreeSWITCH, actions of every condition that passed are kept, even in an
        # extension whose later condition fails: one caller extension for the hunt.
        found: list[tuple[str, str]] = []
        for ext in ctx.findall("extension"):
            proceed, apps = self._parse_exten(ch, ext)
            found += apps
            if proceed and ext.get("continue", "false") != "true":
                break
        return found or None

    def _parse_exten(self, ch: Channel, ext: ET.Element) -> tuple[bool, list[tuple[str, str]]]:
        apps: list[tuple[str, str]] = []
        proceed = False
        for cond in ext.findall("condition"):
            if cond.find("condition") is not None or cond.get("regex") is not None:
                raise NotImplementedError("nested or multi-regex conditions")
            brk = cond.get("break", "on-false")
            fld = cond.get("field")
            match: re.Match[str] | None = None
            if fld is None:
                ok = True
            else:
                data = self.expand(ch, fld) if "$" in fld else self.get_profile(ch, fld)
                match = re.search(self.expand(ch, cond.get("expression", "")), data)
                ok = match is not None
            proceed = ok
            tag = "action" if ok else "anti-action"
            for act in cond.findall(tag):
                if act.get("inline"):
                    raise NotImplementedError("inline actions")
                text = act.get("data", "")
                if match is not None and "(" in cond.get("expression", ""):
                    text = _substitute(text, match)
                apps.append((act.get("application", ""), text))
                proceed = True
            if (ok and brk == "on-true") or (not ok and brk == "on-false") or brk == "always":
                break
        return proceed, apps

    @staticmethod
    def get_profile(ch: Channel, name: str) -> str:
        if name not in PROFILE_FIELDS:
            raise KeyError(f"{name} is not a caller-profile field")
        return ch.profile.get(name, "")

    # -- executing ---------------------------------------------------------------------
    def run(self, ch: Channel) -> Channel:
        """Route ``ch`` from its profile's context until it hangs up or runs out."""
        while ch.state == "ROUTING":
            apps = self.hunt(ch)
            if apps is None:
                self.hangup(ch, "NO_ROUTE_DESTINATION")
                break
            ch.state = "EXECUTE"
            for app, data in apps:
                if ch.state != "EXECUTE":
                    break
                self.execute(ch, app, self.expand(ch, data))
            if ch.state == "EXECUTE":
                # The extension ran out of applications with the call still up.
                self.hangup(ch, "NORMAL_CLEARING")
        return ch

    def execute(self, ch: Channel, app: str, data: str) -> None:
        ch.trace.append((ch.profile["context"], app, data))
        if app in ("set", "export"):
            name, _, value = data.partition("=")
            if value:
                ch.variables[name] = value
            else:
                ch.variables.pop(name, None)
            if app == "export":
                ch.exported.append(name)
        elif app == "unset":
            ch.variables.pop(data, None)
        elif app == "log":
            level, _, msg = data.partition(" ")
            ch.logs.append((level, msg))
        elif app == "socket":
            if self.controller is None:
                raise RuntimeError("no controller model installed")
            self.controller(self, ch, data)
        elif app == "transfer":
            parts = data.split()
            if len(parts) != 3 or parts[1] != "XML" or not parts[2]:
                raise ValueError(f"transfer needs '<dest> XML <context>', got {data!r}")
            ch.transfers += 1
            if ch.transfers > MAX_TRANSFERS:
                raise RuntimeError("routing loop")
            ch.profile["destination_number"], ch.profile["context"] = parts[0], parts[2]
            ch.state = "ROUTING"
        elif app == "hangup":
            self.hangup(ch, data or "NORMAL_CLEARING")
        elif app == "answer":
            ch.answered = True
        elif app == "sleep":
            int(data)
        else:
            raise NotImplementedError(f"application {app!r} is not modelled")

    @staticmethod
    def hangup(ch: Channel, cause: str) -> None:
        if ch.state != "HANGUP":
            ch.state, ch.hangup_cause = "HANGUP", cause


def _substitute(text: str, match: re.Match[str]) -> str:
    def group(m: re.Match[str]) -> str:
        n = int(m.group(1))
        return (match.group(n) or "") if n <= (match.re.groups or 0) else ""

    return re.sub(r"\$(\d)", group, text)
