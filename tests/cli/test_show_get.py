"""``moorage show`` and ``moorage get``: metadata, previews and values, decoded only when
that runs no stored code (json, msgpack) or when --decode says so."""

from __future__ import annotations

import datetime as dt
import json
import os
from pathlib import Path

import pytest

from moorage.cli.decoding import Refused, head_check, read_value
from moorage.cli.stores import safe_to_decode
from moorage.results import ResultStore
from moorage.store.memory_cache import ResultCache

from .terminal import moorage


class MakesFolder:
    """Unpickling this creates a folder: a stand-in for whatever code a pickle may run."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return (os.mkdir, (self.path,))


@pytest.fixture
def storage(tmp_path: Path) -> str:
    folder = tmp_path / "results"
    as_json = ResultStore(result_storage=folder, serializer="json", cache=ResultCache())
    as_json.write({"rows": 3, "total": 12.5}, key="daily/1")
    as_json.write("x" * 5000, key="long")
    as_json.write([1], key="gone", expiration=dt.timedelta(seconds=-5))
    ResultStore(result_storage=folder, serializer="msgpack", cache=ResultCache()).write(
        {"packed": [1, 2]}, key="packed"
    )
    pickled = ResultStore(result_storage=folder, serializer="pickle", cache=ResultCache())
    pickled.write(MakesFolder(str(tmp_path / "ran")), key="pickled")
    pickled.write(b"\x00\x01raw bytes", key="blob")
    pickled.write(object(), key="opaque")
    return str(folder)


def show(storage: str, env: dict[str, str], cwd: Path, *args: str) -> dict[str, object]:
    run = moorage("show", *args, storage, "--json", env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    described: dict[str, object] = json.loads(run.stdout)
    return described


def test_show_describes_a_json_record_and_previews_its_value(
    storage: str, env: dict[str, str], cwd: Path
) -> None:
    described = show(storage, env, cwd, "daily/1")
    assert described["format"] == "moorage"
    assert described["serializer"] == "json"
    assert described["size"] == (Path(storage) / "daily" / "1").stat().st_size
    assert described["expired"] is False
    assert described["signed"] is False
    assert described["storage"] == Path(storage).as_uri()
    metadata = described["metadata"]
    assert isinstance(metadata, dict)
    assert metadata["serializer"] == {"type": "json"}
    assert metadata["checksum"].startswith("crc32c:")
    assert described["value"] == {
        "decoded": True,
        "reason": None,
        "type": "dict",
        "preview": '{"rows":3,"total":12.5}',
    }


def test_show_previews_msgpack_and_cuts_long_values(
    storage: str, env: dict[str, str], cwd: Path
) -> None:
    packed = show(storage, env, cwd, "packed")["value"]
    assert packed == {
        "decoded": True,
        "reason": None,
        "type": "dict",
        "preview": '{"packed":[1,2]}',
    }
    long = show(storage, env, cwd, "long")["value"]
    assert isinstance(long, dict)
    assert long["preview"].endswith("... (5002 characters)")
    assert len(long["preview"]) < 500


def test_show_does_not_unpickle_without_decode_and_says_why(
    storage: str, tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    described = show(storage, env, cwd, "pickled")
    value = described["value"]
    assert isinstance(value, dict)
    assert value["decoded"] is False
    assert "runs code the record holds; pass --decode" in value["reason"]
    assert not (tmp_path / "ran").exists()
    lines = moorage("show", "pickled", storage, env=env, cwd=cwd).stdout.splitlines()
    assert any(
        line.startswith("value\tnot decoded: it is serialized with 'pickle'") for line in lines
    )
    assert not (tmp_path / "ran").exists()
    decoded = show(storage, env, cwd, "pickled", "--decode")
    assert (tmp_path / "ran").is_dir()  # --decode really unpickles: the stored code ran
    assert decoded["value"]["decoded"] is True  # type: ignore[index]


def test_show_help_says_decoding_runs_code(env: dict[str, str], cwd: Path) -> None:
    assert (
        "Unpickling runs code the record holds"
        in moorage("show", "--help", env=env, cwd=cwd).stdout
    )


def test_show_of_an_expired_record_describes_it_without_its_value(
    storage: str, env: dict[str, str], cwd: Path
) -> None:
    described = show(storage, env, cwd, "gone")
    assert described["expired"] is True
    assert described["value"] == {
        "decoded": False,
        "reason": "not read: the record has expired (the store reads no expired record)",
    }


def test_show_and_get_of_a_missing_key_exit_1_naming_it(
    storage: str, env: dict[str, str], cwd: Path
) -> None:
    for command in ("show", "get"):
        run = moorage(command, "nope", storage, env=env, cwd=cwd)
        assert run.code == 1
        assert "no record under key 'nope'" in run.stderr
        assert "moorage ls" in run.stderr


def test_get_writes_text_as_it_is_and_other_values_as_json(
    storage: str, env: dict[str, str], cwd: Path
) -> None:
    assert json.loads(moorage("get", "daily/1", storage, env=env, cwd=cwd).stdout) == {
        "rows": 3,
        "total": 12.5,
    }
    assert moorage("get", "long", storage, env=env, cwd=cwd).stdout == "x" * 5000


def test_get_refuses_pickle_without_decode_and_writes_bytes_with_it(
    storage: str, tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    refused = moorage("get", "blob", storage, env=env, cwd=cwd)
    assert refused.code == 1
    assert "pass --decode if you trust this storage" in refused.stderr
    assert refused.stdout == ""
    out = tmp_path / "blob.bin"
    run = moorage("get", "blob", storage, "--decode", "-o", str(out), env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    assert out.read_bytes() == b"\x00\x01raw bytes"


def test_get_of_a_value_json_cannot_hold_exits_1(
    storage: str, env: dict[str, str], cwd: Path
) -> None:
    run = moorage("get", "opaque", storage, "--decode", env=env, cwd=cwd)
    assert run.code == 1
    assert "is of type object, neither bytes, text nor JSON-able" in run.stderr


def test_get_output_replaces_the_file_whole_or_leaves_it_alone(
    storage: str, tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    out = tmp_path / "out" / "value.json"
    out.parent.mkdir()
    out.write_text("before")
    out.chmod(0o640)
    failed = moorage("get", "pickled", storage, "-o", str(out), env=env, cwd=cwd)
    assert failed.code == 1
    assert out.read_text() == "before"
    run = moorage("get", "daily/1", storage, "-o", str(out), "--json", env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    assert json.loads(out.read_text()) == {"rows": 3, "total": 12.5}
    assert out.stat().st_mode & 0o777 == 0o640  # the replaced file's mode is kept
    assert json.loads(run.stdout) == {
        "key": "daily/1",
        "type": "dict",
        "file": str(out),
        "bytes": out.stat().st_size,
    }
    assert sorted(p.name for p in out.parent.iterdir()) == ["value.json"]  # no temp file


def test_get_json_wraps_the_value(storage: str, env: dict[str, str], cwd: Path) -> None:
    run = moorage("get", "blob", storage, "--decode", "--json", env=env, cwd=cwd)
    assert json.loads(run.stdout) == {"key": "blob", "type": "bytes", "value": "AAFyYXcgYnl0ZXM="}


def test_only_json_and_msgpack_count_as_safe_even_inside_compression() -> None:
    assert safe_to_decode({"type": "json"})
    assert safe_to_decode({"type": "msgpack"})
    assert safe_to_decode({"type": "compressed/json", "serializer": {"type": "json"}})
    assert safe_to_decode({"type": "compressed", "serializer": {"type": "msgpack"}})
    assert not safe_to_decode({"type": "pickle"})
    assert not safe_to_decode({"type": "compressed", "serializer": {"type": "pickle"}})
    # a stored description can name pickle inside a type whose name says json
    assert not safe_to_decode({"type": "compressed/json", "serializer": {"type": "pickle"}})
    assert not safe_to_decode({"type": "someone-elses"})
    assert not safe_to_decode(None)


def test_a_record_replaced_by_pickle_after_its_head_was_read_is_not_decoded(
    tmp_path: Path,
) -> None:
    folder = tmp_path / "results"
    ResultStore(result_storage=folder, serializer="json").write({"fine": True}, key="swapped")
    # As in the command: a store of its own, whose memory cache holds nothing yet.
    store = ResultStore(result_storage=folder, serializer="json", cache_result_in_memory=False)
    metadata, refused = head_check(store, store.info("swapped"), decode=False)
    assert (metadata or {})["serializer"] == {"type": "json"}
    assert refused == ""
    swapper = ResultStore(result_storage=folder, serializer="pickle", cache=ResultCache())
    swapper.write(MakesFolder(str(tmp_path / "ran")), key="swapped")
    with pytest.raises(Refused, match=r"serialized with 'pickle'.*replaced while being read"):
        read_value(store, "swapped", decode=False)
    assert not (tmp_path / "ran").exists()
    read_value(store, "swapped", decode=True)
    assert (tmp_path / "ran").is_dir()


def test_show_get_and_doctor_on_a_store_split_over_a_metadata_storage(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    payloads, metadata = tmp_path / "payloads", tmp_path / "metadata"
    store = ResultStore(
        result_storage=payloads, metadata_storage=metadata, serializer="json", cache=ResultCache()
    )
    store.write({"split": 1}, key="s/1")
    split = {**env, "MOORAGE_STORAGE": str(payloads), "MOORAGE_METADATA_STORAGE": str(metadata)}
    shown = moorage("show", "s/1", "--json", env=split, cwd=cwd)
    assert shown.code == 0, shown.stderr
    described = json.loads(shown.stdout)
    assert described["storage"] == metadata.as_uri()
    assert described["value"]["preview"] == '{"split":1}'
    assert json.loads(moorage("get", "s/1", env=split, cwd=cwd).stdout) == {"split": 1}
    checked = json.loads(moorage("doctor", "--json", env=split, cwd=cwd).stdout)
    statuses = {check["check"]: check["status"] for check in checked["checks"]}
    for role in ("result storage", "metadata storage"):
        for step in ("reached", "write", "read", "list", "delete"):
            assert statuses[f"{role}: {step}"] == "ok"
    assert checked["ok"] is True


def test_show_of_a_damaged_record_names_the_problem_and_exits_1(
    storage: str, env: dict[str, str], cwd: Path
) -> None:
    path = Path(storage) / "daily" / "1"
    data = bytearray(path.read_bytes())
    data[20] ^= 0xFF  # inside the head: its checksum no longer matches
    path.write_bytes(bytes(data))
    run = moorage("show", "daily/1", storage, "--json", env=env, cwd=cwd)
    assert run.code == 1
    described = json.loads(run.stdout)
    assert described["format"] == "damaged"
    assert "failed its head checksum" in described["problem"]
    assert described["value"]["decoded"] is False
    assert described["value"]["reason"].startswith("not read: the record is damaged")
