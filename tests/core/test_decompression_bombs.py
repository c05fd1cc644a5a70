"""Compressed payloads that expand to gigabytes are refused with bounded memory.

Each bomb is read in a fresh Python process, which reports its peak resident memory
during the read (VmHWM, reset just before; ru_maxrss where that cannot be reset). The
bombs decompress to 4 GiB (zlib, bz2) and 2 GiB (lzma) of zeros:

- ``fixtures/bombs/zeros-4GiB.bz2`` (3 kB) and ``zeros-2GiB.xz`` (305 kB) were written once
  with ``bz2.BZ2Compressor(9)`` and ``lzma.LZMACompressor(preset=9)`` fed 1 MiB of zeros
  at a time;
- the zlib bomb (4 MB: deflate cannot do better than about 1:1000) is built here, by
  repeating one fully flushed deflate block.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
import zlib
from pathlib import Path
from typing import Any

import pytest

from moorage import ResultStore
from moorage.errors import RecordCorrupted, SerializationError
from moorage.format.integrity import checksum_of
from moorage.format.native import encode_native
from moorage.plugins.resolve import storage_from
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.compression import decompress_bounded
from moorage.store.memory_cache import ResultCache

BOMBS = Path(__file__).parents[1] / "fixtures" / "bombs"
MiB = 1 << 20
GiB = 1 << 30
#: The max_payload_bytes the reading store has: the cap for Prefect records.
CAP = 8 * MiB
#: How much more memory than before the read it may use at its peak.
ALLOWED = 64 * MiB


def zlib_bomb(size: int) -> bytes:
    """A valid zlib stream of ``size`` zeros (a multiple of 1 MiB), about size/1000 bytes."""
    compressor = zlib.compressobj(9)
    first = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    # After a full flush the compressor starts afresh: the same input, the same bytes.
    again = compressor.compress(bytes(MiB)) + compressor.flush(zlib.Z_FULL_FLUSH)
    final = compressor.flush()[:-4]  # an empty last block; its Adler-32 is fixed below
    adler = ((size % 65521) << 16) | 1  # Adler-32 of `size` zeros
    return first + again * (size // MiB - 1) + final + struct.pack(">I", adler)


def bomb(lib: str) -> bytes:
    if lib == "zlib":
        return zlib_bomb(4 * GiB)
    return (BOMBS / {"bz2": "zeros-4GiB.bz2", "lzma": "zeros-2GiB.xz"}[lib]).read_bytes()


PREFECT_JSON = {
    "type": "json",
    "jsonlib": "json",
    "object_encoder": "prefect.serializers.prefect_json_object_encoder",
    "object_decoder": "prefect.serializers.prefect_json_object_decoder",
    "dumps_kwargs": {},
    "loads_kwargs": {},
}


def native_record(payload: bytes, lib: str, stated: int) -> bytes:
    """A native record whose metadata states ``stated`` uncompressed bytes."""
    meta = ResultRecordMetadata(
        storage_key="bomb",
        serializer={"type": "compressed/json", "compressionlib": lib},
        payload_length=len(payload),
        uncompressed_length=stated,
        checksum=checksum_of(payload),
    )
    return b"".join(bytes(p) for p in encode_native(meta.dump_bytes(), payload))


def prefect_record(payload: bytes, lib: str) -> bytes:
    import base64

    import orjson

    metadata = {
        "storage_key": "bomb",
        "expiration": None,
        "serializer": {
            "type": "compressed/json",
            "serializer": PREFECT_JSON,
            "compressionlib": lib,
        },
        "prefect_version": "3.9.1",
        "storage_block_id": None,
    }
    text = base64.encodebytes(payload).decode("ascii")
    return orjson.dumps({"metadata": metadata, "result": text})


#: Run in a fresh process: write the record given on stdin to memory storage, reset the
#: peak memory, read it, report the peak and the outcome.
READER = """
import json, resource, sys
from moorage import ResultStore, MoorageError

record = sys.stdin.buffer.read()
store = ResultStore(result_storage="memory://bombs", cache_result_in_memory=False,
                    lock_manager=None, max_payload_bytes=int(sys.argv[1]))
store.result_storage.write_path("bomb", record)
del record

def status(field):
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None

try:
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # resets VmHWM to the current resident size
    reset = True
except OSError:
    reset = False
before = status("VmRSS") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
try:
    store.read("bomb")
    outcome = "read"
