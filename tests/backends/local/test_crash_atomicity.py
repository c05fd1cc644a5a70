"""A writer killed with SIGKILL at random moments never leaves a torn record, nor, once
the cleanup has run, a temporary file.

The child (crash_writer.py) overwrites one key with self-checking payloads of 3 and 5 MB;
this process reads the key while the child writes, kills it, and reads again: every read
must be one complete payload, and no temporary file may show up as a key. The listing
removes the temporary files of the killed writers, and so does `ResultStore.prune`.
"""

from __future__ import annotations

import hashlib
import random
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from moorage import ResultStore
from moorage_local import LocalStorage
from moorage_local.temp_files import TEMP_PREFIX

WRITER = Path(__file__).with_name("crash_writer.py")
HEADER = struct.Struct(">8sQ32s")  # the writer's format: magic, body length, sha256(body)
ROUNDS = 20
# On a loaded machine kills can miss the writes for a while: go on, up to this many rounds,
# until one has landed inside a write.
MAX_ROUNDS = 100


def check_payload(data: bytes) -> int:
    """Return the body length of a complete payload; fail on a torn or mixed one."""
    assert len(data) >= HEADER.size, f"torn: only {len(data)} bytes"
    magic, length, digest = HEADER.unpack_from(data)
    assert isinstance(length, int)
    assert magic == b"HFCRASH1", f"torn: bad magic {magic!r}"
    body = memoryview(data)[HEADER.size :]
    assert len(body) == length, f"torn: {len(body)} body bytes, header says {length}"
    assert hashlib.sha256(body).digest() == digest, "torn: body does not match its checksum"
    return length


def initial_payload() -> bytes:
    body = random.Random(0).randbytes(1 << 20)
    return HEADER.pack(b"HFCRASH1", len(body), hashlib.sha256(body).digest()) + body


def leftovers(tmp_path: Path) -> list[Path]:
    """Temporary files left by killed writers."""
    return [p for p in (tmp_path / "root" / "dir").iterdir() if p.name.startswith(TEMP_PREFIX)]


def run_and_kill(url: str, round_: int, read: Callable[[], object]) -> None:
    """Start a writer, call ``read`` while it writes (for a random while), kill it."""
    child = subprocess.Popen(
        [sys.executable, str(WRITER), url, "dir/victim", str(round_)],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready"
        deadline = time.monotonic() + random.uniform(0.0, 0.1)
        while True:  # read while the child writes
            read()
            if time.monotonic() >= deadline:
                break
    finally:
        child.send_signal(signal.SIGKILL)
        child.wait()
        assert child.stdout is not None
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL


@pytest.mark.slow
@pytest.mark.parametrize("durable", [False, True], ids=["plain", "durable"])
def test_killed_writer_never_leaves_a_torn_record(tmp_path: Path, durable: bool) -> None:
    storage = LocalStorage(tmp_path / "root", durable=durable)
    url = f"{storage.url}?durable={durable}"
    storage.write_path("dir/victim", initial_payload())
    seen: set[int] = set()
    landed = 0  # kills that left a temporary file behind
    for round_ in range(MAX_ROUNDS):
        if round_ >= ROUNDS and landed:
            break  # enough rounds, and at least one kill landed inside a write
        run_and_kill(url, round_, lambda: seen.add(check_payload(storage.read_path("dir/victim"))))
        landed += bool(leftovers(tmp_path))
        seen.add(check_payload(storage.read_path("dir/victim")))
        assert list(storage.list_paths()) == ["dir/victim"]
        assert leftovers(tmp_path) == [], "the listing left a dead writer's temporary file"
    # The test is only meaningful if the children wrote, and were killed mid-write.
    assert seen - {1 << 20}, "the writer never replaced the initial payload"
    assert landed, "no kill landed inside a write; nothing was tested"
    storage.write_path("dir/victim", b"after the crashes")
    assert storage.read_path("dir/victim") == b"after the crashes"
    assert list(storage.list_paths()) == ["dir/victim"]


@pytest.mark.slow
def test_prune_removes_what_killed_writers_left(tmp_path: Path) -> None:
    """Without listings in between, `ResultStore.prune(temp=True)` removes the temporary
    files of killed writers, and reports their number and size."""
    storage = LocalStorage(tmp_path / "root")
    storage.write_path("dir/victim", initial_payload())
    for round_ in range(MAX_ROUNDS):
        if round_ >= ROUNDS and leftovers(tmp_path):
            break
        run_and_kill(storage.url, round_, lambda: None)
        check_payload(storage.read_path("dir/victim"))
    left = leftovers(tmp_path)
    assert left, "no kill landed inside a write; nothing was tested"
    size = sum(p.stat().st_size for p in left)
    report = ResultStore(result_storage=storage).prune(temp=True)
    assert (report.files, report.bytes) == (len(left), size)
    assert leftovers(tmp_path) == []
    assert list(storage.list_paths()) == ["dir/victim"]
    check_payload(storage.read_path("dir/victim"))
