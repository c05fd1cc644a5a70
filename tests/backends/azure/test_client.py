"""The storage's own SDK client: built beside adlfs's filesystem from the account and
credential adlfs resolved, never written into the filesystem; built again where the
storage lands (an unpickled copy, a forked child); closed once, by its own process."""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable
from typing import Any

import pytest

from moorage.storage import Storage
from moorage_azure import AzureStorage
from moorage_azure.client import build_client, build_filesystem

from servers.azure import AzureServer

#: A forked child that has not finished by then is stuck: SIGALRM ends it, and the test
#: fails on its exit status instead of waiting for good.
CHILD_HANG = 120


def _held(storage: Storage) -> tuple[Any, Any]:
    """The storage's adlfs filesystem and its own client (built without a request)."""
    assert isinstance(storage, AzureStorage)
    fs = storage._filesystem()
    return fs, storage._service(fs)


def test_the_client_is_built_from_the_filesystem_without_changing_it(
    azurite: AzureServer,
) -> None:
    storage = azurite.storage("c0ntainer", connection_string=azurite.connection_string)
    assert isinstance(storage, AzureStorage)
    fs = build_filesystem(storage.config, storage.url, asynchronous=False, loop=None)
    before = dict(vars(fs))
    client = build_client(fs, storage.config)
    after = vars(fs)
    assert after.keys() == before.keys()
    assert all(after[name] is value for name, value in before.items()), "fs was changed"
    resolved = fs.service_client
    assert client is not resolved
    assert (client.url, client.credential) == (resolved.url, resolved.credential)
    assert (client.account_name, client.primary_hostname) == (
        resolved.account_name,
        resolved.primary_hostname,
    )


def test_requests_go_through_the_storages_client(make: Callable[..., Storage]) -> None:
    storage = make()
    fs, client = _held(storage)
    resolved = fs.service_client
    storage.write_path("k", b"v")
    assert storage.read_path("k") == b"v"
    again_fs, again_client = _held(storage)
    assert again_fs is fs, "the filesystem was built again for no reason"
    assert again_client is client, "the client was built again for no reason"
    assert fs.service_client is resolved, "adlfs's client was replaced"
    assert client._pipeline._transport.session is not None, "the storage's client was unused"


def test_close_closes_the_client_once_and_the_storage_connects_again(
    make: Callable[..., Storage],
) -> None:
    storage = make()
    storage.write_path("k", b"v")
    _, first = _held(storage)
    storage.close()
    storage.close()
    assert first._pipeline._transport.session is None, "close left the connections open"
    assert storage.read_path("k") == b"v"
    assert _held(storage)[1] is not first


def test_an_unpickled_copy_builds_its_own_client(make: Callable[..., Storage]) -> None:
    storage = make()
    storage.write_path("k", b"from the original")
    fs, client = _held(storage)
    copy = pickle.loads(pickle.dumps(storage))
    try:
        assert copy == storage
        assert copy.read_path("k") == b"from the original"
        copy_fs, copy_client = _held(copy)
        assert copy_fs is not fs
        assert copy_client is not client
    finally:
        copy.close()
    assert storage.read_path("k") == b"from the original", "closing the copy closed ours"
    assert _held(storage)[1] is client


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork()")
def test_a_forked_child_builds_its_own_client(make: Callable[..., Storage]) -> None:
    storage = make()
    storage.write_path("parent", b"from the parent")
    _, parent_client = _held(storage)
    pid = os.fork()
    if pid == 0:  # the child: must neither use nor close the parent's client
        code = 1
        try:
            signal.alarm(CHILD_HANG)
            storage.close()  # the parent's client is the parent's to close
            _, client = _held(storage)
            if client is not parent_client and storage.read_path("parent") == b"from the parent":
                storage.write_path("child", b"from the child")
                storage.close()
                code = 0
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert storage.read_path("child") == b"from the child"
    assert _held(storage)[1] is parent_client, "the parent's client is still its own"
