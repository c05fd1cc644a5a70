"""Option values people type: durations (``7d``, ``12h``) and sizes (``10GB``).

A bad value is a usage mistake (exit status 2), reported by click with the option's name.
Sizes go through `moorage.config.options.parse_size`, the parser every backend option
uses, so ``--max-size`` takes the same spellings as ``max_payload_bytes``.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Any

import click

from moorage.errors import ConfigurationError

__all__ = ["DURATION", "SIZE", "parse_duration"]

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> dt.timedelta:
    """``90`` or ``90s`` seconds, ``15m`` minutes, ``12h`` hours, ``7d`` days, ``2w``
    weeks (a decimal number is fine: ``1.5h``). ValueError for anything else."""
    match = _DURATION.match(text)
    if match is None:
        raise ValueError(
            f"{text!r} is not a duration; write a number and a unit, such as 90s, 15m, "
            "12h, 7d or 2w"
        )
    return dt.timedelta(seconds=float(match.group(1)) * _SECONDS[match.group(2).lower()])


class _Duration(click.ParamType[dt.timedelta, Any]):
    name = "duration"

    def convert(
        self, value: Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> dt.timedelta:
        if isinstance(value, dt.timedelta):
            return value
        try:
            return parse_duration(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class _Size(click.ParamType[int, Any]):
    name = "size"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int):
            return value
        from moorage.config.options import parse_size

        text = str(value).strip()
        try:
            return parse_size(param.name if param and param.name else "size", text)
        except ConfigurationError:
            self.fail(
                f"{text!r} is not a size; write bytes or a number and a binary unit, such "
                "as 500MB, 10GB or 2GiB (1 GB = 1024 MB)",
                param,
                ctx,
            )


#: A click type for durations: gives a `datetime.timedelta`.
DURATION = _Duration()
#: A click type for byte sizes: gives an int.
SIZE = _Size()
