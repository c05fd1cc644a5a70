"""The plugin test kit applied to moorage-local: `LocalStorage` and `FileLockManager`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import moorage_local
from moorage.locking import LockManager
from moorage.plugins.resolve import lock_manager_from, storage_from
from moorage.storage import Storage
from moorage.testing import LockManagerContract, LockManagerFactory, StorageContract

pytestmark = pytest.mark.filterwarnings("ignore:moorage plugin 'broken:RuntimeWarning")


class TestLocalStorage(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[Storage]:
        storage: Storage = moorage_local.LocalStorage(tmp_path / "root")
        yield storage
        storage.close()


class TestLocalStorageFromFileURL(StorageContract):
    """Built through the plugin registry from a ``file://`` URL, as users get it."""

    large_payload_size = 1024 * 1024

    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[Storage]:
        storage = storage_from((tmp_path / "via url").as_uri())
        assert isinstance(storage, moorage_local.LocalStorage)
        yield storage
        storage.close()


class TestFileLockManager(LockManagerContract):
    @pytest.fixture
    def make_lock_manager(self, tmp_path: Path) -> LockManagerFactory:
        folder = (tmp_path / "locks").as_uri()

        def make(*, hold_timeout: float | None) -> LockManager:
            manager: LockManager = moorage_local.FileLockManager(folder, hold_timeout=hold_timeout)
            return manager

        return make


class TestFileLockManagerFromURL(LockManagerContract):
    """Built through the plugin registry from a ``file://`` URL."""

    @pytest.fixture
    def make_lock_manager(self, tmp_path: Path) -> LockManagerFactory:
        folder = (tmp_path / "url locks").as_uri()

        def make(*, hold_timeout: float | None) -> LockManager:
            manager: LockManager = lock_manager_from(folder, hold_timeout=hold_timeout)
            assert isinstance(manager, moorage_local.FileLockManager)
            return manager

        return make
