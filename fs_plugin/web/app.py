"""The plug-in's HTTP side: REST API with roles, the NOC page and its live stream,
Prometheus metrics, and policy reloads.

Every route is declared once in :data:`ROUTES` with the roles allowed on it; the
same table builds the router, guards each handler and writes the OpenAPI
document, so a route cannot exist without a role check or a description.
Bad input is answered ``400 {"error": "bad_request", "reason": ...}``; missing or
unknown credentials ``401``; a role not allowed on the route ``403``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import asdict, dataclass, field, is_dataclass, replace
from datetime import UTC, datetime
from enum import Enum
from pathlib import Path
from typing import Any

import structlog
from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from fs_plugin.errors import ConfigError, StorageError
from fs_plugin.journal.complaints import STATUSES, Complaints
from fs_plugin.journal.credit import Credit
from fs_plugin.logs import mask_number
from fs_plugin.numbering import classify, user_part
from fs_plugin.policy import CustomerStatus
from fs_plugin.tasks import cancel_and_wait
from fs_plugin.transport.outbound import DecisionRecord
from fs_plugin.web.auth import Principal, Role, SessionStore, TokenStore, load_tokens
from fs_plugin.web.bus import LiveBus, RedisStreamBus, Subscription, event_from_record, mask_text
from fs_plugin.web.desk import (
    InputError,
    ledger_record_json,
    parse_advance,
    parse_complaint,
    parse_credit,
    parse_ticket_id,
    ticket_json,
)
from fs_plugin.web.diff import diff_policies
from fs_plugin.web.metrics import Metrics
from fs_plugin.web.policy_ops import (
    FILE_NAME,
    MAX_EDIT_BYTES,
    PolicyManager,
    ReloadEvent,
    error_json,
    watch_policy,
)
from fs_plugin.web.rates import RateBook

__all__ = ["ROUTES", "Route", "WebServer", "WebSettings", "start_web"]

log = structlog.get_logger(__name__)

STATIC = Path(__file__).parent / "static"
SESSION_COOKIE = "fsp_session"
#: Pause before the policy files are watched again after the watch failed.
_WATCH_RETRY_S = 5.0
PRINCIPAL = web.RequestKey("principal", Principal)

READ = frozenset({Role.NOC, Role.EDITOR, Role.ADMIN})
EDIT = frozenset({Role.EDITOR, Role.ADMIN})
REGULATOR = frozenset({Role.REGULATOR, Role.ADMIN})
ADMIN = frozenset({Role.ADMIN})
#: Complaint tickets: the carrier's complaint desk (editors) works them, the regulator
#: reads them. Not the NOC: a ticket quotes the reported number in full, and the NOC
#: sees numbers masked everywhere else.
DESK_READ = frozenset({Role.REGULATOR, Role.EDITOR, Role.ADMIN})
ANY = frozenset(Role)

_UUID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,127}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
#: Counter key globs: the characters of our key names plus the glob's own.
_PATTERN = re.compile(r"^[A-Za-z0-9_.:{}+*?\[\]-]{1,200}$")
_NUMBER = re.compile(r"^[+\d][\d\- ]{0,31}$")


@dataclass(frozen=True, slots=True)
class WebSettings:
    host: str = "127.0.0.1"
    port: int = 8088
    #: YAML/JSON tokens file (see :mod:`fs_plugin.web.auth`); ``tokens`` wins when given.
    tokens_file: Path | None = None
    tokens: TokenStore | None = None
    #: ``redis://…`` shares the live stream between switches; ``None``: this process only.
    bus_redis_url: str | None = None
    bus_stream: str = "fsp:noc"
    #: Entries the shared stream keeps (approximately): a live window, not a store.
    bus_maxlen: int = 100_000
    #: Seconds between attempts while Redis is unreachable (local events flow meanwhile).
    bus_retry_s: float = 1.0
    #: Reload the policy when its files change.
    watch_policy: bool = True
    watch_debounce_ms: int = 500
    #: Latest decisions kept for the page's backlog, drill-down and ``policy/diff``.
    recent_max: int = 5000
    #: Events queued for one open page before its oldest are dropped.
    subscriber_queue_max: int = 1000
    max_subscribers: int = 200
    #: Seconds between counter store pings (latency and error metrics).
    probe_interval_s: float = 5.0
    #: Seconds between status events on the live stream (and SSE keep-alives).
    status_interval_s: float = 5.0
    #: Let Prometheus scrape without a token (an internal-only listener).
    metrics_public: bool = False
    #: Mark the session cookie ``Secure`` (set when served behind TLS).
    cookie_secure: bool = False
    session_ttl_s: float = 12 * 3600
    #: Largest request body accepted (policy files are hand-edited text).
    client_max_size: int = MAX_EDIT_BYTES + 64 * 1024


class BadRequest(Exception):
    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


Handler = Callable[["WebServer", web.Request], Awaitable[web.StreamResponse]]


@dataclass(frozen=True, slots=True)
class Param:
    name: str
    where: str  # query | path
    description: str
    required: bool = False
    schema: Mapping[str, Any] = field(default_factory=lambda: {"type": "string"})


@dataclass(frozen=True, slots=True)
class Route:
    method: str
    path: str
    handler: Handler
    roles: frozenset[Role] | None  # None: public (the login itself)
    summary: str
    params: tuple[Param, ...] = ()
    body: str | None = None  # a description of the JSON (or text) body


def _json(data: Any, status: int = 200) -> web.Response:
    return web.json_response(data, status=status, dumps=lambda d: json.dumps(
        d, ensure_ascii=False, default=_default))


def _default(value: Any) -> Any:
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.isoformat()
    if is_dataclass(value) and not isinstance(value, type):
        return asdict(value)
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)


def _error(status: int, error: str, reason: str) -> web.Response:
    return _json({"error": error, "reason": reason}, status)


# -- input parsing --------------------------------------------------------------------


def _int_param(request: web.Request, name: str, default: int, lo: int, hi: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise BadRequest(f"{name} must be an integer") from None
    if not lo <= value <= hi:
        raise BadRequest(f"{name} must be between {lo} and {hi}")
    return value


def _bool_param(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in ("true", "false", "1", "0"):
        raise BadRequest(f"{name} must be true or false")
    return raw in ("true", "1")


def _number(raw: str | None, name: str = "number", *, required: bool = True) -> str | None:
    if raw is None or raw == "":
        if required:
            raise BadRequest(f"{name} is required")
        return None
    if not _NUMBER.match(raw):
        raise BadRequest(f"{name} must be a phone number (digits, optional +)")
    return raw


def _iso_seconds(raw: str, name: str) -> float:
    try:
        parsed = datetime.fromisoformat(raw)
    except ValueError:
        raise BadRequest(f"{name} must be epoch seconds or an ISO time with a zone") from None
    if parsed.tzinfo is None:
        raise BadRequest(f"{name} must carry a time zone")
    return parsed.timestamp()


def _time_param(request: web.Request, name: str) -> float | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        value = float(raw)
    except ValueError:
        value = _iso_seconds(raw, name)
    try:
        # nan, inf, 1e18 or year 1 at +14:00 parse, but are no time the journal can query.
        datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        raise BadRequest(f"{name} is out of range") from None
    return value


@dataclass(frozen=True, slots=True)
class EventFilter:
    verdict: str | None = None
    trunk: str | None = None
    rule: str | None = None
    #: Digits the caller or callee ends with (the page shows masked numbers, so
    #: NOC staff search by the visible tail).
    number: str | None = None
    shadow: bool = False

    @classmethod
    def from_query(cls, request: web.Request) -> EventFilter:
        q = request.query
        verdict = q.get("verdict") or None
        if verdict is not None and verdict not in ("pass", "warn", "block"):
            raise BadRequest("verdict must be pass, warn or block")
        trunk, rule = q.get("trunk") or None, q.get("rule") or None
        for name, value in (("trunk", trunk), ("rule", rule)):
            if value is not None and not _ID.match(value):
                raise BadRequest(f"{name} is not a valid id")
        number = q.get("number") or None
        if number is not None and not number.isdigit():
            raise BadRequest("number must be digits")
        return cls(verdict, trunk, rule, number, _bool_param(request, "shadow"))

    def __call__(self, event: Mapping[str, Any], raw: DecisionRecord | None = None) -> bool:
        if self.verdict and event.get("verdict") != self.verdict:
            return False
        if self.trunk and event.get("trunk") != self.trunk:
            return False
        if self.rule and event.get("rule") != self.rule and not any(
            h.get("rule") == self.rule for h in event.get("shadow", ())
        ):
            return False
        if self.shadow and not event.get("shadow"):
            return False
        if self.number:
            numbers: tuple[str, ...]
            if raw is not None:
                numbers = (raw.facts.from_user, raw.facts.destination, raw.facts.pai or "")
            else:  # a remote switch's event: only the visible digits are known
                numbers = tuple(str(event.get(k) or "") for k in ("caller", "callee", "pai"))
            if not any(n.endswith(self.number) for n in numbers):
                return False
        return True


async def _json_body(request: web.Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except LookupError:  # Content-Type names a charset Python does not know
        raise BadRequest(f"unknown charset {request.charset!r}") from None
    except RecursionError:  # a few thousand nested brackets fit in any body limit
        raise BadRequest("body is nested too deeply") from None
    except ValueError:  # UnicodeDecodeError included
        raise BadRequest("body must be JSON") from None
    if not isinstance(body, dict):
        raise BadRequest("body must be a JSON object")
    try:
        # JSON may escape a lone surrogate ("\ud800"): a string no file, token or
        # database column can hold, found here rather than where it is written.
        json.dumps(body, ensure_ascii=False).encode("utf-8")
    except UnicodeEncodeError:
        raise BadRequest("body holds a lone surrogate escape (not Unicode text)") from None
    return body


# -- the server -----------------------------------------------------------------------


class WebServer:
    def __init__(self, service: Any, settings: WebSettings) -> None:
        self.service = service
        self.settings = settings
        self.clock = service.clock
        if settings.tokens is not None:
            self.tokens = settings.tokens
        elif settings.tokens_file is not None:
            self.tokens = load_tokens(settings.tokens_file)
        else:
            raise ConfigError("the web API needs a tokens file (no anonymous access)")
        self.sessions = SessionStore(ttl_s=settings.session_ttl_s, clock=self.clock)
        bus_args: dict[str, Any] = {
            "recent_max": settings.recent_max,
            "subscriber_queue_max": settings.subscriber_queue_max,
            "max_subscribers": settings.max_subscribers,
        }
        self.bus: LiveBus = (
            RedisStreamBus(settings.bus_redis_url, stream=settings.bus_stream,
                           maxlen=settings.bus_maxlen, retry_s=settings.bus_retry_s, **bus_args)
            if settings.bus_redis_url else LiveBus(**bus_args)
        )
        #: This plug-in's name on the shared stream and in the journal.
        self.switch_name: str | None = getattr(
            getattr(service, "config", None), "switch_name", None)
        #: Full decisions (trail included) for drill-down and replay; bounded like the bus.
        self.records: OrderedDict[str, DecisionRecord] = OrderedDict()
        self.rates = RateBook()
        self.metrics = Metrics(self._service_gauges)
        self.policy = PolicyManager(service.policy, self.clock, self._on_reload)
        self.port = 0
        self._runner: web.AppRunner | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._closing = asyncio.Event()
        self._store_up = False

    # -- wiring ---------------------------------------------------------------------

    def on_decision(self, record: DecisionRecord) -> None:
        """The decision listener: cheap, never blocks, never raises into the call path."""
        self.metrics.observe(record)
        self.rates.add(record)
        uuid = record.facts.uuid
        self.records[uuid] = record
        self.records.move_to_end(uuid)
        while len(self.records) > self.settings.recent_max:
            self.records.popitem(last=False)
        self.bus.publish(event_from_record(record, switch=self.switch_name))

    def _on_reload(self, event: ReloadEvent) -> None:
        self.metrics.reloads.labels(event.result, event.trigger).inc()
        self.bus.publish({"type": "policy", "switch": self.switch_name,
                          **_reload_json(event)})

    def _service_gauges(self) -> dict[str, Any]:
        svc = self.service
        stats = svc.snapshot_stats()
        inbound = svc.inbound
        journal = getattr(svc, "journal", None)
        queue = getattr(svc, "_outcomes", None)
        return {
            "esl_connected": -1 if inbound is None else int(inbound.connected),
            "accepting": int(svc.outbound.accepting),
            "inflight": svc.outbound.inflight(),
            "lag_s": svc.outbound.health.last_lag_s,
            "outcome_queue": stats.get("outcome_queue_depth",
                                       queue.qsize() if queue is not None else 0),
            "subscribers": self.bus.subscribers,
            "policy_version": svc.policy.version,
            "outbound": stats.get("outbound") or {},
            "inbound": stats.get("inbound"),
            "service": stats.get("service") or {},
            "journal": journal.stats() if journal is not None else None,
            "bus_dropped": self.bus.stats["dropped"],
        }

    def status(self) -> dict[str, Any]:
        g = self._service_gauges()
        return {
            "type": "status", "at": self.clock.time(), "policy": g["policy_version"],
            "esl_connected": g["esl_connected"], "accepting": bool(g["accepting"]),
            "inflight": g["inflight"], "lag_ms": round(g["lag_s"] * 1e3, 3),
            "counter_store_up": self._store_up, "outcome_queue": g["outcome_queue"],
            "journal": g["journal"], "switch": self.switch_name, "bus": self.bus.describe(),
        }

    async def _probe_counters(self) -> None:
        """Ping the counter store now and then: latency and errors for the metrics."""
        while True:
            started = time.perf_counter()
            try:
                await self.service.counters.ping(timeout_s=1.0)
            except (StorageError, TimeoutError, OSError) as exc:
                self.metrics.store_errors.inc()
                self._store_up = False
                log.warning("counter_store_probe_failed", error=type(exc).__name__)
            else:
                self.metrics.store_latency.observe(time.perf_counter() - started)
                self._store_up = True
            self.metrics.store_up.set(int(self._store_up))
            await asyncio.sleep(self.settings.probe_interval_s)

    async def _watch(self) -> None:
        # A reload that fails unexpectedly (a refused policy is no failure) or a watcher
        # that breaks must not end hot reloading for the life of the process: watch
        # again, after a pause so a persistent fault (the directory gone) cannot spin.
        while not self._closing.is_set():
            try:
                await watch_policy(self.policy, debounce_ms=self.settings.watch_debounce_ms,
                                   stop=self._closing)
            except Exception:
                log.exception("policy_watch_failed", retry_s=_WATCH_RETRY_S)
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(_WATCH_RETRY_S):
                    await self._closing.wait()

    async def start(self) -> None:
        app = web.Application(middlewares=[self._middleware],
                              client_max_size=self.settings.client_max_size)
        for route in ROUTES:
            if route.handler is h_metrics and self.settings.metrics_public:
                route = replace(route, roles=None)
            app.router.add_route(route.method, route.path, self._guarded(route))
        app.router.add_get("/", self._page)
        app.router.add_static("/static/", STATIC, append_version=False)
        app.on_shutdown.append(self._on_shutdown)
        await self.bus.start()
        try:
            self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=2.0)
            await self._runner.setup()
            site = web.TCPSite(self._runner, self.settings.host, self.settings.port)
            await site.start()
        except BaseException:
            # A port in use: the caller never gets this server to stop, so the bus's
            # Redis tasks and client would be left running.
            await self.stop()
            raise
        # Only once the server is up: a listener cannot be taken off the outbound server.
        self.service.outbound.add_listener(self.on_decision)
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else self.settings.port
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._probe_counters(), name="fsp-web-probe"))
        if self.settings.watch_policy:
            self._tasks.append(loop.create_task(self._watch(), name="fsp-policy-watch"))
        log.info("web_started", host=self.settings.host, port=self.port,
                 tokens=len(self.tokens), bus="redis" if self.settings.bus_redis_url else "local")

    async def _on_shutdown(self, _app: web.Application) -> None:
        self._closing.set()

    async def stop(self) -> None:
        self._closing.set()
        await cancel_and_wait(*self._tasks)
        self._tasks = []
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None
        await self.bus.stop()
        log.info("web_stopped")

    # -- auth -----------------------------------------------------------------------

    def authenticate(self, request: web.Request) -> Principal | None:
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.partition(" ")
        if scheme.lower() == "bearer" and token:
            return self.tokens.lookup(token.strip())
        sid = request.cookies.get(SESSION_COOKIE)
        if sid:
            return self.sessions.lookup(sid)
        return None

    def _guarded(self, route: Route) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        async def guarded(request: web.Request) -> web.StreamResponse:
            if route.roles is not None:
                principal = self.authenticate(request)
                if principal is None:
                    resp = _error(401, "unauthenticated", "a valid bearer token is required")
                    resp.headers["WWW-Authenticate"] = 'Bearer realm="fs_plugin"'
                    return resp
                if principal.role not in route.roles:
                    log.warning("web_forbidden", who=principal.name, role=principal.role.value,
                                path=route.path)
                    return _error(403, "forbidden",
                                  f"role {principal.role.value} may not use this route")
                request[PRINCIPAL] = principal
            return await route.handler(self, request)

        return guarded

    @web.middleware
    async def _middleware(
        self, request: web.Request,
        handler: Callable[[web.Request], Awaitable[web.StreamResponse]],
    ) -> web.StreamResponse:
        try:
            resp = await handler(request)
        except (BadRequest, InputError) as exc:
            return _error(400, "bad_request", exc.reason)
        except web.HTTPRequestEntityTooLarge:
            return _error(413, "too_large", "request body too large")
        except StorageError as exc:
            return _error(503, "storage_unavailable", type(exc).__name__)
        resp.headers.setdefault("X-Content-Type-Options", "nosniff")
        resp.headers.setdefault("Cache-Control", "no-store")
        return resp

    async def _page(self, _request: web.Request) -> web.StreamResponse:
        resp = web.FileResponse(STATIC / "noc.html")
        resp.headers["Content-Security-Policy"] = (
            "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'"
        )
        return resp


# -- handlers -------------------------------------------------------------------------


async def h_openapi(srv: WebServer, request: web.Request) -> web.StreamResponse:
    return _json(openapi())


async def h_whoami(srv: WebServer, request: web.Request) -> web.StreamResponse:
    p: Principal = request[PRINCIPAL]
    return _json({"name": p.name, "role": p.role.value})


async def h_login(srv: WebServer, request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    token = body.get("token")
    if not isinstance(token, str) or not token:
        raise BadRequest("token is required")
    principal = srv.tokens.lookup(token)
    if principal is None:
        log.warning("web_login_failed", peer=request.remote)
        return _error(401, "unauthenticated", "unknown token")
    sid = srv.sessions.create(principal)
    resp = _json({"name": principal.name, "role": principal.role.value})
    resp.set_cookie(SESSION_COOKIE, sid, httponly=True, samesite="Strict",
                    secure=srv.settings.cookie_secure, max_age=int(srv.settings.session_ttl_s),
                    path="/")
    log.info("web_login", who=principal.name, role=principal.role.value)
    return resp


async def h_logout(srv: WebServer, request: web.Request) -> web.StreamResponse:
    sid = request.cookies.get(SESSION_COOKIE)
    if sid:
        srv.sessions.drop(sid)
    resp = _json({"ok": True})
    resp.del_cookie(SESSION_COOKIE, path="/")
    return resp


async def h_health(srv: WebServer, request: web.Request) -> web.StreamResponse:
    return _json({**srv.status(), "stats": srv.service.snapshot_stats()})


def _recent(srv: WebServer, flt: EventFilter, limit: int) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for event in reversed(srv.bus.recent):
        if event.get("type") is None and flt(event, srv.records.get(event.get("uuid", ""))):
            out.append(event)
            if len(out) >= limit:
                break
    return out


async def h_decisions(srv: WebServer, request: web.Request) -> web.StreamResponse:
    flt = EventFilter.from_query(request)
    limit = _int_param(request, "limit", 100, 1, 5000)
    return _json({"decisions": _recent(srv, flt, limit)})


async def h_decision(srv: WebServer, request: web.Request) -> web.StreamResponse:
    uuid = request.match_info["uuid"]
    if not _UUID.match(uuid):
        raise BadRequest("uuid is malformed")
    record = srv.records.get(uuid)
    journal = getattr(srv.service, "journal", None)
    journaled: list[dict[str, Any]] = []
    if journal is not None:
        journaled = await journal.trace(uuid=uuid, limit=10)
    if record is None and not journaled:
        return _error(404, "not_found", "no such call in memory or in the journal")
    out: dict[str, Any] = {"uuid": uuid, "journal": [_masked_row(r) for r in journaled]}
    if record is not None:
        d = record.decision
        out["event"] = event_from_record(record, switch=srv.switch_name)
        out["trail"] = [
            {"rule": r.rule, "fired": r.fired, "verdict": r.verdict.value, "mode": r.mode.value,
             "reason": mask_text(r.reason), "cause": r.cause, "label": r.label}
            for r in d.trail
        ]
    return _json(out)


#: Journal row fields that can carry a phone number: the number columns, and free text
#: that quotes one (a caller-ID name is often the number itself, a rule's reason quotes
#: it, some SBCs build the Call-ID from it). Masked by pattern, so a SIP URI keeps its host.
_ROW_TEXT = ("from_raw", "from_norm", "pai_raw", "pai_norm", "diversion_raw",
             "diversion_norm", "callee", "caller_name", "sip_call_id", "reason", "label")


def _masked_row(row: Mapping[str, Any]) -> dict[str, Any]:
    """A journal row as the NOC may see it: every number masked."""
    out = dict(row)
    for key in _ROW_TEXT:
        if isinstance(out.get(key), str):
            out[key] = mask_text(out[key])
    if isinstance(out.get("trail"), list):
        out["trail"] = [
            {k: mask_text(v) if k in ("reason", "label") and isinstance(v, str) else v
             for k, v in item.items()} if isinstance(item, dict) else item
            for item in out["trail"]
        ]
    return out


async def h_stream(srv: WebServer, request: web.Request) -> web.StreamResponse:
    flt = EventFilter.from_query(request)
    backlog = _int_param(request, "backlog", 50, 0, 1000)
    sub = srv.bus.subscribe()
    if sub is None:
        return _error(503, "too_many_streams", "too many live streams open")
    try:
        return await _serve_stream(srv, request, flt, backlog, sub)
    finally:
        sub.close()


async def _serve_stream(srv: WebServer, request: web.Request, flt: EventFilter, backlog: int,
                        sub: Subscription) -> web.StreamResponse:
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream", "Cache-Control": "no-cache",
        "X-Accel-Buffering": "no",
    })
    await resp.prepare(request)
    seq = 0

    async def send(kind: str, data: Mapping[str, Any]) -> None:
        nonlocal seq
        seq += 1
        payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        await resp.write(f"id: {seq}\nevent: {kind}\ndata: {payload}\n\n".encode())

    await resp.write(b"retry: 2000\n\n")
    await send("status", srv.status())
    for event in reversed(_recent(srv, flt, backlog)):
        await send("decision", event)
    closing = srv._closing
    interval = srv.settings.status_interval_s
    try:
        while not closing.is_set():
            getter = asyncio.ensure_future(sub.get())
            stopper = asyncio.ensure_future(closing.wait())
            done, _ = await asyncio.wait({getter, stopper}, timeout=interval,
                                         return_when=asyncio.FIRST_COMPLETED)
            for fut in (getter, stopper):
                if fut not in done:
                    fut.cancel()
            if getter in done:
                event = getter.result()
                kind = event.get("type")
                if kind == "policy":
                    await send("policy", event)
                elif flt(event, srv.records.get(event.get("uuid", ""))):
                    await send("decision", event)
            elif not done:
                await send("status", srv.status())
    except (ConnectionResetError, asyncio.CancelledError):
        pass
    return resp


async def h_rates(srv: WebServer, request: web.Request) -> web.StreamResponse:
    window = _int_param(request, "window", 300, 60, 86400)
    return _json(srv.rates.rates(srv.clock.time(), window))


async def h_series(srv: WebServer, request: web.Request) -> web.StreamResponse:
    span = request.query.get("span", "hour")
    if span not in ("hour", "day"):
        raise BadRequest("span must be hour or day")
    return _json(srv.rates.series(srv.clock.time(), span))


def _pattern(raw: str | None) -> str:
    if raw is None or not _PATTERN.match(raw):
        raise BadRequest("pattern must be a key glob of [A-Za-z0-9_.:{}+*?[]-], 1–200 chars")
    return raw


async def h_counters(srv: WebServer, request: web.Request) -> web.StreamResponse:
    pattern = _pattern(request.query.get("pattern", "*"))
    limit = _int_param(request, "limit", 100, 1, 1000)
    shown = await srv.service.counters.show(pattern, limit=limit, timeout_s=2.0)
    # Keys carry the numbers they count: masked like every number the NOC sees.
    return _json({"pattern": pattern, "keys": {mask_text(k): v for k, v in shown.items()}})


async def h_counters_reset(srv: WebServer, request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    pattern = _pattern(body.get("pattern") if isinstance(body.get("pattern"), str) else None)
    deleted = await srv.service.counters.reset(pattern, timeout_s=5.0)
    log.warning("counters_reset_by_api", who=request[PRINCIPAL].name, pattern=pattern,
                deleted=deleted)
    return _json({"pattern": pattern, "deleted": deleted})


def _key(number: str) -> str:
    key = classify(user_part(number)).key
    if key is None:
        raise BadRequest("number is not a usable phone number")
    return key


async def h_labels(srv: WebServer, request: web.Request) -> web.StreamResponse:
    number = _number(request.query.get("number"))
    assert number is not None
    key = _key(number)
    label = srv.service.policy.snapshot.labels.get(key)
    now = srv.clock.time()
    return _json({
        "number": mask_number(number), "key": mask_number(key),
        "label": None if label is None else {
            "category": label.category, "rule": label.rule, "text": label.text,
            "source": label.source, "confidence": label.confidence,
            "expires_at": label.expires_at,
            "active": label.expires_at is None or label.expires_at > now,
        },
    })


async def h_lists(srv: WebServer, request: web.Request) -> web.StreamResponse:
    number = _number(request.query.get("number"), required=False)
    snap = srv.service.policy.snapshot
    out: dict[str, Any] = {
        "policy": snap.version,
        "dnc": {"size": len(snap.dnc)},
        "labels": {"size": len(snap.labels)},
        "trunks_with_allowed_ids": sorted(t for t, s in snap.allowed.items() if s),
    }
    if number is not None:
        key = _key(number)
        n = classify(user_part(number))
        out["number"] = {
            "masked": mask_number(number),
            "dnc": n in snap.dnc,
            "labelled": key in snap.labels,
            "allowed_on": sorted(t for t, s in snap.allowed.items() if n in s),
            "business_number_of": sorted(c for c, s in snap.business_numbers.items() if n in s),
        }
    return _json(out)


async def h_policy(srv: WebServer, request: web.Request) -> web.StreamResponse:
    snap = srv.service.policy.snapshot
    directory = srv.policy.directory
    return _json({
        "version": snap.version,
        "sources": [Path(s).name if directory is None else
                    str(Path(s).relative_to(directory)) if Path(s).is_relative_to(directory)
                    else Path(s).name for s in snap.sources],
        "editable": directory is not None,
        "trunks": {t.id: {"kind": t.kind, "customer": t.customer} for t in snap.trunks.values()},
        "rules": {r.id: {"mode": r.mode.value, "verdict": r.verdict.value, "cause": r.cause}
                  for r in snap.rules.values()},
        "history": [_reload_json(e) for e in reversed(srv.policy.history)],
    })


def _reload_json(event: ReloadEvent) -> dict[str, Any]:
    """A reload as the NOC sees it (live stream, ``/api/policy``): a refused list file's
    error quotes the offending line's number (``data/dnc.csv:7: number: '1390000111x' is
    not a valid phone number``), masked like every number the NOC sees. Editors get the
    error in full from the routes that edit and reload."""
    out = asdict(event)
    if event.error is not None:
        out["error"] = mask_text(event.error)
    return out


def _file_name(request: web.Request) -> str:
    name = request.match_info["name"]
    if not FILE_NAME.match(name) or ".." in name:
        raise BadRequest("file name must be NAME.yaml, NAME.yml or data/NAME.csv")
    return name


async def h_policy_file_get(srv: WebServer, request: web.Request) -> web.StreamResponse:
    name = _file_name(request)
    content = srv.policy.read_file(name)
    if content is None:
        return _error(404, "not_found", "no such policy file")
    return web.Response(body=content, content_type="text/plain", charset="utf-8")


async def h_policy_file_put(srv: WebServer, request: web.Request) -> web.StreamResponse:
    name = _file_name(request)
    content = await request.read()
    if len(content) > MAX_EDIT_BYTES:
        raise BadRequest(f"file is larger than {MAX_EDIT_BYTES} bytes")
    try:
        content.decode("utf-8")
    except UnicodeDecodeError:
        raise BadRequest("file must be UTF-8 text") from None
    try:
        old, new = await srv.policy.write_file(name, content)
    except ConfigError as exc:
        log.warning("policy_edit_refused", who=request[PRINCIPAL].name, file=name,
                    error=exc.location_text())
        return _json(error_json(exc), 400)
    log.info("policy_edited", who=request[PRINCIPAL].name, file=name, old=old, new=new)
    return _json({"file": name, "old_version": old, "version": new})


async def h_policy_reload(srv: WebServer, request: web.Request) -> web.StreamResponse:
    check_only = _bool_param(request, "check_only")
    if check_only:
        error = await srv.policy.check_disk()
    else:
        error = await srv.policy.reload("api")
        log.info("policy_reload_by_api", who=request[PRINCIPAL].name,
                 result="refused" if error else "applied")
    if error is not None:
        return _json({**error_json(error), "version": srv.service.policy.version}, 400)
    return _json({"version": srv.service.policy.version, "applied": not check_only})


async def h_policy_diff(srv: WebServer, request: web.Request) -> web.StreamResponse:
    body = await _json_body(request)
    files = body.get("files")
    if not isinstance(files, dict) or not files:
        raise BadRequest("files must be an object of file name → content")
    candidate: dict[str, bytes] = {}
    for name, content in files.items():
        if not isinstance(name, str) or not FILE_NAME.match(name) or ".." in name:
            raise BadRequest(f"bad file name {str(name)[:100]!r}")
        if not isinstance(content, str):
            raise BadRequest(f"content of {name} must be a string")
        candidate[name] = content.encode("utf-8")
    try:
        new = await srv.policy.candidate(candidate)
    except ConfigError as exc:
        return _json(error_json(exc), 400)
    calls = [(r.facts, r.decided_at) for r in list(srv.records.values())]
    report = await diff_policies(srv.service.policy.snapshot, new, calls)
    return _json(report.to_json())


def _customer_json(srv: WebServer, cid: str) -> dict[str, Any]:
    snap = srv.service.policy.snapshot
    c = snap.customers[cid]
    return {
        **asdict(c),
        "effective_contract": snap.contracts.get(cid),
        "trunks": sorted(t.id for t in snap.trunks.values() if t.customer == cid),
    }


async def h_ledger_customers(srv: WebServer, request: web.Request) -> web.StreamResponse:
    status = request.query.get("status")
    if status is not None and status not in {s.value for s in CustomerStatus}:
        raise BadRequest("status must be one of " + ", ".join(s.value for s in CustomerStatus))
    snap = srv.service.policy.snapshot
    ids = [c.id for c in snap.customers.values() if status is None or c.status.value == status]
    return _json({"policy": snap.version, "customers": [_customer_json(srv, i) for i in ids]})


def _ledger(srv: WebServer) -> Any:
    """The ledger database of the service (a :class:`~fs_plugin.journal.ledger.Ledger`),
    or ``None`` when it runs without one."""
    return getattr(srv.service, "ledger", None)


def _no_ledger() -> web.Response:
    return _error(503, "no_ledger", "this plug-in runs without a ledger database (journal)")


def _customer_id(request: web.Request, name: str = "id") -> str:
    cid = request.match_info[name]
    if not _ID.match(cid):
        raise BadRequest("customer id is malformed")
    return cid


def _blacklisted(srv: WebServer, cid: str) -> str | None:
    state = getattr(srv.service.policy, "ledger_state", None)
    return None if state is None else state.blacklisted.get(cid)


async def h_ledger_customer(srv: WebServer, request: web.Request) -> web.StreamResponse:
    """The policy's view of a customer, and with a ledger attached the database's: contact,
    licence validity, credit history, trunks, numbers, contract."""
    cid = _customer_id(request)
    in_policy = cid in srv.service.policy.snapshot.customers
    out: dict[str, Any] = _customer_json(srv, cid) if in_policy else {"id": cid}
    ledger = _ledger(srv)
    if ledger is not None:
        row = await ledger.customer(cid)
        today = datetime.fromtimestamp(srv.clock.time(), UTC).date()
        out["ledger"] = ledger_record_json(row, _blacklisted(srv, cid), today)
        if row is None and in_policy:
            # Only in the YAML policy: its credit record may still exist (by hand or
            # from a scan of its trunks), and the regulator must see it.
            history = await Credit(ledger, clock=srv.clock).history(cid)
            out["ledger"] = {"record": None, "blacklisted": _blacklisted(srv, cid),
                             "credit": [asdict(r) for r in history]}
        elif row is None:
            return _error(404, "not_found", "no such customer")
    elif not in_policy:
        return _error(404, "not_found", "no such customer")
    else:
        out["ledger"] = None
    return _json(out)


async def h_ledger_number(srv: WebServer, request: web.Request) -> web.StreamResponse:
    """Who is responsible for a number: the policy's business numbers (``customers``) and,
    with a ledger attached, its 95/96/400 resources (``owners``, else ``null``)."""
    number = _number(request.query.get("number"))
    assert number is not None
    n = classify(user_part(number))
    snap = srv.service.policy.snapshot
    owners = sorted(c for c, s in snap.business_numbers.items() if n in s)
    ledger = _ledger(srv)
    return _json({
        "number": number,
        "customers": [_customer_json(srv, c) for c in owners],
        "owners": None if ledger is None else await ledger.number_owner(number),
    })


def _complaints(srv: WebServer) -> Complaints | None:
    ledger = _ledger(srv)
    return None if ledger is None else Complaints(ledger, clock=srv.clock)


async def h_complaint_intake(srv: WebServer, request: web.Request) -> web.StreamResponse:
    complaint = parse_complaint(await _json_body(request), srv.clock.time())
    desk = _complaints(srv)
    if desk is None:
        return _no_ledger()
    ticket = await desk.intake(complaint)
    now = srv.clock.time()
    if ticket is not None:
        log.info("complaint_by_api", who=request[PRINCIPAL].name, ticket=ticket.id)
        return _json({"ticket": ticket_json(ticket, now), "created": True}, 201)
    # The hotline's ticket number was seen before: the same complaint sent again (a
    # retry) answers with the ticket it opened; the number reused for another complaint
    # is a conflict the desk must sort out.
    for known in await desk.tickets(number=complaint.reported_number):
        if known.ref == complaint.ref:
            return _json({"ticket": ticket_json(known, now), "created": False})
    return _error(409, "conflict", "ref belongs to a complaint about another number")


async def h_complaints(srv: WebServer, request: web.Request) -> web.StreamResponse:
    status = request.query.get("status") or None
    if status is not None and status not in STATUSES:
        raise BadRequest("status must be one of " + ", ".join(STATUSES))
    number = _number(request.query.get("number"), required=False)
    if number is not None:
        _key(number)
    limit = _int_param(request, "limit", 1000, 1, 10_000)
    desk = _complaints(srv)
    if desk is None:
        return _no_ledger()
    now = srv.clock.time()
    tickets = await desk.tickets(status=status, number=number, limit=limit)
    return _json({"tickets": [ticket_json(t, now) for t in tickets]})


async def h_complaints_overdue(srv: WebServer, request: web.Request) -> web.StreamResponse:
    desk = _complaints(srv)
    if desk is None:
        return _no_ledger()
    now = srv.clock.time()
    return _json({"tickets": [ticket_json(t, now) for t in await desk.overdue()]})


async def h_complaint_advance(srv: WebServer, request: web.Request) -> web.StreamResponse:
    ticket_id = parse_ticket_id(request.match_info["id"])
    status, answer = parse_advance(await _json_body(request))
    desk = _complaints(srv)
    if desk is None:
        return _no_ledger()
    current = await desk.get(ticket_id)
    if current is None:
        return _error(404, "not_found", "no such ticket")
    if STATUSES.index(status) <= STATUSES.index(current.status):
        raise BadRequest(f"ticket is {current.status}; it moves forward only")
    try:
        ticket = await desk.advance(ticket_id, status, answer=answer)
    except KeyError:
        return _error(404, "not_found", "no such ticket")
    except ValueError as exc:  # another desk moved it meanwhile
        raise BadRequest(str(exc)) from None
    log.info("complaint_advanced_by_api", who=request[PRINCIPAL].name, ticket=ticket_id,
             status=status)
    return _json({"ticket": ticket_json(ticket, srv.clock.time())})


async def h_credit(srv: WebServer, request: web.Request) -> web.StreamResponse:
    """Blacklist or lift by hand; the ledger feed carries it to every switch's snapshot."""
    cid = _customer_id(request, "customer")
    action, reason = parse_credit(await _json_body(request))
    ledger = _ledger(srv)
    if ledger is None:
        return _no_ledger()
    if cid not in srv.service.policy.snapshot.customers and await ledger.customer(cid) is None:
        return _error(404, "not_found", "no such customer")
    credit = Credit(ledger, clock=srv.clock)
    if action == "lift" and cid not in await credit.blacklisted():
        return _error(409, "conflict", "customer is not blacklisted")
    record = await (credit.blacklist if action == "blacklist" else credit.lift)(cid, reason)
    log.warning("credit_by_api", who=request[PRINCIPAL].name, customer=cid, action=action)
    return _json({"record": asdict(record), "blacklisted": action == "blacklist"})


