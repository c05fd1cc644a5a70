"""The arithmetic of a run: medians, ratios, targets, normalisation, alternation."""

from __future__ import annotations

import math

import pytest

from benchmarks.harness import (
    CHART_CLIP,
    Comparison,
    Reading,
    Target,
    alternate,
    median,
    normalised,
    per_op_seconds,
    rate,
    ratio,
    throughput,
)


def test_median_of_odd_and_even_counts() -> None:
    assert median([5.0, 1.0, 3.0]) == 3.0
    assert median([4.0, 1.0, 3.0, 2.0]) == 2.5
    assert median([7.0]) == 7.0


def test_median_refuses_no_samples_and_nan() -> None:
    with pytest.raises(ValueError, match="no samples"):
        median([])
    with pytest.raises(ValueError, match="NaN"):
        median([1.0, math.nan, 2.0])


def test_ratio_divides_subject_by_baseline() -> None:
    assert ratio(3.0, 4.0) == 0.75
    assert ratio(0.0, 5.0) == 0.0
    assert ratio(0.0, 0.0) == 0.0
    assert ratio(2.0, 0.0) == math.inf
    with pytest.raises(ValueError, match="never negative"):
        ratio(-1.0, 2.0)


@pytest.mark.parametrize(
    ("op", "value", "achieved", "met"),
    [
        (">=", 0.8, 0.8, True),
        (">=", 0.8, 0.79, False),
        (">=", 3, 12.0, True),
        ("<=", 0.5, 0.5, True),
        ("<=", 0.5, 0.51, False),
        ("<=", 1.2, 0.0, True),
        (">=", 0.8, math.nan, False),
        ("<=", 0.8, math.nan, False),
    ],
)
def test_target_is_met_on_its_side_of_the_bound(
    op: str, value: float, achieved: float, met: bool
) -> None:
    assert Target(op, value).met(achieved) is met  # type: ignore[arg-type]


def test_target_refuses_unknown_ops_and_non_positive_bounds() -> None:
    with pytest.raises(ValueError, match="'>=' or '<='"):
        Target("==", 1.0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="positive"):
        Target(">=", 0)


def test_target_reads_as_a_bound() -> None:
    assert str(Target(">=", 0.8)) == "≥ 0.8x"
    assert str(Target("<=", 1.2)) == "≤ 1.2x"


def test_normalised_puts_the_target_at_one_and_better_above() -> None:
    assert normalised(1.6, Target(">=", 0.8)) == pytest.approx(2.0)
    assert normalised(0.4, Target(">=", 0.8)) == pytest.approx(0.5)
    assert normalised(0.25, Target("<=", 0.5)) == pytest.approx(2.0)
    assert normalised(1.0, Target("<=", 0.5)) == pytest.approx(0.5)
    assert normalised(0.8, Target(">=", 0.8)) == pytest.approx(1.0)


def test_normalised_clips_zero_and_huge_ratios() -> None:
    low, high = CHART_CLIP
    assert normalised(0.0, Target("<=", 0.01)) == high
    assert normalised(1e9, Target(">=", 1)) == high
    assert normalised(0.0, Target(">=", 1)) == low


def test_comparison_ratio_and_verdict() -> None:
    fast = Reading("moorage", 900.0, "ops/s")
    slow = Reading("baseline", 1000.0, "ops/s")
    assert Comparison("w", "x", fast, slow, Target(">=", 0.8)).ratio == pytest.approx(0.9)
    assert Comparison("w", "x", fast, slow, Target(">=", 0.8)).met is True
    assert Comparison("w", "x", fast, slow, Target(">=", 1.0)).met is False
    assert Comparison("w", "x", fast, slow).met is None


def test_rate_and_throughput_come_from_the_median_time() -> None:
    reading = rate("a", [0.002, 0.001, 0.004])
    assert reading.value == pytest.approx(500.0)
    assert reading.seconds == pytest.approx(0.002)
    assert reading.unit == "ops/s"
    moved = throughput("b", [0.5, 0.25, 1.0], 256_000_000)
    assert moved.value == pytest.approx(512.0)
    assert moved.unit == "MB/s"


def test_alternate_runs_contenders_in_turn_each_round() -> None:
    calls: list[tuple[str, int]] = []

    def contender(name: str, sample: float):  # type: ignore[no-untyped-def]
        def run(round_index: int) -> float:
            calls.append((name, round_index))
            return sample + round_index

        return run

    samples = alternate([("A", contender("A", 1.0)), ("B", contender("B", 10.0))], 3)
    assert calls == [("A", 0), ("B", 0), ("A", 1), ("B", 1), ("A", 2), ("B", 2)]
    assert samples == {"A": [1.0, 2.0, 3.0], "B": [10.0, 11.0, 12.0]}


def test_alternate_refuses_duplicate_names_and_no_rounds() -> None:
    with pytest.raises(ValueError, match="differ"):
        alternate([("A", lambda r: 1.0), ("A", lambda r: 2.0)], 1)
    with pytest.raises(ValueError, match="at least one round"):
        alternate([("A", lambda r: 1.0)], 0)


def test_per_op_seconds_calls_the_op_once_per_index() -> None:
    seen: list[int] = []
    seconds = per_op_seconds(seen.append, 4)
    assert seen == [0, 1, 2, 3]
    assert seconds >= 0
    with pytest.raises(ValueError, match="at least one"):
        per_op_seconds(seen.append, 0)
