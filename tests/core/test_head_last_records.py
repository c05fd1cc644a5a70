"""Large records go head last to a storage that writes so (`LocalStorage`): the payload
first, checksummed slice by slice as it is written, then the head that holds the
checksum. The bytes stored are those of an ordinary native record."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest

from moorage import ResultStore
from moorage.format import codec
from moorage.format.native import encode_native, native_metadata, serialize_value
from moorage.format.record import ResultRecord

BIG = codec.HEAD_LAST_FROM + 12345


def _expected_bytes(record: ResultRecord[object], key: str) -> bytes:
    """The record as the ordinary (head first) encoding makes it."""
    parts, uncompressed = serialize_value(record.metadata.serializer, record.result)
    meta = record.metadata.model_copy(update={"checksum": None, "payload_length": None})
    meta_bytes, _ = native_metadata(meta, parts, None, uncompressed, key)
    return b"".join(bytes(part) for part in encode_native(meta_bytes, parts))


@pytest.mark.parametrize(
    "value",
    [
        pytest.param(b"\x5a" * BIG, id="bytes"),
        pytest.param(np.arange(BIG // 8, dtype=np.float64), id="numpy"),
        pytest.param(np.asfortranarray(np.ones((BIG // 800, 100))), id="fortran"),
    ],
)
def test_a_large_record_is_stored_as_a_native_record(tmp_path: Path, value: object) -> None:
    store = ResultStore(result_storage=str(tmp_path), cache_result_in_memory=False)
    assert store._storage().writes_head_last
    record = store.write(value, key="big")
    stored = (tmp_path / "big").read_bytes()
    assert stored == _expected_bytes(record, "big")
    assert record.metadata.checksum is not None
    assert record.metadata.checksum in stored[:4096].decode("utf-8", "replace")
    read = store.read("big").result
    if isinstance(value, np.ndarray):
        np.testing.assert_array_equal(read, value)
    else:
        assert read == value


def test_small_records_are_encoded_head_first() -> None:
    store_record = ResultRecord(
        metadata=ResultStore(result_storage="memory://").new_record(b"x").metadata, result=b"x"
    )
    encoded = codec.encode_record(
        store_record.metadata, b"x" * 100, "k", "moorage", False, None, head_last=True
    )
    assert encoded.head_last is None
    assert "checksum" in encoded.filled


def test_a_write_tried_twice_checksums_afresh(tmp_path: Path) -> None:
    # With a lock manager, a plain write first tries to create the record; finding one
    # there, it writes again over it: the same encoded record, observed a second time.
    store = ResultStore(
        result_storage=str(tmp_path), lock_manager="memory://", cache_result_in_memory=False
    )
    store.write(b"\x01" * BIG, key="big")
    record = store.write(b"\x02" * BIG, key="big")
    assert (tmp_path / "big").read_bytes() == _expected_bytes(record, "big")
    assert store.read("big").result == b"\x02" * BIG


def test_async_writes_go_head_last_too(tmp_path: Path) -> None:
    store = ResultStore(result_storage=str(tmp_path), cache_result_in_memory=False)
    record = asyncio.run(store.awrite(b"\x03" * BIG, key="big"))
    assert (tmp_path / "big").read_bytes() == _expected_bytes(record, "big")


def test_signed_records_are_written_head_first(tmp_path: Path) -> None:
    store = ResultStore(result_storage=str(tmp_path), signing_key=b"k" * 32)
    encoded = codec.encode_record(
        store.new_record(b"x").metadata,
        b"\x04" * BIG,
        "k",
        "moorage",
        False,
        b"k" * 32,
        head_last=True,
    )
    assert encoded.head_last is None
    store.write(b"\x04" * BIG, key="signed")
    assert store.read("signed").result == b"\x04" * BIG
