"""The code a function's cache key depends on: its own source and what it uses.

`TASK_SOURCE` hashes a task's own source only, so editing a helper the task calls
leaves its stored results in place. The `CODE` policy hashes `code_key`: the function's
source plus the parts of its program it reads, found in its compiled code, so editing
``scale`` invalidates a task that calls ``helpers.scale`` while editing an unrelated
function of ``helpers`` does not.

What is included, for the function and, followed the same way, each function and class
of its package that it reaches:

1. The function's own source (``inspect.getsource`` of ``inspect.unwrap(fn)``), or
   where no source is readable (``exec``, ``python -c``) its compiled code and the
   Python version: the same digest `source_key` (`TASK_SOURCE`) gives it.
2. Its closure cells (by their names in ``co_freevars``): a function, class or task in a
   cell is treated as a global of that name (below); any other value is hashed with
   `stable_hash`, or if it cannot be, by its type's name only (noted).
3. The globals its code reads (``LOAD_GLOBAL`` in its code and in every code object
   nested in it: comprehensions, lambdas, inner functions), found in ``fn.__globals__``
   (builtins are left out), with the attribute chains read from them
   (``helpers.scale`` reads ``scale`` of the module ``helpers``), and the names imported
   inside the function (``from pkg.helpers import scale``, ``import pkg.helpers as h``;
   only modules already imported are looked at, none is imported here):

   - a moorage task: its function, followed (kind ``"task"``);
   - a function or class of the same top-level package as ``fn`` (the first part of
     ``__module__``; functions of ``__main__`` count as one package): its source,
     followed (``"function"``, ``"class"``: the functions the class body defines and
     its bases are followed, not what a metaclass or base adds);
   - a function, class or module of another package (the standard library, NumPy):
     its qualified name only, not followed (``"external"``);
   - a module of the same package: its attributes named in a chain, by these same
     rules; a module read whole, by its name (``"module"``);
   - ``functools.partial``: its arguments hashed (``"partial arguments"``) and its
     function by these rules; a bound method: its object's state and its function; a
     decorated function (``functools.wraps``, ``lru_cache``): the function it wraps;
   - any other value (``THRESHOLD = 3``, a dict, an instance): `stable_hash` of the value
     (``"global value"``, or ``"module attribute"`` when read as ``module.NAME``), or if
     unhashable its type's name only, noted; an instance of a class of the same
     package also follows the class.

Bounds: at most `MAX_FOLLOWED` functions and classes are followed, at most `MAX_DEPTH`
calls away from ``fn``; past the depth bound a function's own source is still hashed but
not what it uses, past the count bound only its name (each noted, nothing fails).
Cycles (recursion, mutual recursion) end at a function already seen: each function is
listed once, where the walk, breadth first, meets it first.

Not seen: names reached by ``getattr(module, "name")`` or through an argument or
``self`` (a method's ``self.other()`` is covered when its class is followed, since the
class's source holds every method), globals rebound after the key is first computed
(keys are computed once per process per function), and data files. A global whose
state differs per process (an unseeded random generator, a client holding a session id)
gives a key that differs per process too: such a value belongs in the task's arguments
or outside the globals it reads.

Deterministic in every process: names are sorted, nothing depends on ``id()``, string
hashing or set order, and no file path or line number is hashed, so a client and its
workers compute the same key and moving a project folder keeps every key.
"""

from __future__ import annotations

import dis
import functools
import importlib.util
import inspect
import sys
import threading
import types
import weakref
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from moorage.errors import UnhashableValue
from moorage.keys.encoding import stable_hash
from moorage.keys.functions import code_material, qualified_name

__all__ = [
    "MAX_DEPTH",
    "MAX_FOLLOWED",
    "CodeDependency",
    "code_dependencies",
    "code_key",
    "source_digest",
]

#: At most this many functions and classes are followed (their source hashed and what
#: they use looked at), besides the function itself.
MAX_FOLLOWED = 200
#: A function or class further than this many steps from the function is hashed by its
#: own source only.
MAX_DEPTH = 20

#: Changes when what a code key hashes changes, so old keys are not reused by mistake.
_VERSION = "moorage code key 1"


