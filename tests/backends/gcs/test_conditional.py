"""GCS conditional writes beyond the contract kit, against the emulator: the condition
rides on the resumable upload and is decided when its last chunk completes the object;
a 412 is answered once and never retried; the conflict names the key and the URL."""

from __future__ import annotations

import asyncio
import random
from urllib.parse import parse_qs, urlsplit

import pytest

from moorage.errors import ConfigurationError, WriteConflict
from moorage_gcs.options import UPLOAD_UNIT

from .helpers import MakeGCS
from servers.gcs import GCSServer
from servers.proxy import CountingProxy, Exchange

#: Several chunks of the smallest size GCS allows, and a short last one.
LARGE = 3 * UPLOAD_UNIT + 17


def _payload(seed: int, size: int = LARGE) -> bytes:
    return random.Random(seed).randbytes(size)


def _query(exchange: Exchange) -> dict[str, list[str]]:
    return parse_qs(urlsplit(exchange.path).query)


def _opening(proxy: CountingProxy) -> Exchange:
    """The request that opened the (one) resumable upload session."""
    opened = [e for e in proxy.exchanges if _query(e).get("uploadType") == ["resumable"]]
    opened = [e for e in opened if "upload_id" not in _query(e)]
    assert len(opened) == 1, proxy.summary()
    return opened[0]


def _chunks(proxy: CountingProxy) -> list[Exchange]:
    return [e for e in proxy.exchanges if "upload_id" in _query(e) and e.method != "DELETE"]


def _is_last_chunk(exchange: Exchange) -> bool:
    content_range = exchange.headers.get("content-range", "")
    return "upload_id=" in exchange.path and content_range.endswith(f"-{LARGE - 1}/{LARGE}")


def test_if_absent_resumable_upload_carries_the_condition(
    make_gcs: MakeGCS, proxy: CountingProxy
) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint, chunk_size=UPLOAD_UNIT)
    first, second = _payload(1), _payload(2)

    storage.write_parts("big", [first[:10], memoryview(first)[10:]], if_absent=True)
    assert _query(_opening(proxy)).get("ifGenerationMatch") == ["0"], proxy.summary()
    assert len(_chunks(proxy)) == 4, proxy.summary()
    assert storage.read_path("big") == first

    proxy.reset()
    with pytest.raises(WriteConflict, match="'big'"):
        storage.write_path("big", second, if_absent=True)
    assert _query(_opening(proxy)).get("ifGenerationMatch") == ["0"], proxy.summary()
    refused = [e for e in proxy.exchanges if e.status == 412]
    assert len(refused) == 1, proxy.summary()
    assert _is_last_chunk(refused[0]), proxy.summary()
    assert storage.read_path("big") == first


def test_if_version_resumable_upload_replaces_only_that_generation(
    make_gcs: MakeGCS, proxy: CountingProxy
) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint, chunk_size=UPLOAD_UNIT)
    storage.write_path("big", _payload(1))
    seen = storage.version_of("big")
    assert seen is not None
    assert seen.isdigit()

    proxy.reset()
    storage.write_parts("big", [b"x", _payload(2)[1:]], if_version=seen)
    assert _query(_opening(proxy)).get("ifGenerationMatch") == [seen], proxy.summary()
    assert len(_chunks(proxy)) == 4, proxy.summary()
    assert storage.read_path("big") == b"x" + _payload(2)[1:]
    now = storage.version_of("big")
    assert now is not None
    assert now != seen

    proxy.reset()
    with pytest.raises(WriteConflict, match=f"'big'.*{seen}"):
        asyncio.run(storage.awrite_path("big", _payload(3), if_version=seen))
    assert [e.status for e in proxy.exchanges].count(412) == 1, proxy.summary()
    assert storage.read_path("big") == b"x" + _payload(2)[1:]
    assert storage.version_of("big") == now


def test_a_create_landing_during_the_upload_wins(
    make_gcs: MakeGCS, proxy: CountingProxy, gcs_server: GCSServer
) -> None:
    """The condition is decided when the last chunk arrives, not checked beforehand: an
    object created after the session opened makes the create-only upload fail."""
    storage = make_gcs(endpoint_url=proxy.endpoint, chunk_size=UPLOAD_UNIT)
    rival = make_gcs(storage.url)  # straight to the emulator
    proxy.before(_is_last_chunk, lambda _: rival.write_path("raced", b"rival"))

    with pytest.raises(WriteConflict):
        storage.write_path("raced", _payload(1), if_absent=True)
    assert len(_chunks(proxy)) == 4, proxy.summary()
    assert storage.read_path("raced") == b"rival"


