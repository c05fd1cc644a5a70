"""Building GCS storages: URL forms, options from the query string, named storages and
keyword arguments, the SDK's environment variables, credentials, separate clients."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from gcsfs.extended_gcsfs import ExtendedGcsFileSystem

from moorage import ConfigurationError
from moorage.plugins.resolve import storage_from
from moorage.results import ResultStore
from moorage_gcs import GCSStorage
from moorage_gcs.filesystem import PlainGCSFileSystem

from .helpers import MakeGCS, service_account_file
from servers.endpoints import answering
from servers.gcs import GCSServer
from servers.proxy import CountingProxy, Reply


def test_both_schemes_resolve_through_the_registry(gcs: GCSServer) -> None:
    bucket = gcs.create_bucket()
    for scheme in ("gs", "gcs"):
        storage = storage_from(f"{scheme}://{bucket}/a/b", endpoint_url=gcs.endpoint, token="anon")
        assert isinstance(storage, GCSStorage)
        assert storage.url == f"{scheme}://{bucket}/a/b"
        assert storage.resolve_path("k") == f"{scheme}://{bucket}/a/b/k"
        storage.write_path(f"from-{scheme}", scheme.encode())
        storage.close()
    assert gcs.object_names(bucket) == ["a/b/from-gcs", "a/b/from-gs"]


def test_url_without_bucket_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="no bucket"):
        GCSStorage("gs:///prefix")


def test_options_from_the_query_string_are_typed(gcs: GCSServer) -> None:
    url = gcs.url("q")
    query = (
        "?project=my-project&token=anon&retries=1&timeout=2.5&connect_timeout=1"
        f"&chunk_size=524288&requester_pays=false&access=read_write&endpoint_url={gcs.endpoint}"
    )
    storage = storage_from(url + query)
    assert isinstance(storage, GCSStorage)
    settings = storage.settings
    assert (settings.project, settings.retries, settings.timeout) == ("my-project", 1, 2.5)
    assert (settings.connect_timeout, settings.chunk_size) == (1.0, 524288)
    assert (settings.requester_pays, settings.access) == (False, "read_write")
    storage.write_path("k", b"v")
    assert storage.read_path("k") == b"v"
    fs = storage._filesystem()
    assert isinstance(fs, PlainGCSFileSystem)
    assert (fs.attempts, fs.project, fs.requests_timeout.sock_read) == (2, "my-project", 2.5)
    assert storage.url == url, "the query string stays out of the URL"
    storage.close()


def test_requester_pays_takes_a_flag_or_a_project() -> None:
    assert GCSStorage("gs://b", requester_pays="true").settings.requester_pays is True
    assert GCSStorage("gs://b", requester_pays="0").settings.requester_pays is False
    assert GCSStorage("gs://b", requester_pays="billing-proj").settings.requester_pays == (
        "billing-proj"
    )


def test_keyword_arguments_override_the_query_string(gcs: GCSServer) -> None:
    storage = storage_from(gcs.url() + "?retries=5&token=anon", retries=0)
    assert isinstance(storage, GCSStorage)
    assert storage.settings.retries == 0


@pytest.mark.parametrize(
    ("options", "named"),
    [
        ({"retry": "2"}, "unknown gs:// storage option"),
        ({"retries": "-1"}, "retries"),
        ({"retries": "1.5"}, "retries"),
        ({"timeout": "0"}, "timeout"),
        ({"connect_timeout": "soon"}, "connect_timeout"),
        ({"chunk_size": "1000000"}, "multiple of 262144"),
        ({"endpoint_url": "127.0.0.1:9000"}, "endpoint_url"),
        ({"endpoint_url": "http://host/storage/v1"}, "endpoint_url"),
        ({"access": "admin"}, "access"),
        ({"requester_pays": ""}, "requester_pays"),
        ({"project": ""}, "project"),
        ({"session_kwargs": "trust_env"}, "session_kwargs"),
        ({"token": 42}, "token"),
    ],
)
def test_bad_options_are_configuration_errors(options: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError, match=named):
        GCSStorage("gs://bucket/p", **options)


def test_named_storage_from_settings(gcs: GCSServer) -> None:
    bucket = gcs.create_bucket()
    Path("moorage.toml").write_text(
        f'[storages.team]\nurl = "gs://{bucket}/shared"\nendpoint_url = "{gcs.endpoint}"\n'
        'token = "anon"\nretries = 1\nchunk_size = 262144\n'
        f"[storages.team.session_kwargs]\ntrust_env = false\n"
    )
    storage = storage_from("team")
    assert isinstance(storage, GCSStorage)
    assert (storage.settings.retries, storage.settings.chunk_size) == (1, 262144)
    assert dict(storage.settings.session_kwargs) == {"trust_env": False}
    store = ResultStore(result_storage="team", serializer="json")
    store.write({"from": "settings"}, key="named")
    assert gcs.object_names(bucket) == ["shared/named"]
    assert ResultStore(result_storage="team").read("named").result == {"from": "settings"}


def test_storage_emulator_host_is_honoured(
    gcs: GCSServer, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    """No endpoint_url, no token: gcsfs finds the emulator through the variable itself,
    and moorage sends no credentials to it."""
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", proxy.host)
    storage = storage_from(gcs.url())
    storage.write_path("via-env", b"1")
    assert storage.read_path("via-env") == b"1"
    exchanges = proxy.exchanges
    assert len(exchanges) == 2
    assert all("authorization" not in e.headers for e in exchanges)
    storage.close()


def test_endpoint_url_wins_over_the_variable(
    gcs: GCSServer, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("STORAGE_EMULATOR_HOST", gcs.host)
    storage = storage_from(gcs.url(), endpoint_url=proxy.endpoint)
    storage.write_path("via-option", b"1")
    assert len(proxy.exchanges) == 1
    storage.close()


def test_the_plain_gcs_class_is_used_never_the_grpc_one(make_gcs: MakeGCS) -> None:
    """gcsfs.GCSFileSystem is ExtendedGcsFileSystem in this gcsfs: it asks a gRPC API for
    the bucket type before uploads (about 60 s of retries against an emulator)."""
    storage = make_gcs()
    fs = storage._filesystem()
    assert isinstance(fs, PlainGCSFileSystem)
    assert not isinstance(fs, ExtendedGcsFileSystem)
    storage.write_path("k", b"v")
    assert storage._filesystem() is fs


def test_two_storages_with_different_options_do_not_share_a_client(
    make_gcs: MakeGCS, gcs: GCSServer, proxy: CountingProxy
) -> None:
    url = gcs.url()
    direct = make_gcs(url, retries=0)
    proxied = make_gcs(url, retries=2, endpoint_url=proxy.endpoint)
    twin = make_gcs(url, retries=0)
    assert direct._filesystem() is not proxied._filesystem()
    assert direct._filesystem() is not twin._filesystem(), "no instance cache"
    assert (direct._filesystem().attempts, proxied._filesystem().attempts) == (1, 3)
    direct.write_path("direct", b"1")
    assert proxy.exchanges == []
    proxied.write_path("proxied", b"2")
    assert len(proxy.exchanges) == 1
    assert sorted(twin.list_paths()) == ["direct", "proxied"]


def test_exists_and_listings_see_another_clients_changes(make_gcs: MakeGCS, gcs: GCSServer) -> None:
    url = gcs.url()
    reader, writer = make_gcs(url), make_gcs(url)
    assert reader.exists("fresh") is False
    assert list(reader.list_paths()) == []
    writer.write_path("fresh", b"new")
    assert reader.exists("fresh") is True
    assert asyncio.run(reader.aexists("fresh")) is True
    assert list(reader.list_paths()) == ["fresh"]
    writer.delete_path("fresh")
    assert reader.exists("fresh") is False
    assert list(reader.list_paths()) == []


def test_close_releases_the_session_and_the_storage_still_works(make_gcs: MakeGCS) -> None:
    storage = make_gcs()
    storage.write_path("k", b"v")
    session = storage._filesystem()._session
    storage.close()
    assert session.closed
    assert storage.read_path("k") == b"v"


# -- credentials -------------------------------------------------------------------------


@pytest.fixture
def tokens() -> Iterator[CountingProxy]:
    """A token endpoint that grants an access token to every request."""
    grant = Reply.json(200, {"access_token": "ya29.loopback-token", "expires_in": 3600})
    with answering(grant) as endpoint:
        yield endpoint


def test_service_account_key_file_as_token(
    make_gcs: MakeGCS,
    proxy: CountingProxy,
    tmp_path: Path,
    tokens: CountingProxy,
) -> None:
    key_file, _ = service_account_file(tmp_path, f"{tokens.endpoint}/token")
    storage = make_gcs(token=str(key_file), endpoint_url=proxy.endpoint)
    storage.write_path("signed-in", b"1")
    assert [e.headers.get("authorization") for e in proxy.exchanges] == [
        "Bearer ya29.loopback-token"
    ]
    assert len(tokens.exchanges) == 1, "one token exchange, then the token is reused"
    assert b"grant_type" in tokens.exchanges[0].body
    for text in (repr(storage), str(storage), repr(storage.settings)):
        assert "PRIVATE KEY" not in text
        assert str(key_file) not in text


def test_google_application_credentials_through_google_default(
    make_gcs: MakeGCS,
    proxy: CountingProxy,
    tmp_path: Path,
    tokens: CountingProxy,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    key_file, _ = service_account_file(tmp_path, f"{tokens.endpoint}/token")
    monkeypatch.setenv("GOOGLE_APPLICATION_CREDENTIALS", str(key_file))
    storage = make_gcs(token="google_default", endpoint_url=proxy.endpoint)
    storage.write_path("adc", b"1")
    assert storage._filesystem().project == "moorage-tests", "the project comes from the key"
    assert proxy.exchanges[0].headers.get("authorization") == "Bearer ya29.loopback-token"


def test_service_account_info_mapping_stays_secret(
    make_gcs: MakeGCS, gcs: GCSServer, tmp_path: Path, tokens: CountingProxy
) -> None:
    key_file, private_key = service_account_file(tmp_path, f"{tokens.endpoint}/token")
    info = json.loads(key_file.read_text())
    storage = make_gcs(token=info)
    storage.write_path("k", b"v")
    assert storage.read_path("k") == b"v"
    marker = private_key.splitlines()[1]
    assert marker not in repr(storage)
    assert marker not in repr(storage.settings)
