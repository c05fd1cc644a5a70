"""`AzureStorage`: ``az://container/prefix`` (also ``abfs://`` and ``abfss://``).

adlfs supplies the account and the credentials (options or the ``AZURE_STORAGE_*``
variables it reads) and fsspec's I/O loop; the storage builds and keeps its own bounded
blob client on them (`moorage_azure.client`). Each operation is one call to the blob SDK
on that client, by container and blob name (adlfs's path parsing would read
``?versionid=`` in a key as a blob version):

- read: Get Blob (ranged for `read_head`); exists: Get Blob Properties (a HEAD);
  listing: List Blobs by name prefix, a page (one request) at a time, with each blob's
  size and last modification; delete: Delete Blob;
- write: one Put Blob, or staged blocks committed by one Put Block List (see
  `moorage_azure.upload`); the shared base `moorage.storage.objectstore.ObjectStorage`
  runs the operations on these primitives, and maps every failure through
  `describe_error`;
- conditional writes, decided by the service: ``if_absent`` sends ``If-None-Match: *``,
  ``if_version`` sends ``If-Match: <ETag>``, with the Put Blob or the Put Block List;
  `version_of` is the ETag from Get Blob Properties (a HEAD). A refusal (409
  BlobAlreadyExists, 412 ConditionNotMet) is a `moorage.WriteConflict`, recognised by
  `moorage_azure.errors.is_conflict`;
- ``lists_expiration``: a write given ``expiry=`` sends the stamp as the blob's metadata
  (``x-ms-meta-moorage_expires``) on the Put Blob or the Put Block List, the request
  that makes the content appear, so the blob and its stamp change together; List Blobs
  (``include=metadata``) hands it back. The name is `EXPIRY_METADATA_KEY` with ``_``
  for ``-``: Azure takes only C# identifiers as metadata names;
- ``delete_paths`` sends Blob Batch requests of up to 256 Delete Blob each (the SDK's
  ``delete_blobs``); a blob already gone is no error, any other refusal of a blob is
  reported with its code.

The client belongs to the process that built it, like the filesystem it comes with: it
is built with the filesystem, closed by `close`, left out of a pickle, and built again
in the process that unpickles the storage or in a forked child.
"""

from __future__ import annotations

import os
import re
import weakref
from typing import Any, NamedTuple

from azure.core.async_paging import AsyncPageIterator
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient, BlobServiceClient
from fsspec.asyn import AsyncFileSystem

from moorage.errors import ConfigurationError, StorageError
from moorage.storage import WriteCondition
from moorage.storage.entries import EXPIRY_METADATA_KEY, listed_entry
from moorage.storage.ioloop import overall_limit
from moorage.storage.objectbackend import EntriesPage, RemoveFailed, as_utc
from moorage.storage.objectstore import ObjectStorage
from moorage.storage.upload import Buffers
from moorage_azure.client import build_client, build_filesystem, close_client
from moorage_azure.errors import BatchRefused, describe, error_code, is_conflict
from moorage_azure.options import AzureConfig
from moorage_azure.upload import COMMIT_ATTEMPTS, match_conditions, upload_blocks

__all__ = ["AzureStorage"]

_CONTAINER = re.compile(r"^(?:\$root|\$web|\$logs|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")
# container@account.dfs.core.windows.net (or .blob., or another cloud's suffix)
_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.(?:dfs|blob)\.(?P<suffix>[a-z0-9.-]+)$")
_PUBLIC_CLOUD = "core.windows.net"
#: The metadata name of the expiry stamp: Azure refuses ``-`` in metadata names (they
#: must be C# identifiers) and gives names back in lower case.
EXPIRY_NAME = EXPIRY_METADATA_KEY.replace("-", "_")


def _stamp(metadata: dict[str, str] | None) -> str | None:
    """The expiry stamp in a listed blob's metadata, whatever the case of its name."""
    for name, value in (metadata or {}).items():
        if name.lower() == EXPIRY_NAME:
            return value
    return None