@dataclass(frozen=True)
class CodeDependency:
    """One thing a function's code key depends on.

    ``name`` is written as the code that uses it writes it (``"helpers.scale"``,
    ``"THRESHOLD"``, ``"factor"`` for a closure cell); ``used_by`` is the qualified name
    of the function (or method) that reads it; ``kind`` says what it is and how it was
    hashed (see the module docstring); ``digest`` is the `stable_hash` of what was hashed
    for it; ``note`` says what was left out, if anything (not part of the key).
    """

    name: str
    kind: str
    digest: str
    used_by: str = ""
    note: str = ""


@dataclass(frozen=True)
class _Analysis:
    source: str
    dependencies: tuple[CodeDependency, ...]
    key: str


_MEMO: weakref.WeakKeyDictionary[Any, _Analysis] = weakref.WeakKeyDictionary()
_MEMO_LOCK = threading.Lock()


def code_key(fn: Callable[..., Any]) -> str:
    """A `stable_hash` digest of ``fn``'s source and of everything `code_dependencies`
    lists, the same in every process that has the same code."""
    return _analyse(fn).key


def code_dependencies(fn: Callable[..., Any]) -> list[CodeDependency]:
    """What ``fn``'s code key depends on besides its own source, in a fixed order
    (breadth first from ``fn``, names sorted at each function)."""
    return list(_analyse(fn).dependencies)


def source_digest(fn: Callable[..., Any]) -> str:
    """The digest of ``fn``'s own source that `code_key` hashes with its dependencies
    (equal to `TASK_SOURCE`'s key of ``fn``)."""
    return _analyse(fn).source


def _analyse(fn: Callable[..., Any]) -> _Analysis:
    """The analysis of ``fn``, memoized per function object. Two threads may both
    compute it; they find the same result, and either one is kept."""
    with _MEMO_LOCK:
        try:
            return _MEMO[fn]
        except (KeyError, TypeError):  # TypeError: not weak-referenceable
            pass
    analysis = _Walk(fn).run()
    with _MEMO_LOCK:
        try:
            _MEMO[fn] = analysis
        except TypeError:
            pass
    return analysis


# -- what a piece of code reads --------------------------------------------------------

_GLOBAL_LOADS = frozenset({"LOAD_GLOBAL", "LOAD_NAME"})
_LOCAL_LOADS = frozenset({"LOAD_FAST", "LOAD_DEREF", "LOAD_CLASSDEREF"})
_ATTRIBUTE_LOADS = frozenset({"LOAD_ATTR", "LOAD_METHOD"})
_STORES = frozenset({"STORE_FAST", "STORE_NAME", "STORE_DEREF"})
#: What may follow an IMPORT_NAME while the names it imports are bound.
_IMPORT_STEPS = _STORES | {"IMPORT_NAME", "IMPORT_FROM", "SWAP", "POP_TOP"}


@dataclass(frozen=True, order=True)
class _Reference:
    """A dotted name the code reads: from a global (``origin`` "global") or from a module
    imported inside the code (``origin`` "import", ``parts[0]`` an absolute module name)."""

    origin: str
    parts: tuple[str, ...]


def _code_objects(code: types.CodeType) -> Iterator[types.CodeType]:
    yield code
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            yield from _code_objects(const)


def _references(code: types.CodeType, package: str | None) -> list[_Reference]:
    """The dotted names ``code`` and the code nested in it read, sorted."""
    found: set[_Reference] = set()
    for inner in _code_objects(code):
        found.update(_references_of(inner, package))
    return sorted(found)


