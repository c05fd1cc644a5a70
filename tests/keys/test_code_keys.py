"""`CODE` keys (`moorage.keys.code`) see what a function uses: editing a helper it calls,
a global it reads or a value it closes over changes its key; editing an unrelated
function, or code of another package, does not; and the key is the same in every
process and wherever the project folder lies.

The project tests write a package to ``tmp_path`` and compute keys in fresh processes,
as a rerun after an edit would: an edit is seen only by a process that imports the
edited file.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import pytest

import moorage
from moorage.keys import code as code_module
from moorage.keys.code import CodeDependency, code_dependencies, code_key, source_digest
from moorage.workflow.cache_policies import source_key

# -- a project in a folder, keyed in fresh processes -------------------------------------

PROJECT = {
    "pkg/__init__.py": "",
    "pkg/tasks.py": """
import json

import moorage
import extlib
from pkg import helpers
from pkg.models import Scaler

THRESHOLD = 3
NAMES = {"alpha", "beta", "gamma", "delta", "epsilon"}


@moorage.task
def run(x):
    labels = [name for name in sorted(NAMES) if name in {"alpha", "beta"}]
    return helpers.scale(x) + THRESHOLD + extlib.ext(x) + Scaler().apply(x) + len(labels)
""",
    "pkg/helpers.py": """
from pkg import deeper


def scale(x):
    return deeper.clip(x) * 2


def other(x):
    return x - 1
""",
    "pkg/deeper.py": """
LIMIT = 10


def clip(x):
    return min(x, LIMIT)
""",
    "pkg/models.py": """
class Scaler:
    factor = 2

    def apply(self, x):
        return x * self.factor
""",
    "extlib/__init__.py": """
def ext(x):
    return x + 1
""",
}

CHILD = """
import json
from moorage.keys.code import code_dependencies, code_key
import pkg.tasks
deps = [[d.name, d.kind, d.used_by] for d in code_dependencies(pkg.tasks.run)]
print(json.dumps({"key": code_key(pkg.tasks.run), "deps": deps}))
"""


def _write(root: Path, edits: dict[str, tuple[str, str]] | None = None) -> Path:
    """The project under ``root``; ``edits``: file -> (old text, new text)."""
    for name, text in PROJECT.items():
        if edits and name in edits:
            old, new = edits[name]
            assert old in text, f"the edit of {name} must change something"
            text = text.replace(old, new)
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def _child(root: Path, hashseed: str = "0") -> dict[str, Any]:
    """The task's key and dependencies, computed by a fresh process importing ``root``."""
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        "PYTHONHASHSEED": hashseed,
        "PYTHONDONTWRITEBYTECODE": "1",  # an edit within a second must not hit a stale .pyc
    }
    done = subprocess.run(
        [sys.executable, "-c", CHILD],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env=env,
        cwd=root,
    )
    assert done.returncode == 0, done.stderr
    found: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return found


def _key_after(tmp_path: Path, label: str, edits: dict[str, tuple[str, str]]) -> str:
    key: str = _child(_write(tmp_path / label, edits))["key"]
    return key


@pytest.fixture
def base_key(tmp_path: Path) -> str:
    key: str = _child(_write(tmp_path / "base"))["key"]
    return key


def test_editing_a_called_helper_changes_the_key(tmp_path: Path, base_key: str) -> None:
    edited = _key_after(tmp_path, "scale", {"pkg/helpers.py": ("* 2", "* 3")})
    assert edited != base_key


def test_editing_an_unrelated_function_keeps_the_key(tmp_path: Path, base_key: str) -> None:
    edited = _key_after(tmp_path, "other", {"pkg/helpers.py": ("x - 1", "x - 2")})
    assert edited == base_key


def test_editing_a_global_the_task_reads_changes_the_key(tmp_path: Path, base_key: str) -> None:
    edited = _key_after(tmp_path, "threshold", {"pkg/tasks.py": ("THRESHOLD = 3", "THRESHOLD = 4")})
    assert edited != base_key


