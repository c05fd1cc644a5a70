"""The format layer on its own: the dispatcher (`moorage.format.codec`), the native and
Prefect codecs, and the streamed-read decisions, driven with bytes, without a store.

Every format and serializer round-trips; every class of damage (magic, flags, lengths,
checksums, signatures) is refused with `RecordCorrupted`; sizes a head declares are
refused before anything that large is read or allocated; encoding leaves the caller's
metadata as it was.
"""

from __future__ import annotations

import datetime as dt
import io
import struct
from typing import Any

import orjson
import pytest

from moorage.errors import RecordCorrupted, RecordExpired, SerializationError
from moorage.format import codec, native, payloads
from moorage.format import prefect as prefect_format
from moorage.format.integrity import crc32c
from moorage.format.record import ResultRecord
from moorage.format.streaming import StreamDecoder, StreamedPayload
from moorage.records.expiry import absolute_expiration, check_fresh, is_expired
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.base import Serializer
from moorage.storage.streams import read_record

KEY = "k"
WHERE = "memory://format-tests"
SECRET = b"a long random secret"
VALUE: dict[str, Any] = {"name": "mooring line", "count": 12345, "tags": ["bow", "stern"]}
SERIALIZERS = ["pickle", "json", "compressed/pickle", "compressed/json"]


def meta_for(serializer: str, **kw: Any) -> ResultRecordMetadata:
    return ResultRecordMetadata(serializer=Serializer(type=serializer), **kw)


def encode(
    serializer: str = "json",
    *,
    record_format: payloads.RecordFormat = "moorage",
    split: bool = False,
    signing_key: bytes | None = None,
    value: Any = VALUE,
    **meta: Any,
) -> codec.Encoded:
    metadata = meta_for(serializer, **meta)
    return codec.encode_record(metadata, value, KEY, record_format, split, signing_key)


def written(encoded: codec.Encoded, serializer: str = "json") -> ResultRecordMetadata:
    """The metadata a record of ``encoded`` holds: the caller's, plus what was filled in."""
    return meta_for(serializer).model_copy(update=encoded.filled)


def joined(parts: list[Any]) -> bytes:
    return b"".join(bytes(part) for part in parts)


def whole(serializer: str = "json", signing_key: bytes | None = None, **meta: Any) -> bytes:
    return joined(encode(serializer, signing_key=signing_key, **meta).result_parts)


def decode(data: bytes, trust: payloads.Trust | bytes | None = None) -> codec.Decoded:
    return codec.decode_record(data, KEY, WHERE, None, trust)


def reheaded(data: bytes, *, flags: int | None = None, meta_len: int | None = None) -> bytes:
    """``data`` with header fields replaced and the head CRC fixed again: damage that only
    the field's own check can catch."""
    prefix = bytearray(data[: native.PREFIX_SIZE])
    if flags is not None:
        prefix[5] = flags
    if meta_len is not None:
        prefix[8:12] = meta_len.to_bytes(4, "big")
    _, _, _, _, real_len, _ = struct.unpack_from(">4sBBHII", data)
    metadata = data[native.HEADER_SIZE : native.HEADER_SIZE + real_len]
    crc = struct.pack(">I", crc32c([bytes(prefix), metadata]))
    return bytes(prefix) + crc + data[native.HEADER_SIZE :]


# -- round trips ---------------------------------------------------------------------------


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("signing_key", [None, SECRET], ids=["unsigned", "signed"])
def test_native_records_round_trip(serializer: str, signing_key: bytes | None) -> None:
    encoded = encode(serializer, signing_key=signing_key)
    data = joined(encoded.result_parts)
    assert data.startswith(native.MAGIC)
    back = decode(data, signing_key)
    assert back.value == VALUE
    assert back.metadata == written(encoded, serializer)
    assert back.metadata.storage_key == KEY
    assert back.size == encoded.size == encoded.filled["payload_length"]
    algorithm = "sha256:" if signing_key else "crc32c:"
    assert (back.metadata.checksum or "").startswith(algorithm)


@pytest.mark.parametrize("serializer", SERIALIZERS)
def test_split_native_records_round_trip(serializer: str) -> None:
    encoded = encode(serializer, split=True)
    assert encoded.metadata_parts is not None
    metadata, payload = joined(encoded.metadata_parts), joined(encoded.result_parts)
    parsed = codec.parse_metadata_blob(metadata, KEY, WHERE)
    assert parsed.head is not None
    assert parsed.head.detached
    back = codec.decode_split(metadata, payload, KEY, WHERE, None)
    assert (back.value, back.metadata) == (VALUE, written(encoded, serializer))
    with pytest.raises(RecordCorrupted, match="stored apart"):
        decode(metadata)


