"""Settings errors name their source (variable, keyword, file and line), suggest the
closest known name, and reach the command line as one message without a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import moorage
from moorage import ConfigurationError, MoorageError, SerializationError
from moorage.cli.main import main
from moorage.config.problems import file_error, find_key_line, key_lines
from moorage.config.settings import get_settings, load_settings, reset_settings
from moorage.results import get_default_result_serializer
from moorage.serializers import Serializer


def _error(**overrides: Any) -> str:
    with pytest.raises(ConfigurationError) as info:
        load_settings(**overrides)
    assert isinstance(info.value, MoorageError)
    assert info.value.__cause__ is None
    assert info.value.__suppress_context__
    return str(info.value)


def _here(name: str) -> str:
    return os.path.join(os.getcwd(), name)


# -- finding a key's line -------------------------------------------------------------------

DOCUMENT = """\
# settings = "in a comment"
serializer = "json"   # [not.a.table]
"quoted.key" = 1
'literal' = 2
dotted.inner = 3

[storages.x]
url = "memory://x"
note = \"\"\"
url = "inside a multi-line string"
[storages.fake]
\"\"\"
durable=true

[storages.y]
tags = [
  ["nested", "array"],
  [ "storages" ],
  "url = no",
]
url = 'memory://y'
inline = { url = "memory://z", depth = 1 }
multi = '''a = 1
[storages.fake]'''

[[jobs]]
name = "one"
[ "tool" . 'moorage' ]
serializer = "pickle"
"""


@pytest.mark.parametrize(
    ("path", "line"),
    [
        (("serializer",), 2),
        (("quoted.key",), 3),
        (("literal",), 4),
        (("dotted", "inner"), 5),
        (("dotted",), 5),
        (("storages", "x"), 7),
        (("storages", "x", "url"), 8),
        (("storages", "x", "note"), 9),
        (("storages", "x", "durable"), 13),
        (("storages", "x", "missing"), 7),  # the nearest parent on its own line
        (("storages", "y", "tags"), 16),
        (("storages", "y", "url"), 21),
        (("storages", "y", "inline", "url"), 22),  # inside an inline table: its line
        (("storages", "y", "multi"), 23),
        (("storages",), 7),  # defined by the first table below it
        (("jobs", "name"), 27),
        (("tool", "moorage", "serializer"), 29),
    ],
)
def test_find_key_line(path: tuple[str, ...], line: int) -> None:
    assert find_key_line(DOCUMENT, path) == line


def test_find_key_line_gives_none_when_nothing_defines_the_key() -> None:
    assert find_key_line(DOCUMENT, ("nowhere",)) is None
    assert find_key_line(DOCUMENT, ("storages", "fake")) is None  # only inside a string
    # a parent counts only when it is at least `least` parts long
    assert find_key_line(DOCUMENT, ("tool", "moorage", "storages"), least=3) is None
    assert find_key_line(DOCUMENT, ("tool", "moorage", "storages"), least=2) == 28


def test_every_key_tomllib_reads_is_found_on_its_line() -> None:
    data = tomllib.loads(DOCUMENT)
    lines = DOCUMENT.split("\n")

    def leaves(value: Any, path: tuple[str, ...]) -> list[tuple[str, ...]]:
        if isinstance(value, dict) and value:
            return [leaf for k, v in value.items() for leaf in leaves(v, (*path, k))]
        return [path]

    for path in leaves({k: v for k, v in data.items() if k != "jobs"}, ()):
        line = find_key_line(DOCUMENT, path)
        assert line is not None, path
        text = lines[line - 1]
        assert path[-1] in text, (path, text)


def test_key_lines_reads_headers_and_keys() -> None:
    text = '[a]\r\nb = 1\r\n  c . "d" = 2\r\n[[e]]\r\nf = """x\\"""\r\ng = 3\r\n"""\r\nh = 4\r\n'
    assert list(key_lines(text)) == [
        (1, ("a",)),
        (2, ("a", "b")),
        (3, ("a", "c", "d")),
        (4, ("e",)),
        (5, ("e", "f")),
        (8, ("e", "h")),
    ]


# -- where a bad value came from ------------------------------------------------------------


def test_unknown_key_in_moorage_toml_names_file_line_and_suggestion() -> None:
    Path("moorage.toml").write_text('# mine\n\nserialiser = "json"\n')
    assert _error() == (
        f"invalid moorage setting in {_here('moorage.toml')}, line 3: "
        "unknown setting 'serialiser'; did you mean 'serializer'?"
    )


