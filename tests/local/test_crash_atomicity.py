"""A writer killed with SIGKILL at random moments never leaves a torn record.

The child (crash_writer.py) overwrites one key with self-checking payloads of 3 and 5 MB;
this process reads the key while the child writes, kills it, and reads again: every read
must be one complete payload, and no temporary file may show up as a key.
"""

from __future__ import annotations

import hashlib
import random
import signal
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest

from moorage_local import LocalStorage
from moorage_local.storage import TEMP_PREFIX

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


@pytest.mark.slow
def test_killed_writer_never_leaves_a_torn_record(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "root")
    storage.write_path("dir/victim", initial_payload())
    rng = random.Random()
    seen: set[int] = set()
    for round_ in range(MAX_ROUNDS):
        if round_ >= ROUNDS and leftovers(tmp_path):
            break  # enough rounds, and at least one kill landed inside a write
        child = subprocess.Popen(
            [sys.executable, str(WRITER), storage.url, "dir/victim", str(round_)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            assert child.stdout is not None
            assert child.stdout.readline().strip() == "ready"
            deadline = time.monotonic() + rng.uniform(0.0, 0.1)
            while True:  # read while the child writes
                seen.add(check_payload(storage.read_path("dir/victim")))
                if time.monotonic() >= deadline:
                    break
        finally:
            child.send_signal(signal.SIGKILL)
            child.wait()
            assert child.stdout is not None
            child.stdout.close()
        assert child.returncode == -signal.SIGKILL
        seen.add(check_payload(storage.read_path("dir/victim")))
        assert list(storage.list_paths()) == ["dir/victim"]
    # The test is only meaningful if the children wrote, and were killed mid-write.
    assert seen - {1 << 20}, "the writer never replaced the initial payload"
    assert leftovers(tmp_path), "no kill landed inside a write; nothing was tested"
    storage.write_path("dir/victim", b"after the crashes")
    assert storage.read_path("dir/victim") == b"after the crashes"
    assert list(storage.list_paths()) == ["dir/victim"]
