"""Atomic and conditional writes of one file: temporary file, then rename or link.

The bytes go to a new temporary file in the target's folder (see `moorage_local.temp_files`),
which then takes the target's name in one step: ``rename`` replaces what was there; a
conditional create gives the complete file the name only if no file has it (a hard link,
or ``renameat2(RENAME_NOREPLACE)`` on file systems without links). Either way a reader
sees the old bytes or the new bytes, never a part, even when the writer is killed
mid-write; on any failure the temporary file is removed. With ``durable`` the file is
fsynced before it gets its name.

A `HeadLast` content is a file whose first bytes depend on all the others (a record's
head holds its payload's checksum): the body is written first, after a gap the size of
the head, a slice at a time, each slice shown to an observer (a checksum) right after it
is written, while it is still in the CPU's cache; then the head fills the gap. The file
is still temporary until complete, so nothing changes for readers.
"""

from __future__ import annotations

import errno
import functools
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import cast

from moorage.buffers import BytesLike
from moorage_local.temp_files import temp_name

__all__ = [
    "HeadLast",
    "content_size",
    "open_temp",
    "preallocate",
    "replace_at",
    "replace_with",
    "write_all",
    "write_head_last",
]

_TEMP_FLAGS = (
    os.O_WRONLY
    | os.O_CREAT
    | os.O_EXCL
    | getattr(os, "O_BINARY", 0)  # Windows: no newline translation
    | getattr(os, "O_CLOEXEC", 0)
    | getattr(os, "O_NOFOLLOW", 0)
)
_LINUX = sys.platform == "linux"
_FALLOC_FL_KEEP_SIZE = 1  # linux/falloc.h
_IOV_MAX = 1024  # buffers per os.writev call; POSIX guarantees at least 16, Linux has 1024
#: The body of a `HeadLast` file goes in writes this large, each then observed: small
#: enough that the slice is still in the core's cache for the observer, large enough that
#: the system calls do not count. A 256 MB payload written and checksummed 512 KiB at a
#: time took 74-92 ms here (256 KiB 80-97, 1 MiB 77-92, 2 MiB 81-98), against 58-69 ms
#: for the write alone and 93-116 ms for a checksum pass before the write.
OBSERVED_SLICE = 1 << 19
#: Files from this size on have their blocks reserved before they are written (see
#: `preallocate`); below it the extra system call would cost more than it saves.
PREALLOCATE_FROM = 8 << 20
#: errno values of file systems that cannot make hard links (FAT, some network mounts).
_NO_LINKS = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EMLINK}


def write_all(fd: int, parts: Sequence[BytesLike]) -> None:
    """Write every byte of ``parts`` to ``fd``, with as few system calls as possible."""
    pending = [view for view in map(_flat, parts) if view.nbytes]
    writev = getattr(os, "writev", None)
    while pending:
        if writev is None or len(pending) == 1:
            written = os.write(fd, pending[0])
        else:
            written = writev(fd, pending[:_IOV_MAX])
        if written <= 0:
            raise OSError(errno.EIO, "the file system accepted no bytes")
        done = 0
        while done < len(pending) and written >= pending[done].nbytes:
            written -= pending[done].nbytes
            done += 1
        del pending[:done]
        if written:
            pending[0] = pending[0][written:]


def content_size(parts: Sequence[BytesLike] | HeadLast) -> int:
    """How many bytes ``parts`` (buffers, or a `HeadLast` content) put in a file."""
    if isinstance(parts, HeadLast):
        return parts.head_size + content_size(parts.body)
    return sum(memoryview(part).nbytes for part in parts)


@functools.cache
def _fallocate() -> Callable[[int, int, int, int], int] | None:
    """Linux's ``fallocate`` from the C library, or None where there is none."""
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).fallocate
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int, ctypes.c_int, ctypes.c_int64, ctypes.c_int64]
    function.restype = ctypes.c_int
    return cast(Callable[[int, int, int, int], int], function)


def preallocate(fd: int, size: int) -> None:
    """Reserve ``size`` bytes of blocks for the new file ``fd`` before it is written, so
    the file system finds them in one step instead of as the bytes arrive (ext4, 256 MB:
    61-63 ms written so against 69-76 ms). The file's size is left as it is
    (``FALLOC_FL_KEEP_SIZE``): it holds what was written, nothing more, at every moment.
    Only Linux's ``fallocate``, never ``posix_fallocate``, which on file systems that
    cannot reserve blocks writes zeros instead; where it fails, nothing is reserved and
    the write goes on as it would have (a full disk is reported by the write)."""
    fallocate = _fallocate()
    if fallocate is not None:
        fallocate(fd, _FALLOC_FL_KEEP_SIZE, 0, size)


@dataclass(frozen=True, slots=True)
class HeadLast:
    """What a file holds when its first ``head_size`` bytes are known only after the rest:
    ``body`` (buffers, in order), then ``head()``, which must be exactly ``head_size``
    bytes long. Right after each span of a body part is written, ``observe(view, start,
    stop)`` is called with the part as a flat byte view and the span's bounds in it."""

    head_size: int
    body: Sequence[BytesLike]
    observe: Callable[[memoryview, int, int], object]
    head: Callable[[], Sequence[BytesLike]]


