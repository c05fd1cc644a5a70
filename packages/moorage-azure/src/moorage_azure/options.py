"""The options of an Azure storage, checked once when the storage is built.

Options arrive as keyword arguments, from a named storage in settings, or as text from
the URL's query string; `AzureConfig.parse` turns them into typed values or raises
`moorage.ConfigurationError` naming the option. The credential options go to adlfs as
given (it also reads the ``AZURE_STORAGE_*`` variables itself); the tuning options shape
the SDK client moorage builds (`moorage_azure.client`) and every call. No credential's
value reaches a repr or a message: `scrub` masks them.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from typing import Any

from moorage.config.options import (
    Parser,
    as_given,
    parse_bool,
    parse_options,
    parse_seconds,
    whole_number,
)
from moorage.config.secrets import mask_secrets

__all__ = ["CREDENTIAL_OPTIONS", "MIB", "TUNING_OPTIONS", "AzureConfig", "scrub"]

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
#: Options that shape the client moorage builds and every call it makes.
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

MIB = 1024 * 1024
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
