"""Prefect 3.9.1 records: every fixture reads back as its manifest says, and records
written with record_format="prefect" have Prefect's layout."""

from __future__ import annotations

import base64
import datetime as dt
import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from moorage import RecordExpired
from moorage.results import ResultStore
from moorage.store.memory_cache import ResultCache

#: Records written by Prefect 3.9.1 (tests/fixtures/regenerate_prefect.py makes them anew).
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "prefect-3.9.1"
MANIFEST = json.loads((FIXTURES / "MANIFEST.json").read_text())["records"]


def expected(value: Any) -> Any:
    if isinstance(value, str) and value.startswith("datetime "):
        return dt.datetime.fromisoformat(value.removeprefix("datetime "))
    if isinstance(value, dict):
        return {k: expected(v) for k, v in value.items()}
    if isinstance(value, list):
        return [expected(v) for v in value]
    return value


@pytest.fixture
def fixtures(tmp_path: Path) -> Path:
    """A copy, so no test can alter the committed fixtures."""
    return Path(shutil.copytree(FIXTURES, tmp_path / "prefect"))


def test_manifest_covers_every_kind() -> None:
    kinds = {entry["kind"] for entry in MANIFEST}
    assert kinds == {"combined", "metadata", "raw"}
    assert len(MANIFEST) == 7


@pytest.mark.parametrize("entry", MANIFEST, ids=[e["file"] for e in MANIFEST])
@pytest.mark.parametrize("cache", [True, False])
def test_fixture_reads_as_manifest_says(fixtures: Path, entry: dict[str, Any], cache: bool) -> None:
    if entry["kind"] == "metadata":
        meta_file, result_file = fixtures / entry["file"], fixtures / entry["result_file"]
        store = ResultStore(
            result_storage=result_file.parent,
            metadata_storage=meta_file.parent,
            cache=ResultCache(),
            cache_result_in_memory=cache,
        )
        key = meta_file.name
    else:
        store = ResultStore(
            result_storage=fixtures, cache=ResultCache(), cache_result_in_memory=cache
        )
        key = entry["file"]
    if entry.get("expired"):
        assert not store.exists(key)
        with pytest.raises(RecordExpired, match=key):
            store.read(key)
        return
    assert store.exists(key)
    record = store.read(key)
    assert record.result == expected(entry["expect"])
    if "expiration" in entry:
        assert record.metadata.expiration == dt.datetime.fromisoformat(entry["expiration"])
    if entry["kind"] != "raw":
        assert record.metadata.moorage_version is None
        assert (record.metadata.model_extra or {}).get("prefect_version") == "3.9.1"


async def test_fixtures_read_async(fixtures: Path) -> None:
    store = ResultStore(result_storage=fixtures, cache=ResultCache(), cache_result_in_memory=False)
    record = await store.aread("combined/compressed-pickle-zlib")
    assert record.result == ["a", "b"]
    assert await store.aexists("combined/json-datetime")
    assert not await store.aexists("combined/expired")


def test_write_prefect_combined_pickle(tmp_path: Path) -> None:
    store = ResultStore(result_storage=tmp_path, record_format="prefect", cache=ResultCache())
    store.write(
        {"x": 1, "y": [1, 2, 3]}, key="p", expiration=dt.datetime(2031, 6, 1, tzinfo=dt.UTC)
    )
    raw = (tmp_path / "p").read_bytes()
    assert not raw.endswith(b"\n")
    doc = json.loads(raw)
    assert list(doc) == ["metadata", "result"]
    meta = doc["metadata"]
    assert list(meta) == [
        "storage_key",
        "expiration",
        "serializer",
        "prefect_version",
        "storage_block_id",
    ]
    assert meta["storage_key"] == str(tmp_path / "p")
    assert meta["expiration"] == "2031-06-01T00:00:00Z"
    assert meta["serializer"] == {
        "type": "pickle",
        "picklelib": "cloudpickle",
        "picklelib_version": None,
    }
    assert meta["storage_block_id"] is None
    # base64 with a newline every 76 characters and at the end, of a pickle
    text = doc["result"]
    assert text == base64.encodebytes(base64.b64decode(text)).decode()
    import pickle

    assert pickle.loads(base64.b64decode(text)) == {"x": 1, "y": [1, 2, 3]}
    fresh = ResultStore(result_storage=tmp_path, cache=ResultCache(), cache_result_in_memory=False)
    assert fresh.read("p").result == {"x": 1, "y": [1, 2, 3]}


