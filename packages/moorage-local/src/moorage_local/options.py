"""Where a local storage or lock folder is, and its options: a plain path or a ``file://``
URL, whose query string may carry options (``file:///data/results?durable=true``).

Option values are read with `moorage.config.options`, the parsers every backend uses;
`parse_option` only adds which storage and URL a refused value was meant for.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from typing import TypeVar
from urllib.parse import parse_qsl, unquote, urlsplit

from moorage.errors import ConfigurationError

__all__ = ["check_options", "parse_option", "root_from_url"]

_V = TypeVar("_V")


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


def check_options(options: Mapping[str, object], known: set[str], kind: str, url: str) -> None:
    """Raise `ConfigurationError` naming any option of ``options`` not in ``known``."""
    unknown = sorted(set(options) - known)
    if unknown:
        allowed = ", ".join(sorted(known)) or "none"
        raise ConfigurationError(
            f"unknown option {', '.join(map(repr, unknown))} for {kind} at {url}; "
            f"accepted options: {allowed}"
        )


def parse_option(
    parse: Callable[[str, object], _V], name: str, value: object, kind: str, url: str
) -> _V:
    """``parse(name, value)`` (a parser of `moorage.config.options`); a refused value's
    `ConfigurationError` also names the storage's kind and URL and shows the option as
    it was given (``durable='maybe'``)."""
    try:
        return parse(name, value)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{kind} at {url}: {exc} ({name}={value!r})") from None
