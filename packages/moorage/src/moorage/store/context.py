"""The current run context, kept in contextvars so threads and asyncio tasks each see theirs.

The workflow layer sets it while a task or flow runs; `should_persist_result` and
`get_result_store` (`moorage.results`), `PersistedResult` and ``result_storage_key``
templates read it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from moorage.store.base import StoreBase

__all__ = ["RunContext", "current_context", "current_store", "run_context"]


@dataclass(frozen=True)
class RunContext:
    """What a running task or flow tells the results layer."""

    result_store: StoreBase | None = None
    persist_result: bool | None = None
    parameters: dict[str, Any] = field(default_factory=dict)
    is_task: bool = True


_current: ContextVar[RunContext | None] = ContextVar("moorage_run_context", default=None)


def current_context() -> RunContext | None:
    return _current.get()


def current_store() -> StoreBase | None:
    """The running task's or flow's store, if one is running and has one."""
    context = _current.get()
    return context.result_store if context is not None else None


@contextlib.contextmanager
def run_context(context: RunContext) -> Iterator[RunContext]:
    token = _current.set(context)
    try:
        yield context
    finally:
        _current.reset(token)
