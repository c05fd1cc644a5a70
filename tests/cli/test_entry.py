"""``moorage --help`` answered without click says what click says; everything else goes
to the click group."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from moorage.cli.entry import HELP
from moorage.cli.main import main

CLICK = "import sys; from moorage.cli.main import main; main(prog_name='moorage')"
ENTRY = "import sys; from moorage.cli.entry import run; sys.exit(run(prog_name='moorage'))"


def _run(code: str, *args: str, columns: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "LINES")}
    if columns is not None:
        env["COLUMNS"] = columns
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, env=env, timeout=60
    )


def test_help_is_what_click_prints_at_its_widest() -> None:
    result = CliRunner().invoke(main, ["--help"], prog_name="moorage", terminal_width=78)
    assert result.exit_code == 0
    assert result.output == HELP, "regenerate HELP with: COLUMNS=80 moorage --help"


@pytest.mark.parametrize("columns", [None, "80", "200", "60", "0"])
@pytest.mark.parametrize("option", ["--help", "-h"])
def test_entry_prints_the_same_help_as_click(columns: str | None, option: str) -> None:
    fast = _run(ENTRY, option, columns=columns)
    slow = _run(CLICK, option, columns=columns)
    assert (fast.returncode, fast.stdout, fast.stderr) == (0, slow.stdout, slow.stderr)


def test_plain_help_does_not_import_click() -> None:
    code = ENTRY.replace("sys.exit(run(prog_name='moorage'))", "")
    code += "run(prog_name='moorage'); print('click' in sys.modules)"
    done = _run(code, "--help", columns="100")
    assert done.returncode == 0, done.stderr
    assert done.stdout == HELP + "False\n"


@pytest.mark.parametrize(
    ("args", "code"),
    [(["--version"], 0), (["--help", "ls"], 0), (["ls", "--help"], 0), (["frobnicate"], 2)],
)
def test_other_command_lines_go_to_click(args: list[str], code: int) -> None:
    fast = _run(ENTRY, *args, columns="100")
    slow = _run(CLICK, *args, columns="100")
    assert fast.returncode == slow.returncode == code
    assert fast.stdout == slow.stdout


def test_python_dash_m_moorage_uses_the_entry() -> None:
    env = {k: v for k, v in os.environ.items() if k != "COLUMNS"}
    done = subprocess.run(
        [sys.executable, "-m", "moorage", "-h"], capture_output=True, text=True, env=env
    )
    assert done.returncode == 0
    assert done.stdout == HELP
