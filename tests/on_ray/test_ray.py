"""Exactly once on Ray: a local Ray instance with two worker processes, 40 calls over
10 inputs in bursts of 4 equal calls, file locks on a shared folder: the body runs
exactly 10 times. Run by ``nox -s ray`` (Ray is too heavy for the main suite)."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

ray = pytest.importorskip("ray")

from scale.scaled import POLICY, slow_square  # noqa: E402

INPUTS = 10
BURST = 4


@pytest.fixture(scope="module")
def ray_instance(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    home = tmp_path_factory.mktemp("ray-home")
    ray.init(
        num_cpus=2,
        include_dashboard=False,
        log_to_driver=False,
        _temp_dir=str(home / "ray"),
        runtime_env={"env_vars": {"MOORAGE_LOCAL_STORAGE_PATH": str(home / "storage")}},
    )
    try:
        yield
    finally:
        ray.shutdown()


def test_forty_calls_in_bursts_run_the_body_ten_times(ray_instance: None, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    task = slow_square.with_options(
        result_storage=(tmp_path / "results").as_uri(),
        cache_policy=POLICY.configure(lock_manager=(tmp_path / "locks").as_uri()),
    )

    @ray.remote(num_cpus=0.5)  # four calls at a time on the two CPUs
    def call(n: int) -> dict[str, Any]:
        result: dict[str, Any] = task(n, str(runs))
        return {**result, "caller": os.getpid()}

    calls = [n for n in range(INPUTS) for _ in range(BURST)]
    results = ray.get([call.remote(n) for n in calls])
    assert [r["square"] for r in results] == [n * n for n in calls]
    assert len({r["caller"] for r in results}) > 1, "more than one worker process called"
    counted = Counter(int(entry.name.split("-")[0]) for entry in runs.iterdir())
    assert counted == dict.fromkeys(range(INPUTS), 1)
