"""Settings sources, named storages, install hints, and the moorage.results functions."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

import moorage.config.settings as settings_module
import moorage.results as results
from moorage import ConfigurationError, PluginError
from moorage.config.settings import get_settings, reset_settings
from moorage.locking import IsolationLevel, MemoryLockManager
from moorage.plugins.registry import reset_registry
from moorage.serializers import JSONSerializer, PickleSerializer
from moorage.storage import MemoryStorage
from moorage.store.context import RunContext, run_context
from moorage.store.memory_cache import ResultCache


def test_defaults(tmp_path: Path) -> None:
    settings = get_settings()
    assert settings.serializer == "pickle"
    assert settings.persist_by_default is False
    assert settings.lock_hold_timeout == 300
    assert settings.record_format == "moorage"
    storage = results.get_default_result_storage()
    assert storage.url.startswith("file://")
    assert storage.url.endswith("/storage")


def test_env_beats_files(monkeypatch: pytest.MonkeyPatch) -> None:
    Path("pyproject.toml").write_text(
        '[tool.moorage]\nserializer = "json"\ncache_max_entries = 7\n'
    )
    assert get_settings().serializer == "json"
    assert get_settings().cache_max_entries == 7
    Path("moorage.toml").write_text('serializer = "compressed/json"\n')
    reset_settings()  # files are checked at most once a second; see the next test
    assert get_settings().serializer == "compressed/json"
    assert get_settings().cache_max_entries == 7
    monkeypatch.setenv("MOORAGE_SERIALIZER", "pickle")
    assert get_settings().serializer == "pickle"
    assert isinstance(results.get_default_result_serializer(), PickleSerializer)


def test_settings_files_are_checked_at_most_once_a_second(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    now = [1000.0]
    monkeypatch.setattr(settings_module, "_clock", lambda: now[0])
    Path("moorage.toml").write_text('serializer = "json"\n')
    assert get_settings().serializer == "json"
    Path("moorage.toml").write_text('serializer = "compressed/json"\n')
    now[0] += settings_module.FILE_CHECK_INTERVAL / 2
    assert get_settings().serializer == "json"  # not checked again yet
    monkeypatch.setenv("MOORAGE_CACHE_MAX_ENTRIES", "9")  # the environment: at once
    assert get_settings().cache_max_entries == 9
    now[0] += settings_module.FILE_CHECK_INTERVAL
    assert get_settings().serializer == "compressed/json"


def test_a_new_working_directory_is_read_at_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(settings_module, "_clock", lambda: 1000.0)  # time stands still
    assert get_settings().serializer == "pickle"
    other = tmp_path / "elsewhere"
    other.mkdir()
    (other / "moorage.toml").write_text('serializer = "json"\n')
    monkeypatch.chdir(other)
    assert get_settings().serializer == "json"


def test_named_storage_with_options(tmp_path: Path) -> None:
    Path("moorage.toml").write_text(
        f'[storages.team]\nurl = "{(tmp_path / "team").as_uri()}"\ndurable = true\n'
        '[storages.mem]\nurl = "memory://named"\n'
    )
    storage = results.resolve_result_storage("team")
    assert storage.url == (tmp_path / "team").as_uri()
    assert getattr(storage, "durable", None) is True
    assert isinstance(results.resolve_result_storage("mem"), MemoryStorage)
    store = results.ResultStore(result_storage="mem", cache=ResultCache())
    store.write(1, key="k")
    assert MemoryStorage("memory://named").read_path("k")


def test_storage_setting_picks_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_STORAGE", "memory://default-from-env")
    assert results.get_default_result_storage().url == "memory://default-from-env"
    assert results.ResultStore().result_storage is not None
    assert results.ResultStore().result_storage.url == "memory://default-from-env"  # type: ignore[union-attr]


def test_resolve_result_storage_accepts_and_rejects(tmp_path: Path) -> None:
    memory = MemoryStorage("memory://x")
    assert results.resolve_result_storage(memory) is memory
    assert results.resolve_result_storage(tmp_path).url == tmp_path.as_uri()
    assert results.resolve_result_storage(str(tmp_path)).url == tmp_path.as_uri()
    assert results.resolve_result_storage(tmp_path.as_uri()).url == tmp_path.as_uri()
    with pytest.raises(TypeError, match=r"pathlib\.Path, a URL"):
        results.resolve_result_storage(42)  # type: ignore[arg-type]


def test_missing_plugin_gives_install_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "local")  # as if only the core were installed
    reset_registry()
    with pytest.raises(PluginError) as info:
        results.resolve_result_storage("s3://bucket/results")
    assert str(info.value).startswith(
        "no storage plugin for 's3://'; install it with: pip install \"moorage[s3]\" "
        "(MOORAGE_PLUGINS is set, so these installed plugins were not loaded: "
    )
    with pytest.raises(PluginError, match=r'pip install "moorage\[redis\]"'):
        results.ResultStore(lock_manager="redis://localhost:6379/0")
    with pytest.raises(PluginError, match=r"the installed plugins provide: (.*, )?file, memory"):
        results.resolve_result_storage("nosuch://x")


def test_bad_option_is_a_configuration_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="colour"):
        results.resolve_result_storage(f"{tmp_path.as_uri()}?colour=blue")


def test_lock_manager_gets_hold_timeout_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_LOCK_HOLD_TIMEOUT", "12.5")
    monkeypatch.setenv("MOORAGE_LOCK_MANAGER", "memory://")
    store = results.ResultStore(result_storage="memory://lm", cache=ResultCache())
    assert isinstance(store.lock_manager, MemoryLockManager)
    assert store.lock_manager.hold_timeout == 12.5


def test_resolve_serializer() -> None:
    assert isinstance(results.resolve_serializer("json"), JSONSerializer)
    serializer = PickleSerializer()
    assert results.resolve_serializer(serializer) is serializer
    with pytest.raises(TypeError, match="type name"):
        results.resolve_serializer(3)  # type: ignore[arg-type]


def test_persist_settings_and_context(monkeypatch: pytest.MonkeyPatch) -> None:
    assert results.get_default_persist_setting() is False
    assert results.get_default_persist_setting_for_tasks() is False
    assert results.should_persist_result() is False
    monkeypatch.setenv("MOORAGE_PERSIST_BY_DEFAULT", "true")
    assert results.should_persist_result() is True
    monkeypatch.setenv("MOORAGE_TASKS_DEFAULT_PERSIST_RESULT", "false")
    assert results.get_default_persist_setting_for_tasks() is False
    with run_context(RunContext(persist_result=None, is_task=True)):
        assert results.should_persist_result() is False
    with run_context(RunContext(persist_result=None, is_task=False)):
        assert results.should_persist_result() is True
    with run_context(RunContext(persist_result=False, is_task=False)):
        assert results.should_persist_result() is False


def test_get_result_store_and_default_cache() -> None:
    store = results.ResultStore(result_storage="memory://ctx")
    assert results.get_result_store() is not store
    with run_context(RunContext(result_store=store)):
        assert results.get_result_store() is store
    assert results.default_cache() is results.default_cache()
    assert results.ResultStore().cache is results.default_cache()


def test_default_cache_bounds_from_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_CACHE_MAX_ENTRIES", "2")
    monkeypatch.setenv("MOORAGE_CACHE_MAX_BYTES", "1000")
    store = results.ResultStore(result_storage="memory://bounded")
    for i in range(3):
        store.write(i, key=f"k{i}")
    assert len(store.cache) == 2
    store.write(b"x" * 600, key="big1")
    store.write(b"x" * 600, key="big2")
    assert store.cache.total_bytes <= 1000
    assert len(store.cache) == 1
    store.write(b"x" * 2000, key="huge")
    assert ("memory://bounded", "huge") not in store.cache
    assert store.read("huge").result == b"x" * 2000


def test_cache_lru_order() -> None:
    cache = ResultCache(max_entries=2, max_bytes=100)
    cache.put("a", 1, 10)
    cache.put("b", 2, 10)
    assert cache.get("a") == 1
    cache.put("c", 3, 10)
    assert "b" not in cache
    assert "a" in cache
    cache.put("d", 4, 95)
    assert len(cache) == 1
    assert cache.total_bytes == 95


def test_task_scheduling_storage(monkeypatch: pytest.MonkeyPatch) -> None:
    assert results.get_or_create_default_task_scheduling_storage().url.startswith("file://")
    monkeypatch.setenv("MOORAGE_TASK_SCHEDULING_STORAGE", "memory://sched")
    assert results.get_or_create_default_task_scheduling_storage().url == "memory://sched"


def test_discriminator() -> None:
    assert results.result_storage_discriminator(MemoryStorage("memory://d")) == "MemoryStorage"
    assert results.result_storage_discriminator(Path("/x")) == "Path"
    assert results.result_storage_discriminator("memory://d") == "str"


def test_update_for_flow_and_task(tmp_path: Path) -> None:
    base = results.ResultStore(result_storage="memory://base", cache=ResultCache())
    flow = SimpleNamespace(
        result_storage=tmp_path / "flow", result_serializer="json", cache_result_in_memory=False
    )
    flow_store = base.update_for_flow(flow)
    assert flow_store.result_storage is not None
    assert flow_store.result_storage.url == (tmp_path / "flow").as_uri()
    assert isinstance(flow_store.serializer, JSONSerializer)
    assert flow_store.cache_result_in_memory is False
    assert base.cache_result_in_memory is True  # the original is untouched

    def add(x: int, y: int) -> int:
        return x + y

    task = SimpleNamespace(
        result_storage=None,
        result_serializer=None,
        cache_result_in_memory=None,
        result_storage_key="{parameters[x]}-{fn.__name__}",
        fn=add,
        cache_policy=SimpleNamespace(
            key_storage="memory://keys",
            lock_manager="memory://",
            isolation_level=IsolationLevel.SERIALIZABLE,
        ),
    )
    task_store = base.update_for_task(task)
    assert task_store.result_storage is base.result_storage
    assert task_store.metadata_storage is not None
    assert task_store.metadata_storage.url == "memory://keys"
    assert isinstance(task_store.lock_manager, MemoryLockManager)
    with run_context(RunContext(parameters={"x": 41, "y": 1})):
        record = task_store.write(42)
    assert record.metadata.storage_key == "41-add"
    assert task_store.read("41-add").result == 42

    no_locks = SimpleNamespace(
        result_storage=None,
        result_serializer=None,
        cache_result_in_memory=None,
        result_storage_key=None,
        cache_policy=SimpleNamespace(
            key_storage=None, lock_manager=None, isolation_level="SERIALIZABLE"
        ),
    )
    with pytest.raises(ConfigurationError, match="lock manager"):
        base.update_for_task(no_locks)


def test_storage_key_template_errors() -> None:
    base = results.ResultStore(result_storage="memory://tmpl", cache=ResultCache())
    task = SimpleNamespace(
        result_storage=None,
        result_serializer=None,
        cache_result_in_memory=None,
        result_storage_key="{parameters[missing]}",
        cache_policy=None,
        parameters={},
    )
    with pytest.raises(ConfigurationError, match="missing"):
        base.update_for_task(task).write(1)


def test_config_command_masks_secrets(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "MOORAGE_SIGNING_KEY": "super-secret-value",
        "MOORAGE_LOCK_MANAGER": "redis://user:hunter2@localhost:6379/0",
        "MOORAGE_STORAGES": json.dumps(
            {"s": {"url": "memory://s", "secret_access_key": "AKIA-secret"}}
        ),
    }
    import os

    out = subprocess.run(
        [sys.executable, "-m", "moorage", "config", "--json"],
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **env},
        cwd=tmp_path,
    )
    data = json.loads(out.stdout)
    assert data["signing_key"] == "***"
    assert data["storages"]["s"]["secret_access_key"] == "***"
    assert "hunter2" not in out.stdout
    assert "super-secret-value" not in out.stdout
    assert "AKIA-secret" not in out.stdout
    assert data["lock_manager"] == "redis://user:***@localhost:6379/0"


def test_unknown_setting_in_a_file_is_an_error() -> None:
    Path("moorage.toml").write_text('serialiser = "json"\n')
    with pytest.raises(ConfigurationError, match="serialiser"):
        get_settings()


@pytest.mark.parametrize("never", ["never", "none", ""])
def test_lock_hold_timeout_never(monkeypatch: pytest.MonkeyPatch, never: str) -> None:
    monkeypatch.setenv("MOORAGE_LOCK_HOLD_TIMEOUT", never)
    assert get_settings().lock_hold_timeout is None
    monkeypatch.setenv("MOORAGE_LOCK_HOLD_TIMEOUT", "-1")
    with pytest.raises(ConfigurationError, match="lock_hold_timeout"):
        get_settings()


def test_hold_timeout_in_url_beats_setting(tmp_path: Path) -> None:
    store = results.ResultStore(
        result_storage="memory://q", lock_manager=f"{tmp_path.as_uri()}?hold_timeout=10"
    )
    assert store.lock_manager is not None
    assert store.lock_manager.hold_timeout == 10
