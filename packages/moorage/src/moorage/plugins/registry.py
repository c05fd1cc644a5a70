"""The plugin system: pluggy hook specs, entry-point discovery, and the registry.

A plugin is a module with hook implementations, announced through the ``moorage``
entry-point group in its ``pyproject.toml``:

```toml
[project.entry-points.moorage]
mystore = "moorage_mystore"
```

and the module:

```python
import moorage

@moorage.hookimpl
def register_storages(register):
    register("mystore", MyStorage)   # factory(url, **options) -> Storage
```

The core's own built-ins (``memory://``, the serializers) register through the same
hooks. Loading is lazy: nothing is imported until a backend is first looked up.
"""

from __future__ import annotations

import difflib
import importlib
import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib.metadata import EntryPoint, entry_points
from types import ModuleType
from typing import Any, Literal

import pluggy

from moorage.errors import PluginError

__all__ = [
    "ENTRY_POINT_GROUP",
    "INSTALL_HINTS",
    "PluginInfo",
    "Registration",
    "Registry",
    "get_registry",
    "hookimpl",
    "hookspec",
    "lazy_exports",
    "lazy_factory",
    "reset_registry",
]

ENTRY_POINT_GROUP = "moorage"
PLUGINS_ENV = "MOORAGE_PLUGINS"

hookspec = pluggy.HookspecMarker("moorage")
hookimpl = pluggy.HookimplMarker("moorage")


def lazy_factory(target: str) -> Callable[..., Any]:
    """A factory for ``"package.module:Class"`` that imports it on its first call.

    Registering a backend then costs nothing: its client library (s3fs, the Azure SDK,
    redis-py) is imported when a URL of its scheme is first used, not whenever the
    registry loads.
    """
    module_name, _, attribute = target.partition(":")
    found: list[Callable[..., Any]] = []

    def factory(url: str, **options: Any) -> Any:
        if not found:
            found.append(getattr(importlib.import_module(module_name), attribute))
        return found[0](url, **options)

    factory.__name__ = factory.__qualname__ = attribute
    factory.__doc__ = f"Build a {target} (imported on first use)."
    return factory


