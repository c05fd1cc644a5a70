"""The options of an Azure storage, and the client built from them.

adlfs turns the credential options (and the ``AZURE_STORAGE_*`` variables it reads
itself) into an `azure.storage.blob.aio.BlobServiceClient`. adlfs builds that client
without retry or timeout settings, so `build_filesystem` rebuilds it from the URL and
credential adlfs chose, adding the bounded retry policy and timeouts of this module, and
a transport that bounds each request attempt as a whole (`moorage_azure.transport`).
"""

from __future__ import annotations

import os
import random
import re
from dataclasses import dataclass
from typing import Any

from adlfs import AzureBlobFileSystem
from azure.core.utils import parse_connection_string
from azure.storage.blob.aio import BlobServiceClient, ExponentialRetry

from moorage.config.options import (
    Parser,
    as_given,
    parse_bool,
    parse_options,
    parse_seconds,
    whole_number,
)
from moorage.config.secrets import mask_secrets
from moorage.errors import ConfigurationError
from moorage_azure.transport import BoundedTransport

__all__ = ["AzureConfig", "build_filesystem", "scrub"]

#: Options handed to adlfs unchanged: how to find and authenticate to the account.
CREDENTIAL_OPTIONS = (
    "account_name",
    "account_key",
    "sas_token",
    "connection_string",
    "credential",
    "anon",
    "account_host",
    "client_id",
    "client_secret",
    "tenant_id",
)
TUNING_OPTIONS = (
    "timeout",
    "connection_timeout",
    "read_timeout",
    "max_concurrency",
    "block_size",
    "retries",
    "retry_backoff",
)
_SECRET_OPTIONS = ("account_key", "sas_token", "connection_string", "credential", "client_secret")
_SECRET_VARIABLES = (
    "AZURE_STORAGE_ACCOUNT_KEY",
    "AZURE_STORAGE_CONNECTION_STRING",
    "AZURE_STORAGE_SAS_TOKEN",
    "AZURE_STORAGE_CLIENT_SECRET",
)
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

MIB = 1024 * 1024
#: How much of a response the transport reads at a time: the blob SDK's own choice.
_DATA_BLOCK_SIZE = 256 * 1024
_MAX_BLOCK = 4000 * MIB  # the service's limit for one block


def _backoff(name: str, value: object) -> float:
    return parse_seconds(name, value, allow_zero=True)


#: Every option and its parser: credentials go to adlfs as given (``anon`` parsed).
_PARSERS: dict[str, Parser] = {
    **dict.fromkeys(CREDENTIAL_OPTIONS, as_given),
    "anon": parse_bool,
    "timeout": whole_number(1),
    "connection_timeout": parse_seconds,
    "read_timeout": parse_seconds,
    "max_concurrency": whole_number(1),
    "block_size": whole_number(1, _MAX_BLOCK),
    "retries": whole_number(0, 100),
    "retry_backoff": _backoff,
}


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


@dataclass(frozen=True, repr=False)
class AzureConfig:
    """Parsed options. ``credentials`` go to adlfs; the rest shape the client and calls."""

    credentials: dict[str, Any]
    timeout: int | None = None
    connection_timeout: float = 20.0
    read_timeout: float = 60.0
    max_concurrency: int = 8
    block_size: int = 8 * MIB
    retries: int = 3
    retry_backoff: float = 1.0

    def __repr__(self) -> str:  # never the credentials' values
        return f"AzureConfig(options={sorted(self.credentials)}, retries={self.retries})"

    @classmethod
    def parse(cls, options: dict[str, Any], where: str) -> AzureConfig:
        """Check and convert options given as Python values or as URL query text; an
        option given as None is left out (adlfs then looks for it in the environment)."""

        def unknown(names: list[str]) -> str:
            return (
                f"unknown option(s) {', '.join(map(repr, names))} for {where}; the Azure "
                f"storage accepts {', '.join(CREDENTIAL_OPTIONS + TUNING_OPTIONS)}"
            )

        given = {k: v for k, v in options.items() if v is not None}
        parsed = parse_options(given, _PARSERS, unknown=unknown)
        credentials = {k: v for k, v in parsed.items() if k in CREDENTIAL_OPTIONS}
        tuning = {k: v for k, v in parsed.items() if k in TUNING_OPTIONS}
        return cls(credentials=credentials, **tuning)

    def per_call(self) -> dict[str, Any]:
        """Keyword arguments for every SDK call: the server-side timeout, when set."""
        return {"timeout": self.timeout} if self.timeout is not None else {}

    def secrets(self) -> list[str]:
        """Every secret value this storage may use, to keep out of messages."""
        values = [self.credentials.get(name) for name in _SECRET_OPTIONS]
        values += [os.environ.get(name) for name in _SECRET_VARIABLES]
        found = [v for v in values if isinstance(v, str) and v]
        for value in list(found):  # a connection string: its key and signature too
            for part in value.split(";"):
                name, _, secret = part.partition("=")
                if name.strip().lower() in ("accountkey", "sharedaccesssignature"):
                    found.append(secret)
        return sorted({v for v in found if len(v) >= 8}, key=len, reverse=True)


_SECRET_PATTERNS = (re.compile(r"(?i)(accountkey|sharedaccesssignature|sig|secret)=[^;&\s'\"]+"),)


def scrub(text: str, secrets: list[str]) -> str:
    """``text`` with the given secrets and anything shaped like a key or signature masked."""
    return mask_secrets(text, secrets, patterns=_SECRET_PATTERNS)


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
    """A new adlfs filesystem (never shared) whose client retries and times out as set."""
    _check_environment(config, where)
    try:
        fs = AzureBlobFileSystem(
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
    made = fs.service_client
    fs.service_client = BlobServiceClient(
        made.url,
        credential=made.credential,
        secondary_hostname=made.secondary_hostname or None,
        retry_policy=_Retry(config.retries, config.retry_backoff),
        connection_timeout=config.connection_timeout,
        read_timeout=config.read_timeout,
        max_single_put_size=config.block_size,
        max_block_size=config.block_size,
        user_agent="moorage-azure/0.1.0",
        transport=BoundedTransport(
            connection_timeout=config.connection_timeout,
            read_timeout=config.read_timeout,
            connection_data_block_size=_DATA_BLOCK_SIZE,
        ),
    )
    return fs
