"""Where a local storage or lock folder is, and its options: a plain path or a ``file://``
URL, whose query string may carry options (``file:///data/results?durable=true``).

Options are read with `moorage.config.options.parse_options`, as every backend reads
them; `parse_local_options` only adds which storage and URL an unknown name or a refused
value was meant for.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

from moorage.config.options import Parser, parse_options
from moorage.errors import ConfigurationError

__all__ = ["parse_local_options", "root_from_url"]


def root_from_url(url_or_path: str | os.PathLike[str], kind: str) -> tuple[str, dict[str, str]]:
    """The absolute, resolved folder of a ``file://`` URL or a plain path, and URL options.

    Plain paths are taken literally (``~`` is expanded, relative paths are relative to the
    working directory); ``file://`` URLs must be absolute and may carry options in their
    query string (``file:///data/results?durable=true``).
    """
    raw = os.fspath(url_or_path)
    if not isinstance(raw, str):
        raise ConfigurationError(f"{kind} takes a str path or a file:// URL, not {raw!r}")
    options: dict[str, str] = {}
    if raw[:5].lower() == "file:":
        parts = urlsplit(raw)
        path = unquote(parts.path)
        if parts.netloc not in ("", "localhost") or not path.startswith("/"):
            raise ConfigurationError(
                f"{kind} URL {raw!r} is not an absolute local file URL; write "
                "file:///absolute/folder (three slashes), or pass a plain path"
            )
        if os.name == "nt" and path[2:3] == ":":  # file:///C:/data
            path = path[1:]
        options = dict(parse_qsl(parts.query, keep_blank_values=True))
    elif "://" in raw:
        raise ConfigurationError(
            f"{kind} takes a plain path or a file:// URL, not {raw!r}; other schemes need "
            "their own plugin"
        )
    else:
        path = os.path.expanduser(raw)
    if not path:
        raise ConfigurationError(f"{kind} needs a folder; got an empty path")
    return os.path.realpath(path), options


def parse_local_options(
    options: Mapping[str, object], parsers: Mapping[str, Parser], kind: str, url: str
) -> dict[str, Any]:
    """The ``options`` given, parsed by `parse_options` with ``parsers``. An unknown name
    raises `ConfigurationError` naming it, the storage and the accepted names; a refused
    value's message also names the storage and shows the option as it was given
    (``durable='maybe'``)."""

    def unknown(names: list[str]) -> str:
        allowed = ", ".join(sorted(parsers)) or "none"
        return (
            f"unknown option {', '.join(map(repr, names))} for {kind} at {url}; "
            f"accepted options: {allowed}"
        )

    def in_context(parse: Parser) -> Parser:
        def parse_here(name: str, value: Any) -> Any:
            try:
                return parse(name, value)
            except ConfigurationError as exc:
                raise ConfigurationError(f"{kind} at {url}: {exc} ({name}={value!r})") from None

        return parse_here

    return parse_options(
        options, {name: in_context(parse) for name, parse in parsers.items()}, unknown=unknown
    )
