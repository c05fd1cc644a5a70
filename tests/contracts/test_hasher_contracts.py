"""The hasher contract of `moorage.testing` on a third-party plugin's hasher (found
through its entry point) and on the built-in pandas hasher."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pytest

from moorage.testing import HasherContract


class TestExamplePluginHasher(HasherContract):
    @pytest.fixture
    def equal_groups(self) -> Sequence[Sequence[Any]]:
        from moorage_example import Money

        return [[Money(150, "eur"), Money.parse("1.50 EUR")], [Money(0, "usd"), Money(0, "USD")]]

    @pytest.fixture
    def different_values(self) -> Sequence[Any]:
        from moorage_example import Money

        return [Money(150, "EUR"), Money(150, "USD"), Money(151, "EUR")]


class TestPandasHasher(HasherContract):
    @pytest.fixture
    def equal_groups(self) -> Sequence[Sequence[Any]]:
        pd = pytest.importorskip("pandas")
        np = pytest.importorskip("numpy")
        frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, np.nan, 2.0]})
        from_fortran = pd.DataFrame(
            np.asfortranarray(np.array([[1.0, 0.5], [2.0, np.nan], [3.0, 2.0]])),
            columns=["a", "b"],
        ).astype({"a": "int64"})
        return [[frame, frame.copy(), from_fortran, pd.concat([frame.iloc[:2], frame.iloc[2:]])]]

    @pytest.fixture
    def different_values(self) -> Sequence[Any]:
        pd = pytest.importorskip("pandas")
        frame = pd.DataFrame({"a": [1, 2, 3], "b": [0.5, 1.5, 2.0]})
        return [
            frame,
            frame.rename(columns={"b": "c"}),
            frame.astype({"a": "int32"}),
            frame.set_axis([1, 2, 3]),
            frame.assign(b=[0.5, 1.5, 2.5]),
        ]
