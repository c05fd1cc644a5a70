"""Azure decides conditional writes: ``If-None-Match: *`` / ``If-Match: <ETag>`` go with
the request that makes the blob appear (Put Blob, or Put Block List for a large record,
never a Put Block), and a refusal is a `WriteConflict` after one request.

The contract kit covers the basics; these tests watch the wire at a proxy in front of
Azurite and put another writer between staging and commit (with the SDK's own sync
client, a separate connection), so the service, not a check made beforehand, has to
refuse the commit.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Callable, Iterator

import pytest
from azure.core.exceptions import AzureError
from azure.storage.blob import BlobBlock, BlobServiceClient

from moorage.errors import ConfigurationError, WriteConflict
from moorage.storage import ALWAYS, IF_ABSENT, BytesLike, WriteCondition
from moorage_azure.errors import ConditionFailed, conflict
from moorage_azure.upload import plan_blocks

from servers.azure import AzureServer
from servers.proxy import CountingProxy, Exchange

BLOCK = 64 * 1024
LARGE = 5 * BLOCK + 123  # 6 blocks: the block-list path


def _payload(seed: int, size: int = LARGE) -> bytes:
    return random.Random(seed).randbytes(size)


def _commits(proxy: CountingProxy) -> list[Exchange]:
    return [e for e in proxy.exchanges if e.method == "PUT" and "comp=blocklist" in e.path]


def _staged(proxy: CountingProxy) -> list[Exchange]:
    return [e for e in proxy.exchanges if e.method == "PUT" and "comp=block&" in e.path]


def _puts(proxy: CountingProxy) -> list[Exchange]:
    return [e for e in proxy.exchanges if e.method == "PUT" and "comp=" not in e.path]


class Setup:
    """A container, a storage reaching it through the proxy (small blocks), and the
    SDK's own client on it, for the other writer."""

    def __init__(self, azurite: AzureServer, proxy: CountingProxy) -> None:
        self.container = azurite.create_container()
        self.storage = azurite.storage(
            self.container, via=proxy.endpoint, block_size=BLOCK, max_concurrency=4
        )
        self.client = BlobServiceClient.from_connection_string(azurite.connection_string)

    def blob_name(self, key: str) -> str:
        return f"results/{key}"

    def other_writes(self, key: str, data: bytes) -> Callable[[Exchange], None]:
        """A proxy hook: another client replaces the blob (one Put Blob)."""

        def write(_: Exchange) -> None:
            blob = self.client.get_blob_client(self.container, self.blob_name(key))
            blob.upload_blob(data, overwrite=True)

        return write

    def stored(self, key: str) -> bytes:
        blob = self.client.get_blob_client(self.container, self.blob_name(key))
        return blob.download_blob().readall()


@pytest.fixture
def setup(azurite: AzureServer, proxy: CountingProxy) -> Iterator[Setup]:
    made = Setup(azurite, proxy)
    try:
        yield made
    finally:
        made.storage.close()
        made.client.close()


def test_if_absent_travels_on_the_put_blob(setup: Setup, proxy: CountingProxy) -> None:
    storage = setup.storage
    proxy.reset()
    storage.write_path("small", b"first", if_absent=True)
    assert [e.headers.get("if-none-match") for e in _puts(proxy)] == ["*"], proxy.summary()
    assert storage.read_path("small") == b"first"

    proxy.reset()
    with pytest.raises(WriteConflict):
        storage.write_path("small", b"second", if_absent=True)
    # one request, answered 409 and not retried (the storage allows 3 retries)
    assert [(e.method, e.status) for e in proxy.exchanges] == [("PUT", 409)], proxy.summary()
    assert setup.stored("small") == b"first"


