"""The lock-manager contract kit, run on the object-store lock manager on each emulator,
with managers built from their URLs as configuration builds them."""

from __future__ import annotations

from typing import ClassVar

import pytest

from moorage.locking import LockManager
from moorage.locking.objects import ObjectStoreLockManager
from moorage.testing import LockManagerContract, LockManagerFactory

from .conftest import Place


class TestObjectStoreLockManagerContract(LockManagerContract):
    #: Waiters poll; nothing queues them (fair queues on an object store are not asked).
    fair_waiting: ClassVar[bool] = False

    @pytest.fixture
    def make_lock_manager(self, place: Place) -> LockManagerFactory:
        def make(*, hold_timeout: float | None) -> LockManager:
            manager = place.manager(hold_timeout=hold_timeout)
            assert type(manager) is ObjectStoreLockManager
            return manager

        return make
