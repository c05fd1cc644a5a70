"""What the Redis lock manager sends and how it reads the replies: no I/O here.

A lock is one string key, ``<key_prefix><key>``, whose value is the holder's name and
whose time to live is the hold timeout. Taking, extending and releasing a lock each run
one Lua script, so the check of the holder and the change happen atomically on the
server. Releasing publishes the holder's name on a channel named like the lock key;
waiters subscribe to it instead of polling.

Waiting is fair: a waiting acquire that is refused joins the lock's queue, a sorted set
of holders by arrival (`queue_keys`), and refreshes a liveness deadline in a second
sorted set each time it tries again. A free lock goes only to the first waiter still
alive; one whose deadline passed (it died, or stopped trying) is dropped when the lock
is next handed out. A plain `try_acquire` never queues, and is refused while others
wait. The queue keys share the lock key's hash slot, so every script touches one slot
and runs on a Redis Cluster too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from moorage.errors import LockError
from moorage.locking import expiry_from

__all__ = [
    "ACQUIRE",
    "EXTEND",
    "LEAVE",
    "RELEASE",
    "SCRIPTS",
    "Attempt",
    "acquire_attempt",
    "decode_holder",
    "encode",
    "hold_ms",
    "holder_reply",
    "probe_attempt",
    "queue_keys",
]

#: KEYS[1] the lock; KEYS[2], KEYS[3] its queue and its waiters' liveness deadlines
#: (both left out: no queue). ARGV[1] the holder; ARGV[2] hold time in ms, "0" for no
#: expiry; ARGV[3] "1" for a waiting acquire (it joins the queue if refused), "0" for a
#: plain try; ARGV[4] how long a queued waiter stays alive without trying again (ms).
#: A waiter's place is its arrival time in ms, or one more than the last place if that
#: is not earlier, so the queue is first come, first served even within a millisecond.
#: Returns {1, 0} when ARGV[1] holds the lock afterwards (taken, or re-taken and
#: extended), else {0, ms}: the lock's PTTL (-1: it never expires), or, when the lock is
#: free but another waiter is first, how long that waiter stays alive unless it tries.
ACQUIRE = """
local lock, queue, alive = KEYS[1], KEYS[2], KEYS[3]
local holder, ms, waiting = ARGV[1], ARGV[2], ARGV[3] == '1'
local function now()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end
local function join(at)
  if not redis.call('ZSCORE', queue, holder) then
    local last = redis.call('ZRANGE', queue, -1, -1, 'WITHSCORES')[2]
    local arrival = at
    if last and tonumber(last) >= at then
      arrival = tonumber(last) + 1  -- strictly after the last, even within one ms
    end
    redis.call('ZADD', queue, arrival, holder)
  end
  local live = tonumber(ARGV[4])
  redis.call('ZADD', alive, at + live, holder)
  if redis.call('PTTL', queue) < live then
    redis.call('PEXPIRE', queue, live)
    redis.call('PEXPIRE', alive, live)
  end
end
local current = redis.call('GET', lock)
if current and current ~= holder then
  if queue and waiting then
    join(now())
  end
  return {0, redis.call('PTTL', lock)}
end
if queue and not current then
  local at = now()
  local dead = redis.call('ZRANGEBYSCORE', alive, '-inf', at)
  for _, name in ipairs(dead) do
    redis.call('ZREM', queue, name)
  end
  redis.call('ZREMRANGEBYSCORE', alive, '-inf', at)
  local first = redis.call('ZRANGE', queue, 0, 0)[1]
  if first and first ~= holder then
    if waiting then
      join(at)
    end
    local until_ = tonumber(redis.call('ZSCORE', alive, first) or at)
    return {0, math.max(until_ - at, 1)}
  end
end
if ms == '0' then
  redis.call('SET', lock, holder)
else
  redis.call('SET', lock, holder, 'PX', ms)
end
if queue then
  redis.call('ZREM', queue, holder)
  redis.call('ZREM', alive, holder)
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

#: KEYS[1] the lock, KEYS[2] its queue, KEYS[3] the liveness deadlines; ARGV[1] the
#: holder. Takes ARGV[1] out of the queue; if it was first and the lock is free while
#: others wait, publishes on the lock's channel so the next one tries at once. Returns
#: 1 if ARGV[1] was queued, else 0.
LEAVE = """
local first = redis.call('ZRANGE', KEYS[2], 0, 0)[1]
local removed = redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[3], ARGV[1])
if first == ARGV[1] and redis.call('EXISTS', KEYS[1]) == 0
    and redis.call('ZCARD', KEYS[2]) > 0 then
  redis.call('PUBLISH', KEYS[1], '')
end
return removed
"""

#: The scripts in the order the clients register them (acquire, release, extend, leave).
SCRIPTS = (ACQUIRE, RELEASE, EXTEND, LEAVE)

#: Suffixes of a lock's queue keys. 0xFF never occurs in UTF-8, so no lock key (a
#: prefix and a key, both text) can end like a queue key, whatever the key.
_QUEUE_SUFFIX = b"\xffwaiters"
_ALIVE_SUFFIX = b"\xffalive"

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


def _hash_tag(name: bytes) -> bytes | None:
    """The part of ``name`` a Redis Cluster hashes when it is not the whole key: between
    the first ``{`` and the next ``}``, if that is not empty."""
    start = name.find(b"{")
    if start < 0:
        return None
    end = name.find(b"}", start + 1)
    return name[start + 1 : end] if end > start + 1 else None


def queue_keys(lock_key: bytes, cluster: bool) -> tuple[bytes, bytes] | None:
    """The keys of the queue of waiters of ``lock_key`` and of their liveness deadlines,
    placed in the lock key's hash slot; None if that cannot be done (then the lock has
    no queue, and waiting on it is not fair).

    Each starts with the lock key (so with the key prefix, which ACLs may name):

    - a lock key with a hash tag keeps it: ``<lock key>\\xffwaiters``;
    - a lock key without braces is hashed whole, so the queue key carries it as its tag:
      ``<lock key>\\xff{<lock key>}waiters``;
    - a lock key with braces that form no tag (``a{}b``, ``a}b``) cannot be matched on a
      cluster; elsewhere slots do not matter and it is queued as in the first case.
    """
    if _hash_tag(lock_key) is not None:
        return lock_key + _QUEUE_SUFFIX, lock_key + _ALIVE_SUFFIX
    if b"{" not in lock_key and b"}" not in lock_key:
        tagged = lock_key + b"\xff{" + lock_key + b"}"
        return tagged + b"waiters", tagged + b"alive"
    if cluster:
        return None
    return lock_key + _QUEUE_SUFFIX, lock_key + _ALIVE_SUFFIX


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
