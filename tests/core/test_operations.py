"""The sync and async drivers of operations (`moorage.operations`), without a storage."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap

import pytest

from moorage.operations import Call, Op, in_thread, run_async, run_sync


class Counter:
    """A target with a blocking method and its async twin that record who was called."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[object, ...], dict[str, object]]] = []

    def add(self, a: int, b: int = 0, *, scale: int = 1) -> int:
        self.calls.append(("add", (a, b), {"scale": scale}))
        return (a + b) * scale

    async def aadd(self, a: int, b: int = 0, *, scale: int = 1) -> int:
        self.calls.append(("aadd", (a, b), {"scale": scale}))
        return (a + b) * scale * 10  # tells the async path apart

    def fail(self, why: str) -> int:
        raise KeyError(why)

    async def afail(self, why: str) -> int:
        raise KeyError("async " + why)


def summed(counter: Counter) -> Op[int]:
    first = yield from Call(counter.add, counter.aadd, 1, 2)
    second = yield from Call(counter.add, counter.aadd, first, b=1, scale=2)
    return second


def test_sync_driver_calls_the_blocking_methods_in_order() -> None:
    counter = Counter()
    assert run_sync(summed(counter)) == 8  # (1 + 2) = 3, then (3 + 1) * 2
    assert counter.calls == [("add", (1, 2), {"scale": 1}), ("add", (3, 1), {"scale": 2})]


def test_async_driver_awaits_the_twins_with_the_same_arguments() -> None:
    counter = Counter()
    assert asyncio.run(run_async(summed(counter))) == 620  # 30, then (30 + 1) * 2 * 10
    assert counter.calls == [("aadd", (1, 2), {"scale": 1}), ("aadd", (30, 1), {"scale": 2})]


def handled(counter: Counter) -> Op[str]:
    try:
        yield from Call(counter.fail, counter.afail, "boom")
    except KeyError as exc:
        return f"handled {exc.args[0]}"
    return "not raised"


def test_an_exception_is_thrown_back_where_the_call_was_asked_for() -> None:
    assert run_sync(handled(Counter())) == "handled boom"
    assert asyncio.run(run_async(handled(Counter()))) == "handled async boom"


def unhandled(counter: Counter) -> Op[int]:
    value = yield from Call(counter.fail, counter.afail, "lost")
    return value


def test_an_unhandled_exception_reaches_the_caller() -> None:
    with pytest.raises(KeyError, match="lost"):
        run_sync(unhandled(Counter()))
    with pytest.raises(KeyError, match="async lost"):
        asyncio.run(run_async(unhandled(Counter())))


def test_a_call_can_be_asked_for_again() -> None:
    counter = Counter()
    again = Call(counter.add, counter.aadd, 2)

    def twice() -> Op[int]:
        return (yield from again) + (yield from again)

    assert run_sync(twice()) == 4
    assert [name for name, _, _ in counter.calls] == ["add", "add"]


def test_an_operation_without_io_returns_at_once() -> None:
    def nothing() -> Op[str]:
        return "done"
        yield  # pragma: no cover - makes this a generator

    assert run_sync(nothing()) == "done"
    assert asyncio.run(run_async(nothing())) == "done"


def test_the_sync_driver_needs_no_asyncio() -> None:
    """A sync call never starts an event loop: driving an operation does not even
    import asyncio (checked in a fresh interpreter, where nothing else has)."""
    code = textwrap.dedent(
        """
        import sys
        from moorage.operations import Call, run_sync

        def op():
            return (yield from Call(len, None, "abc"))

        assert run_sync(op()) == 3
        print("asyncio" in sys.modules)
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_in_thread_runs_a_blocking_function_off_the_loop() -> None:
    import threading

    main = threading.get_ident()

    def where(tag: str, *, suffix: str = "") -> tuple[str, bool]:
        return tag + suffix, threading.get_ident() != main

    assert asyncio.run(in_thread(where, "t", suffix="!")) == ("t!", True)


def test_a_call_names_its_method_when_shown() -> None:
    counter = Counter()
    assert "Counter.add" in repr(Call(counter.add, counter.aadd, 1))
