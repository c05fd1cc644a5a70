"""What the Redis lock manager sends and how it reads the replies: no I/O here.

A lock is one string key, ``<key_prefix><key>``, whose value is the holder's name and
whose time to live is the hold timeout. Taking, extending and releasing a lock each run
one Lua script, so the check of the holder and the change happen atomically on the
server. Releasing publishes the holder's name on a channel named like the lock key;
waiters subscribe to it instead of polling.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moorage.errors import LockError
from moorage.locking import expiry_from

__all__ = [
    "ACQUIRE",
    "EXTEND",
    "RELEASE",
    "Attempt",
    "acquire_attempt",
    "decode_holder",
    "encode",
    "hold_ms",
    "holder_reply",
    "probe_attempt",
    "redis_key",
]

#: KEYS[1] the lock; ARGV[1] the holder; ARGV[2] hold time in ms, "0" for no expiry.
#: Returns {1, 0} when ARGV[1] holds the lock afterwards (taken, or re-taken and
#: extended), else {0, PTTL of the lock} (-1: it never expires).
ACQUIRE = """
local key, holder, ms = KEYS[1], ARGV[1], ARGV[2]
local taken
if ms == '0' then
  taken = redis.call('SET', key, holder, 'NX')
else
  taken = redis.call('SET', key, holder, 'NX', 'PX', ms)
end
if taken then
  return {1, 0}
end
if redis.call('GET', key) ~= holder then
  return {0, redis.call('PTTL', key)}
end
if ms == '0' then
  redis.call('PERSIST', key)
else
  redis.call('PEXPIRE', key, ms)
end
return {1, 0}
"""

#: KEYS[1] the lock; ARGV[1] the holder. Deletes the lock and publishes ARGV[1] on the
#: channel KEYS[1] if ARGV[1] holds it and returns 1; else returns the current holder
#: (nil when the lock is free).
RELEASE = """
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  return current
end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', KEYS[1], ARGV[1])
return 1
"""

#: KEYS[1] the lock; ARGV[1] the holder; ARGV[2] hold time in ms, "0" for no expiry.
#: Resets the lock's time to live if ARGV[1] holds it and returns 1; else returns the
#: current holder (nil when the lock is free). Never takes a free lock.
EXTEND = """
local current = redis.call('GET', KEYS[1])
if current ~= ARGV[1] then
  return current
end
if ARGV[2] == '0' then
  redis.call('PERSIST', KEYS[1])
else
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
end
return 1
"""

_FREE = -2  # PTTL of a missing key
_NO_EXPIRY = -1  # PTTL of a key without time to live


@dataclass(frozen=True, slots=True)
class Attempt:
    """The outcome of one try: ``done`` (taken, or found free), else how long the current
    lock still lives (``ttl_ms``; None when it never expires)."""

    done: bool
    ttl_ms: int | None = None


def encode(text: str) -> bytes:
    """Keys and holders as bytes; lone surrogates survive the round trip."""
    return text.encode("utf-8", "surrogatepass")


def decode_holder(raw: object) -> str | None:
    """A holder as stored in Redis (bytes or None) as the str it was given as."""
    if raw is None:
        return None
    if isinstance(raw, bytes):
        return raw.decode("utf-8", "surrogatepass")
    return str(raw)


def redis_key(prefix: str, key: str) -> bytes:
    """The Redis key (and release channel) of the lock on ``key``."""
    return encode(prefix + key)


def hold_ms(hold_timeout: float | None) -> int:
    """A hold timeout in whole milliseconds for ``PX`` (at least 1); 0 for no expiry."""
    if expiry_from(0.0, hold_timeout) is None:  # validates: positive, None or inf
        return 0
    assert hold_timeout is not None
    return max(1, math.ceil(hold_timeout * 1000))


def acquire_attempt(reply: object) -> Attempt:
    """Read the reply of `ACQUIRE`."""
    if isinstance(reply, list | tuple) and len(reply) == 2:
        taken, ttl = int(reply[0]), int(reply[1])
        if taken:
            return Attempt(True)
        return Attempt(False, None if ttl == _NO_EXPIRY else max(ttl, 0))
    raise LockError(f"unexpected reply {reply!r} from the acquire script")


def probe_attempt(pttl: object) -> Attempt:
    """Read ``PTTL key`` as a check whether the lock is free."""
    # Typed as object; redis-py's stubs for the reply differ between releases.
    ttl = int(pttl)  # type: ignore[call-overload, unused-ignore]
    if ttl == _FREE:
        return Attempt(True)
    return Attempt(False, None if ttl == _NO_EXPIRY else max(ttl, 0))


def holder_reply(reply: object) -> tuple[bool, str | None]:
    """Read the reply of `RELEASE` or `EXTEND`: ``(done, current holder if not done)``."""
    if isinstance(reply, int) and not isinstance(reply, bool):
        return reply == 1, None
    return False, decode_holder(reply)
