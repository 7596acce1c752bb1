"""The ledger (台账): customers, trunks, number resources and contracts, in PostgreSQL.

The regulator's desk keeps here who is responsible for every trunk and every
95/96/400 number (谁接入谁负责): the customer's identity (name, unified social credit
code), its qualification with validity dates, industry, business type and contact;
each trunk's access location, purpose and sources; each number resource's owner and
business; each contract's caps, hours and targets; and, in ``credit.py`` and
``complaints.py``, credit records and complaint tickets.

Import and export are CSV (one table per file) or YAML (every table in one file);
an import is one transaction, validated row by row first, so a bad row (named by
file, line and column) changes nothing. Every write sends ``NOTIFY fsp_ledger``
(database triggers, migration 0002), and :meth:`Ledger.listen` delivers those
notifications, so switches re-apply the ledger (:func:`fs_plugin.policy.overlay.
apply_ledger`) without a restart; :meth:`Ledger.state` is what they apply.
"""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any, Final

import asyncpg
import structlog
import yaml

from fs_plugin.errors import ConfigError, StorageError
from fs_plugin.journal.embedded import EmbeddedPostgres, start_embedded
from fs_plugin.journal.migrate import apply_migrations, load_migrations
from fs_plugin.numbering import classify, user_part
from fs_plugin.policy.catalogue import LabelCategory
from fs_plugin.policy.loader import parse_terms
from fs_plugin.policy.models import BusinessType, Caps, CustomerStatus, Hours, Industry, Targets
from fs_plugin.policy.overlay import LedgerContract, LedgerCustomer, LedgerLabel, LedgerState
from fs_plugin.policy.yamlread import BoundedSafeLoader

__all__ = [
    "CHANNEL",
    "KINDS",
    "RECONNECTED",
    "Column",
    "Ledger",
    "LedgerFeed",
    "LedgerListener",
    "Table",
    "parse_row",
    "parse_term",
    "read_csv_rows",
    "read_yaml_rows",
]

log = structlog.get_logger(__name__)

#: The NOTIFY channel every ledger write signals on (see migration 0002).
CHANNEL: Final = "fsp_ledger"
#: What a listener's callback receives after its connection was lost and made again:
#: notifications sent meanwhile are gone, so anything may have changed.
RECONNECTED: Final = "*"
#: Rows one import may carry: a national carrier's ledger is tens of thousands of
#: rows; a file far larger is a mistake, and validation holds it all in memory.
MAX_IMPORT_ROWS: Final = 500_000
_BACKOFF_MIN_S: Final = 0.5
_BACKOFF_MAX_S: Final = 30.0

# GB 32100-2015: 18 characters from the code set without I, O, S, V, Z.
_CREDIT_CODE = re.compile(r"^[0-9A-HJ-NPQRTUWXY]{2}\d{6}[0-9A-HJ-NPQRTUWXY]{10}$")
_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$")
_DIGITS = re.compile(r"^\d{3,20}$")

NUMBER_KINDS: Final = ("95", "96", "400", "800", "10", "12", "fixed", "mobile", "other")


@dataclass(frozen=True, slots=True)
class Column:
    """One column of an import/export file: its name and how a value is checked."""

    name: str
    #: ``text`` | ``id`` | ``date`` | ``choice`` | ``credit_code`` | ``resource`` |
    #: ``caps`` | ``hours`` | ``targets`` (a contract term, see :func:`parse_term`)
    kind: str = "text"
    required: bool = False
    choices: tuple[str, ...] = ()
    default: str = ""


@dataclass(frozen=True, slots=True)
class Table:
    """A ledger table as files see it: ``kind`` names it on the command line."""

    kind: str
    table: str
    key: str
    columns: tuple[Column, ...]

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)


