"""The SDK's own environment variables and config files keep working.

botocore itself resolves credentials, ``AWS_DEFAULT_REGION``, ``AWS_PROFILE``,
``AWS_MAX_ATTEMPTS`` and (since 1.31) ``AWS_ENDPOINT_URL_S3`` / ``AWS_ENDPOINT_URL``; the
backend passes only what it was given, so these keep working. ``AWS_REGION``, which
botocore does not read, is honoured by the backend as a fallback. Each test checks the
resolved endpoint before the first request, so a variable that stopped working would
fail the test instead of sending traffic off this machine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from moorage import StorageError
from moorage.results import ResultStore
from moorage_s3 import S3Storage

from servers.endpoints import unused_endpoint
from servers.proxy import CountingProxy
from servers.s3 import ACCESS_KEY, REGION, SECRET_KEY, S3Server


def client(storage: S3Storage) -> Any:
    return storage._filesystem().s3


def fresh(moto: S3Server, **options: Any) -> S3Storage:
    """A storage on a new bucket, its endpoint checked to be moto's before any request."""
    storage = S3Storage(f"s3://{moto.bucket_name('env')}/p", **options)
    assert client(storage).meta.endpoint_url in (moto.endpoint, options.get("endpoint_url"))
    return storage


def round_trip(storage: S3Storage) -> None:
    storage.create_bucket()
    store = ResultStore(result_storage=storage, cache_result_in_memory=False)
    store.write([1, 2, 3], key="from-env")
    assert store.read("from-env").result == [1, 2, 3]


def test_credentials_region_and_endpoint_from_the_environment(
    moto: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    storage = fresh(moto)
    assert client(storage).meta.region_name == REGION
    round_trip(storage)


def test_global_endpoint_variable(moto: S3Server, monkeypatch: pytest.MonkeyPatch) -> None:
    env = moto.env()
    env["AWS_ENDPOINT_URL"] = env.pop("AWS_ENDPOINT_URL_S3")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    round_trip(fresh(moto))


def test_service_endpoint_beats_global_and_option_beats_both(
    moto: S3Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", unused_endpoint())
    monkeypatch.setenv("AWS_ENDPOINT_URL_S3", moto.endpoint)
    assert client(S3Storage("s3://b")).meta.endpoint_url == moto.endpoint
    other = unused_endpoint()
    assert client(S3Storage("s3://b", endpoint_url=other)).meta.endpoint_url == other


def test_region_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_REGION", "eu-central-1")
    assert client(S3Storage("s3://b")).meta.region_name == "eu-central-1"
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-3")  # botocore's own wins
    assert client(S3Storage("s3://b")).meta.region_name == "eu-west-3"
    assert client(S3Storage("s3://b", region="sa-east-1")).meta.region_name == "sa-east-1"


def test_options_beat_environment_credentials(
    moto: S3Server, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "ENV-KEY-ID")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "env-secret")
    moto.make_storage("creds").write_path("x", b"1")  # options: the harness's keys
    storage = S3Storage("s3://b", endpoint_url=proxy.endpoint, region=REGION)
    storage.exists("x")  # env keys
    S3Storage("s3://b", **moto.options(proxy.endpoint)).exists("x")  # option keys
    signed = [e.headers["authorization"] for e in proxy.exchanges]
    assert "Credential=ENV-KEY-ID/" in signed[0]
    assert f"Credential={ACCESS_KEY}/" in signed[1]


def test_session_token_from_environment_and_option(
    moto: S3Server, proxy: CountingProxy, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in moto.env().items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("AWS_SESSION_TOKEN", "env-session-token")
    S3Storage("s3://b", endpoint_url=proxy.endpoint).exists("k")
    S3Storage("s3://b", **moto.options(proxy.endpoint), token="option-token").exists("k")
    tokens = [e.headers.get("x-amz-security-token") for e in proxy.exchanges]
    assert tokens == ["env-session-token", "option-token"]


def write_profile(tmp_path: Path, moto: S3Server, name: str) -> None:
    aws = tmp_path / "aws-home"  # where the autouse fixture points AWS_CONFIG_FILE
    aws.mkdir(exist_ok=True)
    (aws / "config").write_text(
        f"[profile {name}]\nregion = {REGION}\nendpoint_url = {moto.endpoint}\n"
    )
    (aws / "credentials").write_text(
        f"[{name}]\naws_access_key_id = {ACCESS_KEY}\naws_secret_access_key = {SECRET_KEY}\n"
    )


def test_profile_from_aws_profile(
    moto: S3Server, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write_profile(tmp_path, moto, "moorage-test")
    monkeypatch.setenv("AWS_PROFILE", "moorage-test")
    round_trip(fresh(moto))


def test_profile_option(moto: S3Server, tmp_path: Path) -> None:
    write_profile(tmp_path, moto, "moorage-option")
    round_trip(fresh(moto, profile="moorage-option"))


def test_missing_profile_is_a_clear_error() -> None:
    storage = S3Storage("s3://bucket/p", profile="nowhere-to-be-found")
    with pytest.raises(StorageError, match=r"AWS profile 'nowhere-to-be-found'.*option profile"):
        storage.exists("k")