def test_unconditional_writes_send_no_condition(setup: Setup, proxy: CountingProxy) -> None:
    """The control for the header checks: a plain write must still overwrite."""
    storage = setup.storage
    storage.write_path("plain", b"one")
    storage.write_parts("plain-large", [_payload(1)])
    proxy.reset()
    storage.write_path("plain", b"two")
    storage.write_parts("plain-large", [_payload(2)])
    for exchange in proxy.exchanges:
        assert "if-none-match" not in exchange.headers, exchange.line()
        assert "if-match" not in exchange.headers, exchange.line()
    assert setup.stored("plain") == b"two"
    assert setup.stored("plain-large") == _payload(2)


def test_if_absent_large_record_is_decided_at_the_commit(
    setup: Setup, proxy: CountingProxy
) -> None:
    storage = setup.storage
    mine = _payload(1)
    proxy.reset()
    parts: list[BytesLike] = [b"head", memoryview(mine)]
    storage.write_parts("big", parts, if_absent=True)
    assert len(_staged(proxy)) == len(plan_blocks(parts, BLOCK)) == 7
    assert all("if-none-match" not in e.headers for e in _staged(proxy))
    assert [e.headers.get("if-none-match") for e in _commits(proxy)] == ["*"]
    assert setup.stored("big") == b"head" + mine

    # Absent when the write begins; another writer creates it while the blocks are up.
    proxy.reset()
    proxy.before("comp=blocklist", setup.other_writes("raced", b"the other writer"))
    with pytest.raises(WriteConflict, match="written by someone else first"):
        storage.write_parts("raced", [_payload(2)], if_absent=True)
    assert len(_staged(proxy)) == 6, "the write was refused before its blocks went up"
    assert [e.status for e in _commits(proxy)] == [409], proxy.summary()
    assert setup.stored("raced") == b"the other writer"


def test_async_if_absent_large_record_is_refused(setup: Setup, proxy: CountingProxy) -> None:
    storage = setup.storage
    storage.write_path("taken", b"first")
    proxy.reset()
    with pytest.raises(WriteConflict):
        asyncio.run(storage.awrite_parts("taken", [_payload(3)], if_absent=True))
    assert [e.headers.get("if-none-match") for e in _commits(proxy)] == ["*"]
    assert [e.status for e in _commits(proxy)] == [409]
    assert setup.stored("taken") == b"first"


def test_if_version_large_record_sends_the_etag_on_the_commit(
    setup: Setup, proxy: CountingProxy
) -> None:
    storage = setup.storage
    storage.write_parts("v", [_payload(1)])
    seen = storage.version_of("v")
    assert seen is not None
    proxy.reset()
    storage.write_parts("v", [_payload(2)], if_version=seen)
    assert [e.headers.get("if-match") for e in _commits(proxy)] == [seen], proxy.summary()
    assert all("if-match" not in e.headers for e in _staged(proxy))
    assert setup.stored("v") == _payload(2)

    # A stale version: refused by the service at the commit, once.
    proxy.reset()
    with pytest.raises(WriteConflict, match="changed since version"):
        storage.write_parts("v", [_payload(3)], if_version=seen)
    assert [e.status for e in _commits(proxy)] == [412], proxy.summary()
    assert setup.stored("v") == _payload(2)


def test_if_version_large_record_loses_to_a_write_during_its_upload(
    setup: Setup, proxy: CountingProxy
) -> None:
    storage = setup.storage
    storage.write_path("v", b"one")
    seen = storage.version_of("v")
    assert seen is not None
    proxy.reset()
    proxy.before("comp=blocklist", setup.other_writes("v", b"two, by another writer"))
    with pytest.raises(WriteConflict):
        storage.write_parts("v", [_payload(4)], if_version=seen)
    assert [e.status for e in _commits(proxy)] == [412], proxy.summary()
    assert setup.stored("v") == b"two, by another writer"
    assert storage.version_of("v") != seen


