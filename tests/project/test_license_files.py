"""Every distribution ships the project's license: each package folder holds a copy of the
root LICENSE (a symbolic link would reach the sdist as a link out of it, which unpacking
refuses), and each pyproject.toml declares it."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = sorted(path.parent for path in ROOT.glob("packages/*/pyproject.toml"))


def test_packages_are_found() -> None:
    assert "moorage" in {package.name for package in PACKAGES}


@pytest.mark.parametrize("package", PACKAGES, ids=lambda path: path.name)
def test_package_ships_the_root_license(package: Path) -> None:
    license_file = package / "LICENSE"
    assert not license_file.is_symlink(), f"{license_file} must be a copy, not a link"
    assert license_file.read_bytes() == (ROOT / "LICENSE").read_bytes(), (
        f"{license_file} differs from the root LICENSE: copy it again"
    )
    project = tomllib.loads((package / "pyproject.toml").read_text())["project"]
    assert project["license"] == "Apache-2.0"
    assert project["license-files"] == ["LICENSE"]
