"""`GCSStorage`: ``gs://bucket/prefix`` (also ``gcs://``) on gcsfs.

The shared base `moorage.storage.objectstore.ObjectStorage` runs every operation on fsspec's
I/O loop; this class supplies the filesystem (see `moorage_gcs.filesystem`), the
messages for GCS failures, and the operations where gcsfs's generic ones do more than
needed:

- ``exists`` fetches the object's metadata (one JSON request), where gcsfs's ``info``
  also lists the "folder" in parallel;
- listings are one paginated, prefix-filtered list request that returns names and
  metadata only;
- ``read_head`` is a ranged GET; GCS answers 416 to any range on an empty object, which
  here means "the first n bytes are empty";
- writes go through `moorage_gcs.upload`, conditional ones (``if_absent``,
  ``if_version``) with ``ifGenerationMatch``; `version_of` is the object's generation,
  from its metadata. A failed condition (HTTP 412) becomes `WriteConflict` in `_error`,
  where every failure of this backend is turned into a moorage error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, ClassVar

import aiohttp
from fsspec.asyn import AsyncFileSystem, sync
from gcsfs.retry import HttpError, NonRetryableError
from google.auth.exceptions import GoogleAuthError

from moorage.errors import MoorageError, StorageError
from moorage.storage.base import ALWAYS, BytesLike, WriteCondition, write_conflict
from moorage.storage.objectstore import ObjectStorage, overall_limit
from moorage_gcs.filesystem import PlainGCSFileSystem, build_filesystem
from moorage_gcs.options import EMULATOR_VARIABLE, GCSOptions
from moorage_gcs.upload import ABSENT, PreconditionFailed, byte_views, write_object

__all__ = ["GCSStorage"]


class GCSStorage(ObjectStorage):
    """A bucket and an optional key prefix on Google Cloud Storage (or an emulator).

    ``GCSStorage("gs://bucket/prefix", project=..., token=..., ...)``; the options are
    described in `moorage_gcs.options.GCSOptions` and in the documentation.
    """

    schemes: ClassVar[tuple[str, ...]] = ("gs", "gcs")
    #: ``if_absent``: the upload carries ``ifGenerationMatch=0``.
    conditional_create: ClassVar[bool] = True
    #: `version_of` is the object's generation; ``if_version`` sends it as
    #: ``ifGenerationMatch``.
    conditional_replace: ClassVar[bool] = True

    def __init__(self, url: str, **options: Any) -> None:
        self.settings = GCSOptions.parse(options)
        super().__init__(url, **options)

    def make_filesystem(self, *, asynchronous: bool, loop: Any) -> AsyncFileSystem:
        return build_filesystem(self.settings, asynchronous=asynchronous, loop=loop)

    def _name(self, key: str) -> str:
        return f"{self.prefix}/{key}" if self.prefix else key

    # -- operations ---------------------------------------------------------------------

    async def _read(self, fs: AsyncFileSystem, key: str, n: int | None) -> bytes:
        try:
            return await super()._read(fs, key, n)
        except HttpError as exc:
            if n is not None and exc.code == 416:  # no byte at offset 0: an empty object
                return b""
            raise

    async def _write(
        self,
        fs: AsyncFileSystem,
        key: str,
        parts: Sequence[BytesLike],
        condition: WriteCondition = ALWAYS,
    ) -> str:
        assert isinstance(fs, PlainGCSFileSystem)
        generation = self._generation(key, condition)
        views = byte_views(parts)
        await write_object(
            fs, self.bucket, self._name(key), views, self.settings.chunk_size, generation
        )
        return self.resolve_path(key)

    def _generation(self, key: str, condition: WriteCondition) -> str | None:
        """The ``ifGenerationMatch`` a write sends: None (no condition), `ABSENT`, or
        the generation given as ``if_version``."""
        if condition.if_absent:
            return ABSENT
        if_version = condition.if_version
        if if_version is not None and not (if_version.isdigit() and if_version.isascii()):
            # Not a generation number, so not the version of any object here: the
            # condition cannot hold (and GCS would refuse the parameter).
            raise PreconditionFailed(self._name(key), if_version)
        return if_version

    async def _version(self, fs: AsyncFileSystem, key: str) -> str | None:
        """The live object's generation, from its metadata (no payload); None if none."""
        # gcsfs's object GET, as in _exists: its public `info` also lists the "folder".
        try:
            info: dict[str, Any] = await fs._get_object(self._path(key))
        except FileNotFoundError:
            return None
        generation = info.get("generation")
        if not generation:
            raise StorageError(
                f"cannot check {self._where(key)}: {self._endpoint()} returned object "
                "metadata without a generation; conditional writes need a GCS-compatible "
                "server that reports generations"
            )
        return str(generation)

    async def _exists(self, fs: AsyncFileSystem, key: str) -> bool:
        try:
            await fs._get_object(self._path(key))
        except FileNotFoundError:
            return False
        return True

    async def _list(self, fs: AsyncFileSystem, prefix: str) -> list[str]:
        # A missing bucket raises FileNotFoundError here, reported as such.
        items, _ = await fs._do_list_objects(self._root, delimiter="", prefix=prefix)
        start = len(self._root) + 1
        keys = (item["name"][start:] for item in items)
        return sorted(k for k in keys if k and not k.endswith("/") and k.startswith(prefix))

    # -- bounds -------------------------------------------------------------------------

    def time_limit(self, action: str, nbytes: int | None) -> float | None:
        if nbytes is None:
            return None  # a whole read or a listing: each request is bounded on its own
        retries = self.settings.retries
        return overall_limit(
            connect=self.settings.connect_timeout,
            read=self.settings.timeout,
            attempts=retries + 1,
            backoff=sum(min(1 + 2.0**i, 32.0) for i in range(retries)),  # gcsfs's backoff
            nbytes=nbytes,
        )

    def limit_advice(self) -> str:
        return (
            f"check the option endpoint_url (or {EMULATOR_VARIABLE}) and that the server is "
            "up and responsive, or raise the options timeout / retries"
        )

    # -- errors -------------------------------------------------------------------------

    def _endpoint(self) -> str:
        fs = self._fs
        if fs is not None:
            return str(fs._location)
        return self.settings.endpoint_url or f"the default endpoint ({EMULATOR_VARIABLE} unset)"

    def _attempts(self) -> str:
        attempts = self.settings.retries + 1
        return f"{attempts} attempt{'s' if attempts > 1 else ''}"

    def _error(self, exc: BaseException, action: str, key: str | None) -> MoorageError:
        if isinstance(exc, PreconditionFailed) and key is not None:
            # HTTP 412 to a conditional upload: the condition did not hold, nothing was
            # written. Not retried (gcsfs raises it outside its retry loop).
            if_version = None if exc.generation == ABSENT else exc.generation
            return write_conflict(key, self.url, if_version)
        return super()._error(exc, action, key)

    def describe_error(self, exc: BaseException, action: str, key: str | None) -> str | None:
        where = self._where(key)
        if isinstance(exc, asyncio.TimeoutError):
            return (
                f"cannot {action} {where}: {self._endpoint()} did not answer within "
                f"{self.settings.timeout:g} s (connect: {self.settings.connect_timeout:g} s) "
                f"in {self._attempts()}; check the endpoint, or raise the options timeout / "
                "retries"
            )
        if isinstance(exc, aiohttp.ClientConnectionError):
            return (
                f"cannot {action} {where}: cannot reach {self._endpoint()} "
                f"({type(exc).__name__}, {self._attempts()}); check the "
                f"option endpoint_url or {EMULATOR_VARIABLE}, and that the server is up"
            )
        rejected = isinstance(exc, HttpError) and exc.code == 401
        if rejected or isinstance(exc, (GoogleAuthError, NonRetryableError)):
            return (
                f"cannot {action} {where}: the credentials were rejected or could not be "
                "refreshed; check the option token (or GOOGLE_APPLICATION_CREDENTIALS) and "
                "that the key is still valid"
            )
        text = str(exc)
        if isinstance(exc, ValueError) and "requester pays" in text.lower():
            return (
                f"cannot {action} {where}: the bucket {self.bucket!r} is requester-pays; set "
                "the option requester_pays=true (billing the option project) or "
                "requester_pays=PROJECT_ID"
            )
        if isinstance(exc, OSError) and text.startswith("Forbidden"):
            return (
                f"cannot {action} {where}: access denied; the credentials need read and write "
                f"access to objects in {self.bucket!r} (e.g. roles/storage.objectUser), or the "
                "option token / GOOGLE_APPLICATION_CREDENTIALS points at the wrong account"
            )
        if isinstance(exc, FileNotFoundError):
            return (
                f"cannot {action} {where}: the bucket {self.bucket!r} does not exist or is not "
                f"visible to these credentials; create it (gcloud storage buckets create "
                f"gs://{self.bucket}) or fix the URL"
            )
        if isinstance(exc, HttpError):
            return (
                f"cannot {action} {where}: the server answered {exc.code}: "
                f"{exc.message}; retry later or check the bucket's settings"
            )
        return None

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        fs = self._fs
        super().close()
        session = getattr(fs, "_session", None)
        if fs is not None and session is not None and not session.closed:
            try:
                sync(fs.loop, session.close)
            except Exception:
                pass  # closing is best effort; gcsfs also closes it when fs is collected
