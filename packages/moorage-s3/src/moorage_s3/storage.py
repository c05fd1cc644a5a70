"""`S3Storage`: ``s3://bucket/prefix`` (and ``s3a://``) on s3fs and aiobotocore.

The contract itself (the operations, sync and async shells, the I/O loop, error mapping)
lives in `moorage.storage.objectstore.ObjectStorage`; this module supplies the S3
primitives it runs on:

- the client: built from `S3Options`, one per storage (never fsspec's instance cache),
  no listings cache, botocore alone retrying requests (s3fs's own retry loop is set to
  one attempt so ``retries`` is the real bound), whole-object reads as one GET. Reads go
  through fsspec's ``_cat_file``; every other request is a call of the aiobotocore
  client that s3fs's public ``set_session`` returns, so no s3fs internal is used;
- writes: one PutObject below ``multipart_threshold``, else a multipart upload whose
  parts are cut from the record's buffers one at a time (`moorage_s3.multipart`);
- ``delete_paths`` is one DeleteObjects request per 1,000 keys (quiet: S3 answers with
  the keys it could not delete only, which are reported, never ignored);
- ``exists`` is one HeadObject, listings are ListObjectsV2 pages of the keys under the
  prefix only (with each object's Size and LastModified), ``read_head`` is a ranged GET:
  none of them transfers a payload;
- S3's and botocore's errors become messages that say what to fix, without secrets.
"""

from __future__ import annotations

import os
import threading
from typing import Any

from aiobotocore.session import AioSession  # type: ignore[import-untyped]
from botocore.exceptions import ClientError  # type: ignore[import-untyped]
from botocore.loaders import create_loader  # type: ignore[import-untyped]
from fsspec.asyn import AsyncFileSystem
from s3fs import S3FileSystem

from moorage.storage import WriteCondition
from moorage.storage.entries import StorageEntry
from moorage.storage.ioloop import overall_limit
from moorage.storage.objectbackend import EntriesPage, RemoveFailed, as_utc
from moorage.storage.objectstore import ObjectStorage
from moorage.storage.upload import Buffers
from moorage_s3.errors import error_code, explain
from moorage_s3.multipart import upload_multipart
from moorage_s3.options import S3Options
from moorage_s3.transport import BoundedSession

__all__ = ["S3Storage"]

_loaders: dict[str | None, Any] = {}
_loaders_guard = threading.Lock()


def _new_session(profile: str | None) -> AioSession:
    """A botocore session of its own (credentials, profile), sharing only API model data.

    Loading S3's service model takes a tenth of a second or more per session; the loader
    that holds it is pure data, so storages share one (per ``data_path``) while every
    storage still gets its own session, credentials and client.
    """
    session = AioSession(profile=profile)
    try:
        data_path = session.get_config_variable("data_path")
    except Exception:  # e.g. a missing profile: the first request reports it, wrapped
        return session
    with _loaders_guard:
        loader = _loaders.get(data_path)
        if loader is None:
            loader = _loaders[data_path] = create_loader(data_path)
    session.register_component("data_loader", loader)
    return session


#: Error codes of a conditional write whose condition failed: 412 PreconditionFailed,
#: and 409 ConditionalRequestConflict when another conditional write to the key was
#: in flight.
_CONFLICTS = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})


def _headers(condition: WriteCondition) -> dict[str, str]:
    """S3 decides conditional writes itself: ``If-None-Match: *`` (create only) or
    ``If-Match: <ETag>`` (replace only that object), on PutObject or, for a multipart
    upload, on CompleteMultipartUpload. A failed condition is 412 (or 409 when two
    conditional writes overlap), never retried by botocore."""
    headers: dict[str, str] = {}
    if condition.if_absent:
        headers["IfNoneMatch"] = "*"
    if condition.if_version is not None:
        headers["IfMatch"] = condition.if_version
    return headers


