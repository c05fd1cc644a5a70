"""Plugins for real: the example and broken plugin distributions in tests/plugins/.

Both are installed into the test environment (editable), exactly as a user installs a
third-party plugin, so these tests go through entry-point discovery, the registry, the
``moorage plugins`` command and URL resolution without any stand-ins:

    uv pip install -e tests/plugins/moorage-example-plugin -e tests/plugins/moorage-broken-plugin
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

import moorage
import moorage.plugins.catalog
import moorage.plugins.registry
from moorage.errors import PluginError, SerializationError
from moorage.locking import LockManager
from moorage.plugins import builtin as moorage_builtins
from moorage.plugins.registry import PluginInfo, Registry, get_registry, reset_registry
from moorage.plugins.resolve import lock_manager_from, storage_from
from moorage.serializers import Serializer, UnknownSerializer, coerce_serializer
from moorage.storage import MemoryStorage, Storage
from moorage.store.store import ResultStore
from moorage.testing import (
    LockManagerContract,
    LockManagerFactory,
    SerializerContract,
    StorageContract,
)

try:
    import moorage_example
except ImportError:  # pragma: no cover - the environment is set up wrongly
    pytest.fail(
        "the example plugin is not installed; run: uv pip install "
        "-e tests/plugins/moorage-example-plugin -e tests/plugins/moorage-broken-plugin",
        pytrace=False,
    )

# The broken plugin warns whenever the registry loads; tests about it record the warnings
# themselves (pytest.warns / catch_warnings override this filter).
pytestmark = pytest.mark.filterwarnings("ignore:moorage plugin 'broken:RuntimeWarning")

EXAMPLE_REGISTERS = {
    "storage": ["example"],
    "serializer": ["example-json"],
    "lock_manager": ["example"],
    "hasher": ["moorage_example.Money"],
}


@pytest.fixture(autouse=True)
def _fresh_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Every test discovers plugins afresh and leaves no registry state behind."""
    monkeypatch.delenv("MOORAGE_PLUGINS", raising=False)
    monkeypatch.delenv("MOORAGE_PLUGIN_PREFERENCES", raising=False)
    reset_registry()
    yield
    reset_registry()


def _example_url(folder: Path) -> str:
    return "example://" + folder.resolve().as_posix()


def _plugin(registry: Registry, name: str) -> PluginInfo:
    found = [info for info in registry.plugins if info.name == name]
    assert len(found) == 1, f"plugin {name!r} listed {len(found)} times: {registry.plugins}"
    return found[0]


def _run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    environment.update(env or {})
    environment["COLUMNS"] = "250"
    return subprocess.run(
        [sys.executable, "-m", "moorage", *args],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )


# -- discovery ------------------------------------------------------------------------------


def test_example_plugin_is_discovered() -> None:
    registry = get_registry()
    info = _plugin(registry, "example")
    assert info.error is None
    assert info.version == "0.3.0"
    assert info.distribution == "moorage-example-plugin"
    assert info.module == "moorage_example"
    assert info.registers == EXAMPLE_REGISTERS
    assert registry.skipped == []
    assert "example" in registry.names("storage")
    assert "example" in registry.names("lock_manager")
    assert "example-json" in registry.names("serializer")
    assert registry.lookup("storage", "example") is moorage_example.ExampleStorage
    assert registry.lookup("lock_manager", "example") is moorage_example.ExampleLockManager
    assert registry.lookup("serializer", "example-json") is moorage_example.ExampleJSONSerializer
    assert registry.plugins[0].name == "moorage", "built-ins load first"


