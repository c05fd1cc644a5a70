"""Reading a Redis URL and its options into `RedisOptions`.

Three kinds of deployment, each with and without TLS (``rediss``):

- one server: ``redis://[[username]:password@]host[:port][/db][?option=value&...]``;
- Sentinel: ``redis+sentinel://[[username]:password@]host1[:port],host2[:port]/service/db``
  names the sentinels (port 26379 unless given) and the service they monitor; the
  credentials are the master's (``sentinel_username`` / ``sentinel_password`` give the
  sentinels' own, if they ask for any);
- Cluster: ``redis+cluster://[[username]:password@]host1[:port],host2[:port][/]`` names
  one or more nodes to learn the cluster from (port 6379 unless given); a cluster has
  only database 0.

Options come from the query string and from keyword arguments; a keyword argument wins
over the query. Where a single server is (``host``, ``port``, ``db``, ``ssl``,
``username``, ``password``) may be given as keywords instead of a URL; a keyword that
contradicts the URL is an error. The password never leaves this module except as a
connection argument: `RedisOptions.url` shows it as ``***`` and its repr leaves it out.
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
    "CLUSTER",
    "DEFAULT_KEY_PREFIX",
    "DEFAULT_RECHECK_INTERVAL",
    "DEFAULT_RETRIES",
    "DEFAULT_SOCKET_TIMEOUT",
    "DEFAULT_URL",
    "MODES",
    "SCHEMES",
    "SENTINEL",
    "SINGLE",
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

#: The deployment kinds: one server, a Sentinel-watched master, a Cluster.
SINGLE, SENTINEL, CLUSTER = "single", "sentinel", "cluster"
MODES = (SINGLE, SENTINEL, CLUSTER)
#: Every URL scheme the manager serves, and the mode each means.
SCHEMES: dict[str, str] = {
    "redis": SINGLE,
    "rediss": SINGLE,
    "redis+sentinel": SENTINEL,
    "rediss+sentinel": SENTINEL,
    "redis+cluster": CLUSTER,
    "rediss+cluster": CLUSTER,
}
#: The port of a host named without one, by mode.
_DEFAULT_PORTS = {SINGLE: 6379, SENTINEL: 26379, CLUSTER: 6379}
_SENTINEL_OPTIONS = ("sentinel_username", "sentinel_password")

_SSL_OPTIONS = ("ssl_ca_certs", "ssl_certfile", "ssl_keyfile", "ssl_cert_reqs")
#: Every option and its parser. Where the server is (``db``, ``username``, ``password``)
#: and ``hold_timeout`` are kept as given: they are checked against the URL first.
_PARSERS: dict[str, Parser] = {
    **dict.fromkeys(("hold_timeout", "db", "username", "password", *_SSL_OPTIONS), as_given),
    "sentinel_username": parse_text,
    "sentinel_password": parse_text,
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
    #: The sentinels (Sentinel) or the nodes to start from (Cluster); empty for one
    #: server, which is `host` and `port`.
    nodes: tuple[tuple[str, int], ...] = ()
    #: The service (master name) the sentinels monitor; Sentinel only.
    service_name: str | None = None
    sentinel_username: str | None = None
    sentinel_password: str | None = field(default=None, repr=False)

    @property
    def mode(self) -> str:
        """`SINGLE`, `SENTINEL` or `CLUSTER`, as the scheme says."""
        return SCHEMES[self.scheme]

    @property
    def tls(self) -> bool:
        return self.scheme.startswith("rediss")

    @property
    def url(self) -> str:
        """The URL without query and with the password replaced by ``***``."""
        userinfo = ""
        if self.username or self.password:
            userinfo = quote(self.username or "", safe="")
            userinfo += f":{MASK}@" if self.password else "@"
        if self.mode == SINGLE:
            return f"{self.scheme}://{userinfo}{_hostport(self.host, self.port)}/{self.db}"
        hosts = ",".join(_hostport(host, port) for host, port in self.nodes)
        if self.mode == SENTINEL:
            return f"{self.scheme}://{userinfo}{hosts}/{self.service_name}/{self.db}"
        return f"{self.scheme}://{userinfo}{hosts}"

    @property
    def where(self) -> str:
        """The servers, as messages name them: ``host:port``, or the list of them."""
        if self.mode == SINGLE:
            return _hostport(self.host, self.port)
        return ", ".join(_hostport(host, port) for host, port in self.nodes)

    def server_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for connections to a Redis server, whichever the mode and
        whichever redis-py class: credentials, timeouts, client name, TLS."""
        kwargs: dict[str, Any] = {
            "username": self.username,
            "password": self.password,
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "client_name": self.client_name,
            "decode_responses": False,
        }
        if self.tls:
            kwargs["ssl"] = True
            kwargs.update(self.ssl)
        return kwargs

    def connection_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``redis.Redis`` and ``redis.asyncio.Redis`` on one server
        (or, less ``host`` and ``port``, on a master found by the sentinels)."""
        return {"host": self.host, "port": self.port, "db": self.db, **self.server_kwargs()}

    def sentinel_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for the connections to the sentinels themselves: the same
        timeouts and TLS, the sentinels' own credentials."""
        kwargs: dict[str, Any] = {
            "socket_timeout": self.socket_timeout,
            "socket_connect_timeout": self.socket_connect_timeout,
            "username": self.sentinel_username,
            "password": self.sentinel_password,
        }
        if self.tls:
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
        _single_server(url, "host=, port= and ssl=")
        url = _merged_url(url, host, port, ssl)
    if not isinstance(url, str):
        raise ConfigurationError(f"a Redis lock manager takes a redis:// URL, not {url!r}")
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    mode = SCHEMES.get(scheme)
    try:
        password = unquote(parts.password) if parts.password is not None else None
        port = parts.port or 6379 if mode == SINGLE else 0
    except ValueError:
        raise ConfigurationError(
            f"the port in {_shown(url, parts.password)!r} is not a number from 1 to 65535"
        ) from None
    shown = _shown(url, password)
    if mode is None:
        raise ConfigurationError(
            f"a Redis lock manager takes {', '.join(f'{name}://' for name in SCHEMES)} "
            f"URLs, not {shown!r}"
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
    if tls and not scheme.startswith("rediss"):
        raise ConfigurationError(
            f"options {', '.join(sorted(tls))} need TLS; write the URL as "
            f"{scheme.replace('redis', 'rediss', 1)}:// instead of {shown!r}"
        )
    sentinel_given = sorted(name for name in _SENTINEL_OPTIONS if name in given)
    if sentinel_given and mode != SENTINEL:
        raise ConfigurationError(
            f"options {', '.join(sentinel_given)} are for Sentinel URLs "
            f"(redis+sentinel://host:26379/service/db), not {shown!r}"
        )
    _agree("db", None, query.get("db"), (options or {}).get("db"), shown)
    nodes: tuple[tuple[str, int], ...] = ()
    service_name = None
    path = parts.path
    if mode == SINGLE:
        host = unquote(parts.hostname or "localhost")
    else:
        nodes = _nodes(parts.netloc.rpartition("@")[2], _DEFAULT_PORTS[mode], shown)
        (host, port) = nodes[0]
        if mode == SENTINEL:
            service_name, path = _service(path, shown)
    db = _db(path, given.get("db"), shown)
    if mode == CLUSTER and db != 0:
        raise ConfigurationError(
            f"a Redis Cluster has only database 0, and {shown!r} asks for database {db}; "
            "leave the database out of the URL"
        )
    return RedisOptions(
        scheme=scheme,
        host=host,
        port=port,
        db=db,
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
        nodes=nodes,
        service_name=service_name,
        sentinel_username=given.get("sentinel_username"),
        sentinel_password=given.get("sentinel_password"),
    )


def _single_server(url: object, what: str) -> None:
    """Keywords that place one server do not go with a Sentinel or Cluster URL."""
    if not isinstance(url, str):
        return
    scheme = url.partition("://")[0].lower()
    if SCHEMES.get(scheme, SINGLE) != SINGLE:
        raise ConfigurationError(
            f"{what} describe one server; a {scheme}:// URL names its servers itself "
            f"(host1:port1,host2:port2): put them there, not in keywords ({_shown(url, None)!r})"
        )


def _hostport(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _nodes(netloc: str, default_port: int, shown: str) -> tuple[tuple[str, int], ...]:
    """``host1[:port1],host2[:port2]`` (IPv6 in brackets) as ``((host, port), ...)``."""
    nodes = []
    for item in netloc.split(","):
        text = item.strip()
        if text.startswith("["):
            host, _, rest = text[1:].partition("]")
            port_text = rest[1:] if rest.startswith(":") else rest
        else:
            host, _, port_text = text.partition(":")
        host = unquote(host)
        if not host or any(c in host for c in "/?#@[]"):
            raise ConfigurationError(
                f"{shown!r} names a server without a host ({item!r}); list them as "
                "host1:port1,host2:port2"
            )
        if port_text and (not port_text.isdigit() or not 0 < int(port_text) < 65536):
            raise ConfigurationError(
                f"the port in {item!r} of {shown!r} is not a number from 1 to 65535"
            )
        nodes.append((host, int(port_text) if port_text else default_port))
    return tuple(nodes)


def _service(path: str, shown: str) -> tuple[str, str]:
    """``/service[/db]`` of a Sentinel URL as ``(service, "/db")``."""
    service, _, rest = path.strip("/").partition("/")
    if not service:
        raise ConfigurationError(
            f"{shown!r} names no service: a Sentinel URL is "
            "redis+sentinel://host1:26379,host2:26379/<service_name>/<db>, the service "
            "being the master's name in the sentinels' 'sentinel monitor' line"
        )
    return unquote(service), rest


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
