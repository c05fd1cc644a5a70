"""LocalStorage.write_head_last: a file whose head is known only once its body is
written (a record's head holds its payload's checksum). The stored bytes are those of
the head then the body, every body byte is observed once and in order right after its
write, and the write is as atomic and conditional as `write_parts`. Large files, written
either way, have their blocks reserved first and hold exactly their bytes."""

from __future__ import annotations

import asyncio
import os
import pickle
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import google_crc32c
import pytest

from moorage import InvalidKey, WriteConflict
from moorage.buffers import BytesLike
from moorage.format.integrity import RunningCRC32C
from moorage_local import LocalStorage, atomic_writes
from moorage_local.atomic_writes import OBSERVED_SLICE, HeadLast, preallocate
from moorage_local.temp_files import TEMP_PREFIX

STEP = OBSERVED_SLICE


def leftovers(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.name.startswith(TEMP_PREFIX)]


class Recorder:
    """Observes the body as a checksum does, and notes each span and the file's size
    at that moment (the span must be on disk already)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.spans: list[tuple[int, int]] = []
        self.seen = bytearray()

    def __call__(self, view: memoryview, start: int, stop: int) -> None:
        self.spans.append((start, stop))
        self.seen += view[start:stop]
        temps = leftovers(self.root)
        assert len(temps) == 1  # the body goes to the temporary file, not the key
        assert temps[0].stat().st_size >= stop


def fields(content: HeadLast) -> tuple[Any, ...]:
    """The arguments of `LocalStorage.write_head_last` after the key."""
    return (content.head_size, content.body, content.observe, content.head)


def content_with_crc(body: Sequence[BytesLike]) -> tuple[HeadLast, RunningCRC32C]:
    """A content whose head is the CRC-32C of its body, as text of a fixed width."""
    crc = RunningCRC32C()

    def head() -> list[bytes]:
        return [b"HEAD", crc.checksum().encode(), b"\n"]

    return HeadLast(4 + len("crc32c:00000000") + 1, body, crc.update_span, head), crc


@pytest.mark.parametrize(
    "sizes",
    [(), (0,), (1,), (STEP,), (STEP + 1,), (3 * STEP + 5, 7), (10, 0, 2 * STEP)],
    ids=str,
)
def test_head_then_body_as_write_parts_would_store_them(
    storage: LocalStorage, root: Path, sizes: tuple[int, ...]
) -> None:
    body: list[BytesLike] = [os.urandom(n) for n in sizes]
    content, crc = content_with_crc(body)
    path = storage.write_head_last("a/record", *fields(content))
    joined = b"".join(bytes(part) for part in body)
    assert crc.value == google_crc32c.value(joined)
    head = f"HEAD{crc.checksum()}\n".encode()
    assert Path(path).read_bytes() == head + joined
    assert storage.read_path("a/record") == head + joined
    assert leftovers(root) == []


def test_every_body_byte_is_observed_once_in_order_after_its_write(
    storage: LocalStorage, root: Path
) -> None:
    body = [os.urandom(2 * STEP + 3), bytearray(os.urandom(5)), memoryview(os.urandom(STEP))]
    recorder = Recorder(root)
    content = HeadLast(3, body, recorder, lambda: [b"abc"])
    storage.write_head_last("key", *fields(content))
    assert bytes(recorder.seen) == b"".join(bytes(part) for part in body)
    assert recorder.spans == [
        (0, STEP),
        (STEP, 2 * STEP),
        (2 * STEP, 2 * STEP + 3),
        (0, 5),
        (0, STEP),
    ]


def test_wide_items_and_buffers_that_are_not_bytes_are_written_as_their_bytes(
    storage: LocalStorage,
) -> None:
    numpy = pytest.importorskip("numpy")
    array = numpy.asfortranarray(numpy.random.default_rng(0).random((300, 700)))
    raw = pickle.PickleBuffer(array).raw()
    body: list[BytesLike] = [memoryview(b"xy" + os.urandom(STEP) + b"z")[2:-1], raw]
    content, crc = content_with_crc(body)
    storage.write_head_last("key", *fields(content))
    expected = bytes(body[0]) + array.tobytes(order="F")
    assert storage.read_path("key")[len(b"HEAD") + 16 :] == expected
    assert crc.value == google_crc32c.value(expected)


def test_replaces_and_if_absent_refuses_an_existing_key(storage: LocalStorage, root: Path) -> None:
    storage.write_path("key", b"old")
    storage.write_head_last("key", 1, [b"new"], lambda *_: None, lambda: [b"!"])
    assert storage.read_path("key") == b"!new"
    with pytest.raises(WriteConflict):
        storage.write_head_last(
            "key", 1, [b"newer"], lambda *_: None, lambda: [b"?"], if_absent=True
        )
    assert storage.read_path("key") == b"!new"
    storage.write_head_last("other", 0, [b"x"], lambda *_: None, list, if_absent=True)
    assert storage.read_path("other") == b"x"
    assert leftovers(root) == []


def test_a_head_of_the_wrong_size_leaves_nothing_behind(storage: LocalStorage, root: Path) -> None:
    storage.write_path("key", b"old")
    for head in ([b"toolong"], [b"x"]):
        content = HeadLast(4, [os.urandom(STEP + 1)], lambda *_: None, lambda h=head: h)
        with pytest.raises(ValueError, match="bytes long, not the 4 bytes"):
            storage.write_head_last("key", *fields(content))
    assert storage.read_path("key") == b"old"
    assert leftovers(root) == []


def test_an_observer_that_fails_leaves_nothing_behind(storage: LocalStorage, root: Path) -> None:
    def observe(view: memoryview, start: int, stop: int) -> None:
        if start:
            raise RuntimeError("checksum failed")

    content = HeadLast(2, [os.urandom(3 * STEP)], observe, lambda: [b"hd"])
    with pytest.raises(RuntimeError, match="checksum failed"):
        storage.write_head_last("fresh/key", *fields(content))
    assert not storage.exists("fresh/key")
    assert leftovers(root) == []


def test_durable_storage_and_the_async_form_store_the_same_bytes(root: Path) -> None:
    durable = LocalStorage(root, durable=True)
    body = [os.urandom(STEP + 9)]
    content, crc = content_with_crc(body)
    durable.write_head_last("d", *fields(content))
    content2, _ = content_with_crc(body)
    asyncio.run(durable.awrite_head_last("a", *fields(content2)))
    expected = f"HEAD{crc.checksum()}\n".encode() + body[0]
    assert durable.read_path("d") == durable.read_path("a") == expected


def test_keys_are_checked_as_for_every_write(storage: LocalStorage) -> None:
    for key in ("../escape", "a//b", f"{TEMP_PREFIX}x"):
        with pytest.raises(InvalidKey):
            storage.write_head_last(key, 0, [b"x"], lambda *_: None, list)


# -- large files have their blocks reserved first ---------------------------------------


@pytest.mark.skipif(sys.platform != "linux", reason="fallocate is Linux's")
def test_preallocate_reserves_blocks_and_leaves_the_size(tmp_path: Path) -> None:
    fd = os.open(tmp_path / "file", os.O_RDWR | os.O_CREAT)
    try:
        os.write(fd, b"abc")
        preallocate(fd, 4 << 20)
        info = os.fstat(fd)
        assert info.st_size == 3
        if info.st_blocks * 512 < 4 << 20:
            pytest.skip("the file system under tmp_path reserves no blocks ahead")
        os.write(fd, b"def")
        assert os.pread(fd, 100, 0) == b"abcdef"
    finally:
        os.close(fd)


@pytest.mark.parametrize("head_last", [False, True], ids=["write_parts", "write_head_last"])
def test_files_past_the_preallocation_size_hold_exactly_their_bytes(
    storage: LocalStorage, root: Path, monkeypatch: pytest.MonkeyPatch, head_last: bool
) -> None:
    monkeypatch.setattr(atomic_writes, "PREALLOCATE_FROM", STEP)
    storage.write_path("key", os.urandom(4 * STEP))  # a longer file to replace
    body = [os.urandom(STEP + 1), bytearray(os.urandom(7))]
    if head_last:
        content, crc = content_with_crc(body)
        assert atomic_writes.content_size(content) == content.head_size + STEP + 8
        storage.write_head_last("key", *fields(content))
        head = f"HEAD{crc.checksum()}\n".encode()
    else:
        storage.write_parts("key", body)
        head = b""
    expected = head + bytes(body[0]) + bytes(body[1])
    assert storage.read_path("key") == expected
    assert (root / "key").stat().st_size == len(expected)
    assert leftovers(root) == []


def test_the_storage_says_it_writes_heads_last(storage: LocalStorage) -> None:
    assert LocalStorage.writes_head_last is True
    assert callable(storage.write_head_last)
    assert callable(storage.awrite_head_last)
