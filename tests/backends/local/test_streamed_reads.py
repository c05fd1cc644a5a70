"""Large records on local storage are written from the value's own buffers and decoded
from the open file: the payload is never copied whole on either side, and the usual
checks (length, checksum, signature, expiry) still hold."""

from __future__ import annotations

import datetime as dt
import os
import pickle
from pathlib import Path
from typing import Any, BinaryIO, ClassVar

import pytest

from moorage import RecordCorrupted, RecordExpired, ResultStore
from moorage.serializers import PickleSerializer

BIG = 3 << 20  # well above LocalStorage.stream_threshold


class RecordingPickle(PickleSerializer):
    """Pickle that notes what it was asked to load from and what it handed out."""

    type: str = "test-recording-pickle"
    sources: ClassVar[list[str]] = []
    parts: ClassVar[list[list[Any]]] = []

    def load_stream(self, stream: BinaryIO) -> Any:
        RecordingPickle.sources.append("stream")
        return super().load_stream(stream)

    def loads(self, data: Any) -> Any:
        RecordingPickle.sources.append("bytes")
        return super().loads(data)

    def dump_parts(self, obj: Any) -> list[Any]:
        parts = super().dump_parts(obj)
        RecordingPickle.parts.append(parts)
        return parts


@pytest.fixture
def store(tmp_path: Path) -> ResultStore:
    RecordingPickle.sources.clear()
    RecordingPickle.parts.clear()
    return ResultStore(
        result_storage=tmp_path, serializer=RecordingPickle(), cache_result_in_memory=False
    )


def test_large_bytes_round_trip_through_the_stream(store: ResultStore) -> None:
    value = os.urandom(BIG)
    store.write(value, key="big")
    # The value's own bytes object is one of the parts written: nothing was copied.
    assert any(part is value for part in RecordingPickle.parts[0])
    assert store.read("big").result == value
    assert RecordingPickle.sources == ["stream"]


def test_small_records_are_read_whole(store: ResultStore) -> None:
    store.write({"a": 1}, key="small")
    assert store.read("small").result == {"a": 1}
    assert RecordingPickle.sources == ["bytes"]


def test_large_bytearray_and_nested_values(store: ResultStore) -> None:
    value = {"blob": bytearray(os.urandom(BIG)), "tag": "x", "more": [os.urandom(BIG)]}
    store.write(value, key="nested")
    assert store.read("nested").result == value


@pytest.mark.parametrize("where", ["start", "middle", "end"])
def test_a_flipped_byte_in_a_streamed_payload_is_refused(
    store: ResultStore, tmp_path: Path, where: str
) -> None:
    value = os.urandom(BIG)
    store.write(value, key="big")
    path = tmp_path / "big"
    data = bytearray(path.read_bytes())
    start = len(data) - BIG - 16  # inside the pickle's own opcodes, before the bytes
    index = {"start": start, "middle": len(data) - BIG // 2, "end": len(data) - 2}[where]
    data[index] ^= 0xFF
    path.write_bytes(bytes(data))
    with pytest.raises(RecordCorrupted, match="'big'"):
        store.read("big")


def test_a_truncated_streamed_payload_is_refused(store: ResultStore, tmp_path: Path) -> None:
    store.write(os.urandom(BIG), key="big")
    path = tmp_path / "big"
    path.write_bytes(path.read_bytes()[:-1000])
    with pytest.raises(RecordCorrupted, match="'big'"):
        store.read("big")


def test_an_expired_large_record_is_not_decoded(store: ResultStore) -> None:
    past = dt.datetime.now(dt.UTC) - dt.timedelta(seconds=1)
    store.write(os.urandom(BIG), key="old", expiration=past)
    with pytest.raises(RecordExpired):
        store.read("old")
    assert RecordingPickle.sources == []


def test_signed_large_records_are_verified_before_decoding(tmp_path: Path) -> None:
    RecordingPickle.sources.clear()
    signed = ResultStore(
        result_storage=tmp_path,
        serializer=RecordingPickle(),
        signing_key=b"k" * 32,
        cache_result_in_memory=False,
    )
    value = os.urandom(BIG)
    signed.write(value, key="big")
    assert signed.read("big").result == value
    path = tmp_path / "big"
    data = bytearray(path.read_bytes())
    data[-10] ^= 0x01
    path.write_bytes(bytes(data))
    RecordingPickle.sources.clear()
    with pytest.raises(RecordCorrupted, match=r"checksum|signature"):
        signed.read("big")
    assert RecordingPickle.sources == [], "nothing may be unpickled before the check"


async def test_async_read_streams_too(store: ResultStore) -> None:
    value = os.urandom(BIG)
    await store.awrite(value, key="big")
    assert (await store.aread("big")).result == value
    assert RecordingPickle.sources == ["stream"]


def test_streamed_payload_is_plain_pickle(store: ResultStore, tmp_path: Path) -> None:
    """The parts written are an ordinary pickle: other readers need nothing new."""
    value = os.urandom(BIG)
    store.write(value, key="big")
    data = (tmp_path / "big").read_bytes()
    payload = data[-(len(b"".join(bytes(p) for p in RecordingPickle.parts[0]))) :]
    assert pickle.loads(payload) == value


def test_a_large_metadata_only_record_is_refused_as_such(tmp_path: Path) -> None:
    """A detached record (metadata whose payload lives elsewhere) put where a whole
    record belongs is refused, streamed or not, rather than decoded as empty."""
    from moorage.format.integrity import checksum_of
    from moorage.format.native import encode_native
    from moorage.records.metadata import ResultRecordMetadata

    meta = ResultRecordMetadata(  # a huge extra field
        storage_key="x", padding="p" * BIG, payload_length=0, checksum=checksum_of(b"")
    )
    blob = b"".join(bytes(p) for p in encode_native(meta.dump_bytes(), b"", detached=True))
    (tmp_path / "x").write_bytes(blob)
    store = ResultStore(result_storage=tmp_path, cache_result_in_memory=False)
    with pytest.raises(RecordCorrupted, match="payload is stored apart"):
        store.read("x")
