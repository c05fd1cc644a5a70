"""Temporary files: their names, and removing those whose writer is gone.

A write goes to a temporary file in the key's folder, renamed into place when complete.
Its name, ``.moorage-tmp-<host>-<pid>-<token>-<n>``, names its writer: the host (and on
Linux the process-id namespace), the process id, and a token drawn when the process
starts (again in a forked child). So a later process can tell a file whose writer was
killed mid-write, and remove it; files older than `STALE_TEMP_AGE` go whoever wrote them.
"""

from __future__ import annotations

import itertools
import os
import re
import secrets
import socket
import stat
import time

from moorage_local.folders import DIR_FLAGS

__all__ = [
    "STALE_TEMP_AGE",
    "TEMP_PREFIX",
    "clean_folder",
    "remove_if_stale",
    "temp_name",
    "writer_gone",
]

#: Name prefix of the temporary files a write renames into place; never a key.
TEMP_PREFIX = ".moorage-tmp-"
#: Seconds after its last change when a temporary file counts as abandoned, whoever
#: wrote it (a live writer changes its file far more often than that).
STALE_TEMP_AGE = 3600.0


def _host_name() -> str:
    """This host as it appears in temporary file names: the host name, and on Linux the
    process-id namespace, so containers sharing a host name never judge each other's
    process ids."""
    host = re.sub(r"[^A-Za-z0-9.]", "_", socket.gethostname())[:48] or "host"
    try:
        namespace = os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return host
    return f"{host}.{namespace:x}"


class _Process:
    """This process's writer identity; drawn again in a forked child."""

    def __init__(self) -> None:
        self.pid = os.getpid()
        self.token = secrets.token_hex(4)
        self.writer = f"{_HOST}-{self.pid}-{self.token}-"


_HOST = _host_name()
_PROCESS = _Process()
_COUNTER = itertools.count()


def _after_fork_in_child() -> None:
    global _PROCESS
    _PROCESS = _Process()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def temp_name() -> str:
    """A new temporary file name: its writer's identity and a counter, unique without a
    system call for randomness on every write (O_EXCL still refuses a clash)."""
    return f"{TEMP_PREFIX}{_PROCESS.writer}{next(_COUNTER)}"


def writer_gone(name: str) -> bool:
    """Whether the process that made the temporary file ``name`` has certainly ended.

    Names are ``<prefix><host>-<pid>-<token>-<n>``. Only writers of this host (and of
    this process-id namespace) can be checked; a process id now used by another process
    counts as alive, except this process's own id with another token.
    """
    fields = name[len(TEMP_PREFIX) :].rsplit("-", 3)
    if len(fields) != 4 or fields[0] != _HOST or not fields[1].isdigit() or os.name == "nt":
        return False
    pid = int(fields[1])
    if pid == _PROCESS.pid:
        return fields[2] != _PROCESS.token
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except OSError:
        return False  # EPERM: alive, another user's
    return False


def remove_if_stale(folder: int, name: str, now: float, dry_run: bool = False) -> int | None:
    """Remove the temporary file ``name`` of the folder ``folder`` (a descriptor) if its
    writer is gone or it is older than `STALE_TEMP_AGE`; return its size if this call
    removed it (with ``dry_run``, would have: it is left in place), else None."""
    try:
        info = os.stat(name, dir_fd=folder, follow_symlinks=False)
    except OSError:
        return None
    if not stat.S_ISREG(info.st_mode):
        return None
    if now - info.st_mtime < STALE_TEMP_AGE and not writer_gone(name):
        return None
    if dry_run:
        return info.st_size
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        return None  # removed meanwhile, or not ours to remove
    return info.st_size


def clean_folder(folder: int) -> None:
    """Remove the stale temporary files of the folder ``folder`` (a descriptor), as a
    courtesy: errors are ignored, since the write that called this succeeded."""
    try:
        fd = os.open(".", DIR_FLAGS, dir_fd=folder)  # scandir moves its own offset
    except OSError:
        return
    try:
        with os.scandir(fd) as scan:
            names = [e.name for e in scan if e.name.startswith(TEMP_PREFIX)]
        for temp in names:
            remove_if_stale(fd, temp, time.time())
    except OSError:
        pass
    finally:
        os.close(fd)
