"""What goes over the wire, counted at a proxy in front of Azurite."""

from __future__ import annotations

import asyncio
import random

from moorage.results import ResultStore
from moorage_azure.upload import plan_blocks

from servers.azure import AzureServer
from servers.proxy import CountingProxy, Exchange

PAYLOAD = 1024 * 1024


def _payload(size: int = PAYLOAD) -> bytes:
    return random.Random(7).randbytes(size)


def test_exists_read_head_and_listing_download_no_payload(
    azurite: AzureServer, proxy: CountingProxy
) -> None:
    container = azurite.create_container()
    direct = azurite.storage(container)
    direct.write_path("big", _payload())
    counted = azurite.storage(container, via=proxy.endpoint)

    proxy.reset()
    assert counted.exists("big") is True
    assert [(e.method, e.received) for e in proxy.exchanges] == [("HEAD", 0)]

    proxy.reset()
    assert counted.read_head("big", 100) == _payload()[:100]
    assert [(e.method, e.range, e.received) for e in proxy.exchanges] == [
        ("GET", "bytes=0-99", 100)
    ]

    proxy.reset()
    assert list(counted.list_paths()) == ["big"]
    assert [e.method for e in proxy.exchanges] == ["GET"]
    assert "comp=list" in proxy.exchanges[0].path
    assert proxy.received() < 4096

    proxy.reset()  # the control: a full read does show up in the count
    assert counted.read_path("big") == _payload()
    assert proxy.received() >= PAYLOAD


def test_store_exists_reads_only_the_record_head(
    azurite: AzureServer, proxy: CountingProxy
) -> None:
    container = azurite.create_container()
    ResultStore(result_storage=azurite.storage(container)).write(_payload(), key="record")
    store = ResultStore(
        result_storage=azurite.storage(container, via=proxy.endpoint),
        cache_result_in_memory=False,
    )
    proxy.reset()
    assert store.exists("record")
    assert proxy.exchanges, "the store did not ask the storage"
    assert all(e.range is not None for e in proxy.exchanges if e.method == "GET")
    assert proxy.received() < 64 * 1024


def test_concurrent_awrites_overlap(azurite: AzureServer, proxy: CountingProxy) -> None:
    storage = azurite.storage(azurite.create_container(), via=proxy.endpoint)

    async def concurrently() -> None:
        await asyncio.gather(*(storage.awrite_path(f"c/{i}", b"x" * i) for i in range(20)))

    proxy.reset()
    proxy.hold(4)  # requests wait until 4 are in flight: only concurrent writes get there
    asyncio.run(concurrently())
    assert proxy.max_in_flight >= 4
    assert sorted(storage.list_paths("c/")) == sorted(f"c/{i}" for i in range(20))


def test_sequential_awrites_do_not_overlap(azurite: AzureServer, proxy: CountingProxy) -> None:
    """The control for the test above: the proxy's count tells the two apart."""
    storage = azurite.storage(azurite.create_container(), via=proxy.endpoint)

    async def one_by_one() -> None:
        for i in range(5):
            await storage.awrite_path(f"s/{i}", b"x")

    proxy.reset()
    asyncio.run(one_by_one())
    assert proxy.max_in_flight == 1
    assert len(proxy.exchanges) == 5


def test_large_payload_goes_up_in_blocks(azurite: AzureServer, proxy: CountingProxy) -> None:
    block = 256 * 1024
    storage = azurite.storage(azurite.create_container(), via=proxy.endpoint, block_size=block)
    payload = _payload(5 * block + 1000)
    parts = [b"header", memoryview(payload), bytearray(b"trailer")]
    expected_blocks = plan_blocks(parts, block)
    assert [sum(len(v) for v in b) for b in expected_blocks] == [6, *[block] * 5, 1007]

    proxy.reset()
    proxy.hold(2, "comp=block&")  # and the blocks are staged concurrently
    storage.write_parts("large", parts)
    staged = [e for e in proxy.exchanges if e.method == "PUT" and "comp=block&" in e.path]
    commits = [e for e in proxy.exchanges if e.method == "PUT" and "comp=blocklist" in e.path]
    assert len(staged) == len(expected_blocks)
    assert sum(e.sent for e in staged) == len(payload) + len("header") + len("trailer")
    assert len(commits) == 1
    assert proxy.max_in_flight >= 2
    assert storage.read_path("large") == b"header" + payload + b"trailer"

    proxy.reset()  # at or under the block size: a single Put Blob
    storage.write_parts("small", [b"header", memoryview(payload)[: block - 6]])
    assert [(e.method, "comp=" in e.path) for e in proxy.exchanges] == [("PUT", False)]


