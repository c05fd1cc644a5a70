"""The task the scale-out tests send to workers, and how they count its runs.

Each run of the body leaves one empty file named ``<n>-<random>`` in the folder the
call names, on the disk the workers share, so the tests can count how often the body
really ran, per input, whichever process ran it.
"""

from __future__ import annotations

import os
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import moorage
from moorage.workflow.cache_policies import CODE, DEFAULT, INPUTS

#: The folder of runs is not part of the key: equal inputs are equal calls.
POLICY = DEFAULT - "runs"


@moorage.task(cache_policy=POLICY)
def slow_square(n: int, runs: str) -> dict[str, int]:
    """``n * n``, slowly enough that equal calls arriving together overlap."""
    (Path(runs) / f"{n}-{uuid.uuid4().hex}").touch()
    time.sleep(0.3)
    return {"n": n, "square": n * n, "pid": os.getpid()}


def runs_per_input(runs: Path) -> Counter[int]:
    """How often the body ran for each input."""
    return Counter(int(entry.name.split("-")[0]) for entry in runs.iterdir())


#: Read by a helper of `shifted_total`: part of its `CODE` key.
OFFSET = 1


def _offset(n: int) -> int:
    return n + OFFSET


@moorage.task(cache_policy=INPUTS + CODE)
def shifted_total(frame: Any) -> int:
    """A task keyed by its data (a DataFrame) and by the code it uses."""
    return int(frame["x"].map(_offset).sum())


def key_of(task: Any, *args: Any) -> str | None:
    """The key ``task`` uses for ``args`` in the process that runs this."""
    key: str | None = task.explain_key(*args).key
    return key
