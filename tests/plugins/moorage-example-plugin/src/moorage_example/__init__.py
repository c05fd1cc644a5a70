"""An example third-party moorage plugin.

It registers, through moorage's hooks:

- storage scheme ``example``: `ExampleStorage`, a folder on the local disk,
  ``example:///absolute/folder`` (so another process sees what one process wrote);
- serializer type ``example-json``: `ExampleJSONSerializer`, plain JSON via the
  standard library;
- lock-manager scheme ``example``: `ExampleLockManager`, process-wide in-memory locks
  kept apart from moorage's own ``memory://`` locks;
- a hasher for `Money` (by amount and currency; its lock is not part of the value),
  named by dotted names so this module is imported only when a `Money` is hashed.

Installed with ``[project.entry-points.moorage] example = "moorage_example"``.
"""

from __future__ import annotations

import json
import os
import threading
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import unquote, urlsplit

import moorage
from moorage.buffers import BytesLike
from moorage.errors import ConfigurationError, RecordNotFound, SerializationError
from moorage.locking import DEFAULT_HOLD_TIMEOUT, LockInfo, LockManager, MemoryLockManager
from moorage.serializers import Serializer
from moorage.storage import Storage

__all__ = [
    "ExampleJSONSerializer",
    "ExampleLockManager",
    "ExampleStorage",
    "Money",
    "hash_money",
    "register_hashers",
    "register_lock_managers",
    "register_serializers",
    "register_storages",
]

#: Temporary files are written next to their target under this prefix, then renamed.
TEMP_PREFIX = ".example-tmp-"


def _folder_from_url(url: str, what: str) -> Path:
    parts = urlsplit(url)
    if parts.scheme != "example" or parts.netloc not in ("", "localhost"):
        raise ConfigurationError(f"{what} takes example:///absolute/folder URLs, not {url!r}")
    path = unquote(parts.path)
    if not path.startswith("/"):
        raise ConfigurationError(
            f"{what} needs an absolute folder: example:///abs/dir, not {url!r}"
        )
    return Path(path)


class ExampleStorage(Storage):
    """Bytes in files below a folder; writes go to a temporary file renamed into place.

    It declares no conditional writes (`conditional_create` and `conditional_replace`
    keep the base class's False), so `write_path` takes no ``if_absent``/``if_version``
    and is never given one: a store committing a transaction on it checks again for the
    key while holding the key's lock, then writes.
    """

    schemes = ("example",)
    conditional_create = False  # the default, said here for the reader of an example

    def __init__(self, url: str, **options: Any) -> None:
        if options:
            raise ConfigurationError(f"ExampleStorage takes no options, got {sorted(options)}")
        self.root = _folder_from_url(url, "ExampleStorage")
        self.url = f"example://{self.root.as_posix()}"

    def _path(self, key: str) -> Path:
        return self.root.joinpath(*key.split("/"))

    def _missing(self, key: str) -> RecordNotFound:
        return RecordNotFound(f"no record under key {key!r} in {self.url}")

    def read_path(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self._missing(key) from None

    def read_head(self, key: str, n: int) -> bytes:
        try:
            with self._path(key).open("rb") as f:
                return f.read(n)
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            raise self._missing(key) from None

    def write_path(self, key: str, content: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        temp = path.with_name(f"{TEMP_PREFIX}{uuid.uuid4().hex}")
        try:
            temp.write_bytes(content)
            os.replace(temp, path)
        except BaseException:
            temp.unlink(missing_ok=True)
            raise
        return self.resolve_path(key)

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def delete_path(self, key: str) -> None:
        try:
            self._path(key).unlink()
        except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
            pass

    def list_paths(self, prefix: str = "") -> Iterator[str]:
        found: list[str] = []
        for folder, _dirs, files in os.walk(self.root):
            rel = Path(folder).relative_to(self.root).as_posix()
            base = "" if rel == "." else f"{rel}/"
            found.extend(
                base + name
                for name in files
                if not name.startswith(TEMP_PREFIX) and (base + name).startswith(prefix)
            )
        return iter(sorted(found))

    def resolve_path(self, key: str) -> str:
        return f"{self.root.as_posix()}/{key}"


class ExampleJSONSerializer(Serializer):
    """JSON with the standard library; only JSON values, nothing tagged."""

    type: str = "example-json"
    indent: int | None = None

    def dumps(self, obj: Any) -> bytes:
        try:
            text = json.dumps(obj, indent=self.indent, ensure_ascii=False, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise SerializationError(f"example-json cannot encode this value: {exc}") from exc
        return text.encode("utf-8")

    def loads(self, data: BytesLike) -> Any:
        try:
            return json.loads(bytes(data))
        except ValueError as exc:  # includes JSONDecodeError and UnicodeDecodeError
            raise SerializationError(f"example-json payload is not valid JSON: {exc}") from exc


class ExampleLockManager(MemoryLockManager):
    """Process-wide locks for ``example://``, kept apart from ``memory://`` locks."""

    schemes = ("example",)
    _locks: ClassVar[dict[str, LockInfo]] = {}
    _cond: ClassVar[threading.Condition] = threading.Condition()

    def __init__(
        self,
        url: str = "example://",
        hold_timeout: float | str | None = DEFAULT_HOLD_TIMEOUT,
        **options: Any,
    ) -> None:
        if options:
            raise ConfigurationError(f"ExampleLockManager takes no options, got {sorted(options)}")
        if urlsplit(url).scheme != "example":
            raise ConfigurationError(f"ExampleLockManager takes example:// URLs, not {url!r}")
        LockManager.__init__(self, None if hold_timeout is None else float(hold_timeout))
        self.url = "example://"


@moorage.hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("example", ExampleStorage)


@moorage.hookimpl
def register_serializers(register: Callable[[str, type[Any]], None]) -> None:
    register(ExampleJSONSerializer.type_name(), ExampleJSONSerializer)


@moorage.hookimpl
def register_lock_managers(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("example", ExampleLockManager)


class Money:
    """An amount in a currency, guarded by a lock: without a hasher, cache keys would
    refuse it (a lock cannot be pickled)."""

    def __init__(self, cents: int, currency: str) -> None:
        self.cents = cents
        self.currency = currency.upper()
        self._lock = threading.Lock()

    @classmethod
    def parse(cls, text: str) -> Money:
        amount, currency = text.split()
        return cls(round(float(amount) * 100), currency)

    def __reduce__(self) -> tuple[Any, ...]:
        return (Money, (self.cents, self.currency))


def hash_money(money: Money) -> Any:
    return (money.cents, money.currency)


@moorage.hookimpl
def register_hashers(register: Callable[[Any, Any], None]) -> None:
    register("moorage_example.Money", "moorage_example:hash_money")