async def h_trace(srv: WebServer, request: web.Request) -> web.StreamResponse:
    number = _number(request.query.get("number"), required=False)
    uuid = request.query.get("uuid") or None
    if uuid is not None and not _UUID.match(uuid):
        raise BadRequest("uuid is malformed")
    trunk = request.query.get("trunk") or None
    if trunk is not None and not _ID.match(trunk):
        raise BadRequest("trunk is not a valid id")
    since, until = _time_param(request, "since"), _time_param(request, "until")
    if since is not None and until is not None and since >= until:
        raise BadRequest("since must be before until")
    limit = _int_param(request, "limit", 1000, 1, 100_000)
    if not (number or uuid or trunk or since is not None):
        raise BadRequest("give at least one of number, uuid, trunk, since")
    journal = getattr(srv.service, "journal", None)
    if journal is None:
        return _error(503, "no_journal", "this plug-in runs without a journal")
    rows = await journal.trace(number=number, uuid=uuid, trunk=trunk, since=since,
                               until=until, limit=limit)
    log.info("trace_queried", who=request[PRINCIPAL].name, rows=len(rows))
    # The regulator sees numbers in full: tracing a call is what the desk is for.
    return _json({"rows": rows})


async def h_metrics(srv: WebServer, request: web.Request) -> web.StreamResponse:
    body = generate_latest(srv.metrics.registry)
    resp = web.Response(body=body)
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp


