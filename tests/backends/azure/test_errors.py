"""Failures name the URL and the fix, retries and timeouts are bounded, secrets stay out."""

from __future__ import annotations

import traceback
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from azure.storage.blob import ContainerSasPermissions, generate_container_sas

from moorage.errors import ConfigurationError, RecordNotFound, StorageError
from moorage.plugins.resolve import storage_from
from moorage.storage import Storage

from servers.azure import ACCOUNT, ACCOUNT_KEY, AzureServer, connection_string
from servers.endpoints import answering, silent, unused_endpoint
from servers.proxy import Reply

WRONG_KEY = "A" * 86 + "=="


def _failure(call: Callable[[], object]) -> StorageError:
    with pytest.raises(StorageError) as caught:
        call()
    return caught.value


def _everything_said(error: BaseException) -> str:
    """The message, and the whole traceback with its chained causes."""
    return str(error) + "".join(traceback.format_exception(error))


def test_missing_container_names_it_and_the_fix(azurite: AzureServer) -> None:
    storage = azurite.storage("no-such-container", retries=0)
    calls: dict[str, Callable[[], object]] = {
        "read": lambda: storage.read_path("k"),
        "write": lambda: storage.write_path("k", b"x"),
        "list": lambda: list(storage.list_paths()),
        "check": lambda: storage.exists("k"),
        "delete": lambda: storage.delete_path("k"),
    }
    for action, call in calls.items():
        message = str(_failure(call))
        assert message.startswith(f"cannot {action} "), message
        assert "az://no-such-container/results" in message
        assert "container 'no-such-container' does not exist" in message
        assert f"storage account '{ACCOUNT}'" in message
        assert "az storage container create --name no-such-container" in message


def test_missing_key_is_record_not_found(make: Callable[..., Storage]) -> None:
    storage = make()
    with pytest.raises(RecordNotFound, match="'missing' in az://"):
        storage.read_path("missing")
    with pytest.raises(RecordNotFound):
        storage.read_head("missing", 0)


def test_wrong_account_key_is_access_denied(azurite: AzureServer) -> None:
    container = azurite.create_container()
    storage = azurite.storage(
        container, connection_string=connection_string(azurite.endpoint, WRONG_KEY), retries=0
    )
    error = _failure(lambda: storage.write_path("k", b"x"))
    assert "cannot write 'k' in az://" in str(error)
    assert "access denied (AuthorizationFailure)" in str(error)
    assert "check the account key, SAS token, connection string" in str(error)
    assert WRONG_KEY not in _everything_said(error)
    assert not azurite.storage(container).exists("k"), "the refused write left a blob"


def test_sas_token_without_write_permission(azurite: AzureServer) -> None:
    container = azurite.create_container()
    azurite.storage(container).write_path("k", b"readable")
    sas = generate_container_sas(
        ACCOUNT,
        container,
        account_key=ACCOUNT_KEY,
        permission=ContainerSasPermissions(read=True, list=True),
        expiry=datetime.now(UTC) + timedelta(hours=1),
    )
    signature = sas.split("sig=")[1]
    via_sas = f"BlobEndpoint={azurite.endpoint}/{ACCOUNT};SharedAccessSignature={sas}"
    storage = azurite.storage(container, connection_string=via_sas, retries=0)
    assert storage.read_path("k") == b"readable"
    assert list(storage.list_paths()) == ["k"]
    error = _failure(lambda: storage.write_path("k", b"x"))
    assert "access denied (AuthorizationPermissionMismatch)" in str(error)
    assert signature not in _everything_said(error)
    assert signature not in repr(storage) + str(storage)


def test_unreachable_endpoint(azurite: AzureServer) -> None:
    endpoint = unused_endpoint()
    storage = azurite.storage(azurite.create_container(), via=endpoint, retries=0)
    error = _failure(lambda: storage.exists("k"))
    message = str(error)
    assert "cannot check 'k' in az://" in message
    assert f"cannot reach {endpoint}/{ACCOUNT} without retrying" in message
    assert "BlobEndpoint of the connection string" in message
    assert ACCOUNT_KEY not in _everything_said(error)


@pytest.mark.parametrize("retries", [0, 2])
def test_retries_are_bounded_and_configurable(retries: int) -> None:
    with answering(Reply(503)) as endpoint:
        storage = storage_from(
            "az://busy/p",
            connection_string=connection_string(endpoint.endpoint),
            retries=str(retries),  # as a URL query would give it
            retry_backoff="0",
        )
        error = _failure(lambda: storage.write_path("k", b"x"))
    assert len(endpoint.exchanges) == retries + 1
    assert "the service answered 503" in str(error)


def test_read_timeout_is_bounded() -> None:
    with silent() as endpoint:
        storage = storage_from(
            "az://quiet/p?read_timeout=0.3&retries=1&retry_backoff=0",
            connection_string=connection_string(endpoint.endpoint),
        )
        error = _failure(lambda: storage.read_path("k"))
    assert "no complete answer from" in str(error)
    assert "after 1 retry" in str(error)
    assert "read_timeout=0.3 s" in str(error)
    assert len(endpoint.exchanges) >= 2, "the retry did not happen"


def test_no_credentials_at_all() -> None:
    storage = storage_from("az://container/p")
    with pytest.raises(ConfigurationError) as caught:
        storage.exists("k")
    message = str(caught.value)
    assert "cannot set up the Azure client for az://container/p" in message
    assert "give connection_string, or account_name with account_key" in message


def test_malformed_connection_string() -> None:
    storage = storage_from("az://container/p", connection_string="AccountKey=sekrit-value-123")
    with pytest.raises(ConfigurationError) as caught:
        storage.exists("k")
    assert "sekrit-value-123" not in _everything_said(caught.value)
