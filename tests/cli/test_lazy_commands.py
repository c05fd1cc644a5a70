"""``moorage --help`` lists the commands from a table without importing them; the table
says what the commands themselves would, and each command loads when it runs."""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from moorage.cli.main import COMMANDS, main, summary


def _command(name: str) -> click.Command:
    module, attribute, _, _ = COMMANDS[name]
    command: click.Command = getattr(importlib.import_module(module), attribute)
    return command


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_the_table_summarises_each_command_as_click_would(name: str) -> None:
    command = _command(name)
    assert command.name == name
    assert not command.hidden
    for limit in range(8, 130):
        assert summary(name, limit) == command.get_short_help_str(limit), (name, limit)


def test_the_group_knows_every_command_and_loads_it_by_name() -> None:
    assert sorted(main.commands) == sorted(COMMANDS)
    assert len(main.commands) == len(COMMANDS)
    assert "ls" in main.commands
    assert "nope" not in main.commands
    assert main.commands.get("nope") is None
    assert main.commands["ls"] is _command("ls")


def test_help_is_the_same_with_commands_loaded_or_not() -> None:
    code = (
        "import sys; from click.testing import CliRunner; from moorage.cli.main import main; "
        "first = CliRunner().invoke(main, ['--help']).output; "
        "loaded = sorted(m for m in sys.modules if m.startswith('moorage.cli.')); "
        "[main.commands[n] for n in list(main.commands)]; "
        "second = CliRunner().invoke(main, ['--help']).output; "
        "import json; print(json.dumps([first == second, loaded]))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    same, loaded = json.loads(done.stdout)
    assert same
    assert loaded == ["moorage.cli.main"], "--help imported command modules"


def test_a_command_runs_after_loading_on_demand(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["ls", str(tmp_path / "empty"), "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output) == []
