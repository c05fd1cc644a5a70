"""Child process for test_crash_atomicity: overwrite one key with large payloads forever.

Usage: python crash_writer.py STORAGE_URL KEY SEED. Prints "ready" once its payloads are
built, then writes until it is killed. Every payload checks itself: a header with a
magic, the body's length and the body's sha256, then the body.
"""

from __future__ import annotations

import hashlib
import random
import struct
import sys

from moorage_local import LocalStorage

MAGIC = b"HFCRASH1"
HEADER = struct.Struct(">8sQ32s")  # magic, body length, sha256 of the body


def payload_parts(body: bytes) -> list[bytes]:
    return [HEADER.pack(MAGIC, len(body), hashlib.sha256(body).digest()), body]


def main() -> None:
    url, key, seed = sys.argv[1], sys.argv[2], int(sys.argv[3])
    rng = random.Random(seed)
    storage = LocalStorage(url)
    # Two bodies of different sizes and bytes, so any mix of them is detectable.
    bodies = [rng.randbytes(size) for size in (3 << 20, 5 << 20)]
    payloads = [payload_parts(body) for body in bodies]
    print("ready", flush=True)
    n = 0
    while True:
        parts = payloads[n % 2]
        if n % 3:
            storage.write_parts(key, parts)
        else:
            storage.write_path(key, b"".join(parts))
        n += 1


if __name__ == "__main__":
    main()