def test_editing_what_a_helper_calls_changes_the_key(tmp_path: Path, base_key: str) -> None:
    clip = _key_after(tmp_path, "clip", {"pkg/deeper.py": ("min(x, LIMIT)", "max(x, LIMIT)")})
    limit = _key_after(tmp_path, "limit", {"pkg/deeper.py": ("LIMIT = 10", "LIMIT = 11")})
    assert clip != base_key
    assert limit != base_key
    assert clip != limit


def test_editing_a_method_of_a_class_used_changes_the_key(tmp_path: Path, base_key: str) -> None:
    edited = _key_after(tmp_path, "method", {"pkg/models.py": ("x * self", "x ** self")})
    assert edited != base_key


def test_another_package_is_named_not_followed(tmp_path: Path, base_key: str) -> None:
    edited = _key_after(tmp_path, "ext", {"extlib/__init__.py": ("x + 1", "x + 2")})
    assert edited == base_key


def test_the_key_is_the_same_under_any_hash_seed(tmp_path: Path) -> None:
    root = _write(tmp_path / "seeds")
    first = _child(root, hashseed="1")
    second = _child(root, hashseed="2")
    assert first == second
    assert ["NAMES", "global value", "pkg.tasks.run"] in first["deps"], "a set is hashed"


def test_the_key_is_the_same_when_the_folder_moves(tmp_path: Path, base_key: str) -> None:
    moved = tmp_path / "elsewhere" / "deeper" / "project"
    shutil.copytree(tmp_path / "base", moved)
    assert _child(moved)["key"] == base_key


def test_the_dependencies_name_the_helper_and_the_global(tmp_path: Path) -> None:
    deps = _child(_write(tmp_path / "deps"))["deps"]
    assert ["helpers.scale", "function", "pkg.tasks.run"] in deps
    assert ["THRESHOLD", "global value", "pkg.tasks.run"] in deps
    assert ["deeper.clip", "function", "pkg.helpers.scale"] in deps, "followed transitively"
    assert ["LIMIT", "global value", "pkg.deeper.clip"] in deps
    assert ["Scaler", "class", "pkg.tasks.run"] in deps
    assert ["extlib", "external", "pkg.tasks.run"] in deps, "named, not followed"
    names = [dep[0] for dep in deps]
    assert "json" not in names, "imported by the module, not read by the task"
    assert "helpers.other" not in names
    assert "other" not in names


# -- closures, partials, bound methods ---------------------------------------------------


def _make_scaler(factor: Any) -> Any:
    def scaled(x: int) -> Any:
        return x * factor

    return scaled


def test_closures_over_different_values_key_apart() -> None:
    assert code_key(_make_scaler(2)) != code_key(_make_scaler(3))
    assert code_key(_make_scaler(2)) == code_key(_make_scaler(2))
    assert code_key(_make_scaler((1, "a"))) == code_key(_make_scaler((1, "a")))
    (factor,) = code_dependencies(_make_scaler(5))
    assert (factor.name, factor.kind) == ("factor", "closure")


def test_an_unhashable_value_is_named_by_its_type() -> None:
    first = _make_scaler(threading.Lock())
    second = _make_scaler(threading.Lock())
    (factor,) = code_dependencies(first)
    assert factor.kind == "closure"
    assert "type's name only" in factor.note
    assert code_key(first) == code_key(second), "the same type: nothing else to tell apart"
    assert code_key(first) != code_key(_make_scaler(threading.Event()))


def _offset(x: int) -> int:
    return x + 1


def _make_caller(helper: Any) -> Any:
    def call(x: int) -> Any:
        return helper(x)

    return call


def test_a_function_in_a_closure_is_followed() -> None:
    (helper,) = code_dependencies(_make_caller(_offset))
    assert (helper.name, helper.kind) == ("helper", "function")
    assert helper.digest == source_key(_offset)
    assert code_key(_make_caller(_offset)) != code_key(_make_caller(_is_even))


def _power(x: int, exponent: int = 2) -> int:
    return int(x**exponent)


