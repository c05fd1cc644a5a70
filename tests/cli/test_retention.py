"""``moorage prune`` and ``moorage copy``: what they remove or copy, the question before
removing, dry runs, durations and sizes, reports and exit codes."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
from pathlib import Path

import pytest

from moorage.cli.values import parse_duration
from moorage.results import ResultStore
from moorage.store.memory_cache import ResultCache

from .terminal import moorage


def store_at(folder: Path) -> ResultStore:
    return ResultStore(result_storage=folder, serializer="json", cache=ResultCache())


def keys(folder: Path) -> list[str]:
    return sorted(info.key for info in store_at(folder).list())


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    store = store_at(tmp_path / "results")
    store.write("fresh", key="a/fresh")
    store.write("gone", key="a/gone", expiration=dt.timedelta(seconds=-5))
    store.write("b", key="b/gone", expiration=dt.timedelta(seconds=-5))
    return tmp_path / "results"


def test_prune_asks_first_and_removes_nothing_when_refused(
    folder: Path, env: dict[str, str], cwd: Path
) -> None:
    run = moorage("prune", str(folder), env=env, cwd=cwd, stdin="n\n")
    assert run.code == 1
    assert "Remove 2 record(s) (" in run.stderr
    assert keys(folder) == ["a/fresh", "a/gone", "b/gone"]
    agreed = moorage("prune", str(folder), env=env, cwd=cwd, stdin="y\n")
    assert agreed.code == 0, agreed.stderr
    assert agreed.stdout.startswith("removed 2 record(s), ")
    assert keys(folder) == ["a/fresh"]


def test_prune_dry_run_reports_and_removes_nothing(
    folder: Path, env: dict[str, str], cwd: Path
) -> None:
    run = moorage("prune", "--storage", str(folder), "--dry-run", "--json", env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    report = json.loads(run.stdout)
    assert report["dry_run"] is True
    assert sorted(report["keys"]) == ["a/gone", "b/gone"]
    assert report["records"] == 2
    assert report["examined"] == 3
    assert report["bytes"] == sum((folder / k).stat().st_size for k in ("a/gone", "b/gone"))
    assert report["storage"] == folder.as_uri()
    assert keys(folder) == ["a/fresh", "a/gone", "b/gone"]


def test_prune_by_prefix_age_and_size(folder: Path, env: dict[str, str], cwd: Path) -> None:
    run = moorage("prune", str(folder), "--prefix", "b/", "--yes", "--json", env=env, cwd=cwd)
    assert json.loads(run.stdout)["keys"] == ["b/gone"]
    old = time.time() - 3 * 86400
    os.utime(folder / "a" / "fresh", (old, old))
    by_age = moorage(
        "prune",
        str(folder),
        "--no-expired",
        "--older-than",
        "2d",
        "--yes",
        "--json",
        env=env,
        cwd=cwd,
    )
    assert json.loads(by_age.stdout)["keys"] == ["a/fresh"]
    store = store_at(folder)
    for number in range(4):
        store.write("x" * 1000, key=f"c/{number}")
        stamp = time.time() - 100 + number
        os.utime(folder / "c" / str(number), (stamp, stamp))
    # a/gone (newer than the c/ records) and the two newest c/ records fit the budget
    kept = [folder / "a" / "gone", folder / "c" / "2", folder / "c" / "3"]
    budget = sum(path.stat().st_size for path in kept)
    by_size = moorage(
        "prune", str(folder), "--no-expired", "--max-size", str(budget), "--yes", "--json",
        env=env, cwd=cwd,
    )  # fmt: skip
    assert json.loads(by_size.stdout)["keys"] == ["c/0", "c/1"]  # the oldest went first


@pytest.mark.parametrize(
    ("option", "value", "says"),
    [
        ("--older-than", "7 days", "is not a duration"),
        ("--max-size", "ten", "is not a size"),
    ],
)
def test_bad_durations_and_sizes_are_usage_errors(
    option: str, value: str, says: str, folder: Path, env: dict[str, str], cwd: Path
) -> None:
    run = moorage("prune", str(folder), option, value, "--yes", env=env, cwd=cwd)
    assert run.code == 2
    assert says in run.stderr
    assert option in run.stderr
    assert keys(folder) == ["a/fresh", "a/gone", "b/gone"]


def test_prune_by_nothing_is_a_usage_error(folder: Path, env: dict[str, str], cwd: Path) -> None:
    run = moorage("prune", str(folder), "--no-expired", "--yes", env=env, cwd=cwd)
    assert run.code == 2
    assert "nothing to prune by" in run.stderr


def test_durations() -> None:
    assert parse_duration("7d") == dt.timedelta(days=7)
    assert parse_duration("1.5h") == dt.timedelta(minutes=90)
    assert parse_duration("90") == parse_duration("90s") == dt.timedelta(seconds=90)
    assert parse_duration("2W") == dt.timedelta(weeks=2)
    with pytest.raises(ValueError, match="not a duration"):
        parse_duration("7 days")


def test_copy_copies_then_skips_what_is_identical(
    folder: Path, tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    target = tmp_path / "copy"
    run = moorage("copy", str(folder), str(target), "--prefix", "a/", env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    assert run.stdout.startswith("copied 2 record(s), ")
    assert keys(target) == ["a/fresh", "a/gone"]
    assert (target / "a" / "gone").read_bytes() == (folder / "a" / "gone").read_bytes()
    again = moorage("copy", str(folder), str(target), "--json", env=env, cwd=cwd)
    report = json.loads(again.stdout)
    assert (report["copied"], report["identical"], report["keys"]) == (1, 2, ["b/gone"])
    assert report["source"] == folder.as_uri()
    assert report["target"] == target.as_uri()


def test_copy_keeps_a_different_record_unless_overwrite(
    folder: Path, tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    target = tmp_path / "copy"
    store_at(target).write("theirs", key="a/fresh")
    dry = moorage("copy", str(folder), str(target), "--dry-run", "--json", env=env, cwd=cwd)
    assert json.loads(dry.stdout)["existing"] == 1
    assert keys(target) == ["a/fresh"]  # a dry run copies nothing
    kept = moorage("copy", str(folder), str(target), env=env, cwd=cwd)
    assert "1 kept: another record is there (--overwrite replaces it)" in kept.stdout
    assert store_at(target).read("a/fresh").result == "theirs"
    replaced = moorage("copy", str(folder), str(target), "--overwrite", env=env, cwd=cwd)
    assert replaced.code == 0, replaced.stderr
    assert store_at(target).read("a/fresh").result == "fresh"


def test_copy_names_each_record_it_could_not_copy_and_exits_1(
    folder: Path, tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    damaged = folder / "a" / "fresh"
    data = bytearray(damaged.read_bytes())
    data[20] ^= 0xFF  # inside the head: its checksum no longer matches
    damaged.write_bytes(bytes(data))
    run = moorage("copy", str(folder), str(tmp_path / "copy"), env=env, cwd=cwd)
    assert run.code == 1
    assert run.stdout.startswith("copied 2 record(s), ")
    assert run.stderr.startswith("could not copy 'a/fresh': damaged: ")
    assert keys(tmp_path / "copy") == ["a/gone", "b/gone"]
