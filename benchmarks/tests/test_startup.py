"""The start-up family: timing whole processes, and running the command users run."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from benchmarks.harness import WorkloadFailed
from benchmarks.imports import run_python
from benchmarks.startup import WORKLOADS, moorage_script, process_seconds


def test_the_family_times_help_and_ls() -> None:
    assert list(WORKLOADS) == ["startup-cli-help", "startup-cli-ls"]


def test_moorage_script_is_the_installed_command() -> None:
    done = subprocess.run(
        [str(moorage_script()), "--help"], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    assert "ls " in done.stdout
    assert "doctor " in done.stdout


def test_process_seconds_times_a_process_and_refuses_a_failed_one() -> None:
    assert process_seconds([sys.executable, "-c", "pass"], dict(os.environ)) > 0
    with pytest.raises(WorkloadFailed, match="exited 3"):
        process_seconds([sys.executable, "-c", "raise SystemExit(3)"], dict(os.environ))


def test_run_python_uses_the_given_environment_and_reports_failures() -> None:
    env = {**os.environ, "BENCHMARK_PROBE": "seen"}
    code = "import os; print(os.environ['BENCHMARK_PROBE'])"
    for warm_up in (False, True):
        done = run_python(code, what="probe", warm_up=warm_up, env=env)
        assert done.stdout.strip() == "seen"
    with pytest.raises(WorkloadFailed, match="probe failed"):
        run_python("raise SystemExit(1)", what="probe")