def test_cli_plugins_json_lists_every_plugin() -> None:
    proc = _run_cli("plugins", "--json")
    assert proc.returncode == 0, proc.stderr
    listed = json.loads(proc.stdout)  # warnings go to stderr; stdout is pure JSON
    by_name = {entry["name"]: entry for entry in listed}
    assert len(by_name) == len(listed), "a plugin is listed twice"
    for entry in listed:
        assert {"name", "version", "registers", "distribution", "module", "error"} <= set(entry)

    example = by_name["example"]
    assert example["version"] == "0.3.0"
    assert example["distribution"] == "moorage-example-plugin"
    assert example["module"] == "moorage_example"
    assert example["registers"] == EXAMPLE_REGISTERS
    assert example["error"] is None

    core = by_name["moorage"]
    assert core["version"] == moorage.__version__
    assert core["registers"]["storage"] == ["memory"]
    assert {"pickle", "json", "compressed"} <= set(core["registers"]["serializer"])

    broken = by_name["broken"]
    assert broken["version"] == "0.0.1"
    assert broken["distribution"] == "moorage-broken-plugin"
    assert broken["registers"] == {}
    assert "this plugin is broken on purpose" in broken["error"]
    assert "broken on purpose" in by_name["broken-hook"]["error"]
    assert "'broken'" in proc.stderr, "the skipped plugin must be reported on stderr"


def test_cli_plugins_table() -> None:
    proc = _run_cli("plugins")
    assert proc.returncode == 0, proc.stderr
    assert "example" in proc.stdout
    assert "0.3.0" in proc.stdout
    assert "example-json" in proc.stdout
    assert "skipped" in proc.stdout


def test_cli_plugins_json_respects_moorage_plugins() -> None:
    proc = _run_cli("plugins", "--json", env={"MOORAGE_PLUGINS": "example"})
    assert proc.returncode == 0, proc.stderr
    names = [entry["name"] for entry in json.loads(proc.stdout)]
    assert names == ["moorage", "example"]
    assert "RuntimeWarning" not in proc.stderr


# -- broken plugins -------------------------------------------------------------------------


def test_broken_plugin_is_reported_and_skipped(tmp_path: Path) -> None:
    with pytest.warns(RuntimeWarning) as recorded:
        registry = get_registry()
    messages = [str(w.message) for w in recorded if issubclass(w.category, RuntimeWarning)]
    import_failure = [m for m in messages if "'broken'" in m]
    assert len(import_failure) == 1, messages
    assert "entry point broken = 'moorage_broken'" in import_failure[0]
    assert "moorage-broken-plugin" in import_failure[0]
    assert "this plugin is broken on purpose" in import_failure[0]
    hook_failure = [m for m in messages if "'broken-hook'" in m]
    assert len(hook_failure) == 1, messages
    assert "register hook raised" in hook_failure[0]

    broken = _plugin(registry, "broken")
    assert broken.error is not None
    assert "import failed" in broken.error
    assert "this plugin is broken on purpose" in broken.error
    hook = _plugin(registry, "broken-hook")
    assert hook.error is not None
    assert hook.registers == {}
    # What it registered before its hook raised is not kept.
    assert "broken-hook" not in registry.names("storage")
    with pytest.raises(PluginError, match="no storage plugin for 'broken-hook://'"):
        storage_from("broken-hook:///somewhere")

    # Everything else keeps working.
    assert _plugin(registry, "example").error is None
    assert _plugin(registry, "moorage").error is None
    assert isinstance(storage_from(f"memory://{uuid.uuid4().hex}"), MemoryStorage)
    example = storage_from(_example_url(tmp_path))
    assert isinstance(example, moorage_example.ExampleStorage)
    example.write_path("k", b"v")
    assert example.read_path("k") == b"v"
    assert type(Serializer(type="json")).__name__ == "JSONSerializer"


# -- the example plugin at work -------------------------------------------------------------


def test_result_store_round_trips_through_example_storage(tmp_path: Path) -> None:
    url = _example_url(tmp_path / "results")
    store = ResultStore(result_storage=url, serializer="example-json")
    assert isinstance(store.result_storage, moorage_example.ExampleStorage)
    value = {"answer": 42, "items": [1, 2, 3], "name": "ünïcode"}
    store.write(value, key="runs/first")

    assert store.exists("runs/first")
    assert (tmp_path / "results" / "runs" / "first").is_file(), "nothing written to the folder"
    fresh = ResultStore(result_storage=url, serializer="example-json", cache_result_in_memory=False)
    record = fresh.read("runs/first")
    assert record.result == value
    assert isinstance(record.metadata.serializer, moorage_example.ExampleJSONSerializer)
    assert list(fresh.result_storage.list_paths()) == ["runs/first"]  # type: ignore[union-attr]