class S3Storage(ObjectStorage):
    """Records as objects under ``s3://bucket/prefix``; see ``docs/backends/s3.md``.

    Options (keyword arguments, a named storage's settings, or the URL's query string)
    are described by `S3Options`; anything not given is resolved by botocore from the
    standard ``AWS_*`` variables and the shared config files.
    """

    schemes = ("s3", "s3a")
    bucket_word = "bucket"
    conditional_create = True
    conditional_replace = True
    #: DeleteObjects takes at most 1,000 keys.
    remove_batch = 1000

    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(url, **options)
        self.s3_options = S3Options.parse(options)

    # -- the client -------------------------------------------------------------------

    def make_filesystem(self, *, asynchronous: bool, loop: Any) -> AsyncFileSystem:
        kwargs = self.s3_options.filesystem_kwargs()
        kwargs["config_kwargs"]["http_session_cls"] = BoundedSession
        fs = S3FileSystem(
            **kwargs,
            session=_new_session(self.s3_options.profile),
            skip_instance_cache=True,
            use_listings_cache=False,
            asynchronous=asynchronous,
            loop=loop,
            max_concurrency=1,  # a whole-object read is one GET: one version, never mixed
        )
        # s3fs's public class attribute for its own retry loop around each call: botocore
        # retries each request, s3fs must not multiply that.
        fs.retries = 1
        return fs

    # -- the service's primitives ------------------------------------------------------
    # Requests go to the aiobotocore client that s3fs's public ``set_session`` returns:
    # botocore's own calls, with its retries and timeouts, and its errors as it raises
    # them (`moorage_s3.errors` reads them). Whole and ranged reads are fsspec's
    # ``_cat_file`` (one GET, see max_concurrency above).

    def is_empty_range(self, exc: BaseException) -> bool:
        found = error_code(exc)
        return found is not None and found[0] in ("InvalidRange", "416")

    async def _head(self, fs: AsyncFileSystem, key: str) -> dict[str, Any] | None:
        client = await fs.set_session()
        try:
            head: dict[str, Any] = await client.head_object(Bucket=self.bucket, Key=self._name(key))
        except ClientError as exc:
            if (error_code(exc) or ("",))[0] in ("404", "NoSuchKey", "NotFound"):
                return None
            raise
        return head

    def version_token(self, key: str, info: dict[str, Any]) -> str:
        return str(info["ETag"])

    def in_parts(self, size: int) -> bool:
        return size > 0 and size >= self.s3_options.multipart_threshold

    async def _put(
        self,
        fs: AsyncFileSystem,
        key: str,
        buffers: Buffers,
        condition: WriteCondition,
        expiry: str | None = None,  # never given: S3 does not declare lists_expiration
    ) -> None:
        client = await fs.set_session()
        body = buffers.single()
        await client.put_object(
            Bucket=self.bucket,
            Key=self._name(key),
            Body=body if body is not None else buffers.body(0, buffers.size),
            **_headers(condition),
        )

    async def _put_parts(
        self,
        fs: AsyncFileSystem,
        key: str,
        buffers: Buffers,
        condition: WriteCondition,
        expiry: str | None = None,  # never given, as for _put
    ) -> None:
        options = self.s3_options
        await upload_multipart(
            await fs.set_session(),
            self.bucket,
            self._name(key),
            buffers,
            options.part_size,
            options.max_concurrency,
            _headers(condition),
        )

    def is_conflict(self, exc: BaseException, condition: WriteCondition) -> bool:
        found = error_code(exc)
        if found is None:
            return False
        # With If-Match, a missing object answers 404 NoSuchKey: the version read is gone.
        replacing = condition.if_version is not None
        return found[0] in _CONFLICTS or (replacing and found[0] in ("NoSuchKey", "404"))

    async def _remove(self, fs: AsyncFileSystem, key: str) -> None:
        # S3 answers 204 for a missing key; only a missing bucket fails, and should.
        client = await fs.set_session()
        await client.delete_object(Bucket=self.bucket, Key=self._name(key))

    async def _remove_many(self, fs: AsyncFileSystem, keys: list[str]) -> None:
        """One DeleteObjects request for up to 1,000 keys (`remove_batch`), in quiet
        mode: S3 answers with the keys it failed to delete only (a missing key is
        deleted as far as S3 is concerned), each with its code, and those raise
        `RemoveFailed`. botocore sends the checksum S3 requires of this request."""
        client = await fs.set_session()
        names = {self._name(key): key for key in keys}
        request = client.delete_objects(
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": name} for name in names], "Quiet": True},
        )
        # The body lists the keys: a kilobyte per few dozen of them.
        size = sum(len(name) + 32 for name in names)
        answer: dict[str, Any] = await self._bounded(request, "delete", None, size)
        failures: dict[str, BaseException | str] = {}
        for error in answer.get("Errors") or []:
            name = str(error.get("Key", ""))
            code, message = error.get("Code", "?"), error.get("Message", "")
            why = f"{code}: {message}" if message else str(code)
            failures[names.get(name, name)] = self.s3_options.scrub(why)
        if failures:
            raise RemoveFailed(failures, len(keys))

    async def _entries_page(
        self, fs: AsyncFileSystem, prefix: str, token: str | None, limit: int
    ) -> EntriesPage:
        """One ListObjectsV2 request: up to ``limit`` keys under the prefix, in S3's key
        order, with their Size and LastModified; the continuation token while S3 says
        the listing is truncated."""
        below = f"{self.prefix}/" if self.prefix else ""
        client = await fs.set_session()
        params: dict[str, Any] = {"Bucket": self.bucket, "Prefix": below + prefix, "MaxKeys": limit}
        if token is not None:
            params["ContinuationToken"] = token
        page: dict[str, Any] = await client.list_objects_v2(**params)
        entries = [
            StorageEntry(
                item["Key"][len(below) :], item.get("Size"), as_utc(item.get("LastModified"))
            )
            for item in page.get("Contents", [])
        ]
        following = page.get("NextContinuationToken") if page.get("IsTruncated") else None
        return entries, following or None

    # -- buckets ----------------------------------------------------------------------

    def create_bucket(self) -> None:
        """Create this storage's bucket if it does not exist yet.

        The bucket goes to the client's region. For ``us-east-1`` no location constraint
        is sent: S3 (and moto) reject that region named explicitly.
        """
        self._run(self._create_bucket, "create the bucket of", None)

    async def _create_bucket(self, fs: AsyncFileSystem) -> None:
        client = await fs.set_session()
        region = client.meta.region_name
        params: dict[str, Any] = {"Bucket": self.bucket}
        if region and region != "us-east-1":
            params["CreateBucketConfiguration"] = {"LocationConstraint": region}
        try:
            await client.create_bucket(**params)
        except ClientError as exc:
            if (error_code(exc) or ("",))[0] != "BucketAlreadyOwnedByYou":
                raise

    # -- bounds -----------------------------------------------------------------------

    def attempts(self) -> int:
        """Attempts per request: ``retries``, else ``AWS_MAX_ATTEMPTS``, else botocore's
        largest default (5, legacy mode)."""
        if self.s3_options.retries is not None:
            return self.s3_options.retries
        try:
            return max(int(os.environ.get("AWS_MAX_ATTEMPTS", "")), 1)
        except ValueError:
            return 5

    def time_limit(self, action: str, nbytes: int | None) -> float | None:
        if nbytes is None:
            return None  # a whole read or a listing: each request is bounded on its own
        attempts = self.attempts()
        return overall_limit(
            connect=self.s3_options.connect_timeout,
            read=self.s3_options.read_timeout,
            attempts=attempts,
            backoff=sum(min(2.0**i, 20.0) for i in range(attempts - 1)),  # botocore's caps
            nbytes=nbytes,
        )

    def limit_advice(self) -> str:
        return (
            "check endpoint_url (or AWS_ENDPOINT_URL_S3) and that the service is up and "
            "responsive, or raise read_timeout"
        )

    # -- errors -----------------------------------------------------------------------

    def describe_error(self, exc: BaseException, action: str, key: str | None) -> str | None:
        return explain(
            exc,
            head=f"cannot {action} {self._where(key)}",
            bucket=self.bucket,
            options=self.s3_options,
        )