def test_a_replace_landing_during_the_upload_wins(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint, chunk_size=UPLOAD_UNIT)
    rival = make_gcs(storage.url)
    storage.write_path("raced", b"one")
    seen = storage.version_of("raced")
    assert seen is not None
    proxy.before(_is_last_chunk, lambda _: rival.write_path("raced", b"rival"))

    with pytest.raises(WriteConflict):
        storage.write_path("raced", _payload(1), if_version=seen)
    assert storage.read_path("raced") == b"rival"


def test_conflict_messages_name_the_key_and_the_url(
    make_gcs: MakeGCS, gcs_server: GCSServer
) -> None:
    storage = make_gcs(gcs_server.url("team/results"))
    assert storage.url.startswith("gs://")
    assert storage.url.endswith("/team/results")
    storage.write_path("daily/2024", b"one")
    seen = storage.version_of("daily/2024")
    assert seen is not None
    storage.write_path("daily/2024", b"two")

    with pytest.raises(WriteConflict) as created:
        storage.write_path("daily/2024", b"three", if_absent=True)
    message = str(created.value)
    assert "'daily/2024'" in message, message
    assert storage.url in message, message
    assert "written by someone else first" in message, message

    with pytest.raises(WriteConflict) as replaced:
        storage.write_path("daily/2024", b"three", if_version=seen)
    message = str(replaced.value)
    assert "'daily/2024'" in message, message
    assert storage.url in message, message
    assert repr(seen) in message, message
    # The service's status (412) is not passed on; the bucket's random name and the
    # generation may contain those digits, so they are taken out before looking.
    rest = message.replace(storage.url, "").replace(repr(seen), "")
    assert "412" not in rest, message
    assert "FileExistsError" not in message, message


def test_a_412_is_answered_once_not_retried(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint, retries=3)
    storage.write_path("k", b"first")
    proxy.reset()
    with pytest.raises(WriteConflict):
        storage.write_path("k", b"second", if_absent=True)
    assert [e.status for e in proxy.exchanges] == [412], proxy.summary()
    assert _query(proxy.exchanges[0]).get("ifGenerationMatch") == ["0"]


def test_empty_payloads_are_conditional_too(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint)
    storage.write_path("empty", b"", if_absent=True)
    assert storage.read_path("empty") == b""
    with pytest.raises(WriteConflict):
        storage.write_path("empty", b"", if_absent=True)
    seen = storage.version_of("empty")
    assert seen is not None

    proxy.reset()
    storage.write_parts("empty", [], if_version=seen)
    assert [_query(e).get("ifGenerationMatch") for e in proxy.exchanges] == [[seen]]
    with pytest.raises(WriteConflict):
        storage.write_path("empty", b"", if_version=seen)
    with pytest.raises(WriteConflict):
        storage.write_path("gone", b"", if_version=seen)
    assert not storage.exists("gone")


def test_version_of_reads_metadata_only(make_gcs: MakeGCS, proxy: CountingProxy) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint)
    storage.write_path("big", _payload(1))
    proxy.reset()
    version = storage.version_of("big")
    assert version is not None
    assert version.isdigit()
    assert storage.version_of("none") is None
    assert len(proxy.exchanges) == 2, proxy.summary()
    assert all("alt=media" not in e.path for e in proxy.exchanges), proxy.summary()
    assert proxy.received() < 8192, proxy.summary()


def test_a_token_that_is_no_generation_conflicts_without_a_request(
    make_gcs: MakeGCS, proxy: CountingProxy
) -> None:
    storage = make_gcs(endpoint_url=proxy.endpoint)
    storage.write_path("k", b"one")
    proxy.reset()
    with pytest.raises(WriteConflict, match="'etag-1'"):
        storage.write_path("k", b"two", if_version="etag-1")
    with pytest.raises(ConfigurationError, match="both"):
        storage.write_path("k", b"two", if_absent=True, if_version="1")
    assert proxy.exchanges == [], proxy.summary()
    assert storage.read_path("k") == b"one"
