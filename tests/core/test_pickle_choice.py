"""The pickle serializer pickles with the standard (C) pickler where that makes the pickle
cloudpickle would, and with cloudpickle where only it pickles as it should: lambdas,
local functions, what ``__main__`` defines, modules registered by value."""

from __future__ import annotations

import pickle
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cloudpickle
import pytest

from moorage.serializers import pickle_serializer
from moorage.serializers.pickle_serializer import PickleSerializer

PLAIN: dict[str, Any] = {"id": 1, "name": "x", "scores": [0.5, 1.5], "raw": b"\x00" * 10}


def test_plain_data_is_pickled_by_the_standard_pickler() -> None:
    parts = PickleSerializer().dump_parts(PLAIN)
    assert b"".join(parts) == pickle.dumps(PLAIN, protocol=pickle.HIGHEST_PROTOCOL)


def test_a_lambda_falls_back_to_cloudpickle() -> None:
    square = lambda x: x * x  # noqa: E731
    data = PickleSerializer().dumps({"f": square})
    assert pickle.loads(data)["f"](7) == 49


def test_a_local_class_instance_falls_back_to_cloudpickle() -> None:
    class Local:
        def __init__(self) -> None:
            self.v = 3

    data = PickleSerializer().dumps(Local())
    assert pickle.loads(data).v == 3


@pytest.fixture
def by_value_module(tmp_path: Path) -> Iterator[Any]:
    (tmp_path / "byvalue_mod.py").write_text("def double(x):\n    return 2 * x\n")
    sys.path.insert(0, str(tmp_path))
    try:
        import byvalue_mod  # type: ignore[import-not-found]

        cloudpickle.register_pickle_by_value(byvalue_mod)
        yield byvalue_mod
    finally:
        cloudpickle.unregister_pickle_by_value(byvalue_mod)
        sys.path.remove(str(tmp_path))
        sys.modules.pop("byvalue_mod", None)


def test_modules_registered_by_value_still_travel_by_value(by_value_module: Any) -> None:
    data = PickleSerializer().dumps(by_value_module.double)
    # By value: the pickle holds the function's code, not a reference to its module.
    assert b"byvalue_mod\x94\x8c\x06double" not in data
    sys.modules.pop("byvalue_mod")
    assert pickle.loads(data)(21) == 42


def test_the_standard_pickler_output_is_scanned_only_below_frame_size() -> None:
    # A large bytes value is written apart from the frames: not scanned, not copied.
    big = b"__main__" * (1 << 15)
    parts = PickleSerializer().dump_parts(big)
    assert any(part is big for part in parts)
    assert len(big) >= pickle_serializer._FRAMES_BELOW


def test_a_function_of_main_travels_by_value(tmp_path: Path) -> None:
    # Written by a script whose __main__ defines the function; read by another process
    # that has never seen it. A pickle by reference (the standard pickler's) would fail.
    root = tmp_path / "store"
    writer = textwrap.dedent(
        f"""
        from moorage import ResultStore

        def triple(x):
            return 3 * x

        ResultStore(result_storage={str(root)!r}).write({{"f": triple}}, key="fn")
        """
    )
    reader = textwrap.dedent(
        f"""
        from moorage import ResultStore

        print(ResultStore(result_storage={str(root)!r}).read("fn").result["f"](5))
        """
    )
    for code in (writer, reader):
        done = subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
        )
        assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "15"
