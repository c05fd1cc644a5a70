"""Measure (not a test): 200 small ``awrite_path`` calls, concurrently vs one by one.

Run from the repository root: ``.venv/bin/python benchmarks/probes/s3_concurrency.py``.
It starts its own moto server on 127.0.0.1 with a free port and a counting proxy in
front of it, and prints wall-clock times and the most requests in flight at once.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tests"))

from moorage_s3 import S3Storage

from servers.proxy import CountingProxy
from servers.s3 import S3Server, start_moto

WRITES = 200
PAYLOAD = b"x" * 1024


async def sequential(storage: S3Storage) -> None:
    for i in range(WRITES):
        await storage.awrite_path(f"sequential/{i}", PAYLOAD)


async def concurrent(storage: S3Storage) -> None:
    await asyncio.gather(*(storage.awrite_path(f"concurrent/{i}", PAYLOAD) for i in range(WRITES)))


def main() -> None:
    process = start_moto(Path(tempfile.mkdtemp(prefix="moorage-s3-measure-")))
    try:
        server = S3Server(process)
        direct = server.make_storage("measure")
        direct.write_path("warm-up", PAYLOAD)  # moto loads its S3 backend on first use
        proxy = CountingProxy(server.port)
        counted = S3Storage(direct.url, **server.options(proxy.endpoint))
        counted.write_path("warm-up", PAYLOAD)
        for name, scenario, storage in [
            ("sequential, direct", sequential, direct),
            ("concurrent, direct", concurrent, direct),
            ("sequential, via proxy", sequential, counted),
            ("concurrent, via proxy", concurrent, counted),
        ]:
            proxy.reset()
            started = time.perf_counter()
            asyncio.run(scenario(storage))
            took = time.perf_counter() - started
            flight = f", max in flight {proxy.max_in_flight}" if storage is counted else ""
            print(f"{name:24} {WRITES} writes in {took:6.2f} s{flight}")
        proxy.stop()
    finally:
        process.stop()


if __name__ == "__main__":
    main()
