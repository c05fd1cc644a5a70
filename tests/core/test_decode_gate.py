"""``ResultStore.read(key, allow=...)``: the reader's check of a record's serializer, made
on the bytes about to be decoded, before any decoding, on every read path."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from moorage import DecodeRefused
from moorage.results import ResultStore
from moorage.serializers import CompressedSerializer, JSONSerializer, PickleSerializer, Serializer

SAFE = Serializer.runs_no_code


class LeavesATrace:
    """Unpickling it creates a folder: proof that pickle ran."""

    def __init__(self, folder: str) -> None:
        self.folder = folder

    def __reduce__(self) -> tuple[object, tuple[str]]:
        import os

        return (os.makedirs, (self.folder,))


def test_runs_no_code_says_which_serializers_only_build_data() -> None:
    assert JSONSerializer().runs_no_code()
    assert Serializer(type="msgpack").runs_no_code()
    assert not PickleSerializer().runs_no_code()
    assert CompressedSerializer(serializer=JSONSerializer()).runs_no_code()
    assert not CompressedSerializer(serializer=PickleSerializer()).runs_no_code()


@pytest.mark.parametrize("layout", ["combined", "split", "streamed"])
def test_a_pickle_record_is_refused_before_it_is_decoded(tmp_path: Path, layout: str) -> None:
    options: dict[str, object] = {"result_storage": tmp_path / "results"}
    if layout == "split":
        options["metadata_storage"] = tmp_path / "meta"
    trace = tmp_path / "ran"
    value: object = LeavesATrace(str(trace))
    if layout == "streamed":  # big enough that local storage decodes it from the file
        value = [LeavesATrace(str(trace)), b"x" * (2 << 20)]
    writer = ResultStore(**options, serializer="pickle")  # type: ignore[arg-type]
    writer.write(value, key="k")
    reader = ResultStore(**options, serializer="json", cache_result_in_memory=False)  # type: ignore[arg-type]
    with pytest.raises(DecodeRefused, match=r"'k'.*'pickle'"):
        reader.read("k", allow=SAFE)
    with pytest.raises(DecodeRefused):
        asyncio.run(reader.aread("k", allow=SAFE))
    assert not trace.exists(), "nothing was unpickled"
    reader.read("k")
    assert trace.is_dir(), "without allow=, the store decodes as configured"


def test_json_msgpack_and_raw_payloads_pass_the_check(tmp_path: Path) -> None:
    for kind in ("json", "msgpack"):
        store = ResultStore(result_storage=tmp_path / kind, serializer=kind)
        store.write({"n": 1}, key="k")
        fresh = ResultStore(result_storage=tmp_path / kind, cache_result_in_memory=False)
        assert fresh.read("k", allow=SAFE).result == {"n": 1}
    raw = ResultStore(result_storage=tmp_path / "raw", serializer="json")
    raw._storage().write_path("r", b"[1, 2]")
    assert raw.read("r", allow=SAFE).result == [1, 2]
    pickled = ResultStore(
        result_storage=tmp_path / "raw", serializer="pickle", cache_result_in_memory=False
    )
    with pytest.raises(DecodeRefused, match="'r'"):
        pickled.read("r", allow=SAFE)
