"""docs/format.md's worked example shows the bytes moorage really writes."""

from __future__ import annotations

import re
from pathlib import Path

from moorage.format.record import ResultRecord
from moorage.records.metadata import ResultRecordMetadata

FORMAT_DOC = Path(__file__).resolve().parents[2] / "docs" / "format.md"


def xxd(data: bytes) -> list[str]:
    """What ``xxd`` prints for ``data``: 16 bytes a line, in groups of two."""
    lines = []
    for offset in range(0, len(data), 16):
        chunk = data[offset : offset + 16]
        groups = " ".join(chunk[i : i + 2].hex() for i in range(0, len(chunk), 2))
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"{offset:08x}: {groups:<39}  {text}")
    return lines


def documented_dump(after: str) -> list[str]:
    """The lines of the first ``text`` block that follows ``after`` in the doc."""
    doc = FORMAT_DOC.read_text()
    start = doc.index(after)
    block = re.search(r"```text\n(.*?)```", doc[start:], re.DOTALL)
    assert block is not None, f"no text block after {after!r} in {FORMAT_DOC}"
    return block.group(1).splitlines()


def example_record() -> ResultRecord:
    metadata = ResultRecordMetadata(storage_key="demo", serializer="json")
    return ResultRecord(result={"x": 1}, metadata=metadata)


def test_worked_example_dump_is_the_real_record() -> None:
    assert documented_dump("`xxd` of `data`:") == xxd(example_record().serialize())


def test_signed_example_dump_is_the_real_record() -> None:
    signed = example_record().serialize(signing_key=b"secret")
    shown = documented_dump("MAC follows the header:")
    assert shown == xxd(signed)[: len(shown)]
    assert len(shown) == 4


def test_xxd_matches_the_tool_on_a_short_last_line() -> None:
    assert xxd(b"\x89MOR{") == ["00000000: 894d 4f52 7b                             .MOR{"]
