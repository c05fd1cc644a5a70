"""moorage.config.options: the one parser every backend uses for its options."""

from __future__ import annotations

import math

import pytest

from moorage import ConfigurationError
from moorage.config.options import (
    parse_bool,
    parse_choice,
    parse_count,
    parse_number,
    parse_optional_seconds,
    parse_positive,
    parse_required_text,
    parse_seconds,
    parse_size,
    parse_text,
)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", True), ("TRUE", True), (" yes ", True), ("on", True), ("0", False), ("off", False)],
)
def test_bool_spellings(text: str, value: bool) -> None:
    assert parse_bool("anon", text) is value


def test_numbers_from_text_and_numbers() -> None:
    assert parse_number("timeout", "2.5") == 2.5
    assert parse_count("retries", "3") == 3
    assert parse_count("retries", 3.0) == 3
    assert parse_seconds("timeout", 0, allow_zero=True) == 0
    assert parse_optional_seconds("hold_timeout", "never") is None
    assert parse_optional_seconds("hold_timeout", "30") == 30
    assert parse_positive("interval", "0.5") == 0.5


@pytest.mark.parametrize(
    ("size", "expected"), [("8MiB", 8 * 1024**2), ("16 mb", 16 * 1024**2), ("1k", 1024), (7, 7)]
)
def test_sizes(size: object, expected: int) -> None:
    assert parse_size("part_size", size) == expected


def test_text_and_choices() -> None:
    assert parse_text("region", None) is None
    assert parse_text("region", "") is None
    assert parse_text("password", " spaced ") == " spaced ", "secrets are kept as given"
    assert parse_choice("style", "PATH", ("auto", "path")) == "path"
    assert parse_required_text("project", "p") == "p"


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: parse_bool("anon", "maybe"), "'anon' must be true or false, not 'maybe'"),
        (lambda: parse_number("timeout", True), "'timeout' must be a number, not True"),
        (lambda: parse_number("timeout", "nan"), "'timeout' must be a number"),
        (lambda: parse_number("timeout", [1]), "'timeout' must be a number"),
        (lambda: parse_positive("x", math.inf), "'x' must be a positive number"),
        (lambda: parse_seconds("timeout", 0), "'timeout' must be a positive number of seconds"),
        (lambda: parse_seconds("t", -1, allow_zero=True), "'t' must be 0 or more seconds"),
        (lambda: parse_optional_seconds("hold", "-1"), "'hold' must be positive seconds or none"),
        (lambda: parse_count("retries", "1.5"), "'retries' must be a whole number >= 0"),
        (lambda: parse_count("n", 9, 1, 5), "'n' must be a whole number from 1 to 5, not 9"),
        (lambda: parse_size("part_size", "8 parsecs"), "'part_size' must be a size such as"),
        (lambda: parse_size("part_size", 0), "'part_size' must be a whole number of bytes"),
        (lambda: parse_text("region", 5), "'region' must be a string, not int"),
        (lambda: parse_required_text("project", " "), "'project' must be a non-empty string"),
        (lambda: parse_choice("style", "x", ("auto", "path")), "'style' must be one of auto, path"),
    ],
)
def test_bad_values_name_the_option(call: object, message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        call()  # type: ignore[operator]
    assert message in str(caught.value)
