"""Fixtures for the moorage-s3 tests: a clean AWS environment, moto, counting proxies.

Every test here starts from an environment without ``AWS_*`` variables and with the
shared config files pointed at an empty folder, so nothing from the machine leaks in;
instance-metadata lookups are switched off, so a test without credentials fails at once
instead of reaching for 169.254.169.254. Tests that need the SDK's variables set them
with ``monkeypatch`` from ``moto.env()``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from servers.cleanup import clear_environment
from servers.proxy import CountingProxy
from servers.s3 import S3Server


@pytest.fixture(autouse=True)
def _clean_aws_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    clear_environment(monkeypatch, "AWS_")
    aws = tmp_path / "aws-home"
    monkeypatch.setenv("AWS_CONFIG_FILE", str(aws / "config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(aws / "credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


@pytest.fixture
def moto(s3_server: S3Server) -> Iterator[S3Server]:
    """The session's moto server; its buckets are forgotten after each test."""
    yield s3_server
    s3_server.reset()


@pytest.fixture
def proxy(moto: S3Server) -> Iterator[CountingProxy]:
    """A counting proxy in front of moto, for this test only."""
    with CountingProxy(moto.port) as counting:
        yield counting
