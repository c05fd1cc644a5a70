"""The ``pickle`` serializer: cloudpickle (default), the standard ``pickle``, or dill.

``pickle`` runs code from data: reading a pickled payload runs whatever its writer put in
it. For storage others can write, set a ``signing_key`` (unsigned records are refused
before anything is unpickled) or use ``json``, which never imports a module while
reading and builds only the classes its reader allows.
"""

from __future__ import annotations

import importlib
import pickle
import sys
from collections.abc import Callable
from types import ModuleType
from typing import Any, BinaryIO

from pydantic import field_validator

from moorage.buffers import BytesLike
from moorage.errors import MoorageError, SerializationError
from moorage.serializers.base import Serializer, is_describing
from moorage.serializers.failures import serialization_errors

__all__ = ["PICKLE_LIBRARIES", "PickleSerializer"]

#: The pickle libraries moorage supports, by module name.
PICKLE_LIBRARIES = ("cloudpickle", "pickle", "dill")
_PROTOCOL = pickle.HIGHEST_PROTOCOL


class PickleSerializer(Serializer):
    """Pickle with cloudpickle (default) or the standard ``pickle`` module.

    Payloads are raw pickle bytes (protocol 5); reading a payload needs the classes it
    references. Never read pickles from storage you do not trust; set ``signing_key`` to
    refuse tampered records before unpickling.
    """

    type: str = "pickle"
    #: The module that pickles: ``cloudpickle``, ``pickle`` or ``dill``. Checked when the
    #: serializer is built (importable, with callable ``dumps`` and ``loads``); a
    #: serializer described by a stored record is checked when it is used instead, so a
    #: record's metadata can be read where its library is not installed.
    picklelib: str = "cloudpickle"
    #: As in Prefect: the library's version, when the writer recorded one.
    picklelib_version: str | None = None

    @field_validator("picklelib")
    @classmethod
    def _check_picklelib(cls, value: str) -> str:
        if not is_describing():
            _pickle_module(value)
        return value

    def _lib(self) -> Any:
        return _pickle_module(self.picklelib)

    def check_usable(self) -> None:
        self._lib()

    def dumps(self, obj: Any) -> bytes:
        return b"".join(self.dump_parts(obj))

    def dump_parts(self, obj: Any) -> list[BytesLike]:
        # The pickler hands large bytes and (protocol 5) array buffers to the file's
        # write() as they are, so the parts reference them instead of copying them.
        lib = self._lib()
        with serialization_errors(
            lambda exc: f"could not pickle a {type(obj).__qualname__} with {self.picklelib}: {exc}"
        ):
            if lib.__name__ == "cloudpickle":
                parts = _as_standard_pickle(obj, lib)
                if parts is not None:
                    return parts
            sink = _PartsSink()
            lib.dump(obj, sink, protocol=_PROTOCOL)
            return sink.parts

    def loads(self, data: BytesLike) -> Any:
        return _unpickled(self._unpickler().loads, data)

    def load_stream(self, stream: BinaryIO) -> Any:
        # The unpickler reads large bytes and bytearrays straight into the new objects.
        return _unpickled(self._unpickler().load, stream)

    def _unpickler(self) -> Any:
        # cloudpickle's output is ordinary pickle: the standard loader reads it faster.
        return pickle if self.picklelib != "dill" else self._lib()


def _unpickled(load: Callable[[Any], Any], source: Any) -> Any:
    """``load(source)``, its failures as `SerializationError`. A try block rather than
    `serialization_errors`: every read of a record comes here, and entering a context
    manager costs about as much as unpickling a small value."""
    try:
        return load(source)
    except MoorageError:
        raise
    except Exception as exc:
        raise SerializationError(f"could not unpickle the payload: {exc!r}") from exc


#: The pickle libraries imported and checked so far, by name (every write asks), each
#: checked again if ``sys.modules`` holds another module under its name.
_CHECKED: dict[str, ModuleType] = {}


def _pickle_module(name: str) -> ModuleType:
    """The pickle library ``name``, imported; `SerializationError` naming it and the fix
    when it is not one moorage supports, not installed, or has no ``dumps``/``loads``."""
    module = _CHECKED.get(name)
    if module is None or sys.modules.get(name) is not module:  # new, or replaced since
        module = _CHECKED[name] = _import_checked(name)
    return module


def _import_checked(name: str) -> ModuleType:
    if name not in PICKLE_LIBRARIES:
        supported = ", ".join(PICKLE_LIBRARIES)
        raise SerializationError(
            f"picklelib {name!r} is not supported; use one of {supported} "
            "(PickleSerializer(picklelib='pickle'), for instance)"
        )
    try:
        module = importlib.import_module(name)
    except ImportError as exc:
        raise SerializationError(
            f"picklelib {name!r} is not installed: pip install {name}, or use "
            "picklelib='pickle' (the standard library)"
        ) from exc
    missing = [f for f in ("dumps", "loads") if not callable(getattr(module, f, None))]
    if missing:
        where = getattr(module, "__file__", None) or "(no file)"
        raise SerializationError(
            f"picklelib {name!r} has no callable {' or '.join(missing)}: the module imported "
            f"under that name ({where}) is not the pickle library. Rename or remove what "
            f"shadows it, or reinstall it (pip install --force-reinstall {name}), or use "
            "picklelib='pickle'"
        )
    return module


#: Frames of the standard pickler hold at most its 64 KiB target plus one item smaller
#: than that; anything larger is written apart (a big bytes or str), never a name.
_FRAMES_BELOW = 1 << 17


def _as_standard_pickle(obj: Any, cloudpickle: ModuleType) -> list[BytesLike] | None:
    """``obj`` pickled by the standard (C) pickler, where that is the pickle cloudpickle
    would make; None where only cloudpickle can pickle it as it should.

    cloudpickle differs from the standard pickler in what it pickles by value: functions
    and classes that cannot be imported by name (lambdas, locals, dynamic classes; the
    standard pickler fails on those), those defined in ``__main__`` (the standard
    pickler would name them, so a pickle naming ``__main__`` is made again), and the
    modules registered with ``register_pickle_by_value``. Everything else it pickles as
    the standard pickler does, at twice the cost per call. Either way the payload is
    ordinary pickle, read by ``pickle.loads``. A value whose reduction fails or names
    ``__main__`` is reduced a second time, by cloudpickle.
    """
    if cloudpickle.list_registry_pickle_by_value():
        return None
    sink = _PartsSink()
    try:
        pickle.dump(obj, sink, protocol=_PROTOCOL)
    except Exception:
        return None
    for part in sink.parts:
        if type(part) is bytes and len(part) < _FRAMES_BELOW and b"__main__" in part:
            return None
    return sink.parts


class _PartsSink:
    """A write-only file collecting what a pickler writes, without copying it."""

    def __init__(self) -> None:
        self.parts: list[BytesLike] = []

    def write(self, data: Any) -> int:
        # An array's buffer arrives as a PickleBuffer, possibly Fortran-ordered: raw()
        # is its bytes in memory order either way, which is what the pickle holds.
        view = data.raw() if isinstance(data, pickle.PickleBuffer) else memoryview(data)
        view = view.cast("B") if view.ndim != 1 or view.format != "B" else view
        self.parts.append(data if type(data) is bytes else view)
        return view.nbytes
