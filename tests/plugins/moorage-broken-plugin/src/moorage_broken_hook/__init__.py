"""A moorage plugin that imports fine but whose register hook raises halfway.

moorage must skip it with a warning and keep none of its registrations (the
``broken-hook`` scheme registered before the failure must not be served).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import moorage


def _never_built(url: str, **options: Any) -> Any:
    raise AssertionError("the broken-hook plugin's storage must never be built")


@moorage.hookimpl
def register_storages(register: Callable[[str, Callable[..., Any]], None]) -> None:
    register("broken-hook", _never_built)
    raise RuntimeError("this register hook is broken on purpose")
