"""The options of a ``gs://`` storage, checked once when the storage is built.

Options arrive as keyword arguments, from a named storage in settings, or as text from
the URL's query string; `GCSOptions.parse` turns them into typed values or raises
`moorage.ConfigurationError` naming the option. The credentials (``token``) and the
HTTP session options are kept out of the repr, and messages never quote their values.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from moorage.config.options import (
    Parser,
    one_of,
    parse_bool,
    parse_count,
    parse_number,
    parse_options,
    parse_required_text,
    parse_seconds,
)
from moorage.errors import ConfigurationError

__all__ = ["EMULATOR_VARIABLE", "TOKEN_METHODS", "UPLOAD_UNIT", "GCSOptions"]

#: gcsfs reads this variable itself (on every request) when no ``endpoint_url`` is given.
EMULATOR_VARIABLE = "STORAGE_EMULATOR_HOST"
#: The ``token`` values gcsfs treats as an authentication method rather than credentials.
TOKEN_METHODS = ("anon", "google_default", "cloud", "cache")
#: Resumable-upload chunks other than the last must be a multiple of 256 KiB.
UPLOAD_UNIT = 256 * 1024
_ACCESS = ("read_only", "read_write", "full_control")


@dataclass(frozen=True)
class GCSOptions:
    """Every option of `moorage_gcs.GCSStorage`, with its default."""

    project: str | None = None
    token: Any = field(default=None, repr=False)
    access: str = "full_control"
    endpoint_url: str | None = None
    requester_pays: bool | str = False
    timeout: float = 60.0
    connect_timeout: float = 10.0
    retries: int = 3
    chunk_size: int = 8 * 1024 * 1024
    session_kwargs: Mapping[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def parse(cls, options: Mapping[str, Any]) -> GCSOptions:
        """Check and convert options given as Python values or as URL query text."""
        return cls(**parse_options(options, _PARSERS, unknown=_unknown))

    def credentials(self) -> Any:
        """What gcsfs gets as ``token``.

        Unset, it is ``"anon"`` when STORAGE_EMULATOR_HOST is set (emulators take no
        credentials; google-cloud-storage does the same), else None: gcsfs then tries
        Application Default Credentials, its token cache, the metadata server, then
        anonymous access.
        """
        if self.token is not None:
            return os.path.expanduser(self.token) if isinstance(self.token, str) else self.token
        if os.environ.get(EMULATOR_VARIABLE, "") not in ("", "default"):
            return "anon"
        return None


def _endpoint(name: str, value: object) -> str:
    text = parse_required_text(name, value).strip().rstrip("/")
    scheme, sep, rest = text.partition("://")
    if not sep or scheme not in ("http", "https") or not rest or "/" in rest:
        raise ConfigurationError(
            "option 'endpoint_url' must be scheme://host[:port] with http or https and no "
            "path, e.g. http://127.0.0.1:9023"
        )
    return text


def _requester_pays(name: str, value: object) -> bool | str:
    if isinstance(value, bool):
        return value
    text = str(value).strip()
    try:
        return parse_bool(name, text)
    except ConfigurationError:
        if text:
            return text  # the project to bill
        raise


def _chunk_size(name: str, value: object) -> int:
    number = parse_number(name, value)
    if number <= 0 or number != int(number) or int(number) % UPLOAD_UNIT:
        raise ConfigurationError(
            f"option 'chunk_size' must be a positive multiple of {UPLOAD_UNIT} bytes "
            f"(256 KiB, as GCS requires for resumable uploads), e.g. {32 * UPLOAD_UNIT}"
        )
    return int(number)


def _session_kwargs(name: str, value: object) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigurationError(
            f"option {name!r} must be a mapping of aiohttp.ClientSession "
            "arguments (give it as a keyword argument or a table in settings)"
        )
    return value


def _token(name: str, token: object) -> object:
    """Refuse a ``token`` gcsfs would misread, without ever echoing its value.

    gcsfs treats any other string as a raw OAuth access token and sends it to Google's
    tokeninfo endpoint; a mistyped file name would leave the machine that way.
    """
    if token is None or isinstance(token, Mapping) or hasattr(token, "apply"):
        return token  # None, service-account info, or a google.auth Credentials object
    if isinstance(token, str):
        if token in TOKEN_METHODS or os.path.isfile(os.path.expanduser(token)):
            return token
        raise ConfigurationError(
            "option 'token' is neither a credentials file that exists nor one of "
            f"{', '.join(TOKEN_METHODS)}; give the path to a service-account (or "
            "authorized-user) JSON key file, or pass a google.auth Credentials object"
        )
    raise ConfigurationError(
        f"option 'token' must be a file path, one of {', '.join(TOKEN_METHODS)}, a "
        f"mapping of service-account info or a google.auth Credentials object, not a "
        f"{type(token).__name__}"
    )


#: Every option and its parser; what is not given keeps the default of `GCSOptions`.
_PARSERS: dict[str, Parser] = {
    "project": parse_required_text,
    "token": _token,
    "access": one_of(*_ACCESS),
    "endpoint_url": _endpoint,
    "requester_pays": _requester_pays,
    "timeout": parse_seconds,
    "connect_timeout": parse_seconds,
    "retries": parse_count,
    "chunk_size": _chunk_size,
    "session_kwargs": _session_kwargs,
}


def _unknown(names: list[str]) -> str:
    return (
        f"unknown gs:// storage option(s) {', '.join(map(repr, names))}; the options are: "
        f"{', '.join(_PARSERS)}"
    )
