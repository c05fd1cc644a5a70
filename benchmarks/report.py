"""The report of a run: a markdown table of every comparison, and a chart of the ratios
against their targets.

Table columns: what was measured, the subject's figure, the baseline's, their ratio,
the target on that ratio, and whether it was met. Rates are shown with the median time
of one operation beside them.

The chart has one bar per row with a target, normalised so that 1.0 is the target
(`harness.normalised`); each bar is labelled with the raw ratio.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from benchmarks.harness import Comparison, Reading, normalised

__all__ = [
    "TABLE_END",
    "TABLE_START",
    "draw_chart",
    "format_bytes",
    "format_ratio",
    "format_reading",
    "format_seconds",
    "render_document",
    "render_table",
    "splice",
]

MET_COLOR = "#2e7d32"
MISSED_COLOR = "#c62828"
HEADER = ("Workload", "Measured", "Baseline", "Ratio", "Target", "Result")


def format_seconds(seconds: float) -> str:
    """``85.2 µs``, ``12.3 ms``, ``2.10 s``."""
    if seconds < 1e-3:
        return f"{seconds * 1e6:.1f} µs"
    if seconds < 1:
        return f"{seconds * 1e3:.1f} ms"
    return f"{seconds:.2f} s"


def format_bytes(nbytes: float) -> str:
    """``512 B``, ``4.1 kB``, ``1.37 MB``, ``256 MB``: three significant digits, powers
    of 1000 (as in MB/s)."""
    for unit, scale in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if nbytes >= scale:
            return f"{nbytes / scale:.3g} {unit}"
    return f"{nbytes:.0f} B"


def format_ratio(value: float) -> str:
    """``0.0041x``, ``0.82x``, ``12.3x``, ``1,234x``."""
    if math.isinf(value):
        return "∞"
    if value == 0:
        return "0x"
    if value >= 100:
        return f"{value:,.0f}x"
    if value >= 10:
        return f"{value:.1f}x"
    if value >= 0.1:
        return f"{value:.2f}x"
    return f"{value:.2g}x"


def format_reading(reading: Reading) -> str:
    """A contender's name and figure, e.g. ``moorage: 12,345 ops/s (81.0 µs/op)``."""
    if reading.unit == "ops/s":
        figure = f"{reading.value:,.0f} ops/s"
        if reading.seconds is not None:
            figure += f" ({format_seconds(reading.seconds)}/op)"
    elif reading.unit == "MB/s":
        figure = f"{reading.value:,.0f} MB/s"
        if reading.seconds is not None:
            figure += f" ({format_seconds(reading.seconds)})"
    elif reading.unit == "s":
        figure = format_seconds(reading.value)
    else:
        figure = format_bytes(reading.value)
    return f"{reading.name}: {figure}"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _result(row: Comparison) -> str:
    met = row.met
    if met is None:
        return "info"
    return "met" if met else "**missed**"


def render_table(rows: Sequence[Comparison]) -> str:
    """The markdown table of ``rows``, one line per row, with a trailing newline."""
    lines = [
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---", "---", "---", "--:", ":-:", ":-:"]) + "|",
    ]
    for row in rows:
        label = row.label + (f" ({row.note})" if row.note else "")
        cells = [
            label,
            format_reading(row.subject),
            format_reading(row.baseline),
            format_ratio(row.ratio),
            "—" if row.target is None else str(row.target),
            _result(row),
        ]
        lines.append("| " + " | ".join(_cell(c) for c in cells) + " |")
    return "\n".join(lines) + "\n"


def chart_label(row: Comparison) -> str:
    """A bar's name: what was measured and against whom."""
    return f"{row.label}\nvs {row.baseline.name}"


def draw_chart(rows: Sequence[Comparison], path: Path, title: str) -> int:
    """Draw the rows that have a target as horizontal bars into a PNG at ``path``;
    returns how many bars were drawn (none: no file)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch
    from matplotlib.ticker import FuncFormatter

    targeted = [(row, row.target) for row in rows if row.target is not None]
    if not targeted:
        return 0
    fig, ax = plt.subplots(figsize=(12, 1.2 + 0.55 * len(targeted)))
    positions = list(range(len(targeted)))[::-1]
    values = [normalised(row.ratio, target) for row, target in targeted]
    colors = [MET_COLOR if row.met else MISSED_COLOR for row, _ in targeted]
    ax.barh(positions, values, color=colors, height=0.6)
    ax.set_xscale("log")
    ax.set_xlim(min(0.1, min(values) / 2), max(10.0, max(values) * 4))
    ax.xaxis.set_major_formatter(FuncFormatter(lambda x, _pos: f"{x:g}"))
    ax.axvline(1.0, color="black", linewidth=1.2, linestyle="--")
    ax.set_yticks(positions, [chart_label(row) for row, _ in targeted], fontsize=8)
    for y, value, (row, target) in zip(positions, values, targeted, strict=True):
        ax.text(
            value * 1.1,
            y,
            f"{format_ratio(row.ratio)} (target {target})",
            va="center",
            fontsize=8,
            bbox={"facecolor": "white", "edgecolor": "none", "alpha": 0.8, "pad": 1},
        )
    ax.set_xlabel("achieved / target, log scale: 1 is the target, right of the line is better")
    ax.legend(
        handles=[Patch(color=MET_COLOR, label="met"), Patch(color=MISSED_COLOR, label="missed")],
        loc="lower right",
        fontsize=8,
    )
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return len(targeted)


#: Where the full run puts the table in docs/performance.md.
TABLE_START = "<!-- bench-table:start -->"
TABLE_END = "<!-- bench-table:end -->"


def render_document(
    rows: Sequence[Comparison], *, title: str, about: Sequence[str], failures: dict[str, str]
) -> str:
    """The markdown report: a title, lines about the run, the table, the failures."""
    parts = [f"# {title}", "", *(f"- {line}" for line in about), "", render_table(rows)]
    if failures:
        parts += ["", "## Failed workloads", ""]
        for name, error in failures.items():
            parts += [f"### {name}", "", "```text", error.rstrip(), "```", ""]
    return "\n".join(parts).rstrip("\n") + "\n"


def splice(page: str, block: str) -> str:
    """``page`` with the text between `TABLE_START` and `TABLE_END` replaced by
    ``block``; a `ValueError` if the markers are missing or out of order."""
    start = page.find(TABLE_START)
    end = page.find(TABLE_END)
    if start < 0 or end < start:
        raise ValueError(f"the page has no {TABLE_START} ... {TABLE_END} section")
    head = page[: start + len(TABLE_START)]
    return f"{head}\n\n{block.strip()}\n\n{page[end:]}"
