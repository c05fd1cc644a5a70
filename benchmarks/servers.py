"""The servers the benchmarks talk to: moto's S3 and a redis-server, on 127.0.0.1.

They come from the test suite's harness (``tests/servers``): the same launchers, free
ports and clean-up (a server dies with the process that started it). Each is started the
first time a workload asks for it, and `Servers.close` stops whatever was started.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from servers import ServerProcess
    from servers.redis import RedisServer
    from servers.s3 import S3Server

__all__ = ["ROOT", "Servers", "use_test_servers"]

ROOT = Path(__file__).resolve().parents[1]


def use_test_servers() -> None:
    """Make the test suite's ``servers`` package importable."""
    tests = str(ROOT / "tests")
    if tests not in sys.path:
        sys.path.insert(0, tests)


class Servers:
    """Starts moto and redis-server on demand; logs go to ``log_dir``."""

    def __init__(self, log_dir: Path) -> None:
        self.log_dir = log_dir
        self._moto: ServerProcess | None = None
        self._s3: S3Server | None = None
        self._redis: RedisServer | None = None

    def s3(self) -> S3Server:
        """moto's S3 server (started on first use)."""
        if self._s3 is None:
            use_test_servers()
            from servers.s3 import S3Server, start_moto

            folder = self.log_dir / "moto"
            folder.mkdir(parents=True, exist_ok=True)
            self._moto = start_moto(folder)
            self._s3 = S3Server(self._moto)
        return self._s3

    def redis(self) -> RedisServer:
        """A redis-server without persistence (started on first use)."""
        if self._redis is None:
            use_test_servers()
            from servers.redis import start_redis

            folder = self.log_dir / "redis"
            folder.mkdir(parents=True, exist_ok=True)
            self._redis = start_redis(folder)
        return self._redis

    def close(self) -> None:
        """Stop every server that was started."""
        if self._redis is not None:
            self._redis.stop()
            self._redis = None
        if self._moto is not None:
            self._moto.stop()
            self._moto = None
            self._s3 = None

    def __enter__(self) -> Servers:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
