"""Keeping a benchmark run to itself: temp folders only, loopback only.

`isolate` points every library's home, cache and configuration at a scratch folder and
switches off what could reach the network (Prefect's telemetry and API, botocore's
instance-metadata lookups, HTTP proxies). It changes ``os.environ``, so the worker
processes a run starts inherit the same setup.

`guard_network` is the check that the setup holds: an audit hook that refuses any
connection or name lookup that is not for the loopback interface. Audit hooks cost every
``open()`` a Python call, which shows in the small-record timings, so the quick run uses
it and a full run does so only when asked (``--guard-network``).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

__all__ = [
    "GUARD_VARIABLE",
    "NetworkRefused",
    "check_network_event",
    "guard_if_asked",
    "guard_network",
    "isolate",
    "refusals",
]

#: Set in the environment by `guard_network` to the file where refusals are written, so
#: worker processes guard themselves too and the run can report what they refused.
GUARD_VARIABLE = "BENCHMARKS_NETWORK_GUARD_LOG"

#: Variables that would point a client somewhere else than where a workload says.
_DROPPED_PREFIXES = ("MOORAGE_", "PREFECT_", "AWS_", "BOTO_", "REDIS_")
_DROPPED = {
    "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy",
    "JOBLIB_CACHE_DIR", "DISKCACHE_DIRECTORY",
    # Without bytecode caches every fresh interpreter compiles what it imports, which is
    # not what users see: the first import of a module writes its cache, later ones read it.
    "PYTHONDONTWRITEBYTECODE",
}  # fmt: skip
_LOOKUPS = frozenset(
    {
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyname_ex",
        "socket.gethostbyaddr",
    }
)
_LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost", "localhost.localdomain"})


def isolate(scratch: Path) -> None:
    """Set the environment so that every library writes below ``scratch`` and talks to
    nothing but 127.0.0.1, and make ``scratch/cwd`` the working directory (so no
    ``pyproject.toml``, ``moorage.toml`` or ``prefect.toml`` of the checkout applies)."""
    for name in list(os.environ):
        if name.startswith(_DROPPED_PREFIXES) or name in _DROPPED:
            del os.environ[name]
    home = scratch / "home"
    cwd = scratch / "cwd"
    for folder in (home, cwd):
        folder.mkdir(parents=True, exist_ok=True)
    os.environ.update(
        {
            "HOME": str(home),
            "XDG_CACHE_HOME": str(home / ".cache"),
            "XDG_CONFIG_HOME": str(home / ".config"),
            "XDG_DATA_HOME": str(home / ".local" / "share"),
            "MPLCONFIGDIR": str(home / ".matplotlib"),
            # moorage: default storage in the scratch folder; no user configuration.
            "MOORAGE_LOCAL_STORAGE_PATH": str(scratch / "moorage-default"),
            # Prefect: its own home, no API (and no ephemeral server), no telemetry.
            "PREFECT_HOME": str(scratch / "prefect-home"),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
            "PREFECT_SERVER_ALLOW_EPHEMERAL_MODE": "false",
            "PREFECT_LOGGING_TO_API_ENABLED": "false",
            "DO_NOT_TRACK": "1",
            # botocore: never ask an instance-metadata endpoint, read no user files.
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_CONFIG_FILE": str(home / ".aws" / "config"),
            "AWS_SHARED_CREDENTIALS_FILE": str(home / ".aws" / "credentials"),
            "NO_PROXY": "*",
            "no_proxy": "*",
        }
    )
    os.chdir(cwd)


class NetworkRefused(PermissionError):
    """A benchmark tried to reach something other than the loopback interface."""


def _loopback_host(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode(errors="replace")
    if not isinstance(host, str):
        return False
    return host in _LOOPBACK_HOSTS or host.removeprefix("::ffff:").startswith("127.")


def _loopback_address(address: Any) -> bool:
    if isinstance(address, str | bytes):  # AF_UNIX
        return True
    return isinstance(address, tuple) and bool(address) and _loopback_host(address[0])


def check_network_event(event: str, args: tuple[Any, ...]) -> None:
    """Raise `NetworkRefused` for an audit event that would reach beyond loopback: a
    connection or datagram to another address, or a name lookup of another host."""
    if not event.startswith("socket."):
        return
    if event in ("socket.connect", "socket.sendto", "socket.sendmsg") and len(args) > 1:
        if not _loopback_address(args[1]):
            raise NetworkRefused(f"benchmarks reach loopback only; refused {event} {args[1]!r}")
    elif event in _LOOKUPS:
        host = args[0] if args else None
        if host is not None and not _loopback_host(host):
            raise NetworkRefused(f"benchmarks reach loopback only; refused {event} {host!r}")


_log: Path | None = None


def _audit(event: str, args: tuple[Any, ...]) -> None:
    try:
        check_network_event(event, args)
    except NetworkRefused as refused:
        if _log is not None:
            with open(_log, "a") as log:
                log.write(f"pid {os.getpid()}: {refused}\n")
        raise


def guard_network(log: Path) -> None:
    """Refuse, in this process and the workers it starts, connections and name lookups
    that are not for the loopback interface (an audit hook; it cannot be removed). Each
    refusal is also appended to ``log``."""
    global _log
    if _log is None:
        sys.addaudithook(_audit)
    _log = log
    os.environ[GUARD_VARIABLE] = str(log)


def refusals() -> list[str]:
    """What the guard refused so far, in this run's processes."""
    if _log is None or not _log.exists():
        return []
    return _log.read_text().splitlines()


def guard_if_asked() -> None:
    """In a worker process: guard the network if the run that started it does."""
    log = os.environ.get(GUARD_VARIABLE)
    if log:
        guard_network(Path(log))
