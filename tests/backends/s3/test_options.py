"""Options: from the URL's query string, a named storage, keyword arguments; checked early;
secrets kept out of reprs and messages; one client per storage."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moorage import ConfigurationError
from moorage.plugins.resolve import storage_from
from moorage.results import ResultStore
from moorage_s3 import S3Options, S3Storage
from moorage_s3.options import MIB, parse_size

from servers.proxy import CountingProxy
from servers.s3 import S3Server

SECRETS = {"key": "AKIA-SECRET-KEY-ID", "secret": "very-secret/value+1", "token": "tok-SECRET-99"}


def client(storage: S3Storage) -> Any:
    """The botocore client of a storage (built without any network traffic)."""
    return storage._filesystem().s3


def test_query_string_options_reach_the_client() -> None:
    storage = storage_from(
        "s3://bucket/some/prefix?region=eu-west-1&endpoint_url=http://127.0.0.1:9"
        "&connect_timeout=3&read_timeout=7.5&retries=2&retry_mode=standard"
        "&max_pool_connections=9&addressing_style=path&max_concurrency=3"
        "&multipart_threshold=16MiB&part_size=6MiB"
    )
    assert isinstance(storage, S3Storage)
    assert (storage.bucket, storage.prefix, storage.url) == (
        "bucket",
        "some/prefix",
        "s3://bucket/some/prefix",
    )
    config = client(storage).meta.config
    assert client(storage).meta.region_name == "eu-west-1"
    assert client(storage).meta.endpoint_url == "http://127.0.0.1:9"
    assert (config.connect_timeout, config.read_timeout) == (3, 7.5)
    assert config.retries == {"total_max_attempts": 2, "mode": "standard"}
    assert config.max_pool_connections == 9
    assert config.s3 == {"addressing_style": "path"}
    options = storage.s3_options
    assert (options.max_concurrency, options.multipart_threshold, options.part_size) == (
        3,
        16 * MIB,
        6 * MIB,
    )


def test_defaults_are_bounded() -> None:
    storage = S3Storage("s3://bucket")
    assert storage.s3_options == S3Options()
    config = client(storage).meta.config
    assert (config.connect_timeout, config.read_timeout) == (10, 60)
    assert config.max_pool_connections == 50
    # Attempts are left to botocore: AWS_MAX_ATTEMPTS, the profile, else its own default.
    assert config.retries is None or "total_max_attempts" not in config.retries
    assert (storage.s3_options.multipart_threshold, storage.s3_options.part_size) == (
        8 * MIB,
        8 * MIB,
    )


def test_keyword_arguments_beat_the_query_string() -> None:
    storage = storage_from("s3://bucket?region=eu-west-1&retries=2", region="ap-south-1")
    assert isinstance(storage, S3Storage)
    assert storage.s3_options.region == "ap-south-1"
    assert storage.s3_options.retries == 2
    aliased = storage_from("s3://b?region_name=eu-north-1")
    assert isinstance(aliased, S3Storage)
    assert aliased.s3_options.region == "eu-north-1"


def test_s3a_is_an_alias(moto: S3Server) -> None:
    bucket = moto.bucket_name("alias")
    storage = storage_from(f"s3a://{bucket}/deep/prefix", **moto.options())
    assert isinstance(storage, S3Storage)
    assert storage.url == f"s3a://{bucket}/deep/prefix"
    storage.create_bucket()
    storage.create_bucket()  # already ours: nothing to do
    assert storage.write_path("k", b"v") == f"s3a://{bucket}/deep/prefix/k"
    same = storage_from(f"s3://{bucket}/deep/prefix", **moto.options())
    assert same.read_path("k") == b"v"
    assert storage.key_for_location(storage.resolve_path("a/b")) == "a/b"


def test_create_bucket_in_a_region(moto: S3Server) -> None:
    storage = moto.make_storage("regional", region="eu-west-1")  # a LocationConstraint
    storage.write_path("k", b"v")
    location = storage._filesystem().call_s3("get_bucket_location", Bucket=storage.bucket)
    assert location["LocationConstraint"] == "eu-west-1"


def test_named_storage_from_settings(moto: S3Server) -> None:
    bucket = moto.bucket_name("named")
    options = moto.options()
    Path("moorage.toml").write_text(
        f"""