@pytest.mark.parametrize("serializer", SERIALIZERS)
@pytest.mark.parametrize("split", [False, True], ids=["combined", "split"])
def test_prefect_records_round_trip(serializer: str, split: bool) -> None:
    encoded = encode(serializer, record_format="prefect", split=split)
    if split:
        assert encoded.metadata_parts is not None
        blob = joined(encoded.metadata_parts)
        assert prefect_format.is_prefect_metadata(orjson.loads(blob))
        back = codec.decode_split(blob, joined(encoded.result_parts), KEY, WHERE, None)
    else:
        data = joined(encoded.result_parts)
        assert prefect_format.is_prefect_record(orjson.loads(data))
        back = decode(data)
    assert back.value == VALUE
    assert back.metadata.serializer.type == serializer
    assert back.metadata.moorage_version is None  # written by Prefect's rules


def test_raw_payloads_need_a_serializer() -> None:
    raw = Serializer(type="json").dumps(VALUE)
    with pytest.raises(RecordCorrupted, match="no serializer was given"):
        decode(raw)
    back = codec.decode_record(raw, KEY, WHERE, Serializer(type="json"), None)
    assert back.value == VALUE
    assert back.metadata.storage_key == KEY


def test_a_prefect_record_cannot_be_signed() -> None:
    from moorage.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="signature"):
        encode(record_format="prefect", signing_key=SECRET)


@pytest.mark.parametrize("record_format", ["moorage", "prefect"])
def test_encoding_leaves_the_callers_metadata_as_it_was(
    record_format: payloads.RecordFormat,
) -> None:
    metadata = meta_for("compressed/json", storage_key=KEY)
    before = metadata.model_dump()
    encoded = codec.encode_record(
        metadata, VALUE, KEY, record_format, False, None, result_location="/abs/k"
    )
    assert metadata.model_dump() == before
    if record_format == "moorage":
        assert encoded.filled["payload_length"] == encoded.size
        assert encoded.filled["uncompressed_length"] == len(Serializer(type="json").dumps(VALUE))
        assert encoded.filled["storage_key"] == KEY
    else:
        assert encoded.filled == {"storage_key": "/abs/k"}


def test_record_methods_leave_the_record_as_it_was() -> None:
    record: ResultRecord[Any] = ResultRecord(
        result=VALUE, metadata=meta_for("compressed/json", storage_key=KEY)
    )
    before = record.metadata.model_dump()
    data = record.serialize(signing_key=SECRET)
    assert record.metadata.model_dump() == before
    back = ResultRecord.deserialize(data, signing_key=SECRET)
    assert back.result == VALUE
    assert back.metadata.checksum is not None
    assert back.metadata.uncompressed_length


# -- damage ------------------------------------------------------------------------------


def test_bad_magic_is_not_a_native_record() -> None:
    data = bytearray(whole())
    data[1] ^= 0xFF
    assert not native.is_native(bytes(data))
    with pytest.raises(RecordCorrupted, match=repr(KEY)):
        decode(bytes(data))


def test_a_truncated_magic_is_refused() -> None:
    with pytest.raises(RecordCorrupted, match="bytes of a record header"):
        codec.metadata_from_head(native.MAGIC[:3], KEY, WHERE, True)


def test_unknown_flags_are_refused_even_with_a_valid_head_crc() -> None:
    with pytest.raises(RecordCorrupted, match="unknown flags"):
        decode(reheaded(whole(), flags=0x80))


def test_another_format_version_is_refused() -> None:
    data = bytearray(whole())
    data[4] = native.FORMAT_VERSION + 1
    with pytest.raises(RecordCorrupted, match="format version"):
        decode(bytes(data))


@pytest.mark.parametrize("where", ["header", "metadata"])
def test_a_damaged_head_fails_its_checksum(where: str) -> None:
    data = bytearray(whole())
    data[6 if where == "header" else native.HEADER_SIZE + 3] ^= 0x01
    with pytest.raises(RecordCorrupted, match="head checksum"):
        decode(bytes(data))


