"""Turning URLs, paths and names into storage and lock-manager objects.

``s3://bucket/prefix?region=eu-west-1`` picks the plugin registered for ``s3`` and
passes ``region`` as an option; a name defined in settings (``storages.NAME``) gives its
URL and options; anything else that is a string or a `Path` is a local path.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

from moorage.config.secrets import mask_url
from moorage.config.settings import MoorageSettings, get_settings
from moorage.errors import ConfigurationError, PluginError
from moorage.landing import adopt
from moorage.locking import LockManager
from moorage.storage import Storage

if TYPE_CHECKING:
    from moorage.plugins.known import Kind
    from moorage.plugins.registry import Registry

__all__ = ["lock_manager_from", "split_url", "storage_from"]


def split_url(url: str) -> tuple[str, str, dict[str, str]]:
    """``(scheme, url without query, options from the query)``."""
    parts = urlsplit(url)
    options = dict(parse_qsl(parts.query, keep_blank_values=True))
    # Built by hand: urlunsplit drops "//" for schemes it does not know ("example:///x").
    bare = f"{parts.scheme}://{parts.netloc}{parts.path}"
    if parts.fragment:
        bare += f"#{parts.fragment}"
    return parts.scheme.lower(), bare, options


def _is_url(value: str) -> bool:
    scheme, sep, _ = value.partition("://")
    return bool(sep) and scheme.replace("+", "").replace("-", "").replace(".", "").isalnum()


def _build(kind: Kind, url: str, options: dict[str, Any], settings: MoorageSettings) -> Any:
    scheme, bare, query = split_url(url)
    factory = _registry().lookup(kind, scheme, settings.plugin_preferences)
    merged = {**query, **options}
    try:
        # One object per configuration and process, so a task rebuilt for every call
        # on a worker finds its clients again (see moorage.landing).
        return adopt(factory(bare, **merged))
    except (PluginError, ConfigurationError):
        raise
    except TypeError as exc:
        raise ConfigurationError(
            f"cannot build the {kind.replace('_', ' ')} for {mask_url(url)!r}: {exc}; check "
            "the options given in the URL query, the named storage or keyword arguments"
        ) from exc


def storage_from(
    value: Storage | Path | str | os.PathLike[str],
    settings: MoorageSettings | None = None,
    **options: Any,
) -> Storage:
    """A storage object for a storage, a `Path`, a URL, or a named storage."""
    if isinstance(value, Storage):
        return value
    settings = settings or get_settings()
    if isinstance(value, str) and value in settings.storages:
        named = settings.storages[value]
        return storage_from(named.url, settings, **{**named.options, **options})
    if isinstance(value, str) and _is_url(value):
        storage: Storage = _build("storage", value, options, settings)
        return storage
    if isinstance(value, (str, os.PathLike)):
        path = Path(value).expanduser()
        local: Storage = _build("storage", path.absolute().as_uri(), options, settings)
        return local
    accepted = "a Storage object, a pathlib.Path, a URL such as 's3://bucket/prefix', or the "
    accepted += "name of a storage defined in settings"
    raise TypeError(f"result storage must be {accepted}; got {type(value).__name__}: {value!r}")


def lock_manager_from(
    value: LockManager | str,
    settings: MoorageSettings | None = None,
    **options: Any,
) -> LockManager:
    """A lock manager for a manager object or a URL (``file:///dir``, ``redis://...``)."""
    if isinstance(value, LockManager):
        return value
    settings = settings or get_settings()
    if isinstance(value, str) and _is_url(value):
        if "hold_timeout" not in split_url(value)[2]:
            options.setdefault("hold_timeout", settings.lock_hold_timeout)
        manager: LockManager = _build("lock_manager", value, options, settings)
        return manager
    if isinstance(value, (str, os.PathLike)):
        return lock_manager_from(Path(value).expanduser().absolute().as_uri(), settings, **options)
    raise TypeError(
        "a lock manager must be a LockManager object or a URL such as 'memory://', "
        f"'file:///tmp/locks' or 'redis://localhost:6379/0'; got {type(value).__name__}"
    )


def _registry() -> Registry:
    """The plugin registry, imported on first use (with pluggy and the entry points): a
    program that imports moorage but builds nothing from a name pays nothing for it."""
    from moorage.plugins.registry import get_registry

    return get_registry()
