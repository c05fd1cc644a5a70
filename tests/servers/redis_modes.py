"""Redis in its two multi-server modes, started from the suite's own ``redis-server``.

- `RedisSentinelSetup`: one master and three ``redis-server <conf> --sentinel`` processes
  that monitor it as ``mymaster`` (quorum 2), each with its own config file in a tmp
  dir; ready once every sentinel reports the master's address.
- `RedisClusterSetup`: three ``cluster-enabled`` nodes joined with ``CLUSTER MEET`` and
  given the 16384 slots in three ranges with ``CLUSTER ADDSLOTS``; ready once every
  node says ``cluster_state:ok`` and knows the other two.

Both listen on 127.0.0.1 and free ports; a cluster node also needs its port + 10000
(the cluster bus), so its ports are picked with both free. The session fixtures
`redis_sentinel` and `redis_cluster` start a setup the first time a test asks for it
and stop every process at the end. They are not ``BACKEND`` modules (that name is taken
by ``servers.redis``): the Redis tests import the fixtures in their conftest.
"""

from __future__ import annotations

import socket
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from servers import ServerProcess, free_port, wait_until
from servers.redis import RedisServer, find_redis_server, start_redis

__all__ = [
    "SERVICE",
    "RedisClusterSetup",
    "RedisSentinelSetup",
    "cluster_port",
    "redis_cluster",
    "redis_sentinel",
    "start_cluster",
    "start_sentinel",
]

#: The service name the sentinels monitor.
SERVICE = "mymaster"
#: The cluster bus listens on the node's port plus this.
_BUS_OFFSET = 10000
_SLOTS = 16384


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def cluster_port() -> int:
    """A free port whose cluster-bus port (port + 10000) is free too."""
    for _ in range(200):
        port = free_port()
        if port + _BUS_OFFSET <= 65535 and _bindable(port + _BUS_OFFSET):
            return port
    raise RuntimeError("found no free pair of ports (port, port + 10000) on 127.0.0.1")


def _prefix() -> str:
    return f"test-{uuid.uuid4().hex[:12]}:"


class RedisSentinelSetup:
    """A master and three sentinels watching it as `SERVICE`."""

    def __init__(self, master: RedisServer, sentinels: list[ServerProcess]) -> None:
        self.master = master
        self.sentinels = sentinels

    @property
    def sentinel_ports(self) -> list[int]:
        return [sentinel.port for sentinel in self.sentinels]

    def url_for(self, db: int = 0, scheme: str = "redis+sentinel") -> str:
        """``redis+sentinel://127.0.0.1:P1,127.0.0.1:P2,127.0.0.1:P3/mymaster/<db>``."""
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"{scheme}://{hosts}/{SERVICE}/{db}"

    @property
    def url(self) -> str:
        return self.url_for()

    @staticmethod
    def prefix() -> str:
        """A key prefix no other test uses."""
        return _prefix()

    @property
    def client(self) -> redis.Redis:
        """A plain client on the master's db 0, for looking at what the code stored."""
        return self.master.client

    def stop(self) -> None:
        for sentinel in self.sentinels:
            sentinel.stop()
        self.master.stop()


def _knows_master(port: int, master_port: int) -> bool:
    client = redis.Redis(host="127.0.0.1", port=port, socket_timeout=5)
    try:
        address = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        return bool(address) and int(address[1]) == master_port
    except redis.RedisError:
        return False
    finally:
        client.close()


def start_sentinel(log_dir: Path) -> RedisSentinelSetup:
    """Start a master and three sentinels; wait until every sentinel reports it."""
    master = start_redis(log_dir, name="sentinel-master")
    sentinels: list[ServerProcess] = []
    try:
        for number in range(3):
            port = free_port()
            config = log_dir / f"sentinel-{number}.conf"
            config.write_text(
                f"port {port}\n"
                "bind 127.0.0.1\n"
                f'dir "{log_dir}"\n'
                f"sentinel monitor {SERVICE} 127.0.0.1 {master.port} 2\n"
                f"sentinel down-after-milliseconds {SERVICE} 1000\n"
                f"sentinel failover-timeout {SERVICE} 5000\n"
            )
            command = [find_redis_server(), str(config), "--sentinel"]
            sentinels.append(ServerProcess(f"sentinel-{number}", command, port, log_dir))
        for sentinel in sentinels:
            wait_until(
                lambda port=sentinel.port: _knows_master(port, master.port),
                what=f"sentinel on port {sentinel.port} knowing {SERVICE}",
            )
    except BaseException:
        for sentinel in sentinels:
            sentinel.stop()
        master.stop()
        raise
    return RedisSentinelSetup(master, sentinels)


