"""Failures name the URL and the fix, never a secret; retries and timeouts are bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

import pytest

from holdfast import ConfigurationError, RecordNotFound, StorageError
from holdfast_gcs import GCSStorage

from .helpers import LoopbackHTTP, MakeGCS, RawListener, service_account_file
from servers import free_port
from servers.gcs import GCSServer


def test_missing_bucket(make_gcs: MakeGCS) -> None:
    storage = make_gcs("gs://no-such-bucket-here/results")
    calls: list[Callable[[], object]] = [
        lambda: storage.read_path("k"),
        lambda: storage.write_path("k", b"v"),
        lambda: list(storage.list_paths()),
        lambda: asyncio.run(storage.awrite_path("k", b"v")),
        lambda: asyncio.run(storage.aread_path("k")),
    ]
    for call in calls:
        with pytest.raises(StorageError) as info:
            call()
        message = str(info.value)
        assert not isinstance(info.value, RecordNotFound)
        assert "gs://no-such-bucket-here/results" in message
        assert "does not exist" in message
        assert "gcloud storage buckets create gs://no-such-bucket-here" in message


def test_missing_key_in_an_existing_bucket_is_record_not_found(make_gcs: MakeGCS) -> None:
    storage = make_gcs()
    with pytest.raises(RecordNotFound, match="'absent'"):
        storage.read_path("absent")


def test_unreachable_endpoint(make_gcs: MakeGCS) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"  # nobody listens there
    storage = make_gcs(endpoint_url=endpoint, retries=0)
    for call in (
        lambda: storage.write_path("k", b"v"),
        lambda: asyncio.run(storage.aexists("k")),
    ):
        with pytest.raises(StorageError) as info:
            call()
        message = str(info.value)
        assert f"cannot reach {endpoint}" in message
        assert storage.url in message
        assert "endpoint_url" in message
        assert "STORAGE_EMULATOR_HOST" in message


def test_retries_are_bounded_and_configurable(
    make_gcs: MakeGCS, raw_listener: Callable[..., RawListener]
) -> None:
    listener = raw_listener(hang=False)  # accepts, then hangs up: a retriable failure
    storage = make_gcs(endpoint_url=listener.endpoint, retries=1)
    with pytest.raises(StorageError, match=r"2 attempts\)"):
        storage.write_path("k", b"v")
    assert listener.accepted == 2, "one attempt and one retry"

    listener.accepted = 0
    with pytest.raises(StorageError, match=r"1 attempt\)"):
        make_gcs(endpoint_url=listener.endpoint, retries=0).write_path("k", b"v")
    assert listener.accepted == 1

    # aiohttp itself resends an idempotent request (GET) once on a dropped connection.
    listener.accepted = 0
    with pytest.raises(StorageError):
        make_gcs(endpoint_url=listener.endpoint, retries=0).exists("k")
    assert 1 <= listener.accepted <= 2


def test_a_silent_server_times_out(
    make_gcs: MakeGCS, raw_listener: Callable[..., RawListener]
) -> None:
    listener = raw_listener(hang=True)  # accepts and never answers
    storage = make_gcs(endpoint_url=listener.endpoint, timeout=0.3, retries=0)
    with pytest.raises(StorageError, match=r"did not answer within 0\.3 s") as info:
        storage.read_path("k")
    assert "timeout" in str(info.value)
    assert listener.accepted == 1


def _answer(status: int, message: str) -> Callable[[BaseHTTPRequestHandler], Any]:
    def reply(handler: BaseHTTPRequestHandler) -> tuple[int, dict[str, Any]]:
        return status, {"error": {"code": status, "message": message}}

    return reply


def test_access_denied(make_gcs: MakeGCS, loopback_http: Callable[..., LoopbackHTTP]) -> None:
    server = loopback_http(_answer(403, "caller does not have storage.objects.create access"))
    storage = make_gcs(endpoint_url=server.endpoint, retries=0)
    with pytest.raises(StorageError, match="access denied") as info:
        storage.write_path("k", b"v")
    assert "roles/storage.objectUser" in str(info.value)


def test_rejected_credentials(
    make_gcs: MakeGCS,
    gcs: GCSServer,
    tmp_path: Path,
    loopback_http: Callable[..., LoopbackHTTP],
) -> None:
    """The emulator checks no credentials; a token endpoint that refuses the key does."""
    tokens = loopback_http(_answer(400, "invalid_grant"))
    key_file, private_key = service_account_file(tmp_path, f"{tokens.endpoint}/token")
    storage = make_gcs(token=str(key_file), retries=0)
    with pytest.raises(StorageError, match="credentials were rejected") as info:
        storage.write_path("k", b"v")
    assert len(tokens.requests) == 1
    assert "PRIVATE KEY" not in str(info.value)
    assert private_key.splitlines()[1] not in str(info.value)


def test_token_that_is_neither_a_file_nor_a_method(tmp_path: Path) -> None:
    raw = "ya29.a0-looks-like-a-raw-access-token"
    with pytest.raises(ConfigurationError, match="token") as info:
        GCSStorage("gs://bucket/p", token=raw)
    assert raw not in str(info.value)
    assert "ya29" not in repr(info.value)


def test_token_file_that_is_not_json(make_gcs: MakeGCS, tmp_path: Path) -> None:
    key_file = tmp_path / "key.json"
    key_file.write_text("not json at all: secret-looking-text")
    storage = make_gcs(token=str(key_file))
    with pytest.raises(ConfigurationError, match="is not JSON") as info:
        storage.write_path("k", b"v")
    assert "secret-looking-text" not in str(info.value)


def test_read_head_of_an_empty_object_on_real_gcs(
    make_gcs: MakeGCS, loopback_http: Callable[..., LoopbackHTTP]
) -> None:
    """GCS answers 416 to a ranged read of an empty object (the emulator answers 206)."""
    server = loopback_http(_answer(416, "The requested range cannot be satisfied."))
    storage = make_gcs(endpoint_url=server.endpoint, retries=0)
    assert storage.read_head("empty", 100) == b""
    assert asyncio.run(storage.aread_head("empty", 100)) == b""
    (method, path, _), _ = server.requests
    assert method == "GET"
    assert "alt=media" in path


def test_other_server_errors_name_the_status(
    make_gcs: MakeGCS, loopback_http: Callable[..., LoopbackHTTP]
) -> None:
    server = loopback_http(_answer(503, "backend overloaded"))
    storage = make_gcs(endpoint_url=server.endpoint, retries=1)
    with pytest.raises(StorageError, match="503: backend overloaded") as info:
        storage.delete_path("k")
    assert storage.url in str(info.value)
    assert len(server.requests) == 2, "a 503 is retried, within the bound"


def test_incomplete_service_account_info(make_gcs: MakeGCS) -> None:
    storage = make_gcs(token={"type": "service_account", "private_key": "s3cr3t-material"})
    with pytest.raises(ConfigurationError, match="were refused") as info:
        storage.exists("k")
    assert "s3cr3t-material" not in str(info.value)
