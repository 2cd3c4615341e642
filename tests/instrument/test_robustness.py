"""Defects found in review: each test states exactly what must land in the sink and the stats."""

from __future__ import annotations

import io
import json
from typing import Any

import tracekit

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# 1. Decorators applied before configure() keep their own stage/action.


def test_unconfigured_decorators_keep_their_own_arguments() -> None:
    assert not tracekit.is_configured()

    @tracekit.stage("REPO", "add", peer="u2")
    @tracekit.stage("CTRL", "add", peer="u1")
    def stacked() -> int:
        return 1

    kept = tracekit.stage("REPO", "persist", conv_id="c9")
    with tracekit.stage("CTRL", "send") as s:  # another call in between
        s.set(msg_id="m1")

    @kept
    def persisted() -> int:
        return 2

    async def coro() -> int:
        return 3

    acoro = tracekit.stage("WS-SEND", "deliver")(coro)
    assert (stacked(), persisted()) == (1, 2)  # unconfigured: plain calls

    out = io.StringIO()
    tracekit.configure(service="svc", source="s", sink=out)
    assert (stacked(), persisted()) == (1, 2)
    import asyncio

    assert asyncio.run(acoro()) == 3
    assert tracekit.flush()
    got = [
        (e["stage"], e["action"], e.get("peer"), e.get("conv_id"), e["seq"]) for e in lines_of(out)
    ]
    assert got == [
        ("CTRL", "add", "u1", None, 1),
        ("REPO", "add", "u2", None, 2),
        ("REPO", "persist", None, "c9", 3),
        ("WS-SEND", "deliver", None, None, 4),
    ]


def test_unconfigured_stage_objects_are_independent_across_threads() -> None:
    import threading

    made: dict[str, Any] = {}

    def other() -> None:
        made["t"] = tracekit.stage("OTHER", "thread")

    mine = tracekit.stage("MINE", "main")
    t = threading.Thread(target=other)
    t.start()
    t.join()

    def fn() -> None:
        return None

    wrapped = mine(fn)
    out = io.StringIO()
    tracekit.configure(service="svc", source="s", sink=out)
    wrapped()
    made["t"](fn)()
    assert tracekit.flush()
    assert [(e["stage"], e["action"]) for e in lines_of(out)] == [
        ("MINE", "main"),
        ("OTHER", "thread"),
    ]


# 2. Field values orjson rejects: the event is written with those values made safe.


class _BadRepr:
    def __repr__(self) -> str:
        raise RuntimeError("bad repr")


def _odd_values() -> dict[str, Any]:
    cycle: dict[str, Any] = {}
    cycle["self"] = cycle
    deep: list[Any] = []
    cur = deep
    for _ in range(300):
        nxt: list[Any] = []
        cur.append(nxt)
        cur = nxt
    return {
        "hugeint": 2**70,
        "neg_hugeint": -(2**70),
        "cycle": cycle,
        "surrogate": "\udcff",
        "deep": deep,
        "badrepr": _BadRepr(),
        "tuplekey": {(1, 2): 3},
    }


def test_unserialisable_field_values_are_written_not_lost() -> None:
    out = io.StringIO()
    tracekit.configure(service="svc", source="s1", sink=out)
    cases = _odd_values()
    for name, value in cases.items():
        tracekit.emit("REST", "request", case=name, value=value)
        with tracekit.stage("REST", "persist", case=name, value=value):
            pass
    tracekit.emit("REST", "request", case="plain", value=1)
    assert tracekit.flush()
    rows = lines_of(out)
    assert [(e["case"], e["stage"], e["action"], e["seq"]) for e in rows] == [
        (name, "REST", action, 2 * i + k + 1)
        for i, name in enumerate(cases)
        for k, action in enumerate(("request", "persist"))
    ] + [("plain", "REST", "request", 15)]
    values = {e["case"]: e["value"] for e in rows if e["action"] == "request"}
    assert values["hugeint"] == str(2**70)
    assert values["neg_hugeint"] == str(-(2**70))
    assert values["surrogate"] == "\\udcff"
    assert values["tuplekey"] == {"(1, 2)": 3}
    assert values["cycle"] == {"self": "<cycle>"}
    assert values["badrepr"].startswith("<_BadRepr object, repr failed: RuntimeError")
    depth, cur = 0, values["deep"]
    while isinstance(cur, list):
        depth, cur = depth + 1, cur[0] if cur else None
    # cut at the depth limit: the tail past it is written as its repr, not lost
    from tracekit._core import _SAFE_DEPTH

    assert depth <= _SAFE_DEPTH + 1
    assert isinstance(cur, str) and cur.startswith("[")
    # the events say which of their fields were made safe; plain events say nothing
    assert {e["case"]: e.get("unserialisable") for e in rows} == {
        **{name: ["value"] for name in cases},
        "plain": None,
    }
    assert tracekit.stats() == {
        "emitted": 15,
        "dropped": 0,
        "sampled_out": 0,
        "filtered": 0,
        "internal_errors": 0,
        "bad_trace_ids": 0,
    }


