"""Settings errors a person can act on: what is wrong, where it was set, what to do.

Used by `moorage.config.settings` only when reading the settings fails, so nothing here costs
anything while the settings are valid. Each problem names its source: the environment
variable (``MOORAGE_LOCK_HOLD_TIMEOUT``), a keyword argument, or the settings file and
the line of the key (``/srv/app/moorage.toml, line 3``). tomllib reports no positions,
so `find_key_line` finds the line with a small scan of the file's text.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from moorage.config.secrets import is_secret_option, mask_url
from moorage.errors import ConfigurationError

__all__ = [
    "env_json_error",
    "file_error",
    "find_key_line",
    "key_lines",
    "validation_error",
]

MOORAGE_TOML = "moorage.toml"
PYPROJECT_TOML = "pyproject.toml"
PYPROJECT_TABLE = ("tool", "moorage")
ENV_PREFIX = "MOORAGE_"


# -- where a key is in a TOML file ----------------------------------------------------------

_BARE_KEY = re.compile(r"[A-Za-z0-9_-]+")
_BASIC_KEY = re.compile(r'"((?:[^"\\\n]|\\.)*)"')
_LITERAL_KEY = re.compile(r"'([^'\n]*)'")


def _skip_blanks(line: str, pos: int) -> int:
    while pos < len(line) and line[pos] in " \t":
        pos += 1
    return pos


def _read_key(line: str, pos: int) -> tuple[tuple[str, ...], int] | None:
    """The (dotted) key starting at ``pos`` and the position after it, or None."""
    parts: list[str] = []
    while True:
        pos = _skip_blanks(line, pos)
        bare = _BARE_KEY.match(line, pos)
        basic = None if bare else _BASIC_KEY.match(line, pos)
        literal = None if bare or basic else _LITERAL_KEY.match(line, pos)
        if bare:
            parts.append(bare.group(0))
            pos = bare.end()
        elif basic:
            try:
                parts.append(json.loads(f'"{basic.group(1)}"'))
            except ValueError:  # a TOML escape JSON lacks: close enough to find the key
                parts.append(basic.group(1))
            pos = basic.end()
        elif literal:
            parts.append(literal.group(1))
            pos = literal.end()
        else:
            return None
        pos = _skip_blanks(line, pos)
        if not line.startswith(".", pos):
            return tuple(parts), pos
        pos += 1


def _string_end(line: str, pos: int, quote: str) -> int:
    """The position just after the ``quote`` closing a string at or after ``pos``, or -1."""
    escapes = quote[0] == '"'
    while pos < len(line):
        if escapes and line[pos] == "\\":
            pos += 2
            continue
        if line.startswith(quote, pos):
            end = pos + len(quote)
            if len(quote) == 3:  # a multi-line string may end with two more quotes
                while end < len(line) and end < pos + 5 and line[end] == quote[0]:
                    end += 1
            return end
        pos += 1
    return -1


def _scan_value(line: str, pos: int, quote: str | None, depth: int) -> tuple[str | None, int]:
    """Skip (the rest of) a value on ``line``. Returns the delimiter of a multi-line string
    still open at the end of the line, and how many brackets and braces are still open."""
    while pos < len(line):
        if quote is not None:
            end = _string_end(line, pos, quote)
            if end < 0:
                break
            pos, quote = end, None
            continue
        char = line[pos]
        if char == "#":
            break
        if char in "\"'":
            quote = char * 3 if line.startswith(char * 3, pos) else char
            pos += len(quote)
            continue
        if char in "[{":
            depth += 1
        elif char in "]}" and depth:
            depth -= 1
        pos += 1
    if quote is not None and len(quote) == 1:
        quote = None  # a one-line string left open: invalid TOML, and over at the line's end
    return quote, depth


def key_lines(text: str) -> Iterator[tuple[int, tuple[str, ...]]]:
    """Each table header and key of a TOML document, as (line number from 1, full key
    path): ``[storages.x]`` then ``url = ...`` give ``("storages", "x")`` and
    ``("storages", "x", "url")``. Lines inside multi-line strings and arrays are skipped.
    Meant for valid TOML; on anything else it yields what it can."""
    table: tuple[str, ...] = ()
    quote: str | None = None
    depth = 0
    for number, line in enumerate(text.split("\n"), start=1):
        if quote is not None or depth:
            quote, depth = _scan_value(line, 0, quote, depth)
            continue
        pos = _skip_blanks(line, 0)
        if line.startswith("[", pos):
            array = line.startswith("[[", pos)
            header = _read_key(line, pos + (2 if array else 1))
            if header is not None and line.startswith("]]" if array else "]", header[1]):
                table = header[0]
                yield number, table
            continue
        found = _read_key(line, pos)
        if found is None or not line.startswith("=", found[1]):
            continue
        yield number, table + found[0]
        quote, depth = _scan_value(line, found[1] + 1, None, 0)


def find_key_line(text: str, path: Sequence[str], least: int = 1) -> int | None:
    """The line (from 1) that defines ``path`` in a TOML document: its own line, else the
    first line defining a key below it (``[storages.x]`` defines ``storages``), else the
    line of its nearest parent on a line of its own (a table header, an inline table),
    as long as that parent has at least ``least`` parts. None if there is no such line."""
    target = tuple(path)
    parent_length, parent_line = 0, None
    for number, keys in key_lines(text):
        length = len(keys)
        if keys[: len(target)] == target:
            return number
        if parent_length < length < len(target) and target[:length] == keys:
            parent_length, parent_line = length, number
    return parent_line if parent_length >= least else None


# -- which source set a value ---------------------------------------------------------------


@dataclass
class _Source:
    """One place settings come from, with its values by top-level name."""

    kind: str  # "keyword", "env" or "file"
    values: Mapping[str, Any]
    #: for "env": variable names by lowercased setting name
    variables: Mapping[str, str]
    #: for "file": the file's path and text, and the table holding the settings
    path: str = ""
    text: str = ""
    table: tuple[str, ...] = ()

    def found(self, loc: Sequence[str | int]) -> tuple[Any, ...]:
        """The longest start of ``loc`` this source holds, as spelled in the source (the
        setting's name is matched without regard to case, as pydantic-settings does)."""
        if not loc or not isinstance(loc[0], str):
            return ()
        name = loc[0]
        if name in self.values:
            key = name
        else:
            keys = [k for k in self.values if isinstance(k, str) and k.lower() == name.lower()]
            if not keys:
                return ()
            key = keys[0]
        path: list[Any] = [key]
        value = self.values[key]
        if self.kind == "env" and isinstance(value, str):
            try:
                value = json.loads(value)
            except ValueError:
                pass
        for part in loc[1:]:
            in_list = isinstance(value, list) and isinstance(part, int) and part < len(value)
            if not (in_list or (isinstance(value, Mapping) and part in value)):
                break
            value = value[part]
            path.append(part)
        return tuple(path)

    def where(self, path: tuple[Any, ...]) -> str:
        if self.kind == "keyword":
            return f"keyword argument {path[0]}"
        if self.kind == "env":
            return f"environment variable {self.variables[str(path[0]).lower()]}"
        name = self.path
        if self.table:
            name += f" [{'.'.join(self.table)}]"
        keys = [*self.table, *(str(p) for p in path)]
        line = find_key_line(self.text, keys, least=len(self.table) + 1)
        return name if line is None else f"{name}, line {line}"


def _read_toml(path: str) -> tuple[str, dict[str, Any]] | None:
    try:
        with open(path, "rb") as file:
            text = file.read().decode("utf-8")
        return text, tomllib.loads(text)
    except (OSError, ValueError):
        return None


def _sources(cwd: str, overrides: Mapping[str, Any], fields: Sequence[str]) -> list[_Source]:
    """Every source, highest priority first, as `moorage.config.settings` reads them. Of the
    environment, only the variables of ``fields``: the others are not read."""
    sources = [_Source("keyword", overrides, {})]
    variables: dict[str, str] = {}
    values: dict[str, str] = {}
    for name, value in sorted(os.environ.items()):
        if name.upper().startswith(ENV_PREFIX):
            setting = name[len(ENV_PREFIX) :].lower()
            if setting not in fields:
                continue
            variables.setdefault(setting, name)
            values.setdefault(setting, value)
    sources.append(_Source("env", values, variables))
    for file_name, table in ((MOORAGE_TOML, ()), (PYPROJECT_TOML, PYPROJECT_TABLE)):
        path = os.path.join(cwd, file_name)
        read = _read_toml(path)
        if read is None:
            continue
        text, data = read
        for key in table:
            data = data.get(key, {}) if isinstance(data, dict) else {}
        if isinstance(data, dict):
            sources.append(_Source("file", data, {}, path, text, table))
    return sources


def _where(loc: Sequence[str | int], sources: Iterable[_Source]) -> str | None:
    """The source that set the value at ``loc``: the one holding most of the path, the
    highest-priority one among equals (sources are merged key by key)."""
    best: tuple[_Source, tuple[Any, ...]] | None = None
    for source in sources:
        path = source.found(loc)
        if path and (best is None or len(path) > len(best[1])):
            best = (source, path)
    return None if best is None else best[0].where(best[1])


# -- messages -------------------------------------------------------------------------------


def _shown(value: Any, loc: Sequence[str | int]) -> str | None:
    """``value`` as it may be shown in a message, or None if it must not be."""
    if any(isinstance(part, str) and is_secret_option(part) for part in loc):
        return None
    if isinstance(value, str):
        text = repr(mask_url(value))
    elif isinstance(value, (bool, int, float)):
        text = repr(value)
    else:
        return None
    return text if len(text) <= 80 else text[:77] + "..."


def _problem(error: Mapping[str, Any], fields: Sequence[str]) -> str:
    loc: tuple[str | int, ...] = tuple(error["loc"])
    dotted = ".".join(map(str, loc)) or "settings"
    if error["type"] == "extra_forbidden" and len(loc) == 1:
        name = str(loc[0])
        close = difflib.get_close_matches(name.lower(), fields, n=1)
        if close:
            return f"unknown setting {name!r}; did you mean {close[0]!r}?"
        return f"unknown setting {name!r}; the settings are: {', '.join(fields)}"
    if error["type"] == "value_error" and "error" in error.get("ctx", {}):
        message = str(error["ctx"]["error"])
    else:
        message = str(error["msg"])
    if error["type"] == "missing":
        return f"{dotted} is required and not set"
    shown = _shown(error.get("input"), loc)
    return f"{dotted} = {shown}: {message}" if shown else f"{dotted}: {message}"


def _combine(problems: list[str]) -> ConfigurationError:
    if len(problems) == 1:
        return ConfigurationError(f"invalid moorage setting in {problems[0]}")
    listed = "\n".join(f"  {problem}" for problem in problems)
    return ConfigurationError(f"{len(problems)} invalid moorage settings:\n{listed}")


def validation_error(
    errors: Iterable[Mapping[str, Any]], fields: Sequence[str], overrides: Mapping[str, Any]
) -> ConfigurationError:
    """One `ConfigurationError` for pydantic's ``errors`` about the settings, each problem
    named with its source: ``environment variable MOORAGE_X``, ``keyword argument x``
    or ``/path/moorage.toml, line 3``."""
    sources = _sources(os.getcwd(), overrides, fields)
    problems = []
    for error in errors:
        where = _where(tuple(error["loc"]), sources) or "the settings"
        problems.append(f"{where}: {_problem(error, fields)}")
    return _combine(problems)


def value_error(field: str, value: Any, message: str, fields: Sequence[str]) -> ConfigurationError:
    """A problem with the value of ``field`` found where the setting is used, after the
    settings were read, named with its source like the problems found while reading."""
    error = {"loc": (field,), "type": "value_error", "msg": message, "input": value}
    return validation_error([error], fields, {})


_JSON_EXAMPLES = {
    "storages": '{"shared": {"url": "s3://team/results"}}',
    "plugin_preferences": '{"s3": "s3"}',
    "json_allowed_classes": '["myapp.models.Point"]',
}


def env_json_error(field: str, cause: BaseException | None) -> ConfigurationError:
    """A ``MOORAGE_*`` variable of a nested setting holds no valid JSON."""
    names = sorted(k for k in os.environ if k.upper() == f"{ENV_PREFIX}{field.upper()}")
    variable = names[0] if names else f"{ENV_PREFIX}{field.upper()}"
    message = f"environment variable {variable}: {field} takes JSON, and this value is not JSON"
    if cause is not None:
        message += f" ({cause})"
    if field in _JSON_EXAMPLES:
        message += f"; for example {variable}='{_JSON_EXAMPLES[field]}'"
    return _combine([message])


_TOML_POSITION = re.compile(r"\s*\(at (?:line (\d+), column (\d+)|end of document)\)$")


def file_error(file_name: str, error: Exception) -> ConfigurationError:
    """A settings file in the working directory could not be read or parsed."""
    path = os.path.join(os.getcwd(), file_name)
    what = "the [tool.moorage] table of this file" if file_name == PYPROJECT_TOML else "this file"
    if isinstance(error, tomllib.TOMLDecodeError):
        message = str(getattr(error, "msg", None) or error)
        line, column = getattr(error, "lineno", None), getattr(error, "colno", None)
        place = ""
        found = _TOML_POSITION.search(message)
        if found:  # Python before 3.14 gives the position in the message only
            message = message[: found.start()]
            if line is None and found.group(1):
                line, column = int(found.group(1)), int(found.group(2))
            elif line is None:
                place = ", at the end of the file"
        if line is not None:
            place = f", line {line}, column {column}"
        return ConfigurationError(
            f"invalid TOML in {path}{place}: {message}. moorage reads its settings "
            f"from {what}; fix the file's syntax"
        )
    if isinstance(error, UnicodeDecodeError):
        return ConfigurationError(
            f"{path} is not UTF-8 text (byte {error.start} of the file); TOML files must "
            f"be UTF-8, and moorage reads its settings from {what}"
        )
    reason = error.strerror if isinstance(error, OSError) and error.strerror else str(error)
    return ConfigurationError(
        f"cannot read {path}: {reason}. moorage reads its settings from {what}"
    )
