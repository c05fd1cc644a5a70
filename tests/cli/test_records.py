"""The records commands: ``moorage ls`` (lines when piped, JSON) and ``moorage rm``."""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from moorage.cli.main import main
from moorage.results import ResultStore
from moorage.store.memory_cache import ResultCache


@pytest.fixture
def storage(tmp_path: Path) -> str:
    store = ResultStore(result_storage=tmp_path / "st", serializer="json", cache=ResultCache())
    store.write(1, key="a/1")
    store.write(2, key="a/2", expiration=dt.timedelta(seconds=-5))
    store.write(3, key="b/1")
    return str(tmp_path / "st")


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_ls_prints_a_header_and_one_line_per_record_when_piped(storage: str) -> None:
    code, out, _ = run("ls", storage)
    assert code == 0
    lines = [line.split("\t") for line in out.splitlines()]
    assert lines[0] == ["key", "format", "serializer", "bytes", "modified", "expires", "signed"]
    assert [line[0] for line in lines[1:]] == ["a/1", "a/2", "b/1"]
    one = lines[1]
    assert one[1:4] == ["moorage", "json", str(len((Path(storage) / "a" / "1").read_bytes()))]
    assert one[5] == "-"
    assert lines[2][5].endswith("(expired)")


def test_ls_filters_by_prefix_and_expiry(storage: str) -> None:
    assert [
        line.split("\t")[0] for line in run("ls", storage, "--prefix", "b/")[1].splitlines()
    ] == [
        "key",
        "b/1",
    ]
    expired = run("ls", storage, "--expired")[1].splitlines()
    assert [line.split("\t")[0] for line in expired] == ["key", "a/2"]


def test_ls_json_is_a_list_of_records(storage: str) -> None:
    code, out, _ = run("ls", storage, "--json", "--prefix", "a/")
    assert code == 0
    listed = json.loads(out)
    assert [item["key"] for item in listed] == ["a/1", "a/2"]
    assert listed[0]["expired"] is False
    assert listed[1]["expired"] is True
    assert listed[1]["expiration"].endswith("Z")
    assert listed[0]["serializer"] == "json"
    assert json.loads(run("ls", storage, "--json", "--prefix", "none/")[1]) == []


def test_ls_of_an_unknown_scheme_exits_1_with_the_fix() -> None:
    code, _, err = run("ls", "nope://bucket")
    assert code == 1
    assert "no storage plugin for 'nope://'" in err


def test_rm_removes_the_keys_given_and_exits_1_for_a_key_without_a_record(storage: str) -> None:
    result = CliRunner().invoke(main, ["rm", "--storage", storage, "a/1", "nope", "--yes"])
    assert result.exit_code == 1
    assert "removed 1 record(s)" in result.stdout
    assert "no record under 'nope'" in result.stderr
    assert [line.split("\t")[0] for line in run("ls", storage)[1].splitlines()] == [
        "key",
        "a/2",
        "b/1",
    ]


def test_rm_of_a_prefix_asks_first_and_removes_nothing_when_refused(storage: str) -> None:
    refused = CliRunner().invoke(main, ["rm", "--storage", storage, "--prefix", "a/"], input="n\n")
    assert refused.exit_code == 1  # click's Abort
    assert "Remove 2 record(s)" in refused.stderr
    assert len(run("ls", storage)[1].splitlines()) == 4
    agreed = CliRunner().invoke(
        main, ["rm", "--storage", storage, "--prefix", "a/", "--json"], input="y\n"
    )
    assert agreed.exit_code == 0
    assert json.loads(agreed.stdout) == {"removed": ["a/1", "a/2"], "missing": []}
    assert [line.split("\t")[0] for line in run("ls", storage)[1].splitlines()] == ["key", "b/1"]


def test_rm_needs_keys_or_a_prefix() -> None:
    result = CliRunner().invoke(main, ["rm"])
    assert result.exit_code == 2
    assert "give the keys to remove, or --prefix" in result.stderr