except MoorageError as exc:
    outcome = f"{type(exc).__name__}: {exc}"
peak = status("VmHWM") if reset else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"before": before, "peak": peak, "outcome": outcome}))
"""


def read_in_subprocess(record: bytes) -> dict[str, object]:
    done = subprocess.run(
        [sys.executable, "-c", READER, str(CAP)],
        input=record,
        capture_output=True,
        check=True,
        env={**os.environ, "PYTHONWARNINGS": "ignore"},
    )
    report: dict[str, object] = json.loads(done.stdout.decode().strip().splitlines()[-1])
    return report


@pytest.mark.parametrize("fmt", ["native", "prefect"])
@pytest.mark.parametrize("lib", ["zlib", "lzma", "bz2"])
def test_a_bomb_is_refused_with_bounded_memory(lib: str, fmt: str) -> None:
    payload = bomb(lib)
    # The native record lies: its metadata says the payload decompresses to 1 kB.
    record = native_record(payload, lib, 1000) if fmt == "native" else prefect_record(payload, lib)
    report = read_in_subprocess(record)
    outcome = str(report["outcome"])
    assert outcome.startswith("RecordCorrupted"), outcome
    assert "decompresses to more than" in outcome
    assert "'bomb'" in outcome
    assert "memory://bombs" in outcome
    extra = int(str(report["peak"])) - int(str(report["before"]))
    print(f"{lib} {fmt}: {len(payload)} compressed bytes, peak +{extra / MiB:.1f} MiB")
    assert extra < ALLOWED, f"the read took {extra / MiB:.0f} MiB"


def test_an_unsigned_record_may_not_state_more_than_max_payload_bytes() -> None:
    payload = zlib.compress(b"[]")
    results = storage_from("memory://bombs-stated")
    results.write_path("bomb", native_record(payload, "zlib", 4 * GiB))
    store = ResultStore(
        result_storage=results,
        cache_result_in_memory=False,
        cache=ResultCache(),
        lock_manager=None,
        max_payload_bytes=CAP,
    )
    with pytest.raises(RecordCorrupted, match="max_payload_bytes"):
        store.read("bomb")


def test_a_native_payload_must_decompress_to_exactly_its_stated_length() -> None:
    payload = zlib.compress(b"[1, 2, 3]")
    results = storage_from("memory://bombs-exact")
    store = ResultStore(
        result_storage=results, cache_result_in_memory=False, cache=ResultCache(), lock_manager=None
    )
    results.write_path("short", native_record(payload, "zlib", 100))
    with pytest.raises(RecordCorrupted, match="decompresses to 9 bytes"):
        store.read("short")
    results.write_path("right", native_record(payload, "zlib", 9))
    assert store.read("right").result == [1, 2, 3]


def compressor(lib: str) -> Any:
    import bz2
    import lzma

    if lib == "lz4":
        return pytest.importorskip("lz4.frame").compress
    if lib == "zstd":
        return pytest.importorskip("zstandard").ZstdCompressor().compress
    return {"zlib": zlib.compress, "lzma": lzma.compress, "bz2": bz2.compress}[lib]


@pytest.mark.parametrize("lib", ["zlib", "lzma", "bz2", "lz4", "zstd"])
def test_bounded_decompression_stops_past_the_limit(lib: str) -> None:
    data = compressor(lib)(bytes(10 * MiB))
    assert len(decompress_bounded(lib, data, 10 * MiB, why="test")) == 10 * MiB
    with pytest.raises(RecordCorrupted, match="more than"):
        decompress_bounded(lib, data, 10 * MiB - 1, why="test")
    with pytest.raises(SerializationError, match=r"ends early|did not decompress full frame"):
        decompress_bounded(lib, data[: len(data) // 2], 10 * MiB, why="test")
    if lib != "zstd":  # zstd reads one frame and ignores what follows
        with pytest.raises(SerializationError, match="follow the compressed data"):
            decompress_bounded(lib, data + b"junk", 10 * MiB, why="test")


def test_a_zstd_frame_of_unstated_size_is_bounded_too() -> None:
    zstandard = pytest.importorskip("zstandard")
    data = zstandard.ZstdCompressor(write_content_size=False).compress(bytes(10 * MiB))
    with pytest.raises(RecordCorrupted, match="more than"):
        decompress_bounded("zstd", data, 5 * MiB, why="test")
    assert len(decompress_bounded("zstd", data, 10 * MiB, why="test")) == 10 * MiB
