"""Reading a ``redis://`` or ``rediss://`` URL and its options into `RedisOptions`.

``redis://[[username]:password@]host[:port][/db][?option=value&...]``. Options come from
the query string and from keyword arguments; a keyword argument wins over the query.
Where the server is (``host``, ``port``, ``db``, ``ssl``, ``username``, ``password``) may
be given as keywords instead of a URL; a keyword that contradicts the URL is an error.
The password never leaves this module except as a connection argument: `RedisOptions.url`
shows it as ``***`` and its repr leaves it out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from moorage.config import options as shared
from moorage.config.options import (
    Parser,
    as_given,
    parse_bool,
    parse_count,
    parse_optional_seconds,
    parse_positive,
    parse_text,
)
from moorage.config.secrets import MASK, mask_secrets
from moorage.errors import ConfigurationError
from moorage.locking import DEFAULT_HOLD_TIMEOUT

__all__ = [
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_RECHECK_INTERVAL",
    "DEFAULT_RETRIES",
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFAULT_URL",
    "RedisOptions",
    "mask_password",
    "parse_options",
]

#: Where the manager connects when given neither a URL nor a host.
DEFAULT_URL = "redis://localhost:6379/0"
#: Namespace of the lock keys: the lock on ``"a/b"`` is the Redis key ``moorage:lock:a/b``.
DEFAULT_KEY_PREFIX = "moorage:lock:"
#: Seconds to wait for a connection and for each reply.
DEFAULT_SOCKET_TIMEOUT = 5.0
#: How often a failed command is retried after a connection error or a timeout.
DEFAULT_RETRIES = 3
#: The longest a waiter listens for a release before asking Redis again (seconds).
DEFAULT_RECHECK_INTERVAL = 5.0

_SSL_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
#: Every option and its parser. Where the server is (``db``, ``username``, ``password``)
#: and ``hold_timeout`` are kept as given: they are checked against the URL first.
_PARSERS: dict[str, Parser] = {
    **dict.fromkeys(("hold_timeout", "db", "username", "password", *_SSL_OPTIONS), as_given),
    "socket_timeout": parse_optional_seconds,
    "socket_connect_timeout": parse_optional_seconds,
    "retries": parse_count,
    "key_prefix": parse_text,
    "recheck_interval": parse_positive,
    "client_name": parse_text,
    "ssl_check_hostname": parse_bool,
}
#: The names of every option.
KNOWN_OPTIONS = frozenset(_PARSERS)


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
            userinfo += f":{MASK}@" if self.password else "@"
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

    def __hash__(self) -> int:
        # Equality is the generated one (every field, the password included); the TLS
        # options are a mapping, so they are hashed as sorted pairs.
        fields = [getattr(self, name) for name in self.__dataclass_fields__ if name != "ssl"]
        return hash((*fields, tuple(sorted(self.ssl.items(), key=lambda item: item[0]))))


def mask_password(text: str, password: str | None) -> str:
    """``text`` with every occurrence of ``password`` (also URL-quoted) as ``***``."""
    return mask_secrets(text, (password,))


def parse_options(
    url: str | None,
    hold_timeout: object = DEFAULT_HOLD_TIMEOUT,
    options: Mapping[str, Any] | None = None,
    *,
    host: str | None = None,
    port: int | str | None = None,
    ssl: bool | str | None = None,
) -> RedisOptions:
    """`RedisOptions` from a URL, the ``hold_timeout`` argument and keyword options.

    A ``hold_timeout`` in the URL query applies when the argument is left at its default
    (that is how the core passes the ``lock_hold_timeout`` setting); every other option
    given as a keyword wins over the same option in the query. ``host``, ``port``,
    ``ssl`` (and the ``db``, ``username`` and ``password`` options) may stand in for the
    URL or fill in what it leaves out (``redis://`` has no host); a value the URL states
    differently is a `ConfigurationError` naming both.
    """
    if host is not None:
        _netloc(host, 6379)  # validates
    if url is None:
        url = _url_from(host, port, ssl)
    elif host is not None or port is not None or ssl is not None:
        url = _merged_url(url, host, port, ssl)
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

    def unknown(names: list[str]) -> str:
        return (
            f"unknown option {', '.join(map(repr, names))} for the Redis lock manager at "
            f"{shown}; accepted options: {', '.join(sorted(KNOWN_OPTIONS))}"
        )

    given = shared.parse_options({**query, **(options or {})}, _PARSERS, unknown=unknown)
    if "hold_timeout" in query and hold_timeout == DEFAULT_HOLD_TIMEOUT:
        hold_timeout = query["hold_timeout"]
    username = unquote(parts.username) if parts.username else None
    for name, in_url in (("username", username), ("password", password)):
        _agree(name, in_url, query.get(name), (options or {}).get(name), shown)
    tls_names = (*_SSL_OPTIONS, "ssl_check_hostname")
    tls = {name: given[name] for name in tls_names if name in given}
    if tls and scheme != "rediss":
        raise ConfigurationError(
            f"options {', '.join(sorted(tls))} need TLS; write the URL as rediss:// "
            f"instead of {shown!r}"
        )
    _agree("db", None, query.get("db"), (options or {}).get("db"), shown)
    return RedisOptions(
        scheme=scheme,
        host=unquote(parts.hostname or "localhost"),
        port=port,
        db=_db(parts.path, given.get("db"), shown),
        username=parse_text("username", given.get("username", username)),
        password=parse_text("password", given.get("password", password)),
        hold_timeout=parse_optional_seconds("hold_timeout", hold_timeout),
        socket_timeout=given.get("socket_timeout", DEFAULT_SOCKET_TIMEOUT),
        socket_connect_timeout=given.get("socket_connect_timeout", DEFAULT_SOCKET_TIMEOUT),
        retries=given.get("retries", DEFAULT_RETRIES),
        key_prefix=given.get("key_prefix", DEFAULT_KEY_PREFIX) or "",
        recheck_interval=given.get("recheck_interval", DEFAULT_RECHECK_INTERVAL),
        client_name=given.get("client_name"),
        ssl=tls,
    )


def _shown(url: str, password: str | None) -> str:
    """``url`` as it may appear in a message: no query, no password."""
    return mask_password(url.split("?", 1)[0], password)


def _url_from(host: str | None, port: int | str | None, ssl: bool | str | None) -> str:
    """The URL that keywords alone describe (``DEFAULT_URL`` when none are given)."""
    if host is None and port is None and ssl is None:
        return DEFAULT_URL
    scheme = "rediss" if ssl is not None and parse_bool("ssl", ssl) else "redis"
    return f"{scheme}://{_netloc(host or 'localhost', _port(port) or 6379)}"


def _netloc(host: str, port: int) -> str:
    if not isinstance(host, str) or not host.strip() or any(c in host for c in "/?#@"):
        raise ConfigurationError(f"host must be a host name or address, not {host!r}")
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _port(port: int | str | None) -> int | None:
    if port is None:
        return None
    text = str(port).strip()
    if isinstance(port, bool) or not text.isdigit() or not 0 < int(text) < 65536:
        raise ConfigurationError(f"port must be a number from 1 to 65535, not {port!r}")
    return int(text)


def _merged_url(url: str, host: str | None, port: int | str | None, ssl: object) -> str:
    """``url`` with the parts it leaves out taken from the keywords; a keyword that
    contradicts the URL is an error naming both."""
    if not isinstance(url, str):
        return url  # parse_options reports it
    parts = urlsplit(url)
    try:
        password = unquote(parts.password) if parts.password is not None else None
        url_port = parts.port
    except ValueError:
        return url  # parse_options reports the bad port
    shown = _shown(url, password)
    scheme = parts.scheme.lower()
    if ssl is not None and scheme in ("redis", "rediss"):
        wanted = parse_bool("ssl", ssl)
        if wanted != (scheme == "rediss"):
            raise ConfigurationError(
                f"the URL {shown!r} and the keyword ssl={wanted!r} disagree ({scheme}:// "
                f"means {'TLS' if scheme == 'rediss' else 'no TLS'}); say it once: write the "
                "URL as rediss:// for TLS or redis:// without, and leave out ssl="
            )
    url_host = unquote(parts.hostname) if parts.hostname else None
    given_port = _port(port)
    if host is not None and url_host is not None and host.strip("[]") != url_host:
        raise ConfigurationError(
            f"the URL {shown!r} names host {url_host!r} and the keyword host={host!r} "
            "another; give the host once, in the URL or as a keyword"
        )
    if given_port is not None and url_port is not None and given_port != url_port:
        raise ConfigurationError(
            f"the URL {shown!r} names port {url_port} and the keyword port={given_port} "
            "another; give the port once, in the URL or as a keyword"
        )
    if (host is None or url_host is not None) and (given_port is None or url_port is not None):
        return url
    netloc = _netloc(url_host or host or "localhost", url_port or given_port or 6379)
    userinfo = parts.netloc.rpartition("@")[0]
    if userinfo:
        netloc = f"{userinfo}@{netloc}"
    query = f"?{parts.query}" if parts.query else ""
    return f"{parts.scheme}://{netloc}{parts.path}{query}"


def _agree(name: str, in_url: object, in_query: object, keyword: object, shown: str) -> None:
    """A setting given in the URL, its query and as a keyword must be given alike."""
    places = (("the URL", in_url), ("the URL's query", in_query), ("the keyword", keyword))
    given = [(where, value) for where, value in places if value is not None]
    (first, one), *rest = given or [("", None)]
    differing = [(where, value) for where, value in rest if _same(name, value) != _same(name, one)]
    if not differing:
        return
    second, other = differing[0]
    if name == "password":  # never shown, not even in part
        detail = f"{first} has a password and {second} a different one"
    else:
        detail = f"{first} gives {name} {one!r} and {second} {other!r}"
    raise ConfigurationError(
        f"for {shown!r}, {detail}; give the {name} once, in the URL or as a keyword"
    )


def _same(name: str, value: object) -> object:
    """A value as compared: a database number as text, anything else as given."""
    return str(value).strip() if name == "db" else value


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