KINDS: Final[Mapping[str, Table]] = {
    t.kind: t
    for t in (
        Table("customers", "ledger_customer", "id", (
            Column("id", "id", required=True),
            Column("name", required=True),
            Column("credit_code", "credit_code"),
            Column("licence"),
            Column("licence_from", "date"),
            Column("licence_until", "date"),
            Column("industry", "choice", choices=tuple(i.value for i in Industry),
                   default="other"),
            Column("business_type", "choice", choices=tuple(b.value for b in BusinessType),
                   default="other"),
            Column("contact_name"),
            Column("contact_phone"),
            Column("status", "choice", choices=tuple(s.value for s in CustomerStatus),
                   default="active"),
            Column("note"),
        )),
        Table("trunks", "ledger_trunk", "id", (
            Column("id", "id", required=True),
            Column("customer", "id", required=True),
            Column("location", required=True),
            Column("purpose"),
            Column("sources"),
            Column("note"),
        )),
        Table("numbers", "ledger_number", "resource", (
            Column("resource", "resource", required=True),
            Column("kind", "choice", choices=NUMBER_KINDS),
            Column("customer", "id", required=True),
            Column("business_name"),
            Column("purpose"),
            Column("note"),
        )),
        Table("contracts", "ledger_contract", "customer", (
            Column("customer", "id", required=True),
            Column("reference"),
            Column("caps", "caps"),
            Column("hours", "hours"),
            Column("targets", "targets"),
            Column("valid_from", "date"),
            Column("valid_until", "date"),
            Column("note"),
        )),
    )
}
#: Import order inside one transaction (foreign keys are deferred anyway).
_ORDER: Final = ("customers", "contracts", "trunks", "numbers")


def _number_kind(low: str) -> str:
    for prefix in ("400", "800", "95", "96"):
        if low.startswith(prefix):
            return prefix
    n = classify(low)
    if n.cls.value in ("fixed", "mobile"):
        return n.cls.value
    if low.startswith(("10", "12")) and len(low) <= 6:
        return low[:2]
    return "other"


def _split_resource(text: str) -> tuple[str, str]:
    low, sep, high = text.partition("-")
    low, high = low.strip(), (high.strip() if sep else low.strip())
    if not (_DIGITS.match(low) and _DIGITS.match(high)):
        raise ValueError("a number resource is digits, or a range LOW-HIGH of digits")
    if len(low) != len(high) or low > high:
        raise ValueError("a range's ends must have the same length, LOW <= HIGH")
    return low, high


_TERMS: Final[Mapping[str, type[Caps] | type[Hours] | type[Targets]]] = {
    "caps": Caps, "hours": Hours, "targets": Targets,
}


def parse_term(kind: str, text: str) -> Caps | Hours | Targets:
    """A contract's ``caps``, ``hours`` or ``targets`` cell: a YAML flow mapping with the
    policy's keys (``{caller: {per_day: 50}, trunk_cps: 5}``); ``ValueError`` says what
    is wrong with it."""
    term: Caps | Hours | Targets
    if kind == "caps":
        term = parse_terms(text, Caps, key=kind)
    elif kind == "hours":
        term = parse_terms(text, Hours, key=kind)
    else:
        term = parse_terms(text, Targets, key=kind)
    if isinstance(term, Hours) and term.holidays is not None:
        raise ValueError("hours.holidays: the ledger names no calendar file; a ledger "
                         "contract's hours use the holiday calendar of the customer's policy")
    return term


def _without_lines(value: object) -> object:
    """A nested YAML value without the ``__line__`` keys :class:`_LineLoader` adds."""
    if isinstance(value, dict):
        return {k: _without_lines(v) for k, v in value.items() if k != "__line__"}
    if isinstance(value, list):
        return [_without_lines(v) for v in value]
    return value


def _term_text(value: object) -> str:
    """A term cell as stored: text as written, a YAML mapping as one flow line."""
    if isinstance(value, dict):
        dumped = yaml.safe_dump(_without_lines(value), default_flow_style=True,
                                allow_unicode=True, sort_keys=False, width=1 << 16)
        return dumped.strip()
    return _cell_text(value)


def _cell_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        raise ValueError("expected text, got a boolean")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, int | float | str):
        return str(value).strip()
    raise ValueError(f"expected text, got {type(value).__name__}")