_FILTER_PARAMS = (
    Param("verdict", "query", "pass | warn | block",
          schema={"type": "string", "enum": ["pass", "warn", "block"]}),
    Param("trunk", "query", "trunk id"),
    Param("rule", "query", "deciding rule id (or a shadow hit's)"),
    Param("number", "query", "digits the caller or callee ends with"),
    Param("shadow", "query", "only calls with shadow hits", schema={"type": "boolean"}),
)
_LIMIT = Param("limit", "query", "most rows returned", schema={"type": "integer"})
_FILE = Param("name", "path", "NAME.yaml or data/NAME.csv", required=True)

ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/openapi.json", h_openapi, ANY, "this document"),
    Route("GET", "/api/whoami", h_whoami, ANY, "the caller's name and role"),
    Route("POST", "/api/session", h_login, None,
          "exchange a token for a session cookie (the NOC page)", body='{"token": "..."}'),
    Route("DELETE", "/api/session", h_logout, ANY, "end the session"),
    Route("GET", "/api/health", h_health, READ, "switch connection, counters, queues, policy"),
    Route("GET", "/api/decisions", h_decisions, READ, "latest decisions, newest first",
          (*_FILTER_PARAMS, _LIMIT)),
    Route("GET", "/api/decisions/{uuid}", h_decision, READ,
          "one call: its rule trail and journal record",
          (Param("uuid", "path", "call UUID", required=True),)),
    Route("GET", "/api/stream", h_stream, READ,
          "live decisions (text/event-stream: decision, status and policy events)",
          (*_FILTER_PARAMS, Param("backlog", "query", "recent events sent first",
                                  schema={"type": "integer"}))),
    Route("GET", "/api/rates", h_rates, READ, "calls by trunk and rule over a window",
          (Param("window", "query", "seconds (60–86400)", schema={"type": "integer"}),)),
    Route("GET", "/api/series", h_series, READ, "verdicts over the last hour or day",
          (Param("span", "query", "hour | day"),)),
    Route("GET", "/api/counters", h_counters, READ, "counter store keys",
          (Param("pattern", "query", "key glob"), _LIMIT)),
    Route("POST", "/api/counters/reset", h_counters_reset, ADMIN, "delete counter keys",
          body='{"pattern": "rate:*"}'),
    Route("GET", "/api/labels", h_labels, READ, "the label of a number",
          (Param("number", "query", "phone number", required=True),)),
    Route("GET", "/api/lists", h_lists, READ, "list sizes; a number's memberships",
          (Param("number", "query", "phone number"),)),
    Route("GET", "/api/policy", h_policy, READ, "the policy in force and its reload history"),
    Route("GET", "/api/policy/files/{name:.+}", h_policy_file_get, EDIT, "a policy file",
          (_FILE,)),
    Route("PUT", "/api/policy/files/{name:.+}", h_policy_file_put, EDIT,
          "replace a policy file if the whole policy validates with it (else 400, file:line)",
          (_FILE,), body="the file's text"),
    Route("POST", "/api/policy/reload", h_policy_reload, EDIT,
          "reload from disk (400 with file:line when refused; the old policy stays)",
          (Param("check_only", "query", "validate without applying",
                 schema={"type": "boolean"}),)),
    Route("POST", "/api/policy/diff", h_policy_diff, EDIT,
          "replay recent calls through the policy with these files replaced",
          body='{"files": {"rules.yaml": "..."}}'),
    Route("GET", "/api/ledger/customers", h_ledger_customers, REGULATOR,
          "customers (台账): identity, contract, numbers, trunks",
          (Param("status", "query", "active | suspended | terminated"),)),
    Route("GET", "/api/ledger/customers/{id}", h_ledger_customer, REGULATOR,
          "one customer; with a ledger database also its contact, licence validity, "
          "credit history, trunks and numbers (``ledger``)",
          (Param("id", "path", "customer id", required=True),)),
    Route("GET", "/api/ledger/numbers", h_ledger_number, REGULATOR,
          "who registered a business number (policy) and owns a 95/96/400 resource "
          "(ledger database: ``owners``)",
          (Param("number", "query", "phone number", required=True),)),
    Route("POST", "/api/credit/{customer}", h_credit, ADMIN,
          "blacklist or lift a customer by hand (reaches every switch); 503 without a ledger",
          (Param("customer", "path", "customer id", required=True),),
          body='{"action": "blacklist | lift", "reason": "..."}'),
    Route("POST", "/api/complaints", h_complaint_intake, EDIT,
          "take in a complaint (12321): 201 with the new ticket, 200 with the ticket a "
          "repeated ref opened; the reporter is stored masked; 503 without a ledger",
          body='{"reported_number": "...", "category": "fraud", "channel": "12321", '
               '"text": "...", "reporter": "...", "received_at": "ISO time", "ref": "..."}'),
    Route("GET", "/api/complaints", h_complaints, DESK_READ, "complaint tickets, newest first",
          (Param("status", "query", " | ".join(STATUSES)),
           Param("number", "query", "reported number"), _LIMIT)),
    Route("GET", "/api/complaints/overdue", h_complaints_overdue, DESK_READ,
          "tickets not answered by their due time, oldest due first"),
    Route("POST", "/api/complaints/{id}", h_complaint_advance, EDIT,
          "move a ticket forward (verified, actioned, answered with the answer); 400 on "
          "going back, 404 on an unknown ticket",
          (Param("id", "path", "ticket id", required=True),),
          body='{"status": "answered", "answer": "..."}'),
    Route("GET", "/api/trace", h_trace, REGULATOR, "journaled calls (通话溯源)",
          (Param("number", "query", "caller or callee"), Param("uuid", "query", "call UUID"),
           Param("trunk", "query", "trunk id"),
           Param("since", "query", "epoch seconds or ISO time with zone"),
           Param("until", "query", "epoch seconds or ISO time with zone"), _LIMIT)),
    Route("GET", "/metrics", h_metrics, ANY, "Prometheus metrics"),
)


