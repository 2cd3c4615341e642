"""Review 20c (a reading of session 20's fixes): one stage object shared by threads."""

from __future__ import annotations

import sys
import threading

from tracekit import message, stage
from tracekit.testing import capture


def test_a_stage_object_shared_by_threads_writes_each_entry_s_own_event():
    # Threads switched as often as the interpreter allows: a test and a set of the object's
    # busy flag apart let two threads into its slots, a walk of its nested entries skipped
    # one that another thread removed, its exit read the slots after freeing them. Each
    # went wrong a few times in 18,000 (another thread's trace id or set() field, a
    # negative duration, a field lost).
    threads, rounds = 6, 3000
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    try:
        with capture() as got:
            shared = stage("S", "a")
            start = threading.Barrier(threads)

            def run(n: int) -> None:
                with message(f"{n + 1:032x}"):
                    start.wait()
                    for _ in range(rounds):
                        with shared:
                            shared.set(n=n)

            workers = [threading.Thread(target=run, args=(n,)) for n in range(threads)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()
    finally:
        sys.setswitchinterval(before)
    events = [e for e in got if e.get("stage") == "S"]
    assert len(events) == threads * rounds
    wrong = [e for e in events if e.get("n") is None or int(e["trace_id"], 16) != e["n"] + 1]
    assert wrong == []
    assert min(e["duration_ms"] for e in events) >= 0


def test_an_entry_made_in_the_slots_after_a_nested_one_is_the_latest_of_its_context():
    # (review 20d) X holds the object; Y enters it (a nested entry, Y's outer); X leaves; Y
    # enters again, and that entry takes the free slots: Y's set() and next exit went to Y's
    # outer entry, so the outer wrote the inner's fields, status and length, and vice versa.
    import contextvars
    import time

    with capture() as got:
        shared = stage("S", "a")
        x, y = contextvars.copy_context(), contextvars.copy_context()
        x.run(shared.__enter__)
        y.run(shared.__enter__)
        y.run(shared.set, which="outer")
        x.run(shared.__exit__, None, None, None)
        y.run(shared.__enter__)
        y.run(shared.set, which="inner")
        y.run(shared.__exit__, ValueError, ValueError("inner failed"), None)
        time.sleep(0.05)
        y.run(shared.__exit__, None, None, None)
    events = [e for e in got if e.get("stage") == "S"]
    assert [(e.get("which"), e["status"]) for e in events] == [
        (None, "ok"),  # x's
        ("inner", "error"),
        ("outer", "ok"),
    ]
    assert events[2]["duration_ms"] >= 50 > events[1]["duration_ms"]


def test_a_copied_stage_object_is_one_of_its_own():
    # (review 20d) a copy shared the original's busy token and nested entries
    import copy

    with capture() as got:
        original = stage("S", "a", k=1)
        with original:
            twin, deep = copy.copy(original), copy.deepcopy(original)
            assert twin._free == [None] and twin._free is not original._free
            with twin, deep:
                twin.set(which="twin")
                deep.set(which="deep")
            original.set(which="original")
    events = [(e.get("which"), e["k"]) for e in got if e.get("stage") == "S"]
    assert events == [("deep", 1), ("twin", 1), ("original", 1)]
