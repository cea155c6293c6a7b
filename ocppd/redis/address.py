"""Where Redis is: ``redis://[:password@]HOST[:PORT][/DB]``."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import attrs

#: Redis databases a URL may select.
MAX_DB = 255


@attrs.frozen
class RedisAddress:
    host: str
    port: int
    db: int
    password: str | None

    def __str__(self) -> str:
        return f"redis://{self.host}:{self.port}/{self.db}"


def parse_redis_url(url: str) -> RedisAddress:
    """``redis://[:password@]HOST[:PORT][/DB]``; ValueError saying what is wrong."""
    parts = urlsplit(url.strip())
    if parts.scheme != "redis":
        raise ValueError(f"{url!r} is not a redis://HOST:PORT/DB URL")
    if not parts.hostname:
        raise ValueError(f"{url!r} names no host")
    try:
        port = parts.port or 6379
    except ValueError:
        raise ValueError(f"{url!r} has no valid port") from None
    path = parts.path.strip("/") or "0"
    if not path.isdigit() or int(path) > MAX_DB:
        raise ValueError(f"{url!r}: the database must be a number from 0 to {MAX_DB}")
    password = unquote(parts.password) if parts.password else None
    return RedisAddress(parts.hostname, port, int(path), password)