def _references_of(code: types.CodeType, package: str | None) -> Iterator[_Reference]:
    aliases: dict[str, tuple[str, ...]] = {}  # local names bound by an import
    chain: _Reference | None = None  # a dotted name being read
    consts: list[Any] = []  # the constants just loaded: an import's level and fromlist
    module: tuple[str, ...] | None = None  # the module an import left on the stack
    value: tuple[str, ...] | None = None  # what the next store binds, if imported
    for ins in dis.get_instructions(code):
        op, argument = ins.opname, ins.argval
        if op in _ATTRIBUTE_LOADS and chain is not None:
            chain = _Reference(chain.origin, (*chain.parts, str(argument)))
            continue
        if chain is not None:
            yield chain
            chain = None
        if op not in _IMPORT_STEPS:  # an import's effect on the stack ends here
            module = value = None
        if op in _GLOBAL_LOADS:
            chain = _Reference("global", (str(argument),))
        elif op in _LOCAL_LOADS and argument in aliases:
            chain = _Reference("import", aliases[argument])
        elif op == "IMPORT_NAME":
            module = value = _imported(str(argument), consts, package)
        elif op == "IMPORT_FROM" and module is not None:
            value = (*module, str(argument))
        elif op == "SWAP" and value is not None:  # import a.b.c as d: then c of that
            module = value
        elif op in _STORES and value is not None:
            yield _Reference("import", value)
            aliases[str(argument)] = value
            value = None
        consts = [*consts[-1:], argument] if op == "LOAD_CONST" else []
    if chain is not None:
        yield chain


def _imported(name: str, consts: list[Any], package: str | None) -> tuple[str, ...] | None:
    """What ``IMPORT_NAME name`` leaves on the stack, as the parts of a module path:
    the top-level package for ``import a.b``, the module itself when names are imported
    from it. None if the import cannot be resolved without importing."""
    if len(consts) < 2 or not isinstance(consts[-2], int):
        return None
    level, fromlist = consts[-2], consts[-1]
    absolute = name
    if level:
        if not package:
            return None
        try:
            absolute = importlib.util.resolve_name("." * level + name, package)
        except ImportError:
            return None
    if fromlist is None:
        return (absolute.split(".")[0],)
    return (absolute,)


# -- the walk --------------------------------------------------------------------------


def _top(obj: Any) -> str | None:
    module = getattr(obj, "__module__", None)
    return module.split(".")[0] if isinstance(module, str) else None


def _is_task(value: Any) -> bool:
    """A moorage task (or a look-alike): a wrapper whose ``fn`` is followed. Recognised
    by shape, as the workflow layer above this one defines the class."""
    return callable(getattr(value, "fn", None)) and callable(getattr(value, "source_key", None))


def _source_of(obj: Any) -> str:
    """The digest of a function's or class's own source (its compiled code and the
    Python version where no source is readable). A lambda adds its compiled code: its
    source is the whole line it sits on, which may hold several."""
    try:
        source = inspect.getsource(obj)
    except (OSError, TypeError, SyntaxError):  # SyntaxError: the file changed under us
        if isinstance(obj, type):
            methods = [(name, code_material(f)) for name, f in _methods(obj)]
            return stable_hash("compiled class", sys.version_info[:2], obj.__qualname__, methods)
        return stable_hash("compiled", sys.version_info[:2], code_material(obj))
    if "<lambda>" in getattr(obj, "__qualname__", ""):
        return stable_hash(source, sys.version_info[:2], code_material(obj))
    return stable_hash(source)


def _methods(cls: type) -> list[tuple[str, types.FunctionType]]:
    """The functions a class defines itself, by attribute name: methods, static and
    class methods, and property accessors; not functions defined elsewhere that its
    metaclass or a decorator put there (an enum's ``__new__``)."""
    found: list[tuple[str, Any]] = []
    prefix = f"{cls.__qualname__}."
    for name in sorted(vars(cls)):
        attribute = vars(cls)[name]
        if isinstance(attribute, (staticmethod, classmethod)):
            attribute = attribute.__func__
        if isinstance(attribute, property):
            accessors = (("get", attribute.fget), ("set", attribute.fset), ("del", attribute.fdel))
            found.extend((f"{name}.{how}", f) for how, f in accessors)
            continue
        found.append((name, _unwrap(attribute) if callable(attribute) else attribute))
    return [
        (name, f)
        for name, f in found
        if isinstance(f, types.FunctionType)
        and f.__module__ == cls.__module__
        and f.__qualname__.startswith(prefix)
    ]


def _value_digest(value: Any) -> tuple[str, str]:
    """``value``'s `stable_hash`, or its type's name and a note where it has none."""
    try:
        return stable_hash(value), ""
    except (UnhashableValue, RecursionError) as exc:
        kind = type(value)
        return (
            stable_hash("unhashable", f"{kind.__module__}.{kind.__qualname__}"),
            f"hashed by its type's name only: {exc}",
        )


