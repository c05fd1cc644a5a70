"""The plugin registry: which storage, serializer and lock manager serves each name.

A plugin is a module with hook implementations (`moorage.plugins.hookspecs`), announced
through the ``moorage`` entry-point group in its ``pyproject.toml``:

```toml
[project.entry-points.moorage]
mystore = "moorage_mystore"
```

The core's own built-ins (``memory://``, the serializers) are a plugin like any other
(`moorage.plugins.builtin`). pluggy calls each plugin's hooks with a ``register``
callback; a plugin whose import or hooks fail is reported and skipped, and the others
keep working. Loading is lazy: nothing is imported until a name is first looked up.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any

from moorage.config.settings import get_settings
from moorage.errors import PluginError
from moorage.plugins.known import Kind, known

if TYPE_CHECKING:
    from importlib.metadata import EntryPoint

__all__ = [
    "ENTRY_POINT_GROUP",
    "PLUGINS_ENV",
    "PluginInfo",
    "Registration",
    "Registry",
    "get_registry",
    "plugin_selection",
    "reset_registry",
]

ENTRY_POINT_GROUP = "moorage"
PLUGINS_ENV = "MOORAGE_PLUGINS"

#: Each hook, and the kind of thing its ``register`` callback takes.
_HOOKS: dict[str, Kind] = {
    "register_storages": "storage",
    "register_serializers": "serializer",
    "register_lock_managers": "lock_manager",
}

_KIND_LABEL: dict[Kind, str] = {
    "storage": "storage plugin for",
    "serializer": "serializer plugin for type",
    "lock_manager": "lock manager plugin for",
}


def _label(kind: Kind, name: str) -> str:
    return f"'{name}://'" if kind != "serializer" else repr(name)


@dataclass(frozen=True)
class Registration:
    """One name a plugin registered."""

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


class Registry:
    """Everything the loaded plugins registered, by kind and name."""

    def __init__(self, selection: list[str] | None = None) -> None:
        # pluggy and importlib.metadata (about 25 ms together) are imported when the
        # first registry is made, not with moorage.results, which needs neither.
        import pluggy

        from moorage.plugins import hookspecs

        self.selection = selection
        self.manager = pluggy.PluginManager(hookspecs.PROJECT)
        self.manager.add_hookspecs(hookspecs)
        self.plugins: list[PluginInfo] = []
        self._entries: dict[Kind, dict[str, list[Registration]]] = {
            "storage": {},
            "serializer": {},
            "lock_manager": {},
        }
        self.skipped: list[str] = []
        #: ``(type or name or predicate, hasher, plugin)`` in registration order: the
        #: table of `moorage.keys.hashers` is built from these.
        self.hashers: list[tuple[Any, Any, str]] = []

    # -- loading ------------------------------------------------------------------

    def load(self) -> Registry:
        """Register the built-ins, then every selected entry point, by name."""
        from moorage.plugins import builtin  # loaded with the registry, as plugins are
        from moorage.plugins.discovery import entry_points_of

        self.add_plugin(
            builtin, name="moorage", version=_version("moorage"), distribution="moorage"
        )
        for ep in sorted(entry_points_of(ENTRY_POINT_GROUP), key=lambda e: e.name):
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

        pluggy calls its hooks, and only its own; its registrations are kept only if all
        of them succeed. Otherwise it is reported with a warning and skipped.
        """
        module_name = getattr(module, "__name__", type(module).__name__)
        try:
            self.manager.register(module, name=name)
        except Exception as exc:
            self._broken(name, module_name, version, distribution, f"registration failed: {exc!r}")
            return None
        others = [plugin for plugin in self.manager.get_plugins() if plugin is not module]
        found: list[Registration] = []
        hashers: list[tuple[Any, Any, str]] = []
        try:
            for hook_name, kind in _HOOKS.items():
                call = self.manager.subset_hook_caller(hook_name, remove_plugins=others)
                call(register=_collector(kind, name, found))
            call = self.manager.subset_hook_caller("register_hashers", remove_plugins=others)
            call(register=_hasher_collector(name, hashers))
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
        for matches, _, _ in hashers:
            info.registers.setdefault("hasher", []).append(_hasher_label(matches))
        self.hashers.extend(hashers)
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
        """Why nothing serves ``name``, and what to install (or the closest name)."""
        entry = known(kind, name)
        message = f"no {_KIND_LABEL[kind]} {_label(kind, name)}"
        if entry is not None:
            message += f'; install it with: pip install "{entry.install}"'
        else:
            names = self.names(kind)
            import difflib  # for this message only

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


def _collector(kind: Kind, plugin: str, found: list[Registration]) -> Callable[[str, Any], None]:
    """The ``register`` callback one plugin's hook for ``kind`` is called with."""

    def register(key: str, target: Any) -> None:
        if not isinstance(key, str) or not key:
            raise PluginError(f"{kind} names must be non-empty strings, got {key!r}")
        found.append(Registration(kind, key, target, plugin))

    return register


def _hasher_collector(plugin: str, found: list[tuple[Any, Any, str]]) -> Callable[..., None]:
    """The ``register`` callback of one plugin's ``register_hashers`` hook."""

    def register(matches: Any, hasher: Any) -> None:
        if not (isinstance(matches, (type, str)) or callable(matches)):
            raise PluginError(
                f"hashers are registered for a type, 'module.Class' or a predicate, got {matches!r}"
            )
        if not (callable(hasher) or (isinstance(hasher, str) and ":" in hasher)):
            raise PluginError(f"a hasher is a callable or 'module:function', got {hasher!r}")
        found.append((matches, hasher, plugin))

    return register


def _hasher_label(matches: Any) -> str:
    if isinstance(matches, type):
        return f"{matches.__module__}.{matches.__qualname__}"
    if isinstance(matches, str):
        return matches
    return f"values where {getattr(matches, '__qualname__', repr(matches))}"


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
