"""Reading a ``redis://`` or ``rediss://`` URL and its options into `RedisOptions`.

``redis://[[username]:password@]host[:port][/db][?option=value&...]``. Options come from
the query string and from keyword arguments; a keyword argument wins over the query. The
password never leaves this module except as a connection argument: `RedisOptions.url`
shows it as ``***`` and its repr leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from moorage.errors import ConfigurationError
from moorage.locking import DEFAULT_HOLD_TIMEOUT
from moorage.options import (
    parse_bool,
    parse_count,
    parse_optional_seconds,
    parse_positive,
    parse_text,
)

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_RECHECK_INTERVAL",
    "DEFAULT_RETRIES",
    "DEFAULT_SOCKET_TIMEOUT",
    "RedisOptions",
    "mask_password",
    "parse_options",
]

#: Namespace of the lock keys: the lock on ``"a/b"`` is the Redis key ``moorage:lock:a/b``.
DEFAULT_KEY_PREFIX = "moorage:lock:"
#: Seconds to wait for a connection and for each reply.
DEFAULT_SOCKET_TIMEOUT = 5.0
#: How often a failed command is retried after a connection error or a timeout.
DEFAULT_RETRIES = 3
#: The longest a waiter listens for a release before asking Redis again (seconds).
DEFAULT_RECHECK_INTERVAL = 5.0

_SSL_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
KNOWN_OPTIONS = frozenset(
    {
        "hold_timeout",
        "socket_timeout",
        "socket_connect_timeout",
        "retries",
        "key_prefix",
        "recheck_interval",
        "db",
        "username",
        "password",
        "client_name",
        "ssl_check_hostname",
        *_SSL_OPTIONS,
    }
)


@dataclass(frozen=True)
class RedisOptions:
    """Where the Redis server is and how to talk to it, as given by a URL and options."""

    scheme: str
    host: str
    port: int
    db: int
    username: str | None
    password: str | None = field(repr=False)
    hold_timeout: float | None
    socket_timeout: float | None
    socket_connect_timeout: float | None
    retries: int
    key_prefix: str
    recheck_interval: float
    client_name: str | None = None
    ssl: Mapping[str, Any] = field(default_factory=dict)

    @property
    def url(self) -> str:
        """The URL without query and with the password replaced by ``***``."""
        userinfo = ""
        if self.username or self.password:
            userinfo = quote(self.username or "", safe="")
            userinfo += ":***@" if self.password else "@"
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{userinfo}{host}:{self.port}/{self.db}"

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments shared by ``redis.Redis`` and ``redis.asyncio.Redis``."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "db": self.db,
            "username": self.username,
            "password": self.password,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "client_name": self.client_name,
            "decode_responses": False,
        }
        if self.scheme == "rediss":
            kwargs["ssl"] = True
            kwargs.update(self.ssl)
        return kwargs


def mask_password(text: str, password: str | None) -> str:
    """``text`` with every occurrence of ``password`` replaced by ``***``."""
    if not password:
        return text
    return text.replace(password, "***").replace(quote(password, safe=""), "***")


def parse_options(
    url: str, hold_timeout: object = DEFAULT_HOLD_TIMEOUT, options: Mapping[str, Any] | None = None
) -> RedisOptions:
    """`RedisOptions` from a URL, the ``hold_timeout`` argument and keyword options.

    A ``hold_timeout`` in the URL query applies when the argument is left at its default
    (that is how the core passes the ``lock_hold_timeout`` setting); every other option
    given as a keyword wins over the same option in the query.
    """
    if not isinstance(url, str):
        raise ConfigurationError(f"a Redis lock manager takes a redis:// URL, not {url!r}")
    parts = urlsplit(url)
    try:
        port = parts.port or 6379
        password = unquote(parts.password) if parts.password is not None else None
    except ValueError:
        raise ConfigurationError(
            f"the port in {_shown(url, parts.password)!r} is not a number from 1 to 65535"
        ) from None
    shown = _shown(url, password)
    scheme = parts.scheme.lower()
    if scheme not in ("redis", "rediss"):
        raise ConfigurationError(
            f"a Redis lock manager takes redis:// or rediss:// URLs, not {shown!r}"
        )
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    given = {**query, **(options or {})}
    unknown = sorted(set(given) - KNOWN_OPTIONS)
    if unknown:
        raise ConfigurationError(
            f"unknown option {', '.join(map(repr, unknown))} for the Redis lock manager at "
            f"{shown}; accepted options: {', '.join(sorted(KNOWN_OPTIONS))}"
        )
    if "hold_timeout" in query and hold_timeout == DEFAULT_HOLD_TIMEOUT:
        hold_timeout = query["hold_timeout"]
    username = unquote(parts.username) if parts.username else None
    ssl = {name: given[name] for name in _SSL_OPTIONS if name in given}
    if "ssl_check_hostname" in given:
        ssl["ssl_check_hostname"] = parse_bool("ssl_check_hostname", given["ssl_check_hostname"])
    if ssl and scheme != "rediss":
        raise ConfigurationError(
            f"options {', '.join(sorted(ssl))} need TLS; write the URL as rediss:// "
            f"instead of {shown!r}"
        )
    return RedisOptions(
        scheme=scheme,
        host=unquote(parts.hostname or "localhost"),
        port=port,
        db=_db(parts.path, given.get("db"), shown),
        username=parse_text("username", given.get("username", username)),
        password=parse_text("password", given.get("password", password)),
        hold_timeout=parse_optional_seconds("hold_timeout", hold_timeout),
        socket_timeout=parse_optional_seconds(
            "socket_timeout", given.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT)
        ),
        socket_connect_timeout=parse_optional_seconds(
            "socket_connect_timeout", given.get("socket_connect_timeout", DEFAULT_SOCKET_TIMEOUT)
        ),
        retries=parse_count("retries", given.get("retries", DEFAULT_RETRIES)),
        key_prefix=parse_text("key_prefix", given.get("key_prefix", DEFAULT_KEY_PREFIX)) or "",
        recheck_interval=parse_positive(
            "recheck_interval", given.get("recheck_interval", DEFAULT_RECHECK_INTERVAL)
        ),
        client_name=parse_text("client_name", given.get("client_name")),
        ssl=ssl,
    )


def _shown(url: str, password: str | None) -> str:
    """``url`` as it may appear in a message: no query, no password."""
    return mask_password(url.split("?", 1)[0], password)


def _db(path: str, option: object, shown: str) -> int:
    text = path.strip("/")
    if text and option is not None and str(option).strip() != text:
        raise ConfigurationError(
            f"{shown!r} names database {text} in its path and {option!r} in the db option; "
            "give it once"
        )
    raw = text or (None if option is None else str(option).strip())
    if raw is None:
        return 0
    if not raw.isdigit():
        raise ConfigurationError(
            f"the database in {shown!r} must be a number such as /0, not {raw!r}"
        )
    return int(raw)
