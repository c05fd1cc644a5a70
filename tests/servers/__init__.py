"""Real servers the test suite starts itself: on 127.0.0.1, on a free port, stopped at
the end. One module per server (``s3``, ``gcs``, ``azure``, ``redis``) built on the
helpers here; session-scoped fixtures in ``tests/conftest.py`` start each one the first
time a test asks for it, so a run that selects no cloud test starts no emulator.

Helper modules beside them define no server: ``proxy`` (a counting HTTP proxy that can
also hold, delay, drop or answer requests), ``loopback_http`` (its HTTP plumbing),
``endpoints`` (stand-ins: a port nobody listens on, a server that never answers),
``cleanup`` (environment and client clean-up) and ``gcs_emulator`` (the emulator's
launcher).

Nothing here mocks a client library: the backends talk HTTP or RESP to a real process.
"""

from __future__ import annotations

import ctypes
import importlib
import os
import pkgutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType

__all__ = ["ROOT", "ServerProcess", "free_port", "server_modules", "wait_until"]

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def wait_until(check: Callable[[], bool], *, what: str, timeout: float = 60.0) -> None:
    """Poll ``check`` until it returns True; fail with ``what`` after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            if check():
                return
        except OSError:
            pass
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what} did not come up within {timeout:.0f} s")
        time.sleep(0.05)


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.5)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def _die_with_parent() -> None:
    """In the child before exec: on Linux, get SIGKILL when the test process dies, so a
    run killed before its teardown leaves no server behind."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)


_PR_SET_PDEATHSIG = 1


class ServerProcess:
    """A server subprocess listening on ``127.0.0.1:port``; its output goes to a log file
    that start-up failures quote."""

    def __init__(
        self,
        name: str,
        command: Sequence[str],
        port: int,
        log_dir: Path,
        *,
        env: dict[str, str] | None = None,
        cwd: Path | None = None,
    ) -> None:
        self.name = name
        self.port = port
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.process = subprocess.Popen(
            list(command),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env={**os.environ, **(env or {})},
            cwd=cwd,
            start_new_session=True,  # its children die with it in stop()
            preexec_fn=_die_with_parent,
        )
        try:
            wait_until(self._ready, what=f"{name} on 127.0.0.1:{port}")
        except BaseException:
            self.stop()
            raise RuntimeError(f"{name} failed to start; its log:\n{self.log()}") from None

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self.process.returncode}")
        return _port_open(self.port)

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text(errors="replace")[-4000:]

    def __enter__(self) -> ServerProcess:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stop(self) -> None:
        if self.process.poll() is None:
            try:
                os.killpg(self.process.pid, signal.SIGTERM)
                self.process.wait(timeout=10)
            except (ProcessLookupError, subprocess.TimeoutExpired):
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


def server_modules() -> list[ModuleType]:
    """The modules of this package that define a server fixture (they set ``BACKEND``)."""
    found = []
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{__name__}.{info.name}")
        if hasattr(module, "BACKEND"):
            found.append(module)
    return found
