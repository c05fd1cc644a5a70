"""What a run ran on: CPU, cores, memory, OS, Python and the versions compared."""

from __future__ import annotations

import os
import platform
from importlib import metadata

__all__ = ["describe"]

#: Distributions whose versions the report names.
LIBRARIES = ("moorage", "prefect", "diskcache", "joblib", "redis", "s3fs", "moto", "numpy")


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _memory() -> str:
    try:
        with open("/proc/meminfo") as info:
            for line in info:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024**2:.1f} GiB RAM"
    except OSError:
        pass
    return "unknown RAM"


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def describe() -> list[str]:
    """Lines for the report: machine, system, interpreter, library versions."""
    cores = os.cpu_count() or 0
    versions = ", ".join(f"{name} {_version(name)}" for name in LIBRARIES)
    return [
        f"{_cpu_model()}, {cores} cores, {_memory()}",
        f"{platform.system()} {platform.release()}, {platform.python_implementation()} "
        f"{platform.python_version()}",
        versions,
    ]