def test_plan_blocks_keeps_order_and_copies_only_small_pieces() -> None:
    payload = bytes(range(256)) * 40  # 10240 bytes
    parts = [b"ab", payload, b"", b"cd", memoryview(b"efg")]
    blocks = plan_blocks(parts, 4096)
    assert b"".join(b"".join(views) for views in blocks) == b"ab" + payload + b"cdefg"
    assert all(sum(len(v) for v in views) <= 4096 for views in blocks)
    full = [views for views in blocks if sum(len(v) for v in views) == 4096]
    assert full
    assert all(len(views) == 1 for views in full), "full blocks must be one view"
    assert plan_blocks([], 10) == []


def test_storages_with_different_options_do_not_share_a_client(
    azurite: AzureServer, proxy: CountingProxy
) -> None:
    container = azurite.create_container()
    direct = azurite.storage(container)
    counted = azurite.storage(container, via=proxy.endpoint)
    direct.write_path("k", b"1")
    proxy.reset()
    assert direct.read_path("k") == b"1"
    assert proxy.exchanges == [], "the direct storage went through the proxy's client"
    assert counted.read_path("k") == b"1"
    assert len(proxy.exchanges) == 1


def test_exists_sees_another_clients_fresh_write(azurite: AzureServer) -> None:
    container = azurite.create_container()
    writer, reader = azurite.storage(container), azurite.storage(container)
    assert reader.exists("fresh") is False
    assert list(reader.list_paths()) == []
    writer.write_path("fresh", b"new")
    assert reader.exists("fresh") is True
    assert list(reader.list_paths()) == ["fresh"]
    writer.delete_path("fresh")
    assert reader.exists("fresh") is False
    assert list(reader.list_paths()) == []


def _commit_as_another_writer(azurite: AzureServer, container: str, data: bytes) -> None:
    """Another client writes ``data`` to ``container/results/k`` in blocks."""
    from azure.storage.blob import BlobServiceClient

    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        blob = client.get_blob_client(container, "results/k")
        block_id = "other-writer".ljust(48, "-")  # the length every writer uses
        blob.stage_block(block_id, data, length=len(data))
        blob.commit_block_list([block_id])  # type: ignore[list-item]


def test_a_write_whose_blocks_another_writer_discarded_was_overwritten(
    azurite: AzureServer, proxy: CountingProxy
) -> None:
    container = azurite.create_container()
    storage = azurite.storage(container, via=proxy.endpoint, block_size=64 * 1024)
    ours, theirs = b"o" * 200_000, b"theirs"
    # Just before our commit, another writer commits: that discards our staged blocks.
    proxy.before("comp=blocklist", lambda _: _commit_as_another_writer(azurite, container, theirs))
    storage.write_path("k", ours)  # done: ours came first and was replaced at once
    commits = [e.status for e in proxy.exchanges if "comp=blocklist" in e.path]
    assert commits == [400], "the lost commit must not be repeated over the newer blob"
    assert storage.read_path("k") == theirs


def test_blocks_discarded_without_a_visible_change_are_staged_again(
    azurite: AzureServer, proxy: CountingProxy
) -> None:
    container = azurite.create_container()
    storage = azurite.storage(container, via=proxy.endpoint, block_size=64 * 1024)
    ours = b"o" * 200_000

    def create_and_delete(_: Exchange) -> None:
        _commit_as_another_writer(azurite, container, b"brief")
        azurite.storage(container).delete_path("k")

    proxy.before("comp=blocklist", create_and_delete)  # the blob is missing before and after
    storage.write_path("k", ours)
    commits = [e.status for e in proxy.exchanges if "comp=blocklist" in e.path]
    assert commits == [400, 201]
    assert storage.read_path("k") == ours
