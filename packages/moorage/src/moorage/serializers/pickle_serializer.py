"""The ``pickle`` serializer: cloudpickle (default), the standard ``pickle``, or dill.

``pickle`` runs code from data: reading a pickled payload runs whatever its writer put in
it. For storage others can write, set a ``signing_key`` (unsigned records are refused
before anything is unpickled) or use ``json``, which never imports a module while
reading and builds only the classes its reader allows.
"""

from __future__ import annotations

import importlib
import pickle
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import ModuleType
from typing import Any, BinaryIO

from pydantic import field_validator

from moorage.buffers import BytesLike
from moorage.errors import SerializationError
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
        data: bytes = self._pickling(obj, lambda lib: lib.dumps(obj, protocol=_PROTOCOL))
        return data

    def dump_parts(self, obj: Any) -> list[BytesLike]:
        # The pickler hands large bytes and (protocol 5) array buffers to the file's
        # write() as they are, so the parts reference them instead of copying them.
        sink = _PartsSink()
        self._pickling(obj, lambda lib: lib.dump(obj, sink, protocol=_PROTOCOL))
        return sink.parts

    def loads(self, data: BytesLike) -> Any:
        with _unpickling():
            return self._unpickler().loads(data)

    def load_stream(self, stream: BinaryIO) -> Any:
        # The unpickler reads large bytes and bytearrays straight into the new objects.
        with _unpickling():
            return self._unpickler().load(stream)

    def _unpickler(self) -> Any:
        # cloudpickle's output is ordinary pickle: the standard loader reads it faster.
        return pickle if self.picklelib != "dill" else self._lib()

    def _pickling(self, obj: Any, run: Callable[[Any], Any]) -> Any:
        lib = self._lib()
        what = f"could not pickle a {type(obj).__qualname__} with {self.picklelib}"
        with serialization_errors(lambda exc: f"{what}: {exc}"):
            return run(lib)


def _unpickling() -> AbstractContextManager[None]:
    return serialization_errors(lambda exc: f"could not unpickle the payload: {exc!r}")


def _pickle_module(name: str) -> ModuleType:
    """The pickle library ``name``, imported; `SerializationError` naming it and the fix
    when it is not one moorage supports, not installed, or has no ``dumps``/``loads``."""
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