def test_unknown_key_in_pyproject_names_its_table_and_line() -> None:
    Path("pyproject.toml").write_text(
        '[project]\nname = "app"\n\n[tool.other]\nserialiser = 1\n\n'
        '[tool.moorage]\ncache_max_entries = 5\nserialiser = "json"\n'
    )
    assert _error() == (
        f"invalid moorage setting in {_here('pyproject.toml')} [tool.moorage], line 9: "
        "unknown setting 'serialiser'; did you mean 'serializer'?"
    )


def test_without_a_line_of_its_own_only_the_file_is_named() -> None:
    Path("pyproject.toml").write_text('[tool]\nmoorage = { serialiser = "json" }\n')
    assert _error() == (
        f"invalid moorage setting in {_here('pyproject.toml')} [tool.moorage]: "
        "unknown setting 'serialiser'; did you mean 'serializer'?"
    )


def test_unknown_key_without_a_close_match_lists_the_settings() -> None:
    Path("moorage.toml").write_text("zzz = 1\n")
    message = _error()
    assert message.startswith(
        f"invalid moorage setting in {_here('moorage.toml')}, line 1: unknown setting 'zzz'; "
        "the settings are: storage, local_storage_path, metadata_storage, serializer, "
    )
    assert "did you mean" not in message


def test_bad_value_in_a_variable_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_LOCK_HOLD_TIMEOUT", "-1")
    Path("moorage.toml").write_text("lock_hold_timeout = 10\n")  # the variable wins
    assert _error() == (
        "invalid moorage setting in environment variable MOORAGE_LOCK_HOLD_TIMEOUT: "
        "lock_hold_timeout = '-1': must be positive seconds, or \"never\" for locks that "
        "never lapse"
    )


def test_variable_names_are_case_insensitive(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("moorage_cache_max_entries", "lots")
    assert _error() == (
        "invalid moorage setting in environment variable moorage_cache_max_entries: "
        "cache_max_entries = 'lots': Input should be a valid integer, unable to parse "
        "string as an integer"
    )


def test_variables_that_are_not_settings_are_not_blamed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "example")  # read by the plugin system
    Path("moorage.toml").write_text('plugins = "example"\n')
    assert _error() == (
        f"invalid moorage setting in {_here('moorage.toml')}, line 1: "
        "unknown setting 'plugins'; the settings are: storage, local_storage_path, "
        "metadata_storage, serializer, lock_manager, persist_by_default, "
        "tasks_default_persist_result, task_scheduling_storage, cache_max_entries, "
        "cache_max_bytes, lock_hold_timeout, signing_key, record_format, "
        "accept_unsigned_prefect_records, max_payload_bytes, json_allowed_classes, storages, "
        "plugin_preferences"
    )


def test_bad_value_in_a_file_names_the_line() -> None:
    Path("moorage.toml").write_text('serializer = "json"\ncache_max_entries = "lots"\n')
    assert _error() == (
        f"invalid moorage setting in {_here('moorage.toml')}, line 2: "
        "cache_max_entries = 'lots': Input should be a valid integer, unable to parse "
        "string as an integer"
    )


def test_keyword_arguments_are_named() -> None:
    assert _error(serialiser="json") == (
        "invalid moorage setting in keyword argument serialiser: "
        "unknown setting 'serialiser'; did you mean 'serializer'?"
    )


