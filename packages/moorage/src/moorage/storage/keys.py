"""Key rules: what a storage key may be, checked before any I/O (see `validate_key`)."""

from __future__ import annotations

from moorage.errors import InvalidKey

__all__ = [
    "MAX_KEY_BYTES",
    "MAX_KEY_DEPTH",
    "MAX_SEGMENT_BYTES",
    "validate_key",
    "validate_keys",
    "validate_prefix",
]

_KEY_RULES = (
    "a key is a relative, '/'-separated path: no leading '/', no '..' or '.' segment, "
    "no empty segment, no backslash, no NUL"
)


#: Longest key, in bytes of UTF-8: what S3, GCS and Azure accept for an object name.
MAX_KEY_BYTES = 1024
#: Longest segment (the text between two ``/``), in bytes of UTF-8: a file name's limit.
MAX_SEGMENT_BYTES = 255
#: Most segments in one key: folders nested deeper than this are not keys' folders.
MAX_KEY_DEPTH = 128


def _shown(key: str) -> str:
    """``repr(key)``, cut short for long keys: safe to print, whatever the key holds."""
    if len(key) <= 80:
        return repr(key)
    return f"{key[:60]!r}... ({len(key)} characters)"


def validate_key(key: object) -> str:
    """Return ``key`` if it is a valid storage key, else raise `InvalidKey`.

    Valid keys are relative, ``/``-separated, with no ``.`` or ``..`` segment, no empty
    segment (so no leading, trailing or doubled ``/``), no NUL and no backslash. They
    encode as UTF-8 (no lone surrogates), and every backend can store them: at most
    `MAX_KEY_BYTES` bytes, segments of at most `MAX_SEGMENT_BYTES` bytes, at most
    `MAX_KEY_DEPTH` segments.
    """
    if type(key) is not str:
        raise InvalidKey(f"storage key {key!r} is a {type(key).__name__}, not a str; {_KEY_RULES}")
    if not key or key[0] == "/" or key[-1] == "/" or "//" in key or "\\" in key or "\x00" in key:
        raise InvalidKey(f"invalid storage key {_shown(key)}: {_KEY_RULES}")
    if "." in key:
        for segment in key.split("/"):
            if segment in (".", ".."):
                raise InvalidKey(f"invalid storage key {_shown(key)}: {_KEY_RULES}")
    if key.isascii():
        size = len(key)
    else:
        try:
            size = len(key.encode("utf-8"))
        except UnicodeEncodeError as exc:
            raise InvalidKey(
                f"invalid storage key {_shown(key)}: {key[exc.start]!r} at index {exc.start} "
                "cannot be encoded as UTF-8 (a lone surrogate); keys must be valid Unicode "
                "text, so decode file names and bytes strictly before using them as keys"
            ) from None
    if size > MAX_SEGMENT_BYTES:  # shorter keys are within every limit
        _check_size(key, size)
    return key


def _check_size(key: str, size: int) -> None:
    if size > MAX_KEY_BYTES:
        raise InvalidKey(
            f"invalid storage key {_shown(key)}: it is {size} bytes of UTF-8, over the "
            f"limit of {MAX_KEY_BYTES} that every storage can hold; use a shorter key "
            "(for example a hash of the long part)"
        )
    segments = key.split("/")
    if len(segments) > MAX_KEY_DEPTH:
        raise InvalidKey(
            f"invalid storage key {_shown(key)}: it has {len(segments)} segments, over the "
            f"limit of {MAX_KEY_DEPTH}; use fewer '/'-separated levels"
        )
    for segment in segments:
        if len(segment) * 4 > MAX_SEGMENT_BYTES and len(segment.encode()) > MAX_SEGMENT_BYTES:
            raise InvalidKey(
                f"invalid storage key {_shown(key)}: its segment {_shown(segment)} is "
                f"{len(segment.encode())} bytes of UTF-8, over the limit of "
                f"{MAX_SEGMENT_BYTES} for one segment (a file name); split it with '/' or "
                "shorten it"
            )


def validate_prefix(prefix: object) -> str:
    """Validate a listing prefix: empty, or a key optionally followed by one ``/``."""
    if prefix == "":
        return ""
    if type(prefix) is str and prefix.endswith("/") and len(prefix) > 1:
        validate_key(prefix[:-1])
        return prefix
    return validate_key(prefix)


def validate_keys(keys: object) -> list[str]:
    """Validate a batch of keys (a list or tuple of them, never one string)."""
    if isinstance(keys, (str, bytes)) or not isinstance(keys, (list, tuple)):
        raise TypeError(
            f"expected a list or tuple of keys, got {type(keys).__name__}; "
            "pass [key] to delete a single key"
        )
    return [validate_key(key) for key in keys]
