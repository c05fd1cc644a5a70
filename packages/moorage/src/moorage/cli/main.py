"""The ``moorage`` command line (also ``python -m moorage``): the group and its commands.

The commands live beside this module, by what they work on: `configuration` (plugins,
config), `records` (ls, show, get, rm), `retention` (prune, copy), `keys` (explain) and
`doctor`; how they print is `output`. A command's module is imported only when that
command runs (or is asked for its own help): ``moorage --help`` lists the commands from
`COMMANDS` without importing any of them, and ``moorage ls`` imports `records` alone.
(`moorage.cli.entry` answers a plain ``moorage --help`` without importing click at all.)
"""

from __future__ import annotations

import importlib
import sys
from collections.abc import Iterator, MutableMapping
from typing import Any

import click

from moorage.errors import MoorageError

__all__ = ["COMMANDS", "main"]

#: Each command: the module and name of its click command, and the summary that
#: ``moorage --help`` shows: the command's ``short_help`` (shown whole) or, where
#: ``whole`` is False, the first paragraph of its help (cut to fit, as click cuts it).
#: tests/cli checks that these agree with the commands themselves.
COMMANDS: dict[str, tuple[str, str, str, bool]] = {
    "config": (
        "moorage.cli.configuration",
        "config",
        "Show the resolved settings, secrets masked (and check the serializer they name).",
        False,
    ),
    "copy": ("moorage.cli.retention", "copy", "Copy records from one storage to another.", True),
    "doctor": (
        "moorage.cli.doctor",
        "doctor",
        "Check the storages and lock manager; say what is wrong.",
        True,
    ),
    "explain": (
        "moorage.cli.keys",
        "explain",
        "Show the parts of a task's cache key for one call (TASK is module:name or "
        "file.py:name), or with --vs which parts differ between two calls.",
        False,
    ),
    "get": ("moorage.cli.records", "get", "Write one record's value to stdout or a file.", True),
    "ls": ("moorage.cli.records", "ls", "List the records of a storage.", True),
    "plugins": (
        "moorage.cli.configuration",
        "plugins",
        "List the loaded plugins: name, version and what each registers.",
        False,
    ),
    "prune": ("moorage.cli.retention", "prune", "Remove expired, old or excess records.", True),
    "rm": ("moorage.cli.records", "rm", "Remove records.", True),
    "show": (
        "moorage.cli.records",
        "show",
        "Describe one record, with a preview of its value.",
        True,
    ),
}


def summary(name: str, limit: int) -> str:
    """What ``moorage --help`` says of command ``name`` in ``limit`` characters."""
    _, _, text, whole = COMMANDS[name]
    # A stand-in command with the same help: click itself cuts it to ``limit``.
    stand_in = click.Command(name, short_help=text) if whole else click.Command(name, help=text)
    return stand_in.get_short_help_str(limit)


class _Commands(MutableMapping[str, click.Command]):
    """The group's commands by name, each imported on first access; listing the names
    (``sorted(main.commands)``, ``"ls" in main.commands``) imports nothing."""

    def __init__(self) -> None:
        self.loaded: dict[str, click.Command] = {}

    def __getitem__(self, name: str) -> click.Command:
        command = self.loaded.get(name)
        if command is None:
            if name not in COMMANDS:
                raise KeyError(name)
            module, attribute, _, _ = COMMANDS[name]
            command = getattr(importlib.import_module(module), attribute)
            self.loaded[name] = command
        return command

    def __setitem__(self, name: str, command: click.Command) -> None:
        self.loaded[name] = command

    def __delitem__(self, name: str) -> None:
        raise TypeError(f"the moorage commands are fixed; cannot remove {name!r}")

    def __contains__(self, name: object) -> bool:
        return name in COMMANDS or name in self.loaded

    def __iter__(self) -> Iterator[str]:
        return iter(dict.fromkeys([*COMMANDS, *self.loaded]))

    def __len__(self) -> int:
        return len(dict.fromkeys([*COMMANDS, *self.loaded]))


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
    traceback. Commands load on first use (`_Commands`)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.commands: MutableMapping[str, click.Command] = _Commands()

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The commands section of the help, as click writes it, with the summaries of
        commands not imported yet taken from `COMMANDS`."""
        names = self.list_commands(ctx)
        if not names:
            return
        loaded = self.commands.loaded  # type: ignore[attr-defined]
        limit = formatter.width - 6 - max(len(name) for name in names)
        rows = []
        for name in names:
            if name in loaded or name not in COMMANDS:
                command = self.commands[name]
                if command.hidden:
                    continue
                rows.append((name, command.get_short_help_str(limit)))
            else:
                rows.append((name, summary(name, limit)))
        if rows:
            with formatter.section("Commands"):
                formatter.write_dl(rows)

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except MoorageError as exc:
            raise click.ClickException(str(exc)) from None


@click.group(cls=_Group, epilog=_EPILOG, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="moorage")
def main() -> None:
    """moorage: durable results for Python."""


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
