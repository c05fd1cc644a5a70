"""Entry points found by listing sys.path are the ones importlib.metadata finds."""

from __future__ import annotations

import importlib.metadata
import sys
import zipfile
from importlib.machinery import PathFinder
from pathlib import Path

import pytest

from moorage.plugins import discovery
from moorage.plugins.discovery import entry_points_of


def _described(entry_points: object) -> list[tuple[str, str, str, str | None, str | None]]:
    return [
        (ep.name, ep.value, ep.group, ep.dist.name if ep.dist else None,
         ep.dist.version if ep.dist else None)
        for ep in entry_points  # type: ignore[attr-defined]
    ]  # fmt: skip


def _expected(group: str) -> list[tuple[str, str, str, str | None, str | None]]:
    return _described(importlib.metadata.entry_points(group=group))


@pytest.mark.parametrize("group", ["moorage", "console_scripts", "pytest11", "pydantic", "none"])
def test_same_entry_points_as_importlib_metadata(group: str) -> None:
    assert _described(entry_points_of(group)) == _expected(group)


def _distribution(root: Path, folder: str, name: str, version: str, entry_points: str) -> None:
    path = root / folder
    path.mkdir(parents=True)
    (path / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    if entry_points:
        (path / "entry_points.txt").write_text(entry_points)


def _standard_finders() -> list[object]:
    return [
        finder
        for finder in sys.meta_path
        if finder is PathFinder or not hasattr(finder, "find_distributions")
    ]


class _OtherFinder:
    """A meta path finder that supplies distributions of its own (none here)."""

    def find_spec(self, *args: object) -> None:
        return None

    def find_distributions(self, *args: object) -> list[object]:
        return []


def test_another_distribution_finder_is_left_to_importlib_metadata(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(sys, "meta_path", [*_standard_finders(), _OtherFinder()])
    with pytest.raises(discovery._Unmodelled):
        discovery._declaring_folders("moorage")
    assert _described(entry_points_of("moorage")) == _expected("moorage")


def test_first_distribution_of_a_name_wins_and_sections_parse_alike(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = tmp_path / "first", tmp_path / "second"
    # The same distribution twice: only the first on the path counts, even without entry points.
    _distribution(first, "Fancy.Store-1.0.dist-info", "Fancy.Store", "1.0", "")
    _distribution(second, "fancy_store-2.0.dist-info", "fancy_store", "2.0", "[moorage]\nx = a\n")
    _distribution(
        second,
        "other-3.0.egg-info",
        "other",
        "3.0",
        "# a comment\n[console_scripts]\nc = m:f\n\n"
        "  [moorage]  \n y = b:c \n[moorage.more]\nz = q\n",
    )
    _distribution(second, "nothing-1.0.dist-info", "nothing", "1.0", "[moorage-ish]\nw = v\n")
    monkeypatch.setattr(sys, "path", [str(first), str(tmp_path / "missing"), str(second)])
    # Another test may have imported the importlib_metadata backport, whose finder also
    # supplies distributions (discovery then defers to importlib.metadata: see below).
    monkeypatch.setattr(sys, "meta_path", _standard_finders())
    # What importlib.metadata answers for these folders (checked against it in a clean
    # process; written out here so that the answer does not depend on the finders
    # other tests leave behind).
    expected = {
        "moorage": [("y", "b:c", "moorage", "other", "3.0")],
        "console_scripts": [("c", "m:f", "console_scripts", "other", "3.0")],
        "moorage.more": [("z", "q", "moorage.more", "other", "3.0")],
        "moorage-ish": [("w", "v", "moorage-ish", "nothing", "1.0")],
    }
    for group, entries in expected.items():
        assert _described(entry_points_of(group)) == entries, group
    assert [ep.name for ep in entry_points_of("moorage")] == ["y"]
    assert discovery._declaring_folders("moorage") == [str(second / "other-3.0.egg-info")]


def test_a_zip_or_an_egg_on_the_path_is_left_to_importlib_metadata(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    archive = tmp_path / "bundle.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("zipped-1.0.dist-info/METADATA", "Name: zipped\nVersion: 1.0\n")
        bundle.writestr("zipped-1.0.dist-info/entry_points.txt", "[moorage]\nz = zipped\n")
    monkeypatch.setattr(sys, "path", [str(archive)])
    with pytest.raises(discovery._Unmodelled):
        discovery._declaring_folders("moorage")
    assert [ep.name for ep in entry_points_of("moorage")] == ["z"]

    folder = tmp_path / "folder"
    (folder / "old.egg").mkdir(parents=True)
    monkeypatch.setattr(sys, "path", [str(folder)])
    with pytest.raises(discovery._Unmodelled):
        discovery._declaring_folders("moorage")
    assert _described(entry_points_of("moorage")) == _expected("moorage")
