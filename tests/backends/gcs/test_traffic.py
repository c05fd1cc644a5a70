"""What moorage-gcs sends over the wire, counted at a proxy in front of the emulator:
no payload downloads for exists, read_head and listings; concurrent async writes that
overlap; one request per small write; chunked uploads straight from the buffers."""

from __future__ import annotations

import asyncio
import os
import random
import socket
import tracemalloc

import pytest

from moorage import StorageError
from moorage.results import ResultStore
from moorage.storage.upload import byte_views
from moorage_gcs.options import UPLOAD_UNIT
from moorage_gcs.upload import chunks

from .helpers import MakeGCS
from servers.gcs import GCSServer
from servers.proxy import CountingProxy

PAYLOAD = 1024 * 1024


def test_exists_read_head_and_listing_download_no_payload(
    make_gcs: MakeGCS, proxy: CountingProxy
) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint)
    storage.write_path("big/one", os.urandom(PAYLOAD))
    storage.write_path("big/two", os.urandom(PAYLOAD))

    proxy.reset()
    assert storage.exists("big/one") is True
    assert storage.exists("big/none") is False
    exchanges = proxy.exchanges
    assert len(exchanges) == 2, proxy.summary()
    assert all("alt=media" not in e.path for e in exchanges), proxy.summary()
    assert proxy.received() < 4096

    proxy.reset()
    assert storage.read_head("big/one", 100) == storage.read_head("big/one", 100)
    assert [e.headers.get("range") for e in proxy.exchanges] == ["bytes=0-99"] * 2
    assert proxy.received() < 2 * (100 + 1024)

    proxy.reset()
    assert list(storage.list_paths()) == ["big/one", "big/two"]
    assert asyncio.run(storage.alist_paths("big/")) == ["big/one", "big/two"]
    assert len(proxy.exchanges) == 2, proxy.summary()
    assert proxy.received() < 8192

    # The control: a read does download the payload, and the proxy sees it.
    proxy.reset()
    storage.read_path("big/one")
    assert proxy.received() >= PAYLOAD


def test_store_exists_reads_only_record_heads(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint)
    store = ResultStore(result_storage=storage, serializer="pickle", cache_result_in_memory=False)
    store.write(os.urandom(PAYLOAD), key="record")
    proxy.reset()
    assert store.exists("record") is True
    assert proxy.received() < 64 * 1024, proxy.summary()


def test_concurrent_async_writes_overlap(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint)
    count = 24

    async def concurrently() -> None:
        await asyncio.gather(*(storage.awrite_path(f"c/{i}", b"x" * 100) for i in range(count)))

    async def one_by_one() -> None:
        for i in range(count):
            await storage.awrite_path(f"s/{i}", b"x" * 100)

    proxy.reset()
    asyncio.run(one_by_one())
    assert len(proxy.exchanges) == count
    assert proxy.max_in_flight == 1, "the measure must see sequential writes as sequential"

    proxy.reset()
    proxy.hold(count // 2)  # requests wait until that many are in flight: only overlap gets there
    asyncio.run(concurrently())
    assert len(proxy.exchanges) == count
    assert proxy.max_in_flight >= count // 2, f"only {proxy.max_in_flight} requests overlapped"
    assert sorted(storage.list_paths("c/")) == sorted(f"c/{i}" for i in range(count))


def test_concurrent_async_reads_overlap(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint)
    for i in range(16):
        storage.write_path(f"r/{i}", str(i).encode())

    async def read_all() -> list[bytes]:
        return await asyncio.gather(*(storage.aread_path(f"r/{i}") for i in range(16)))

    proxy.reset()
    proxy.hold(8)
    assert asyncio.run(read_all()) == [str(i).encode() for i in range(16)]
    assert proxy.max_in_flight >= 8


def test_small_write_is_one_request_with_the_raw_bytes(
    make_gcs: MakeGCS, proxy: CountingProxy
) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint)
    # gcsfs's own simple upload wraps the payload in a multipart body with the fixed
    # boundary "==0==" and loses everything after such a line.
    tricky = b"head\n--==0==\nContent-Type: text/plain\n\ntail\n--==0==--\nend" * 3
    proxy.reset()
    storage.write_parts("tricky", [tricky[:10], bytearray(tricky[10:50]), memoryview(tricky[50:])])
    (exchange,) = proxy.exchanges
    assert exchange.method == "POST"
    assert "uploadType=media" in exchange.path
    assert exchange.sent == len(tricky), "the payload went up as it is, unwrapped"
    assert storage.read_path("tricky") == tricky