def write_head_last(fd: int, content: HeadLast) -> None:
    """Write ``content`` to the new, empty file ``fd``: the body after a gap of
    ``head_size`` bytes, observed a slice at a time, then the head into the gap."""
    if content.head_size < 0:
        raise ValueError(f"a head cannot be {content.head_size} bytes long")
    os.lseek(fd, content.head_size, os.SEEK_SET)
    observe, step = content.observe, OBSERVED_SLICE
    for part in content.body:
        view = _flat(part)
        size = view.nbytes
        for start in range(0, size, step):
            stop = min(start + step, size)
            piece = view[start:stop]
            written = os.write(fd, piece)
            if written < piece.nbytes:  # a short write: the rest, as write_all does it
                write_all(fd, (piece[written:],))
            observe(view, start, stop)
    head = [view for view in map(_flat, content.head()) if view.nbytes]
    size = sum(view.nbytes for view in head)
    if size != content.head_size:
        raise ValueError(
            f"the head came out {size} bytes long, not the {content.head_size} bytes "
            "left for it before the body"
        )
    offset = 0
    while head:
        written = os.pwrite(fd, head[0], offset)
        if written <= 0:
            raise OSError(errno.EIO, "the file system accepted no bytes")
        offset += written
        head[0] = head[0][written:]
        if not head[0].nbytes:
            del head[0]


def _flat(part: BytesLike) -> memoryview:
    view = memoryview(part)
    return view if view.format == "B" and view.ndim == 1 else view.cast("B")


def open_temp(folder: str) -> tuple[int, str]:
    """Create a new, uniquely named temporary file in ``folder``: its fd and path."""
    temp = os.path.join(folder, temp_name())
    return os.open(temp, _TEMP_FLAGS, 0o666), temp


def replace_at(
    folder: int,
    name: str,
    parts: Sequence[BytesLike] | HeadLast,
    *,
    durable: bool,
    exclusive: bool = False,
) -> None:
    """Write ``parts`` (buffers, or a `HeadLast` content) to a new temporary file in the
    folder ``folder`` (a descriptor) and rename it over ``name`` (``exclusive``: link it
    to ``name``, FileExistsError if ``name`` exists); on any failure the temporary file is
    removed."""
    temp = temp_name()
    fd = os.open(temp, _TEMP_FLAGS, 0o666, dir_fd=folder)
    replace_with(name, fd, temp, parts, durable=durable, dir_fd=folder, exclusive=exclusive)


def replace_with(
    path: str,
    fd: int,
    temp: str,
    parts: Sequence[BytesLike] | HeadLast,
    *,
    durable: bool = False,
    dir_fd: int | None = None,
    exclusive: bool = False,
) -> None:
    """Write ``parts`` (buffers, or a `HeadLast` content) to the temporary file ``fd`` (at
    ``temp``), close it and rename it
    over ``path``; on any failure the temporary file is removed. With ``dir_fd``, both
    names are relative to that folder's descriptor.

    ``exclusive`` never replaces: the complete file gets the name ``path`` only if no
    file has it (a hard link, which the kernel refuses with FileExistsError if the name
    exists, then the temporary name is removed), so of racing writers exactly one wins
    and readers still never see a partial file.
    """
    try:
        try:
            if _LINUX:
                size = content_size(parts)
                if size >= PREALLOCATE_FROM:
                    preallocate(fd, size)
            if isinstance(parts, HeadLast):
                write_head_last(fd, parts)
            else:
                write_all(fd, parts)
            if durable:
                os.fsync(fd)
        finally:
            os.close(fd)
        if exclusive:
            if link_new(temp, path, dir_fd):
                try:
                    os.unlink(temp, dir_fd=dir_fd)
                except OSError:
                    pass  # the record is in place; prune_temp removes the leftover
        else:
            os.replace(temp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
    except BaseException:
        try:
            os.unlink(temp, dir_fd=dir_fd)
        except OSError:
            pass
        raise


def link_new(temp: str, path: str, dir_fd: int | None) -> bool:
    """Give the file ``temp`` the new name ``path``, failing with FileExistsError if the
    name is taken: a hard link (True: ``temp`` still names the file), else, on file
    systems without links, a rename with ``RENAME_NOREPLACE`` (False: ``temp`` is gone)."""
    try:
        os.link(temp, path, src_dir_fd=dir_fd, dst_dir_fd=dir_fd, follow_symlinks=False)
    except OSError as exc:
        if exc.errno not in _NO_LINKS or not rename_noreplace(temp, path, dir_fd):
            raise
        return False
    return True


def rename_noreplace(temp: str, path: str, dir_fd: int | None) -> bool:
    """``renameat2(..., RENAME_NOREPLACE)`` through libc; False where it is missing.
    Raises FileExistsError if ``path`` exists."""
    import ctypes

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at = -100 if dir_fd is None else dir_fd  # AT_FDCWD
    if renameat2(at, os.fsencode(temp), at, os.fsencode(path), 1) == 0:  # RENAME_NOREPLACE
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL):
        return False
    raise OSError(code, os.strerror(code), path)
