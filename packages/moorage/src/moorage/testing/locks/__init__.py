"""`LockManagerContract`: the tests every lock manager must pass.

The contract is one class, `LockManagerContract`, built from groups of cases that each
module of this package holds: `harness` (the fixtures, `LockManagerFactory` and the
tuning attributes), `holding`, `expiry`, `waiting`, `fairness` and `sharing`.
"""

from __future__ import annotations

from moorage.testing.locks.contract import LockManagerContract
from moorage.testing.locks.harness import LockManagerFactory

__all__ = ["LockManagerContract", "LockManagerFactory"]
