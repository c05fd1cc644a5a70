"""The stores the workloads compare, built the same way everywhere: moorage's
`ResultStore`, Prefect's `prefect.results.ResultStore`, and raw files (pickle, a temp file
in the same folder and ``os.replace``).

Prefect takes about two seconds to import, so it is imported where a store is built.
"""

from __future__ import annotations

import os
import pickle
import tempfile
from pathlib import Path
from typing import Any

from moorage.results import ResultStore
from moorage.storage import Storage

__all__ = [
    "PREFECT",
    "SMALL_RECORD",
    "RawFiles",
    "moorage_store",
    "prefect_local_store",
    "prefect_s3_store",
]

#: How Prefect is named in the report.
PREFECT = "Prefect 3.9.1"

#: The "small record": a dict of a few fields, about 250 bytes pickled.
SMALL_RECORD: dict[str, Any] = {
    "id": 1042,
    "name": "daily-report",
    "ok": True,
    "rows": 1200,
    "scores": [0.25 * k for k in range(16)],
}


def moorage_store(storage: str | Path | Storage, *, cache: bool) -> ResultStore:
    """A moorage store on ``storage`` (a folder, URL or storage), memory cache on or off;
    every other field at its default."""
    target = str(storage) if isinstance(storage, Path) else storage
    return ResultStore(result_storage=target, cache_result_in_memory=cache)


def prefect_local_store(root: Path, *, cache: bool) -> Any:
    """Prefect's store on a `LocalFileSystem` at ``root``."""
    from prefect.filesystems import LocalFileSystem
    from prefect.results import ResultStore as PrefectResultStore

    return PrefectResultStore(
        result_storage=LocalFileSystem(basepath=str(root)), cache_result_in_memory=cache
    )


def prefect_s3_store(url: str, *, endpoint: str, key: str, secret: str, region: str) -> Any:
    """Prefect's store on fsspec's S3 filesystem (``RemoteFileSystem``) at ``url``,
    reaching ``endpoint``; no memory cache."""
    from prefect.filesystems import RemoteFileSystem
    from prefect.results import ResultStore as PrefectResultStore

    settings = {
        "key": key,
        "secret": secret,
        "client_kwargs": {"endpoint_url": endpoint, "region_name": region},
    }
    return PrefectResultStore(
        result_storage=RemoteFileSystem(basepath=url, settings=settings),
        cache_result_in_memory=False,
    )


class RawFiles:
    """What a careful program does by hand: pickle into a temp file beside the target,
    then rename it over the target; read the file and unpickle it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)

    def write(self, value: Any, key: str) -> None:
        fd, temp = tempfile.mkstemp(dir=self.root, prefix=".tmp-")
        try:
            with open(fd, "wb") as file:
                pickle.dump(value, file, protocol=pickle.HIGHEST_PROTOCOL)
            os.replace(temp, self.root / key)
        except BaseException:
            os.unlink(temp)
            raise

    def read(self, key: str) -> Any:
        with open(self.root / key, "rb") as file:
            return pickle.loads(file.read())
