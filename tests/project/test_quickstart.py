"""The quick-start example keeps working: a second process reads, never recomputes."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_quickstart(store: Path) -> str:
    env = {**os.environ, "MOORAGE_LOCAL_STORAGE_PATH": str(store)}
    return subprocess.run(
        [sys.executable, str(REPO / "examples" / "quickstart.py")],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    ).stdout


def test_quickstart_second_process_reads_stored_results(tmp_path: Path) -> None:
    out = run_quickstart(tmp_path / "store")
    assert out.count("[first process]") == 3
    assert out.count("computed and stored") == 3
    assert out.count("[second process]") == 4
    assert out.count("read from the store") == 3
    assert "nothing was recomputed" in out
    stored = sorted(p for p in (tmp_path / "store").rglob("*") if p.is_file())
    assert len(stored) == 3
    for path in stored:
        assert str(path) in out
    # a rerun finds everything in the first process too
    again = run_quickstart(tmp_path / "store")
    assert "computed and stored" not in again
    assert again.count("read from the store") == 6
