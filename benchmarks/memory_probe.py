"""Worker: the peak extra memory of one large write or read, in a fresh process.

``python -m benchmarks.memory_probe CONTENDER OP KIND NBYTES FOLDER`` with CONTENDER
``moorage`` or ``raw``, OP ``write`` or ``read``, KIND ``bytes`` or ``numpy``.

The process imports everything and does an untimed warm-up (a tiny write and read with
the same contender and kind). Then it reads its resident set (``VmRSS`` in
``/proc/self/status``), resets the kernel's high-water mark by writing ``5`` to
``/proc/self/clear_refs``, runs the operation, and reads the high-water mark
(``VmHWM``). The peak extra memory is ``VmHWM`` minus the resident set before. For a
write the payload exists before; for a read the value read is part of the peak, so
1.0x the payload is the floor. Where ``clear_refs`` is not available the peak is
``ru_maxrss``, the process's lifetime peak, which then also covers the warm-up.

The write stores under the key ``probe`` in ``FOLDER``, where a later read finds it.
"""

from __future__ import annotations

import gc
import resource
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks.isolation import guard_if_asked
from benchmarks.workers import reply

__all__ = ["make_payload", "peak_extra"]


def _status(field: str) -> int:
    """A ``/proc/self/status`` field in bytes (its values are in kB)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def _reset_peak() -> bool:
    """Reset VmHWM to the current resident set; False where the kernel does not allow it."""
    try:
        with open("/proc/self/clear_refs", "w") as clear:
            clear.write("5")
    except OSError:
        return False
    return _status("VmHWM") <= _status("VmRSS") + 1024 * 1024


def peak_extra(operation: Callable[[], Any]) -> tuple[int, str, Any]:
    """Run ``operation``; (peak bytes above the resident set before it, how the peak was
    measured, its result). The result is kept alive until the peak has been read."""
    gc.collect()
    before = _status("VmRSS")
    if _reset_peak():
        result = operation()
        peak, method = _status("VmHWM"), "VmHWM after clear_refs"
    else:
        result = operation()
        peak, method = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024, "ru_maxrss"
    return max(0, peak - before), method, result


def make_payload(kind: str, nbytes: int) -> Any:
    """``bytes`` of ``nbytes`` (every page touched), or a float64 NumPy array as large."""
    if kind == "bytes":
        return b"\x5a" * nbytes
    if kind == "numpy":
        import numpy as np

        return np.arange(nbytes // 8, dtype=np.float64)
    raise ValueError(f"payload kind is 'bytes' or 'numpy', not {kind!r}")


def _size(value: Any) -> int:
    return len(value) if isinstance(value, bytes) else int(value.nbytes)


def main(argv: list[str]) -> None:
    guard_if_asked()
    contender, op, kind, nbytes_text, folder_text = argv
    nbytes, folder = int(nbytes_text), Path(folder_text)
    write: Callable[[Any, str], object]
    read: Callable[[str], Any]
    if contender == "moorage":
        from benchmarks.contenders import moorage_store

        store = moorage_store(folder, cache=False)
        write, read = (lambda v, k: store.write(v, key=k)), (lambda k: store.read(k).result)
    elif contender == "raw":
        from benchmarks.contenders import RawFiles

        files = RawFiles(folder)
        write, read = files.write, files.read
    else:
        raise ValueError(f"contender is 'moorage' or 'raw', not {contender!r}")

    write(make_payload(kind, 4096), "warm-up")
    read("warm-up")
    if op == "write":
        payload = make_payload(kind, nbytes)
        extra, method, _ = peak_extra(lambda: write(payload, "probe"))
    elif op == "read":
        extra, method, value = peak_extra(lambda: read("probe"))
        if _size(value) != nbytes:
            raise RuntimeError(f"read back {_size(value)} bytes, not {nbytes}")
    else:
        raise ValueError(f"op is 'write' or 'read', not {op!r}")
    reply({"extra": extra, "method": method})


if __name__ == "__main__":
    main(sys.argv[1:])