def test_write_prefect_matches_prefect_bytes(fixtures: Path, tmp_path: Path) -> None:
    """Same value, serializer and key: byte-for-byte what Prefect wrote (json serializer)."""
    store = ResultStore(
        result_storage=tmp_path,
        record_format="prefect",
        serializer="compressed/pickle",
        cache=ResultCache(),
    )
    store.write(["a", "b"], key="c")
    ours = json.loads((tmp_path / "c").read_bytes())
    theirs = json.loads((fixtures / "combined/compressed-pickle-zlib").read_bytes())
    assert ours["metadata"]["serializer"]["type"] == "compressed/pickle"
    assert (
        ours["metadata"]["serializer"]["serializer"]
        == theirs["metadata"]["serializer"]["serializer"]
    )
    fresh = ResultStore(result_storage=tmp_path, cache=ResultCache(), cache_result_in_memory=False)
    assert fresh.read("c").result == ["a", "b"]


def test_write_prefect_json_and_split(tmp_path: Path) -> None:
    results, meta = tmp_path / "results", tmp_path / "meta"
    store = ResultStore(
        result_storage=results,
        metadata_storage=meta,
        record_format="prefect",
        serializer="json",
        cache=ResultCache(),
    )
    when = dt.datetime(2024, 9, 1, 12, tzinfo=dt.UTC)
    store.write({"n": 5, "when": when}, key="rec")
    meta_doc = json.loads((meta / "rec").read_bytes())
    assert meta_doc["storage_key"] == str(results / "rec")
    assert meta_doc["serializer"]["type"] == "json"
    assert (
        meta_doc["serializer"]["object_decoder"]
        == "prefect.serializers.prefect_json_object_decoder"
    )
    payload = json.loads((results / "rec").read_bytes())
    assert payload == {
        "n": 5,
        "when": {"__class__": "datetime.datetime", "data": "2024-09-01T12:00:00+00:00"},
    }
    fresh = ResultStore(result_storage=results, metadata_storage=meta, cache=ResultCache())
    assert fresh.read("rec").result == {"n": 5, "when": when}


def test_prefect_split_record_from_another_machine(fixtures: Path) -> None:
    """storage_key points at /home/prefect/...: the payload is found under the same key."""
    meta = json.loads((fixtures / "split/meta/rec").read_bytes())
    assert meta["storage_key"].startswith("/home/prefect/")
    store = ResultStore(
        result_storage=fixtures / "split/results",
        metadata_storage=fixtures / "split/meta",
        cache=ResultCache(),
    )
    assert store.read("rec").result == {"x": 1, "y": [1, 2, 3]}


# -- every storage backend --------------------------------------------------------------------


def test_prefect_records_on_every_backend(make_storage: Callable[..., Any]) -> None:
    """Prefect's files uploaded to each backend (memory, local, S3, GCS, Azure) read back
    as the manifest says; records written in Prefect's format there read back too."""
    results, metadata = make_storage("prefect-results"), make_storage("prefect-meta")
    for entry in MANIFEST:
        data = (FIXTURES / entry["file"]).read_bytes()
        if entry["kind"] == "metadata":
            key = Path(entry["file"]).name
            metadata.write_path(key, data)
            results.write_path(key, (FIXTURES / entry["result_file"]).read_bytes())
        else:
            results.write_path(entry["file"], data)
    combined = ResultStore(result_storage=results, cache=ResultCache())
    split = ResultStore(result_storage=results, metadata_storage=metadata, cache=ResultCache())
    for entry in MANIFEST:
        if entry["kind"] == "metadata":
            store, key = split, Path(entry["file"]).name
        else:
            store, key = combined, entry["file"]
        if entry.get("expired"):
            assert not store.exists(key)
            with pytest.raises(RecordExpired, match=key):
                store.read(key)
        else:
            assert store.exists(key)
            assert store.read(key).result == expected(entry["expect"])

    writer = ResultStore(result_storage=results, metadata_storage=metadata, record_format="prefect")
    writer.write({"from": "moorage"}, key="written/by-moorage")
    meta_blob = json.loads(metadata.read_path("written/by-moorage"))
    assert meta_blob["prefect_version"] == "3.9.1"
    fresh = ResultStore(
        result_storage=results, metadata_storage=metadata, cache_result_in_memory=False
    )
    assert fresh.read("written/by-moorage").result == {"from": "moorage"}
