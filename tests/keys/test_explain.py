"""``task.explain_key``: each part of a key (policy, parameter, hasher, digest), the key
itself equal to the one a call uses, why two calls' keys differ, and ``cache_version``."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import pytest

import moorage
from moorage.keys import FileContent
from moorage.results import ResultStore
from moorage.workflow.cache_policies import INPUTS, TASK_SOURCE


def test_the_explained_key_is_the_one_a_call_stores_under(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path)
    def scale(values: list[int], factor: int = 2) -> list[int]:
        return [v * factor for v in values]

    explained = scale.explain_key([1, 2])
    assert explained.key is not None
    assert not ResultStore(result_storage=tmp_path).exists(explained.key), "nothing ran"
    scale([1, 2])
    assert ResultStore(result_storage=tmp_path).exists(explained.key)
    assert explained.policy == "INPUTS + TASK_SOURCE"
    labels = [part.label for part in explained.parts]
    assert labels[:2] == ["parameter factor", "parameter values"]
    assert labels[2].startswith("task source")
    assert labels[2].endswith("scale")
    values = explained.parts[1]
    assert values.how == "list, by value"
    assert len(values.digest) == 32


def test_two_calls_differ_in_the_part_that_changed(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path)
    def scale(values: list[int], factor: int = 2) -> int:
        return sum(values) * factor

    a, b = scale.explain_key([1, 2]), scale.explain_key([1, 2], factor=3)
    assert a.key != b.key
    assert [label for label, _, _ in a.differences(b)] == ["parameter factor"]
    assert a.differences(scale.explain_key([1, 2])) == []
    shown = a.compare(b)
    assert "the keys differ" in shown
    assert "parameter factor" in shown
    assert "parameter values" not in shown


def test_hashers_are_named_per_parameter(tmp_path: Path) -> None:
    source = tmp_path / "input.csv"
    source.write_text("a,b\n1,2\n")

    @moorage.task(result_storage=tmp_path / "results")
    def load(path: Any, options: Any) -> int:
        return 1

    explained = load.explain_key(FileContent(source), {"sep": ","})
    hows = {part.name: part.how for part in explained.parts}
    assert "FileContent hasher (moorage)" in hows["path"]
    assert hows["options"] == "dict, by value"


def test_an_unhashable_parameter_is_explained_not_raised(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path)
    def guarded(n: int, lock: Any) -> int:
        return n

    explained = guarded.explain_key(1, threading.Lock())
    assert explained.key is None
    assert "parameter 'lock'" in explained.note
    lock_part = next(p for p in explained.parts if p.name == "lock")
    assert lock_part.how.startswith("cannot be hashed")
    assert lock_part.digest == ""


def test_excluded_parameters_show_as_left_out(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path, cache_policy=INPUTS - "verbose" + TASK_SOURCE)
    def run(n: int, verbose: bool = False) -> int:
        return n

    a, b = run.explain_key(1), run.explain_key(1, verbose=True)
    assert a.key == b.key
    assert a.policy == "INPUTS - 'verbose' + TASK_SOURCE"
    verbose = next(p for p in a.parts if p.name == "verbose")
    assert verbose.how == "left out of the key"
    assert verbose.digest == ""


def test_a_storage_key_template_and_no_persistence_are_explained(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path, result_storage_key="day-{parameters[day]}")
    def daily(day: str) -> str:
        return day

    explained = daily.explain_key("monday")
    assert explained.key == "day-monday"
    assert [p.source for p in explained.parts] == ["storage key template"]

    @moorage.task(persist_result=False)
    def fleeting(n: int) -> int:
        return n

    assert "not persisted" in fleeting.explain_key(1).note


def test_a_cache_version_invalidates_on_purpose(tmp_path: Path) -> None:
    runs: list[str] = []

    def body(n: int) -> int:
        runs.append("ran")
        return n

    v1 = moorage.task(body, result_storage=tmp_path, cache_version="1")
    v1_again = moorage.task(body, result_storage=tmp_path, cache_version="1")
    v2 = moorage.task(body, result_storage=tmp_path, cache_version="2")
    unversioned = moorage.task(body, result_storage=tmp_path)
    assert v1(5) == 5
    assert v1_again(5) == 5
    assert len(runs) == 1, "the same version reads the stored result"
    assert v2(5) == 5
    assert len(runs) == 2, "a new version computes again"
    assert unversioned(5) == 5
    assert len(runs) == 3
    a, b = v1.explain_key(5), v2.explain_key(5)
    assert [label for label, _, _ in a.differences(b)] == ["cache version"]
    assert v1.with_options(cache_version="2").explain_key(5).key == b.key


def test_a_cache_version_with_a_storage_key_template_is_refused() -> None:
    with pytest.raises(TypeError, match="put the version in the key template"):
        moorage.task(lambda n: n, result_storage_key="x-{parameters[n]}", cache_version="2")


def test_the_explanation_prints_and_serializes(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path)
    def add(a: int, b: int) -> int:
        return a + b

    explained = add.explain_key(1, 2)
    text = str(explained)
    assert f"key: {explained.key}" in text
    assert "parameter a" in text
    data = explained.as_dict()
    assert data["key"] == explained.key
    assert len(data["parts"]) == 3
