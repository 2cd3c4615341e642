"""Review 20e: a stage object's entry ended in another context than it began (a generator
closed or finalised elsewhere) while other contexts hold entries of the same object."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator
from typing import Any

from tracekit import _core, message, stage
from tracekit.testing import capture

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _durations(events: list[dict[str, object]]) -> dict[object, object]:
    return {e.get("who"): (e["status"], e["duration_ms"]) for e in events}


def _feed(shared: Any) -> Iterator[int]:
    """A generator holding an entry of ``shared`` across its one yield."""
    with shared:
        shared.set(who="generator")
        yield 1


def test_a_generator_closed_elsewhere_ends_its_own_entry_not_another_tasks() -> None:
    # X holds the object; a generator iterated in context A enters it (a nested entry), so
    # does task D; X leaves. The generator is closed in a context that made no entry: its
    # exit took the newest entry (D's), and D's own exit then ended the generator's, so each
    # event had the other's length and D's span was detached where it was never current.
    with capture() as got, message(TID):
        shared = stage("S", "a")

        x, a, d = (contextvars.copy_context() for _ in range(3))
        x.run(shared.__enter__)
        x.run(shared.set, who="x")
        gen = _feed(shared)
        a.run(next, gen)
        d.run(shared.__enter__)
        d.run(shared.set, who="d")
        x.run(shared.__exit__, None, None, None)
        contextvars.copy_context().run(gen.close)
        time.sleep(0.05)
        d.run(shared.__exit__, None, None, None)
    events = list(got.filter(stage="S"))
    assert [e["who"] for e in events] == ["x", "generator", "d"]
    assert [e["status"] for e in events] == ["ok", "closed", "ok"]
    by_who = _durations(events)
    assert by_who["d"][1] >= 50 > by_who["generator"][1]  # type: ignore[operator]
    assert shared._free and not shared._nested  # (every entry ended, none twice)


def test_a_generator_closed_elsewhere_leaves_the_first_entry_to_its_holder() -> None:
    # X holds the object in its slots; the generator's nested entry is closed elsewhere: the
    # close ended X's entry (the slots' first) and X's own exit the generator's.
    with capture() as got, message(TID):
        shared = stage("S", "a")

        x, a = contextvars.copy_context(), contextvars.copy_context()
        x.run(shared.__enter__)
        x.run(shared.set, who="x")
        gen = _feed(shared)
        a.run(next, gen)
        contextvars.copy_context().run(gen.close)
        time.sleep(0.05)
        x.run(shared.__exit__, None, None, None)
    events = list(got.filter(stage="S"))
    assert [(e["who"], e["status"]) for e in events] == [("generator", "closed"), ("x", "ok")]
    assert events[1]["duration_ms"] >= 50 > events[0]["duration_ms"]


def test_a_context_drops_the_entries_it_made_that_were_ended_elsewhere() -> None:
    # The generator's entry was recorded in the context that iterated it; closed in another
    # (which takes it out of its own copy only), it stayed there for that context's life.
    with capture() as got, message(TID):
        shared = stage("S", "a")

        shared.__enter__()
        gen = _feed(shared)
        next(gen)
        (ended,) = _core._reentered.get()
        contextvars.copy_context().run(gen.close)
        assert ended._free  # (ended, though this context still lists it)
        with shared:  # the context's next entry writes its list: only what is open
            assert _core._reentered.get() == tuple(shared._nested or ())
        assert _core._reentered.get() == ()
        shared.__exit__(None, None, None)
    assert [e["status"] for e in got.filter(stage="S")] == ["closed", "ok", "ok"]


def test_an_entry_left_in_a_context_no_generator_shows_is_still_ended() -> None:
    # (the fallback stays: every exit ends one entry, none is lost) a nested entry made by
    # plain code in context A, its exit run in another context after the first entry ended
    with capture() as got, message(TID):
        shared = stage("S", "a")
        shared.__enter__()
        contextvars.copy_context().run(shared.__enter__)
        shared.__exit__(None, None, None)
        contextvars.copy_context().run(shared.__exit__, None, None, None)
    assert len(list(got.filter(stage="S"))) == 2 and shared._free and not shared._nested


# -- review 21c: the generator's own frame says which entry it ends ------------------------


def test_a_generator_closed_in_its_own_thread_ends_its_own_first_entry() -> None:
    # Two threads read pages from a generator over one module-level stage object; the first
    # breaks off early. Its generator held the first entry (the slots): the close took the
    # other thread's generator entry instead (swapped status and length, 21c's regression).
    import threading

    with capture() as got:
        fetch = stage("FETCH", "page")

        def pages(who: str) -> Iterator[int]:
            with fetch:
                fetch.set(who=who)
                for i in range(3):
                    yield i
                    time.sleep(0.05)

        first_in = threading.Event()

        def w1() -> None:
            with message(TID):
                for _ in pages("w1"):
                    first_in.set()
                    time.sleep(0.02)
                    break

        def w2() -> None:
            first_in.wait()
            with message(TID):
                for _ in pages("w2"):
                    pass

        threads = [threading.Thread(target=w1), threading.Thread(target=w2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    by_who = _durations(list(got.filter(stage="FETCH")))
    assert by_who["w1"][0] == "closed" and by_who["w2"][0] == "ok"
    assert by_who["w1"][1] < 100 <= by_who["w2"][1]  # type: ignore[operator]


def test_a_contextmanager_helper_s_entry_is_not_a_generator_closed_elsewhere() -> None:
    # A @contextmanager helper's frame is a generator's, but its block ends where it began:
    # a real generator closed elsewhere took the helper's entry, and all three were wrong.
    import contextlib

    with capture() as got, message(TID):
        shared = stage("S", "a")

        @contextlib.contextmanager
        def timed(who: str) -> Iterator[None]:
            with shared:
                shared.set(who=who)
                yield

        x, a, b = (contextvars.copy_context() for _ in range(3))
        x.run(shared.__enter__)
        x.run(shared.set, who="x")
        gen = _feed(shared)
        a.run(next, gen)
        helper = timed("helper")
        b.run(helper.__enter__)
        contextvars.copy_context().run(gen.close)
        time.sleep(0.05)
        b.run(helper.__exit__, None, None, None)
        time.sleep(0.05)
        x.run(shared.__exit__, None, None, None)
    events = list(got.filter(stage="S"))
    assert [(e["who"], e["status"]) for e in events] == [
        ("generator", "closed"),
        ("helper", "ok"),
        ("x", "ok"),
    ]
    assert (
        events[0]["duration_ms"] < 50 <= events[1]["duration_ms"] < 100 <= events[2]["duration_ms"]
    )


def test_an_async_generator_resumed_by_another_task_ends_its_own_entry() -> None:
    # A stream read by a pool of workers: its block began in one task and ends in another
    # (normally, or by an exception thrown in). Its exit took the first entry, held by a
    # plain task, which was then said to have failed.
    import asyncio

    async def main(throw: bool) -> None:
        shared = stage("S", "a")

        async def stream() -> Any:
            async with shared:
                shared.set(who="stream")
                yield 1
                yield 2

        agen = stream()
        holder_in = asyncio.Event()

        async def holder() -> None:
            async with shared:
                shared.set(who="holder")
                holder_in.set()
                await asyncio.sleep(0.2)

        async def worker1() -> None:
            await anext(agen)

        async def worker2() -> None:
            await asyncio.sleep(0.05)
            try:
                if throw:
                    await agen.athrow(ValueError("bad"))
                else:
                    await anext(agen)
                    await anext(agen)
            except (StopAsyncIteration, ValueError):
                pass

        task = asyncio.create_task(holder())
        await holder_in.wait()
        await asyncio.gather(worker1(), worker2(), task)

    for throw, status in ((False, "ok"), (True, "error")):
        with capture() as got, message(TID):
            asyncio.run(main(throw))
        by_who = _durations(list(got.filter(stage="S")))
        assert by_who["stream"][0] == status and by_who["holder"][0] == "ok"
        assert by_who["stream"][1] < 150 <= by_who["holder"][1]  # type: ignore[operator]
