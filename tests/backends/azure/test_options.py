"""URL forms, options from the three places, and the SDK's environment variables."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moorage.errors import ConfigurationError
from moorage.plugins.resolve import storage_from
from moorage.storage import Storage
from moorage_azure import AzureStorage

from servers.azure import ACCOUNT, ACCOUNT_KEY, AzureServer, connection_string
from servers.endpoints import unused_endpoint
from servers.proxy import CountingProxy

SECRET_KEY = "c2VjcmV0LWFjY291bnQta2V5LXRoYXQtbXVzdC1uZXZlci1zaG93"


def _azure(storage: Storage) -> AzureStorage:
    assert isinstance(storage, AzureStorage)
    return storage


def _client(storage: Storage) -> Any:
    """The SDK client the storage built (no request is made)."""
    azure = _azure(storage)
    return azure._service(azure._filesystem())


@pytest.mark.parametrize("scheme", ["az", "abfs", "abfss"])
def test_every_scheme_reaches_azure_storage(scheme: str) -> None:
    storage = _azure(storage_from(f"{scheme}://my-container/some/prefix"))
    assert (storage.bucket, storage.prefix) == ("my-container", "some/prefix")
    assert storage.url == f"{scheme}://my-container/some/prefix"
    assert storage.resolve_path("a/b") == f"{scheme}://my-container/some/prefix/a/b"
    assert storage.key_for_location(storage.resolve_path("a/b")) == "a/b"


def test_account_in_the_url() -> None:
    url = "abfs://data@myaccount.dfs.core.windows.net/runs"
    storage = _azure(storage_from(url, account_key=SECRET_KEY))
    assert (storage.bucket, storage.prefix, storage.url) == ("data", "runs", url)
    assert storage.resolve_path("k") == f"{url}/k"
    client = _client(storage)
    assert client.account_name == "myaccount"
    assert client.primary_hostname == "myaccount.blob.core.windows.net"


def test_account_in_the_url_of_another_cloud() -> None:
    storage = storage_from("abfss://data@acct.dfs.core.chinacloudapi.cn/", account_key=SECRET_KEY)
    assert _client(storage).primary_hostname == "acct.blob.core.chinacloudapi.cn"


def test_account_in_the_url_and_a_different_option() -> None:
    with pytest.raises(ConfigurationError, match=r"names the account 'one'.*says 'two'"):
        storage_from("abfs://data@one.dfs.core.windows.net/x", account_name="two")
    with pytest.raises(ConfigurationError, match="cannot read the storage account"):
        storage_from("abfs://data@not-an-azure-host.example/x")


@pytest.mark.parametrize("container", ["UPPER", "ab", "-leading", "double--hyphen", "under_score"])
def test_invalid_container_names(container: str) -> None:
    with pytest.raises(ConfigurationError, match="not a valid container name"):
        storage_from(f"az://{container}/x")


def test_unknown_and_malformed_options() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown option\(s\) 'endpoint_url'.*accepts"):
        storage_from("az://c0ntainer/x?endpoint_url=http://x")
    for query, name in [
        ("retries=-1", "retries"),
        ("retries=1.5", "retries"),
        ("block_size=big", "block_size"),
        ("max_concurrency=0", "max_concurrency"),
        ("read_timeout=0", "read_timeout"),
        ("anon=maybe", "anon"),
    ]:
        with pytest.raises(ConfigurationError, match=f"option '{name}'"):
            storage_from(f"az://c0ntainer/x?{query}")


def test_options_from_the_url_query_are_typed() -> None:
    storage = _azure(
        storage_from(
            "az://c0ntainer/x?retries=5&retry_backoff=0.5&block_size=1048576&max_concurrency=3"
            "&timeout=30&read_timeout=7&connection_timeout=2.5&anon=false"
        )
    )
    config = storage.config
    assert (config.retries, config.retry_backoff, config.block_size) == (5, 0.5, 1048576)
    assert (config.max_concurrency, config.timeout) == (3, 30)
    assert (config.read_timeout, config.connection_timeout) == (7.0, 2.5)
    assert config.credentials == {"anon": False}
    assert config.per_call() == {"timeout": 30}


def test_named_storage_in_settings(azurite: AzureServer, proxy: CountingProxy) -> None:
    container = azurite.create_container()
    Path("moorage.toml").write_text(
        "[storages.blobs]\n"
        f'url = "az://{container}/named"\n'
        f'connection_string = "{connection_string(proxy.endpoint)}"\n'
        "block_size = 65536\n"
    )
    storage = storage_from("blobs")
    storage.write_path("k", b"x" * 100_000)  # above the named storage's block size
    assert any("comp=blocklist" in e.path for e in proxy.exchanges), "block_size was lost"
    assert azurite.storage(container, "named").read_path("k") == b"x" * 100_000
    assert storage_from("blobs", block_size=1 << 20).config.block_size == 1 << 20  # type: ignore[attr-defined]


def test_connection_string_from_the_environment(
    azurite: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = azurite.create_container()
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", azurite.connection_string)
    storage = storage_from(f"az://{container}/env")
    storage.write_path("k", b"from the environment")
    assert azurite.storage(container, "env").read_path("k") == b"from the environment"


def test_an_explicit_connection_string_beats_the_environment(
    azurite: AzureServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    container = azurite.create_container()
    dead = connection_string(unused_endpoint())
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", dead)
    storage = storage_from(f"az://{container}/x", connection_string=azurite.connection_string)
    storage.write_path("k", b"1")
    assert storage.read_path("k") == b"1"


def test_options_that_the_environment_connection_string_would_override(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("AZURE_STORAGE_CONNECTION_STRING", connection_string(unused_endpoint()))
    with pytest.raises(ConfigurationError, match="AZURE_STORAGE_CONNECTION_STRING is set") as e:
        storage_from("az://c0ntainer/x", account_name="other", account_key=SECRET_KEY).exists("k")
    assert "account_name, account_key" in str(e.value)
    assert SECRET_KEY not in str(e.value)
    # the same account as the variable's, and nothing it would override: fine
    storage = storage_from("az://c0ntainer/x", account_name=ACCOUNT)
    assert _client(storage).account_name == ACCOUNT


def test_account_name_and_key_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "envaccount")
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_KEY", SECRET_KEY)
    client = _client(storage_from("az://c0ntainer/x"))
    assert client.primary_hostname == "envaccount.blob.core.windows.net"
    assert client.credential.account_name == "envaccount"
    assert client.credential.account_key == SECRET_KEY
    # an option wins over the variable
    assert _client(storage_from("az://c0ntainer/x", account_name="optaccount")).account_name == (
        "optaccount"
    )


def test_sas_token_and_anon_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AZURE_STORAGE_ACCOUNT_NAME", "envaccount")
    monkeypatch.setenv("AZURE_STORAGE_SAS_TOKEN", "sv=2024-01-01&sig=abcdefghijkl")
    client = _client(storage_from("az://c0ntainer/x"))
    assert "sig=abcdefghijkl" in client.url
    assert client.credential is None
    monkeypatch.delenv("AZURE_STORAGE_SAS_TOKEN")
    monkeypatch.setenv("AZURE_STORAGE_ANON", "true")
    assert _client(storage_from("az://c0ntainer/x")).credential is None


def test_client_settings_reach_the_sdk_client() -> None:
    client = _client(
        storage_from(
            "az://c0ntainer/x?retries=4&retry_backoff=0.25&block_size=2097152&read_timeout=9",
            account_name="acct",
            account_key=SECRET_KEY,
            connection_timeout=3,
        )
    )
    policy = client._config.retry_policy
    assert (policy.total_retries, policy.connect_retries, policy.backoff) == (4, 4, 0.25)
    assert 0.25 * 0.75 <= policy.get_backoff_time({"count": 1}) <= 0.25 * 1.25
    assert 1.0 * 0.75 <= policy.get_backoff_time({"count": 3}) <= 1.0 * 1.25
    assert client._config.max_single_put_size == 2097152
    transport = client._pipeline._transport
    assert (transport.connection_config.read_timeout, transport.connection_config.timeout) == (9, 3)


def test_no_secret_in_repr_or_str() -> None:
    options = {
        "account_name": "acct",
        "account_key": SECRET_KEY,
        "sas_token": "sv=1&sig=sas-signature-secret",
        "client_secret": "client-secret-value",
    }
    storage = _azure(storage_from("az://c0ntainer/x", **options))
    shown = repr(storage) + str(storage) + repr(storage.config)
    for secret in (SECRET_KEY, "sas-signature-secret", "client-secret-value", ACCOUNT_KEY):
        assert secret not in shown
    with_string = storage_from(
        "az://c0ntainer/x", connection_string=connection_string(unused_endpoint())
    )
    assert ACCOUNT_KEY not in repr(with_string) + str(with_string)