def parse_row(
    table: Table, raw: Mapping[str, object], *, file: str | None = None, line: int | None = None
) -> dict[str, object]:
    """A file row → column values for the database; raises :class:`ConfigError` naming
    the file, line and column of the first problem. Unknown columns are refused (a
    misspelt header must not silently drop a licence date)."""
    unknown = sorted(set(raw) - set(table.names))
    if unknown:
        raise ConfigError(f"unknown column {unknown[0]!r} for {table.kind}; expected "
                          + ", ".join(table.names), file=file, line=line, key=unknown[0])
    out: dict[str, object] = {}
    for col in table.columns:
        try:
            if col.kind in _TERMS:
                text = _term_text(raw.get(col.name))
                if text:
                    parse_term(col.kind, text)
                out[col.name] = text
                continue
            text = _cell_text(raw.get(col.name)) or col.default
            if not text:
                if col.required:
                    raise ValueError("required")
                out[col.name] = None if col.kind == "date" else ""
                continue
            if col.kind == "id" and not _ID.match(text):
                raise ValueError("ids are letters, digits and _.:- (at most 64)")
            if col.kind == "choice" and text not in col.choices:
                raise ValueError("must be one of " + ", ".join(col.choices))
            if col.kind == "credit_code" and not _CREDIT_CODE.match(text.upper()):
                raise ValueError("a unified social credit code is 18 characters (GB 32100)")
            if col.kind == "date":
                out[col.name] = dt.date.fromisoformat(text)
                continue
            if col.kind == "credit_code":
                text = text.upper()
            if col.kind == "resource":
                low, high = _split_resource(text)
                text = low if low == high else f"{low}-{high}"
                out["low"], out["high"] = low, high
            out[col.name] = text
        except ValueError as exc:
            raise ConfigError(f"{table.kind}: column {col.name!r}: {exc}", file=file,
                              line=line, key=col.name) from None
    if table.kind == "numbers" and not out["kind"]:
        out["kind"] = _number_kind(str(out["low"]))
    for a, b in (("licence_from", "licence_until"), ("valid_from", "valid_until")):
        start, end = out.get(a), out.get(b)
        if isinstance(start, dt.date) and isinstance(end, dt.date) and start > end:
            raise ConfigError(f"{table.kind}: {a} is after {b}", file=file, line=line, key=b)
    return out


def read_csv_rows(table: Table, stream: IO[str], *, file: str | None = None
                  ) -> list[dict[str, object]]:
    """Validated rows of a CSV file whose header names the table's columns."""
    reader = csv.DictReader(stream)
    if reader.fieldnames is None:
        return []
    rows: list[dict[str, object]] = []
    for raw in reader:
        if len(rows) >= MAX_IMPORT_ROWS:
            raise ConfigError(f"more than {MAX_IMPORT_ROWS} rows", file=file,
                              line=reader.line_num)
        if None in raw:
            raise ConfigError("more cells than header columns", file=file, line=reader.line_num)
        cells = {k: v for k, v in raw.items() if k is not None}
        rows.append(parse_row(table, cells, file=file, line=reader.line_num))
    return rows


class _LineLoader(BoundedSafeLoader):
    """A YAML loader that remembers the line of each mapping (``__line__``); nesting is
    bounded as in policy files."""


def _mapping_with_line(loader: _LineLoader, node: yaml.MappingNode) -> dict[str, object]:
    value = loader.construct_mapping(node, deep=True)
    out = {str(k): v for k, v in value.items()}
    out["__line__"] = node.start_mark.line + 1
    return out


_LineLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _mapping_with_line,
)


def read_yaml_rows(stream: IO[str] | str, *, file: str | None = None
                   ) -> dict[str, list[dict[str, object]]]:
    """Validated rows of a YAML ledger file: ``{customers: [...], trunks: [...], ...}``."""
    try:
        # A SafeLoader subclass: no arbitrary objects.
        doc = yaml.load(stream, Loader=_LineLoader)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        problem = getattr(exc, "problem", None)
        raise ConfigError(f"not valid YAML: {problem}" if problem else "not valid YAML", file=file,
                          line=mark.line + 1 if mark is not None else None) from exc
    if doc is None:
        return {}
    if not isinstance(doc, dict):
        raise ConfigError("a ledger file is a mapping of customers, trunks, numbers, "
                          "contracts", file=file, line=1)
    doc.pop("__line__", None)
    out: dict[str, list[dict[str, object]]] = {}
    for kind, items in doc.items():
        table = KINDS.get(kind)
        if table is None:
            raise ConfigError(f"unknown section {kind!r}; expected " + ", ".join(KINDS),
                              file=file, key=kind)
        if not isinstance(items, list):
            raise ConfigError(f"{kind} must be a list", file=file, key=kind)
        rows = out.setdefault(kind, [])
        for item in items:
            if not isinstance(item, dict):
                raise ConfigError(f"each of {kind} must be a mapping", file=file, key=kind)
            line = item.pop("__line__", None)
            rows.append(parse_row(table, item, file=file,
                                  line=line if isinstance(line, int) else None))
    return out


