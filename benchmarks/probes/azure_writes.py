"""Measurements against Azurite, reported, never asserted (not collected by pytest).

    .venv/bin/python benchmarks/probes/azure_writes.py

1. 200 small ``awrite_path`` calls: all at once (``asyncio.gather``) and one by one,
   straight to Azurite (loopback: no latency to hide, both sides CPU-bound), then
   through the counting proxy adding 20 ms per request, like a nearby region.
2. Peak Python memory (tracemalloc) of writing a 64 MiB payload given as three parts:
   ``write_parts`` (staged blocks cut from the parts) against joining the parts first
   and handing the joined bytes to the SDK's ``upload_blob``.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from azure.storage.blob import BlobServiceClient

from servers.azure import AzureServer, start_azurite
from servers.proxy import CountingProxy

MIB = 1024 * 1024


def writes(server: AzureServer, via: str | None = None) -> None:
    storage = server.storage(server.create_container(), "writes", via=via)

    async def together() -> None:
        await asyncio.gather(*(storage.awrite_path(f"g/{i}", b"x" * 64) for i in range(200)))

    async def one_by_one() -> None:
        for i in range(200):
            await storage.awrite_path(f"s/{i}", b"x" * 64)

    asyncio.run(storage.awrite_path("warm-up", b"x"))
    for name, scenario in (("concurrently", together), ("sequentially", one_by_one)):
        started = time.perf_counter()
        asyncio.run(scenario())
        where = "through the 20 ms proxy" if via else "straight to Azurite"
        print(f"200 small awrites {name}, {where}: {time.perf_counter() - started:.2f} s")
    storage.close()


def memory(server: AzureServer) -> None:
    payload = bytes(64 * MIB)
    parts = [b"h" * 40, memoryview(payload), b"t" * 300]
    storage = server.make_storage("memory")
    storage.write_path("warm-up", b"x")
    tracemalloc.start()
    storage.write_parts("staged", parts)
    peak = tracemalloc.get_traced_memory()[1] / MIB
    print(f"write_parts, 64 MiB in 8 MiB blocks: peak {peak:.1f} MiB")
    tracemalloc.stop()

    container = server.create_container()
    with BlobServiceClient.from_connection_string(server.connection_string) as client:
        blob = client.get_blob_client(container, "joined")
        tracemalloc.start()
        blob.upload_blob(b"".join(parts), overwrite=True)
        peak = tracemalloc.get_traced_memory()[1] / MIB
        print(f"join + SDK upload_blob (sync client): peak {peak:.1f} MiB")
        tracemalloc.stop()
    storage.close()


def main() -> None:
    with tempfile.TemporaryDirectory() as folder:
        process = start_azurite(Path(folder), silent=True)
        try:
            server = AzureServer(process)
            writes(server)
            with CountingProxy(server.port) as proxy:
                proxy.delay = 0.02
                writes(server, proxy.endpoint)
            memory(server)
        finally:
            process.stop()


if __name__ == "__main__":
    main()
