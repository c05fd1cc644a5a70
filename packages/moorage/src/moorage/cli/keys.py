"""``moorage explain``: the parts of a task's cache key, or why two calls' keys differ."""

from __future__ import annotations

import importlib
import importlib.util
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from moorage.cli.output import echo_json, table_or_lines

if TYPE_CHECKING:
    from moorage.keys.explain import KeyExplanation

__all__ = ["explain"]


def _value(text: str) -> Any:
    """A parameter's value: JSON where it parses (``3``, ``"a"``, ``[1, 2]``), else the
    text itself, so ``-p day=2026-12-05`` passes a string."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def _parameters(pairs: tuple[str, ...], option: str) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        name, sep, text = pair.partition("=")
        if not sep or not name.isidentifier():
            raise click.BadParameter(f"{pair!r} is not NAME=VALUE", param_hint=option)
        found[name] = _value(text)
    return found


def _load_task(spec: str) -> Any:
    """The task named ``module:attribute`` or ``path/to/file.py:attribute``."""
    where, sep, attribute = spec.rpartition(":")
    if not sep or not where or not attribute:
        raise click.BadParameter(
            f"{spec!r}: name the task as module:name or path/to/file.py:name", param_hint="TASK"
        )
    if where.endswith(".py"):
        path = Path(where).resolve()
        if not path.is_file():
            raise click.BadParameter(f"no file {where!r}", param_hint="TASK")
        sys.path.insert(0, str(path.parent))  # so the file's own imports resolve
        module_spec = importlib.util.spec_from_file_location(path.stem, path)
        if module_spec is None or module_spec.loader is None:
            raise click.BadParameter(f"cannot import {where!r}", param_hint="TASK")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[path.stem] = module  # tasks are found by their module's name
        module_spec.loader.exec_module(module)
    else:
        sys.path.insert(0, str(Path.cwd()))  # as ``python -m`` does
        try:
            module = importlib.import_module(where)
        except ImportError as exc:
            raise click.BadParameter(f"cannot import {where!r}: {exc}", param_hint="TASK") from exc
    from moorage.workflow.calls import attribute_path
    from moorage.workflow.tasks import Task

    found = attribute_path(module, attribute, None)
    if found is None:
        raise click.BadParameter(f"{where} has nothing named {attribute!r}", param_hint="TASK")
    if not isinstance(found, Task):
        raise click.BadParameter(
            f"{spec} is not a moorage task (it is of type {type(found).__name__})",
            param_hint="TASK",
        )
    return found


def _explain(task: Any, parameters: dict[str, Any]) -> KeyExplanation:
    try:
        explained: KeyExplanation = task.explain_key(**parameters)
        return explained
    except TypeError as exc:  # the parameters do not fit the function's signature
        raise click.UsageError(f"task {task.name!r}: {exc}") from exc


@click.command()
@click.argument("task_spec", metavar="TASK")
@click.option(
    "-p",
    "--param",
    "params",
    multiple=True,
    metavar="NAME=VALUE",
    help="A parameter of the call (VALUE is JSON, else a string). Repeat for each.",
)
@click.option(
    "--vs",
    "others",
    multiple=True,
    metavar="NAME=VALUE",
    help="Compare with a second call: the same parameters with these changed.",
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def explain(
    task_spec: str, params: tuple[str, ...], others: tuple[str, ...], as_json: bool
) -> None:
    """Show the parts of a task's cache key for one call (TASK is module:name or
    file.py:name), or with --vs which parts differ between two calls."""
    task = _load_task(task_spec)
    first = _explain(task, _parameters(params, "--param"))
    if not others:
        if as_json:
            echo_json(first.as_dict())
            return
        rows = [(part.source, part.name, part.how, part.digest) for part in first.parts]
        rows.append(("key", "", first.note or first.policy, first.key or "(uncached)"))
        table_or_lines(f"cache key of {first.task}", ("part", "name", "how", "digest"), rows)
        return
    second = _explain(task, {**_parameters(params, "--param"), **_parameters(others, "--vs")})
    differences = first.differences(second)
    if as_json:
        echo_json(
            {
                "first": first.as_dict(),
                "second": second.as_dict(),
                "equal": first.key is not None and first.key == second.key,
                "differences": [label for label, _, _ in differences],
            }
        )
        return
    pairs = [("key", first.key or "(uncached)", second.key or "(uncached)")]
    for label, a, b in differences:
        left = f"{a.digest or '-'} {a.how}" if a is not None else "(absent)"
        right = f"{b.digest or '-'} {b.how}" if b is not None else "(absent)"
        pairs.append((label, left, right))
    verdict = "equal" if first.key is not None and first.key == second.key else "differ"
    table_or_lines(f"keys of {first.task}: {verdict}", ("part", "first call", "second call"), pairs)
