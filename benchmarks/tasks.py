"""A decorated function's cache hits: in the same process, and from a second process.

The function is `benchmarks.task_subject.subject`; moorage decorates it with
``@moorage.task(persist_result=True, result_storage=<folder>)`` (the memory cache at
its default, on).

- same process: moorage against diskcache's ``Cache(<folder>).memoize()``. Each is
  called once for ``task_args`` arguments (computing them), then each round makes
  ``task_calls`` calls cycling through those arguments, all hits. The figure is the
  median over rounds of the mean time per call.
- second process: per round and library, process A computes the function for
  ``task_args`` arguments into a fresh folder; then process B imports the library,
  decorates the same function and times each of its ``task_args`` calls, each a lookup
  it never made before, served from storage. The figure is the median over rounds of
  B's median call; B's first call, which carries one-off setup (settings, plugins,
  the store), is a row of its own.
  moorage's and joblib's (``Memory(<folder>).cache``) process pairs alternate.
"""

from __future__ import annotations

from collections.abc import Callable

from benchmarks.config import Context
from benchmarks.harness import Comparison, Reading, Target, alternate, median, per_op_seconds
from benchmarks.task_subject import CALLS, subject
from benchmarks.workers import run_worker

__all__ = ["WORKLOADS"]

MOORAGE = "moorage task"
DISKCACHE = "diskcache memoize"
JOBLIB = "joblib Memory.cache"


def _same_process(ctx: Context) -> list[Comparison]:
    import diskcache  # type: ignore[import-untyped]

    import moorage

    args = ctx.sizes.task_args
    hf = moorage.task(persist_result=True, result_storage=str(ctx.folder("moorage")))(subject)
    cache = diskcache.Cache(str(ctx.folder("diskcache")))
    dc = cache.memoize()(subject)
    try:
        for fn in (hf, dc):
            for i in range(args):
                fn(i)
        computed = CALLS[0]
        samples = alternate(
            [
                (MOORAGE, lambda _r: per_op_seconds(lambda i: hf(i % args), ctx.sizes.task_calls)),
                (
                    DISKCACHE,
                    lambda _r: per_op_seconds(lambda i: dc(i % args), ctx.sizes.task_calls),
                ),
            ],
            ctx.sizes.rounds,
        )
        if CALLS[0] != computed:
            raise AssertionError(f"{CALLS[0] - computed} calls ran the function: not all hits")
    finally:
        cache.close()
    return [
        Comparison(
            "tasks",
            "decorated function, cache hit in the same process (time per call)",
            Reading(MOORAGE, median(samples[MOORAGE]), "s"),
            Reading(DISKCACHE, median(samples[DISKCACHE]), "s"),
            Target("<=", 0.5),
        )
    ]


def _second_process(ctx: Context) -> list[Comparison]:
    args = str(ctx.sizes.task_args)
    firsts: dict[str, list[float]] = {"moorage": [], "joblib": []}

    def pair(library: str) -> Callable[[int], float]:
        def run(round_index: int) -> float:
            folder = str(ctx.folder(library, f"round-{round_index}"))
            run_worker("benchmarks.task_worker", library, "compute", folder, args)
            answer = run_worker("benchmarks.task_worker", library, "lookup", folder, args)
            firsts[library].append(float(answer["first"]))
            return float(answer["median"])

        return run

    samples = alternate(
        [("moorage", pair("moorage")), ("joblib", pair("joblib"))], ctx.sizes.task_rounds
    )
    return [
        Comparison(
            "tasks",
            "decorated function, hit from a second process (median call)",
            Reading(MOORAGE, median(samples["moorage"]), "s"),
            Reading(JOBLIB, median(samples["joblib"]), "s"),
            Target("<=", 0.3),
        ),
        Comparison(
            "tasks",
            "decorated function, second process's first call (includes setup)",
            Reading(MOORAGE, median(firsts["moorage"]), "s"),
            Reading(JOBLIB, median(firsts["joblib"]), "s"),
            Target("<=", 5.0),
        ),
    ]


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {
    "tasks-same-process": _same_process,
    "tasks-second-process": _second_process,
}
