"""The run's isolation: its environment, and the network guard's verdicts."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks.isolation import NetworkRefused, check_network_event, isolate


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("socket.connect", (None, ("127.0.0.1", 6379))),
        ("socket.connect", (None, ("::1", 6379, 0, 0))),
        ("socket.connect", (None, "/run/some.sock")),
        ("socket.getaddrinfo", ("localhost", 80, 0, 0, 0)),
        ("socket.getaddrinfo", (b"127.0.0.1", 80, 0, 0, 0)),
        ("socket.getaddrinfo", (None, 80, 0, 0, 0)),
        ("open", ("/etc/hosts", "r", 0)),
    ],
)
def test_loopback_and_other_events_pass(event: str, args: tuple[object, ...]) -> None:
    check_network_event(event, args)


@pytest.mark.parametrize(
    ("event", "args"),
    [
        ("socket.connect", (None, ("10.1.2.3", 443))),
        ("socket.connect", (None, ("2001:db8::1", 443, 0, 0))),
        ("socket.sendto", (None, ("8.8.8.8", 53))),
        ("socket.getaddrinfo", ("pypi.org", 443, 0, 0, 0)),
        ("socket.gethostbyname", ("api.prefect.cloud",)),
    ],
)
def test_anything_beyond_loopback_is_refused(event: str, args: tuple[object, ...]) -> None:
    with pytest.raises(NetworkRefused, match="loopback only"):
        check_network_event(event, args)


@pytest.fixture
def restored_environment() -> Iterator[None]:
    saved, cwd = dict(os.environ), os.getcwd()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        os.chdir(cwd)


@pytest.mark.usefixtures("restored_environment")
def test_isolate_clears_configuration_and_points_homes_at_scratch(tmp_path: Path) -> None:
    os.environ["MOORAGE_SIGNING_KEY"] = "from the user"
    os.environ["PREFECT_API_URL"] = "https://api.prefect.cloud/api"
    os.environ["AWS_PROFILE"] = "production"
    os.environ["HTTPS_PROXY"] = "http://proxy.example:3128"
    isolate(tmp_path)
    for name in ("MOORAGE_SIGNING_KEY", "PREFECT_API_URL", "AWS_PROFILE", "HTTPS_PROXY"):
        assert name not in os.environ
    for name in ("HOME", "PREFECT_HOME", "MOORAGE_LOCAL_STORAGE_PATH", "MPLCONFIGDIR"):
        assert Path(os.environ[name]).is_relative_to(tmp_path), name
    assert os.environ["DO_NOT_TRACK"] == "1"
    assert os.environ["PREFECT_SERVER_ANALYTICS_ENABLED"] == "false"
    assert os.environ["AWS_EC2_METADATA_DISABLED"] == "true"
    assert Path.cwd() == tmp_path / "cwd"