class RedisClusterSetup:
    """Three cluster nodes that share the 16384 slots."""

    def __init__(self, nodes: list[RedisServer]) -> None:
        self.nodes = nodes

    @property
    def ports(self) -> list[int]:
        return [node.port for node in self.nodes]

    def url_for(self, scheme: str = "redis+cluster", hosts: int = 3) -> str:
        """``redis+cluster://127.0.0.1:P1,...`` naming the first ``hosts`` nodes."""
        named = ",".join(f"127.0.0.1:{port}" for port in self.ports[:hosts])
        return f"{scheme}://{named}"

    @property
    def url(self) -> str:
        return self.url_for()

    @staticmethod
    def prefix() -> str:
        """A key prefix no other test uses."""
        return _prefix()

    def client(self) -> redis.cluster.RedisCluster:
        """A plain cluster client, for looking at what the code stored."""
        return redis.cluster.RedisCluster(host="127.0.0.1", port=self.ports[0], socket_timeout=30)

    def node_of(self, name: bytes) -> int:
        """The port of the node serving the slot of the key ``name``."""
        slot = int(self.nodes[0].client.execute_command("CLUSTER", "KEYSLOT", name))
        for number, node in enumerate(self.nodes):
            first, last = _slot_range(number)
            if first <= slot <= last:
                return node.port
        raise AssertionError(f"slot {slot} has no node")

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _slot_range(number: int) -> tuple[int, int]:
    """The slots node ``number`` (0, 1, 2) serves."""
    bounds = [0, 5461, 10923, _SLOTS]
    return bounds[number], bounds[number + 1] - 1


def _cluster_ready(node: RedisServer, count: int) -> bool:
    info = node.client.execute_command("CLUSTER", "INFO")
    text = info.decode() if isinstance(info, bytes) else str(info)
    fields = dict(line.split(":", 1) for line in text.split() if ":" in line)
    return fields.get("cluster_state") == "ok" and fields.get("cluster_known_nodes") == str(count)


def start_cluster(log_dir: Path) -> RedisClusterSetup:
    """Start three cluster nodes, join them, split the slots; wait until all say ok."""
    nodes: list[RedisServer] = []
    try:
        for number in range(3):
            node_dir = log_dir / f"node-{number}"
            node_dir.mkdir()
            port = cluster_port()
            binary = find_redis_server()
            command = [
                binary,
                "--port", str(port),
                "--bind", "127.0.0.1",
                "--save", "",
                "--appendonly", "no",
                "--dir", str(node_dir),
                "--cluster-enabled", "yes",
                "--cluster-config-file", str(node_dir / "nodes.conf"),
                "--cluster-node-timeout", "5000",
            ]  # fmt: skip
            nodes.append(RedisServer(ServerProcess(f"cluster-{number}", command, port, node_dir)))
        first = nodes[0].client
        for node in nodes[1:]:
            first.execute_command("CLUSTER", "MEET", "127.0.0.1", node.port)
        for number, node in enumerate(nodes):
            low, high = _slot_range(number)
            node.client.execute_command("CLUSTER", "ADDSLOTS", *range(low, high + 1))
        for node in nodes:
            wait_until(
                lambda node=node: _cluster_ready(node, len(nodes)),
                what=f"cluster node on port {node.port} reporting cluster_state:ok",
            )
    except BaseException:
        for node in nodes:
            node.stop()
        raise
    return RedisClusterSetup(nodes)


@pytest.fixture(scope="session")
def redis_sentinel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisSentinelSetup]:
    setup = start_sentinel(tmp_path_factory.mktemp("redis-sentinel"))
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisClusterSetup]:
    setup = start_cluster(tmp_path_factory.mktemp("redis-cluster"))
    try:
        yield setup
    finally:
        setup.stop()