def test_large_write_goes_up_in_chunks(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint, chunk_size=4 * UPLOAD_UNIT)
    header, payload = b"h" * 100, random.Random(7).randbytes(10 * UPLOAD_UNIT + 5)
    proxy.reset()
    storage.write_parts("large", [header, payload])
    exchanges = proxy.exchanges
    assert "uploadType=resumable" in exchanges[0].path
    uploads = [e for e in exchanges[1:] if "upload_id=" in e.path]
    assert len(uploads) == len(exchanges) - 1
    # 256 KiB around the seam after the header, then views of at most 1 MiB.
    assert len(uploads) == 1 + 3 + 1
    assert [e.headers["content-range"].split(" ")[1].split("/")[0] for e in uploads[:2]] == [
        f"0-{UPLOAD_UNIT - 1}",
        f"{UPLOAD_UNIT}-{5 * UPLOAD_UNIT - 1}",
    ]
    assert storage.read_path("large") == header + payload


def test_failed_chunked_write_leaves_the_old_object(
    make_gcs: MakeGCS, proxy: CountingProxy
) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint, chunk_size=UPLOAD_UNIT, retries=0)
    storage.write_path("key", b"old value")
    proxy.reset()
    proxy.drop(after=3)  # the session, two chunks, then the network fails
    with pytest.raises(StorageError, match="cannot reach"):
        storage.write_path("key", os.urandom(6 * UPLOAD_UNIT))
    proxy.clear_rules()
    assert storage.read_path("key") == b"old value"
    assert list(storage.list_paths()) == ["key"]


def test_chunked_write_copies_little(make_gcs: MakeGCS) -> None:
    """A 12 MiB payload in 1 MiB chunks needs about one chunk of extra memory, not a
    joined copy of the payload."""
    storage = make_gcs(chunk_size=4 * UPLOAD_UNIT)
    header, payload = b"h" * 100, os.urandom(48 * UPLOAD_UNIT)
    storage.write_path("warm-up", b"x")  # session and credentials set up beforehand
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        storage.write_parts("measured", [header, payload])
        peak = tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()
    assert peak < len(payload) // 4, f"writing took {peak} extra bytes"
    assert storage.read_path("measured") == header + payload


def test_chunks_keep_gcs_sizes_and_bytes() -> None:
    rnd = random.Random(11)
    sizes = [0, 1, 5, UPLOAD_UNIT - 1, UPLOAD_UNIT, UPLOAD_UNIT + 1, 3 * UPLOAD_UNIT + 7]
    for _ in range(200):
        parts = [rnd.randbytes(rnd.choice(sizes)) for _ in range(rnd.randrange(0, 6))]
        size = UPLOAD_UNIT * rnd.choice([1, 2, 3, 4])
        pieces = list(chunks(byte_views(parts), size))
        assert b"".join(pieces) == b"".join(parts)
        for piece in pieces[:-1]:
            assert piece.nbytes % UPLOAD_UNIT == 0
            assert 0 < piece.nbytes <= size
        assert all(0 < piece.nbytes <= size for piece in pieces[-1:])


def test_chunks_slice_a_single_buffer_without_copying() -> None:
    buffer = bytearray(5 * UPLOAD_UNIT + 3)
    pieces = list(chunks(byte_views([buffer]), 2 * UPLOAD_UNIT))
    assert [p.nbytes for p in pieces] == [2 * UPLOAD_UNIT, 2 * UPLOAD_UNIT, UPLOAD_UNIT, 3]
    buffer[-1] = 1
    assert pieces[-1][-1] == 1, "the last piece is a view of the caller's buffer"
    assert all(p.obj is buffer for p in pieces)


def test_emulator_answers_while_another_request_is_pending(gcs_server: GCSServer) -> None:
    """The harness itself: the stock emulator serves one request at a time, so a client
    that has sent only half a request would block every other client."""
    stalled = socket.create_connection(("127.0.0.1", gcs_server.port))
    try:
        stalled.sendall(b"GET / HTTP/1.0\r\nHost: x\r\n")  # headers never finished
        with socket.create_connection(("127.0.0.1", gcs_server.port), timeout=60) as other:
            other.sendall(b"GET / HTTP/1.0\r\n\r\n")
            assert other.recv(64).startswith(b"HTTP/1.0 200")
    finally:
        stalled.close()
