"""Parsing backend options, which may arrive as text from a URL query string.

``s3://bucket/p?retries=3&anon=true`` hands the storage ``{"retries": "3", "anon":
"true"}``; a named storage in a TOML file or keyword arguments hand it real numbers and
booleans. Every backend checks its options with these functions, so all of them accept
the same spellings and refuse bad values with the same kind of message: a
`ConfigurationError` naming the option and what it must be.

A backend describes its options once, as a table from each name to its parser
(``{"retries": whole_number(1), "anon": parse_bool, ...}``), and `parse_options` checks
the names given against it and parses each value: one style for every backend.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from moorage.errors import ConfigurationError

__all__ = [
    "Parser",
    "as_given",
    "one_of",
    "optional",
    "parse_bool",
    "parse_choice",
    "parse_count",
    "parse_number",
    "parse_optional_seconds",
    "parse_options",
    "parse_positive",
    "parse_required_text",
    "parse_seconds",
    "parse_size",
    "parse_text",
    "whole_number",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}
_NEVER = {"none", "never", "null", ""}
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmg]i?b?|b)?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "b": 1, "k": 1024, "m": 1024**2, "g": 1024**3}


def _bad(name: str, what: str, value: object) -> ConfigurationError:
    return ConfigurationError(f"option {name!r} must be {what}, not {value!r}")


def parse_bool(name: str, value: object) -> bool:
    """True or False, also from ``1/0``, ``true/false``, ``yes/no``, ``on/off``."""
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise _bad(name, "true or false", value)


def parse_number(name: str, value: object) -> float:
    """A number (int, float or numeric text; not a bool, not NaN)."""
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _bad(name, "a number", value)
    try:
        number = float(value)
    except ValueError:
        raise _bad(name, "a number", value) from None
    if math.isnan(number):
        raise _bad(name, "a number", value)
    return number


def parse_positive(name: str, value: object) -> float:
    """A finite number above 0."""
    number = parse_number(name, value)
    if not (number > 0 and math.isfinite(number)):
        raise _bad(name, "a positive number", value)
    return number


def parse_seconds(name: str, value: object, *, allow_zero: bool = False) -> float:
    """A duration in seconds: above 0 (or 0 too, with ``allow_zero``), finite."""
    number = parse_number(name, value)
    if not math.isfinite(number) or number < 0 or (number == 0 and not allow_zero):
        what = "0 or more seconds" if allow_zero else "a positive number of seconds"
        raise _bad(name, what, value)
    return number


def parse_optional_seconds(name: str, value: object) -> float | None:
    """Positive seconds, or None for no limit (also ``"none"`` or ``"never"``)."""
    if value is None or (isinstance(value, str) and value.strip().lower() in _NEVER):
        return None
    number = parse_number(name, value)
    if not number > 0:
        raise _bad(name, "positive seconds or none", value)
    return number


def parse_count(name: str, value: object, minimum: int = 0, maximum: int | None = None) -> int:
    """A whole number from ``minimum`` (up to ``maximum``, if given)."""
    number = parse_number(name, value)
    too_big = maximum is not None and number > maximum
    if not number.is_integer() or number < minimum or too_big:
        bound = f"from {minimum} to {maximum}" if maximum is not None else f">= {minimum}"
        raise _bad(name, f"a whole number {bound}", value)
    return int(number)


def parse_size(name: str, value: object) -> int:
    """A byte count: a number, or text such as ``8MiB``, ``16 MB``, ``5242880``.

    Units are binary (``k``/``KiB`` = 1024, ``M``/``MiB`` = 1024², ``G``/``GiB`` = 1024³).
    """
    if isinstance(value, str):
        match = _SIZE.match(value)
        if not match:
            raise _bad(name, "a size such as 8388608, '8MiB' or '64 MiB'", value)
        number = float(match.group(1)) * _UNITS[(match.group(2) or "")[:1].lower()]
    else:
        number = parse_number(name, value)
    if not number.is_integer() or number < 1:
        raise _bad(name, "a whole number of bytes >= 1", value)
    return int(number)


def parse_text(name: str, value: object) -> str | None:
    """A string as given (secrets may have spaces); None or an empty string give None."""
    if value is None:
        return None
    if not isinstance(value, str):
        raise ConfigurationError(f"option {name!r} must be a string, not {type(value).__name__}")
    return value or None


def parse_required_text(name: str, value: object) -> str:
    """A non-empty string."""
    text = parse_text(name, value)
    if text is None or not text.strip():
        raise _bad(name, "a non-empty string", value)
    return text


def parse_choice(name: str, value: object, choices: tuple[str, ...]) -> str | None:
    """One of ``choices`` (compared in lowercase), or None."""
    text = parse_text(name, value)
    if text is not None and text.lower() not in choices:
        raise _bad(name, f"one of {', '.join(choices)}", value)
    return text.lower() if text else None


#: A parser of one option: ``parse(name, value)`` returns the value checked and converted,
#: or raises `ConfigurationError` naming the option.
Parser = Callable[[str, Any], Any]


def as_given(name: str, value: Any) -> Any:
    """The value unchanged (credentials and objects handed to a client library as they are)."""
    return value


def optional(parser: Parser) -> Parser:
    """``parser``, letting None through (the option left at its default)."""

    def parse(name: str, value: Any) -> Any:
        return None if value is None else parser(name, value)

    return parse


def whole_number(minimum: int = 0, maximum: int | None = None) -> Parser:
    """`parse_count` with these bounds."""

    def parse(name: str, value: Any) -> int:
        return parse_count(name, value, minimum, maximum)

    return parse


def one_of(*choices: str) -> Parser:
    """`parse_choice` among ``choices``."""

    def parse(name: str, value: Any) -> str | None:
        return parse_choice(name, value, choices)

    return parse


def parse_options(
    options: Mapping[str, Any],
    parsers: Mapping[str, Parser],
    *,
    unknown: Callable[[list[str]], str],
    aliases: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The options given, each parsed by its parser in ``parsers``, by canonical name.

    A name that is neither in ``parsers`` nor an alias raises `ConfigurationError` with
    the message ``unknown(sorted names)`` (which says where the options were meant to go
    and which exist); an option given under two names (``region`` and its alias
    ``region_name``) is refused. Options not given are left out: their defaults are the
    backend's.
    """
    aliases = aliases or {}
    strange = sorted(name for name in options if aliases.get(name, name) not in parsers)
    if strange:
        raise ConfigurationError(unknown(strange))
    given: dict[str, Any] = {}
    for name, value in options.items():
        canonical = aliases.get(name, name)
        if canonical in given:
            raise ConfigurationError(f"option {canonical!r} is given twice (as {name!r})")
        given[canonical] = value
    return {name: parsers[name](name, value) for name, value in given.items()}
