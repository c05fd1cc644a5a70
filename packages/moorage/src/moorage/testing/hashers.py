"""`HasherContract`: the tests every hasher a plugin registers must pass.

Give it groups of values that must share a key (the same value built in different
ways) and values that must all have different keys; it checks both here and in a fresh
interpreter with another ``PYTHONHASHSEED`` (so the hasher must be registered through
the plugin's ``register_hashers`` hook, not in the test process alone), that a value of
each group is hashed by a registered hasher rather than by its pickled state, and that
hashing leaves the value as it was.

::

    class TestMoneyHasher(HasherContract):
        @pytest.fixture
        def equal_groups(self):
            return [[Money(1, "EUR"), Money.parse("1 EUR")]]

        @pytest.fixture
        def different_values(self):
            return [Money(1, "EUR"), Money(1, "USD"), Money(2, "EUR")]

The values must pickle (they are sent to the fresh interpreter that way).
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from moorage.keys.encoding import stable_hash
from moorage.keys.hashers import hasher_table

__all__ = ["HasherContract"]

_CHILD = """
import pickle, sys
from moorage.keys import stable_hash
groups, different = pickle.loads(open(sys.argv[1], "rb").read())
print([[stable_hash(v) for v in group] for group in groups])
print([stable_hash(v) for v in different])
"""


class HasherContract:
    """Subclass it and override both fixtures (see the module docstring)."""

    @pytest.fixture
    def equal_groups(self) -> Sequence[Sequence[Any]]:
        raise NotImplementedError("override equal_groups: lists of values with one key each")

    @pytest.fixture
    def different_values(self) -> Sequence[Any]:
        raise NotImplementedError("override different_values: values with distinct keys")

    def test_equal_values_share_a_key(self, equal_groups: Sequence[Sequence[Any]]) -> None:
        for group in equal_groups:
            keys = {stable_hash(value) for value in group}
            assert len(keys) == 1, f"one group of equal values got {len(keys)} keys: {group!r}"

    def test_different_values_get_different_keys(self, different_values: Sequence[Any]) -> None:
        keys = [stable_hash(value) for value in different_values]
        assert len(set(keys)) == len(keys), "two different values share a key"

    def test_a_registered_hasher_hashes_them(
        self, equal_groups: Sequence[Sequence[Any]], different_values: Sequence[Any]
    ) -> None:
        for value in [*(group[0] for group in equal_groups), *different_values]:
            assert hasher_table().find(value) is not None, (
                f"no hasher is registered for {type(value).__qualname__}: it would be keyed "
                "by its pickled state"
            )

    def test_hashing_leaves_the_value_alone(self, different_values: Sequence[Any]) -> None:
        for value in different_values:
            before = pickle.dumps(value)
            stable_hash(value)
            assert pickle.dumps(value) == before, f"hashing changed {value!r}"

    def test_keys_are_the_same_in_a_fresh_interpreter(
        self,
        equal_groups: Sequence[Sequence[Any]],
        different_values: Sequence[Any],
        tmp_path: Path,
    ) -> None:
        shipped = tmp_path / "values.pickle"
        shipped.write_bytes(pickle.dumps((equal_groups, different_values)))
        done = subprocess.run(
            [sys.executable, "-c", _CHILD, str(shipped)],
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
            env={**os.environ, "PYTHONHASHSEED": "271828"},
        )
        assert done.returncode == 0, done.stderr
        groups_there, different_there = done.stdout.strip().splitlines()[-2:]
        assert groups_there == str([[stable_hash(v) for v in g] for g in equal_groups])
        assert different_there == str([stable_hash(v) for v in different_values])
