"""A serializer's stored description is made once per (frozen) serializer and shared by
the writes that encode it; what `ResultRecordMetadata.to_dict` hands out stays the
caller's to change."""

from __future__ import annotations

from pathlib import Path

from moorage import ResultStore
from moorage.records.metadata import ResultRecordMetadata
from moorage.serializers.base import description_of
from moorage.serializers.json_serializer import JSONSerializer
from moorage.serializers.pickle_serializer import PickleSerializer


def test_a_frozen_serializer_is_described_once() -> None:
    serializer = PickleSerializer(picklelib="pickle")
    first = description_of(serializer)
    assert first == serializer.to_dict()
    assert description_of(serializer) is first


def test_to_dict_is_the_callers_to_change(tmp_path: Path) -> None:
    serializer = JSONSerializer()
    meta = ResultRecordMetadata(storage_key="k", serializer=serializer)
    handed_out = meta.to_dict()
    handed_out["serializer"]["type"] = "changed"
    assert description_of(serializer)["type"] == "json"
    store = ResultStore(result_storage=str(tmp_path), serializer=serializer)
    store.write({"a": 1}, key="k")
    assert store.read("k").metadata.serializer.type == "json"
    assert ResultStore(result_storage=str(tmp_path)).read("k").result == {"a": 1}