def _root(fn: Any) -> tuple[Any, list[tuple[str, Any]]]:
    """The function or class whose source is ``fn``'s own, and what wraps it on the way:
    partials (``"partial"``) and the objects of bound methods and callable objects
    (``"self"``). A task is its function; a decorated function, the one it wraps."""
    wrappers: list[tuple[str, Any]] = []
    for _ in range(100):  # a chain of wrappers, one step each; no cycle runs forever
        if _is_task(fn):
            fn = fn.fn
        elif isinstance(fn, functools.partial):
            wrappers.append(("partial", fn))
            fn = fn.func
        elif isinstance(fn, types.MethodType):
            wrappers.append(("self", fn.__self__))
            fn = fn.__func__
        elif (unwrapped := _unwrap(fn)) is not fn:  # a decorator's wrapper, lru_cache
            fn = unwrapped
        elif isinstance(fn, (types.FunctionType, type)):
            break
        elif isinstance(
            call := inspect.getattr_static(type(fn), "__call__", None), types.FunctionType
        ):
            wrappers.append(("self", fn))
            fn = call
        else:
            break
    return fn, wrappers


class _Walk:
    """One breadth-first walk from a function through what it uses."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        self.fn = fn
        self.dependencies: list[CodeDependency] = []
        self.seen: dict[int, Any] = {}  # by id(), for membership only; holds the objects
        self.listed: set[tuple[str, ...]] = set()
        self.queue: deque[tuple[Any, int]] = deque()
        self.followed = 0
        self.package: str | None = None

    def run(self) -> _Analysis:
        root, wrappers = _root(self.fn)
        self.package = _top(root)
        self.seen[id(root)] = root
        used_by = qualified_name(root)
        for how, wrapper in wrappers:
            if how == "partial":
                self._add(
                    "partial arguments", "partial arguments", used_by, wrapper, arguments=True
                )
            else:  # the object a method is bound to: its state, and its class if ours
                self._add("self", "bound instance", used_by, wrapper)
                if _top(type(wrapper)) == self.package:
                    self._follow(type(wrapper), "self.__class__", used_by, 0)
        self._scan(root, 0)
        while self.queue:
            obj, depth = self.queue.popleft()
            self._scan(obj, depth)
        source = _source_of(root)
        dependencies = tuple(self.dependencies)
        parts = [(d.name, d.kind, d.used_by, d.digest) for d in dependencies]
        return _Analysis(source, dependencies, stable_hash(_VERSION, source, parts))

    # -- scanning one function or class ------------------------------------------------

    def _scan(self, obj: Any, depth: int) -> None:
        if isinstance(obj, type):
            for base in obj.__bases__:
                if base.__module__ == "builtins":  # object, int, dict: nothing to follow
                    continue
                self._classify(base, f"{obj.__qualname__}.__bases__", qualified_name(obj), depth)
            functions = [f for _, f in _methods(obj)]
        elif isinstance(obj, types.FunctionType):
            functions = [obj]
        else:
            return
        for function in functions:
            self._scan_function(function, depth)

    def _scan_function(self, fn: types.FunctionType, depth: int) -> None:
        used_by = qualified_name(fn)
        cells = fn.__closure__ or ()
        for name, cell in sorted(zip(fn.__code__.co_freevars, cells, strict=False)):
            try:
                value = cell.cell_contents
            except ValueError:  # a cell not yet filled
                self._record(name, "closure", stable_hash("empty cell"), used_by, "empty cell")
                continue
            self._classify(value, name, used_by, depth, value_kind="closure")
        package = fn.__globals__.get("__package__") or None
        for reference in _references(fn.__code__, package):
            self._reference(fn, reference, used_by, depth)

    def _reference(
        self, fn: types.FunctionType, reference: _Reference, used_by: str, depth: int
    ) -> None:
        parts = reference.parts
        if reference.origin == "global":
            if parts[0] not in fn.__globals__:  # a builtin, or not defined (yet)
                return
            value = fn.__globals__[parts[0]]
        else:
            value = sys.modules.get(parts[0])
            if value is None:
                return
        consumed = 1
        while isinstance(value, types.ModuleType) and consumed < len(parts):
            if _module_top(value) != self.package:
                break
            attribute = vars(value).get(parts[consumed], _MISSING)
            if attribute is _MISSING:
                break
            value = attribute
            consumed += 1
        name = ".".join(parts[:consumed])
        if ("ref", fn.__module__, name) in self.listed:
            return
        self.listed.add(("ref", fn.__module__, name))
        kind = "module attribute" if consumed > 1 else "global value"
        self._classify(value, name, used_by, depth, value_kind=kind)

    # -- what one value adds -----------------------------------------------------------

    def _classify(
        self, value: Any, name: str, used_by: str, depth: int, value_kind: str = "global value"
    ) -> None:
        if _is_task(value):
            inner = _unwrap(value.fn)
            if isinstance(inner, types.FunctionType):
                self._follow(inner, name, used_by, depth, kind="task")
            else:
                self._classify(inner, f"{name}.fn", used_by, depth, value_kind)
        elif callable(value) and (unwrapped := _unwrap(value)) is not value:
            self._classify(unwrapped, name, used_by, depth, value_kind)  # lru_cache, wraps
        elif isinstance(value, functools.partial):
            self._add(name, "partial arguments", used_by, value, arguments=True)
            self._classify(value.func, f"{name}.func", used_by, depth, value_kind)
        elif isinstance(value, types.MethodType):
            self._classify(value.__func__, name, used_by, depth, value_kind)
            self._add(f"{name}.__self__", value_kind, used_by, value.__self__)
        elif isinstance(value, types.ModuleType):
            ours = _module_top(value) == self.package
            kind = "module" if ours else "external"
            self._record(name, kind, stable_hash(value.__name__), used_by)
        elif isinstance(value, (types.FunctionType, type)):
            if _top(value) == self.package:
                kind = "class" if isinstance(value, type) else "function"
                self._follow(value, name, used_by, depth, kind=kind)
            else:
                self._record(name, "external", stable_hash(qualified_name(value)), used_by)
        elif isinstance(value, (types.BuiltinFunctionType, types.MethodWrapperType)):
            self._record(name, "external", stable_hash(qualified_name(value)), used_by)
        else:
            self._add(name, value_kind, used_by, value)
            cls = type(value)
            if _top(cls) == self.package:
                self._follow(cls, f"{name}.__class__", used_by, depth)

    def _follow(
        self, obj: Any, name: str, used_by: str, depth: int, kind: str | None = None
    ) -> None:
        """List a function or class of ours and queue it to be scanned, once."""
        if id(obj) in self.seen:
            return
        self.seen[id(obj)] = obj
        kind = kind or ("class" if isinstance(obj, type) else "function")
        if self.followed >= MAX_FOLLOWED:
            note = f"not followed: more than {MAX_FOLLOWED} functions and classes; name only"
            self._record(
                name, kind, stable_hash("not followed", qualified_name(obj)), used_by, note
            )
            return
        self.followed += 1
        note = ""
        if depth + 1 > MAX_DEPTH:
            note = f"own source only: more than {MAX_DEPTH} steps from the function"
        else:
            self.queue.append((obj, depth + 1))
        self._record(name, kind, _source_of(obj), used_by, note)

    def _add(
        self, name: str, kind: str, used_by: str, value: Any, *, arguments: bool = False
    ) -> None:
        if arguments:
            value = (list(value.args), dict(value.keywords))
        digest, note = _value_digest(value)
        self._record(name, kind, digest, used_by, note)

    def _record(self, name: str, kind: str, digest: str, used_by: str, note: str = "") -> None:
        self.dependencies.append(CodeDependency(name, kind, digest, used_by, note))


def _unwrap(fn: Any) -> Any:
    """The function a decorator wrapped (``__wrapped__``), or ``fn`` itself."""
    try:
        return inspect.unwrap(fn)
    except ValueError:  # a cycle of __wrapped__
        return fn


def _module_top(module: types.ModuleType) -> str:
    return module.__name__.split(".")[0]


_MISSING = object()
