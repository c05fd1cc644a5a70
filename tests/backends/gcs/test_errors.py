"""Failures name the URL and the fix, never a secret; retries and timeouts are bounded."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from moorage import ConfigurationError, RecordNotFound, StorageError
from moorage_gcs import GCSStorage

from .helpers import MakeGCS, service_account_file
from servers.endpoints import answering, hanging_up, silent, unused_endpoint
from servers.gcs import GCSServer
from servers.proxy import Reply


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
    endpoint = unused_endpoint()
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


def test_retries_are_bounded_and_configurable(make_gcs: MakeGCS) -> None:
    with hanging_up() as endpoint:  # reads the request, then hangs up: a retriable failure
        storage = make_gcs(endpoint_url=endpoint.endpoint, retries=1)
        with pytest.raises(StorageError, match=r"2 attempts\)"):
            storage.write_path("k", b"v")
        assert len(endpoint.exchanges) == 2, "one attempt and one retry"

        endpoint.reset()
        with pytest.raises(StorageError, match=r"1 attempt\)"):
            make_gcs(endpoint_url=endpoint.endpoint, retries=0).write_path("k", b"v")
        assert len(endpoint.exchanges) == 1

        # aiohttp itself resends an idempotent request (GET) once on a dropped connection.
        endpoint.reset()
        with pytest.raises(StorageError):
            make_gcs(endpoint_url=endpoint.endpoint, retries=0).exists("k")
        assert 1 <= len(endpoint.exchanges) <= 2


def test_a_silent_server_times_out(make_gcs: MakeGCS) -> None:
    with silent() as endpoint:  # reads the request and never answers
        storage = make_gcs(endpoint_url=endpoint.endpoint, timeout=0.3, retries=0)
        with pytest.raises(StorageError, match=r"did not answer within 0\.3 s") as info:
            storage.read_path("k")
        assert "timeout" in str(info.value)
        assert len(endpoint.exchanges) == 1


def _error(status: int, message: str) -> Reply:
    return Reply.json(status, {"error": {"code": status, "message": message}})


def test_access_denied(make_gcs: MakeGCS) -> None:
    with answering(_error(403, "caller does not have storage.objects.create access")) as server:
        storage = make_gcs(endpoint_url=server.endpoint, retries=0)
        with pytest.raises(StorageError, match="access denied") as info:
            storage.write_path("k", b"v")
    assert "roles/storage.objectUser" in str(info.value)


def test_rejected_credentials(make_gcs: MakeGCS, gcs: GCSServer, tmp_path: Path) -> None:
    """The emulator checks no credentials; a token endpoint that refuses the key does."""
    with answering(_error(400, "invalid_grant")) as tokens:
        key_file, private_key = service_account_file(tmp_path, f"{tokens.endpoint}/token")
        storage = make_gcs(token=str(key_file), retries=0)
        with pytest.raises(StorageError, match="credentials were rejected") as info:
            storage.write_path("k", b"v")
    assert len(tokens.exchanges) == 1
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


def test_read_head_of_an_empty_object_on_real_gcs(make_gcs: MakeGCS) -> None:
    """GCS answers 416 to a ranged read of an empty object (the emulator answers 206)."""
    with answering(_error(416, "The requested range cannot be satisfied.")) as server:
        storage = make_gcs(endpoint_url=server.endpoint, retries=0)
        assert storage.read_head("empty", 100) == b""
        assert asyncio.run(storage.aread_head("empty", 100)) == b""
    first, _ = server.exchanges
    assert first.method == "GET"
    assert "alt=media" in first.path


def test_other_server_errors_name_the_status(make_gcs: MakeGCS) -> None:
    with answering(_error(503, "backend overloaded")) as server:
        storage = make_gcs(endpoint_url=server.endpoint, retries=1)
        with pytest.raises(StorageError, match="503: backend overloaded") as info:
            storage.delete_path("k")
    assert storage.url in str(info.value)
    assert len(server.exchanges) == 2, "a 503 is retried, within the bound"


def test_incomplete_service_account_info(make_gcs: MakeGCS) -> None:
    storage = make_gcs(token={"type": "service_account", "private_key": "s3cr3t-material"})
    with pytest.raises(ConfigurationError, match="were refused") as info:
        storage.exists("k")
    assert "s3cr3t-material" not in str(info.value)