def test_named_storage_problems_point_at_their_lines(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("pyproject.toml").write_text(
        "[tool.moorage.storages.a]\ndurable = true\n\n[tool.moorage.storages.b]\nurl = 3\n"
    )
    monkeypatch.setenv("MOORAGE_STORAGES", '{"c": {"url": 4}}')
    pyproject = _here("pyproject.toml")
    assert _error() == (
        "3 invalid moorage settings:\n"
        f"  {pyproject} [tool.moorage], line 1: storages.a.url is required and not set\n"
        f"  {pyproject} [tool.moorage], line 5: storages.b.url = 3: Input should be a valid "
        "string\n"
        "  environment variable MOORAGE_STORAGES: storages.c.url = 4: Input should be a "
        "valid string"
    )


def test_secret_values_are_not_shown() -> None:
    Path("moorage.toml").write_text("signing_key = 123456789\n")
    assert _error() == (
        f"invalid moorage setting in {_here('moorage.toml')}, line 1: "
        "signing_key: Input should be a valid string"
    )


def test_a_variable_that_is_not_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_STORAGES", "{shared: s3://x}")
    assert _error() == (
        "invalid moorage setting in environment variable MOORAGE_STORAGES: storages takes "
        "JSON, and this value is not JSON (Expecting property name enclosed in double "
        "quotes: line 1 column 2 (char 1)); for example "
        """MOORAGE_STORAGES='{"shared": {"url": "s3://team/results"}}'"""
    )


# -- serializer types -----------------------------------------------------------------------


def _serializer_error() -> str:
    """The error of using the configured serializer: a store, and the module function."""
    with pytest.raises(ConfigurationError) as info:
        moorage.ResultStore(result_storage="memory://serializer-check")
    with pytest.raises(ConfigurationError) as again:
        get_default_result_serializer()
    assert str(again.value) == str(info.value)
    assert info.value.__cause__ is None
    return str(info.value)


def test_unknown_serializer_fails_where_it_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_SERIALIZER", "jsn")
    assert get_settings().serializer == "jsn"  # read as text; checked when used
    assert _serializer_error().startswith(
        "invalid moorage setting in environment variable MOORAGE_SERIALIZER: "
        "serializer = 'jsn': no serializer plugin for type 'jsn'; did you mean 'json'? "
        "The installed plugins provide: compressed, compressed/json, compressed/pickle, "
    )


def test_unknown_serializer_in_a_file_names_the_line() -> None:
    Path("moorage.toml").write_text('cache_max_entries = 3\nserializer = "compresed/json"\n')
    assert _serializer_error().startswith(
        f"invalid moorage setting in {_here('moorage.toml')}, line 2: "
        "serializer = 'compresed/json': no serializer plugin for type 'compresed/json'; "
        "did you mean 'compressed/json'? "
    )


def test_serializer_from_a_plugin_or_a_subclass_is_accepted(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MOORAGE_SERIALIZER", "msgpack")
    assert get_default_result_serializer().type == "msgpack"

    # A subclass declared after the settings were first read still counts.
    monkeypatch.setenv("MOORAGE_SERIALIZER", "test-settings-reversed")
    assert get_settings().serializer == "test-settings-reversed"

    class Reversed(Serializer):
        type: str = "test-settings-reversed"

    assert isinstance(get_default_result_serializer(), Reversed)


def test_an_unknown_serializer_argument_suggests_the_closest() -> None:
    with pytest.raises(SerializationError, match=r"type 'pickel'; did you mean 'pickle'\? "):
        moorage.ResultStore(result_storage="memory://x", serializer="pickel")


# -- settings files that are not TOML ------------------------------------------------------


def test_invalid_toml_names_the_file_and_position() -> None:
    Path("moorage.toml").write_text('serializer = "json"\ncache_max_entries = 5 6\n')
    assert _error() == (
        f"invalid TOML in {_here('moorage.toml')}, line 2, column 23: Expected newline or "
        "end of document after a statement. moorage reads its settings from this file; "
        "fix the file's syntax"
    )


def test_invalid_pyproject_names_the_file() -> None:
    Path("pyproject.toml").write_text('[project]\nname = "app"\n[tool.moorage\n')
    assert _error() == (
        f"invalid TOML in {_here('pyproject.toml')}, line 3, column 14: Expected ']' at the "
        "end of a table declaration. moorage reads its settings from the [tool.moorage] "
        "table of this file; fix the file's syntax"
    )


def test_toml_error_at_the_end_of_the_file() -> None:
    error = file_error(
        "moorage.toml", tomllib.TOMLDecodeError("Invalid value (at end of document)")
    )
    assert str(error) == (
        f"invalid TOML in {_here('moorage.toml')}, at the end of the file: Invalid value. "
        "moorage reads its settings from this file; fix the file's syntax"
    )


def test_a_file_that_is_not_utf8() -> None:
    Path("moorage.toml").write_bytes(b'serializer = "json"\n# \xff\n')
    assert _error() == (
        f"{_here('moorage.toml')} is not UTF-8 text (byte 22 of the file); TOML files must "
        "be UTF-8, and moorage reads its settings from this file"
    )


def test_a_fixed_file_is_read_again() -> None:
    Path("moorage.toml").write_text("serialiser = 'json'\n")
    with pytest.raises(ConfigurationError):
        get_settings()
    Path("moorage.toml").write_text("serializer = 'json'\n")
    reset_settings()
    assert get_settings().serializer == "json"


def test_valid_settings_never_import_the_error_helpers(tmp_path: Path) -> None:
    code = (
        "import sys\n"
        "from moorage.config.settings import get_settings\n"
        "assert get_settings().serializer == 'json'\n"
        "print('moorage.config.problems' in sys.modules)\n"
    )
    (tmp_path / "moorage.toml").write_text('serializer = "json"\n')
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("MOORAGE_")}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
        env=environment,
    )
    assert out.stdout.strip() == "False"


# -- the command line -----------------------------------------------------------------------


def test_cli_prints_a_settings_error_without_a_traceback() -> None:
    Path("moorage.toml").write_text('serialiser = "json"\n')
    for command in (["config"], ["config", "--json"]):
        result = CliRunner().invoke(main, command)
        assert result.exit_code == 1
        assert result.stdout == ""
        assert result.stderr == (
            f"Error: invalid moorage setting in {_here('moorage.toml')}, line 1: "
            "unknown setting 'serialiser'; did you mean 'serializer'?\n"
        )


def test_cli_invalid_toml_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "moorage.toml").write_text('serializer = "json\n')
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("MOORAGE_")}
    environment["MOORAGE_SERIALIZER"] = "pickle"  # the file is still read, and is broken
    proc = subprocess.run(
        [sys.executable, "-m", "moorage", "config"],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stdout == ""
    assert proc.stderr == (
        f"Error: invalid TOML in {os.path.realpath(tmp_path)}/moorage.toml, line 1, column 19: "
        "Illegal character '\\n'. moorage reads its settings from this file; "
        "fix the file's syntax\n"
    )


def test_cli_plugins_piped_prints_whole_names(tmp_path: Path) -> None:
    environment = {k: v for k, v in os.environ.items() if not k.upper().startswith("MOORAGE_")}
    environment.pop("COLUMNS", None)
    environment["MOORAGE_PLUGINS"] = "example"
    proc = subprocess.run(
        [sys.executable, "-m", "moorage", "plugins"],
        capture_output=True,  # stdout is a pipe, not a terminal
        text=True,
        cwd=tmp_path,
        env=environment,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "name\tversion\tstorages\tserializers\tlock managers\tstatus"
    assert lines[1] == (
        f"moorage\t{moorage.__version__}\tmemory\t"
        "pickle, json, compressed, compressed/pickle, compressed/json\tmemory\tok"
    )
    assert lines[2] == "example\t0.3.0\texample\texample-json\texample\tok"
    assert len(lines) == 3
    assert "…" not in proc.stdout


def test_cli_plugins_in_click_runner_shows_skipped_plugins_whole() -> None:
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.stderr
    rows = {line.split("\t")[0]: line.split("\t") for line in result.stdout.splitlines()}
    assert rows["broken"][1:] == [
        "0.0.1",
        "-",
        "-",
        "-",
        "skipped: import failed: RuntimeError('this plugin is broken on purpose')",
    ]


def test_cli_config_checks_the_serializer_setting(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_SERIALIZER", "jsn")
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 1
    assert result.stdout == ""
    assert result.stderr.startswith(
        "Error: invalid moorage setting in environment variable MOORAGE_SERIALIZER: "
        "serializer = 'jsn': no serializer plugin for type 'jsn'; did you mean 'json'?"
    )


def test_cli_config_piped_is_tab_separated(monkeypatch: pytest.MonkeyPatch) -> None:
    long_path = "/" + "/".join(["a-rather-long-folder-name"] * 6)
    monkeypatch.setenv("MOORAGE_LOCAL_STORAGE_PATH", long_path)
    result = CliRunner().invoke(main, ["config"])
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "setting\tvalue"
    assert f"local_storage_path\t{long_path}" in lines
    assert "serializer\tpickle" in lines
    assert "storages\t{}" in lines


def test_cli_table_on_a_terminal_folds_instead_of_cutting(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import moorage.cli.output

    monkeypatch.setattr(moorage.cli.output, "stdout_is_terminal", lambda: True)
    monkeypatch.setenv("COLUMNS", "60")
    result = CliRunner().invoke(main, ["plugins"])
    assert result.exit_code == 0, result.stderr
    assert "┃ name" in result.stdout
    assert "…" not in result.stdout