def test_an_event_that_still_cannot_be_written_is_counted_dropped_and_reported() -> None:
    from tracekit import _core

    out = io.StringIO()
    tracekit.configure(service="svc", source="s1", sink=out)
    real = _core._dumps
    calls = 0

    def failing(*args: Any, **kwargs: Any) -> bytes:
        nonlocal calls
        calls += 1
        if calls <= 2:  # the event and its sanitised retry
            raise TypeError("cannot serialise")
        return real(*args, **kwargs)

    tracekit.emit("REST", "request", i=0)
    _core._dumps = failing
    try:
        tracekit.emit("REST", "request", i=1)
    finally:
        _core._dumps = real
    tracekit.emit("REST", "request", i=2)
    assert tracekit.flush() is False  # one event lost since the last flush
    assert tracekit.flush() is True
    rows = lines_of(out)
    assert [(e["stage"], e["action"], e["seq"], e.get("i")) for e in rows] == [
        ("REST", "request", 1, 0),
        ("TRACEKIT", "dropped", 3, None),
        ("REST", "request", 4, 2),
    ]
    report = rows[1]
    assert (report["dropped"], report["total_dropped"], report["lost_seq"]) == (1, 1, 2)
    assert report["reason"] == "unserialisable event: TypeError: cannot serialise"
    assert tracekit.stats()["dropped"] == 1
    assert tracekit.stats()["internal_errors"] == 0


# 3. fork(): the child writes its events, under a source of its own, seq from 1.


def _fork_child(body: Any) -> dict[str, Any]:
    """Run ``body()`` in a forked child; returns what it returned (JSON over a pipe)."""
    import os

    read_fd, write_fd = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            result = body()
        except BaseException as exc:
            result = {"error": repr(exc)}
        os.write(write_fd, json.dumps(result).encode())
        os._exit(0)
    os.close(write_fd)
    with os.fdopen(read_fd, "rb") as pipe:
        data = pipe.read()
    os.waitpid(pid, 0)
    return dict(json.loads(data))


def test_forked_child_writes_its_events_under_its_own_source(tmp_path: Any) -> None:
    import os
    import re

    if not hasattr(os, "fork"):
        import pytest

        pytest.skip("no fork on this platform")
    path = tmp_path / "log.jsonl"
    tracekit.configure(service="svc", source="parent", sink=path)
    u1 = tracekit.Instrumentation(service="client", sink=tmp_path / "u1.jsonl")
    tracekit.emit("REST", "request", who="parent")
    with u1.activate():
        tracekit.emit("CTRL", "send", who="parent")
    parent_u1 = u1.source

    def child() -> dict[str, Any]:
        for i in range(5):
            tracekit.emit("REST", "request", who="child", i=i)
        with u1.activate():
            tracekit.emit("CTRL", "send", who="child")
        return {
            "flush": tracekit.flush(2.0),
            "u1_flush": u1.flush(2.0),
            "stats": tracekit.stats(),
            "u1_source": u1.source,
        }

    got = _fork_child(child)
    tracekit.emit("REST", "request", who="parent-after")
    u1.close()
    tracekit.shutdown()
    assert got["flush"] is True and got["u1_flush"] is True
    assert got["stats"] == {
        "emitted": 5,
        "dropped": 0,
        "sampled_out": 0,
        "filtered": 0,
        "internal_errors": 0,
        "bad_trace_ids": 0,
    }
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    parent = [(e["who"], e["source"], e["seq"]) for e in rows if e["who"] != "child"]
    assert parent == [("parent", "parent", 1), ("parent-after", "parent", 2)]
    kids = [e for e in rows if e["who"] == "child"]
    assert [(e["i"], e["seq"]) for e in kids] == [(i, i + 1) for i in range(5)]
    (child_source,) = {e["source"] for e in kids}
    assert re.fullmatch(r"parent-[0-9a-f]{12}", child_source)
    u1_rows = [json.loads(line) for line in (tmp_path / "u1.jsonl").read_text().splitlines()]
    # the parent's event was still queued at the fork: the parent writes it, the child not
    assert sorted((e["who"], e["seq"], e["source"]) for e in u1_rows) == [
        ("child", 1, got["u1_source"]),
        ("parent", 1, parent_u1),
    ]
    # a default source ("client-1a2b") is replaced as a fresh process would get it
    assert re.fullmatch(r"client-[0-9a-f]{12}", got["u1_source"])
    assert got["u1_source"] != parent_u1


