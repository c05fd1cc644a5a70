"""What a store believes about a record's head: its checksum always, its signature when
the store has a signing_key; and what a signing store makes of unsigned records."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import pickle
import struct
import uuid
from typing import Any

import orjson
import pytest

from moorage import ResultStore
from moorage.errors import RecordCorrupted, RecordExpired
from moorage.format.integrity import crc32c
from moorage.format.native import HEADER_SIZE, PREFIX_SIZE, encode_native
from moorage.plugins.resolve import storage_from
from moorage.records.metadata import ResultRecordMetadata
from moorage.storage import Storage
from moorage.store.memory_cache import ResultCache

KEY = "k"
SECRET = b"a long random secret"


def memory() -> Storage:
    return storage_from(f"memory://signed-{uuid.uuid4().hex}")


def store_on(storage: Storage, **kw: Any) -> ResultStore:
    kw.setdefault("cache_result_in_memory", False)
    return ResultStore(result_storage=storage, cache=ResultCache(), lock_manager=None, **kw)


def rewrite_head(data: bytes, edit: Any, *, keep_signature: bool = True) -> bytes:
    """Apply ``edit`` to the metadata dict, then fix length and head CRC as an attacker
    who lacks the key can; optionally drop the signature too."""
    _, _, flags, _, meta_len, _ = struct.unpack_from(">4sBBHII", data)
    start = HEADER_SIZE + (32 if flags & 1 else 0)
    meta = orjson.loads(data[start : start + meta_len])
    edit(meta)
    metadata = orjson.dumps(meta)
    mac = data[HEADER_SIZE:start]
    if not keep_signature:
        flags &= ~1
        mac = b""
    prefix = bytearray(data[:PREFIX_SIZE])
    prefix[5] = flags
    prefix[8:12] = len(metadata).to_bytes(4, "big")
    crc = struct.pack(">I", crc32c([bytes(prefix), metadata]))
    return bytes(prefix) + crc + mac + metadata + data[start + meta_len :]


def test_an_edited_expiration_in_a_signed_record_is_tampering_not_expiry() -> None:
    storage = memory()
    store = store_on(storage, signing_key=SECRET)
    store.write("value", key=KEY, expiration=dt.timedelta(days=365))
    forged = rewrite_head(
        bytes(storage.read_path(KEY)), lambda m: m.update(expiration="2000-01-01T00:00:00Z")
    )
    storage.write_path(KEY, forged)
    with pytest.raises(RecordCorrupted, match="invalid signature"):
        store.read(KEY)
    assert not store.exists(KEY)
    with store.transaction(KEY) as txn:
        assert not txn.is_committed()
        txn.stage("recomputed")
    assert store.read(KEY).result == "recomputed"


def test_stripping_the_signature_does_not_downgrade_the_record() -> None:
    storage = memory()
    store = store_on(storage, signing_key=SECRET)
    store.write("value", key=KEY)
    stripped = rewrite_head(bytes(storage.read_path(KEY)), lambda m: None, keep_signature=False)
    storage.write_path(KEY, stripped)
    with pytest.raises(RecordCorrupted, match="not signed"):
        store.read(KEY)
    assert not store.exists(KEY)


def test_a_forged_payload_with_its_digest_is_never_unpickled(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    storage = memory()
    store = store_on(storage, signing_key=SECRET)
    store.write("value", key=KEY)
    evil = pickle.dumps("evil")
    digest = f"sha256:{hashlib.sha256(evil).hexdigest()}"
    data = bytes(storage.read_path(KEY))
    _, _, _, _, meta_len, _ = struct.unpack_from(">4sBBHII", data)
    honest_payload_start = HEADER_SIZE + 32 + meta_len
    forged = rewrite_head(
        data[:honest_payload_start] + evil,
        lambda m: m.update(payload_length=len(evil), checksum=digest),
    )
    storage.write_path(KEY, forged)
    calls: list[bytes] = []
    monkeypatch.setattr(pickle, "loads", lambda data, **kw: calls.append(bytes(data)))
    with pytest.raises(RecordCorrupted, match="invalid signature"):
        store.read(KEY)
    assert calls == []
    assert not store.exists(KEY)


def test_a_record_signed_with_another_key_is_missing() -> None:
    storage = memory()
    store_on(storage, signing_key=b"another key").write("value", key=KEY)
    store = store_on(storage, signing_key=SECRET)
    assert not store.exists(KEY)
    with pytest.raises(RecordCorrupted, match="invalid signature"):
        store.read(KEY)


def test_a_store_without_a_key_reads_signed_records_checking_their_digest() -> None:
    storage = memory()
    store_on(storage, signing_key=SECRET).write({"a": 1}, key=KEY)
    plain = store_on(storage)
    assert plain.exists(KEY)
    assert plain.read(KEY).result == {"a": 1}
    data = bytearray(storage.read_path(KEY))
    data[-2] ^= 0x40  # inside the payload
    storage.write_path(KEY, bytes(data))
    with pytest.raises(RecordCorrupted, match="failed its payload checksum"):
        plain.read(KEY)


@pytest.mark.parametrize("key", ["checksum", "payload_length", "uncompressed_length"])
def test_a_record_missing_a_check_is_refused_even_with_a_valid_head_crc(key: str) -> None:
    storage = memory()
    store = store_on(storage, serializer="compressed/json")
    store.write([1, 2, 3], key=KEY)
    renamed = rewrite_head(bytes(storage.read_path(KEY)), lambda m: m.update(x=m.pop(key)))
    storage.write_path(KEY, renamed)
    with pytest.raises(RecordCorrupted, match=f"no valid {key}|no checksum moorage knows"):
        store.read(KEY)
    assert not store.exists(KEY)


def test_an_unknown_checksum_algorithm_is_refused() -> None:
    storage = memory()
    store = store_on(storage)
    store.write("value", key=KEY)
    storage.write_path(
        KEY,
        rewrite_head(bytes(storage.read_path(KEY)), lambda m: m.update(checksum="md5:00")),
    )
    with pytest.raises(RecordCorrupted, match="no checksum moorage knows"):
        store.read(KEY)


def test_an_edited_expiration_without_the_head_crc_is_corruption_not_expiry() -> None:
    storage = memory()
    store = store_on(storage)
    store.write("value", key=KEY, expiration=dt.datetime(2100, 1, 1, tzinfo=dt.UTC))
    data = bytes(storage.read_path(KEY)).replace(b'"2100-', b'"2000-')
    storage.write_path(KEY, data)
    with pytest.raises(RecordCorrupted, match="failed its head checksum"):
        store.read(KEY)
    assert not store.exists(KEY)


def test_version_1_records_are_refused_with_advice() -> None:
    storage = memory()
    store = store_on(storage)
    store.write("value", key=KEY)
    data = bytearray(storage.read_path(KEY))
    data[4] = 1
    storage.write_path(KEY, bytes(data))
    with pytest.raises(RecordCorrupted, match=r"native format version 1.*upgrade moorage"):
        store.read(KEY)


def test_unknown_flags_are_refused() -> None:
    meta = ResultRecordMetadata(storage_key=KEY, payload_length=0, checksum="crc32c:00000000")
    data = bytearray(b"".join(bytes(p) for p in encode_native(meta.dump_bytes(), b"")))
    data[5] |= 0x80
    data[12:16] = struct.pack(">I", crc32c([bytes(data[:12]), meta.dump_bytes()]))
    storage = memory()
    storage.write_path(KEY, bytes(data))
    with pytest.raises(RecordCorrupted, match="unknown flags"):
        store_on(storage, serializer="json").read(KEY)


PREFECT_PICKLE = {"type": "pickle", "picklelib": "cloudpickle", "picklelib_version": None}


def prefect_combined(value: Any) -> bytes:
    metadata = {
        "storage_key": KEY,
        "expiration": None,
        "serializer": PREFECT_PICKLE,
        "prefect_version": "3.9.1",
        "storage_block_id": None,
    }
    text = base64.encodebytes(pickle.dumps(value)).decode()
    return orjson.dumps({"metadata": metadata, "result": text})


def test_a_signing_store_refuses_prefect_records_unless_told_otherwise() -> None:
    storage = memory()
    storage.write_path(KEY, prefect_combined({"from": "prefect"}))
    store = store_on(storage, signing_key=SECRET)
    with pytest.raises(RecordCorrupted, match=r"accept_unsigned_prefect_records=True"):
        store.read(KEY)
    assert not store.exists(KEY)
    trusting = store_on(storage, signing_key=SECRET, accept_unsigned_prefect_records=True)
    assert trusting.exists(KEY)
    assert trusting.read(KEY).result == {"from": "prefect"}


def test_a_signing_store_refuses_split_prefect_metadata_unless_told_otherwise() -> None:
    results, meta = memory(), memory()
    writer = ResultStore(
        result_storage=results,
        metadata_storage=meta,
        record_format="prefect",
        cache_result_in_memory=False,
        lock_manager=None,
    )
    writer.write([1, 2], key=KEY)
    store = ResultStore(
        result_storage=results, metadata_storage=meta, signing_key=SECRET, lock_manager=None
    )
    assert not store.exists(KEY)
    with pytest.raises(RecordCorrupted, match="accept_unsigned_prefect_records"):
        store.read(KEY)
    store.accept_unsigned_prefect_records = True
    assert store.exists(KEY)
    assert store.read(KEY).result == [1, 2]


def test_a_signing_store_refuses_raw_payloads_unless_told_otherwise() -> None:
    storage = memory()
    storage.write_path(KEY, pickle.dumps(3))
    store = store_on(storage, signing_key=SECRET)
    assert not store.exists(KEY)
    with pytest.raises(RecordCorrupted, match="raw payload"):
        store.read(KEY)
    trusting = store_on(storage, signing_key=SECRET, accept_unsigned_prefect_records=True)
    assert trusting.read(KEY).result == 3


def test_the_settings_reach_the_store(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_ACCEPT_UNSIGNED_PREFECT_RECORDS", "true")
    monkeypatch.setenv("MOORAGE_MAX_PAYLOAD_BYTES", "12345")
    store = store_on(memory())
    assert store.accept_unsigned_prefect_records is True
    assert store.max_payload_bytes == 12345


def test_expired_signed_records_are_still_expired() -> None:
    storage = memory()
    store = store_on(storage, signing_key=SECRET)
    store.write("value", key=KEY, expiration=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    with pytest.raises(RecordExpired):
        store.read(KEY)
    assert not store.exists(KEY)
