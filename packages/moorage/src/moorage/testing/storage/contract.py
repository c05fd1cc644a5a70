"""`StorageContract`: the tests every storage backend must pass, combined from the groups
of cases in this package."""

from __future__ import annotations

from moorage.testing.storage.basics import ReadWriteCases
from moorage.testing.storage.concurrency import ConcurrencyCases
from moorage.testing.storage.conditional import ConditionalWriteCases
from moorage.testing.storage.keys import KeyCases
from moorage.testing.storage.listing import ListingCases
from moorage.testing.storage.payloads import PayloadCases
from moorage.testing.storage.retention import RetentionCases

__all__ = ["StorageContract"]


class StorageContract(
    ReadWriteCases,
    PayloadCases,
    ListingCases,
    KeyCases,
    ConcurrencyCases,
    ConditionalWriteCases,
    RetentionCases,
):
    """Contract tests for a `moorage.storage.base.Storage` backend.

    Subclass it in your own test suite (the subclass's name must start with ``Test`` so
    pytest collects it) and override the ``storage`` fixture so that it yields a fresh,
    empty storage for every test::

        import pytest
        from moorage.testing import StorageContract
        from my_plugin import MyStorage

        class TestMyStorage(StorageContract):
            @pytest.fixture
            def storage(self, tmp_path):
                store = MyStorage(tmp_path.as_uri().replace("file://", "my://"))
                yield store
                store.close()

    The fixture may request any other fixture (``tmp_path``, a server fixture...). Only
    ``storage`` has to be overridden. Class attributes tune sizes: ``large_payload_size``,
    ``concurrent_writers``, ``concurrent_rounds``, ``concurrent_payload_size``,
    ``thread_timeout``, ``racing_creators`` and ``batch_delete_keys`` (see
    `moorage.testing.storage.harness.StorageHarness`). The async twins are driven with
    `asyncio.run` inside ordinary test methods, so pytest-asyncio is not needed.

    The tests come in groups, one class each, that this class combines: single keys
    (`ReadWriteCases`), large and multi-part payloads (`PayloadCases`), listings
    (`ListingCases`), key validation (`KeyCases`), concurrent writers
    (`ConcurrencyCases`), conditional writes (`ConditionalWriteCases`), and batch deletes
    with the expiry stamps of ``lists_expiration`` (`RetentionCases`).
    """
