"""The ``moorage`` command line (also ``python -m moorage``): the group and its commands.

The commands live beside this module, by what they work on: `configuration` (plugins,
config), `records` (ls, show, get, rm), `retention` (prune, copy) and `doctor`; how
they print is `output`. Each imports what it needs when it runs, so ``moorage --help``
stays quick.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from moorage.cli.configuration import config, plugins
from moorage.cli.doctor import doctor
from moorage.cli.keys import explain
from moorage.cli.records import get, ls, rm, show
from moorage.cli.retention import copy, prune
from moorage.errors import MoorageError

__all__ = ["main"]

_EPILOG = """\b
Exit status:
  0  done (doctor: every check ok)
  1  failed: an error (named on stderr, with what to do), a record missing,
     a question answered no, doctor found a problem
  2  usage: an unknown option, a bad value, arguments that do not fit

\b
Tables on a terminal, tab-separated lines when piped, JSON with --json;
progress bars on stderr when it is a terminal; no colour under NO_COLOR.
"""


class _Group(click.Group):
    """Every command's `MoorageError` (invalid settings, a missing plugin, a missing
    record) is printed as one message on stderr with exit status 1, never as a
    traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MoorageError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="moorage")
def main() -> None:
    """moorage: durable results for Python."""


for _command in (plugins, config, ls, show, get, rm, prune, copy, doctor, explain):
    main.add_command(_command)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
