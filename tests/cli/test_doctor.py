"""``moorage doctor``: each problem it must find, shown failing with its fix, and a
healthy setup passing (so each failing check is shown able to pass)."""

from __future__ import annotations

import datetime as dt
import json
import os
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from moorage.cli.probes import CLOCK_SKEW_LIMIT, clock_check, storage_checks
from moorage.errors import StorageError
from moorage.results import ResultStore
from moorage.storage import StorageEntry
from moorage.storage.memory import MemoryStorage
from moorage.store.memory_cache import ResultCache

from .terminal import moorage
from servers import free_port
from servers.s3 import S3Server


def doctor(env: dict[str, str], cwd: Path, **variables: str) -> tuple[int, dict[str, Any]]:
    """Run ``moorage doctor --json`` with more variables; the exit status and the checks
    by name."""
    run = moorage("doctor", "--json", env={**env, **variables}, cwd=cwd)
    report = json.loads(run.stdout)
    assert report["ok"] is (run.code == 0), run.stdout
    return run.code, {check["check"]: check for check in report["checks"]}


def statuses(checks: dict[str, Any]) -> dict[str, str]:
    return {name: check["status"] for name, check in checks.items()}


def test_a_healthy_local_setup_passes_every_check_and_leaves_no_probe(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    folder = tmp_path / "results"
    ResultStore(result_storage=folder, serializer="json", cache=ResultCache()).write(1, key="k")
    code, checks = doctor(env, cwd, MOORAGE_STORAGE=str(folder))
    assert code == 0
    assert set(statuses(checks).values()) == {"ok"}
    for step in ("reached", "write", "read", "list", "clock", "delete", "temp files"):
        assert f"result storage: {step}" in checks
    assert checks["record signatures"]["detail"] == (
        "the heads of 1 records sampled pass their checks"
    )
    assert sorted(p.name for p in folder.iterdir()) == ["k"]  # the probe is gone


def test_a_missing_bucket_fails_with_how_to_create_it(
    s3_server: S3Server, env: dict[str, str], cwd: Path
) -> None:
    bucket = s3_server.bucket_name("missing")
    code, checks = doctor({**env, **s3_server.env()}, cwd, MOORAGE_STORAGE=f"s3://{bucket}/results")
    assert code == 1
    reached = checks["result storage: reached"]
    assert reached["status"] == "fail"
    assert f"the bucket {bucket!r} does not exist" in reached["detail"]
    assert f"aws s3 mb s3://{bucket}" in reached["fix"]
    assert checks["result storage: write"]["status"] == "fail"
    assert checks["record signatures"]["status"] == "skip"
    assert checks["result storage: temp files"]["detail"] == (
        "none: this storage writes atomically, leaving none"
    )
    for step in ("read", "list", "clock", "delete"):
        assert checks[f"result storage: {step}"] == {
            "check": f"result storage: {step}",
            "status": "skip",
            "detail": "no probe was written",
            "fix": "",
        }


def test_pickle_on_a_shared_storage_without_a_signing_key_warns_with_the_fix(
    s3_server: S3Server, env: dict[str, str], cwd: Path
) -> None:
    storage = s3_server.make_storage("doctor")
    variables = {**env, **s3_server.env()}
    code, checks = doctor(variables, cwd, MOORAGE_STORAGE=storage.url)
    assert code == 1
    warned = checks["pickle on shared storage"]
    assert warned["status"] == "warn"
    assert "without a signing key" in warned["detail"]
    assert warned["fix"].startswith("set MOORAGE_SIGNING_KEY")
    assert [name for name, status in statuses(checks).items() if status != "ok"] == [
        "pickle on shared storage"
    ]  # moto is reached, written, read, listed and deleted; clocks agree
    code, checks = doctor(
        variables, cwd, MOORAGE_STORAGE=storage.url, MOORAGE_SIGNING_KEY="a secret"
    )
    assert code == 0
    assert checks["pickle on shared storage"]["status"] == "ok"


def test_an_unreachable_redis_fails_with_the_fix(env: dict[str, str], cwd: Path) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"  # nothing listens there
    code, checks = doctor(env, cwd, MOORAGE_LOCK_MANAGER=url)
    assert code == 1
    failed = checks["lock manager"]
    assert failed["status"] == "fail"
    assert "cannot reach Redis at 127.0.0.1" in failed["detail"]
    assert "start redis-server there" in failed["fix"]
    assert checks["result storage: write"]["status"] == "ok"


def test_a_wrong_signing_key_fails_with_the_fix(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    folder = tmp_path / "results"
    writer = ResultStore(result_storage=folder, signing_key=b"key A", cache=ResultCache())
    for number in range(3):
        writer.write(number, key=f"signed/{number}")
    code, checks = doctor(env, cwd, MOORAGE_STORAGE=str(folder), MOORAGE_SIGNING_KEY="key B")
    assert code == 1
    failed = checks["record signatures"]
    assert failed["status"] == "fail"
    assert failed["detail"].startswith("3 of 3 records sampled are signed with another key")
    assert failed["fix"].startswith("set MOORAGE_SIGNING_KEY to the key their writers use")
    code, checks = doctor(env, cwd, MOORAGE_STORAGE=str(folder), MOORAGE_SIGNING_KEY="key A")
    assert code == 0
    assert checks["record signatures"]["status"] == "ok"
    code, checks = doctor(env, cwd, MOORAGE_STORAGE=str(folder))
    assert code == 1  # signed records, but nothing checks their signatures
    assert checks["record signatures"]["detail"].startswith("3 of 3 records sampled are signed")
    assert checks["record signatures"]["fix"] == (
        "set MOORAGE_SIGNING_KEY to the key their writers use"
    )


def test_leftover_temp_files_warn_with_the_fix(
    tmp_path: Path, env: dict[str, str], cwd: Path
) -> None:
    folder = tmp_path / "results"
    (folder / "a").mkdir(parents=True)
    left = folder / "a" / ".moorage-tmp-elsewhere-1-dead-0"
    left.write_bytes(b"half a record")
    old = time.time() - 7 * 86400
    os.utime(left, (old, old))
    code, checks = doctor(env, cwd, MOORAGE_STORAGE=str(folder))
    assert code == 1
    assert checks["result storage: temp files"]["status"] == "warn"
    assert checks["result storage: temp files"]["fix"] == "remove them with: moorage prune --temp"
    pruned = moorage("prune", str(folder), "--temp", "--yes", env=env, cwd=cwd)
    assert pruned.code == 0, pruned.stderr
    code, checks = doctor(env, cwd, MOORAGE_STORAGE=str(folder))
    assert code == 0
    assert not left.exists()


def test_the_table_names_each_problem_and_the_summary_counts_them(
    env: dict[str, str], cwd: Path
) -> None:
    url = f"redis://127.0.0.1:{free_port()}/0"
    run = moorage("doctor", env={**env, "MOORAGE_LOCK_MANAGER": url}, cwd=cwd)
    assert run.code == 1
    lines = [line.split("\t") for line in run.stdout.splitlines()]
    assert lines[0] == ["check", "status", "detail", "fix"]
    assert lines[[row[0] for row in lines].index("lock manager")][:2] == ["lock manager", "fail"]
    assert run.stderr.startswith("1 failed, 0 warning(s), in ")


class RefusesDeletes(MemoryStorage):
    """A storage whose credentials allow everything but deleting."""

    def delete_path(self, key: str) -> None:
        raise StorageError(
            f"cannot delete {key!r} in {self.url}: access denied; grant the delete permission"
        )


class RefusesListing(MemoryStorage):
    """A storage whose credentials allow everything but listing."""

    def list_entries(self, prefix: str = "") -> Iterator[list[StorageEntry]]:
        raise StorageError(f"cannot list {self.url}: access denied; grant the list permission")


def test_a_refused_permission_shows_as_the_step_that_failed() -> None:
    checks = {
        c.check: c for c in storage_checks("s", RefusesDeletes(f"memory://{uuid.uuid4().hex}"))
    }
    assert [name for name, c in checks.items() if c.status != "ok"] == ["s: delete"]
    assert checks["s: delete"].fix == "grant the delete permission"
    checks = {
        c.check: c for c in storage_checks("s", RefusesListing(f"memory://{uuid.uuid4().hex}"))
    }
    assert {name: c.status for name, c in checks.items() if c.status != "ok"} == {
        "s: reached": "fail",
        "s: list": "fail",
        "s: clock": "skip",  # no listed time to compare
    }
    assert checks["s: list"].fix == "grant the list permission"


def entry(modified: dt.datetime) -> StorageEntry:
    return StorageEntry(".moorage-doctor/x", 10, modified)


def test_a_storage_clock_off_by_more_than_the_limit_warns() -> None:
    now = dt.datetime.now(dt.UTC)
    later = now + dt.timedelta(seconds=2)
    ahead = clock_check("s", entry(later + CLOCK_SKEW_LIMIT + dt.timedelta(seconds=5)), now, later)
    assert ahead.status == "warn"
    assert ahead.detail == "the storage's clock is 35 s ahead of this one"
    assert "synchronise this machine's clock (NTP)" in ahead.fix
    behind = clock_check("s", entry(now - dt.timedelta(minutes=5)), now, later)
    assert (behind.status, behind.detail) == (
        "warn",
        "the storage's clock is 300 s behind this one",
    )
    close = clock_check("s", entry(now + dt.timedelta(seconds=20)), now, later)
    assert (close.status, close.detail) == ("ok", "the storage's clock is 18 s ahead of this one")
    same = clock_check("s", entry(now + dt.timedelta(seconds=1)), now, later)
    assert (same.status, same.detail) == ("ok", "within 1 s of this machine's")
