"""Which workloads there are, running a selection of them, and what came of each.

A workload is a function ``(Context) -> list[Comparison]``. Workloads come in families,
one module each; ``--only`` takes a family's name (every workload in it) or a single
workload's. A workload that raises, or returns no finite figure, is a failure: the run
goes on with the others and reports it at the end.
"""

from __future__ import annotations

import importlib
import math
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from benchmarks.config import Context
from benchmarks.harness import Comparison

__all__ = [
    "FAMILIES",
    "Outcome",
    "Workload",
    "all_workloads",
    "family_workloads",
    "run_workloads",
    "select",
]

Workload = Callable[[Context], list[Comparison]]

#: Family name -> the module that holds its ``WORKLOADS``, in the order a run takes them.
FAMILIES = {
    "local": "benchmarks.local",
    "large": "benchmarks.large",
    "s3": "benchmarks.s3",
    "retention": "benchmarks.retention",
    "redis": "benchmarks.redis_locks",
    "tasks": "benchmarks.tasks",
    "hashing": "benchmarks.hashing",
    "imports": "benchmarks.imports",
    "startup": "benchmarks.startup",
}


def family_workloads(family: str) -> dict[str, Workload]:
    """The workloads of one family, by name."""
    workloads: dict[str, Workload] = importlib.import_module(FAMILIES[family]).WORKLOADS
    return workloads


def all_workloads() -> dict[str, Workload]:
    """Every workload, by name, in run order."""
    return {name: fn for family in FAMILIES for name, fn in family_workloads(family).items()}


def select(only: Sequence[str]) -> dict[str, Workload]:
    """The workloads named in ``only`` (families or single workloads), in run order;
    all of them for an empty ``only``. Unknown names raise `ValueError` listing the
    known ones."""
    everything = all_workloads()
    if not only:
        return everything
    wanted: set[str] = set()
    for name in only:
        if name in FAMILIES:
            wanted.update(family_workloads(name))
        elif name in everything:
            wanted.add(name)
        else:
            known = ", ".join([*FAMILIES, *everything])
            raise ValueError(f"no workload or family named {name!r}; known: {known}")
    return {name: fn for name, fn in everything.items() if name in wanted}


@dataclass
class Outcome:
    """What one workload gave: its rows, or the error that stopped it."""

    name: str
    rows: list[Comparison] = field(default_factory=list)
    error: str | None = None
    seconds: float = 0.0

    @property
    def failed(self) -> bool:
        return self.error is not None


def _figures_are_finite(rows: Sequence[Comparison]) -> bool:
    return all(
        math.isfinite(row.subject.value) and math.isfinite(row.baseline.value) for row in rows
    )


def run_workloads(
    workloads: dict[str, Workload], context_for: Callable[[str], Context]
) -> list[Outcome]:
    """Run each workload with its own context; never let one failure stop the rest."""
    outcomes = []
    for name, workload in workloads.items():
        context = context_for(name)
        context.log.info("%s: running", name)
        start = time.perf_counter()
        outcome = Outcome(name)
        try:
            outcome.rows = workload(context)
            if not outcome.rows:
                outcome.error = "produced no figure"
            elif not _figures_are_finite(outcome.rows):
                outcome.error = "produced a figure that is not a finite number"
        except Exception:
            outcome.error = traceback.format_exc()
        outcome.seconds = time.perf_counter() - start
        if outcome.failed:
            context.log.error("%s: FAILED after %.1f s: %s", name, outcome.seconds, outcome.error)
        else:
            context.log.info("%s: %d figures in %.1f s", name, len(outcome.rows), outcome.seconds)
        outcomes.append(outcome)
    return outcomes
