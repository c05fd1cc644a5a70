"""The report: number formats, the markdown table, the docs splice, the chart."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from benchmarks.harness import Comparison, Reading, Target
from benchmarks.report import (
    TABLE_END,
    TABLE_START,
    draw_chart,
    format_bytes,
    format_ratio,
    format_reading,
    format_seconds,
    render_document,
    render_table,
    splice,
)

WRITE = Comparison(
    "local",
    "small record write",
    Reading("moorage", 9000.0, "ops/s", 1 / 9000),
    Reading("raw", 10000.0, "ops/s", 1e-4),
    Target(">=", 0.8),
)
IMPORT = Comparison(
    "imports",
    "import",
    Reading("moorage", 0.5, "s"),
    Reading("Prefect", 2.0, "s"),
    Target("<=", 0.15),
)
MEMORY_INFO = Comparison(
    "large",
    "read | memory",
    Reading("raw", 512e6, "bytes"),
    Reading("payload", 256e6, "bytes"),
    note="fresh process",
)


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (0.0, "0x"),
        (math.inf, "∞"),
        (0.0041, "0.0041x"),
        (0.8234, "0.82x"),
        (12.345, "12.3x"),
        (1234.5, "1,234x"),
    ],
)
def test_format_ratio(value: float, text: str) -> None:
    assert format_ratio(value) == text


def test_format_seconds_picks_a_unit() -> None:
    assert format_seconds(85.2e-6) == "85.2 µs"
    assert format_seconds(0.0123) == "12.3 ms"
    assert format_seconds(2.1) == "2.10 s"


def test_format_bytes_uses_powers_of_1000() -> None:
    assert format_bytes(512) == "512 B"
    assert format_bytes(4096) == "4.1 kB"
    assert format_bytes(256_000_000) == "256 MB"
    assert format_bytes(1_370_000) == "1.37 MB"


def test_format_reading_shows_the_time_beside_a_rate() -> None:
    assert format_reading(WRITE.subject) == "moorage: 9,000 ops/s (111.1 µs/op)"
    assert format_reading(IMPORT.baseline) == "Prefect: 2.00 s"
    assert format_reading(MEMORY_INFO.subject) == "raw: 512 MB"


def test_table_has_a_line_per_row_with_its_verdict() -> None:
    table = render_table([WRITE, IMPORT, MEMORY_INFO])
    lines = table.strip().splitlines()
    assert lines[0] == "| Workload | Measured | Baseline | Ratio | Target | Result |"
    assert len(lines) == 2 + 3
    write, imports, memory = lines[2:]
    assert "| 0.90x | ≥ 0.8x | met |" in write
    assert "| 0.25x | ≤ 0.15x | **missed** |" in imports
    assert "| 2.00x | — | info |" in memory
    assert "read \\| memory (fresh process)" in memory  # a pipe cannot break the row
    assert all(line.count(" | ") == 5 for line in lines[2:])


def test_document_lists_failures_after_the_table() -> None:
    text = render_document(
        [WRITE], title="T", about=["machine"], failures={"s3-writes": "Traceback: boom"}
    )
    assert text.startswith("# T\n\n- machine\n")
    assert text.index("| Workload") < text.index("### s3-writes") < text.index("boom")


def test_splice_replaces_only_the_marked_section() -> None:
    page = f"intro\n{TABLE_START}\nold table\n{TABLE_END}\noutro\n"
    spliced = splice(page, "new table")
    assert "old table" not in spliced
    assert spliced.startswith("intro\n")
    assert spliced.endswith(f"new table\n\n{TABLE_END}\noutro\n")
    assert splice(spliced, "newer") == splice(page, "newer")
    with pytest.raises(ValueError, match="section"):
        splice("no markers here", "x")


def test_chart_draws_a_bar_per_targeted_row(tmp_path: Path) -> None:
    path = tmp_path / "chart" / "ratios.png"
    drawn = draw_chart([WRITE, IMPORT, MEMORY_INFO], path, "title")
    assert drawn == 2
    assert path.read_bytes().startswith(b"\x89PNG")
    assert draw_chart([MEMORY_INFO], tmp_path / "none.png", "title") == 0
    assert not (tmp_path / "none.png").exists()