def test_a_partial_keys_by_its_function_and_arguments() -> None:
    square = functools.partial(_power, exponent=2)
    cube = functools.partial(_power, exponent=3)
    assert code_key(square) != code_key(cube)
    assert code_key(square) == code_key(functools.partial(_power, exponent=2))
    assert source_digest(square) == source_key(_power)
    assert [d.kind for d in code_dependencies(cube)] == ["partial arguments"]


class _Model:
    def __init__(self, weight: int) -> None:
        self.weight = weight

    def predict(self, x: int) -> int:
        return x * self.weight

    def __call__(self, x: int) -> int:
        return self.predict(x)


def test_a_bound_method_keys_by_its_object_and_class() -> None:
    assert code_key(_Model(2).predict) != code_key(_Model(3).predict)
    assert code_key(_Model(2).predict) == code_key(_Model(2).predict)
    assert code_key(_Model(2)) != code_key(_Model(3)), "a callable object: its __call__"
    kinds = {dep.name: dep.kind for dep in code_dependencies(_Model(2).predict)}
    assert kinds == {"self": "bound instance", "self.__class__": "class"}


# -- cycles and bounds -------------------------------------------------------------------


def _is_even(n: int) -> bool:
    return True if n == 0 else _is_odd(n - 1)


def _is_odd(n: int) -> bool:
    return False if n == 0 else _is_even(n - 1)


def _countdown(n: int) -> int:
    return 0 if n == 0 else _countdown(n - 1)


def test_mutual_recursion_ends_each_function_listed_once() -> None:
    deps = code_dependencies(_is_even)
    assert [(d.name, d.kind, d.used_by) for d in deps] == [
        ("_is_odd", "function", f"{__name__}._is_even"),
    ]
    assert code_key(_is_even) != code_key(_is_odd)
    assert code_dependencies(_countdown) == [], "recursion into itself adds nothing"


def _namespace(source: str, module: str = "chainpkg.mod") -> dict[str, Any]:
    """Functions defined by ``exec`` as module ``module`` (their source is not readable:
    they are keyed by their compiled code)."""
    namespace: dict[str, Any] = {"__name__": module}
    exec(compile(source, f"<{module}>", "exec"), namespace)
    return namespace


def _chain(length: int, edited: int | None = None) -> dict[str, Any]:
    lines = []
    for i in range(length):
        step = 2 if i == edited else 1
        call = f"f{i + 1}(x + {step})" if i + 1 < length else "x"
        lines.append(f"def f{i}(x):\n    return {call}\n")
    return _namespace("\n".join(lines))


def test_a_chain_longer_than_the_depth_bound_is_cut_not_failed() -> None:
    length = code_module.MAX_DEPTH + 15
    deps = code_dependencies(_chain(length)["f0"])
    assert [d.name for d in deps] == [f"f{i}" for i in range(1, code_module.MAX_DEPTH + 2)]
    assert all(d.note == "" for d in deps[:-1])
    assert "own source only" in deps[-1].note
    base = code_key(_chain(length)["f0"])
    last_hashed = code_module.MAX_DEPTH + 1
    assert code_key(_chain(length, edited=last_hashed)["f0"]) != base, "its source is hashed"
    assert code_key(_chain(length, edited=last_hashed + 1)["f0"]) == base, "past the bound"
    assert code_key(_chain(length, edited=3)["f0"]) != base


def test_more_functions_than_the_count_bound_are_named_only() -> None:
    count = code_module.MAX_FOLLOWED + 30
    helpers = "".join(f"def g{i:03}(x):\n    return x + {i}\n" for i in range(count))
    calls = " + ".join(f"g{i:03}(x)" for i in range(count))
    deps = code_dependencies(_namespace(f"{helpers}\ndef root(x):\n    return {calls}\n")["root"])
    assert len(deps) == count
    followed = [d for d in deps if not d.note]
    assert len(followed) == code_module.MAX_FOLLOWED
    assert all("not followed" in d.note for d in deps[code_module.MAX_FOLLOWED :])
    assert [d.name for d in deps] == sorted(d.name for d in deps), "in name order"