# 4. Queued events of every sink are written at exit, not only configure()'s.


def test_instrumentation_events_queued_at_exit_are_written(tmp_path: Any) -> None:
    import subprocess
    import sys

    code = (
        "import sys, tracekit\n"
        "a = tracekit.Instrumentation(service='client', source='c1', sink=sys.argv[1])\n"
        "b = tracekit.Instrumentation(service='client', source='c2', sink=sys.argv[2])\n"
        "with a.activate():\n"
        "    for i in range(1000):\n"
        "        tracekit.emit('CTRL', 'send', i=i)\n"
        "with b.activate():\n"
        "    tracekit.emit('CTRL', 'send', i=0)\n"
        "del b  # no reference left: still flushed\n"
    )
    one, two = tmp_path / "c1.jsonl", tmp_path / "c2.jsonl"
    subprocess.run([sys.executable, "-c", code, str(one), str(two)], check=True, timeout=60)
    rows = [json.loads(line) for line in one.read_text().splitlines()]
    assert [(e["source"], e["seq"], e["i"]) for e in rows] == [
        ("c1", i + 1, i) for i in range(1000)
    ]
    assert [(e["source"], e["seq"]) for e in map(json.loads, two.read_text().splitlines())] == [
        ("c2", 1)
    ]


# 5. message() with a malformed id: no exception into the app; the id is derived or fresh.


def _derived(given: str, actor: str = "svc") -> str:
    import hashlib

    return hashlib.sha256(f"tracekit-derived:{actor}\x1f{given}".encode()).hexdigest()[:32]


def test_message_with_a_malformed_id_never_raises_and_says_so() -> None:
    from tracekit.schema import is_trace_id

    bad: list[object] = ["not-a-uuid", "", "0" * 32, 12345, "4BF92F3577B34DA6A3CE929D0E0E473"]
    for b in bad:  # unconfigured: binding still works
        with tracekit.message(b, conv_id="c1") as ctx:  # type: ignore[arg-type]
            assert is_trace_id(ctx.trace_id)
    out = io.StringIO()
    tracekit.configure(service="svc", source="s", sink=out)
    for b in bad:
        with tracekit.message(b, conv_id="c1"):  # type: ignore[arg-type]
            tracekit.emit("REST", "request")
    with tracekit.message(TID):
        tracekit.emit("REST", "request")
    assert tracekit.flush()
    rows = lines_of(out)
    assert [(e["bad_trace_id"], e["conv_id"]) for e in rows[:5]] == [
        ("not-a-uuid", "c1"),
        ("", "c1"),
        ("0" * 32, "c1"),
        ("12345", "c1"),
        ("4BF92F3577B34DA6A3CE929D0E0E473", "c1"),
    ]
    tids = [e["trace_id"] for e in rows]
    # a per-message id (a temp id, a server id) of one actor (here the emitter's, "svc") gives
    # the same trace id in every process
    assert tids[0] == _derived("not-a-uuid")
    assert tids[3] == _derived("12345")
    assert tids[4] == _derived("4BF92F3577B34DA6A3CE929D0E0E473")
    # "no id" markers would put unrelated messages in one trace: each gets a fresh one
    assert is_trace_id(tids[1]) and is_trace_id(tids[2]) and tids[1] != tids[2]
    assert (tids[5], "bad_trace_id" in rows[5]) == (TID, False)
    assert tracekit.stats()["bad_trace_ids"] == 5
    assert tracekit.stats()["internal_errors"] == 0


def test_normalize_trace_id_stays_strict() -> None:
    import pytest

    with pytest.raises(tracekit.SchemaError):
        tracekit.normalize_trace_id("not-a-uuid")


# 6. Callable sink: one failing callback loses one event; flush() says events were lost.


