"""`StorageContract`: the tests every storage backend must pass.

The contract is one class, `StorageContract`, built from groups of cases that each
module of this package holds: `harness` (the ``storage`` fixture, tuning attributes and
shared helpers), `basics`, `payloads`, `listing`, `keys` (with `INVALID_KEYS` and
`INVALID_PREFIXES`), `concurrency`, `conditional` and `retention`.
"""

from __future__ import annotations

from moorage.testing.storage.contract import StorageContract
from moorage.testing.storage.keys import INVALID_KEYS, INVALID_PREFIXES

__all__ = ["INVALID_KEYS", "INVALID_PREFIXES", "StorageContract"]
