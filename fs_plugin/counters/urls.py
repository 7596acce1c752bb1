"""Counter-store URL parsing that needs no client library (used by ``open_store``)."""

from __future__ import annotations

__all__ = ["parse_cluster_url"]


def parse_cluster_url(url: str) -> tuple[bool, str | None, str | None, list[tuple[str, int]]]:
    """``redis[s]+cluster://[user[:password]@]host:port[,host:port...]`` →
    (tls, username, password, nodes). IPv6 hosts go in brackets: ``[::1]:7000``."""
    scheme, sep, rest = url.partition("://")
    if not sep or scheme not in ("redis+cluster", "rediss+cluster"):
        raise ValueError(f"not a redis+cluster URL: {url!r}")
    rest = rest.split("/", 1)[0].split("?", 1)[0]
    username = password = None
    if "@" in rest:
        creds, _, rest = rest.rpartition("@")
        user_part, has_password, password_part = creds.partition(":")
        username = user_part or None
        password = password_part if has_password else None
    nodes: list[tuple[str, int]] = []
    for item in rest.split(","):
        host, colon, port_text = item.strip().rpartition(":")
        if not colon or not host or not port_text.isdigit():
            raise ValueError(f"cluster node must be host:port, got {item!r}")
        nodes.append((host.strip("[]"), int(port_text)))
    return scheme == "rediss+cluster", username, password, nodes
