"""Every command has ``--json`` and its output parses; exit statuses are the documented
ones (0 done, 1 failed, 2 usage), and ``moorage --help`` lists them."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest

from moorage.cli.main import main
from moorage.results import ResultStore
from moorage.store.memory_cache import ResultCache

from .terminal import moorage

COMMANDS = sorted(main.commands)


@pytest.fixture
def storage(tmp_path: Path) -> str:
    store = ResultStore(result_storage=tmp_path / "results", serializer="json", cache=ResultCache())
    store.write({"a": 1}, key="k/1")
    store.write(2, key="k/2", expiration=dt.timedelta(seconds=-5))
    return str(tmp_path / "results")


def arguments(command: str, storage: str, tmp_path: Path) -> list[str]:
    return {
        "plugins": [],
        "config": [],
        "ls": [storage],
        "show": ["k/1", storage],
        "get": ["k/1", storage],
        "rm": ["k/1", "--storage", storage, "--yes"],
        "prune": [storage, "--yes"],
        "copy": [storage, str(tmp_path / "copy")],
        "doctor": [storage],
        "explain": [_task_module(tmp_path / "work"), "-p", "a=1"],
    }[command]


def _task_module(folder: Path) -> str:
    (folder / "cli_tasks.py").write_text(
        "import moorage\n@moorage.task\ndef add(a, b=1):\n    return a + b\n"
    )
    return "cli_tasks:add"


def test_the_commands_are_the_documented_ones() -> None:
    assert COMMANDS == [
        "config",
        "copy",
        "doctor",
        "explain",
        "get",
        "ls",
        "plugins",
        "prune",
        "rm",
        "show",
    ]


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_prints_json_that_parses(
    command: str, storage: str, tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    run = moorage(command, *arguments(command, storage, tmp_path), "--json", env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    assert isinstance(json.loads(run.stdout), dict | list)
    assert "--json" in moorage(command, "--help", env=env, cwd=cwd).stdout


def test_help_lists_the_exit_statuses(env: dict[str, str], cwd: Path) -> None:
    shown = moorage("--help", env=env, cwd=cwd).stdout
    assert "Exit status:" in shown
    for line in ("0  done", "1  failed", "2  usage"):
        assert line in shown


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["show", "k/1", "{storage}"], 0),
        (["show", "missing", "{storage}"], 1),
        (["get", "k/2", "{storage}"], 1),  # expired
        (["ls", "nope://bucket"], 1),
        (["show"], 2),  # no KEY
        (["show", "k/1", "{storage}", "--storage", "elsewhere"], 2),
        (["prune", "{storage}", "--max-size", "lots"], 2),
        (["copy", "{storage}"], 2),  # no TARGET
        (["frobnicate"], 2),
    ],
)
def test_exit_statuses(
    args: list[str], code: int, storage: str, env: dict[str, str], cwd: Path
) -> None:
    run = moorage(*(arg.format(storage=storage) for arg in args), env=env, cwd=cwd)
    assert run.code == code, run.stderr
    if code:
        assert run.stderr.strip()
        assert "Traceback" not in run.stderr