# -- __main__, tasks, memoization --------------------------------------------------------

MAIN = """
import math

SCALE = 2

def helper(x):
    return x * SCALE

def entry(x):
    return helper(math.floor(x))
"""


def test_functions_of_main_are_followed_from_main() -> None:
    base = _namespace(MAIN, "__main__")["entry"]
    deps = {d.name: d for d in code_dependencies(base)}
    assert deps["helper"].kind == "function"
    assert deps["math"].kind == "external"
    assert deps["SCALE"].used_by == "__main__.helper"
    edited = _namespace(MAIN.replace("x * SCALE", "x + SCALE"), "__main__")["entry"]
    assert code_key(edited) != code_key(base)
    rescaled = _namespace(MAIN.replace("SCALE = 2", "SCALE = 3"), "__main__")["entry"]
    assert code_key(rescaled) != code_key(base)


def test_a_task_is_keyed_by_its_function_and_followed_when_called() -> None:
    namespace = _namespace(
        "import moorage\n"
        "@moorage.task\n"
        "def inner(x):\n    return x + 1\n"
        "@moorage.task\n"
        "def outer(x):\n    return inner(x)\n",
        "taskpkg.flows",
    )
    outer = namespace["outer"]
    assert isinstance(outer, moorage.Task)
    assert code_key(outer) == code_key(outer.fn)
    (inner,) = code_dependencies(outer)
    assert (inner.name, inner.kind) == ("inner", "task")


LOCAL_IMPORTS = """
def uses_imports(x):
    from moorage.keys.functions import qualified_name
    from .keys import functions
    import moorage.keys.encoding as encoding
    import moorage.keys.hashers
    return (
        qualified_name(x),
        functions.code_material(x),
        encoding.describe(x),
        moorage.keys.hashers.hasher_table(),
    )
"""


def test_imports_inside_the_function_are_seen() -> None:
    # Defined as if in moorage itself, so that moorage's functions are its package's.
    fn = _namespace(LOCAL_IMPORTS, "moorage.imagined")["uses_imports"]
    fn.__globals__["__package__"] = "moorage"
    deps = {d.name: d for d in code_dependencies(fn)}
    from moorage.keys import encoding, functions, hashers

    assert deps["moorage.keys.functions.qualified_name"].kind == "function"
    assert deps["moorage.keys.functions.code_material"].kind == "function"
    assert deps["moorage.keys.encoding.describe"].digest == source_key(encoding.describe)
    assert deps["moorage.keys.hashers.hasher_table"].digest == source_key(hashers.hasher_table)
    assert deps["moorage.keys.functions.qualified_name"].digest == source_key(
        functions.qualified_name
    )


DECORATED = """
import enum
import functools

class Mode(enum.Enum):
    FAST = 1

    def label(self):
        return self.name.lower()

@functools.lru_cache
def cached(x):
    return x + 1

def entry(x):
    return cached(x) + Mode.FAST.value
"""


def test_decorated_helpers_are_followed_through_their_wrappers() -> None:
    base = _namespace(DECORATED, "decopkg.mod")["entry"]
    deps = {d.name: d for d in code_dependencies(base)}
    assert deps["cached"].kind == "function", "the function lru_cache wraps"
    assert deps["Mode"].kind == "class"
    assert not any(d.used_by.startswith("enum.") for d in deps.values()), "enum's own code"
    edited = _namespace(DECORATED.replace("x + 1", "x + 2"), "decopkg.mod")["entry"]
    assert code_key(edited) != code_key(base)
    relabelled = _namespace(DECORATED.replace(".lower()", ".upper()"), "decopkg.mod")["entry"]
    assert code_key(relabelled) != code_key(base)


def test_results_are_memoized_per_function() -> None:
    fn = _make_scaler(7)
    assert code_dependencies(fn) is not code_dependencies(fn), "a fresh list each time"
    assert code_dependencies(fn) == code_dependencies(fn)
    assert code_module._MEMO[fn].key == code_key(fn)
    assert all(isinstance(d, CodeDependency) for d in code_dependencies(fn))
