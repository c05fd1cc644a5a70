"""``list_entries`` and ``alist_entries`` on S3, GCS and Azure, against the suite's own
servers (moto, the GCS emulator, Azurite), counted at a proxy in front of each.

A listing goes a page at a time: each page one request of the service's own paginated
listing, asked for only when the caller takes the next page, with each object's size and
modification time as the listing gives them, and the same keys, in the same order, as
``list_paths``.

The GCS emulator ignores ``maxResults`` and ``pageToken`` (it always answers with the
whole listing), so on GCS the pages are cut from that one answer, and the token's way
from one page to the next is checked with a first page answered by the proxy.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import moorage.storage.entries
from moorage.errors import StorageError
from moorage.storage import Storage, StorageEntry
from moorage_gcs import GCSStorage
from moorage_s3 import S3Storage

from servers.proxy import CountingProxy, Exchange, Reply

BACKENDS = ["s3", "gcs", "azure"]
#: Listing requests take at most this many keys a page in the paging tests.
PAGE = 3


@dataclass
class Pair:
    """A storage that writes, and a second client of the same place whose requests go
    through ``proxy`` (only its listing requests are counted by ``listings``)."""

    backend: str
    writer: Storage
    counted: Storage
    proxy: CountingProxy

    def listings(self) -> list[Exchange]:
        return [e for e in self.proxy.exchanges if _is_listing(self.backend, e)]


def _is_listing(backend: str, exchange: Exchange) -> bool:
    if exchange.method != "GET":
        return False
    if backend == "s3":
        return "list-type=2" in exchange.path
    if backend == "gcs":
        return exchange.path.split("?")[0].endswith("/o")
    return "comp=list" in exchange.path


def _pair(backend: str, request: pytest.FixtureRequest, proxy: CountingProxy) -> Pair:
    server: Any = request.getfixturevalue(f"{backend}_server")
    if backend == "s3":
        writer: Storage = server.make_storage("entries")
        counted: Storage = S3Storage(writer.url, **server.options(proxy.endpoint))
    elif backend == "gcs":
        writer = server.make_storage("entries")
        counted = GCSStorage(writer.url, endpoint_url=proxy.endpoint, token="anon")
    else:
        container = server.create_container()
        writer = server.storage(container, "entries")
        counted = server.storage(container, "entries", via=proxy.endpoint)
    return Pair(backend, writer, counted, proxy)


@pytest.fixture(params=BACKENDS)
def pair(request: pytest.FixtureRequest) -> Iterator[Pair]:
    backend = str(request.param)
    server: Any = request.getfixturevalue(f"{backend}_server")
    with CountingProxy(server.port) as proxy:
        made = _pair(backend, request, proxy)
        try:
            yield made
        finally:
            made.counted.close()
            made.writer.close()


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> int:
    """Listings in pages of `PAGE` entries (the page size the storages read per call)."""
    monkeypatch.setattr(moorage.storage.entries, "LIST_PAGE_SIZE", PAGE)
    return PAGE


def _keys(pages: list[list[StorageEntry]]) -> list[str]:
    return [entry.key for page in pages for entry in page]


def test_entries_give_sizes_times_and_the_keys_of_list_paths(pair: Pair) -> None:
    contents = {
        "run/a": b"",
        "run/b/deep": b"1",
        "run/c": b"22" * 100,
        "runner": b"333",
        "top": b"x" * 4097,
    }
    before = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=1)
    for key, data in contents.items():
        pair.writer.write_path(key, data)
    after = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1)

    for prefix in ("", "run", "run/", "run/b/", "t", "nothing/"):
        pages = list(pair.counted.list_entries(prefix))
        assert all(pages), f"an empty page for prefix {prefix!r}"
        keys = _keys(pages)
        assert keys == list(pair.counted.list_paths(prefix)), prefix
        assert keys == sorted(k for k in contents if k.startswith(prefix)), prefix
        for entry in (entry for page in pages for entry in page):
            assert entry.size == len(contents[entry.key]), entry
            modified = entry.modified
            assert isinstance(modified, dt.datetime), entry
            assert modified.utcoffset() == dt.timedelta(0), f"not in UTC: {entry}"
            assert before <= modified <= after, f"not the time it was written: {entry}"


def test_pages_are_small_and_each_is_one_request(pair: Pair, small_pages: int) -> None:
    keys = [f"many/{i:02d}" for i in range(8)]
    for key in [*keys, "manx", "other"]:
        pair.writer.write_path(key, key.encode())

    pair.proxy.reset()
    pages = list(pair.counted.list_entries("many/"))
    assert all(0 < len(page) <= small_pages for page in pages), [len(p) for p in pages]
    assert _keys(pages) == keys
    assert [e.size for page in pages for e in page] == [len(k) for k in keys]

    listings = pair.listings()
    if pair.backend == "gcs":
        # The emulator answers with all eight at once: pages cut from that one answer.
        assert len(listings) == 1, pair.proxy.summary()
        assert f"maxResults={small_pages}" in listings[0].path
    else:
        assert len(listings) == 3, pair.proxy.summary()  # 3 + 3 + 2 keys
    assert [len(p) for p in pages] == [3, 3, 2]

    pair.proxy.reset()
    assert list(pair.counted.list_paths("many/")) == keys, "list_paths over the same pages"
    assert list(pair.counted.list_paths("man")) == sorted([*keys, "manx"])


def test_the_first_page_comes_before_the_last_is_asked_for(pair: Pair, small_pages: int) -> None:
    keys = [f"k{i:02d}" for i in range(7)]
    for key in keys:
        pair.writer.write_path(key, b"v")
    pair.proxy.reset()

    pages = pair.counted.list_entries()
    first = next(pages)
    assert [e.key for e in first] == keys[:small_pages]
    assert len(pair.listings()) == 1, "more than one page was asked for before the first"
    rest = list(pages)
    assert _keys([first, *rest]) == keys
    assert len(pair.listings()) == (1 if pair.backend == "gcs" else 3), pair.proxy.summary()


def test_async_pages(pair: Pair, small_pages: int) -> None:
    keys = [f"as/{i}" for i in range(5)]
    for key in [*keys, "b"]:
        pair.writer.write_path(key, b"abc")
    pair.proxy.reset()

    async def scenario() -> tuple[list[StorageEntry], int, list[list[StorageEntry]], list[str]]:
        pages = pair.counted.alist_entries("as/")
        first = await pages.__anext__()
        asked = len(pair.listings())
        rest = [page async for page in pages]
        return first, asked, rest, await pair.counted.alist_paths("as/")

    first, asked, rest, paths = asyncio.run(scenario())
    assert asked == 1, "more than one page was asked for before the first"
    assert _keys([first, *rest]) == keys == paths
    assert all(0 < len(page) <= small_pages for page in [first, *rest])
    assert all(e.size == 3 and e.modified is not None for page in [first, *rest] for e in page)
    # Two pages (3 + 2 keys) for alist_entries, and again for alist_paths.
    assert len(pair.listings()) == 2 * (1 if pair.backend == "gcs" else 2), pair.proxy.summary()


def test_gcs_asks_for_the_next_page_with_its_token(
    gcs_server: Any, request: pytest.FixtureRequest
) -> None:
    """The emulator gives no tokens: a first page made up at the proxy carries one, and
    the second request (answered by the emulator) must send it back."""
    with CountingProxy(gcs_server.port) as proxy:
        made = _pair("gcs", request, proxy)
        made.writer.write_path("real", b"12345")
        made_up = {
            "kind": "storage#objects",
            "items": [{"name": "entries/early", "size": "7", "updated": "2026-01-02T03:04:05Z"}],
            "nextPageToken": "token-for-page-2",
        }
        proxy.reply(Reply.json(200, made_up), lambda e: _is_listing("gcs", e))
        pages = made.counted.list_entries()
        first = next(pages)
        assert first == [StorageEntry("early", 7, dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC))]
        assert len(made.listings()) == 1
        proxy.clear_rules()
        second = next(pages)
        assert [(e.key, e.size) for e in second] == [("real", 5)]
        assert list(pages) == []
        listings = made.listings()
        assert len(listings) == 2, proxy.summary()
        assert "pageToken=token-for-page-2" in listings[1].path
        made.counted.close()
        made.writer.close()


def _missing_bucket(backend: str, server: Any) -> Storage:
    if backend == "s3":
        return S3Storage("s3://no-such-bucket-for-entries/p", **server.options())
    if backend == "gcs":
        return GCSStorage(
            "gs://no-such-bucket-for-entries/p", endpoint_url=server.endpoint, token="anon"
        )
    return server.storage("no-such-container-for-entries")  # type: ignore[no-any-return]


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_missing_bucket_is_reported_by_both_listings(
    backend: str, request: pytest.FixtureRequest
) -> None:
    storage = _missing_bucket(backend, request.getfixturevalue(f"{backend}_server"))
    with pytest.raises(StorageError, match=r"no-such-.*-for-entries"):
        list(storage.list_entries())

    async def first_page() -> None:
        async for _ in storage.alist_entries("p"):
            pass

    with pytest.raises(StorageError, match=r"no-such-.*-for-entries") as caught:
        asyncio.run(first_page())
    assert "does not exist" in str(caught.value) or "not found" in str(caught.value).lower()
    storage.close()
