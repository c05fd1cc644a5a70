"""What a flow or a task asks of its store, read from the attributes Prefect's flows and
tasks carry (any object with them will do): ``result_storage``, ``result_serializer``,
``cache_result_in_memory``; for tasks also ``result_storage_key`` (a template filled from
the running task's parameters) and ``cache_policy``'s ``key_storage``, ``lock_manager``
and ``isolation_level``. `ResultStore.update_for_flow` and `update_for_task` apply the
updates these functions return."""

from __future__ import annotations

from functools import partial
from typing import Any

from moorage.errors import ConfigurationError
from moorage.locking import IsolationLevel, LockManager
from moorage.plugins.resolve import lock_manager_from, storage_from
from moorage.store.context import current_context

__all__ = ["flow_update", "format_storage_key", "task_update"]


def flow_update(obj: Any) -> dict[str, Any]:
    """The store fields a flow (or a task) sets: those of its attributes that are not None."""
    update: dict[str, Any] = {}
    storage = getattr(obj, "result_storage", None)
    if storage is not None:
        update["result_storage"] = storage_from(storage)
    serializer = getattr(obj, "result_serializer", None)
    if serializer is not None:
        update["serializer"] = serializer
    in_memory = getattr(obj, "cache_result_in_memory", None)
    if in_memory is not None:
        update["cache_result_in_memory"] = bool(in_memory)
    return update


def task_update(task: Any, lock_manager: LockManager | None) -> dict[str, Any]:
    """The store fields a task sets; ``lock_manager`` is the store's own, which a
    SERIALIZABLE cache policy without a lock manager of its own needs."""
    update = flow_update(task)
    template = getattr(task, "result_storage_key", None)
    if template is not None:
        update["storage_key_fn"] = partial(format_storage_key, template, task)
    policy = getattr(task, "cache_policy", None)
    if policy is None:
        return update
    key_storage = getattr(policy, "key_storage", None)
    if key_storage is not None:
        update["metadata_storage"] = storage_from(key_storage)
    policy_locks = getattr(policy, "lock_manager", None)
    if policy_locks is not None:
        update["lock_manager"] = lock_manager_from(policy_locks)
    level = getattr(policy, "isolation_level", None)
    serializable = level is not None and IsolationLevel(level) is IsolationLevel.SERIALIZABLE
    if serializable and update.get("lock_manager", lock_manager) is None:
        raise ConfigurationError(
            "the task's cache policy asks for SERIALIZABLE isolation, which needs a "
            "lock manager; set cache_policy.lock_manager (e.g. 'file:///tmp/locks')"
        )
    return update


def format_storage_key(template: str, task: Any) -> str:
    """Fill a ``result_storage_key`` template from the running task's parameters."""
    context = current_context()
    parameters = context.parameters if context is not None else getattr(task, "parameters", {})
    fn = getattr(task, "fn", None)
    try:
        return template.format(parameters=parameters, fn=fn, task=task)
    except (KeyError, IndexError, AttributeError) as exc:
        raise ConfigurationError(
            f"cannot fill result_storage_key {template!r}: {exc!r} is missing; the template "
            "can use {parameters[name]}, {fn.__name__} and {task}"
        ) from exc
