"""GCS keeps a record's expiry stamp in the object's custom metadata, set by the upload
that creates the object (one multipart request, or the resumable session's opening), and
objects.list hands it back: checked against the emulator, single-request and chunked
writes, conditional ones included, and in the requests themselves."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
from urllib.parse import parse_qs, urlsplit

import pytest

from moorage.errors import WriteConflict
from moorage.storage import StorageEntry
from moorage.storage.entries import EXPIRY_METADATA_KEY, expiry_stamp
from moorage_gcs import GCSStorage
from moorage_gcs.options import UPLOAD_UNIT

from .helpers import MakeGCS
from servers.proxy import CountingProxy, Exchange

MOMENT = dt.datetime(2031, 5, 17, 8, 30, 15, 250000, tzinfo=dt.UTC)
STAMP = expiry_stamp(MOMENT)
#: Several chunks of the smallest size GCS allows, and a short last one.
LARGE = 3 * UPLOAD_UNIT + 17


def _payload(seed: int, size: int) -> bytes:
    """Random bytes, with the lines and dashes of a multipart body in them."""
    data = random.Random(seed).randbytes(size)
    return b"--\r\n\r\n--==0==\r\n" + data + b"\r\n--\r\n"


def _entries(storage: GCSStorage, prefix: str = "") -> dict[str, StorageEntry]:
    return {e.key: e for page in storage.list_entries(prefix) for e in page}


def _query(exchange: Exchange) -> dict[str, list[str]]:
    return parse_qs(urlsplit(exchange.path).query)


def test_the_backend_declares_it(make_gcs: MakeGCS) -> None:
    assert make_gcs().lists_expiration is True


@pytest.mark.parametrize("chunk_size", [None, UPLOAD_UNIT], ids=["default", "chunked"])
def test_listing_reports_the_stamp_of_each_write(make_gcs: MakeGCS, chunk_size: int | None) -> None:
    storage = make_gcs(**({"chunk_size": chunk_size} if chunk_size else {}))
    small, large = _payload(1, 1000), _payload(2, LARGE)
    storage.write_path("small/dated", small, expiry=STAMP)
    storage.write_parts("small/never", [small[:7], memoryview(small)[7:]], expiry="never")
    storage.write_path("small/plain", small)
    storage.write_parts("large/dated", [large[:10], memoryview(large)[10:]], expiry=STAMP)
    storage.write_path("large/never", large, expiry="never")
    storage.write_path("large/plain", large)
    storage.write_path("empty/dated", b"", expiry=STAMP)

    entries = _entries(storage)
    assert sorted(entries) == [
        "empty/dated",
        "large/dated",
        "large/never",
        "large/plain",
        "small/dated",
        "small/never",
        "small/plain",
    ]
    for name in ("small/dated", "large/dated", "empty/dated"):
        assert (entries[name].expiry_listed, entries[name].expiration) == (True, MOMENT), name
    for name in ("small/never", "large/never"):
        assert (entries[name].expiry_listed, entries[name].expiration) == (True, None), name
    for name in ("small/plain", "large/plain"):
        assert entries[name].expiry_listed is False, name
    # the metadata rode on the upload without touching the bytes
    assert storage.read_path("small/dated") == small
    assert storage.read_path("small/never") == small
    assert storage.read_path("large/dated") == large
    assert storage.read_path("empty/dated") == b""
    assert entries["small/dated"].size == len(small)
    assert entries["large/dated"].size == len(large)


def test_async_writes_and_listing(make_gcs: MakeGCS) -> None:
    storage = make_gcs(chunk_size=UPLOAD_UNIT)
    large = _payload(3, LARGE)

    async def scenario() -> list[StorageEntry]:
        await storage.awrite_path("a/small", b"value", expiry=STAMP)
        await storage.awrite_parts("a/large", [large], expiry="never")
        return [e async for page in storage.alist_entries("a/") for e in page]

    found = {e.key: (e.expiry_listed, e.expiration) for e in asyncio.run(scenario())}
    assert found == {"a/small": (True, MOMENT), "a/large": (True, None)}


def test_a_rewrite_replaces_or_drops_the_stamp(make_gcs: MakeGCS) -> None:
    storage = make_gcs()
    storage.write_path("k", b"one", expiry=STAMP)
    storage.write_path("k", b"two", expiry="never")
    assert _entries(storage)["k"].expiration is None
    storage.write_path("k", b"three")
    assert _entries(storage)["k"].expiry_listed is False, "an old stamp outlived its record"


@pytest.mark.parametrize("size", [100, LARGE], ids=["single", "resumable"])
def test_conditional_writes_keep_the_stamp(make_gcs: MakeGCS, size: int) -> None:
    storage = make_gcs(chunk_size=UPLOAD_UNIT)
    first, second = _payload(4, size), _payload(5, size)
    storage.write_path("cond", first, if_absent=True, expiry=STAMP)
    with pytest.raises(WriteConflict):
        storage.write_path("cond", second, if_absent=True, expiry="never")
    entry = _entries(storage)["cond"]
    assert (entry.expiry_listed, entry.expiration) == (True, MOMENT), "a refused write stamped"

    version = storage.version_of("cond")
    assert version is not None
    storage.write_parts("cond", [second], if_version=version, expiry="never")
    with pytest.raises(WriteConflict):
        storage.write_path("cond", first, if_version=version, expiry=STAMP)
    entry = _entries(storage)["cond"]
    assert (entry.expiry_listed, entry.expiration) == (True, None)
    assert storage.read_path("cond") == second


def test_the_stamp_goes_with_the_request_that_creates_the_object(
    make_gcs: MakeGCS, proxy: CountingProxy
) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint, chunk_size=UPLOAD_UNIT)
    storage.write_path("one", b"small value", if_absent=True, expiry=STAMP)
    (only,) = proxy.exchanges
    assert _query(only)["uploadType"] == ["multipart"], proxy.summary()
    assert _query(only)["ifGenerationMatch"] == ["0"]
    assert f'"{EXPIRY_METADATA_KEY}": "{STAMP}"'.encode() in only.body

    proxy.reset()
    storage.write_path("plain", b"small value")
    (plain,) = proxy.exchanges
    assert _query(plain)["uploadType"] == ["media"], "a write without a stamp changed"

    proxy.reset()
    storage.write_path("two", _payload(6, LARGE), expiry="never")
    opened = [e for e in proxy.exchanges if _query(e).get("uploadType") == ["resumable"]]
    opened = [e for e in opened if "upload_id" not in _query(e)]
    assert len(opened) == 1, proxy.summary()
    assert json.loads(opened[0].body) == {
        "name": "results/two",
        "metadata": {EXPIRY_METADATA_KEY: "never"},
    }


def test_metadata_set_by_others_is_not_trusted(make_gcs: MakeGCS) -> None:
    """An object whose metadata holds something else under the name (another tool's)
    is listed as not telling its expiry, so the store reads its head."""
    storage = make_gcs()
    storage.write_path("odd", b"x", expiry="next tuesday")
    assert _entries(storage)["odd"].expiry_listed is False
