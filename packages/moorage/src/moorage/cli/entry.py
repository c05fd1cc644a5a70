"""Starting the ``moorage`` command: ``moorage --help`` answered without importing click.

Importing click costs a fresh process about 30 ms, twice what starting Python does, and
most of what ``moorage --help`` took. `run` prints the help click would print for the
plain ``moorage --help`` (or ``-h``) at click's widest layout (a terminal of 80 columns
or more, or no terminal), and hands every other command line to the click group in
`moorage.cli.main`. tests/cli checks that `HELP` is what click prints.
"""

from __future__ import annotations

import os
import sys
from typing import Any

__all__ = ["HELP", "run"]

#: ``moorage --help`` as click writes it 78 columns wide (a terminal of 80 columns or
#: more). Regenerate it with ``COLUMNS=80 moorage --help`` after changing a command's
#: summary, an option or the epilog.
HELP = (
    "Usage: moorage [OPTIONS] COMMAND [ARGS]...\n"
    "\n"
    "  moorage: durable results for Python.\n"
    "\n"
    "Options:\n"
    "  --version   Show the version and exit.\n"
    "  -h, --help  Show this message and exit.\n"
    "\n"
    "Commands:\n"
    "  config   Show the resolved settings, secrets masked (and check the...\n"
    "  copy     Copy records from one storage to another.\n"
    "  doctor   Check the storages and lock manager; say what is wrong.\n"
    "  explain  Show the parts of a task's cache key for one call (TASK is...\n"
    "  get      Write one record's value to stdout or a file.\n"
    "  ls       List the records of a storage.\n"
    "  plugins  List the loaded plugins: name, version and what each registers.\n"
    "  prune    Remove expired, old or excess records.\n"
    "  rm       Remove records.\n"
    "  show     Describe one record, with a preview of its value.\n"
    "\n"
    "  Exit status:\n"
    "    0  done (doctor: every check ok)\n"
    "    1  failed: an error (named on stderr, with what to do), a record missing,\n"
    "       a question answered no, doctor found a problem\n"
    "    2  usage: an unknown option, a bad value, arguments that do not fit\n"
    "\n"
    "  Tables on a terminal, tab-separated lines when piped, JSON with --json;\n"
    "  progress bars on stderr when it is a terminal; no colour under NO_COLOR.\n"
)


def _help_is_plain(args: list[str], prog_name: str | None) -> bool:
    """Whether click would print exactly `HELP` for ``args``: the one option ``--help``
    or ``-h``, the program called ``moorage``, and click's widest layout."""
    if args not in (["--help"], ["-h"]):
        return False
    name = prog_name or os.path.basename(sys.argv[0] if sys.argv else "")
    if name != "moorage":
        return False
    import shutil

    return shutil.get_terminal_size().columns >= 80


def run(prog_name: str | None = None) -> Any:
    """The ``moorage`` command: `HELP` for a plain ``moorage --help``, else the click
    group (which exits with the command's status)."""
    if _help_is_plain(sys.argv[1:], prog_name):
        sys.stdout.write(HELP)
        sys.stdout.flush()
        return 0
    from moorage.cli.main import main

    return main(prog_name=prog_name)
