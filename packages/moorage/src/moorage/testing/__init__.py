"""The plugin test kit: contract tests that any moorage backend runs in its own suite.

Four classes, one per kind of plugin. Subclass one in a test module (the subclass's
name must start with ``Test`` so pytest collects it), override its fixture, and every
``test_*`` method of the contract runs against your backend:

=========================  ============================  ===============================
contract                   fixture to override           what it must give
=========================  ============================  ===============================
`StorageContract`          ``storage``                   a fresh, empty `Storage`
                                                         (yield it; close it afterwards)
`LockManagerContract`      ``make_lock_manager``         ``make(*, hold_timeout)`` that
                                                         builds a `LockManager`
`SerializerContract`       ``serializer``                a `Serializer` instance
`HasherContract`           ``equal_groups``,             values that must share a key,
                           ``different_values``          and values that must not
=========================  ============================  ===============================

Example, in a plugin's ``tests/test_contracts.py``::

    import pytest
    from moorage.testing import LockManagerContract, SerializerContract, StorageContract
    from moorage_mystore import MyLockManager, MySerializer, MyStorage


    class TestMyStorage(StorageContract):
        @pytest.fixture
        def storage(self, tmp_path):
            storage = MyStorage(f"mystore://{tmp_path}")
            yield storage
            storage.close()


    class TestMyLockManager(LockManagerContract):
        @pytest.fixture
        def make_lock_manager(self, tmp_path):
            def make(*, hold_timeout):
                return MyLockManager(f"mystore://{tmp_path}", hold_timeout=hold_timeout)

            return make


    class TestMySerializer(SerializerContract):
        extra_samples = (b"bytes", (1, 2))

        @pytest.fixture
        def serializer(self):
            return MySerializer()

Requirements: pytest (importing this module imports it). pytest-asyncio is not needed:
the async twins are exercised with `asyncio.run` inside ordinary test methods. Class
attributes tune each contract (sizes, timeouts, samples); see each class. No test
asserts on speed: tests that wait use generous timeouts and check outcomes, and each
class runs in a few seconds against a local backend.
"""

from __future__ import annotations

from moorage.testing.hashers import HasherContract
from moorage.testing.locks import LockManagerContract, LockManagerFactory
from moorage.testing.serializers import DEFAULT_GARBAGE, DEFAULT_SAMPLES, SerializerContract
from moorage.testing.storage import INVALID_KEYS, INVALID_PREFIXES, StorageContract

__all__ = [
    "DEFAULT_GARBAGE",
    "DEFAULT_SAMPLES",
    "INVALID_KEYS",
    "INVALID_PREFIXES",
    "HasherContract",
    "LockManagerContract",
    "LockManagerFactory",
    "SerializerContract",
    "StorageContract",
]