def test_callable_sink_drops_only_the_events_its_callback_rejects() -> None:
    got: list[dict[str, Any]] = []

    def callback(event: Any) -> None:
        if event.get("i") == 3:
            raise ValueError("reject one")
        got.append(dict(event))

    tracekit.configure(service="svc", source="s", sink=callback)
    for i in range(10):
        tracekit.emit("REST", "request", i=i)
    assert tracekit.flush() is False  # one event was lost since the last flush
    assert [(e.get("i"), e["seq"]) for e in got[:9]] == [(i, i + 1) for i in range(10) if i != 3]
    (report,) = got[9:]
    assert (report["stage"], report["action"], report["seq"]) == ("TRACEKIT", "dropped", 11)
    assert (report["dropped"], report["total_dropped"]) == (1, 1)
    assert report["reason"] == "sink error: ValueError: reject one"
    assert tracekit.stats()["dropped"] == 1
    assert tracekit.flush() is True  # nothing lost since
    tracekit.emit("REST", "request", i=10)
    assert tracekit.flush() is True
    assert [e.get("i") for e in got[10:]] == [10]


def test_flush_is_false_while_the_output_fails() -> None:
    class Broken(io.StringIO):
        broken = True

        def write(self, s: str) -> int:
            if self.broken:
                raise OSError(28, "No space left on device")
            return super().write(s)

    stream = Broken()
    tracekit.configure(service="svc", source="s", sink=stream)
    tracekit.emit("REST", "request", i=0)
    assert tracekit.flush() is False
    assert tracekit.stats()["dropped"] == 1
    stream.broken = False
    tracekit.emit("REST", "request", i=1)
    assert tracekit.flush() is True
    rows = lines_of(stream)
    assert [(e["stage"], e["seq"], e.get("i"), e.get("dropped")) for e in rows] == [
        ("REST", 2, 1, None),
        ("TRACEKIT", 3, None, 1),
    ]


def test_callable_sink_rejecting_everything_does_not_report_in_a_loop() -> None:
    import time

    calls = 0

    def callback(event: Any) -> None:
        nonlocal calls
        calls += 1
        raise ValueError("no")

    tracekit.configure(service="svc", source="s", sink=callback)
    for i in range(5):
        tracekit.emit("REST", "request", i=i)
    assert tracekit.flush() is False
    time.sleep(0.1)
    assert (calls, tracekit.stats()["dropped"]) == (5, 5)


# 7. Reconfiguring while other threads emit: late events to the old sink are reported.


def test_event_submitted_to_a_replaced_sink_is_written_by_the_new_one(tmp_path: Any) -> None:
    from tracekit import _core

    first, second = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    tracekit.configure(service="svc", source="s1", sink=first)
    tracekit.emit("CTRL", "send", i=0)
    old = _core._emitter
    assert old is not None
    tracekit.configure(service="svc", source="s1", sink=second)
    # a thread that read the old emitter just before the swap writes through it now: the
    # old sink takes nothing more, and hands the event to the sink in use (it was lost, and
    # counted, until a second reading showed a working sink right there)
    old.write("CTRL", "send", {"i": 1}, 0)
    tracekit.emit("CTRL", "send", i=2)
    assert tracekit.flush() is True
    a = [json.loads(line) for line in first.read_text().splitlines()]
    b = [json.loads(line) for line in second.read_text().splitlines()]
    assert [(e["seq"], e.get("i")) for e in a] == [(1, 0)]
    assert [(e["stage"], e["action"], e["seq"], e.get("i")) for e in b] == [
        ("TRACEKIT", "configured", 2, None),
        ("CTRL", "send", 3, 1),
        ("CTRL", "send", 4, 2),
    ]
    assert tracekit.stats()["dropped"] == 0


def test_reconfigure_under_load_loses_nothing_unreported(tmp_path: Any) -> None:
    import threading
    import time

    path = tmp_path / "log.jsonl"
    tracekit.configure(service="svc", source="s1", sink=str(path))
    stop = False

    def work() -> None:
        while not stop:
            tracekit.emit("CTRL", "send")

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for i in range(10):
        time.sleep(0.005)
        tracekit.configure(
            service="svc", source="s1", sink=str(path), level=("info", "debug")[i % 2]
        )
    stop = True
    for t in threads:
        t.join()
    tracekit.shutdown()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    seqs = [e["seq"] for e in rows]
    reported = sum(
        e["dropped"] for e in rows if e["stage"] == "TRACEKIT" and e["action"] == "dropped"
    )
    assert len(seqs) == len(set(seqs))
    assert max(seqs) - len(seqs) == reported


def test_two_actors_temp_ids_are_two_traces() -> None:
    # u1's tmp-1 and u2's tmp-1 are two messages (the collectors scope temp ids the same way)
    with tracekit.message("tmp-1", actor="u1") as a, tracekit.message("tmp-1", actor="u2") as b:
        pass
    with tracekit.message("tmp-1", actor="u1") as again:
        pass
    assert a.trace_id == _derived("tmp-1", "u1") == again.trace_id
    assert b.trace_id == _derived("tmp-1", "u2") != a.trace_id
