"""What the commands draw: in a pseudo-terminal a progress bar while they work, erased
when they are done (transient), and tables; through a pipe plain lines and no escapes at
all; no colour under NO_COLOR."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from moorage.results import ResultStore
from moorage.store.memory_cache import ResultCache

from .terminal import (
    ESCAPE,
    HIDE_CURSOR,
    Screen,
    colour_codes,
    moorage,
    moorage_in_terminal,
    plain_text,
)

SHOW_CURSOR = "\x1b[?25h"


def fill(folder: Path, fresh: int, expired: int) -> str:
    """``fresh`` records and ``expired`` expired ones in a local storage at ``folder``."""
    store = ResultStore(result_storage=folder, serializer="json", cache=ResultCache())
    for number in range(fresh):
        store.write({"n": number}, key=f"fresh/{number:03}")
    for number in range(expired):
        store.write(number, key=f"old/{number:03}", expiration=dt.timedelta(seconds=-5))
    return str(folder)


def assert_bar_drawn_then_gone(output: str, stage: str) -> Screen:
    """The bar's line (``stage``, a count) was written while the command ran, the cursor
    hidden then shown again, and nothing of the bar is left on the screen."""
    assert HIDE_CURSOR in output
    assert output.rindex(SHOW_CURSOR) > output.index(HIDE_CURSOR)
    assert f"\x1b[2K{stage} " in output, f"no {stage!r} bar in {output!r}"
    screen = Screen(output)
    assert stage not in screen.text
    return screen


def test_prune_draws_a_progress_bar_on_a_terminal_and_erases_it(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    storage = fill(tmp_path / "results", fresh=30, expired=12)
    run = moorage_in_terminal("prune", storage, "--yes", env=env, cwd=cwd)
    assert run.code == 0, run.stdout
    screen = assert_bar_drawn_then_gone(run.stdout, "examining")
    shown = plain_text(run.stdout)
    assert "42/?" in shown  # examined the whole listing, its length unknown ahead
    assert "12/12" in shown  # then removed the expired
    assert screen.text.splitlines()[-1].startswith("removed 12 record(s)")


def test_prune_asks_on_a_terminal_after_a_dry_run_that_showed_its_bar(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    storage = fill(tmp_path / "results", fresh=3, expired=2)
    run = moorage_in_terminal("prune", storage, env=env, cwd=cwd, stdin="n\n")
    assert run.code == 1  # answered no
    screen = assert_bar_drawn_then_gone(run.stdout, "examining")
    assert "Remove 2 record(s)" in screen.text
    assert len(list((tmp_path / "results" / "old").iterdir())) == 2


def test_copy_draws_a_progress_bar_on_a_terminal_and_erases_it(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    storage = fill(tmp_path / "results", fresh=25, expired=0)
    run = moorage_in_terminal("copy", storage, str(tmp_path / "copy"), env=env, cwd=cwd)
    assert run.code == 0, run.stdout
    screen = assert_bar_drawn_then_gone(run.stdout, "copying")
    assert screen.text.splitlines()[-1].startswith("copied 25 record(s)")


def test_ls_on_a_terminal_shows_a_bar_while_listing_then_a_table(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    storage = fill(tmp_path / "results", fresh=20, expired=1)
    run = moorage_in_terminal("ls", storage, env=env, cwd=cwd)
    assert run.code == 0, run.stdout
    screen = assert_bar_drawn_then_gone(run.stdout, "listing")
    assert "┃ key" in screen.text
    assert "fresh/019" in screen.text
    assert "(expired)" in screen.text


@pytest.mark.parametrize(
    "args",
    [
        ("prune", "{storage}", "--yes"),
        ("copy", "{storage}", "{target}"),
        ("ls", "{storage}"),
        ("doctor", "{storage}"),
    ],
)
def test_through_a_pipe_there_is_no_bar_and_no_escape(
    args: tuple[str, ...], tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    storage = fill(tmp_path / "results", fresh=5, expired=2)
    given = [a.format(storage=storage, target=tmp_path / "copy") for a in args]
    run = moorage(*given, env=env, cwd=cwd)
    assert run.code == 0, run.stderr
    assert run.stdout
    assert ESCAPE not in run.stdout
    assert ESCAPE not in run.stderr
    for stage in ("examining", "removing", "copying", "listing"):
        assert f"{stage} file://" not in run.stdout + run.stderr  # a bar's description


def test_ls_through_a_pipe_is_tab_separated_lines(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    storage = fill(tmp_path / "results", fresh=2, expired=1)
    run = moorage("ls", storage, env=env, cwd=cwd)
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    assert lines[0] == ["key", "format", "serializer", "bytes", "modified", "expires", "signed"]
    assert [line[0] for line in lines[1:]] == ["fresh/000", "fresh/001", "old/000"]


def test_no_colour_under_no_color(tmp_path: Path, env: dict[str, str], cwd: Path) -> None:
    storage = fill(tmp_path / "results", fresh=1, expired=0)
    coloured = moorage_in_terminal("doctor", storage, env=env, cwd=cwd)
    assert coloured.code == 0, coloured.stdout
    assert colour_codes(coloured.stdout)  # statuses are green on a terminal
    plain = moorage_in_terminal("doctor", storage, env={**env, "NO_COLOR": "1"}, cwd=cwd)
    assert plain.code == 0, plain.stdout
    assert "┃ check" in plain_text(plain.stdout)  # still a table
    assert colour_codes(plain.stdout) == []
