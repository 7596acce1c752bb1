"""Pure pieces of the counter store: names, patterns, URLs, op validation, memory bounds."""

from __future__ import annotations

import fnmatch
import subprocess
import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from fs_plugin.clock import ManualClock
from fs_plugin.counters import (
    Acquire,
    CountResult,
    Distinct,
    Flag,
    FlagResult,
    Get,
    GetFlag,
    Hit,
    HitResult,
    Release,
    open_store,
)
from fs_plugin.counters.keys import Kind, StoredKey, glob_to_regex, stored_key
from fs_plugin.counters.memory import MemoryStore
from fs_plugin.counters.redis_store import RedisClusterStore, RedisStore
from fs_plugin.counters.urls import parse_cluster_url
from fs_plugin.errors import ConfigError, StorageError


def test_stored_key_carries_the_tag_as_hash_tag() -> None:
    assert stored_key("fsp", Hit("caller:1", 60)) == "fsp:{caller:1}:rate:caller:1"
    assert stored_key("fsp", Get("caller:1")) == "fsp:{caller:1}:rate:caller:1"
    assert stored_key("fsp", Distinct("d", "m", 60, tag="t")) == "fsp:{t}:distinct:d"
    assert stored_key("x", Acquire("c", "u", 1, 1)) == "x:{c}:lease:c"
    assert stored_key("x", Release("c", "u")) == "x:{c}:lease:c"
    assert stored_key("x", Flag("f", 1)) == stored_key("x", GetFlag("f")) == "x:{f}:flag:f"


_names = st.text(
    alphabet=st.characters(exclude_characters="{}", exclude_categories=["Cs"]), min_size=1
)


@given(tag=_names, key=_names)
def test_stored_key_parses_back(tag: str, key: str) -> None:
    name = stored_key("fsp", Hit(key, 1, tag=tag))
    assert StoredKey.parse("fsp", name) == StoredKey(tag=tag, kind=Kind.RATE, key=key)


@pytest.mark.parametrize(
    "name",
    ["other:{a}:rate:a", "fsp:{a}:nokind:a", "fsp:a:rate:a", "fsp:{a}:rate", "fsp:{}:rate:a"],
)
def test_foreign_names_do_not_parse(name: str) -> None:
    assert StoredKey.parse("fsp", name) is None


@pytest.mark.parametrize(
    ("pattern", "name", "matches"),
    [
        ("*", "anything at all", True),
        ("{caller:1}:*", "{caller:1}:rate:x", True),
        ("{caller:1}:*", "{caller:10}:rate:x", False),
        ("*:rate:*", "{a}:rate:a", True),
        ("h?llo", "hello", True),
        ("h?llo", "hllo", False),
        ("h[ae]llo", "hallo", True),
        ("h[^e]llo", "hello", False),
        ("h[^e]llo", "hallo", True),
        ("h[a-c]llo", "hbllo", True),
        ("h[a-c]llo", "hdllo", False),
        ("a\\*b", "a*b", True),
        ("a\\*b", "axb", False),
        ("a.b", "axb", False),
        ("a(b", "a(b", True),
        ("[]x", "x", False),
    ],
)
def test_glob_speaks_the_redis_dialect(pattern: str, name: str, matches: bool) -> None:
    assert bool(glob_to_regex(pattern).fullmatch(name)) is matches


@given(st.text(alphabet="ab*?", max_size=8), st.text(alphabet="ab*?", max_size=8))
def test_glob_agrees_with_fnmatch_on_common_syntax(pattern: str, name: str) -> None:
    assert bool(glob_to_regex(pattern).fullmatch(name)) == fnmatch.fnmatchcase(name, pattern)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Hit("", 60),
        lambda: Hit("a{b", 60),
        lambda: Hit("a", 60, tag="t}"),
        lambda: Hit("a", 0),
        lambda: Hit("a", 60, cost=-1),
        lambda: Hit("a", 60, limit=-1),
        lambda: Distinct("a", "m", -1),
        lambda: Distinct("a", "m", 60, cap=0),
        lambda: Acquire("a", "u", -1, 60),
        lambda: Acquire("a", "u", 1, 0),
        lambda: Flag("a", 0),
        lambda: GetFlag("{a}"),
    ],
)
def test_invalid_ops_are_refused_at_construction(make: object) -> None:
    with pytest.raises(ValueError):
        make()  # type: ignore[operator]


def test_cluster_urls() -> None:
    assert parse_cluster_url("redis+cluster://10.0.0.1:7000,10.0.0.2:7001") == (
        False,
        None,
        None,
        [("10.0.0.1", 7000), ("10.0.0.2", 7001)],
    )
    assert parse_cluster_url("rediss+cluster://fsp:s3cr:et@[::1]:7000/") == (
        True,
        "fsp",
        "s3cr:et",
        [("::1", 7000)],
    )
    with pytest.raises(ValueError):
        parse_cluster_url("redis+cluster://host-without-port")


async def test_open_store_picks_the_backend_by_scheme() -> None:
    stores = [
        open_store("memory://"),
        open_store("redis://127.0.0.1:1/0"),
        open_store("rediss://127.0.0.1:1/0"),
        open_store("redis+cluster://127.0.0.1:1"),
    ]
    try:
        assert [type(s) for s in stores] == [
            MemoryStore,
            RedisStore,
            RedisStore,
            RedisClusterStore,
        ]
    finally:
        for store in stores:
            await store.close()
    assert [s.namespace for s in stores] == ["fsp"] * 4
    for bad in ["postgres://x", "127.0.0.1:6379", "redis+cluster://nohostport"]:
        with pytest.raises(ConfigError):
            open_store(bad)
    with pytest.raises(ConfigError):
        open_store("memory://", timeout_s=0)


async def test_memory_store_is_bounded() -> None:
    clock = ManualClock()
    store = MemoryStore(clock=clock, max_keys=3)
    await store.execute([Hit("a", 10), Hit("b", 10), Flag("c", 5)])
    # Reads and updates of existing keys still work at the bound ...
    assert await store.execute([Hit("a", 10), GetFlag("zz"), Get("zz")]) == (
        HitResult(2, False, True),
        FlagResult(None, None),
        CountResult(0),
    )
    # ... a batch that would create a key fails whole, without applying any op.
    with pytest.raises(StorageError):
        await store.execute([Hit("a", 10), Hit("d", 10)])
    assert (await store.execute([Hit("a", 10, peek=True)]))[0] == HitResult(2, False, False)
    # Expired keys free their room.
    clock.advance(6)
    assert await store.execute([Flag("d", 5)]) == (FlagResult("1", 5.0),)


async def test_memory_store_refuses_use_after_close() -> None:
    store = MemoryStore()
    await store.close()
    with pytest.raises(StorageError):
        await store.execute([Hit("a", 10)])


def test_importing_the_ops_loads_no_network_client() -> None:
    # The screening engine builds ops; it must not pull redis in (layer rule in DESIGN).
    code = (
        "import sys; import fs_plugin.counters; from fs_plugin.counters import Hit, open_store;"
        "open_store('memory://');"
        "sys.exit(1 if any(m.split('.')[0] in ('redis', 'asyncio') for m in sys.modules) else 0)"
    )
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