def _contract(row: Mapping[str, Any]) -> LedgerContract:
    """A ``ledger_contract`` row as the overlay takes it. Imports validate every term;
    a term written around them (by hand, in SQL) that does not parse is left out with
    an error in the log rather than stopping the whole ledger from applying."""
    terms: dict[str, Any] = {}
    for kind in _TERMS:
        text = row[kind]
        if not text:
            continue
        try:
            terms[kind] = parse_term(kind, text)
        except ValueError as exc:
            log.error("ledger_contract_term_unreadable", customer=row["customer"], term=kind,
                      error=str(exc))
    return LedgerContract(
        row["customer"], row["reference"], terms.get("caps"), terms.get("hours"),
        terms.get("targets"), row["valid_from"], row["valid_until"],
    )


def _export_value(value: object) -> object:
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return value


class LedgerListener:
    """Delivers ``fsp_ledger`` notifications to a callback, on a connection of its own,
    and reconnects (with backoff) when that connection is lost, then calls the callback
    with :data:`RECONNECTED`. The callback runs on the event loop and must not block."""

    def __init__(self, ledger: Ledger, callback: Callable[[str], None], *,
                 reconnect_min_s: float = _BACKOFF_MIN_S) -> None:
        self._ledger = ledger
        self._callback = callback
        self._reconnect_min_s = reconnect_min_s
        self._conn: Any = None
        self._lost = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    async def start(self) -> None:
        """Connect and listen; raises :class:`StorageError` if the first connect fails."""
        await self._connect()
        self._task = asyncio.create_task(self._watch(), name="ledger-listener")

    @property
    def connected(self) -> bool:
        return self._conn is not None and not self._conn.is_closed()

    def _notified(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        try:
            self._callback(payload)
        except Exception:
            # A faulty callback must not stop the notifications that follow.
            log.exception("ledger_listener_callback_failed", payload=payload)

    def _terminated(self, _conn: object) -> None:
        self._lost.set()

    async def _connect(self) -> None:
        conn = await self._ledger.connect(application="fs_plugin-ledger-listen")
        try:
            conn.add_termination_listener(self._terminated)
            await conn.add_listener(CHANNEL, self._notified)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            # Lost between the connect and the LISTEN (a server restarting): a fault
            # like a failed connect, so the watch retries it instead of ending.
            conn.terminate()
            raise StorageError("ledger listen failed") from exc
        except BaseException:
            conn.terminate()
            raise
        self._lost.clear()
        self._conn = conn

    async def _watch(self) -> None:
        backoff = self._reconnect_min_s
        while not self._closed:
            await self._lost.wait()
            if self._closed:
                return
            log.warning("ledger_listener_lost", retry_in_s=backoff)
            self._conn = None
            await asyncio.sleep(backoff)
            try:
                await self._connect()
            except StorageError:
                backoff = min(backoff * 2, _BACKOFF_MAX_S)
                self._lost.set()
                continue
            backoff = self._reconnect_min_s
            log.info("ledger_listener_reconnected")
            self._notified(None, 0, CHANNEL, RECONNECTED)

    async def close(self) -> None:
        self._closed = True
        self._lost.set()
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
        if self._conn is not None:
            self._conn.terminate()
            self._conn = None


class Ledger:
    """The ledger database. Create with :meth:`open`; end with :meth:`close`."""

    def __init__(self, dsn: str, *, embedded: EmbeddedPostgres | None,
                 connect_timeout_s: float, command_timeout_s: float) -> None:
        self.dsn = dsn
        self.embedded = embedded
        self.connect_timeout_s = connect_timeout_s
        self.command_timeout_s = command_timeout_s
        self._listeners: list[LedgerListener] = []

    @classmethod
    async def open(
        cls,
        dsn: str | None,
        *,
        state_dir: Path | None = None,
        connect_timeout_s: float = 5.0,
        command_timeout_s: float = 30.0,
    ) -> Ledger:
        """Open the ledger (``dsn=None``: the embedded PostgreSQL under ``state_dir/pg``,
        shared with the journal) and apply the migrations. Raises :class:`StorageError`
        when the database cannot be reached."""
        embedded = None
        if dsn is None:
            if state_dir is None:
                raise ValueError("give a DSN or a state directory for the embedded server")
            embedded = await start_embedded(state_dir / "pg")
            dsn = embedded.dsn
        ledger = cls(dsn, embedded=embedded, connect_timeout_s=connect_timeout_s,
                     command_timeout_s=command_timeout_s)
        async with ledger.connection() as conn:
            try:
                await apply_migrations(conn, load_migrations(), timeout_s=command_timeout_s)
            except (asyncpg.PostgresError, OSError, TimeoutError) as exc:
                raise StorageError("ledger migrations failed") from exc
        return ledger

    async def close(self) -> None:
        for listener in self._listeners:
            await listener.close()
        self._listeners.clear()

    async def connect(self, *, application: str = "fs_plugin-ledger") -> Any:
        """A new asyncpg connection (the caller closes it)."""
        try:
            return await asyncpg.connect(
                self.dsn, timeout=self.connect_timeout_s, command_timeout=self.command_timeout_s,
                server_settings={"application_name": application, "TimeZone": "UTC"},
            )
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            raise StorageError("ledger database unreachable") from exc

    @asynccontextmanager
    async def connection(self) -> AsyncIterator[Any]:
        """A short-lived connection; database faults come out as :class:`StorageError`.

        The desk's queries and writes are rare (people, files, scans), so a connection
        per operation costs nothing that matters and leaves no pool to keep healthy.
        """
        conn = await self.connect()
        try:
            yield conn
        except (OSError, TimeoutError, asyncpg.InterfaceError) as exc:
            raise StorageError("ledger query failed") from exc
        except asyncpg.PostgresError as exc:
            raise StorageError(f"ledger query failed: {exc.sqlstate}") from exc
        finally:
            conn.terminate()

    # ------------------------------------------------------------------ writes

    async def upsert(self, kind: str, rows: Sequence[Mapping[str, object]], *,
                     replace: bool = False) -> int:
        """Insert or update validated rows (:func:`parse_row`) of one table; with
        ``replace`` the table's other rows are deleted. Returns the rows written."""
        return (await self.import_rows({kind: list(rows)}, replace=replace))[kind]

    async def import_rows(self, sections: Mapping[str, Sequence[Mapping[str, object]]], *,
                          replace: bool = False) -> dict[str, int]:
        """Write validated rows of several tables in one transaction."""
        counts: dict[str, int] = {}
        async with self.connection() as conn, conn.transaction():
            for kind in _ORDER:
                if kind not in sections:
                    continue
                table = KINDS[kind]
                rows = sections[kind]
                columns = list(table.names)
                if kind == "numbers":
                    columns += ["low", "high"]
                if replace:
                    keys = [str(r[table.key]) for r in rows]
                    await conn.execute(
                        f"DELETE FROM {table.table} WHERE NOT ({table.key} = ANY($1::text[]))",
                        keys,
                    )
                if rows:
                    cols = ", ".join(columns)
                    marks = ", ".join(f"${i}" for i in range(1, len(columns) + 1))
                    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c != table.key)
                    await conn.executemany(
                        f"INSERT INTO {table.table} ({cols}) VALUES ({marks}) "
                        f"ON CONFLICT ({table.key}) DO UPDATE SET {updates}, updated_at = now()",
                        [tuple(r[c] for c in columns) for r in rows],
                    )
                counts[kind] = len(rows)
        log.info("ledger_imported", replace=replace, **counts)
        return counts

    async def import_csv(self, kind: str, path: Path, *, replace: bool = False) -> int:
        table = KINDS[kind]
        with path.open(encoding="utf-8-sig", newline="") as f:
            rows = read_csv_rows(table, f, file=str(path))
        return await self.upsert(kind, rows, replace=replace)

    async def import_yaml(self, path: Path, *, replace: bool = False) -> dict[str, int]:
        with path.open(encoding="utf-8") as f:
            sections = read_yaml_rows(f, file=str(path))
        return await self.import_rows(sections, replace=replace)

    async def delete(self, kind: str, key: str) -> bool:
        table = KINDS[kind]
        async with self.connection() as conn:
            status = await conn.execute(
                f"DELETE FROM {table.table} WHERE {table.key} = $1", key)
        return bool(status != "DELETE 0")

    # ------------------------------------------------------------------ reads

    async def rows(self, kind: str) -> list[dict[str, object]]:
        """Every row of one table, in key order, as file values (dates as ``date``)."""
        table = KINDS[kind]
        cols = ", ".join(table.names)
        async with self.connection() as conn:
            records = await conn.fetch(
                f"SELECT {cols} FROM {table.table} ORDER BY {table.key}")
        return [dict(r) for r in records]

    async def export_yaml(self, out: IO[str]) -> dict[str, int]:
        doc = {kind: [{k: _export_value(v) for k, v in row.items() if v not in (None, "")}
                      for row in await self.rows(kind)] for kind in _ORDER}
        yaml.safe_dump(doc, out, allow_unicode=True, sort_keys=False)
        return {k: len(v) for k, v in doc.items()}

    async def export_csv(self, kind: str, out: IO[str]) -> int:
        table = KINDS[kind]
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(table.names)
        rows = await self.rows(kind)
        for row in rows:
            writer.writerow(["" if row[c] is None else _export_value(row[c])
                             for c in table.names])
        return len(rows)

    async def customers(self, *, status: str | None = None) -> list[dict[str, object]]:
        rows = await self.rows("customers")
        return [r for r in rows if status is None or r["status"] == status]

    async def customer(self, customer_id: str) -> dict[str, Any] | None:
        """One customer with its trunks, number resources, contract and credit record."""
        async with self.connection() as conn:
            rec = await conn.fetchrow("SELECT * FROM ledger_customer WHERE id = $1",
                                      customer_id)
            if rec is None:
                return None
            out = dict(rec)
            out["trunks"] = [dict(r) for r in await conn.fetch(
                "SELECT * FROM ledger_trunk WHERE customer = $1 ORDER BY id", customer_id)]
            out["numbers"] = [dict(r) for r in await conn.fetch(
                "SELECT * FROM ledger_number WHERE customer = $1 ORDER BY resource",
                customer_id)]
            contract = await conn.fetchrow(
                "SELECT * FROM ledger_contract WHERE customer = $1", customer_id)
            out["contract"] = dict(contract) if contract is not None else None
            out["credit"] = [dict(r) for r in await conn.fetch(
                "SELECT * FROM ledger_credit WHERE customer = $1 ORDER BY recorded_at, id",
                customer_id)]
        return out

    async def number_owner(self, number: str) -> list[dict[str, object]]:
        """Real-time query of an outbound business number: the resources holding it,
        with the entrusting enterprise, business name and purpose (targets, content)."""
        n = classify(user_part(number))
        digits = n.national or n.digits
        async with self.connection() as conn:
            records = await conn.fetch(
                """
                SELECT n.resource, n.kind, n.business_name, n.purpose, n.customer,
                       c.name AS customer_name, c.credit_code, c.industry, c.status,
                       c.licence_until
                FROM ledger_number n JOIN ledger_customer c ON c.id = n.customer
                WHERE length(n.low) = length($1) AND n.low <= $1 AND n.high >= $1
                ORDER BY n.resource
                """,
                digits,
            )
        return [dict(r) for r in records]

    async def state(self) -> LedgerState:
        """What the screening snapshot takes from the ledger (see ``policy/overlay.py``)."""
        async with self.connection() as conn, conn.transaction(isolation="repeatable_read",
                                                               readonly=True):
            customers = await conn.fetch(
                "SELECT id, status, licence_until FROM ledger_customer")
            # The latest blacklist-or-lift record of each customer decides.
            marks = await conn.fetch(
                """
                SELECT DISTINCT ON (customer) customer, kind, note
                FROM ledger_credit WHERE kind IN ('blacklist', 'lift')
                ORDER BY customer, recorded_at DESC, id DESC
                """)
            labels = await conn.fetch(
                "SELECT number, category, label, source, confidence, expires_at "
                "FROM ledger_label")
            contracts = await conn.fetch(
                "SELECT customer, reference, caps, hours, targets, valid_from, valid_until "
                "FROM ledger_contract")
            numbers = await conn.fetch(
                "SELECT customer, resource FROM ledger_number ORDER BY customer, resource")
        resources: dict[str, list[str]] = {}
        for r in numbers:
            resources.setdefault(r["customer"], []).append(r["resource"])
        return LedgerState(
            customers={
                r["id"]: LedgerCustomer(r["id"], CustomerStatus(r["status"]),
                                        r["licence_until"])
                for r in customers
            },
            blacklisted={r["customer"]: r["note"] or "blacklisted" for r in marks
                         if r["kind"] == "blacklist"},
            labels=tuple(
                LedgerLabel(
                    r["number"], LabelCategory(r["category"]), r["label"], r["source"],
                    float(r["confidence"]),
                    r["expires_at"].timestamp() if r["expires_at"] is not None else None,
                )
                for r in labels
            ),
            contracts={r["customer"]: _contract(r) for r in contracts},
            numbers={cid: tuple(rs) for cid, rs in resources.items()},
        )

    # ------------------------------------------------------------------ notifications

    async def listen(self, callback: Callable[[str], None], *,
                     reconnect_min_s: float = _BACKOFF_MIN_S) -> LedgerListener:
        """Call ``callback(table_name)`` on every committed ledger write, from any client
        (:data:`RECONNECTED` after a lost connection, retried from ``reconnect_min_s``
        doubling up to 30 s). Closed with :meth:`close`."""
        listener = LedgerListener(self, callback, reconnect_min_s=reconnect_min_s)
        await listener.start()
        self._listeners.append(listener)
        return listener



