"""redis-py's exceptions as `moorage.LockError` messages that say what to do.

`lock_error` is the ``translate`` function for `moorage.errors.map_exceptions`, the one
place backend exceptions become ours; `translated` binds it to an action and a key.
"""

from __future__ import annotations

from contextlib import AbstractContextManager
from functools import partial

from redis import exceptions as rex

from moorage.errors import LockError, map_exceptions
from moorage_redis.options import RedisOptions, mask_password

__all__ = ["describe", "lock_error", "translated"]

_ACL_COMMANDS = "GET, SET, PEXPIRE, PERSIST, PTTL, DEL, PUBLISH, SUBSCRIBE, EVALSHA, EVAL, SCRIPT"


def describe(exc: BaseException, options: RedisOptions) -> str:
    """What went wrong, in words that name the fix; never the password."""
    text = mask_password(str(exc), options.password) or type(exc).__name__
    lowered = text.lower()
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
            f"cannot reach Redis at {options.host}:{options.port} ({text}); start "
            "redis-server there, or fix the host and port in the URL"
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
    if not isinstance(exc, rex.RedisError | OSError):
        return None
    return LockError(
        f"cannot {action} lock on key {key!r} at {options.url}: {describe(exc, options)}"
    )


def translated(action: str, key: str, options: RedisOptions) -> AbstractContextManager[None]:
    """Turn redis-py and socket exceptions raised inside into `LockError`."""
    return map_exceptions(partial(lock_error, action, key, options))
