"""Endpoints that stop answering, and a hang detector, for the "no call hangs" tests.

- `black_hole`: a TCP server on 127.0.0.1 that accepts connections and then neither
  reads nor answers. Its receive buffer is made small, so a request body larger than
  the socket buffers blocks the sender once they are full.
- `frozen`: a real server process (and its children) stopped with SIGSTOP, resumed
  with SIGCONT on the way out. The kernel still completes TCP handshakes for it and
  buffers what clients send, exactly as for a machine that froze.
- `outcomes`: runs calls each in its own thread, all at once, and reports what each
  raised; a call still running after the join timeout is reported as a hang;
  `assert_all_fail_in_time` checks that each raised a `StorageError` naming the storage's
  URL and the key (``'k'`` for reads, ``'w'`` for writes; none for listings).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from moorage import StorageError
from moorage.storage import Storage

from servers import ServerProcess

__all__ = ["HANG", "assert_all_fail_in_time", "black_hole", "frozen", "outcomes"]

#: What `outcomes` reports for a call that did not return in time.
HANG = "hung"


@contextlib.contextmanager
def black_hole() -> Iterator[str]:
    """``http://127.0.0.1:PORT`` of a server that accepts and then does nothing."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # inherited on accept
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            accepted.append(connection)  # kept open, never read

    thread = threading.Thread(target=accept, name="black-hole", daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{listener.getsockname()[1]}"
    finally:
        stop.set()
        listener.close()
        for connection in accepted:
            connection.close()


@contextlib.contextmanager
def frozen(process: ServerProcess) -> Iterator[None]:
    """The server stopped (SIGSTOP to its process group) inside the block."""
    group = os.getpgid(process.process.pid)
    os.killpg(group, signal.SIGSTOP)
    try:
        yield
    finally:
        os.killpg(group, signal.SIGCONT)


def outcomes(calls: dict[str, Callable[[], Any]], join_timeout: float) -> dict[str, Any]:
    """Run every call at once, each in a daemon thread; name -> the exception it raised,
    its return value, or `HANG` if it was still running ``join_timeout`` s after the
    start."""
    results: dict[str, Any] = {}

    def run(name: str, call: Callable[[], Any]) -> None:
        try:
            results[name] = call()
        except BaseException as exc:
            results[name] = exc

    threads = {
        name: threading.Thread(target=run, args=(name, call), name=f"call-{name}", daemon=True)
        for name, call in calls.items()
    }
    deadline = time.monotonic() + join_timeout
    for thread in threads.values():
        thread.start()
    for thread in threads.values():
        thread.join(max(deadline - time.monotonic(), 0))
    return {name: results.get(name, HANG) for name in calls}


def assert_all_fail_in_time(
    calls: dict[str, Callable[[], Any]], url: str, join_timeout: float, against: str
) -> None:
    """Every call raises a `StorageError` naming ``url`` (and its key), none hangs."""
    results = outcomes(calls, join_timeout)
    hung = [name for name, result in results.items() if result == HANG]
    assert not hung, f"still running {join_timeout:.0f} s after the start against {against}: {hung}"
    for name, result in results.items():
        assert isinstance(result, StorageError), f"{name}: {result!r}"
        text = str(result)
        assert url in text, f"{name}: {text}"
        if "list" not in name:
            assert "'k'" in text or "'w'" in text, f"{name}: {text}"


MIB = 1024 * 1024


def every_operation(
    single: Storage, chunked: Storage, chunked_name: str, *, large: int = 6 * MIB
) -> dict[str, Callable[[], Any]]:
    """Every storage operation as a call, sync and async: ``single`` sends a write in one
    request, ``chunked`` in parts (``chunked_name``: multipart, resumable, blocks).
    ``large`` bytes are far more than the socket buffers hold."""
    big = os.urandom(6 * MIB)
    return {
        "read": lambda: single.read_path("k"),
        "read_head": lambda: single.read_head("k", 4),
        "write": lambda: single.write_path("w", b"small"),
        "write_large": lambda: single.write_path("w", big[:large]),  # one request
        f"write_{chunked_name}": lambda: chunked.write_parts(
            "w", [big[:MIB], memoryview(big)[MIB:]]
        ),
        "exists": lambda: single.exists("k"),
        "delete": lambda: single.delete_path("k"),
        "list": lambda: list(single.list_paths("")),
        "aread": lambda: asyncio.run(single.aread_path("k")),
        f"awrite_{chunked_name}": lambda: asyncio.run(chunked.awrite_path("w", big)),
    }
