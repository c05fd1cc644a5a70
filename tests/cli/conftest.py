"""The environment each ``moorage`` subprocess runs in: a private home and working folder
under the test's tmp_path, no ``MOORAGE_*``, ``AWS_*`` or colour variables from outside,
and the plugins the tests use (not the deliberately broken test plugins, whose warnings
would clutter every stderr)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

PLUGINS = "local,s3,redis,msgpack"
_DROPPED = ("MOORAGE_", "AWS_", "NO_COLOR", "FORCE_COLOR", "COLUMNS", "LINES", "TERM")


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    """Variables for a ``moorage`` subprocess; a test adds its own ``MOORAGE_*``."""
    home = tmp_path / "home"
    home.mkdir()
    aws = tmp_path / "aws"
    variables = {k: v for k, v in os.environ.items() if not k.startswith(_DROPPED)}
    variables.update(
        HOME=str(home),
        MOORAGE_LOCAL_STORAGE_PATH=str(home / "storage"),
        MOORAGE_PLUGINS=PLUGINS,
        AWS_CONFIG_FILE=str(aws / "config"),
        AWS_SHARED_CREDENTIALS_FILE=str(aws / "credentials"),
        AWS_EC2_METADATA_DISABLED="true",
        TERM="xterm-256color",
        PYTHONUNBUFFERED="1",
    )
    return variables


@pytest.fixture
def cwd(tmp_path: Path) -> Path:
    """The subprocess's working folder (``./results`` lands there)."""
    folder = tmp_path / "work"
    folder.mkdir()
    return folder
