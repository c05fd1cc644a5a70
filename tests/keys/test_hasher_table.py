"""The table of hashers (spec §5, "register_hashers"): types, names and predicates,
which registration wins, plugins registering through the hook, and laziness."""

from __future__ import annotations

import subprocess
import sys
import types
from dataclasses import dataclass
from typing import Any

import pytest

import moorage
from moorage.errors import UnhashableValue
from moorage.keys import register_hasher, stable_hash
from moorage.keys.encoding import describe
from moorage.keys.hashers import HasherTable, hasher_table
from moorage.plugins.registry import get_registry


class Grid:
    """A type with no stable state of its own: ``cells`` is rebuilt on each access."""

    def __init__(self, cells: list[int], scratch: object | None = None) -> None:
        self.cells = cells
        self.scratch = scratch if scratch is not None else object()


class FineGrid(Grid):
    pass


def by_cells(grid: Grid) -> Any:
    return tuple(grid.cells)


def test_without_a_hasher_identity_state_is_refused() -> None:
    with pytest.raises(UnhashableValue, match="identity"):
        stable_hash(Grid([1, 2]))


def test_a_hasher_registered_for_a_type_decides_its_key() -> None:
    register_hasher(Grid, by_cells)
    assert stable_hash(Grid([1, 2])) == stable_hash(Grid([1, 2]))
    assert stable_hash(Grid([1, 2])) != stable_hash(Grid([2, 1]))
    assert stable_hash(FineGrid([1, 2])) != stable_hash(Grid([1, 2])), "tagged with the type"
    assert stable_hash(Grid([1, 2])) != stable_hash((1, 2)), "never equal to its representation"
    assert "by_cells" not in describe(Grid([1]))
    assert "Grid hasher" in describe(Grid([1]))


def test_the_most_specific_type_wins_then_the_latest_registration() -> None:
    register_hasher(Grid, by_cells)
    register_hasher(FineGrid, lambda grid: "fine")
    assert stable_hash(FineGrid([1])) == stable_hash(FineGrid([2])), "the subclass's hasher"
    assert stable_hash(Grid([1])) != stable_hash(Grid([2]))
    register_hasher(Grid, lambda grid: "coarse")
    assert stable_hash(Grid([1])) == stable_hash(Grid([2])), "the later registration"


def test_a_name_waits_for_its_module_and_imports_nothing() -> None:
    module = types.ModuleType("fake_geometry")
    shape = type("Shape", (Grid,), {"__module__": "fake_geometry"})
    before = HasherTable()
    before.register("fake_geometry.Shape", by_cells)
    assert before.find(shape([1])) is None, "the module is not imported: nothing resolves"
    module.Shape = shape  # type: ignore[attr-defined]
    sys.modules["fake_geometry"] = module
    try:
        after = HasherTable()
        after.register("fake_geometry.Shape", by_cells)
        entry = after.find(shape([1]))
        assert entry is not None
        assert entry.hasher() is by_cells
    finally:
        del sys.modules["fake_geometry"]


def test_a_hasher_given_by_import_path_is_imported_on_first_use() -> None:
    table = HasherTable()
    table.register(Grid, f"{__name__}:by_cells")
    entry = table.find(Grid([3]))
    assert entry is not None
    assert entry.hasher() is by_cells


def test_predicates_are_asked_when_no_type_matches() -> None:
    register_hasher(lambda value: isinstance(value, Grid) and len(value.cells) > 2, by_cells)
    assert stable_hash(Grid([1, 2, 3])) == stable_hash(Grid([1, 2, 3]))
    with pytest.raises(UnhashableValue):
        stable_hash(Grid([1]))  # the predicate declined: refused as before


def test_a_failing_hasher_is_named_in_the_error() -> None:
    def broken(grid: Grid) -> Any:
        raise ValueError("no cells today")

    register_hasher(Grid, broken)
    with pytest.raises(UnhashableValue, match=r"Grid hasher.*no cells today"):
        stable_hash({"grid": Grid([1])})


@pytest.mark.parametrize(
    ("matches", "hasher"),
    [(Grid, 42), (Grid, "no_colon"), ("NoDot", by_cells), (3, by_cells)],
)
def test_bad_registrations_are_refused(matches: Any, hasher: Any) -> None:
    with pytest.raises(TypeError):
        HasherTable().register(matches, hasher)


class GridPlugin:
    """A plugin object with a real pluggy hook implementation."""

    @moorage.hookimpl
    def register_hashers(self, register: Any) -> None:
        register(Grid, by_cells)
        register("some_library.Frame", "some_library.hashing:frame")


def test_a_plugin_registers_hashers_through_the_hook() -> None:
    registry = get_registry()
    info = registry.add_plugin(GridPlugin(), name="grid-plugin")
    assert info is not None
    assert info.registers["hasher"] == [f"{__name__}.Grid", "some_library.Frame"]
    from moorage.keys.hashers import forget_hashers

    forget_hashers()  # the table is built from the registry again
    assert stable_hash(Grid([1, 2])) == stable_hash(Grid([1, 2]))
    assert "grid-plugin" in describe(Grid([1]))


class BadHasherPlugin:
    @moorage.hookimpl
    def register_hashers(self, register: Any) -> None:
        register(Grid, 17)


def test_a_plugin_with_a_bad_hasher_is_skipped_with_a_warning() -> None:
    registry = get_registry()
    with pytest.warns(RuntimeWarning, match="bad-hasher.*skipped.*callable"):
        assert registry.add_plugin(BadHasherPlugin(), name="bad-hasher") is None
    assert all(plugin != "bad-hasher" for _, _, plugin in registry.hashers)


def test_the_built_ins_are_registered_by_the_core_plugin() -> None:
    core = next(info for info in get_registry().plugins if info.name == "moorage")
    hashers = core.registers["hasher"]
    for name in ("numpy.ndarray", "pandas.DataFrame", "polars.DataFrame", "pyarrow.Table"):
        assert name in hashers


@dataclass
class Point:
    x: int
    y: int


def test_hashing_built_in_and_plain_values_loads_no_data_library() -> None:
    code = (
        "import sys, dataclasses\n"
        "from moorage.keys import stable_hash\n"
        "@dataclasses.dataclass\n"
        "class P:\n    x: int\n"
        "stable_hash({'a': [1, 2.5, 'x'], 'p': P(1)})\n"
        "loaded = [m for m in ('numpy', 'pandas', 'polars', 'pyarrow') if m in sys.modules]\n"
        "print(','.join(loaded) or 'none')\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    assert done.stdout.strip().splitlines()[-1] == "none"


def test_the_table_is_one_per_process_until_the_registry_resets() -> None:
    assert hasher_table() is hasher_table()
    register_hasher(Point, lambda p: "all points alike")
    assert stable_hash(Point(1, 2)) == stable_hash(Point(3, 4))
    from moorage.plugins.registry import reset_registry

    reset_registry()
    assert stable_hash(Point(1, 2)) != stable_hash(Point(3, 4)), "back to the fields"
