"""Review 20e: a stage object's entry ended in another context than it began (a generator
closed or finalised elsewhere) while other contexts hold entries of the same object."""

from __future__ import annotations

import contextvars
import time
from collections.abc import Iterator

from tracekit import _core, message, stage
from tracekit.testing import capture

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _durations(events: list[dict[str, object]]) -> dict[object, object]:
    return {e.get("who"): (e["status"], e["duration_ms"]) for e in events}


def test_a_generator_closed_elsewhere_ends_its_own_entry_not_another_tasks() -> None:
    # X holds the object; a generator iterated in context A enters it (a nested entry), so
    # does task D; X leaves. The generator is closed in a context that made no entry: its
    # exit took the newest entry (D's), and D's own exit then ended the generator's, so each
    # event had the other's length and D's span was detached where it was never current.
    with capture() as got, message(TID):
        shared = stage("S", "a")

        def feed() -> Iterator[int]:
            with shared:
                shared.set(who="generator")
                yield 1

        x, a, d = (contextvars.copy_context() for _ in range(3))
        x.run(shared.__enter__)
        x.run(shared.set, who="x")
        gen = feed()
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

        def feed() -> Iterator[int]:
            with shared:
                shared.set(who="generator")
                yield 1

        x, a = contextvars.copy_context(), contextvars.copy_context()
        x.run(shared.__enter__)
        x.run(shared.set, who="x")
        gen = feed()
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

        def feed() -> Iterator[int]:
            with shared:
                yield 1

        shared.__enter__()
        gen = feed()
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