def lazy_exports(package: str, exports: dict[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` that imports ``exports[name]`` (a module below ``package``)
    when ``name`` is first read, so ``import moorage_s3`` stays cheap."""

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(importlib.import_module(f"{package}.{module}"), name)

    return __getattr__


Kind = Literal["storage", "serializer", "lock_manager"]
_HOOKS: dict[str, Kind] = {
    "register_storages": "storage",
    "register_serializers": "serializer",
    "register_lock_managers": "lock_manager",
}

#: Which extra of ``moorage`` provides a scheme or serializer type we know about.
INSTALL_HINTS: dict[tuple[Kind, str], str] = {
    **{("storage", s): "s3" for s in ("s3", "s3a")},
    **{("storage", s): "gcs" for s in ("gs", "gcs")},
    **{("storage", s): "azure" for s in ("az", "abfs", "abfss")},
    **{("lock_manager", s): "redis" for s in ("redis", "rediss")},
    ("serializer", "msgpack"): "msgpack",
    ("storage", "file"): "local",
    ("lock_manager", "file"): "local",
}


class HookSpecs:
    """The hooks a moorage plugin may implement. Each is handed a ``register`` callback."""

    @hookspec
    def register_storages(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        """Register storage factories: ``register(scheme, factory)``.

        ``factory(url, **options)`` returns a `moorage.storage.base.Storage`. One plugin may
        register several schemes.
        """

    @hookspec
    def register_serializers(self, register: Callable[[str, type[Any]], None]) -> None:
        """Register serializer classes: ``register(type_name, serializer_class)``."""

    @hookspec
    def register_lock_managers(self, register: Callable[[str, Callable[..., Any]], None]) -> None:
        """Register lock-manager factories: ``register(scheme, factory)``.

        ``factory(url, hold_timeout=..., **options)`` returns a
        `moorage.locking.base.LockManager`.
        """


@dataclass(frozen=True)
class Registration:
    kind: Kind
    name: str
    target: Any
    plugin: str


@dataclass
class PluginInfo:
    """One plugin as `moorage plugins` shows it."""

    name: str
    version: str | None
    module: str
    distribution: str | None = None
    registers: dict[str, list[str]] = field(default_factory=dict)
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": self.version,
            "distribution": self.distribution,
            "module": self.module,
            "registers": self.registers,
            "error": self.error,
        }


_KIND_LABEL: dict[Kind, str] = {
    "storage": "storage plugin for",
    "serializer": "serializer plugin for type",
    "lock_manager": "lock manager plugin for",
}


def _label(kind: Kind, name: str) -> str:
    return f"'{name}://'" if kind != "serializer" else repr(name)


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, selection: list[str] | None = None) -> None:
        self.selection = selection
        self.manager = pluggy.PluginManager("moorage")
        self.manager.add_hookspecs(HookSpecs)
        self.plugins: list[PluginInfo] = []
        self._entries: dict[Kind, dict[str, list[Registration]]] = {
            "storage": {},
            "serializer": {},
            "lock_manager": {},
        }
        self.skipped: list[str] = []

    # -- loading ------------------------------------------------------------------

    def load(self) -> Registry:
        from moorage.plugins import builtin as builtins

        self.add_plugin(
            builtins, name="moorage", version=_version("moorage"), distribution="moorage"
        )
        for ep in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda e: e.name):
            if self.selection is not None and ep.name not in self.selection:
                self.skipped.append(ep.name)
                continue
            self._load_entry_point(ep)
        return self

    def _load_entry_point(self, ep: EntryPoint) -> None:
        dist = ep.dist.name if ep.dist is not None else None
        version = ep.dist.version if ep.dist is not None else None
        try:
            module = ep.load()
        except Exception as exc:
            self._broken(ep.name, ep.value, version, dist, f"import failed: {exc!r}")
            return
        self.add_plugin(module, name=ep.name, version=version, distribution=dist)

    def _broken(
        self, name: str, value: str, version: str | None, dist: str | None, why: str
    ) -> None:
        warnings.warn(
            f"moorage plugin {name!r} (entry point {name} = {value!r}"
            f"{f', distribution {dist}' if dist else ''}) was skipped: {why}. "
            "The other plugins keep working; fix or uninstall this one.",
            RuntimeWarning,
            stacklevel=4,
        )
        self.plugins.append(PluginInfo(name, version, value, dist, error=why))

    def add_plugin(
        self,
        module: ModuleType | object,
        name: str,
        version: str | None = None,
        distribution: str | None = None,
    ) -> PluginInfo | None:
        """Register a plugin object (module or instance with hook implementations).

        Its registrations are kept only if all of its hooks succeed; otherwise it is
        reported with a warning and skipped.
        """
        module_name = getattr(module, "__name__", type(module).__name__)
        try:
            self.manager.register(module, name=name)
        except Exception as exc:
            self._broken(name, module_name, version, distribution, f"registration failed: {exc!r}")
            return None
        found: list[Registration] = []
        try:
            for hook_name, kind in _HOOKS.items():
                for impl in getattr(self.manager.hook, hook_name).get_hookimpls():
                    if impl.plugin_name != name:
                        continue

                    def register(key: str, target: Any, _kind: Kind = kind) -> None:
                        if not isinstance(key, str) or not key:
                            raise PluginError(
                                f"{_kind} names must be non-empty strings, got {key!r}"
                            )
                        found.append(Registration(_kind, key, target, name))

                    impl.function(register=register)
        except Exception as exc:
            self.manager.unregister(name=name)
            self._broken(
                name, module_name, version, distribution, f"a register hook raised {exc!r}"
            )
            return None
        info = PluginInfo(name, version, module_name, distribution)
        for reg in found:
            self._entries[reg.kind].setdefault(reg.name, []).append(reg)
            info.registers.setdefault(reg.kind, []).append(reg.name)
        self.plugins.append(info)
        return info

    # -- lookup -------------------------------------------------------------------

    def provides(self, kind: Kind, name: str) -> bool:
        return name in self._entries[kind]

    def names(self, kind: Kind) -> list[str]:
        return sorted(self._entries[kind])

    def lookup(self, kind: Kind, name: str, prefer: dict[str, str] | None = None) -> Any:
        """The factory or class registered for ``name``; `PluginError` if none or ambiguous.

        Where several plugins register ``name``, ``prefer`` (default: the
        ``plugin_preferences`` setting) maps it to the plugin to use.
        """
        regs = self._entries[kind].get(name)
        if not regs:
            raise PluginError(self.missing_message(kind, name))
        if len(regs) == 1:
            return regs[0].target
        if prefer is None:
            from moorage.config.settings import get_settings

            prefer = get_settings().plugin_preferences
        chosen = prefer.get(name)
        for reg in regs:
            if reg.plugin == chosen:
                return reg.target
        plugins = " and ".join(repr(r.plugin) for r in regs)
        raise PluginError(
            f"{_KIND_LABEL[kind]} {_label(kind, name)} is registered by both {plugins}; "
            f"pick one with the setting plugin_preferences, e.g. "
            f'MOORAGE_PLUGIN_PREFERENCES=\'{{"{name}": "{regs[0].plugin}"}}\', '
            "or uninstall one of them"
        )

    def missing_message(self, kind: Kind, name: str) -> str:
        extra = INSTALL_HINTS.get((kind, name))
        message = f"no {_KIND_LABEL[kind]} {_label(kind, name)}"
        if extra == "local":
            message += '; install it with: pip install "moorage-local"'
        elif extra:
            message += f'; install it with: pip install "moorage[{extra}]"'
        else:
            names = self.names(kind)
            close = difflib.get_close_matches(name, names, n=1)
            message += f"; did you mean {_label(kind, close[0])}? The" if close else "; the"
            message += (
                f" installed plugins provide: {', '.join(names) or 'none'}. Install a "
                f"plugin that registers {name!r} (see `moorage plugins`)"
            )
        if self.skipped:
            message += (
                f" ({PLUGINS_ENV} is set, so these installed plugins were not loaded: "
                f"{', '.join(self.skipped)})"
            )
        return message


def _version(dist: str) -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return None


def plugin_selection() -> list[str] | None:
    """The entry points ``MOORAGE_PLUGINS`` allows (None: all; empty: none)."""
    raw = os.environ.get(PLUGINS_ENV)
    if raw is None:
        return None
    return [name.strip() for name in raw.split(",") if name.strip()]


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, loaded on first use."""
    global _registry
    registry = _registry
    if registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry(plugin_selection()).load()
            registry = _registry
    return registry


def reset_registry() -> None:
    """Forget the loaded plugins; the next lookup discovers them again (for tests)."""
    global _registry
    with _registry_lock:
        _registry = None
