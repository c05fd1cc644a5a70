"""Secret masking: the one place that decides what is a secret and hides it as ``***``.

Two questions, one answer each. Which *options* are secret is decided by their names
(`is_secret_option`: anything with ``secret``, ``password``, ``token``, ``key``...), so
settings listings, error messages and URLs hide their values. Which *text* must be
scrubbed is decided by the values a backend holds (`mask_secrets`): a server's message or
a client library's exception may quote a key, a password or a connection string, and
each such value, also as it appears in a URL (percent-encoded), becomes ``***``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit, urlunsplit

__all__ = [
    "MASK",
    "is_secret_option",
    "mask_options",
    "mask_secrets",
    "mask_url",
]

#: What a secret is shown as.
MASK = "***"

_SECRET_HINTS = ("secret", "password", "token", "key", "credential", "sas", "connection_string")
#: Option names that contain a secret-sounding word but hold no secret.
_NOT_SECRET = ("storage_key", "key_prefix", "key_storage")


def is_secret_option(name: str) -> bool:
    """Whether a backend option's value must never be shown (by its name)."""
    lowered = name.lower()
    return any(hint in lowered for hint in _SECRET_HINTS) and lowered not in _NOT_SECRET


def mask_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` with the value of every secret option (by name) shown as ``***``."""
    return {name: (MASK if is_secret_option(name) else value) for name, value in options.items()}


def mask_url(url: str | None) -> str | None:
    """Hide passwords in ``scheme://user:password@host`` and secret query options."""
    if not url or "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc
    if parts.password:
        netloc = netloc.replace(f":{parts.password}@", f":{MASK}@")
    query = parts.query
    if query:
        pairs = [(k, MASK if is_secret_option(k) else v) for k, v in parse_qsl(query)]
        query = urlencode(pairs, safe="*")
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def mask_secrets(
    text: str,
    secrets: Iterable[object],
    *,
    min_length: int = 1,
    patterns: Iterable[re.Pattern[str]] = (),
) -> str:
    """``text`` with every secret value in it shown as ``***``.

    ``secrets`` are the values to hide: anything that is not a string of at least
    ``min_length`` characters is skipped (a backend passing all its option values sets a
    length below which a value would only hide ordinary words). Each value is replaced as
    it is and as a URL quotes it, longest first, so no part of one is left beside
    another. ``patterns`` hide what has a secret's shape rather than a known value: each
    match's first group is kept and the rest becomes ``=***`` (``AccountKey=***``).
    """
    values = {s for s in secrets if isinstance(s, str) and len(s) >= min_length}
    values |= {quote(s, safe="") for s in values}
    for value in sorted(values, key=len, reverse=True):
        text = text.replace(value, MASK)
    for pattern in patterns:
        text = pattern.sub(lambda m: f"{m.group(1)}={MASK}", text)
    return text