@pytest.mark.parametrize("signing_key", [None, SECRET], ids=["crc32c", "sha256"])
def test_a_damaged_payload_fails_its_checksum(signing_key: bytes | None) -> None:
    data = bytearray(whole(signing_key=signing_key))
    data[-2] ^= 0x40
    with pytest.raises(RecordCorrupted, match="failed its payload checksum"):
        decode(bytes(data), signing_key)


@pytest.mark.parametrize("change", [-1, +1])
def test_a_truncated_or_padded_payload_is_refused(change: int) -> None:
    data = whole()
    damaged = data[:change] if change < 0 else data + b"\0"
    with pytest.raises(RecordCorrupted, match="truncated or padded"):
        decode(damaged)
    with pytest.raises(RecordCorrupted, match="head announces"):
        codec.metadata_from_head(damaged, KEY, WHERE, True)


def test_a_head_announcing_more_metadata_than_present_is_refused() -> None:
    data = whole()
    with pytest.raises(RecordCorrupted, match="the head says"):
        decode(reheaded(data, meta_len=len(data)))


def test_a_record_signed_with_another_key_fails_its_mac() -> None:
    with pytest.raises(RecordCorrupted, match="invalid signature"):
        decode(whole(signing_key=b"another key"), SECRET)


def test_an_unsigned_record_is_refused_by_a_signing_reader() -> None:
    with pytest.raises(RecordCorrupted, match="not signed"):
        decode(whole(), SECRET)
    prefect = joined(encode(record_format="prefect").result_parts)
    with pytest.raises(RecordCorrupted, match="no signature"):
        decode(prefect, SECRET)
    assert decode(prefect, payloads.Trust(SECRET, accept_unsigned_prefect=True)).value == VALUE


def test_a_reader_without_the_key_still_checks_a_signed_records_digest() -> None:
    data = bytearray(whole(signing_key=SECRET))
    assert decode(bytes(data)).value == VALUE
    data[-1] ^= 0x01
    with pytest.raises(RecordCorrupted, match="payload checksum"):
        decode(bytes(data))


def test_a_shape_of_a_prefect_record_that_is_not_one_is_damage() -> None:
    data = joined(encode(record_format="prefect").result_parts).replace(b'"result"', b'"resulT"')
    with pytest.raises(RecordCorrupted, match="resulT"):
        codec.decode_record(data, KEY, WHERE, Serializer(type="json"), None)


# -- declared sizes are bounded before allocation -------------------------------------------


def test_huge_declared_metadata_is_refused_before_it_is_read() -> None:
    data = reheaded(whole(), meta_len=native.MAX_METADATA_BYTES + 1)
    head = data[: native.HEAD_SIZE]
    with pytest.raises(RecordCorrupted, match="announces"):
        codec.metadata_from_head(head, KEY, WHERE, False)  # not: "read this many bytes"


