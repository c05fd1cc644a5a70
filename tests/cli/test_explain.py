"""``moorage explain``: the parts of a task's key for one call, the parts that differ
between two calls, JSON, and clear usage errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from .terminal import moorage, moorage_in_terminal

TASKS = """
import moorage

@moorage.task(cache_version="3")
def summarize(day, region="eu", limit=10):
    return f"{day} {region} {limit}"

not_a_task = 42
"""


@pytest.fixture
def tasks(cwd: Path) -> Path:
    path = cwd / "report_tasks.py"
    path.write_text(TASKS)
    return path


def test_one_call_lists_each_part(tasks: Path, env: dict[str, str], cwd: Path) -> None:
    run = moorage("explain", "report_tasks:summarize", "-p", "day=2026-12-05", env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    assert lines[0] == ["part", "name", "how", "digest"]
    names = [(row[0], row[1]) for row in lines[1:]]
    assert ("parameter", "day") in names
    assert ("parameter", "limit") in names
    assert ("cache version", "-") in names
    assert ("key", "-") in names
    day = next(row for row in lines if row[1] == "day")
    assert day[2] == "str, by value"
    assert len(day[3]) == 32


def test_the_json_key_is_the_tasks_own(tasks: Path, env: dict[str, str], cwd: Path) -> None:
    run = moorage("explain", str(tasks) + ":summarize", "-p", "day=x", "--json", env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    shown = json.loads(run.stdout)
    probe = "import report_tasks; print(report_tasks.summarize.explain_key('x').key)"
    here = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, env=env, cwd=cwd, check=True
    )
    assert shown["key"] == here.stdout.strip()
    assert shown["policy"] == "INPUTS + TASK_SOURCE"


def test_vs_shows_only_what_differs(tasks: Path, env: dict[str, str], cwd: Path) -> None:
    args = ("explain", "report_tasks:summarize", "-p", "day=x", "-p", "limit=10")
    same = moorage(*args, "--vs", "limit=10", "--json", env=env, cwd=cwd)
    assert json.loads(same.stdout)["equal"] is True
    assert json.loads(same.stdout)["differences"] == []
    other = moorage(*args, "--vs", "region=us", "--json", env=env, cwd=cwd)
    assert json.loads(other.stdout)["differences"] == ["parameter region"]
    text = moorage(*args, "--vs", "region=us", env=env, cwd=cwd)
    rows = [line.split("\t")[0] for line in text.stdout.splitlines()]
    assert rows == ["part", "key", "parameter region"]


def test_a_terminal_gets_a_table(tasks: Path, env: dict[str, str], cwd: Path) -> None:
    run = moorage_in_terminal("explain", "report_tasks:summarize", "-p", "day=x", env=env, cwd=cwd)
    assert run.code == 0
    assert "cache key of summarize" in run.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["report_tasks"], "module:name"),
        (["report_tasks:not_a_task"], "is not a moorage task (it is of type int)"),
        (["report_tasks:missing"], "has nothing named 'missing'"),
        (["no_such_module:x"], "cannot import 'no_such_module'"),
        (["report_tasks:summarize"], "missing a required argument: 'day'"),
        (["report_tasks:summarize", "-p", "day"], "not NAME=VALUE"),
    ],
)
def test_usage_errors_say_what_to_fix(
    args: list[str], message: str, tasks: Path, env: dict[str, str], cwd: Path
) -> None:
    run = moorage("explain", *args, env=env, cwd=cwd)
    assert run.code == 2
    assert message in run.stderr
