"""``delete_paths`` on Azure is Blob Batch: up to 256 deletes a request, seen at a proxy
in front of Azurite; a blob already gone is no error, a blob the service refuses to
delete (here: one under a lease) is named with its code."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from azure.storage.blob import BlobServiceClient

from moorage import StorageError
from moorage_azure.storage import AzureStorage

from servers.azure import AzureServer
from servers.proxy import CountingProxy, Exchange


@pytest.fixture
def pair(azurite: AzureServer, proxy: CountingProxy) -> Iterator[tuple[AzureStorage, AzureStorage]]:
    """A storage on a fresh container, and a second one on it whose requests are counted."""
    container = azurite.create_container()
    writer = azurite.storage(container)
    counted = azurite.storage(container, via=proxy.endpoint)
    assert isinstance(writer, AzureStorage)
    assert isinstance(counted, AzureStorage)
    yield writer, counted
    writer.close()
    counted.close()


def batches(proxy: CountingProxy) -> list[Exchange]:
    return [e for e in proxy.exchanges if e.method == "POST" and "comp=batch" in e.path]


def deletes_in(exchange: Exchange) -> int:
    return exchange.body.count(b"\r\nDELETE ")


def test_hundreds_of_keys_go_in_batches_of_256(
    pair: tuple[AzureStorage, AzureStorage], proxy: CountingProxy
) -> None:
    writer, storage = pair
    keys = [f"many/{i:04d}" for i in range(300)]

    async def fill() -> None:
        gate = asyncio.Semaphore(16)

        async def put(key: str) -> None:
            async with gate:
                await writer.awrite_path(key, b"x")

        await asyncio.gather(*(put(key) for key in keys))

    asyncio.run(fill())
    writer.write_path("kept", b"y")
    proxy.reset()

    storage.delete_paths([*keys, "never/written"])

    sent = batches(proxy)
    summary = "\n".join(proxy.summary())
    assert len(proxy.exchanges) == 2, summary
    assert [deletes_in(e) for e in sent] == [256, 45], summary
    assert list(writer.list_paths()) == ["kept"]


def test_async_twin_and_a_lower_batch_size(
    pair: tuple[AzureStorage, AzureStorage], proxy: CountingProxy
) -> None:
    writer, storage = pair
    for i in range(5):
        writer.write_path(f"k/{i}", b"v")
    storage.remove_batch = 2
    proxy.reset()
    asyncio.run(storage.adelete_paths([f"k/{i}" for i in range(5)]))
    assert [deletes_in(e) for e in batches(proxy)] == [2, 2, 1], proxy.summary()
    assert list(writer.list_paths()) == []


def test_a_blob_the_service_refuses_is_named(
    pair: tuple[AzureStorage, AzureStorage], azurite: AzureServer
) -> None:
    writer, storage = pair
    for key in ("a", "held", "b"):
        writer.write_path(key, b"v")
    container = storage.url.removeprefix("az://").split("/")[0]
    with BlobServiceClient.from_connection_string(azurite.connection_string) as client:
        blob = client.get_blob_client(container, "results/held")
        lease = blob.acquire_lease(lease_duration=-1, lease_id=str(uuid.uuid4()))
        try:
            with pytest.raises(StorageError) as caught:
                storage.delete_paths(["a", "held", "b"])
        finally:
            lease.release()
    message = str(caught.value)
    assert f"cannot delete 'held' in {storage.url}: 412 LeaseIdMissing" in message
    assert list(writer.list_paths()) == ["held"], "the other blobs were not deleted"


def test_missing_container(azurite: AzureServer) -> None:
    storage = azurite.storage("no-such-container-for-deletes")
    with pytest.raises(StorageError) as caught:
        storage.delete_paths(["x", "y"])
    storage.close()
    message = str(caught.value)
    assert "cannot delete 2 keys ('x', 'y') from az://no-such-container-for-deletes" in message
    assert "the container 'no-such-container-for-deletes' does not exist" in message
