"""``delete_paths`` on S3 is DeleteObjects: 1,000 keys a request, seen at a counting
proxy in front of moto, and the keys S3 could not delete are reported, not ignored."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable

import pytest
from fsspec.asyn import AsyncFileSystem

from moorage import StorageError
from moorage.storage.objectbackend import ObjectBackend
from moorage_s3 import S3Storage

from servers.proxy import CountingProxy, Exchange, Reply
from servers.s3 import S3Server, error_reply


def counted(moto: S3Server, proxy: CountingProxy, name: str) -> tuple[S3Storage, S3Storage]:
    """A storage on a new bucket, and a second client of it whose requests are counted."""
    writer = moto.make_storage(name)
    return writer, S3Storage(writer.url, **moto.options(proxy.endpoint))


def deletes(proxy: CountingProxy) -> list[Exchange]:
    """The DeleteObjects requests (``POST /bucket?delete``) the proxy saw."""
    return [e for e in proxy.exchanges if e.method == "POST" and "delete" in e.path]


def requested_keys(exchange: Exchange) -> list[str]:
    return re.findall(r"<Key>([^<]*)</Key>", exchange.body.decode())


def test_thousands_of_keys_go_in_requests_of_a_thousand(
    moto: S3Server, proxy: CountingProxy
) -> None:
    writer, storage = counted(moto, proxy, "batches")
    keys = [f"many/{i:05d}" for i in range(2500)]

    async def fill() -> None:
        gate = asyncio.Semaphore(32)

        async def put(key: str) -> None:
            async with gate:
                await writer.awrite_path(key, b"x")

        await asyncio.gather(*(put(key) for key in keys))

    asyncio.run(fill())
    writer.write_path("kept", b"y")
    proxy.reset()

    storage.delete_paths([*keys, "never/written"])

    sent = deletes(proxy)
    summary = "\n".join(proxy.summary())
    assert len(sent) == 3, summary
    assert len(proxy.exchanges) == 3, f"more than the DeleteObjects requests:\n{summary}"
    assert [len(requested_keys(e)) for e in sent] == [1000, 1000, 501]
    assert "<Quiet>true</Quiet>" in sent[0].body.decode()
    # S3 requires an integrity check of this request; botocore sends it as a header
    assert {"x-amz-checksum-crc32", "content-md5"} & set(sent[0].headers), sent[0].headers
    assert requested_keys(sent[0])[0] == "records/many/00000", "keys go under the prefix"
    assert all(e.status == 200 for e in sent), summary
    assert list(writer.list_paths()) == ["kept"]


def test_async_twin_batches_too(moto: S3Server, proxy: CountingProxy) -> None:
    writer, storage = counted(moto, proxy, "async-batches")
    for i in range(7):
        writer.write_path(f"k/{i}", b"v")
    storage.remove_batch = 3
    proxy.reset()

    asyncio.run(storage.adelete_paths([f"k/{i}" for i in range(7)] + ["k/0"]))

    assert [len(requested_keys(e)) for e in deletes(proxy)] == [3, 3, 1], "\n".join(proxy.summary())
    assert list(writer.list_paths()) == []


def test_no_keys_no_request(moto: S3Server, proxy: CountingProxy) -> None:
    _, storage = counted(moto, proxy, "nothing")
    storage.delete_paths([])
    asyncio.run(storage.adelete_paths(()))
    assert proxy.exchanges == []


def delete_result(*errors: tuple[str, str, str]) -> Reply:
    """A DeleteObjects answer in quiet mode: an <Error> for each (name, code, message)."""
    entries = "".join(
        f"<Error><Key>{name}</Key><Code>{code}</Code><Message>{message}</Message></Error>"
        for name, code, message in errors
    )
    body = (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f'<DeleteResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">{entries}</DeleteResult>'
    )
    return Reply(200, body.encode(), (("Content-Type", "application/xml"),))


def _partial_failure(exchange: Exchange) -> bool:
    return exchange.method == "POST" and "delete" in exchange.path


def test_keys_s3_could_not_delete_are_reported(moto: S3Server, proxy: CountingProxy) -> None:
    writer, storage = counted(moto, proxy, "per-key")
    for key in ("a", "b", "c"):
        writer.write_path(key, b"v")
    proxy.reply(
        delete_result(
            ("records/b", "AccessDenied", "Access Denied"),
            ("records/c", "InternalError", "We encountered an internal error"),
        ),
        _partial_failure,
    )

    with pytest.raises(StorageError) as caught:
        storage.delete_paths(["a", "b", "c"])
    message = str(caught.value)
    assert "cannot delete 2 of 3 keys in " + storage.url in message
    assert "'b' (AccessDenied: Access Denied)" in message
    assert "'c' (InternalError: We encountered an internal error)" in message
    assert "'a'" not in message, "a deleted key was named as failed"

    proxy.clear_rules()
    proxy.reply(delete_result(("records/b", "AccessDenied", "Access Denied")), _partial_failure)
    with pytest.raises(StorageError) as one:
        asyncio.run(storage.adelete_paths(["b"]))
    assert f"cannot delete 'b' in {storage.url}: AccessDenied" in str(one.value)


def test_a_refused_request_names_the_keys_and_the_url(moto: S3Server, proxy: CountingProxy) -> None:
    _, storage = counted(moto, proxy, "refused")
    proxy.reply(error_reply(403, "AccessDenied"), _partial_failure)
    with pytest.raises(StorageError) as caught:
        storage.delete_paths(["x/1", "x/2"])
    message = str(caught.value)
    assert f"cannot delete 2 keys ('x/1', 'x/2') from {storage.url}" in message
    assert "access denied (AccessDenied)" in message


def test_missing_bucket(moto: S3Server) -> None:
    storage = S3Storage("s3://no-such-bucket-for-deletes/p", **moto.options())
    with pytest.raises(StorageError, match="does not exist; create it") as caught:
        storage.delete_paths(["gone"])
    assert "s3://no-such-bucket-for-deletes/p" in str(caught.value)


class SingleDeletes(S3Storage):
    """S3 with the shared default batch delete: one DeleteObject per key, a few at once."""

    async def _remove_many(self, fs: AsyncFileSystem, keys: list[str]) -> None:
        await ObjectBackend._remove_many(self, fs, keys)


def _delete_of(*names: str) -> Callable[[Exchange], bool]:
    def matches(exchange: Exchange) -> bool:
        path = exchange.path.partition("?")[0]
        return exchange.method == "DELETE" and path.rpartition("/records/")[2] in names

    return matches


def test_the_default_sends_one_delete_per_key_and_names_the_failed(
    moto: S3Server, proxy: CountingProxy
) -> None:
    writer = moto.make_storage("single-deletes")
    storage = SingleDeletes(writer.url, **moto.options(proxy.endpoint))
    for key in ("a", "b", "c", "d"):
        writer.write_path(key, b"v")
    proxy.reply(error_reply(403, "AccessDenied"), _delete_of("b"))

    with pytest.raises(StorageError) as one:
        storage.delete_paths(["a", "b", "never-written"])
    assert f"cannot delete 'b' in {storage.url}: access denied (AccessDenied)" in str(one.value)
    assert sorted(e.method for e in proxy.exchanges) == ["DELETE"] * 3, proxy.summary()
    assert list(writer.list_paths()) == ["b", "c", "d"], "the other keys were not deleted"

    proxy.clear_rules()
    proxy.reply(error_reply(403, "AccessDenied"), _delete_of("b", "d"))
    with pytest.raises(StorageError) as two:
        asyncio.run(storage.adelete_paths(["b", "c", "d"]))
    message = str(two.value)
    assert f"cannot delete 2 of 3 keys in {storage.url}: 'b'; 'd'; the other keys" in message
    assert "The first failure: cannot delete 'b' in" in message
    assert "access denied (AccessDenied)" in message
    assert list(writer.list_paths()) == ["b", "d"]
