"""`GCSStorage`: ``gs://bucket/prefix`` (also ``gcs://``) on gcsfs.

The shared base `moorage.storage.objectstore.ObjectStorage` runs every operation on fsspec's
I/O loop; this class supplies the filesystem (see `moorage_gcs.filesystem`), the
messages for GCS failures, and the operations where gcsfs's generic ones do more than
needed:

- ``exists`` fetches the object's metadata (one JSON request), where gcsfs's ``info``
  also lists the "folder" in parallel;
- listings are pages of objects.list, filtered by prefix on the server, names and
  metadata only (each object's size and ``updated`` time), one request per page;
- ``read_head`` is a ranged GET; GCS answers 416 to any range on an empty object, which
  here means "the first n bytes are empty";
- ``lists_expiration``: a write given ``expiry=`` keeps the stamp in the object's
  custom metadata, set by the upload that creates the object (the one request, or the
  resumable session's opening), and objects.list items carry it back, so a listing
  tells each record's expiration;
- ``delete_paths`` sends batch requests of up to 100 objects.delete each (the JSON
  API's batch endpoint, see `moorage_gcs.batch`); an object already gone is no error,
  any other refusal is reported with its status;
- writes go through `moorage_gcs.upload`, conditional ones (``if_absent``,
  ``if_version``) with ``ifGenerationMatch``; `version_of` is the object's generation,
  from its metadata. A failed condition (HTTP 412) is recognised by `is_conflict`, and
  the shared base turns it into `WriteConflict`.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import aiohttp
from fsspec.asyn import AsyncFileSystem, sync
from gcsfs.retry import HttpError, NonRetryableError
from google.auth.exceptions import GoogleAuthError

from moorage.errors import StorageError
from moorage.storage import WriteCondition
from moorage.storage.entries import EXPIRY_METADATA_KEY, listed_entry
from moorage.storage.ioloop import overall_limit
from moorage.storage.objectbackend import EntriesPage, RemoveFailed, as_size, as_utc
from moorage.storage.objectstore import ObjectStorage
from moorage.storage.upload import Buffers
from moorage_gcs.batch import BATCH_LIMIT, delete_objects
from moorage_gcs.filesystem import PlainGCSFileSystem, build_filesystem
from moorage_gcs.options import EMULATOR_VARIABLE, GCSOptions
from moorage_gcs.upload import ABSENT, PreconditionFailed, write_object

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
    #: Writes keep the record's expiry stamp in the object's metadata, which the
    #: listing returns.
    lists_expiration: ClassVar[bool] = True
    #: A batch request holds at most 100 calls.
    remove_batch = BATCH_LIMIT

    def __init__(self, url: str, **options: Any) -> None:
        self.settings = GCSOptions.parse(options)
        super().__init__(url, **options)

    def make_filesystem(self, *, asynchronous: bool, loop: Any) -> AsyncFileSystem:
        return build_filesystem(self.settings, asynchronous=asynchronous, loop=loop)

    # -- the service's primitives --------------------------------------------------------
    # Requests go through the filesystem's ``_call`` (the coroutine behind gcsfs's public
    # ``call``) to the JSON API, or through fsspec's ``_cat_file`` for reads.

    def is_empty_range(self, exc: BaseException) -> bool:
        return isinstance(exc, HttpError) and exc.code == 416  # no byte at offset 0

    async def _head(self, fs: AsyncFileSystem, key: str) -> dict[str, Any] | None:
        """The object's metadata: one objects.get (gcsfs's ``info`` also lists the
        "folder" in parallel)."""
        try:
            info: dict[str, Any] = await fs._call(
                "GET", "b/{}/o/{}", self.bucket, self._name(key), json_out=True
            )
        except FileNotFoundError:
            return None
        return info

    def version_token(self, key: str, info: dict[str, Any]) -> str:
        generation = info.get("generation")
        if not generation:
            raise StorageError(
                f"cannot check {self._where(key)}: {self._endpoint()} returned object "
                "metadata without a generation; conditional writes need a GCS-compatible "
                "server that reports generations"
            )
        return str(generation)

    async def _put(
        self,
        fs: AsyncFileSystem,
        key: str,
        buffers: Buffers,
        condition: WriteCondition,
        expiry: str | None = None,
    ) -> None:
        assert isinstance(fs, PlainGCSFileSystem)
        # write_object chooses: one request, or a resumable upload in chunks
        generation = self._generation(key, condition)
        metadata = {EXPIRY_METADATA_KEY: expiry} if expiry is not None else None
        await write_object(
            fs,
            self.bucket,
            self._name(key),
            buffers,
            self.settings.chunk_size,
            generation,
            metadata,
        )

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

    async def _remove_many(self, fs: AsyncFileSystem, keys: list[str]) -> None:
        """One batch request deleting up to 100 objects (`moorage_gcs.batch`). An object
        already gone (404) is no error, unless every object was: then a missing bucket
        (which answers 404 too) is told apart with one more request. Other refusals
        raise `RemoveFailed` with each object's status."""
        assert isinstance(fs, PlainGCSFileSystem)
        names = [self._name(key) for key in keys]
        work = delete_objects(fs, self.bucket, names)
        statuses = await self._bounded(work, "delete", None, 300 * len(names))
        failures: dict[str, BaseException | str] = {}
        for key, (status, message) in zip(keys, statuses, strict=True):
            if status < 300 or status == 404:
                continue
            failures[key] = f"{status} {message}".strip()
        if failures:
            raise RemoveFailed(failures, len(keys))
        if all(status == 404 for status, _ in statuses) and not await self._bucket_exists(fs):
            raise FileNotFoundError(f"{self.bucket}: no such bucket")

    def is_conflict(self, exc: BaseException, condition: WriteCondition) -> bool:
        # HTTP 412 to a conditional upload is gcsfs's FileExistsError, raised outside
        # its retry loop: the condition did not hold, nothing was written.
        return isinstance(exc, (PreconditionFailed, FileExistsError))

    async def _entries_page(
        self, fs: AsyncFileSystem, prefix: str, token: str | None, limit: int
    ) -> EntriesPage:
        """One objects.list request (``maxResults=limit``), filtered by prefix on the
        server: names with their size, ``updated`` time and the expiry stamp in their
        custom metadata, and the ``nextPageToken``. A missing bucket raises
        FileNotFoundError, reported as such."""
        below = f"{self.prefix}/" if self.prefix else ""
        listing: dict[str, Any] = await fs._call(
            "GET",
            "b/{}/o",
            self.bucket,
            json_out=True,
            prefix=below + prefix,
            pageToken=token,
            maxResults=limit,
        )
        entries = [
            listed_entry(
                item["name"][len(below) :],
                as_size(item.get("size")),
                as_utc(item.get("updated")),
                (item.get("metadata") or {}).get(EXPIRY_METADATA_KEY),
            )
            for item in listing.get("items") or []
        ]
        return entries, listing.get("nextPageToken") or None

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
            return str(fs.base).removesuffix("/storage/v1/")  # gcsfs's public base URL
        return self.settings.endpoint_url or f"the default endpoint ({EMULATOR_VARIABLE} unset)"

    def _attempts(self) -> str:
        attempts = self.settings.retries + 1
        return f"{attempts} attempt{'s' if attempts > 1 else ''}"

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
        session = fs.session if fs is not None else None  # gcsfs's public property
        if fs is not None and session is not None and not session.closed:
            try:
                sync(fs.loop, session.close)
            except Exception:
                pass  # closing is best effort; gcsfs also closes it when fs is collected
