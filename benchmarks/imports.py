"""Import time: ``import moorage.results`` against ``import prefect.results``.

Each run is a fresh interpreter that times only the import statement::

    python -c "import time; t = time.perf_counter(); import moorage.results; print(...)"

The two alternate, ``import_runs`` times each, after one untimed run each (which writes
any missing bytecode caches, so no run pays for compiling, and which runs under the
network guard when the run has one). The figure is the median.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable

from benchmarks.config import Context
from benchmarks.harness import Comparison, Reading, Target, WorkloadFailed, alternate, median
from benchmarks.workers import worker_env

__all__ = ["WORKLOADS", "import_seconds", "run_python"]

MODULES = {"moorage": "moorage.results", "Prefect 3.9.1": "prefect.results"}


def import_seconds(module: str, *, warm_up: bool = False) -> float:
    """Seconds a fresh interpreter takes to run ``import <module>``, in the run's
    environment and without the checkout on its path (nothing more to search).

    ``warm_up``: the untimed first run, which also guards the network when the run does
    (an audit hook would slow the timed runs' imports)."""
    code = f"import time; t = time.perf_counter(); import {module}; print(time.perf_counter() - t)"
    done = run_python(code, what=f"import {module}", warm_up=warm_up)
    return float(done.stdout.strip().splitlines()[-1])


def run_python(
    code: str, *, what: str, warm_up: bool = False, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Run ``python -c code`` in a fresh interpreter with ``env`` (default: the run's
    environment, without the checkout on the path); `WorkloadFailed` naming ``what`` if
    it fails.

    ``warm_up``: the untimed first run, which also writes any missing bytecode caches and
    guards the network when the run does (the checkout is then put on the path for the
    guard; an audit hook would slow the timed runs, so they go without)."""
    env = dict(os.environ) if env is None else env
    if warm_up:
        code = f"from benchmarks.isolation import guard_if_asked; guard_if_asked(); {code}"
        env = {**env, "PYTHONPATH": worker_env()["PYTHONPATH"]}
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    if done.returncode != 0:
        raise WorkloadFailed(f"{what} failed:\n{done.stderr[-3000:]}")
    return done


def _importer(module: str) -> Callable[[int], float]:
    def run(_round: int) -> float:
        return import_seconds(module)

    return run


def _imports(ctx: Context) -> list[Comparison]:
    for module in MODULES.values():
        import_seconds(module, warm_up=True)
    samples = alternate(
        [(name, _importer(module)) for name, module in MODULES.items()], ctx.sizes.import_runs
    )
    moorage, prefect = (Reading(name, median(samples[name]), "s") for name in MODULES)
    return [
        Comparison(
            "imports",
            "import of the results module (fresh interpreter)",
            moorage,
            prefect,
            Target("<=", 0.15),
        )
    ]


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {"imports": _imports}
