"""Settings, read with pydantic-settings (or, when only plain ``MOORAGE_*`` variables
set them, by `moorage.config.environment`, which gives the same values without
importing pydantic-settings).

Sources, highest priority first: keyword arguments, environment variables
(``MOORAGE_*``; nested values as JSON, e.g. ``MOORAGE_STORAGES='{"s": {"url": ...}}'``),
``moorage.toml`` in the working directory, then ``[tool.moorage]`` in ``pyproject.toml``
in the working directory.

Named storages, in ``pyproject.toml``:

```toml
[tool.moorage.storages.shared]
url = "s3://team-bucket/results"
endpoint_url = "http://127.0.0.1:9000"   # any other key is a backend option
```

Unknown setting names in the files are errors (a typo never goes unnoticed); unknown
``MOORAGE_*`` variables are ignored, except ``MOORAGE_PLUGINS``, read by the plugin
system.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_serializer,
    field_validator,
)

from moorage.config.secrets import MASK, mask_options, mask_url
from moorage.errors import ConfigurationError

if TYPE_CHECKING:
    from pydantic_settings import PydanticBaseSettingsSource as _Source

__all__ = ["MoorageSettings", "NamedStorage", "get_settings", "load_settings", "reset_settings"]


class NamedStorage(BaseModel):
    """A storage defined in settings: a URL plus backend options."""

    model_config = ConfigDict(extra="allow", frozen=True, defer_build=True)

    url: str

    @property
    def options(self) -> dict[str, Any]:
        return dict(self.model_extra or {})

    def masked(self) -> dict[str, Any]:
        """The URL and options as shown to people: secrets as ``***``."""
        return {"url": mask_url(self.url), **mask_options(self.options)}


class MoorageSettings(BaseModel):
    """Every setting of moorage, with its default. `get_settings` reads them from the
    environment and the settings files (with pydantic-settings, see `load_settings`)."""

    model_config = ConfigDict(extra="forbid", validate_default=True, defer_build=True)

    storage: str | None = Field(
        default=None,
        description="Default result storage: a URL, a path, or a named storage. "
        "None: local storage at local_storage_path.",
    )
    local_storage_path: Path = Field(
        default=Path("~/.moorage/storage"), description="Root of the default local storage."
    )
    metadata_storage: str | None = Field(
        default=None, description="Where metadata lives apart from payloads (None: inside records)."
    )
    serializer: str = Field(default="pickle", description="Default serializer type.")
    lock_manager: str | None = Field(
        default=None, description="Default lock manager URL, e.g. file:///tmp/locks or redis://..."
    )
    persist_by_default: bool = Field(default=False, description="Persist results by default.")
    tasks_default_persist_result: bool | None = Field(
        default=None, description="Persist task results by default (None: persist_by_default)."
    )
    task_scheduling_storage: str | None = Field(
        default=None, description="Storage for task parameters (None: the default storage)."
    )
    cache_max_entries: int = Field(default=1000, ge=0, description="Memory cache: most records.")
    cache_max_bytes: int = Field(
        default=256 * 1024 * 1024, ge=0, description="Memory cache: most payload bytes."
    )
    lock_hold_timeout: float | None = Field(
        default=300.0, description="Seconds a lock lasts unless released or extended."
    )
    signing_key: SecretStr | None = Field(
        default=None, description="HMAC key: sign records on write, refuse unsigned or bad ones."
    )
    record_format: Literal["moorage", "prefect"] = Field(
        default="moorage", description="Format of written records."
    )
    accept_unsigned_prefect_records: bool = Field(
        default=False,
        description="With a signing_key, still read Prefect records and raw payloads, "
        "which carry no signature.",
    )
    max_payload_bytes: int = Field(
        default=1 << 30,
        gt=0,
        description="The most bytes a compressed payload of unstated size (Prefect "
        "records, raw payloads) may decompress to.",
    )
    json_allowed_classes: list[str | type[Any]] = Field(
        default_factory=list,
        description="Classes (or dotted names, resolved when a serializer is built) that "
        "json payloads may name: pydantic models, dataclasses, enums, exceptions. Reading "
        "never imports a module named by data.",
    )
    storages: dict[str, NamedStorage] = Field(default_factory=dict, description="Named storages.")
    plugin_preferences: dict[str, str] = Field(
        default_factory=dict,
        description="Which plugin serves a scheme or serializer type two plugins claim.",
    )

    @field_serializer("json_allowed_classes")
    def _dotted(self, value: list[str | type[Any]]) -> list[str]:
        return [v if isinstance(v, str) else f"{v.__module__}.{v.__qualname__}" for v in value]

    @field_validator("local_storage_path")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return value.expanduser()

    @field_validator("lock_hold_timeout", mode="before")
    @classmethod
    def _never(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in ("", "none", "null", "never"):
            return None
        return value

    @field_validator("lock_hold_timeout")
    @classmethod
    def _positive(cls, value: float | None) -> float | None:
        if value is not None and not value > 0:
            raise ValueError('must be positive seconds, or "never" for locks that never lapse')
        if value == float("inf"):
            return None
        return value

    def signing_key_bytes(self) -> bytes | None:
        if self.signing_key is None:
            return None
        return self.signing_key.get_secret_value().encode("utf-8")

    def masked(self) -> dict[str, Any]:
        """All settings as JSON-ready values, secrets replaced by ``***``."""
        data = self.model_dump(mode="json")
        if self.signing_key is not None:
            data["signing_key"] = MASK
        data["storages"] = {name: s.masked() for name, s in self.storages.items()}
        for name in ("storage", "metadata_storage", "lock_manager", "task_scheduling_storage"):
            data[name] = mask_url(data[name])
        return data


_cached: tuple[tuple[Any, ...], MoorageSettings] | None = None
_lock = threading.Lock()
#: The whole environment as last seen. Comparing the live mapping with this copy is a
#: C-level dict comparison of mostly identical objects, far cheaper than filtering every
#: variable, so the common "nothing changed" case costs well under a microsecond.
_environ_seen: dict[Any, Any] = {}
_moorage_environ: tuple[tuple[str, str], ...] = ()


def _raw_environ() -> Any:
    # os.environ keeps the raw mapping in ``_data`` (CPython, POSIX and Windows alike);
    # iterating os.environ itself decodes every key on each pass.
    return getattr(os.environ, "_data", os.environ)


def _moorage_variables() -> tuple[tuple[str, str], ...]:
    global _environ_seen, _moorage_environ
    raw = _raw_environ()
    if raw != _environ_seen:
        _moorage_environ = tuple(
            sorted((k, v) for k, v in os.environ.items() if k.startswith("MOORAGE_"))
        )
        _environ_seen = dict(raw)
    return _moorage_environ


#: How often, at most, the settings files' modification times are checked (seconds).
FILE_CHECK_INTERVAL = 1.0
_clock = time.monotonic
_files_checked: tuple[float, str, tuple[int | None, ...]] = (float("-inf"), "", ())


def _file_stamps(cwd: str) -> tuple[int | None, ...]:
    """The settings files' modification times in ``cwd``, checked at most once per
    `FILE_CHECK_INTERVAL` for one directory: two failed ``stat`` calls cost more than
    everything else `get_settings` does, and tasks call it on every call."""
    global _files_checked
    now = _clock()
    checked_at, checked_cwd, stamps = _files_checked
    if checked_cwd == cwd and now - checked_at < FILE_CHECK_INTERVAL:
        return stamps
    found: list[int | None] = []
    for name in ("moorage.toml", "pyproject.toml"):
        try:
            found.append(os.stat(os.path.join(cwd, name)).st_mtime_ns)
        except OSError:
            found.append(None)
    _files_checked = (now, cwd, tuple(found))
    return _files_checked[2]


def _fingerprint() -> tuple[Any, ...]:
    cwd = os.getcwd()
    return (_moorage_variables(), cwd, _file_stamps(cwd))


def get_settings() -> MoorageSettings:
    """The current settings, read again when a ``MOORAGE_*`` variable or the working
    directory changes, or a settings file's modification time (checked at most once a
    second; `reset_settings` forces a re-read)."""
    global _cached
    cached = _cached
    # Tasks ask on every call: answer "nothing changed" without building a fingerprint.
    if (
        cached is not None
        and _raw_environ() == _environ_seen
        and _clock() - _files_checked[0] < FILE_CHECK_INTERVAL
        and os.getcwd() == _files_checked[1]
    ):
        return cached[1]
    key = _fingerprint()
    if cached is not None and cached[0] == key:
        return cached[1]
    with _lock:
        _cached = None  # if reading fails, the next call must not answer from the past
        settings = load_settings()
        _cached = (key, settings)
    return settings


@functools.cache
def _settings_reader() -> type[MoorageSettings]:
    """`MoorageSettings` with pydantic-settings' sources: keyword arguments, MOORAGE_*
    variables, moorage.toml, then [tool.moorage] in pyproject.toml. Built on first use,
    so importing moorage does not import pydantic-settings."""
    from pydantic_settings import (
        BaseSettings,
        PydanticBaseSettingsSource,
        PyprojectTomlConfigSettingsSource,
        SettingsConfigDict,
        TomlConfigSettingsSource,
    )

    class MoorageSettingsReader(BaseSettings, MoorageSettings):
        model_config = SettingsConfigDict(
            env_prefix="MOORAGE_",
            extra="forbid",
            pyproject_toml_table_header=("tool", "moorage"),
            toml_file="moorage.toml",
            validate_default=True,
        )

        @classmethod
        def settings_customise_sources(
            cls,
            settings_cls: type[BaseSettings],
            init_settings: PydanticBaseSettingsSource,
            env_settings: PydanticBaseSettingsSource,
            dotenv_settings: PydanticBaseSettingsSource,
            file_secret_settings: PydanticBaseSettingsSource,
        ) -> tuple[PydanticBaseSettingsSource, ...]:
            return (
                init_settings,
                env_settings,
                _read_file("moorage.toml", TomlConfigSettingsSource, settings_cls),
                _read_file("pyproject.toml", PyprojectTomlConfigSettingsSource, settings_cls),
            )

    return MoorageSettingsReader


def _read_file(name: str, source: Callable[[Any], _Source], settings_cls: Any) -> _Source:
    """A TOML settings source; a file that cannot be read or parsed raises
    `ConfigurationError` naming it and the position of the mistake."""
    try:
        return source(settings_cls)
    except (ValueError, OSError) as exc:
        import tomllib

        from moorage.config.problems import file_error

        if not isinstance(exc, (tomllib.TOMLDecodeError, UnicodeDecodeError, OSError)):
            raise
        raise file_error(name, exc) from None


def load_settings(**overrides: Any) -> MoorageSettings:
    """Read the settings now: ``overrides`` first, then ``MOORAGE_*`` variables,
    ``moorage.toml`` and ``[tool.moorage]`` in ``pyproject.toml``. Invalid values,
    unknown names and unreadable files raise `ConfigurationError` naming where each
    was set: the variable, the keyword argument, or the file and line."""
    if not overrides:
        from moorage.config.environment import read_environment

        quick: MoorageSettings | None = read_environment(MoorageSettings, os.getcwd())
        if quick is not None:
            return quick
    from pydantic_settings import SettingsError

    try:
        return _settings_reader()(**overrides)
    except ValidationError as exc:
        from moorage.config.problems import validation_error

        fields = list(MoorageSettings.model_fields)
        raise validation_error(exc.errors(), fields, overrides) from None
    except SettingsError as exc:  # a MOORAGE_* variable of a nested setting is not JSON
        import re

        from moorage.config.problems import env_json_error

        field = re.search(r'field "(\w+)"', str(exc))
        if field is None:
            raise ConfigurationError(f"invalid moorage settings: {exc}") from None
        raise env_json_error(field.group(1), exc.__cause__) from None


def reset_settings() -> None:
    """Forget the settings read so far: the next `get_settings` reads every source
    again (after editing a settings file, say, rather than waiting for the next check)."""
    global _cached, _files_checked
    with _lock:
        _cached = None
        _files_checked = (float("-inf"), "", ())
