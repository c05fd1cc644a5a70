"""Rounds, medians, ratios and targets: the arithmetic every workload shares.

A workload runs its contenders in alternation (A B C A B C ...) for a number of rounds;
each run of a contender yields one *sample* (seconds per operation, say). A contender's
figure is the median of its samples, and each figure is compared with a baseline measured
in the same run as a *ratio*: the subject's figure divided by the baseline's. A `Target`
says which ratios are good enough ("at least 0.8x", "at most 0.5x").
"""

from __future__ import annotations

import gc
import logging
import math
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

__all__ = [
    "Comparison",
    "Reading",
    "Target",
    "WorkloadFailed",
    "alternate",
    "median",
    "normalised",
    "per_op_seconds",
    "rate",
    "ratio",
    "throughput",
]

#: Units a figure can be in. Higher is better for the rates, lower for the rest.
Unit = Literal["ops/s", "MB/s", "s", "bytes"]

log = logging.getLogger("benchmarks")

#: How far a chart bar may go either way of the target (normalised 1.0).
CHART_CLIP = (0.01, 100.0)


class WorkloadFailed(RuntimeError):
    """A workload could not produce its figures (a contender raised, a server failed)."""


def median(samples: Sequence[float]) -> float:
    """The median of ``samples``; a `ValueError` for no samples or a NaN among them."""
    if not samples:
        raise ValueError("no samples: a median needs at least one")
    if any(math.isnan(s) for s in samples):
        raise ValueError(f"a sample is NaN: {list(samples)!r}")
    return float(statistics.median(samples))


def ratio(subject: float, baseline: float) -> float:
    """``subject / baseline``; infinite for a zero baseline under a positive subject."""
    if baseline < 0 or subject < 0:
        raise ValueError(f"figures are never negative: {subject!r} / {baseline!r}")
    if baseline == 0:
        return 0.0 if subject == 0 else math.inf
    return subject / baseline


@dataclass(frozen=True)
class Target:
    """A bound on a ratio: ``Target(">=", 0.8)`` is met by 0.8 and above."""

    op: Literal[">=", "<="]
    value: float

    def __post_init__(self) -> None:
        if self.op not in (">=", "<="):
            raise ValueError(f"a target is '>=' or '<=', not {self.op!r}")
        if not self.value > 0:
            raise ValueError(f"a target's value must be positive, got {self.value!r}")

    def met(self, achieved: float) -> bool:
        if math.isnan(achieved):
            return False
        return achieved >= self.value if self.op == ">=" else achieved <= self.value

    def __str__(self) -> str:
        return f"{'≥' if self.op == '>=' else '≤'} {self.value:g}x"


def normalised(achieved: float, target: Target) -> float:
    """How well ``achieved`` does against ``target``, where 1.0 is the target exactly and
    more is better: achieved/target for ">=", target/achieved for "<="; clipped to
    `CHART_CLIP` so a zero or infinite ratio still draws."""
    if target.op == ">=":
        value = achieved / target.value
    else:
        value = math.inf if achieved == 0 else target.value / achieved
    low, high = CHART_CLIP
    return min(max(value, low), high)


@dataclass(frozen=True)
class Reading:
    """One contender's figure: ``value`` in ``unit`` (a median), and the median time of
    one operation where that helps a reader (shown beside rates)."""

    name: str
    value: float
    unit: Unit
    seconds: float | None = None


def rate(name: str, seconds_per_op: Sequence[float]) -> Reading:
    """Operations per second from samples of seconds per operation (the median's)."""
    seconds = median(seconds_per_op)
    return Reading(name, 1.0 / seconds, "ops/s", seconds)


def throughput(name: str, seconds: Sequence[float], nbytes: int) -> Reading:
    """MB/s (10^6 bytes) for moving ``nbytes`` in the median of ``seconds``."""
    took = median(seconds)
    return Reading(name, nbytes / 1e6 / took, "MB/s", took)


@dataclass(frozen=True)
class Comparison:
    """A row of the report: ``subject`` against ``baseline``, with an optional target on
    their ratio. Rows without a target are information."""

    workload: str
    label: str
    subject: Reading
    baseline: Reading
    target: Target | None = None
    note: str = ""

    @property
    def ratio(self) -> float:
        return ratio(self.subject.value, self.baseline.value)

    @property
    def met(self) -> bool | None:
        """True or False against the target; None for an information row."""
        return None if self.target is None else self.target.met(self.ratio)


def per_op_seconds(op: Callable[[int], object], count: int) -> float:
    """Run ``op(0) ... op(count - 1)`` back to back; the mean seconds per call.

    Garbage from earlier batches is collected first so one contender does not pay for
    another's; the collector stays on during the batch, as in real use.
    """
    if count < 1:
        raise ValueError(f"a batch needs at least one operation, got {count}")
    gc.collect()
    start = time.perf_counter()
    for i in range(count):
        op(i)
    return (time.perf_counter() - start) / count


def alternate(
    contenders: Sequence[tuple[str, Callable[[int], float]]], rounds: int
) -> dict[str, list[float]]:
    """Call each contender once per round, in the given order, for ``rounds`` rounds
    (A B C A B C ...). A contender is called with the round's index and returns one
    sample. Returns each contender's samples in round order."""
    if rounds < 1:
        raise ValueError(f"at least one round, got {rounds}")
    names = [name for name, _ in contenders]
    if len(set(names)) != len(names):
        raise ValueError(f"contender names must differ: {names!r}")
    samples: dict[str, list[float]] = {name: [] for name in names}
    for round_index in range(rounds):
        for name, run in contenders:
            samples[name].append(run(round_index))
    for name, values in samples.items():
        log.debug("samples of %s: %s", name, ", ".join(f"{v:.4g}" for v in values))
    return samples
