"""The current run context, kept in contextvars so threads and asyncio tasks each see theirs.

The workflow layer sets it while a task or flow runs; `should_persist_result` and
`get_result_store` read it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from moorage.store.store import ResultStore

__all__ = ["RunContext", "current_context", "run_context"]


@dataclass(frozen=True)
class RunContext:
    """What a running task or flow tells the results layer."""

    result_store: ResultStore | None = None
    persist_result: bool | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    is_task: bool = True


_current: ContextVar[RunContext | None] = ContextVar("moorage_run_context", default=None)


def current_context() -> RunContext | None:
    return _current.get()


@contextlib.contextmanager
def run_context(context: RunContext) -> Iterator[RunContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
