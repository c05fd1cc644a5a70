"""What goes over the wire, counted at a proxy in front of moto.

``exists``, ``read_head`` and listings never transfer a payload; a read is one GET and a
write one PUT; concurrent ``awrite`` calls in one event loop are in flight at once.
"""

from __future__ import annotations

import asyncio
import random

from moorage.results import ResultStore
from moorage_s3 import S3Storage

from servers.proxy import CountingProxy
from servers.s3 import S3Server

PAYLOAD = 1024 * 1024


def pair(moto: S3Server, proxy: CountingProxy, name: str) -> tuple[S3Storage, S3Storage]:
    """A storage on a new bucket, and a second client of it whose requests are counted."""
    writer = moto.make_storage(name)
    counted = S3Storage(writer.url, **moto.options(proxy.endpoint))
    return writer, counted


def test_exists_read_head_and_listing_transfer_no_payload(
    moto: S3Server, proxy: CountingProxy
) -> None:
    writer, counted = pair(moto, proxy, "no-payload")
    payload = random.Random(7).randbytes(PAYLOAD)
    for key in ("big/one", "big/two", "other"):
        writer.write_path(key, payload)

    assert counted.exists("big/one") is True
    assert counted.exists("missing") is False
    assert counted.exists("big") is False, "a 'folder' of keys is not a key"
    assert counted.read_head("big/one", 16) == payload[:16]
    assert sorted(counted.list_paths()) == ["big/one", "big/two", "other"]
    assert sorted(counted.list_paths("big/")) == ["big/one", "big/two"]

    async def twins() -> None:
        assert await counted.aexists("big/two") is True
        assert await counted.aread_head("big/two", 100) == payload[:100]
        assert await counted.alist_paths("o") == ["other"]

    asyncio.run(twins())

    exchanges = proxy.exchanges
    summary = "\n".join(proxy.summary())
    assert len(exchanges) == 9, summary
    heads = [e for e in exchanges if e.method == "HEAD"]
    ranged = [e for e in exchanges if e.method == "GET" and "range" in e.headers]
    listings = [e for e in exchanges if e.method == "GET" and "list-type=2" in e.path]
    assert (len(heads), len(ranged), len(listings)) == (4, 2, 3), summary
    assert [e.headers["range"] for e in ranged] == ["bytes=0-15", "bytes=0-99"]
    assert [e.received for e in ranged] == [16, 100]
    assert all(e.received == 0 for e in heads), summary
    assert all(e.received < 4096 for e in listings), summary
    assert sum(e.received for e in exchanges) < 16 * 1024, "more than names and heads came back"
    # listings ask S3 for the keys under the prefix only
    assert "prefix=records%2Fbig%2F" in listings[1].path


def test_store_exists_reads_only_the_record_head(moto: S3Server, proxy: CountingProxy) -> None:
    writer, counted = pair(moto, proxy, "store-exists")
    value = random.Random(3).randbytes(PAYLOAD)
    ResultStore(result_storage=writer, serializer="pickle").write(value, key="record")
    store = ResultStore(result_storage=counted, cache_result_in_memory=False)

    assert store.exists("record") is True
    assert store.exists("absent") is False
    assert asyncio.run(store.aexists("record")) is True
    assert proxy.received() < 64 * 1024, "\n".join(proxy.summary())

    proxy.reset()
    assert store.read("record").result == value
    assert proxy.received() > PAYLOAD, "the proxy missed the payload"


def test_a_read_is_one_get_and_a_write_one_put(moto: S3Server, proxy: CountingProxy) -> None:
    _, counted = pair(moto, proxy, "one-request")
    counted.write_path("k", b"x" * 1000)
    counted.write_parts("parts", [b"head", bytearray(b"meta"), memoryview(b"payload")])
    assert counted.read_path("k") == b"x" * 1000
    assert counted.read_path("parts") == b"headmetapayload"
    assert [e.method for e in proxy.exchanges] == ["PUT", "PUT", "GET", "GET"]
    assert all("range" not in e.headers for e in proxy.exchanges)


def test_concurrent_awrites_are_in_flight_together(moto: S3Server, proxy: CountingProxy) -> None:
    _, counted = pair(moto, proxy, "overlap")
    payloads = {f"concurrent/{i}": bytes([i]) * 2048 for i in range(24)}

    async def one_after_another() -> None:
        for key, payload in list(payloads.items())[:6]:
            await counted.awrite_path(key, payload)

    async def together() -> list[bytes]:
        await asyncio.gather(*(counted.awrite_path(k, p) for k, p in payloads.items()))
        return await asyncio.gather(*(counted.aread_path(k) for k in payloads))

    asyncio.run(one_after_another())
    assert proxy.max_in_flight == 1, "sequential writes overlapped: the counter is wrong"

    proxy.reset()
    assert asyncio.run(together()) == list(payloads.values())
    assert len(proxy.exchanges) == 2 * len(payloads)
    assert proxy.max_in_flight > 1, "concurrent awrites ran one after another"


def test_exists_sees_another_clients_changes_at_once(moto: S3Server) -> None:
    one = moto.make_storage("two-clients")
    other = S3Storage(one.url, **moto.options())
    assert other.exists("fresh") is False
    assert list(other.list_paths()) == []
    one.write_path("fresh", b"new")
    assert other.exists("fresh") is True
    assert list(other.list_paths()) == ["fresh"]
    assert other.read_path("fresh") == b"new"
    one.delete_path("fresh")
    assert other.exists("fresh") is False
    assert list(other.list_paths()) == []


def test_async_calls_from_several_event_loops(moto: S3Server) -> None:
    storage = moto.make_storage("loops")

    async def write_then_read(key: str) -> bytes:
        await storage.awrite_path(key, key.encode())
        return await storage.aread_path(key)

    # each asyncio.run is a new, short-lived loop; the client lives on fsspec's loop
    assert [asyncio.run(write_then_read(f"k{i}")) for i in range(3)] == [b"k0", b"k1", b"k2"]
    storage.close()  # a closed storage builds a new client when used again
    assert asyncio.run(storage.alist_paths()) == ["k0", "k1", "k2"]
