"""The options of an S3 storage: parsed once, checked once, turned into s3fs arguments.

Options arrive as keyword arguments, from a named storage in settings, or as text from a
URL's query string (``?region=eu-west-1&retries=3``). Whatever is not given is left to
botocore, so the SDK's own variables (``AWS_ACCESS_KEY_ID``, ``AWS_PROFILE``,
``AWS_DEFAULT_REGION``, ``AWS_ENDPOINT_URL_S3``, ``AWS_MAX_ATTEMPTS``...) and the shared
config files keep working. Secret values (``key``, ``secret``, ``token``) are kept out of
every repr and message.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Any

from moorage.config.options import (
    Parser,
    one_of,
    optional,
    parse_bool,
    parse_options,
    parse_positive,
    parse_size,
    parse_text,
    whole_number,
)
from moorage.config.secrets import mask_secrets
from moorage.errors import ConfigurationError

__all__ = ["MIB", "MIN_PART_SIZE", "S3Options"]

MIB = 1024 * 1024
#: S3's smallest part (all but the last) and largest part or single PUT.
MIN_PART_SIZE = 5 * MIB
MAX_PART_SIZE = 5 * 1024 * MIB

_ALIASES = {"region_name": "region"}
#: Every option and its parser; what is not given keeps the default of `S3Options`.
_PARSERS: dict[str, Parser] = {
    "endpoint_url": parse_text,
    "region": parse_text,
    "key": parse_text,
    "secret": parse_text,
    "token": parse_text,
    "profile": parse_text,
    "anon": parse_bool,
    "connect_timeout": parse_positive,
    "read_timeout": parse_positive,
    "retries": optional(whole_number(1)),
    "retry_mode": one_of("legacy", "standard", "adaptive"),
    "max_pool_connections": whole_number(1),
    "max_concurrency": whole_number(1),
    "multipart_threshold": parse_size,
    "part_size": parse_size,
    "addressing_style": one_of("auto", "path", "virtual"),
}


def _unknown(names: list[str]) -> str:
    return (
        f"unknown option {', '.join(map(repr, names))} for an s3:// storage; the options "
        f"are: {', '.join(sorted(_PARSERS))} (see the moorage-s3 documentation)"
    )


@dataclass(frozen=True)
class S3Options:
    """Every option of `S3Storage`, with its default; see ``docs/backends/s3.md``."""

    endpoint_url: str | None = None
    region: str | None = None
    key: str | None = field(default=None, repr=False)
    secret: str | None = field(default=None, repr=False)
    token: str | None = field(default=None, repr=False)
    profile: str | None = None
    anon: bool = False
    connect_timeout: float = 10.0
    read_timeout: float = 60.0
    retries: int | None = None
    retry_mode: str | None = None
    max_pool_connections: int = 50
    max_concurrency: int = 4
    multipart_threshold: int = 8 * MIB
    part_size: int = 8 * MIB
    addressing_style: str | None = None

    @classmethod
    def parse(cls, options: dict[str, Any]) -> S3Options:
        """Check and convert options given as Python values or as URL query text."""
        parsed = cls(**parse_options(options, _PARSERS, unknown=_unknown, aliases=_ALIASES))
        parsed._check()
        return parsed

    def _check(self) -> None:
        if bool(self.key) != bool(self.secret):
            raise ConfigurationError(
                "options 'key' and 'secret' go together: give both (or neither, to use the "
                "AWS_* environment variables, a profile or the instance's role)"
            )
        if self.token and not self.key:
            raise ConfigurationError("option 'token' needs 'key' and 'secret' as well")
        if self.anon and (self.key or self.profile):
            raise ConfigurationError(
                "option 'anon' sends unsigned requests; drop 'key'/'secret'/'profile' or anon"
            )
        if not MIN_PART_SIZE <= self.part_size <= MAX_PART_SIZE:
            raise ConfigurationError(
                f"option 'part_size' must be between 5 MiB and 5 GiB (S3's limits), not "
                f"{self.part_size} bytes"
            )
        if self.multipart_threshold > MAX_PART_SIZE:
            raise ConfigurationError(
                "option 'multipart_threshold' must be at most 5 GiB, the largest single PUT"
            )

    def filesystem_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for ``s3fs.S3FileSystem`` (not the session, which carries
        ``profile``, nor the caching flags).

        Only what was given is passed on, so botocore still resolves the rest from its
        environment variables and config files. ``AWS_REGION`` is honoured as a fallback
        when neither ``region`` nor ``AWS_DEFAULT_REGION`` (botocore's own) is set.
        """
        config: dict[str, Any] = {
            "connect_timeout": self.connect_timeout,
            "read_timeout": self.read_timeout,
            "max_pool_connections": self.max_pool_connections,
        }
        retries: dict[str, Any] = {}
        if self.retries is not None:
            retries["total_max_attempts"] = self.retries
        if self.retry_mode is not None:
            retries["mode"] = self.retry_mode
        if retries:
            config["retries"] = retries
        if self.addressing_style is not None:
            config["s3"] = {"addressing_style": self.addressing_style}
        region = self.region
        if region is None and not os.environ.get("AWS_DEFAULT_REGION"):
            region = os.environ.get("AWS_REGION") or None
        return {
            "anon": self.anon,
            "endpoint_url": self.endpoint_url,
            "key": self.key,
            "secret": self.secret,
            "token": self.token,
            "client_kwargs": {"region_name": region} if region else {},
            "config_kwargs": config,
        }

    def scrub(self, text: str) -> str:
        """``text`` from outside (a server's message, an exception) without our secrets."""
        return mask_secrets(text, (self.key, self.secret, self.token))