class LedgerFeed:
    """Keeps ``on_state`` supplied with the ledger's current :class:`LedgerState`: once at
    :meth:`start`, then after every committed write (notifications arriving while a
    load runs are folded into one more load) and after a lost listener connection.

    What a service needs to re-apply the overlay on every switch without a restart::

        feed = LedgerFeed(ledger, lambda st: swap(apply_ledger(yaml_snapshot, st, now=...)))
        await feed.start()

    A failed load keeps the last state (and is retried after ``retry_s``): a database
    outage must not lift a blacklisting.
    """

    def __init__(self, ledger: Ledger, on_state: Callable[[LedgerState], None], *,
                 retry_s: float = 5.0, reconnect_min_s: float = _BACKOFF_MIN_S) -> None:
        self._ledger = ledger
        self._on_state = on_state
        self._retry_s = retry_s
        self._reconnect_min_s = reconnect_min_s
        self._dirty = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: LedgerListener | None = None
        self.loads = 0
        self.state: LedgerState | None = None

    async def start(self) -> LedgerState:
        """Listen, load and deliver the first state; raises :class:`StorageError`."""
        # Listen before the first load: a write between the two is then seen twice
        # (harmless), never missed.
        self._listener = await self._ledger.listen(
            lambda _table: self._dirty.set(), reconnect_min_s=self._reconnect_min_s)
        try:
            state = await self._load()
        except BaseException:
            await self.close()
            raise
        self._task = asyncio.create_task(self._run(), name="ledger-feed")
        return state

    async def _load(self) -> LedgerState:
        state = await self._ledger.state()
        self.loads += 1
        self.state = state
        self._on_state(state)
        return state

    async def _run(self) -> None:
        while True:
            await self._dirty.wait()
            self._dirty.clear()
            try:
                await self._load()
            except StorageError:
                log.warning("ledger_feed_load_failed", retry_in_s=self._retry_s)
                await asyncio.sleep(self._retry_s)
                self._dirty.set()
            except Exception:
                # The callback's fault; the next change gets its own attempt.
                log.exception("ledger_feed_callback_failed")

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None
        if self._listener is not None:
            await self._listener.close()
            self._listener = None
