"""redis-py's exceptions as `moorage.LockError` messages that say what to do.

`lock_error` is the ``translate`` function for `moorage.errors.map_exceptions`, the one
place backend exceptions become ours; `translated` binds it to an action and a key.
"""

from __future__ import annotations

import re
from contextlib import AbstractContextManager
from functools import partial

from redis import exceptions as rex
from redis.sentinel import MasterNotFoundError

from moorage.config.secrets import mask_secrets
from moorage.errors import LockError, map_exceptions
from moorage_redis.options import CLUSTER, SINGLE, RedisOptions

__all__ = ["describe", "lock_error", "translated"]

_ACL_COMMANDS = (
    "GET, SET, PEXPIRE, PERSIST, PTTL, DEL, EXISTS, TIME, ZADD, ZREM, ZSCORE, ZRANGE, "
    "ZRANGEBYSCORE, ZREMRANGEBYSCORE, ZCARD, PUBLISH, SUBSCRIBE, EVALSHA, EVAL, SCRIPT"
)


#: redis-py's repr of a client, as MasterNotFoundError lists one per sentinel: shown as
#: its host and port.
_CLIENT_REPR = re.compile(
    r"<redis\.(?:asyncio\.)?client\.Redis\(.*?[(,]host=(?P<host>[^,]+),port=(?P<port>\d+)"
    r".*?\)>\)>\)>"
)


def _cluster_url(options: RedisOptions) -> str:
    """The URL the user meant when pointing a plain URL at a cluster node."""
    scheme = "rediss+cluster" if options.tls else "redis+cluster"
    return f"{scheme}://{options.where}"


def _modes(exc: BaseException, options: RedisOptions, text: str) -> str | None:
    """What went wrong when the URL's kind and the server's disagree, or a Sentinel or
    Cluster failed as such; None for other errors."""
    lowered = text.lower()
    if isinstance(exc, rex.AskError) and options.mode != CLUSTER:  # MOVED is an AskError
        return (
            f"the server at {options.where} is a Redis Cluster node, which serves only "
            f"some keys and redirected this one ({text}); use a cluster URL: "
            f"{_cluster_url(options)} (other nodes may be listed too, comma separated)"
        )
    if isinstance(exc, rex.ClusterDownError):
        return (
            f"the Redis Cluster at {options.where} is down or does not serve every slot "
            f"({text}); check CLUSTER INFO (cluster_state:ok) on its nodes"
        )
    if isinstance(exc, rex.AskError):
        return (
            f"the Redis Cluster at {options.where} kept redirecting the command ({text}); "
            "its slots are being moved, try again when resharding is done"
        )
    if isinstance(exc, rex.TryAgainError):
        return f"the Redis Cluster is moving this key's slot ({text}); try again shortly"
    if isinstance(exc, rex.ClusterCrossSlotError):
        return (
            f"the lock's keys fell in different hash slots of the cluster ({text}); use a "
            "key_prefix whose braces, if any, form a hash tag such as {locks}"
        )
    if isinstance(exc, MasterNotFoundError):
        text = _CLIENT_REPR.sub(r"\g<host>:\g<port>", text)
        if "unknown command `sentinel`" in lowered:
            return (
                f"a server named as a sentinel in the URL is a plain Redis server ({text}); "
                "name the sentinels (port 26379 by default) in the redis+sentinel:// URL, or "
                f"use redis://host:port/db for one server"
            )
        return (
            f"the sentinels at {options.where} named no reachable master for service "
            f"{options.service_name!r} ({text}); check that the service name in the URL is "
            "the one in their 'sentinel monitor' line, that the sentinels are up, and that "
            "they can see the master"
        )
    if isinstance(exc, rex.RedisClusterException):
        if "cluster mode is not enabled" in lowered:
            plain = "rediss" if options.tls else "redis"
            return (
                f"the server at {options.where} is not a Redis Cluster node ({text}); use a "
                f"{plain}:// URL for one server or {plain}+sentinel:// for Sentinel"
            )
        return (
            f"cannot use the Redis Cluster at {options.where} ({text}); check that its "
            "nodes are up and reachable and that CLUSTER INFO says cluster_state:ok"
        )
    if "unknown command" in lowered and options.mode == SINGLE:
        return (
            f"the server at {options.where} does not know a command the lock needs "
            f"({text}); if it is a sentinel, use redis+sentinel://{options.where}/"
            "<service_name>/<db>"
        )
    return None


def describe(exc: BaseException, options: RedisOptions) -> str:
    """What went wrong, in words that name the fix; never the password."""
    secrets = (options.password, options.sentinel_password)
    text = mask_secrets(str(exc), secrets) or type(exc).__name__
    lowered = text.lower()
    special = _modes(exc, options, text)
    if special is not None:
        return special
    if isinstance(exc, rex.AuthenticationError | rex.AuthenticationWrongNumberOfArgsError):
        return (
            f"Redis refused the credentials ({text}); check the username and password in "
            "the URL (redis://user:password@host:port/db) or the username/password options"
        )
    if "db index is out of range" in lowered or "invalid database" in lowered:
        return (
            f"the server has no database {options.db} ({text}); use a number below its "
            "'databases' setting (16 unless configured otherwise), e.g. redis://host:port/0"
        )
    if isinstance(exc, rex.BusyLoadingError):
        return f"the server is still loading its data set ({text}); try again shortly"
    if isinstance(exc, rex.TimeoutError | TimeoutError):
        return (
            f"no answer in time ({text}); check that the server is up and reachable, that "
            "rediss:// is used only with a TLS server, or raise socket_timeout / "
            f"socket_connect_timeout (now {options.socket_timeout} / "
            f"{options.socket_connect_timeout} s)"
        )
    if isinstance(exc, rex.ConnectionError | OSError):
        return (
            f"cannot reach Redis at {options.where} ({text}); start redis-server there, "
            f"or fix the {'hosts and ports' if options.nodes else 'host and port'} in the URL"
        )
    if isinstance(exc, rex.ReadOnlyError):
        return f"the server is a read-only replica ({text}); point the URL at the primary"
    if isinstance(exc, rex.NoPermissionError):
        return (
            f"the Redis user may not run a command it needs ({text}); allow {_ACL_COMMANDS} "
            f"on keys and channels starting with {options.key_prefix!r}"
        )
    if lowered.startswith("oom"):
        return f"the server is out of memory ({text}); raise its maxmemory or free memory"
    if isinstance(exc, rex.ResponseError):
        return f"Redis answered with an error: {text}"
    return f"redis-py failed: {type(exc).__name__}: {text}"


def lock_error(action: str, key: str, options: RedisOptions, exc: Exception) -> LockError | None:
    """A redis-py or socket exception met while ``action``-ing the lock on ``key`` as a
    `LockError`; None (the exception surfaces as itself) for anything else."""
    if not isinstance(exc, rex.RedisError | rex.RedisClusterException | OSError):
        return None
    return LockError(
        f"cannot {action} lock on key {key!r} at {options.url}: {describe(exc, options)}"
    )


def translated(action: str, key: str, options: RedisOptions) -> AbstractContextManager[None]:
    """Turn redis-py and socket exceptions raised inside into `LockError`."""
    return map_exceptions(partial(lock_error, action, key, options))
