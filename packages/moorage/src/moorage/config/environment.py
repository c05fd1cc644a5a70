"""Reading the settings without pydantic-settings when only the environment sets them.

Importing pydantic-settings costs a fresh process about 80 ms (it brings dotenv,
argparse, email and more), which was most of a second process's first task call and of
``moorage ls``. In the common case (no ``moorage.toml``, no ``[tool.moorage]`` table in
``pyproject.toml``, no keyword arguments, ``MOORAGE_*`` variables only for plain
settings) the sources reduce to "each variable's text, validated by the model", which
`read_environment` does itself, as pydantic-settings would: variable names are matched
without regard to case and values are passed as text.

Anything else (a settings file, a nested setting given as JSON, two spellings of one
variable, a pyproject.toml that does not parse, a value that fails validation) answers
None, and the caller reads the settings the full way, which also words the errors.
"""

from __future__ import annotations

import os
import types
import typing
from pathlib import Path
from typing import Any

from pydantic import SecretStr

__all__ = ["read_environment"]

ENV_PREFIX = "moorage_"
_PLAIN = (str, int, float, bool, Path, SecretStr, type(None))


def _is_plain(annotation: Any) -> bool:
    """Whether pydantic-settings hands a variable for this field over as its text (not
    parsed as JSON): scalars, Literals and unions of them."""
    origin = typing.get_origin(annotation)
    if origin is typing.Literal:
        return True
    if origin is typing.Union or origin is types.UnionType:
        return all(_is_plain(arg) for arg in typing.get_args(annotation))
    return annotation in _PLAIN


def _no_settings_files(cwd: str) -> bool:
    """True when neither settings file in ``cwd`` contributes: no ``moorage.toml``, and a
    ``pyproject.toml`` that is absent, or parses and has no ``tool`` key naming moorage."""
    if os.path.exists(os.path.join(cwd, "moorage.toml")):
        return False
    try:
        with open(os.path.join(cwd, "pyproject.toml"), "rb") as file:
            text = file.read()
    except FileNotFoundError:
        return True
    except OSError:
        return False
    import tomllib

    try:
        document = tomllib.loads(text.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError):
        return False
    tool = document.get("tool")
    return tool is None or (isinstance(tool, dict) and "moorage" not in tool)


def read_environment(model: Any, cwd: str) -> Any | None:
    """``model`` (the settings class) validated from the ``MOORAGE_*`` variables, when
    they are its only source and all of them are plain; else None."""
    fields = model.model_fields
    values: dict[str, str] = {}
    for name, value in os.environ.items():
        lowered = name.lower()
        if not lowered.startswith(ENV_PREFIX):
            continue
        field = lowered[len(ENV_PREFIX) :]
        info = fields.get(field)
        if info is None:
            continue  # not a setting (MOORAGE_PLUGINS, say): ignored, as before
        if field in values or not _is_plain(info.annotation):
            return None
        values[field] = value
    if not _no_settings_files(cwd):
        return None
    from pydantic import ValidationError

    try:
        return model(**values)
    except ValidationError:
        return None
