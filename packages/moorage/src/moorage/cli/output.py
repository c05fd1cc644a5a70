"""Where every command's output goes, and in which shape: the one place that decides.

- A terminal on stdout gets a table (rich); anything else (a pipe, a file) gets plain
  tab-separated lines, a header first, ``-`` for an empty cell and every value whole
  (rich would cut values to fit 80 columns), so ``cut``, ``grep`` and ``awk`` work.
- ``--json`` prints JSON on stdout, whatever stdout is.
- Progress bars (rich) go to **stderr**, and only when stderr is a terminal, so piped or
  redirected output never holds one; they are transient: erased when the work is done.
- Colour follows rich, which turns it off under ``NO_COLOR`` (and when the output is not
  a terminal).
- Messages for people (questions, warnings, what went wrong) go to stderr.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, TypeAlias

import click

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "ProgressReport",
    "echo_json",
    "error",
    "plain_lines",
    "print_table",
    "progress_bar",
    "stdout_is_terminal",
    "table_or_lines",
    "when",
]

#: What a progress bar is told: ``(stage, done, total)``, as `moorage.store` reports it.
ProgressReport: TypeAlias = Callable[[str, int, int | None], None]


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def stdout_is_terminal() -> bool:
    """Whether stdout is a terminal: tables there, plain lines elsewhere."""
    return _is_terminal(sys.stdout)


def _console(stderr: bool = False) -> Console:
    from rich.console import Console

    return Console(stderr=stderr)


def when(moment: dt.datetime | None) -> str:
    """A UTC time as ``2026-12-05T08:59:49Z``; empty for None."""
    return "" if moment is None else moment.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def echo_json(data: Any) -> None:
    """``data`` as indented JSON on stdout."""
    click.echo(json.dumps(data, indent=2))


def error(message: str) -> None:
    """A message for people, on stderr."""
    click.echo(message, err=True)


def plain_lines(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> None:
    """Tab-separated lines, a header first; each row is written as it comes (a listing
    streams), whitespace inside a value becomes one space, an empty value is ``-``."""
    for row in _with_header(columns, rows):
        click.echo("\t".join(" ".join(cell.split()) or "-" for cell in row))


def _with_header(columns: Sequence[str], rows: Iterable[Sequence[str]]) -> Iterator[Sequence[str]]:
    yield columns
    yield from rows


def print_table(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    styles: Sequence[str | None] = (),
    style_column: int = -1,
) -> None:
    """A rich table on stdout; the cell of row ``n`` in ``style_column`` (default: the
    last) gets the style ``styles[n]`` (``"red"``, ``"yellow"``...) if there is one. A
    narrow terminal wraps cells, never cuts them."""
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title)
    for column in columns:
        table.add_column(column, overflow="fold")
    for number, row in enumerate(rows):
        cells = [Text(cell) for cell in row]
        style = styles[number] if number < len(styles) else None
        if style:
            cells[style_column].stylize(style)
        table.add_row(*cells)
    _console().print(table)


def table_or_lines(
    title: str,
    columns: Sequence[str],
    rows: Sequence[Sequence[str]],
    styles: Sequence[str | None] = (),
    style_column: int = -1,
) -> None:
    """`print_table` on a terminal, `plain_lines` elsewhere."""
    if stdout_is_terminal():
        print_table(title, columns, rows, styles, style_column)
    else:
        plain_lines(columns, rows)


@contextmanager
def progress_bar(where: str) -> Iterator[ProgressReport | None]:
    """A transient progress bar on stderr while the block runs, one line per stage
    (``examining``, ``removing``, ``copying``), each saying ``done/total`` (``?`` while a
    listing streams and the total is unknown). Yields the callback to hand the store, or
    None when stderr is not a terminal: then nothing is drawn at all."""
    console = _console(stderr=True)
    if not console.is_terminal:
        yield None
        return
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    with Progress(*columns, console=console, transient=True) as bar:
        tasks: dict[str, Any] = {}

        def report(stage: str, done: int, total: int | None) -> None:
            task = tasks.get(stage)
            if task is None:
                task = tasks[stage] = bar.add_task(f"{stage} {where}", total=total)
            bar.update(task, completed=done, total=total)

        yield report
