"""Finding the ``moorage`` entry points without parsing every distribution's.

``importlib.metadata.entry_points(group=...)`` builds a distribution object for every
installed distribution and parses each one's ``entry_points.txt`` (about 6 ms with 220
distributions, paid again by each caller: pydantic scans for its own plugins too). Here
the folders on ``sys.path`` are listed once, and only the ``entry_points.txt`` files that
declare the group are handed to importlib.metadata, which parses them as it always does.
The distributions considered are the ones importlib.metadata would consider: the
``*.dist-info`` and ``*.egg-info`` folders on ``sys.path``, the first of each normalized
name winning.

Anything this listing does not model (a zip file or an ``.egg`` on the path, a finder
on ``sys.meta_path`` that supplies its own distributions) sends the search to
`importlib.metadata.entry_points`.
"""

from __future__ import annotations

import os
import re
import sys
from importlib.machinery import PathFinder
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = ["entry_points_of"]

_SEPARATORS = re.compile(r"[-_.]+")


class _Unmodelled(Exception):
    """A ``sys.path`` this listing does not model; importlib.metadata searches it."""


def _normalized(folder: str) -> str:
    """importlib.metadata's normalized distribution name of a metadata folder."""
    name = folder.lower().rpartition(".")[0].partition("-")[0]
    return _SEPARATORS.sub("-", name).lower().replace("-", "_")


def _declaring_folders(group: str) -> list[str]:
    """The metadata folders whose ``entry_points.txt`` has a ``[group]`` section, among
    the first distribution of each name on ``sys.path``."""
    for finder in sys.meta_path:
        if finder is not PathFinder and hasattr(finder, "find_distributions"):
            raise _Unmodelled(f"{finder!r} supplies distributions")
    header = f"[{group}]"
    seen: set[str] = set()
    found: list[str] = []
    for entry in sys.path:
        root = entry or "."
        try:
            children = os.listdir(root)
        except NotADirectoryError:
            raise _Unmodelled(f"{root} is not a folder") from None
        except OSError:
            if os.path.exists(root):
                raise _Unmodelled(f"{root} cannot be listed") from None
            continue
        if root.lower().endswith(".egg"):
            raise _Unmodelled(f"{root} is an egg")
        for child in children:
            low = child.lower()
            if low.endswith(".egg"):
                raise _Unmodelled(f"{child} is an egg")
            if not low.endswith((".dist-info", ".egg-info")):
                continue
            name = _normalized(child)
            if name in seen:
                continue
            seen.add(name)
            folder = os.path.join(root, child)
            try:
                with open(os.path.join(folder, "entry_points.txt"), encoding="utf-8") as file:
                    text = file.read()
            except (FileNotFoundError, NotADirectoryError):
                continue
            except (OSError, UnicodeDecodeError):
                raise _Unmodelled(f"{folder} cannot be read") from None
            if header in text:
                found.append(folder)
    return found


def entry_points_of(group: str) -> list[EntryPoint]:
    """The entry points of ``group``, each with its distribution, as
    ``importlib.metadata.entry_points(group=group)`` lists them."""
    import importlib.metadata
    from pathlib import Path

    try:
        folders = _declaring_folders(group)
    except _Unmodelled:
        return list(importlib.metadata.entry_points(group=group))
    found: list[EntryPoint] = []
    for folder in folders:
        distribution = importlib.metadata.PathDistribution(Path(folder))
        found.extend(distribution.entry_points.select(group=group))
    return found