def _is_folder(metadata: dict[str, str] | None) -> bool:
    """Directory markers (hierarchical namespace, adlfs's mkdir) are not keys."""
    lowered = {k.lower(): v for k, v in (metadata or {}).items()}
    return lowered.get("hdi_isfolder") == "true" or lowered.get("is_directory") == "true"


def _metadata(expiry: str | None) -> dict[str, str] | None:
    """The metadata a write sends: the expiry stamp, or none (the blob then has none:
    a write replaces the metadata with the content)."""
    return {EXPIRY_NAME: expiry} if expiry is not None else None


class _Client(NamedTuple):
    """The blob client a storage built, with the filesystem it was built from."""

    fs: AsyncFileSystem
    service: BlobServiceClient
    #: Closes ``service`` once: when the storage is closed, else at the filesystem's end.
    close: weakref.finalize[..., None]


class AzureStorage(ObjectStorage):
    """Blobs in one container of an Azure storage account, below an optional prefix."""

    schemes = ("az", "abfs", "abfss")
    bucket_word = "container"
    conditional_create = True
    conditional_replace = True
    #: Writes keep the record's expiry stamp in the blob's metadata, which List Blobs
    #: returns.
    lists_expiration = True
    #: A Blob Batch holds at most 256 requests.
    remove_batch = 256

    def __init__(self, url: str, **options: Any) -> None:
        self._host = ""
        self._client: _Client | None = None
        super().__init__(url, **options)
        if self._host:
            self.url = f"{self.scheme}://{self.bucket}@{self._host}"
            self.url += f"/{self.prefix}" if self.prefix else ""
        if not _CONTAINER.match(self.bucket):
            raise ConfigurationError(
                f"{self.bucket!r} in {self.url!r} is not a valid container name: 3 to 63 "
                "lowercase letters, digits and single hyphens, starting with a letter or digit"
            )
        self.config = AzureConfig.parse(self._with_url_account(options), self.url)

    def split_location(self, netloc: str, path: str) -> tuple[str, str]:
        container, at, host = netloc.partition("@")
        if at:
            self._host = host.lower()
        return container, path.strip("/")

    def _with_url_account(self, options: dict[str, Any]) -> dict[str, Any]:
        """The options, plus the account (and host, outside the public cloud) in the URL."""
        if not self._host:
            return options
        match = _HOST.match(self._host)
        if match is None:
            raise ConfigurationError(
                f"cannot read the storage account from {self.url!r}; write "
                f"{self.scheme}://CONTAINER@ACCOUNT.dfs.core.windows.net/prefix, or "
                f"{self.scheme}://CONTAINER/prefix with the account_name option"
            )
        account = match["account"]
        if options.get("account_name") not in (None, account):
            raise ConfigurationError(
                f"{self.url!r} names the account {account!r} but the account_name option "
                f"says {options['account_name']!r}; keep one of them"
            )
        merged = {**options, "account_name": account}
        if match["suffix"] != _PUBLIC_CLOUD:
            merged.setdefault("account_host", f"{account}.blob.{match['suffix']}")
        return merged

    # -- the client ----------------------------------------------------------------------

    def make_filesystem(self, *, asynchronous: bool, loop: Any) -> AsyncFileSystem:
        """adlfs's filesystem, and beside it (in ``_client``) the bounded client this
        storage sends its requests through, built from the account and credential the
        filesystem resolved. Called under the storage's guard, in the process that will
        use both (see `ObjectStorage._filesystem`)."""
        fs = build_filesystem(self.config, self.url, asynchronous=asynchronous, loop=loop)
        service = build_client(fs, self.config)
        # Closed with the storage; or else when the filesystem ends (at the latest when
        # the interpreter exits), on the I/O loop its requests ran on, as adlfs closes its own.
        closing = weakref.finalize(fs, close_client, fs.loop, service, pid=os.getpid())
        self._client = _Client(fs, service, closing)
        return fs

    def _service(self, fs: AsyncFileSystem) -> BlobServiceClient:
        """The client built with ``fs``; ``fs`` is gone only if the storage was closed
        while the operation ran (the next call builds a new pair)."""
        held = self._client
        if held is None or held.fs is not fs:
            raise StorageError(
                f"the Azure storage {self.url} was closed while this call was running; "
                "call again (the storage connects again), or close it only after its calls"
            )
        return held.service

    def _blob(self, fs: AsyncFileSystem, key: str) -> BlobClient:
        return self._service(fs).get_blob_client(self.bucket, self._name(key))

    def describe_error(self, exc: BaseException, action: str, key: str | None) -> str | None:
        held = self._client
        service = held.service if held is not None else None
        return describe(
            exc,
            action=action,
            where=self._where(key),
            container=self.bucket,
            account=(service.account_name if service else None) or "?",
            endpoint=f"{service.scheme}://{service.primary_hostname}" if service else "Azure",
            config=self.config,
        )

    # -- bounds --------------------------------------------------------------------------

    def time_limit(self, action: str, nbytes: int | None) -> float | None:
        if nbytes is None:
            return None  # a whole read or a listing: each request is bounded on its own
        config = self.config
        # A block upload may stage its blocks and commit them COMMIT_ATTEMPTS times.
        return overall_limit(
            connect=config.connection_timeout,
            read=config.read_timeout,
            attempts=config.retries + 1,
            backoff=sum(config.retry_backoff * 1.25 * 2**i for i in range(config.retries)),
            nbytes=nbytes * COMMIT_ATTEMPTS,
            rounds=2 + 2 * COMMIT_ATTEMPTS,
        )

    def limit_advice(self) -> str:
        return (
            "check the account name, account_host or the BlobEndpoint of the connection "
            "string, and that the service is up and responsive, or raise read_timeout"
        )

    # -- the service's primitives ----------------------------------------------------------

    def is_not_found(self, exc: BaseException) -> bool:
        # Only a missing blob: a missing container (ContainerNotFound) is reported as it is.
        return isinstance(exc, FileNotFoundError) or error_code(exc) == "BlobNotFound"

    async def _bucket_missing(self, fs: AsyncFileSystem, exc: BaseException) -> bool:
        return False  # the service's error code already told the blob from the container

    def is_empty_range(self, exc: BaseException) -> bool:
        # a range that starts past the end: the blob is empty
        return isinstance(exc, HttpResponseError) and exc.status_code == 416

    async def _get(self, fs: AsyncFileSystem, key: str, n: int | None) -> bytes:
        download = await self._blob(fs, key).download_blob(
            offset=0 if n is not None else None,
            length=n,
            max_concurrency=self.config.max_concurrency,
            **self.config.per_call(),
        )
        data: bytes = await download.readall()
        return data

    async def _head(self, fs: AsyncFileSystem, key: str) -> dict[str, Any] | None:
        try:
            properties = await self._blob(fs, key).get_blob_properties(**self.config.per_call())
        except ResourceNotFoundError as exc:
            if error_code(exc) == "ContainerNotFound":
                raise
            return None
        if _is_folder(properties.metadata):
            return None  # a directory marker is not a key
        return {"etag": str(properties.etag)}

    def version_token(self, key: str, info: dict[str, Any]) -> str:
        return str(info["etag"])

    def in_parts(self, size: int) -> bool:
        return size > self.config.block_size

    async def _put(
        self,
        fs: AsyncFileSystem,
        key: str,
        buffers: Buffers,
        condition: WriteCondition,
        expiry: str | None = None,
    ) -> None:
        data = buffers.single() or bytes(buffers.data(0, buffers.size))
        # overwrite=True: with False the SDK adds If-None-Match: * itself when given no
        # condition, and reports any 412 (a stale If-Match too) as BlobAlreadyExists.
        # This way the request carries exactly the condition and errors stay as sent.
        await self._blob(fs, key).upload_blob(
            data,
            overwrite=True,
            length=buffers.size,
            max_concurrency=1,
            metadata=_metadata(expiry),
            **match_conditions(condition),
            **self.config.per_call(),
        )

    async def _put_parts(
        self,
        fs: AsyncFileSystem,
        key: str,
        buffers: Buffers,
        condition: WriteCondition,
        expiry: str | None = None,
    ) -> None:
        await upload_blocks(
            self._blob(fs, key),
            buffers,
            block_size=self.config.block_size,
            concurrency=self.config.max_concurrency,
            options=self.config.per_call(),
            condition=condition,
            metadata=_metadata(expiry),
        )

    def is_conflict(self, exc: BaseException, condition: WriteCondition) -> bool:
        return is_conflict(exc, condition)

    async def _remove(self, fs: AsyncFileSystem, key: str) -> None:
        try:
            await self._blob(fs, key).delete_blob(**self.config.per_call())
        except ResourceNotFoundError as exc:
            if error_code(exc) != "BlobNotFound":
                raise

    async def _remove_many(self, fs: AsyncFileSystem, keys: list[str]) -> None:
        """One Blob Batch request (the SDK's ``delete_blobs``) deleting up to 256 blobs;
        its answer holds one status per blob, in order. A missing blob is no error; any
        other refusal raises `RemoveFailed` with each blob's code, or `BatchRefused`
        when every blob was refused for a reason that is not its own (a missing
        container, credentials that may not delete)."""
        names = [self._name(key) for key in keys]
        container = self._service(fs).get_container_client(self.bucket)

        async def send() -> list[tuple[int, str, str]]:
            answers = await container.delete_blobs(
                *names, raise_on_any_failure=False, **self.config.per_call()
            )
            return [
                (part.status_code, part.headers.get("x-ms-error-code") or "", part.reason or "")
                async for part in answers
            ]

        # The body: a few hundred bytes of headers per blob.
        statuses = await self._bounded(send(), "delete", None, 512 * len(names))
        if len(statuses) != len(keys):  # not the service's way: trust none of it
            odd = f"the batch answered {len(statuses)} statuses for {len(keys)} deletes"
            raise RemoveFailed(dict.fromkeys(keys, odd), len(keys))
        failures: dict[str, BaseException | str] = {}
        for key, (status, code, reason) in zip(keys, statuses, strict=True):
            if status < 300 or code == "BlobNotFound":
                continue
            failures[key] = f"{status} {code or reason}".strip()
        if not failures:
            return
        whole = {(status, code) for status, code, _ in statuses}
        if len(failures) == len(keys) and len(whole) == 1:
            status, code = whole.pop()
            if code == "ContainerNotFound" or status in (401, 403):
                raise BatchRefused(status, code, statuses[0][2])
        raise RemoveFailed(failures, len(keys))

    async def _entries_page(
        self, fs: AsyncFileSystem, prefix: str, token: str | None, limit: int
    ) -> EntriesPage:
        """One List Blobs request (``maxresults=limit``, from the ``token`` marker):
        blobs under the prefix with their size, last modification and the expiry stamp
        in their metadata, directory markers left out, and the marker of the next page."""
        root = f"{self.prefix}/" if self.prefix else ""
        container = self._service(fs).get_container_client(self.bucket)
        pages = container.list_blobs(
            name_starts_with=root + prefix,
            include=["metadata"],
            results_per_page=limit,
            **self.config.per_call(),
        ).by_page(continuation_token=token)
        assert isinstance(pages, AsyncPageIterator)  # the SDK's pager, typed more loosely
        page = await pages.__anext__()  # the one request
        entries = [
            listed_entry(
                item.name[len(root) :], item.size, as_utc(item.last_modified), _stamp(item.metadata)
            )
            async for item in page
            if not _is_folder(item.metadata)
        ]
        return entries, pages.continuation_token or None

    # -- the process's state ----------------------------------------------------------

    def __getstate__(self) -> dict[str, Any]:
        """The configuration only: the client is built again where the storage lands."""
        state = super().__getstate__()
        state.pop("_client", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        super().__setstate__(state)
        self._client = None

    def close(self) -> None:
        with self._guard:
            self._fs = None
            held, self._client = self._client, None
        if held is not None:
            held.close()  # once; a forked child leaves its parent's client alone
