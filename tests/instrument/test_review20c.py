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
