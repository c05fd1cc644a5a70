"""`KeyCases`: which keys a storage must refuse, and that the longest valid ones work.

`INVALID_KEYS` and `INVALID_PREFIXES` are public (``from moorage.testing import
INVALID_KEYS``): a plugin's own tests may reuse them for its other key-taking calls.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Coroutine
from typing import Any

from moorage.errors import InvalidKey
from moorage.storage import Storage
from moorage.testing._util import expect_error, run
from moorage.testing.storage.harness import StorageHarness

__all__ = ["INVALID_KEYS", "INVALID_PREFIXES", "KeyCases"]

#: Keys every key-taking storage method must refuse with `moorage.InvalidKey`.
INVALID_KEYS: tuple[str, ...] = (
    "",
    "..",
    ".",
    "../escape",
    "a/../../escape",
    "a/./b",
    "/abs",
    "/etc/passwd",
    "a//b",
    "a\\b",
    "..\\escape",
    "nul\x00byte",
    "trailing/",
    "/",
    "lone\udc80surrogate",
    "a/\ud800",
    "k" * 1025,
    "é" * 513,
    "long/" + "s" * 256,
    "/".join("d" * 129),
)

#: Listing prefixes `list_paths` must refuse: like `INVALID_KEYS`, except that the
#: empty prefix and a single trailing ``/`` are allowed for listings.
INVALID_PREFIXES: tuple[str, ...] = (
    *(p for p in INVALID_KEYS if p not in ("", "trailing/")),
    "a//",
)

AsyncCall = Callable[[str], Coroutine[Any, Any, object]]


def _run_async(call: AsyncCall, key: str) -> object:
    """``call(key)`` driven to its end on a fresh event loop."""
    return run(call(key))


class KeyCases(StorageHarness):
    """Key validation, sync and async: every method refuses every invalid key before it
    touches the backend, and keys at the limits of what is valid round-trip."""

    def _sync_calls(self, storage: Storage) -> dict[str, Callable[[str], object]]:
        return {
            "read_path": storage.read_path,
            "read_head": lambda key: storage.read_head(key, 4),
            "write_path": lambda key: storage.write_path(key, b"must not be written"),
            "write_parts": lambda key: storage.write_parts(key, [b"must not", b" be written"]),
            "exists": storage.exists,
            "delete_path": storage.delete_path,
            "resolve_path": storage.resolve_path,
        }

    def test_invalid_keys_raise_invalid_key(self, storage: Storage) -> None:
        storage.write_path("sentinel", b"x")
        failures: list[str] = []
        for name, call in self._sync_calls(storage).items():
            for key in INVALID_KEYS:
                expect_error(failures, f"{name}({key!r})", functools.partial(call, key), InvalidKey)

        def list_paths(prefix: str) -> list[str]:
            return list(storage.list_paths(prefix))

        for prefix in INVALID_PREFIXES:
            expect_error(
                failures,
                f"list_paths({prefix!r})",
                functools.partial(list_paths, prefix),
                InvalidKey,
            )
        assert not failures, "\n".join(failures)
        assert self._listed(storage) == ["sentinel"], "an invalid key wrote something"
        assert storage.read_path("sentinel") == b"x"

    def test_invalid_keys_raise_invalid_key_async(self, storage: Storage) -> None:
        calls: dict[str, AsyncCall] = {
            "aread_path": storage.aread_path,
            "aread_head": lambda key: storage.aread_head(key, 4),
            "awrite_path": lambda key: storage.awrite_path(key, b"must not be written"),
            "awrite_parts": lambda key: storage.awrite_parts(key, [b"must not", b" be written"]),
            "aexists": storage.aexists,
            "adelete_path": storage.adelete_path,
            "alist_paths": storage.alist_paths,
        }

        failures: list[str] = []
        for name, call in calls.items():
            keys = INVALID_PREFIXES if name == "alist_paths" else INVALID_KEYS
            for key in keys:
                expect_error(
                    failures,
                    f"{name}({key!r})",
                    functools.partial(_run_async, call, key),
                    InvalidKey,
                )
        assert not failures, "\n".join(failures)
        assert self._listed(storage) == [], "an invalid key wrote something"

    def test_keys_at_the_limits(self, storage: Storage) -> None:
        """The longest keys validation lets through can be written, listed and deleted."""
        deep = "/".join("d" * 128)  # 128 segments, the most a key may have
        wide = "/".join(["w" * 255, "é" * 127, "x" * 250])  # 761 bytes, full segments
        for key in (deep, wide):
            storage.write_path(key, key.encode())
            assert storage.read_path(key) == key.encode()
            assert storage.exists(key)
        assert self._listed(storage) == sorted([deep, wide])
        assert self._listed(storage, deep) == [deep]
        for key in (deep, wide):
            storage.delete_path(key)
        assert self._listed(storage) == []
