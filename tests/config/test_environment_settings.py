"""The quick settings reader (`moorage.config.environment`) gives what pydantic-settings
gives, and steps aside whenever it could differ."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from moorage.config import environment
from moorage.config.environment import read_environment
from moorage.config.settings import MoorageSettings, _settings_reader, load_settings

ENVIRONMENTS = [
    {},
    {"MOORAGE_STORAGE": "memory://x", "MOORAGE_SERIALIZER": "json"},
    {"MOORAGE_LOCAL_STORAGE_PATH": "~/elsewhere", "MOORAGE_PERSIST_BY_DEFAULT": "yes"},
    {"moorage_cache_max_entries": "12", "MOORAGE_CACHE_MAX_BYTES": "0"},
    {"MOORAGE_LOCK_HOLD_TIMEOUT": "never", "MOORAGE_SIGNING_KEY": "s3cret"},
    {"MOORAGE_LOCK_HOLD_TIMEOUT": "2.5", "MOORAGE_RECORD_FORMAT": "prefect"},
    {"MOORAGE_TASKS_DEFAULT_PERSIST_RESULT": "off", "MOORAGE_PLUGINS": "local"},
    {"MOORAGE_STORAGE": "", "MOORAGE_NOT_A_SETTING": "ignored"},
]


def _full_read() -> MoorageSettings:
    return _settings_reader()()


@pytest.mark.parametrize("environment", ENVIRONMENTS)
def test_same_settings_as_pydantic_settings(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    quick = read_environment(MoorageSettings, os.getcwd())
    assert quick is not None
    full = _full_read()
    assert quick.model_dump() == full.model_dump()
    assert quick.signing_key_bytes() == full.signing_key_bytes()
    assert load_settings().model_dump() == full.model_dump()


@pytest.mark.parametrize(
    "environment",
    [
        {"MOORAGE_STORAGES": '{"s": {"url": "memory://"}}'},  # nested: JSON
        {"MOORAGE_PLUGIN_PREFERENCES": "{}"},
        {"MOORAGE_CACHE_MAX_ENTRIES": "-1"},  # invalid: the full reader words the error
        {"MOORAGE_SERIALIZER": "json", "moorage_serializer": "pickle"},  # two spellings
    ],
)
def test_steps_aside_for_json_invalid_and_ambiguous_variables(
    environment: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    assert read_environment(MoorageSettings, os.getcwd()) is None


@pytest.mark.parametrize(
    ("name", "text"),
    [
        ("moorage.toml", 'serializer = "json"\n'),
        ("moorage.toml", ""),
        ("pyproject.toml", '[tool.moorage]\nserializer = "json"\n'),
        ("pyproject.toml", '[tool]\nmoorage = {serializer = "json"}\n'),
        ("pyproject.toml", "this is not TOML ["),
        ("pyproject.toml", "tool = 3\n"),
    ],
)
def test_steps_aside_for_settings_files(name: str, text: str, tmp_path: Path) -> None:
    (tmp_path / name).write_text(text)
    assert read_environment(MoorageSettings, str(tmp_path)) is None


def test_a_pyproject_without_a_moorage_table_is_no_source(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[project]\nname = "app"\n[tool.ruff]\nx = 1\n')
    quick = read_environment(MoorageSettings, str(tmp_path))
    assert quick is not None
    assert quick.serializer == "pickle"


def test_a_plain_environment_reads_without_pydantic_settings(tmp_path: Path) -> None:
    code = (
        "import sys; from moorage.config.settings import get_settings; "
        "s = get_settings(); print(s.serializer, 'pydantic_settings' in sys.modules)"
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    env["MOORAGE_SERIALIZER"] = "json"
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["json", "False"]


SPELLINGS = [
    "", " ", "0", "1", "-1", "+3", "007", "12", "1_000", "2.5", " 2.5", "1e3", ".5", "0.0",
    "inf", "nan", "true", "True", "TRUE", "yes", "Y", "on", "off", "f", "no", "t", "2",
    "never", "Never", " none ", "null", "moorage", "prefect", "Prefect", "~", "~/x",
    "relative/dir", "/abs", "memory://", "s3://b/p?x=1", "pickle", "é", "a\x00b",
    "99999999999999999999",
]  # fmt: skip


@pytest.mark.parametrize("field", sorted(environment._CONVERT))
def test_plain_spellings_convert_as_the_model_validates(field: str) -> None:
    for text in SPELLINGS:
        try:
            expected = MoorageSettings(**{field: text}).model_dump()
        except ValidationError:
            expected = None
        try:
            got = environment._construct(MoorageSettings, {field: text}).model_dump()
        except environment._Unsure:
            continue  # left to the model
        assert got == expected, (field, text)


def test_every_plain_setting_has_a_converter_and_the_validators_are_known() -> None:
    plain = {
        name
        for name, info in MoorageSettings.model_fields.items()
        if environment._is_plain(info.annotation)
    }
    assert set(environment._CONVERT) == plain
    decorators = MoorageSettings.__pydantic_decorators__
    # A new validator must be mirrored in environment._CONVERT (or _VALIDATED_DEFAULTS).
    assert set(decorators.field_validators) == {"_expand", "_never", "_positive"}
    assert not decorators.model_validators


def test_defaults_are_validated_as_the_model_validates_them() -> None:
    built = environment._construct(MoorageSettings, {})
    assert built.model_dump() == MoorageSettings().model_dump()
    assert built.model_fields_set == set()
    given = environment._construct(MoorageSettings, {"serializer": "json"})
    assert given.model_fields_set == {"serializer"}
