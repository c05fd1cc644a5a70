"""`AzureStorage`: ``az://container/prefix`` (also ``abfs://`` and ``abfss://``).

adlfs supplies the account, the credentials (options or the ``AZURE_STORAGE_*``
variables it reads), the client and fsspec's I/O loop; each operation is one call to the
blob SDK on that client, by container and blob name (adlfs's path parsing would read
``?versionid=`` in a key as a blob version):

- read: Get Blob (ranged for `read_head`); exists: Get Blob Properties (a HEAD);
  listing: List Blobs by name prefix; delete: Delete Blob;
- write: one Put Blob, or staged blocks committed by one Put Block List (see
  `moorage_azure.upload`). No metadata is sent (adlfs's ``pipe_file`` breaks on it);
- conditional writes, decided by the service: ``if_absent`` sends ``If-None-Match: *``,
  ``if_version`` sends ``If-Match: <ETag>``, with the Put Blob or the Put Block List;
  `version_of` is the ETag from Get Blob Properties (a HEAD). A refusal (409
  BlobAlreadyExists, 412 ConditionNotMet) is a `moorage.WriteConflict`, mapped by
  `moorage_azure.errors.conflict`.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from typing import Any

from azure.core.exceptions import HttpResponseError, ResourceNotFoundError
from azure.storage.blob.aio import BlobClient, BlobServiceClient
from fsspec.asyn import AsyncFileSystem, sync

from moorage.errors import ConfigurationError
from moorage.storage.base import ALWAYS, BytesLike, WriteCondition
from moorage.storage.objectstore import ObjectStorage, overall_limit
from moorage_azure.config import AzureConfig, build_filesystem
from moorage_azure.errors import conflict, describe, error_code
from moorage_azure.upload import COMMIT_ATTEMPTS, upload

__all__ = ["AzureStorage"]

_CONTAINER = re.compile(r"^(?:\$root|\$web|\$logs|[a-z0-9](?:[a-z0-9]|-(?=[a-z0-9])){2,62})$")
# container@account.dfs.core.windows.net (or .blob., or another cloud's suffix)
_HOST = re.compile(r"^(?P<account>[a-z0-9]{3,24})\.(?:dfs|blob)\.(?P<suffix>[a-z0-9.-]+)$")
_PUBLIC_CLOUD = "core.windows.net"


def _is_folder(metadata: dict[str, str] | None) -> bool:
    """Directory markers (hierarchical namespace, adlfs's mkdir) are not keys."""
    lowered = {k.lower(): v for k, v in (metadata or {}).items()}
    return lowered.get("hdi_isfolder") == "true" or lowered.get("is_directory") == "true"


class AzureStorage(ObjectStorage):
    """Blobs in one container of an Azure storage account, below an optional prefix."""

    schemes = ("az", "abfs", "abfss")
    bucket_word = "container"
    conditional_create = True
    conditional_replace = True

    def __init__(self, url: str, **options: Any) -> None:
        self._host = ""
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
        return build_filesystem(self.config, self.url, asynchronous=asynchronous, loop=loop)

    def _service(self, fs: AsyncFileSystem) -> BlobServiceClient:
        service: BlobServiceClient = fs.service_client
        return service

    def _blob(self, fs: AsyncFileSystem, key: str) -> BlobClient:
        name = f"{self.prefix}/{key}" if self.prefix else key
        return self._service(fs).get_blob_client(self.bucket, name)

    def describe_error(self, exc: BaseException, action: str, key: str | None) -> str | None:
        fs = self._fs
        service = self._service(fs) if fs is not None else None
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

    # -- the operations ------------------------------------------------------------------

    async def _read(self, fs: AsyncFileSystem, key: str, n: int | None) -> bytes:
        blob = self._blob(fs, key)
        options = self.config.per_call()
        try:
            if n == 0:
                properties = await blob.get_blob_properties(**options)
                if _is_folder(properties.metadata):
                    raise self._missing(key)
                return b""
            download = await blob.download_blob(
                offset=0 if n is not None else None,
                length=n,
                max_concurrency=self.config.max_concurrency,
                **options,
            )
            data: bytes = await download.readall()
            return data
        except ResourceNotFoundError as exc:
            if error_code(exc) == "BlobNotFound":
                raise self._missing(key) from None
            raise
        except HttpResponseError as exc:
            if n and exc.status_code == 416:  # a range that starts past the end: empty blob
                return b""
            raise

    async def _write(
        self,
        fs: AsyncFileSystem,
        key: str,
        parts: Sequence[BytesLike],
        condition: WriteCondition = ALWAYS,
    ) -> str:
        try:
            await upload(
                self._blob(fs, key),
                parts,
                block_size=self.config.block_size,
                concurrency=self.config.max_concurrency,
                options=self.config.per_call(),
                condition=condition,
            )
        except Exception as exc:
            # A refused condition is a WriteConflict (a MoorageError, which the shells
            # pass on as it is); anything else goes to describe_error as usual.
            found = conflict(exc, key=key, url=self.url, condition=condition)
            if found is not None:
                raise found from exc
            raise
        return self.resolve_path(key)

    async def _version(self, fs: AsyncFileSystem, key: str) -> str | None:
        try:
            properties = await self._blob(fs, key).get_blob_properties(**self.config.per_call())
        except ResourceNotFoundError as exc:
            if error_code(exc) == "ContainerNotFound":
                raise
            return None
        if _is_folder(properties.metadata):
            return None  # as for exists: a directory marker is not a key
        return str(properties.etag)

    async def _exists(self, fs: AsyncFileSystem, key: str) -> bool:
        try:
            properties = await self._blob(fs, key).get_blob_properties(**self.config.per_call())
        except ResourceNotFoundError as exc:
            if error_code(exc) == "ContainerNotFound":
                raise
            return False
        return not _is_folder(properties.metadata)

    async def _delete(self, fs: AsyncFileSystem, key: str) -> None:
        try:
            await self._blob(fs, key).delete_blob(**self.config.per_call())
        except ResourceNotFoundError as exc:
            if error_code(exc) != "BlobNotFound":
                raise

    async def _list(self, fs: AsyncFileSystem, prefix: str) -> list[str]:
        root = f"{self.prefix}/" if self.prefix else ""
        container = self._service(fs).get_container_client(self.bucket)
        keys = []
        found = container.list_blobs(
            name_starts_with=root + prefix, include=["metadata"], **self.config.per_call()
        )
        async for item in found:
            key = item.name[len(root) :]
            if key and not key.endswith("/") and not _is_folder(item.metadata):
                keys.append(key)
        return sorted(keys)

    def close(self) -> None:
        with self._guard:
            fs, self._fs = self._fs, None
            mine = self._fs_pid == os.getpid()
        if fs is not None and mine:
            try:
                sync(fs.loop, self._service(fs).close)
            except Exception:  # closing is best effort; the client is dropped either way
                pass
