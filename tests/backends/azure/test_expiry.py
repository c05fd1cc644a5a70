"""Azure keeps a record's expiry stamp as the blob's metadata, sent on the request that
makes the content appear (Put Blob, or the Put Block List of a large record, never a
Put Block), and List Blobs hands it back: checked against Azurite, on the wire at a
proxy, with conditional writes and their refusals."""

from __future__ import annotations

import asyncio
import datetime as dt
import random
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient

from moorage.errors import WriteConflict
from moorage.storage import StorageEntry
from moorage.storage.entries import expiry_stamp
from moorage_azure.storage import EXPIRY_NAME, AzureStorage

from servers.azure import AzureServer
from servers.proxy import CountingProxy, Exchange

BLOCK = 64 * 1024
LARGE = 3 * BLOCK + 123  # 4 blocks: the block-list path
MOMENT = dt.datetime(2031, 5, 17, 8, 30, 15, 250000, tzinfo=dt.UTC)
STAMP = expiry_stamp(MOMENT)
HEADER = f"x-ms-meta-{EXPIRY_NAME}"


def _payload(seed: int, size: int = LARGE) -> bytes:
    return random.Random(seed).randbytes(size)


def _entries(storage: AzureStorage, prefix: str = "") -> dict[str, StorageEntry]:
    return {e.key: e for page in storage.list_entries(prefix) for e in page}


def _listed(storage: AzureStorage, key: str) -> tuple[bool, dt.datetime | None]:
    entry = _entries(storage)[key]
    return entry.expiry_listed, entry.expiration


def _stamped(proxy: CountingProxy) -> list[tuple[str, str | None]]:
    """Each write request (Put Blob, Put Block, Put Block List) and its stamp header."""
    kinds = {"comp=blocklist": "blocklist", "comp=block&": "block"}

    def kind(exchange: Exchange) -> str:
        return next((name for part, name in kinds.items() if part in exchange.path), "put")

    return [(kind(e), e.headers.get(HEADER)) for e in proxy.exchanges if e.method == "PUT"]


@pytest.fixture
def storage(azurite: AzureServer, proxy: CountingProxy) -> Iterator[AzureStorage]:
    """A storage on a fresh container, through the proxy, with small blocks."""
    made = azurite.storage(azurite.create_container(), via=proxy.endpoint, block_size=BLOCK)
    assert isinstance(made, AzureStorage)
    yield made
    made.close()


def test_the_backend_declares_it(storage: AzureStorage) -> None:
    assert storage.lists_expiration is True
    assert "-" not in EXPIRY_NAME, "Azure metadata names are C# identifiers"


def test_the_stamp_rides_on_the_request_that_makes_the_blob(
    storage: AzureStorage, proxy: CountingProxy
) -> None:
    storage.write_path("small", b"value", expiry=STAMP)
    assert _stamped(proxy) == [("put", STAMP)], proxy.summary()

    proxy.reset()
    storage.write_parts("large", [_payload(1)[:10], memoryview(_payload(1))[10:]], expiry="never")
    sent = _stamped(proxy)
    assert sent[-1] == ("blocklist", "never"), proxy.summary()
    assert len(sent) > 2, proxy.summary()
    assert {kind for kind, _ in sent[:-1]} == {"block"}, proxy.summary()
    assert all(stamp is None for _, stamp in sent[:-1]), "a Put Block carried the stamp"

    proxy.reset()
    storage.write_path("plain", b"value")
    assert _stamped(proxy) == [("put", None)], "a write without a stamp sent one"


def test_listing_reports_the_stamp_of_each_write(storage: AzureStorage) -> None:
    large = _payload(2)
    storage.write_path("small/dated", b"value", expiry=STAMP)
    storage.write_path("small/never", b"value", expiry="never")
    storage.write_path("small/plain", b"value")
    storage.write_parts("large/dated", [large], expiry=STAMP)
    storage.write_parts("large/never", [large], expiry="never")
    storage.write_parts("large/plain", [large])
    storage.write_path("empty/dated", b"", expiry=STAMP)

    entries = _entries(storage)
    for key in ("small/dated", "large/dated", "empty/dated"):
        assert (entries[key].expiry_listed, entries[key].expiration) == (True, MOMENT), key
    for key in ("small/never", "large/never"):
        assert (entries[key].expiry_listed, entries[key].expiration) == (True, None), key
    for key in ("small/plain", "large/plain"):
        assert entries[key].expiry_listed is False, key
    assert storage.read_path("large/dated") == large
    assert entries["large/dated"].size == len(large)


def test_async_writes_and_listing(storage: AzureStorage) -> None:
    async def scenario() -> dict[str, tuple[bool, dt.datetime | None]]:
        await storage.awrite_path("a/small", b"value", expiry=STAMP)
        await storage.awrite_parts("a/large", [_payload(3)], expiry="never")
        return {
            e.key: (e.expiry_listed, e.expiration)
            async for page in storage.alist_entries("a/")
            for e in page
        }

    assert asyncio.run(scenario()) == {"a/small": (True, MOMENT), "a/large": (True, None)}


def test_a_rewrite_replaces_or_drops_the_stamp(storage: AzureStorage) -> None:
    storage.write_path("k", b"one", expiry=STAMP)
    storage.write_parts("k", [_payload(4)], expiry="never")
    assert _listed(storage, "k") == (True, None)
    storage.write_path("k", b"three")
    assert _listed(storage, "k")[0] is False, "an old stamp outlived its record"


@pytest.mark.parametrize("size", [100, LARGE], ids=["put-blob", "block-list"])
def test_conditional_writes_keep_the_stamp(storage: AzureStorage, size: int) -> None:
    first, second = _payload(5, size), _payload(6, size)
    storage.write_parts("cond", [first], if_absent=True, expiry=STAMP)
    with pytest.raises(WriteConflict):
        storage.write_parts("cond", [second], if_absent=True, expiry="never")
    assert _listed(storage, "cond") == (True, MOMENT), "a refused write changed the stamp"

    version = storage.version_of("cond")
    assert version is not None
    storage.write_parts("cond", [second], if_version=version, expiry="never")
    with pytest.raises(WriteConflict):
        storage.write_parts("cond", [first], if_version=version, expiry=STAMP)
    assert _listed(storage, "cond") == (True, None)
    assert storage.read_path("cond") == second


def test_the_service_keeps_it_as_blob_metadata(storage: AzureStorage, azurite: AzureServer) -> None:
    """What another tool sees: one metadata item, the stamp as written."""
    storage.write_path("seen", b"value", expiry=STAMP)
    container = storage.url.removeprefix("az://").split("/")[0]
    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        blob = client.get_blob_client(container, "results/seen")
        assert blob.get_blob_properties().metadata == {EXPIRY_NAME: STAMP}