[storages.shared]
url = "s3://{bucket}/team?retries=4"
endpoint_url = "{options["endpoint_url"]}"
key = "{options["key"]}"
secret = "{options["secret"]}"
region = "{options["region"]}"
connect_timeout = 4
part_size = "5MiB"
"""
    )
    storage = storage_from("shared")
    assert isinstance(storage, S3Storage)
    assert storage.url == f"s3://{bucket}/team"
    assert (storage.s3_options.retries, storage.s3_options.connect_timeout) == (4, 4.0)
    assert storage.s3_options.part_size == 5 * MIB
    storage.create_bucket()
    store = ResultStore(result_storage="shared", cache_result_in_memory=False)
    store.write({"from": "settings"}, key="k")
    assert ResultStore(result_storage="shared").read("k").result == {"from": "settings"}
    assert list(storage.list_paths()) == ["k"]


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"regoin": "eu-west-1"}, "unknown option 'regoin'"),
        ({"anon": "maybe"}, "'anon' must be true or false"),
        ({"retries": "0"}, "'retries' must be a whole number >= 1"),
        ({"retries": "2.5"}, "'retries' must be a whole number >= 1"),
        ({"connect_timeout": "-1"}, "'connect_timeout' must be a positive number"),
        ({"read_timeout": "soon"}, "'read_timeout' must be a number"),
        ({"retry_mode": "eager"}, "'retry_mode' must be one of legacy, standard, adaptive"),
        ({"addressing_style": "dns"}, "'addressing_style' must be one of auto, path, virtual"),
        ({"part_size": "1MiB"}, "'part_size' must be between 5 MiB and 5 GiB"),
        ({"part_size": "lots"}, "'part_size' must be a size"),
        ({"multipart_threshold": "6GiB"}, "'multipart_threshold' must be at most 5 GiB"),
        ({"max_concurrency": 0}, "'max_concurrency' must be a whole number >= 1"),
        ({"key": SECRETS["key"]}, "'key' and 'secret' go together"),
        ({"secret": SECRETS["secret"]}, "'key' and 'secret' go together"),
        ({"token": SECRETS["token"]}, "'token' needs 'key' and 'secret'"),
        ({**SECRETS, "anon": True}, "'anon' sends unsigned requests"),
        ({"region": "eu-west-1", "region_name": "eu-west-2"}, "'region' is given twice"),
    ],
)
def test_bad_options_fail_early_and_clearly(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigurationError, match=expected) as caught:
        S3Storage("s3://bucket/prefix", **options)
    for secret in SECRETS.values():
        assert secret not in str(caught.value)


def test_bad_query_option_through_the_registry() -> None:
    with pytest.raises(ConfigurationError, match=r"unknown option 'colour'.*endpoint_url"):
        storage_from("s3://bucket?colour=blue")


def test_urls_need_a_bucket_and_the_scheme() -> None:
    with pytest.raises(ConfigurationError, match="no bucket"):
        S3Storage("s3:///prefix")
    with pytest.raises(ConfigurationError, match="s3://, s3a://"):
        S3Storage("gs://bucket")


@pytest.mark.parametrize(
    ("text", "size"),
    [("5242880", 5 * MIB), ("8MiB", 8 * MIB), ("16 MB", 16 * MIB), ("5m", 5 * MIB),
     ("1GiB", 1024 * MIB), ("512k", 512 * 1024), ("1.5MiB", 3 * MIB // 2), (6 * MIB, 6 * MIB)],
)  # fmt: skip
def test_sizes(text: object, size: int) -> None:
    assert parse_size("part_size", text) == size


def test_secrets_stay_out_of_reprs_and_messages() -> None:
    url = (
        f"s3://bucket/prefix?key={SECRETS['key']}&secret={SECRETS['secret'].replace('+', '%2B')}"
        f"&token={SECRETS['token']}&endpoint_url=http://127.0.0.1:9"
    )
    storage = storage_from(url)
    assert isinstance(storage, S3Storage)
    assert storage.s3_options.secret == SECRETS["secret"]
    shown = [repr(storage), str(storage), storage.url, repr(storage.s3_options)]
    shown.append(storage.resolve_path("a/key"))
    for text in shown:
        for secret in SECRETS.values():
            assert secret not in text, f"{secret!r} shown in {text!r}"


def test_storages_never_share_a_client(moto: S3Server, proxy: CountingProxy) -> None:
    direct = moto.make_storage("own-client")
    same_options = S3Storage(direct.url, **moto.options())
    via_proxy = S3Storage(direct.url, **moto.options(proxy.endpoint))
    clients = [client(direct), client(same_options), client(via_proxy)]
    assert len({id(c) for c in clients}) == 3
    assert len({id(s._filesystem()) for s in (direct, same_options, via_proxy)}) == 3

    direct.write_path("a", b"1")
    same_options.write_path("b", b"2")
    assert proxy.exchanges == [], "a storage without the proxy sent requests through it"
    assert via_proxy.read_path("a") == b"1"
    assert [e.method for e in proxy.exchanges] == ["GET"]
