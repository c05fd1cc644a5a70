"""Prefect's expectations of its results module, met: a stored result that cannot be
read is a miss, `exists` agrees with storage, flows infer persistence, async twins."""

from __future__ import annotations

import asyncio
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import moorage
from moorage import ResultStore
from moorage.config.settings import reset_settings
from moorage.results import should_persist_result
from moorage.storage import MemoryStorage, Storage
from moorage.workflow.cache_policies import INPUTS


def _calls() -> list[int]:
    return []


def _task(calls: list[int], store: str | Path, **options: Any) -> moorage.Task[[int], int]:
    def double(n: int) -> int:
        calls.append(n)
        return 2 * n

    return moorage.task(result_storage=store, result_storage_key="fixed", **options)(double)


def _flip_last_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[-1] ^= 0xFF
    path.write_bytes(bytes(data))


def test_corrupt_record_is_recomputed_with_a_warning_and_replaced(tmp_path: Path) -> None:
    calls = _calls()
    double = _task(calls, tmp_path, cache_result_in_memory=False)
    assert double(2) == 4
    _flip_last_byte(tmp_path / "fixed")
    with pytest.warns(RuntimeWarning, match=r"'fixed' cannot be read.*RecordCorrupted"):
        assert double(2) == 4
    assert calls == [2, 2]
    assert (
        ResultStore(result_storage=tmp_path, cache_result_in_memory=False).read("fixed").result == 4
    ), "the damaged record was not replaced"
    assert double(2) == 4
    assert calls == [2, 2], "the replaced record is not used"


def test_async_corrupt_record_is_recomputed(tmp_path: Path) -> None:
    calls = _calls()

    @moorage.task(result_storage=tmp_path, result_storage_key="fixed", cache_result_in_memory=False)
    async def triple(n: int) -> int:
        calls.append(n)
        return 3 * n

    assert asyncio.run(triple(1)) == 3
    _flip_last_byte(tmp_path / "fixed")
    with pytest.warns(RuntimeWarning, match="'fixed' cannot be read"):
        assert asyncio.run(triple(1)) == 3
    assert calls == [1, 1]


def test_missing_payload_is_recomputed(tmp_path: Path) -> None:
    calls = _calls()
    policy = INPUTS.configure(key_storage=tmp_path / "meta")
    double = _task(calls, tmp_path / "data", cache_policy=policy, cache_result_in_memory=False)
    assert double(5) == 10
    (tmp_path / "data" / "fixed").unlink()
    with pytest.warns(RuntimeWarning, match=r"'fixed' cannot be read.*PayloadMissing"):
        assert double(5) == 10
    assert calls == [5, 5]
    assert (tmp_path / "data" / "fixed").exists(), "the payload was not written again"


def test_class_no_longer_importable_is_recomputed(tmp_path: Path) -> None:
    module = tmp_path / "gone_module.py"
    module.write_text(
        textwrap.dedent("""
        class Gone:
            def __init__(self, n):
                self.n = n
    """)
    )
    sys.path.insert(0, str(tmp_path))
    try:
        import gone_module  # type: ignore[import-not-found]

        store = ResultStore(result_storage=tmp_path / "r", cache_result_in_memory=False)
        store.write(gone_module.Gone(1), key="fixed")
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop("gone_module", None)
    module.unlink()
    calls = _calls()
    double = _task(calls, tmp_path / "r", cache_result_in_memory=False)
    with pytest.warns(RuntimeWarning, match="'fixed' cannot be read"):
        assert double(4) == 8
    assert calls == [4]


def test_record_with_a_bad_signature_is_recomputed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    ResultStore(result_storage=tmp_path, signing_key=b"the writer's key").write(1, key="fixed")
    monkeypatch.setenv("MOORAGE_SIGNING_KEY", "another key")
    reset_settings()
    calls = _calls()
    double = _task(calls, tmp_path, cache_result_in_memory=False)
    with pytest.warns(RuntimeWarning, match=r"'fixed' cannot be read.*RecordCorrupted"):
        assert double(3) == 6
    assert calls == [3]
    assert (
        ResultStore(result_storage=tmp_path, cache_result_in_memory=False).read("fixed").result == 6
    ), "the record was not replaced with one signed by the reader's key"


def test_exists_agrees_with_storage_after_a_delete(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path)
    store.write("v", key="k")
    assert store.exists("k")
    (tmp_path / "k").unlink()
    assert not store.exists("k"), "exists answered from the memory cache"
    assert not asyncio.run(store.aexists("k"))


def test_flow_with_result_storage_persists_its_tasks(tmp_path: Path) -> None:
    @moorage.task(cache_policy=moorage.workflow.cache_policies.NO_CACHE)
    def inner() -> bool | None:
        return should_persist_result()

    @moorage.flow(result_storage=tmp_path)
    def configured() -> bool | None:
        return inner()

    @moorage.flow
    def plain() -> bool | None:
        return inner()

    assert configured.persist_result is True
    assert plain.persist_result is None
    assert configured() is True
    assert moorage.flow(result_serializer="json")(lambda: 1).persist_result is True
    assert (
        moorage.flow(result_storage=tmp_path, persist_result=False)(lambda: 1).persist_result
        is False
    )


def test_task_with_result_options_infers_persistence(tmp_path: Path) -> None:
    assert moorage.task(result_storage=tmp_path)(lambda: 1).persist_result is True
    assert moorage.task(result_serializer="json")(lambda: 1).persist_result is True
    assert moorage.task(lambda: 1).persist_result is None


def test_async_update_for_task_and_flow(tmp_path: Path) -> None:
    store = ResultStore(result_storage="memory://parity")
    task = moorage.task(result_storage=tmp_path, result_serializer="json")(lambda: 1)
    flow = moorage.flow(result_storage=tmp_path)(lambda: 1)
    for_task = asyncio.run(store.aupdate_for_task(task))
    for_flow = asyncio.run(store.aupdate_for_flow(flow))
    assert for_task == store.update_for_task(task)
    assert for_task.serializer.type == "json"
    assert for_flow.result_storage == store.update_for_flow(flow).result_storage
    assert for_flow.result_storage != store.result_storage


class NativeAsync(Storage):
    """Writes only through its own async method; the sync one must not be used."""

    schemes = ("native",)

    def __init__(self) -> None:
        self.url = "native://"
        self.inner = MemoryStorage("memory://native-async")
        self.async_writes = 0

    def read_path(self, key: str) -> bytes:
        return self.inner.read_path(key)

    def write_path(self, key: str, content: bytes) -> str:
        raise AssertionError("the sync write ran in a thread instead of awrite_path")

    async def awrite_path(self, key: str, content: bytes) -> str:
        self.async_writes += 1
        return self.inner.write_path(key, content)

    def exists(self, key: str) -> bool:
        return self.inner.exists(key)

    def delete_path(self, key: str) -> None:
        self.inner.delete_path(key)

    def list_paths(self, prefix: str = "") -> Iterator[str]:
        return self.inner.list_paths(prefix)

    def resolve_path(self, key: str) -> str:
        return f"native://{key}"


def test_awrite_uses_the_plugins_native_async_write() -> None:
    storage = NativeAsync()
    store = ResultStore(result_storage=storage)
    asyncio.run(store.awrite({"a": 1}, key="k"))
    asyncio.run(storage.awrite_parts("parts", [b"a", memoryview(b"b")]))
    assert storage.async_writes == 2
    assert storage.read_path("parts") == b"ab"
    assert ResultStore(result_storage=storage, cache_result_in_memory=False).read("k").result == {
        "a": 1
    }
