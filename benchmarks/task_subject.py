"""The function the task workloads decorate: cheap, deterministic, a small result.

It lives in a module of its own so that every process that decorates it sees the same
module, name and source, which is what moorage's and joblib's cache keys are made of.
`CALLS` counts how often its body ran in this process, so a workload can tell a cache
hit from a computation.
"""

from __future__ import annotations

__all__ = ["CALLS", "subject"]

CALLS = [0]


def subject(i: int) -> list[float]:
    """32 floats derived from ``i``."""
    CALLS[0] += 1
    return [i * 0.5 + k for k in range(32)]
