"""`PayloadCases`: large payloads and values written in parts (``write_parts``)."""

from __future__ import annotations

from moorage.buffers import BytesLike
from moorage.storage import Storage
from moorage.testing._util import run
from moorage.testing.storage.harness import StorageHarness

__all__ = ["PayloadCases"]


class PayloadCases(StorageHarness):
    """Payloads too big for one buffer, and values streamed as parts: the record writer
    hands ``write_parts`` a header and a payload, often as views into larger buffers."""

    def test_round_trip_large_payload(self, storage: Storage) -> None:
        content = self._large_payload()
        storage.write_path("large/payload", content)
        data = storage.read_path("large/payload")
        assert len(data) == len(content)
        assert data == content, "the large payload came back different"
        assert storage.read_head("large/payload", 1000) == content[:1000]

    def test_write_parts_equals_joined_parts(self, storage: Storage) -> None:
        parts: list[BytesLike] = [
            b"alpha-",
            bytearray(b"beta-"),
            memoryview(b"gamma-"),
            b"",
            b"delta",
        ]
        location = storage.write_parts("parts/mixed", parts)
        assert storage.read_path("parts/mixed") == b"alpha-beta-gamma-delta"
        assert location == storage.resolve_path("parts/mixed")

        storage.write_parts("parts/none", [])
        assert storage.read_path("parts/none") == b""

        big = self._large_payload()
        chunks = [big[i : i + 1_000_003] for i in range(0, len(big), 1_000_003)]
        storage.write_parts("parts/big", chunks)
        assert storage.read_path("parts/big") == big

    def test_write_parts_overwrites(self, storage: Storage) -> None:
        storage.write_path("parts/over", b"a much longer original value")
        storage.write_parts("parts/over", [b"new", b"er"])
        assert storage.read_path("parts/over") == b"newer"

    def test_async_write_parts(self, storage: Storage) -> None:
        async def scenario() -> str:
            return await storage.awrite_parts(
                "async/parts", [b"one-", bytearray(b"two-"), memoryview(b"three")]
            )

        location = run(scenario())
        assert location == storage.resolve_path("async/parts")
        assert storage.read_path("async/parts") == b"one-two-three"