def test_if_version_on_a_blob_deleted_during_the_upload(setup: Setup, proxy: CountingProxy) -> None:
    storage = setup.storage
    storage.write_path("gone", b"one")
    seen = storage.version_of("gone")
    assert seen is not None

    def delete(_: Exchange) -> None:
        setup.client.get_blob_client(setup.container, setup.blob_name("gone")).delete_blob()

    proxy.before("comp=blocklist", delete)
    with pytest.raises(WriteConflict):
        storage.write_parts("gone", [_payload(5)], if_version=seen)
    assert storage.version_of("gone") is None
    assert not storage.exists("gone")


def test_if_absent_stages_again_when_its_blocks_were_discarded(
    setup: Setup, proxy: CountingProxy
) -> None:
    """Another writer commits a block list to the blob and deletes it again while our
    blocks are up: its commit discards our uncommitted blocks, yet the blob is absent,
    so the condition still holds and the write stages its blocks again and succeeds."""
    storage = setup.storage

    def create_and_delete(_: Exchange) -> None:
        blob = setup.client.get_blob_client(setup.container, setup.blob_name("flicker"))
        block = "x" * 48  # the block ids of one blob share one length
        blob.stage_block(block, b"briefly")
        blob.commit_block_list([BlobBlock(block)])
        blob.delete_blob()

    proxy.reset()
    proxy.before("comp=blocklist", create_and_delete)
    storage.write_parts("flicker", [_payload(6)], if_absent=True)
    assert [e.status for e in _commits(proxy)] == [400, 201], proxy.summary()
    assert len(_staged(proxy)) == 12
    assert setup.stored("flicker") == _payload(6)


def test_conflict_names_the_key_and_the_url(setup: Setup) -> None:
    storage = setup.storage
    storage.write_path("k/x", b"1")
    with pytest.raises(WriteConflict) as created:
        storage.write_path("k/x", b"2", if_absent=True)
    message = str(created.value)
    assert f"'k/x' in {storage.url}" in message, message
    assert storage.url == f"az://{setup.container}/results"
    assert type(created.value) is WriteConflict
    assert not isinstance(created.value, AzureError)
    assert isinstance(created.value.__cause__, AzureError), "the SDK's error is not kept"

    seen = storage.version_of("k/x")
    assert seen is not None
    storage.write_path("k/x", b"3")
    with pytest.raises(WriteConflict) as replaced:
        storage.write_parts("k/x", [_payload(7)], if_version=seen)
    message = str(replaced.value)
    assert f"'k/x' in {storage.url}" in message, message
    assert repr(seen) in message, message


def test_version_of_is_one_head_request(setup: Setup, proxy: CountingProxy) -> None:
    storage = setup.storage
    storage.write_parts("big", [_payload(1)])
    proxy.reset()
    etag = storage.version_of("big")
    assert [(e.method, e.received) for e in proxy.exchanges] == [("HEAD", 0)]
    blob = setup.client.get_blob_client(setup.container, setup.blob_name("big"))
    assert etag == blob.get_blob_properties().etag


def test_a_lost_race_found_after_discarded_blocks_is_a_conflict() -> None:
    """`ConditionFailed` (raised by the block upload when its blocks were discarded and
    the blob now there fails the condition; Azurite checks the condition first, so it
    never gets there) maps to the same `WriteConflict`; other errors, and errors of
    unconditional writes, map to none."""
    failed = ConditionFailed("InvalidBlockList")
    found = conflict(failed, key="k", url="az://c/p", condition=IF_ABSENT)
    assert isinstance(found, WriteConflict)
    assert "'k' in az://c/p" in str(found)
    found = conflict(failed, key="k", url="az://c/p", condition=WriteCondition(if_version='"0x1"'))
    assert isinstance(found, WriteConflict)
    assert "changed since version" in str(found)
    assert conflict(failed, key="k", url="az://c/p", condition=ALWAYS) is None
    with pytest.raises(ConfigurationError, match="not both"):
        WriteCondition(if_absent=True, if_version='"0x1"')
    other = ValueError("not a conflict")
    assert conflict(other, key="k", url="az://c/p", condition=IF_ABSENT) is None
