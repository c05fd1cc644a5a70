"""`LockManagerContract`: the tests every lock manager must pass, combined from the
groups of cases in this package."""

from __future__ import annotations

from moorage.testing.locks.expiry import ExpiryCases
from moorage.testing.locks.fairness import FairWaitingCases
from moorage.testing.locks.holding import HoldingCases
from moorage.testing.locks.sharing import SharingCases
from moorage.testing.locks.waiting import WaitingCases

__all__ = ["LockManagerContract"]


class LockManagerContract(HoldingCases, ExpiryCases, WaitingCases, FairWaitingCases, SharingCases):
    """Contract tests for a `moorage.locking.base.LockManager` backend.

    Subclass it in your own test suite (name the subclass ``Test...``) and override the
    ``make_lock_manager`` fixture: it returns a function that builds a manager of your
    backend with the given default ``hold_timeout`` (seconds, or None)::

        import pytest
        from moorage.testing import LockManagerContract
        from my_plugin import MyLockManager

        class TestMyLockManager(LockManagerContract):
            @pytest.fixture
            def make_lock_manager(self, tmp_path):
                def make(*, hold_timeout):
                    return MyLockManager(tmp_path.as_uri(), hold_timeout=hold_timeout)
                return make

    The ``lock_manager`` fixture (the manager most tests use) is
    ``make_lock_manager(hold_timeout=default_hold_timeout)``; override it too only if
    you need something special. Managers made within one test must share one backend
    (two clients of one server or folder); set ``shared_backend = False`` if yours
    cannot, and the test that checks it is skipped. Managers the kit makes are closed
    after use. Keys carry a per-test random token, so process-wide backends need not be
    emptied between tests.

    Managers must pickle (with `pickle` and ``cloudpickle``) as their configuration, and
    the copy must compare and hash equal to the original and use the same backend; see
    `moorage.locking.base.LockManager.process_state`.

    No test asserts on speed: waits that should succeed get ``wait_timeout`` seconds and
    assert the outcome. Class attributes tune the contract: ``default_hold_timeout``,
    ``short_hold_timeout``, ``wait_timeout``, ``contention_threads``,
    ``contention_rounds``, ``shared_backend`` and ``fair_waiting`` (see
    `moorage.testing.locks.harness.LockManagerHarness`).

    Waiting is expected to be fair: a free lock goes to the waiter already waiting, not
    to a holder that releases and asks again at once. A backend whose waiters only poll
    (nothing queues them) sets ``fair_waiting = False``, and the ``test_fair_waiting_*``
    cases are skipped::

        class TestMyLockManager(LockManagerContract):
            fair_waiting = False  # waiters poll; no queue

    The tests come in groups, one class each, that this class combines: acquiring and
    releasing (`HoldingCases`), hold timeouts (`ExpiryCases`), waiting
    (`WaitingCases`), fair waiting (`FairWaitingCases`), and managers that share a
    backend or travel by pickle (`SharingCases`).
    """