def test_another_process_reads_what_this_one_wrote(tmp_path: Path) -> None:
    url = _example_url(tmp_path / "shared")
    ResultStore(result_storage=url, serializer="pickle").write({"from": "parent"}, key="handoff")
    script = (
        "import json, sys\n"
        "from moorage.store.store import ResultStore\n"
        "store = ResultStore(result_storage=sys.argv[1], cache_result_in_memory=False)\n"
        "print(json.dumps(store.read('handoff').result))\n"
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("MOORAGE_")}
    proc = subprocess.run(
        [sys.executable, "-c", script, url],
        capture_output=True,
        text=True,
        env={**environment, "MOORAGE_PLUGINS": "example"},
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"from": "parent"}


def test_serializer_type_builds_plugin_class() -> None:
    built = Serializer(type="example-json")
    assert type(built) is moorage_example.ExampleJSONSerializer
    assert built.loads(built.dumps({"a": [1, None]})) == {"a": [1, None]}
    configured = Serializer(type="example-json", indent=2)  # type: ignore[call-arg]
    assert isinstance(configured, moorage_example.ExampleJSONSerializer)
    assert configured.indent == 2
    assert b"\n" in configured.dumps({"a": 1})
    assert coerce_serializer({"type": "example-json", "indent": 4}) == (
        moorage_example.ExampleJSONSerializer(indent=4)
    )
    assert type(coerce_serializer("example-json")) is moorage_example.ExampleJSONSerializer


