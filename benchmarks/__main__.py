"""``python -m benchmarks [--quick] [--out DIR] [--only NAME ...] [--check]``

Runs the workloads (all, or those named), prints the table, and writes the report:

- a full run of every workload, without ``--out``: ``benchmarks/results/latest.md``, the
  chart ``docs/assets/performance/ratios.png`` and the table in ``docs/performance.md``
  (the last two only when no workload failed);
- with ``--out DIR``: ``DIR/latest.md`` and ``DIR/ratios.png`` only;
- a partial full-size run without ``--out``: nothing (the table is printed).

Exit status: 2 if a workload raised or produced no figure, else 1 if ``--check`` was
given and a target was missed, else 0. Missed targets alone never fail a run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from benchmarks.config import FULL, QUICK, Context
from benchmarks.isolation import guard_network, isolate, refusals
from benchmarks.machine import describe
from benchmarks.report import draw_chart, render_document, render_table, splice
from benchmarks.servers import ROOT, Servers
from benchmarks.suite import FAMILIES, Outcome, Workload, family_workloads, run_workloads, select

RESULTS = ROOT / "benchmarks" / "results" / "latest.md"
CHART = ROOT / "docs" / "assets" / "performance" / "ratios.png"
DOCS_PAGE = ROOT / "docs" / "performance.md"

log = logging.getLogger("benchmarks")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="moorage against its baselines, each figure a ratio measured in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one or two rounds")
    parser.add_argument("--out", type=Path, help="write latest.md and ratios.png here")
    parser.add_argument(
        "--only", nargs="+", default=[], metavar="NAME", help="families or workloads to run"
    )
    parser.add_argument("--check", action="store_true", help="exit 1 if a target is missed")
    parser.add_argument(
        "--guard-network",
        action="store_true",
        help="refuse non-loopback connections (always on with --quick; costs some speed)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the scratch folder")
    parser.add_argument("--verbose", action="store_true", help="log every round's sample")
    parser.add_argument("--list", action="store_true", help="list the workloads and exit")
    args = parser.parse_args(argv)
    if args.quick and args.out is None:
        parser.error("--quick needs --out DIR: quick figures never replace the published ones")
    if args.out is not None:
        args.out = args.out.resolve()
    return args


def run(args: argparse.Namespace, workloads: dict[str, Workload], scratch: Path) -> list[Outcome]:
    """Run ``workloads`` isolated in ``scratch`` with the servers they need; a refusal by
    the network guard is one more failure."""
    isolate(scratch)
    if args.quick or args.guard_network:
        guard_network(scratch / "network-refusals.log")
    sizes = QUICK if args.quick else FULL
    log.info("scratch folder %s; %s sizes", scratch, "quick" if args.quick else "full")
    with Servers(scratch / "servers") as servers:

        def context_for(name: str) -> Context:
            return Context(sizes, scratch / "work" / name, servers, log)

        outcomes = run_workloads(workloads, context_for)
    refused = refusals()
    if refused:
        error = "refused connections or lookups:\n" + "\n".join(refused)
        outcomes.append(Outcome("network guard", error=error))
    return outcomes


def publish(args: argparse.Namespace, outcomes: list[Outcome], wall: float) -> None:
    """Write the report where this kind of run writes it (see the module's docstring)."""
    rows = [row for outcome in outcomes for row in outcome.rows]
    failures = {o.name: o.error for o in outcomes if o.error is not None}
    when = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    kind = "quick (tiny sizes, not representative)" if args.quick else "full"
    count = f"{len(outcomes)} workload{'s' if len(outcomes) != 1 else ''}"
    about = [f"{when}, {kind} run of {count} in {wall:.0f} s", *describe()]
    method = "ratio = measured / baseline, each a median of alternated rounds (docs/performance.md)"
    document = render_document(
        rows, title="moorage benchmarks: latest run", about=[*about, method], failures=failures
    )
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "latest.md").write_text(document)
        draw_chart(rows, args.out / "ratios.png", f"moorage vs baselines ({when}, {kind})")
        log.info("wrote %s", args.out)
    elif args.only or args.quick:
        log.info("partial run: nothing written (pass --out DIR to keep the report)")
    else:
        RESULTS.parent.mkdir(parents=True, exist_ok=True)
        RESULTS.write_text(document)
        log.info("wrote %s", RESULTS)
        if failures:
            log.info("workloads failed: the chart and %s keep the last good run", DOCS_PAGE)
            return
        draw_chart(rows, CHART, f"moorage vs baselines ({when})")
        summary = "\n".join([*(f"- {line}" for line in about), "", render_table(rows)])
        DOCS_PAGE.write_text(splice(DOCS_PAGE.read_text(), summary))
        log.info("wrote %s and the table in %s", CHART, DOCS_PAGE)


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    logging.basicConfig(format="%(asctime)s %(message)s", datefmt="%H:%M:%S", stream=sys.stderr)
    log.setLevel(logging.DEBUG if args.verbose else logging.INFO)
    if args.list:
        for family in FAMILIES:
            print(f"{family}: {' '.join(family_workloads(family))}")
        return 0
    try:
        workloads = select(args.only)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    started = time.perf_counter()
    scratch = Path(tempfile.mkdtemp(prefix="moorage-bench-"))
    try:
        outcomes = run(args, workloads, scratch)
        wall = time.perf_counter() - started
        publish(args, outcomes, wall)  # in the scratch folder still: matplotlib's cache
    finally:
        os.chdir(ROOT)
        if args.keep:
            log.info("kept %s", scratch)
        else:
            shutil.rmtree(scratch, ignore_errors=True)

    rows = [row for outcome in outcomes for row in outcome.rows]
    print()
    print(render_table(rows), end="")
    print(f"\nwall time {wall:.0f} s")
    failed = [o.name for o in outcomes if o.failed]
    if failed:
        print(f"FAILED: {', '.join(failed)} (see the report)", file=sys.stderr)
        return 2
    missed = [row for row in rows if row.met is False]
    if args.check and missed:
        print(f"{len(missed)} targets missed", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
