"""The adlfs filesystem and the bounded blob client an Azure storage talks through.

adlfs turns the credential options, and the ``AZURE_STORAGE_*`` variables it reads
itself, into an account URL and a credential (an account key, a SAS token, a service
principal, ``DefaultAzureCredential``...), and builds its own
`azure.storage.blob.aio.BlobServiceClient` from them, without retry or timeout
settings. moorage neither uses nor changes that client: `build_client` reads where and
as whom it connects (the SDK's public ``url``, ``credential`` and
``secondary_hostname``) and builds a client of its own on them, with the bounded retry
policy and timeouts of the options and a transport that bounds each request attempt
as a whole (`moorage_azure.transport`). The storage keeps that client beside the
filesystem it came from and sends every request through it; adlfs is left to resolve
the credentials once and to supply fsspec's I/O loop.

Reading adlfs's result rather than resolving the credentials again here keeps one
implementation of that resolution (adlfs's), and every way of authenticating that
adlfs supports keeps working.
"""

from __future__ import annotations

import os
import random
from asyncio import AbstractEventLoop
from typing import Any

from adlfs import AzureBlobFileSystem
from azure.core.utils import parse_connection_string
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry
from fsspec.asyn import sync

from moorage.errors import ConfigurationError
from moorage_azure.options import AzureConfig, scrub
from moorage_azure.transport import BoundedTransport

__all__ = ["build_client", "build_filesystem", "close_client"]

#: How much of a response the transport reads at a time: the blob SDK's own choice.
_DATA_BLOCK_SIZE = 256 * 1024
_USER_AGENT = "moorage-azure/0.1.0"

_CONNECTION_STRING_VARIABLE = "AZURE_STORAGE_CONNECTION_STRING"
# Options that adlfs ignores when it uses a connection string.
_IGNORED_BESIDE_CONNECTION_STRING = (
    "account_key",
    "sas_token",
    "credential",
    "account_host",
    "client_id",
    "client_secret",
    "tenant_id",
)


class _Retry(ExponentialRetry):
    """The SDK's retry rules (which failures and statuses are retried, rewinding bodies),
    with a backoff that scales with one number: ``backoff * 2**(n-1)`` seconds before
    retry n, with ±25 % jitter. The SDK's own default waits 15 s before the first retry."""

    def __init__(self, retries: int, backoff: float) -> None:
        super().__init__(
            retry_total=retries, retry_connect=retries, retry_read=retries, retry_status=retries
        )
        self.backoff = backoff

    def get_backoff_time(self, settings: dict[str, Any]) -> float:
        count = max(int(settings["count"]), 1)
        return float(self.backoff * 2 ** (count - 1) * random.uniform(0.75, 1.25))


def _check_environment(config: AzureConfig, where: str) -> None:
    """Refuse options that adlfs would silently ignore for AZURE_STORAGE_CONNECTION_STRING."""
    environment = os.environ.get(_CONNECTION_STRING_VARIABLE)
    if not environment or "connection_string" in config.credentials:
        return
    ignored = [name for name in _IGNORED_BESIDE_CONNECTION_STRING if name in config.credentials]
    account = config.credentials.get("account_name")
    if account is not None:
        try:
            env_account = parse_connection_string(environment).get("accountname")
        except ValueError:
            env_account = None
        if env_account != account:
            ignored.insert(0, "account_name")
    if ignored:
        raise ConfigurationError(
            f"{_CONNECTION_STRING_VARIABLE} is set, and it would take precedence over the "
            f"option(s) {', '.join(ignored)} given for {where}; unset the variable, or pass "
            "the connection string for this storage as its connection_string option"
        )


def build_filesystem(
    config: AzureConfig, where: str, *, asynchronous: bool, loop: Any
) -> AzureBlobFileSystem:
    """A new adlfs filesystem (never shared) with the storage's credentials: where the
    account is and how to authenticate, for `build_client`, and fsspec's I/O loop."""
    _check_environment(config, where)
    try:
        return AzureBlobFileSystem(
            asynchronous=asynchronous,
            loop=loop,
            skip_instance_cache=True,
            use_listings_cache=False,
            **config.credentials,
        )
    except (ValueError, TypeError) as exc:
        cause = scrub(str(exc.__cause__ or exc), config.secrets()).rstrip(". ")
        raise ConfigurationError(
            f"cannot set up the Azure client for {where}: {cause}; "
            "give connection_string, or account_name with account_key, sas_token or "
            "credential (as options, in a named storage, or through AZURE_STORAGE_* "
            "environment variables)"
        ) from None


def build_client(fs: AzureBlobFileSystem, config: AzureConfig) -> BlobServiceClient:
    """A new blob service client for the account and credential ``fs`` resolved, whose
    every request retries and times out as ``config`` says. Reads ``fs``, changes
    nothing in it: the filesystem keeps (and in the end closes) its own client."""
    resolved: BlobServiceClient = fs.service_client
    return BlobServiceClient(
        resolved.url,  # the account URL, with the SAS token when that is the credential
        credential=resolved.credential,
        secondary_hostname=resolved.secondary_hostname or None,
        retry_policy=_Retry(config.retries, config.retry_backoff),
        connection_timeout=config.connection_timeout,
        read_timeout=config.read_timeout,
        max_single_put_size=config.block_size,
        max_block_size=config.block_size,
        user_agent=_USER_AGENT,
        transport=BoundedTransport(
            connection_timeout=config.connection_timeout,
            read_timeout=config.read_timeout,
            connection_data_block_size=_DATA_BLOCK_SIZE,
        ),
    )


def close_client(loop: AbstractEventLoop, client: BlobServiceClient, *, pid: int) -> None:
    """Close the client's connections on ``loop``, the loop its requests ran on, if this
    is process ``pid``, the one that built it (a forked child has the parent's client
    but not the thread that runs its loop). Best effort: a client that cannot be closed
    (its loop stopped, or this runs on that loop itself) is dropped as it is."""
    if os.getpid() != pid:
        return
    try:
        sync(loop, client.close)
    except Exception:
        pass