def openapi() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for r in ROUTES:
        path = re.sub(r"\{(\w+):[^}]*\}", r"{\1}", r.path)
        op: dict[str, Any] = {
            "summary": r.summary,
            "parameters": [
                {"name": p.name, "in": p.where, "required": p.required or p.where == "path",
                 "description": p.description, "schema": dict(p.schema)}
                for p in r.params
            ],
            "responses": {
                "200": {"description": "OK"},
                "400": {"description": "bad input; body {error, reason}"},
            },
        }
        if r.roles is not None:
            op["security"] = [{"bearer": []}, {"session": []}]
            op["x-roles"] = sorted(role.value for role in r.roles)
            op["responses"]["401"] = {"description": "no or unknown credentials"}
            op["responses"]["403"] = {"description": "role not allowed"}
        else:
            op["security"] = []
        if r.body is not None:
            op["requestBody"] = {"description": r.body, "required": True, "content": {
                "application/json" if r.body.startswith("{") else "text/plain": {}}}
        paths.setdefault(path, {})[r.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "fs_plugin", "version": "1",
                 "description": "Nuisance-call screening: decisions, policy, ledger, traces."},
        "components": {"securitySchemes": {
            "bearer": {"type": "http", "scheme": "bearer"},
            "session": {"type": "apiKey", "in": "cookie", "name": SESSION_COOKIE},
        }},
        "paths": paths,
    }


async def start_web(service: Any, settings: WebSettings) -> WebServer:
    """Attach the HTTP side to a started (or starting) service; ``await .stop()`` to end."""
    server = WebServer(service, settings)
    await server.start()
    return server
