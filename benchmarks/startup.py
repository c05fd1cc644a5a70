"""Start-up: the wall time of a whole ``moorage`` command, against ``python -c pass``.

Each run is a fresh process started the way a user starts one (the ``moorage`` script
installed beside this interpreter, as docs/cli.md documents), timed from before
`subprocess.run` to after the process has exited:

- ``moorage --help``;
- ``moorage ls`` on an empty local store in the run's folder (set by
  ``MOORAGE_LOCAL_STORAGE_PATH``, the configured store's own setting).

``python -c pass`` under the same environment is the baseline: the cost of any Python
process. The command and the baseline alternate, ``import_runs`` times each, after one
untimed run each (which writes missing bytecode caches and, when the run guards the
network, runs the command's code under the guard; see `benchmarks.imports.run_python`).
The figure is the median.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from benchmarks.config import Context
from benchmarks.harness import Comparison, Reading, Target, WorkloadFailed, alternate, median
from benchmarks.imports import run_python

__all__ = ["WORKLOADS", "moorage_script", "process_seconds"]

BASELINE = "python -c pass"


def moorage_script() -> Path:
    """The ``moorage`` console script of this interpreter's environment."""
    script = Path(sys.executable).parent / ("moorage.exe" if os.name == "nt" else "moorage")
    if not script.exists():
        raise WorkloadFailed(f"no moorage script beside {sys.executable}: is moorage installed?")
    return script


def process_seconds(command: list[str], env: dict[str, str]) -> float:
    """Wall seconds from starting ``command`` to its exit; `WorkloadFailed` if it fails."""
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        failed = f"{' '.join(command)} exited {done.returncode}"
        raise WorkloadFailed(f"{failed}:\n{done.stderr[-3000:]}")
    return seconds


def _timer(command: list[str], env: dict[str, str]) -> Callable[[int], float]:
    def run(_round: int) -> float:
        return process_seconds(command, env)

    return run


def _compare(ctx: Context, label: str, args: list[str], env: dict[str, str]) -> Comparison:
    subject = f"moorage {' '.join(args)}"
    # The untimed runs: the command's own code under the network guard, then the baseline.
    run_python(
        f"import sys; sys.argv = ['moorage', *{args!r}]; from moorage.cli.main import main; "
        "main(prog_name='moorage')",
        what=subject,
        warm_up=True,
        env=env,
    )
    run_python("pass", what=BASELINE, warm_up=True, env=env)
    samples = alternate(
        [
            (subject, _timer([str(moorage_script()), *args], env)),
            (BASELINE, _timer([sys.executable, "-c", "pass"], env)),
        ],
        ctx.sizes.import_runs,
    )
    return Comparison(
        "startup",
        label,
        Reading(subject, median(samples[subject]), "s"),
        Reading(BASELINE, median(samples[BASELINE]), "s"),
        Target("<=", 3.0),
    )


def _help(ctx: Context) -> list[Comparison]:
    return [_compare(ctx, "`moorage --help` (whole process)", ["--help"], dict(os.environ))]


def _ls(ctx: Context) -> list[Comparison]:
    store = ctx.folder("empty-store")
    if any(store.iterdir()):
        raise WorkloadFailed(f"the store {store} should be empty")
    env = {**os.environ, "MOORAGE_LOCAL_STORAGE_PATH": str(store)}
    return [_compare(ctx, "`moorage ls` on an empty local store (whole process)", ["ls"], env)]


#: The parts of this family, by the name ``--only`` takes.
WORKLOADS: dict[str, Callable[[Context], list[Comparison]]] = {
    "startup-cli-help": _help,
    "startup-cli-ls": _ls,
}