def test_a_huge_stated_uncompressed_length_is_refused_before_decompressing(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moorage.serializers.compressed import CompressedSerializer

    calls: list[int] = []
    monkeypatch.setattr(
        CompressedSerializer, "loads_bounded", lambda self, data, limit, **kw: calls.append(limit)
    )
    parsed, payload = codec.split_record(whole("compressed/json"), KEY, WHERE)
    assert parsed is not None
    stated = parsed.metadata.model_copy(update={"uncompressed_length": 1 << 40})
    forged = payloads.ParsedMetadata(stated, "moorage", parsed.head)
    trust = payloads.Trust(max_payload_bytes=1 << 20)
    with pytest.raises(RecordCorrupted, match="max_payload_bytes"):
        payloads.decode_payload(forged, payload, KEY, WHERE, trust)
    assert calls == []
    payloads.decode_payload(parsed, payload, KEY, WHERE, trust)
    assert calls == [parsed.metadata.uncompressed_length]  # decompressed to exactly that


# -- streamed reads: the decisions, and the reading -------------------------------------------


def stream_of(data: bytes) -> tuple[io.BytesIO, int]:
    return io.BytesIO(data), len(data)


def test_a_large_unsigned_record_is_streamed_and_checked() -> None:
    value = list(range(5000))
    data = whole("pickle", value=value)
    decoder = StreamDecoder(KEY, WHERE, None, None)
    plan = decoder.plan(data[: decoder.first_read(len(data))], len(data))
    assert isinstance(plan, StreamedPayload)
    assert plan.offset + plan.length == len(data)
    back = read_record(decoder, *stream_of(data))
    assert (back.value, back.size) == (value, plan.length)


def test_a_damaged_streamed_payload_is_refused() -> None:
    data = bytearray(whole("json", value=list(range(5000))))
    data[-3] ^= 0x01  # still valid JSON, another value
    with pytest.raises(RecordCorrupted, match="failed its payload checksum"):
        read_record(StreamDecoder(KEY, WHERE, None, None), *stream_of(bytes(data)))


def test_a_stream_shorter_than_its_head_says_is_refused() -> None:
    data = whole("pickle", value=list(range(5000)))
    stream = io.BytesIO(data[:-10])
    with pytest.raises(RecordCorrupted, match="head announces"):
        read_record(StreamDecoder(KEY, WHERE, None, None), stream, len(data) - 10)


@pytest.mark.parametrize(
    ("serializer", "signing_key"),
    [("compressed/json", None), ("json", SECRET)],
    ids=["compressed", "signed"],
)
def test_compressed_and_signed_records_are_read_whole(
    serializer: str, signing_key: bytes | None
) -> None:
    data = whole(serializer, signing_key=signing_key)
    decoder = StreamDecoder(KEY, WHERE, None, signing_key)
    assert decoder.plan(data[: decoder.first_read(len(data))], len(data)) is None
    assert read_record(decoder, *stream_of(data)).value == VALUE


def test_metadata_longer_than_the_first_read_asks_for_more() -> None:
    data = whole("pickle", padding="p" * (2 * native.HEAD_SIZE))
    decoder = StreamDecoder(KEY, WHERE, None, None)
    need = decoder.plan(data[: native.HEAD_SIZE], len(data))
    assert isinstance(need, int)
    assert native.HEAD_SIZE < need <= len(data)
    assert isinstance(decoder.plan(data[:need], len(data)), StreamedPayload)
    assert read_record(decoder, *stream_of(data)).value == VALUE


def test_an_undecodable_streamed_payload_names_the_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moorage.serializers.pickle_serializer import PickleSerializer

    def failing(self: Serializer, stream: Any) -> Any:
        stream.read(3)
        raise SerializationError("cannot")

    monkeypatch.setattr(PickleSerializer, "load_stream", failing)
    data = whole("pickle", value=list(range(5000)))
    with pytest.raises(SerializationError, match=f"cannot decode record {KEY!r}"):
        read_record(StreamDecoder(KEY, WHERE, None, None), *stream_of(data))
    damaged = bytearray(data)
    damaged[-1] ^= 0x01  # damage explains the failure better than the serializer
    with pytest.raises(RecordCorrupted, match="payload checksum"):
        read_record(StreamDecoder(KEY, WHERE, None, None), *stream_of(bytes(damaged)))


# -- expiry ---------------------------------------------------------------------------------


def test_expiry_has_one_rule() -> None:
    past = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    assert is_expired(past)
    assert not is_expired(None)
    assert meta_for("json", expiration=past).is_expired()
    with pytest.raises(RecordExpired, match="expired at 2000-01-01T00:00:00Z"):
        check_fresh(KEY, WHERE, past)
    soon = absolute_expiration(dt.timedelta(hours=1))
    assert soon is not None
    assert not is_expired(soon)
    assert absolute_expiration(past) is past
    assert absolute_expiration(None) is None


def test_an_expired_record_is_refused_before_its_payload_is_decoded() -> None:
    data = whole("json", expiration=dt.datetime(2000, 1, 1, tzinfo=dt.UTC))
    assert decode(data).value == VALUE  # decode_record: expired or not
    with pytest.raises(RecordExpired):
        codec.decode_stored(data, KEY, WHERE, None, None)
    with pytest.raises(RecordExpired):
        read_record(StreamDecoder(KEY, WHERE, None, None), *stream_of(data))


def test_the_checked_reader_never_reads_past_the_payload() -> None:
    from moorage.format.integrity import PayloadCheck, checksum_of
    from moorage.storage.streams import CheckedReader

    payload = b"line one\nline two\n" * 10
    stream = io.BytesIO(b"HEAD" + payload + b"TRAILER")
    stream.seek(4)
    check = PayloadCheck(checksum_of(payload))
    reader = CheckedReader(stream, len(payload), check)
    assert reader.readline() == b"line one\n"
    assert reader.read(4) == b"line"
    buffer = bytearray(8)
    assert reader.readinto(buffer) == 8
    assert bytes(buffer) == b" two\nlin"
    reader.drain()
    assert reader.read() == b""
    assert stream.read() == b"TRAILER"
    assert check.length == len(payload)
    assert check.matches()
