"""Running a piece of a workload in a fresh Python process and reading its answer.

A worker module prints one JSON object as its last line of output; `run_worker` starts
it with this interpreter (``python -m benchmarks.<module> ...``), in the run's working
directory and environment (see `benchmarks.isolation`), and returns that object.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from typing import Any

from benchmarks.harness import WorkloadFailed
from benchmarks.servers import ROOT

__all__ = ["reply", "run_worker", "worker_env"]


def worker_env() -> dict[str, str]:
    """The environment of a worker: this process's, with the checkout importable."""
    env = dict(os.environ)
    paths = [str(ROOT), *filter(None, env.get("PYTHONPATH", "").split(os.pathsep))]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(paths))
    return env


def run_worker(module: str, *args: str, timeout: float = 300) -> dict[str, Any]:
    """Run ``python -m module args...``; its last line of output, parsed as JSON.

    A worker that fails, times out or prints no JSON raises `WorkloadFailed` quoting
    its error output.
    """
    command = [sys.executable, "-m", module, *args]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, env=worker_env(), timeout=timeout
        )
    except subprocess.TimeoutExpired:
        raise WorkloadFailed(f"{' '.join(command)} took more than {timeout:.0f} s") from None
    lines = done.stdout.strip().splitlines()
    if done.returncode != 0 or not lines:
        raise WorkloadFailed(
            f"{' '.join(command)} exited with {done.returncode}:\n{done.stderr[-3000:]}"
        )
    try:
        answer: dict[str, Any] = json.loads(lines[-1])
    except json.JSONDecodeError:
        raise WorkloadFailed(f"{module} printed no JSON: {lines[-1][:200]!r}") from None
    return answer


def reply(answer: dict[str, Any]) -> None:
    """In a worker: print the answer for `run_worker`."""
    print(json.dumps(answer), flush=True)
