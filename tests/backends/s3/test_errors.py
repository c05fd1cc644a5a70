"""Failures name the URL and the fix, never a secret; retries are bounded and counted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import botocore.session
import pytest

from moorage import RecordNotFound, StorageError
from moorage.results import ResultStore
from moorage_s3 import S3Storage

from servers.endpoints import unused_endpoint
from servers.proxy import CountingProxy
from servers.s3 import REGION, S3Server, error_reply, start_moto

SECRET = "do-not-show-this-secret"
TOKEN = "do-not-show-this-token"


def calls(storage: S3Storage) -> dict[str, Callable[[], object]]:
    """Every operation of the contract, sync and async, on one key."""
    return {
        "read": lambda: storage.read_path("k"),
        "read_head": lambda: storage.read_head("k", 10),
        "write": lambda: storage.write_path("k", b"v"),
        "write_parts": lambda: storage.write_parts("k", [b"v", b"w"]),
        "delete": lambda: storage.delete_path("k"),
        "list": lambda: list(storage.list_paths()),
        "aread": lambda: asyncio.run(storage.aread_path("k")),
        "awrite": lambda: asyncio.run(storage.awrite_path("k", b"v")),
        "alist": lambda: asyncio.run(storage.alist_paths()),
    }


def assert_clean(error: BaseException, *secrets: str) -> str:
    text = f"{error} {error!r}"
    for secret in (SECRET, TOKEN, *secrets):
        assert secret not in text, f"a secret leaked into {text!r}"
    return str(error)


def test_missing_bucket(moto: S3Server) -> None:
    storage = S3Storage("s3://no-such-bucket-here/p", **{**moto.options(), "secret": SECRET})
    for name, call in calls(storage).items():
        with pytest.raises(StorageError) as caught:
            call()
        message = assert_clean(caught.value)
        assert "s3://no-such-bucket-here/p" in message, name
        assert "bucket 'no-such-bucket-here' does not exist; create it" in message, name
        assert not isinstance(caught.value, RecordNotFound), name
    assert storage.exists("k") is False  # HEAD cannot tell a missing bucket from a missing key


def test_missing_key_is_record_not_found(moto: S3Server) -> None:
    storage = moto.make_storage("missing-key")
    for call in (lambda: storage.read_path("k"), lambda: storage.read_head("k", 4)):
        with pytest.raises(RecordNotFound, match=r"no record under key 'k' in s3://"):
            call()


def test_unreachable_endpoint() -> None:
    endpoint = unused_endpoint()
    storage = S3Storage(
        "s3://bucket/p", endpoint_url=endpoint, key="k", secret=SECRET, region=REGION, retries=1
    )
    for name, call in [*calls(storage).items(), ("exists", lambda: storage.exists("k"))]:
        with pytest.raises(StorageError) as caught:
            call()
        message = assert_clean(caught.value)
        assert f"cannot connect to {endpoint}" in message, name
        assert "check endpoint_url (or AWS_ENDPOINT_URL_S3" in message, name


def test_retries_are_bounded_by_the_option(moto: S3Server, proxy: CountingProxy) -> None:
    proxy.reply(error_reply(503, "SlowDown", "please reduce your request rate"))
    storage = S3Storage("s3://b/p", **moto.options(proxy.endpoint), retries=3)
    with pytest.raises(StorageError, match=r"busy or failing \(SlowDown\).*retries=3"):
        storage.write_path("k", b"v")
    assert len(proxy.exchanges) == 3


def test_retries_follow_aws_max_attempts(
    moto: S3Server, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_MAX_ATTEMPTS", "2")
    proxy.reply(error_reply(500, "InternalError"))
    with pytest.raises(StorageError, match="InternalError"):
        S3Storage("s3://b/p", **moto.options(proxy.endpoint)).read_path("k")
    assert len(proxy.exchanges) == 2


def test_no_credentials_anywhere(moto: S3Server) -> None:
    # the autouse fixture cleared AWS_* and switched instance metadata off
    storage = S3Storage("s3://bucket/p", endpoint_url=moto.endpoint, region=REGION)
    with pytest.raises(StorageError, match=r"no usable AWS credentials.*AWS_ACCESS_KEY_ID"):
        storage.write_path("k", b"v")
    with pytest.raises(StorageError, match=r"no usable AWS credentials.*anon=true"):
        asyncio.run(storage.aexists("k"))


# -- moto with IAM authentication switched on ------------------------------------------


@pytest.fixture(scope="module")
def auth_moto(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """A second moto that checks signatures, with one user allowed everything on S3.

    moto lets the first INITIAL_NO_AUTH_ACTION_COUNT requests through unchecked: just
    enough to create that user, its policy and its access key.
    """
    process = start_moto(
        tmp_path_factory.mktemp("s3-auth"), "moto-s3-auth", {"INITIAL_NO_AUTH_ACTION_COUNT": "3"}
    )
    try:
        iam = botocore.session.Session().create_client(
            "iam",
            endpoint_url=process.endpoint,
            region_name=REGION,
            aws_access_key_id="bootstrap",
            aws_secret_access_key="bootstrap",
        )
        iam.create_user(UserName="moorage")
        allow = {"Effect": "Allow", "Action": "s3:*", "Resource": "*"}
        policy = {"Version": "2012-10-17", "Statement": [allow]}
        iam.put_user_policy(UserName="moorage", PolicyName="s3", PolicyDocument=json.dumps(policy))
        access = iam.create_access_key(UserName="moorage")["AccessKey"]
        options = {
            "endpoint_url": process.endpoint,
            "key": access["AccessKeyId"],
            "secret": access["SecretAccessKey"],
            "region": REGION,
        }
        storage = S3Storage("s3://guarded/p", **options)
        storage.create_bucket()
        storage.write_path("k", b"guarded value")
        yield options
    finally:
        process.stop()


def test_signatures_are_checked_by_the_second_server(auth_moto: dict[str, Any]) -> None:
    assert S3Storage("s3://guarded/p", **auth_moto).read_path("k") == b"guarded value"


def test_wrong_secret(auth_moto: dict[str, Any]) -> None:
    storage = S3Storage("s3://guarded/p", **{**auth_moto, "secret": SECRET})
    with pytest.raises(StorageError) as caught:
        storage.read_path("k")
    message = assert_clean(caught.value, auth_moto["secret"])
    assert "s3://guarded/p" in message
    assert "secret key does not match the access key id (SignatureDoesNotMatch)" in message
    assert "AWS_SECRET_ACCESS_KEY" in message
    with pytest.raises(StorageError, match=r"access denied \(403\)") as caught:
        storage.exists("k")  # a HEAD response has no body, so no error code either
    assert_clean(caught.value)


def test_unknown_access_key(auth_moto: dict[str, Any]) -> None:
    key = "AKIAUNKNOWNKEY000000"
    storage = S3Storage("s3://guarded/p", **{**auth_moto, "key": key, "secret": SECRET})
    with pytest.raises(StorageError) as caught:
        ResultStore(result_storage=storage).read("k")
    message = assert_clean(caught.value, key)
    assert "access key id is not known (InvalidAccessKeyId)" in message
    assert "AWS_ACCESS_KEY_ID" in message


def test_wrong_credentials_from_the_environment(
    auth_moto: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", auth_moto["key"])
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET)
    monkeypatch.setenv("AWS_SESSION_TOKEN", TOKEN)
    storage = S3Storage("s3://guarded/p", endpoint_url=auth_moto["endpoint_url"])
    with pytest.raises(StorageError) as caught:
        list(storage.list_paths())
    assert "cannot list s3://guarded/p" in assert_clean(caught.value)
