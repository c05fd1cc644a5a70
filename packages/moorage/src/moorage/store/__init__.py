"""The result store: records written, read, checked and locked through a storage."""

from moorage.store.store import ResultStore

__all__ = ["ResultStore"]
