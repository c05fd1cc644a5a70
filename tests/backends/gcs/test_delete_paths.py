"""``delete_paths`` on GCS is the JSON API's batch endpoint: up to 100 deletes a request,
seen at a proxy in front of the emulator; an object already gone is no error, a missing
bucket is reported as such, and an object the service refused is named with its status
(an answer made up at the proxy, as real GCS words it, Content-IDs included)."""

from __future__ import annotations

import asyncio

import pytest

from moorage import StorageError
from moorage_gcs import GCSStorage

from .helpers import MakeGCS
from servers.proxy import CountingProxy, Exchange, Reply


def batches(proxy: CountingProxy) -> list[Exchange]:
    return [e for e in proxy.exchanges if e.method == "POST" and "/batch/" in e.path]


def deletes_in(exchange: Exchange) -> int:
    return exchange.body.count(b"\r\nDELETE /storage/v1/b/")


def pair(make_gcs: MakeGCS, proxy: CountingProxy) -> tuple[GCSStorage, GCSStorage]:
    writer = make_gcs()
    return writer, make_gcs(writer.url, endpoint_url=proxy.endpoint)


def test_hundreds_of_keys_go_in_batches_of_100(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    writer, storage = pair(make_gcs, proxy)
    keys = [f"many/{i:04d} é" for i in range(250)]  # names quoted in the batch lines

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

    summary = "\n".join(proxy.summary())
    assert len(proxy.exchanges) == 3, summary
    assert [deletes_in(e) for e in batches(proxy)] == [100, 100, 51], summary
    assert list(writer.list_paths()) == ["kept"]


def test_async_twin_and_a_lower_batch_size(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    writer, storage = pair(make_gcs, proxy)
    for i in range(5):
        writer.write_path(f"k/{i}", b"v")
    storage.remove_batch = 2
    proxy.reset()
    asyncio.run(storage.adelete_paths([f"k/{i}" for i in range(5)]))
    assert [deletes_in(e) for e in batches(proxy)] == [2, 2, 1], proxy.summary()
    assert list(writer.list_paths()) == []


def test_only_missing_objects_is_no_error(make_gcs: MakeGCS) -> None:
    storage = make_gcs()
    storage.delete_paths(["gone/a", "gone/b"])


def test_missing_bucket(make_gcs: MakeGCS) -> None:
    storage = make_gcs("gs://no-such-bucket-for-deletes/p")
    with pytest.raises(StorageError) as caught:
        storage.delete_paths(["x", "y"])
    message = str(caught.value)
    assert "cannot delete 2 keys ('x', 'y') from gs://no-such-bucket-for-deletes/p" in message
    assert "the bucket 'no-such-bucket-for-deletes' does not exist" in message


def _answer(*parts: tuple[int, int, str]) -> Reply:
    """A batch answer as GCS sends it: (Content-ID index, status, body) per part."""
    boundary = "batch_test_boundary"
    text = "".join(
        f"--{boundary}\r\nContent-Type: application/http\r\n"
        f"Content-ID: <response-item-{index}>\r\n\r\n"
        f"HTTP/1.1 {status} X\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n"
        f"{body}\r\n"
        for index, status, body in parts
    )
    text += f"--{boundary}--\r\n"
    return Reply(200, text.encode(), (("Content-Type", f"multipart/mixed; boundary={boundary}"),))


def test_refused_objects_are_named(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    _, storage = pair(make_gcs, proxy)
    denied = '{"error": {"code": 403, "message": "caller does not have storage.objects.delete"}}'
    # in another order than asked: the Content-IDs say which answer is whose
    proxy.reply(_answer((2, 204, ""), (1, 403, denied), (0, 404, "{}")), "/batch/")
    with pytest.raises(StorageError) as caught:
        storage.delete_paths(["a", "b", "c"])
    message = str(caught.value)
    assert (
        f"cannot delete 'b' in {storage.url}: 403 caller does not have storage.objects.delete"
        in message
    )

    proxy.clear_rules()
    proxy.reply(_answer((0, 204, "")), "/batch/")
    with pytest.raises(StorageError, match="accounts for 1 of 2 deletes"):
        storage.delete_paths(["a", "b"])
