"""Refuse rather than guess: a value with no stable hash leaves the call uncached, with
one warning that names the parameter and the fixes; plain objects are keyed by their
state, canonically, in every process."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import warnings
from pathlib import Path
from typing import Any

import attrs
import pydantic
import pytest

import moorage
from moorage.errors import UnhashableValue
from moorage.keys import stable_hash
from moorage.workflow.cache_policies import INPUTS


class Settings:
    def __init__(self, tags: set[str], depth: int) -> None:
        self.tags = tags
        self.depth = depth


class Token:
    """Compares by identity and holds nothing: only its identity tells two apart."""


def _gen() -> Any:
    yield 1


@pytest.mark.parametrize(
    "value",
    [threading.Lock(), _gen(), object(), Token(), threading.Event()],
    ids=["lock", "generator", "object", "token", "holds-a-lock"],
)
def test_values_without_a_stable_hash_are_refused(value: Any) -> None:
    with pytest.raises(UnhashableValue):
        stable_hash(value)


def test_an_open_file_is_refused(tmp_path: Path) -> None:
    with (tmp_path / "f").open("w") as handle, pytest.raises(UnhashableValue):
        stable_hash(handle)


def test_plain_objects_are_keyed_by_their_state() -> None:
    assert stable_hash(Settings({"a", "b"}, 1)) == stable_hash(Settings({"b", "a"}, 1))
    assert stable_hash(Settings({"a"}, 1)) != stable_hash(Settings({"a"}, 2))
    assert stable_hash(Settings({"a"}, 1)) != stable_hash({"tags": {"a"}, "depth": 1})


def test_functions_are_keyed_by_name_and_lambdas_by_their_code() -> None:
    assert stable_hash(len) == stable_hash(len)
    assert stable_hash(os.path.join) != stable_hash(os.path.split)
    assert stable_hash(lambda x: x + 1) != stable_hash(lambda x: x + 2)


def test_dataclass_attrs_and_pydantic_fields_make_the_key() -> None:
    @dataclasses.dataclass
    class Run:
        name: str
        cache: dict[str, int] = dataclasses.field(default_factory=dict, compare=False)

    @attrs.define
    class Job:
        name: str
        handle: Any = attrs.field(default=None, eq=False)

    class Model(pydantic.BaseModel):
        name: str
        tags: frozenset[str] = frozenset()

    assert stable_hash(Run("a", {"x": 1})) == stable_hash(Run("a")), "compare=False is left out"
    assert stable_hash(Run("a")) != stable_hash(Run("b"))
    assert stable_hash(Job("a", threading.Lock())) == stable_hash(Job("a")), "eq=False too"
    assert stable_hash(Job("a")) != stable_hash(Job("b"))
    assert stable_hash(Model(name="a", tags={"x", "y"})) == stable_hash(
        Model(name="a", tags={"y", "x"})
    )
    assert stable_hash(Model(name="a")) != stable_hash(Model(name="b"))


CHILD = """
import sys
sys.path.insert(0, sys.argv[1])
from moorage.keys import stable_hash
from refusal_types import Settings
print(stable_hash(Settings({"alpha", "beta", "gamma", "delta"}, 3)))
"""

TYPES = """
class Settings:
    def __init__(self, tags, depth):
        self.tags = tags
        self.depth = depth
"""


def test_objects_holding_sets_hash_alike_under_any_hash_seed(tmp_path: Path) -> None:
    (tmp_path / "refusal_types.py").write_text(TYPES)
    keys = set()
    for seed in ("1", "2", "3"):
        done = subprocess.run(
            [sys.executable, "-c", CHILD, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=120,
            check=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        )
        keys.add(done.stdout.strip().splitlines()[-1])
    assert len(keys) == 1, keys


def test_a_task_with_an_unhashable_parameter_runs_uncached_and_says_which(
    tmp_path: Path,
) -> None:
    runs: list[int] = []

    @moorage.task(result_storage=tmp_path)
    def guarded(n: int, lock: Any) -> int:
        runs.append(n)
        return n * 2

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert guarded(3, threading.Lock()) == 6, "the body's result is still returned"
        assert guarded(3, threading.Lock()) == 6
    assert runs == [3, 3], "uncached: the body ran both times"
    messages = [str(w.message) for w in caught if "runs uncached" in str(w.message)]
    assert len(messages) == 2, "one warning per call"
    message = messages[0]
    assert "guarded" in message
    assert "parameter 'lock'" in message
    assert "register_hasher" in message
    assert "INPUTS - 'lock'" in message
    assert "cache_key_fn" in message
    assert [p for p in tmp_path.rglob("*") if p.is_file()] == [], "nothing stored"


def test_the_warning_names_where_inside_a_parameter(tmp_path: Path) -> None:
    @moorage.task(result_storage=tmp_path)
    def nested(config: dict[str, Any]) -> int:
        return 1

    with pytest.warns(RuntimeWarning, match=r"parameter 'config'\['handle'\]"):
        assert nested({"n": 1, "handle": threading.Lock()}) == 1


def test_leaving_the_parameter_out_caches_again(tmp_path: Path) -> None:
    runs: list[int] = []

    @moorage.task(result_storage=tmp_path, cache_policy=INPUTS - "lock")
    def guarded(n: int, lock: Any) -> int:
        runs.append(n)
        return n * 2

    assert guarded(3, threading.Lock()) == 6
    assert guarded(3, threading.Lock()) == 6
    assert runs == [3]
