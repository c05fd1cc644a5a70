"""Choosing workloads and telling a failed workload from a finished one."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from benchmarks.config import QUICK, Context
from benchmarks.harness import Comparison, Reading, Target
from benchmarks.servers import Servers
from benchmarks.suite import FAMILIES, Workload, all_workloads, run_workloads, select


def test_every_family_has_workloads_named_after_it() -> None:
    workloads = all_workloads()
    for family in FAMILIES:
        assert any(name.startswith(family) for name in workloads), family


def test_select_takes_families_and_single_workloads_in_run_order() -> None:
    chosen = list(select(["imports", "local-read", "s3"]))
    assert chosen == ["local-read", "s3-writes", "s3-latency", "s3-exists", "imports"]
    assert list(select([])) == list(all_workloads())


def test_select_names_the_known_workloads_for_an_unknown_one() -> None:
    with pytest.raises(ValueError, match=r"no workload or family named 'nope'.*local-write"):
        select(["nope"])


def _row(value: float) -> Comparison:
    return Comparison(
        "w", "x", Reading("a", value, "ops/s"), Reading("b", 1.0, "ops/s"), Target(">=", 1)
    )


def test_run_workloads_records_errors_and_missing_figures(tmp_path: Path) -> None:
    def fine(ctx: Context) -> list[Comparison]:
        return [_row(2.0)]

    def raises(ctx: Context) -> list[Comparison]:
        raise RuntimeError("the server went away")

    def empty(ctx: Context) -> list[Comparison]:
        return []

    def nan(ctx: Context) -> list[Comparison]:
        return [_row(math.nan)]

    workloads: dict[str, Workload] = {"fine": fine, "raises": raises, "empty": empty, "nan": nan}
    servers = Servers(tmp_path)
    log = logging.getLogger("test")
    outcomes = run_workloads(workloads, lambda name: Context(QUICK, tmp_path, servers, log))
    by_name = {o.name: o for o in outcomes}
    assert [o.name for o in outcomes] == ["fine", "raises", "empty", "nan"]
    assert not by_name["fine"].failed
    assert by_name["fine"].rows == [_row(2.0)]
    assert "the server went away" in (by_name["raises"].error or "")
    assert by_name["empty"].error == "produced no figure"
    assert "not a finite number" in (by_name["nan"].error or "")