def test_factory_receives_the_url_as_written(tmp_path: Path) -> None:
    url = _example_url(tmp_path)
    assert url.startswith("example:///")
    received: list[str] = []

    class Recorder:
        @moorage.hookimpl
        def register_storages(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
            def factory(url: str, **options: Any) -> Storage:
                received.append(url)
                return MemoryStorage()

            register("recorded", factory)

    get_registry().add_plugin(Recorder(), name="recorder")
    storage_from(url.replace("example://", "recorded://", 1) + "?opt=1", opt="2")
    assert received == [url.replace("example://", "recorded://", 1)]


def test_lock_manager_url_hold_timeout_option(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MOORAGE_LOCK_HOLD_TIMEOUT", "7")
    assert lock_manager_from("example://?hold_timeout=5").hold_timeout == 5.0
    assert lock_manager_from("example://").hold_timeout == 7.0, "settings give the default"


def test_lock_manager_url_builds_plugin_class() -> None:
    manager = lock_manager_from("example://")
    assert isinstance(manager, moorage_example.ExampleLockManager)
    key = f"k-{uuid.uuid4().hex}"
    assert manager.acquire_lock(key, "me", acquire_timeout=0)
    assert not lock_manager_from("memory://").is_locked(key), "example locks leaked into memory://"
    manager.release_lock(key, "me")


# -- MOORAGE_PLUGINS ------------------------------------------------------------------------


def test_moorage_plugins_selects_entry_points(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "example")
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        registry = get_registry()
    runtime = [str(w.message) for w in recorded if issubclass(w.category, RuntimeWarning)]
    assert runtime == [], f"a plugin outside MOORAGE_PLUGINS was loaded: {runtime}"
    assert [p.name for p in registry.plugins] == ["moorage", "example"]
    assert {"broken", "broken-hook", "local"} <= set(registry.skipped)
    assert "example" not in registry.skipped
    assert isinstance(storage_from(_example_url(tmp_path)), moorage_example.ExampleStorage)
    with pytest.raises(PluginError) as caught:
        storage_from(tmp_path / "local")
    assert "MOORAGE_PLUGINS" in str(caught.value)
    assert "local" in str(caught.value)


def test_empty_moorage_plugins_loads_none(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("MOORAGE_PLUGINS", "")
    with warnings.catch_warnings(record=True) as recorded:
        warnings.simplefilter("always")
        registry = get_registry()
    assert not [w for w in recorded if issubclass(w.category, RuntimeWarning)]
    assert [p.name for p in registry.plugins] == ["moorage"], "only the built-ins load"
    assert {"broken", "broken-hook", "example", "local"} <= set(registry.skipped)
    assert isinstance(storage_from(f"memory://{uuid.uuid4().hex}"), MemoryStorage)

    with pytest.raises(PluginError) as caught:
        storage_from((tmp_path / "results").as_uri())
    message = str(caught.value)
    assert "no storage plugin for 'file://'" in message
    assert 'pip install "moorage-local"' in message
    assert "MOORAGE_PLUGINS" in message
    with pytest.raises(PluginError, match="MOORAGE_PLUGINS"):
        storage_from(tmp_path / "plain path")  # plain paths are file:// too
    with pytest.raises(PluginError, match="no storage plugin for 'example://'"):
        storage_from(_example_url(tmp_path))
    with pytest.raises(PluginError, match='pip install "moorage-local"'):
        lock_manager_from((tmp_path / "locks").as_uri())


# -- two plugins, one scheme ------------------------------------------------------------------


class DupStorage(MemoryStorage):
    def __init__(self, url: str, **options: Any) -> None:
        super().__init__(f"memory://dup-{uuid.uuid4().hex}")
        self.asked_for = url


class DupPlugin:
    """A second plugin claiming names the example plugin already serves."""

    @moorage.hookimpl
    def register_storages(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        register("example", DupStorage)

    @moorage.hookimpl
    def register_lock_managers(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        register("example", lambda url, **options: DupLockManager())

    @moorage.hookimpl
    def register_serializers(self, register: Callable[[str, type[Any]], None]) -> None:
        register("example-json", DupSerializer)


class DupLockManager(moorage_example.ExampleLockManager):
    pass


class DupSerializer(moorage_example.ExampleJSONSerializer):
    pass


@pytest.fixture
def duplicated() -> Registry:
    registry = get_registry()
    info = registry.add_plugin(DupPlugin(), name="dup")
    assert info is not None
    assert info.error is None
    assert info.registers == {k: v for k, v in EXAMPLE_REGISTERS.items() if k != "hasher"}
    return registry


def test_scheme_claimed_twice_names_both_plugins(duplicated: Registry, tmp_path: Path) -> None:
    url = _example_url(tmp_path)
    with pytest.raises(PluginError) as caught:
        storage_from(url)
    message = str(caught.value)
    assert "'example://'" in message
    assert "'example'" in message
    assert "'dup'" in message
    assert "plugin_preferences" in message
    with pytest.raises(PluginError, match="'dup'"):
        lock_manager_from("example://")
    with pytest.raises(PluginError, match="'dup'"):
        Serializer(type="example-json")


def test_plugin_preferences_picks_one(
    duplicated: Registry, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    url = _example_url(tmp_path)
    monkeypatch.setenv("MOORAGE_PLUGIN_PREFERENCES", '{"example": "dup"}')
    chosen = storage_from(url)
    assert isinstance(chosen, DupStorage)
    assert urlsplit(chosen.asked_for).path == tmp_path.resolve().as_posix()
    assert isinstance(lock_manager_from("example://"), DupLockManager)

    monkeypatch.setenv("MOORAGE_PLUGIN_PREFERENCES", '{"example": "example"}')
    chosen = storage_from(url)
    assert type(chosen) is moorage_example.ExampleStorage

    monkeypatch.setenv("MOORAGE_PLUGIN_PREFERENCES", '{"example-json": "dup"}')
    assert type(Serializer(type="example-json")) is DupSerializer
    with pytest.raises(PluginError, match="'dup'"):
        storage_from(url)  # the preference named another name; the scheme is ambiguous again


# -- missing plugins -------------------------------------------------------------------------


@pytest.fixture
def registry_without_extras(monkeypatch: pytest.MonkeyPatch) -> Registry:
    """A registry with only the built-ins, as a user without any extra installed has
    (the test environment installs every backend package)."""
    registry = Registry(selection=None)
    registry.add_plugin(moorage_builtins, name="moorage")
    monkeypatch.setattr(moorage.plugins.registry, "_registry", registry)
    # Importing a plugin's module declares its Serializer subclasses too: hide those.
    declared = moorage.plugins.catalog.declared_serializer_class
    monkeypatch.setattr(
        moorage.plugins.catalog,
        "declared_serializer_class",
        lambda name: None if name == "msgpack" else declared(name),
    )
    return registry


def test_missing_storage_plugin_message(registry_without_extras: Registry) -> None:
    with pytest.raises(PluginError) as caught:
        storage_from("s3://bucket/x")
    assert str(caught.value) == (
        "no storage plugin for 's3://'; install it with: pip install \"moorage[s3]\""
    )


def test_missing_serializer_plugin_message(registry_without_extras: Registry) -> None:
    # Asked for by name: fails at once, with the install command.
    with pytest.raises(SerializationError) as caught:
        Serializer(type="msgpack")
    assert "'msgpack'" in str(caught.value)
    assert 'pip install "moorage[msgpack]"' in str(caught.value)
    # Named by a stored record: a placeholder that fails only when a payload is decoded.
    stored = coerce_serializer({"type": "msgpack", "use_bin_type": True})
    assert isinstance(stored, UnknownSerializer)
    assert stored.to_dict() == {"type": "msgpack", "use_bin_type": True}
    for attempt in (lambda: stored.loads(b"\x81\xa1a\x01"), lambda: stored.dumps({"a": 1})):
        with pytest.raises(SerializationError) as caught:
            attempt()
        assert "'msgpack'" in str(caught.value)
        assert 'pip install "moorage[msgpack]"' in str(caught.value)


def test_unknown_scheme_lists_what_is_installed() -> None:
    with pytest.raises(PluginError) as caught:
        storage_from("nosuchscheme://x")
    message = str(caught.value)
    assert "no storage plugin for 'nosuchscheme://'" in message
    assert "example" in message, "the message lists the schemes that are available"
    assert "moorage plugins" in message


# -- the plugin test kit, applied to the example plugin --------------------------------------


class TestExampleStorageContract(StorageContract):
    @pytest.fixture
    def storage(self, tmp_path: Path) -> Iterator[Storage]:
        storage = storage_from(_example_url(tmp_path / "contract"))
        assert isinstance(storage, moorage_example.ExampleStorage)
        yield storage
        storage.close()


class TestExampleLockManagerContract(LockManagerContract):
    @pytest.fixture
    def make_lock_manager(self) -> LockManagerFactory:
        def make(*, hold_timeout: float | None) -> LockManager:
            manager = lock_manager_from("example://", hold_timeout=hold_timeout)
            assert isinstance(manager, moorage_example.ExampleLockManager)
            return manager

        return make


class TestExampleSerializerContract(SerializerContract):
    extra_samples = ({"list": [1.5, "x", None], "nested": {"deeper": [[], {}]}},)
    unserializable_samples = (object(), {1, 2}, float("nan"), b"bytes")

    @pytest.fixture(params=[None, 2])
    def serializer(self, request: pytest.FixtureRequest) -> Serializer:
        return Serializer(type="example-json", indent=request.param)  # type: ignore[call-arg]


def test_loading_the_registry_imports_no_client_library() -> None:
    """Backends register lazily: s3fs, gcsfs, adlfs and redis-py load on first use."""
    code = (
        "import sys\n"
        "from moorage.plugins.registry import get_registry\n"
        "registry = get_registry()\n"
        "assert {'s3', 'gs', 'az'} <= set(registry.names('storage'))\n"
        "assert 'redis' in registry.names('lock_manager')\n"
        "print(sorted(m for m in ('s3fs', 'gcsfs', 'adlfs', 'azure', 'redis', 'aiobotocore')"
        " if m in sys.modules))\n"
    )
    out = subprocess.run(
        [sys.executable, "-W", "ignore", "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert out.strip() == "[]"
