"""Review 20a: a stage object entered again while active, capture() inside an activated
Instrumentation, configure() inside a capture block, and message()'s context built cheaply."""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracekit
from tracekit import _context, _core, _sinks
from tracekit.testing import capture

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
TID2 = "0af7651916cd43dd8448eb211c80319c"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


# -- 1. a stage object entered again while it is active: each entry its own event ---------


def test_a_stage_entered_again_while_active_writes_both_events() -> None:
    with capture() as events, tracekit.message(TID):
        st = tracekit.stage("REPO", "add", peer="u2")
        with st as outer:
            outer.set(msg_id="m-outer")
            with st as inner:
                inner.set(msg_id="m-inner")  # the innermost entry's
        assert tracekit.stats()["dropped"] == 0
    adds = events.filter(stage="REPO")
    assert [e["msg_id"] for e in adds] == ["m-inner", "m-outer"]  # inner ends first
    assert all(e["peer"] == "u2" and e["status"] == "ok" for e in adds)
    assert adds[1]["duration_ms"] >= adds[0]["duration_ms"]
    assert [e["seq"] for e in events] == [1, 2]


def test_a_recursive_stage_object_writes_one_event_per_entry() -> None:
    st_holder: list[Any] = []

    def walk(n: int) -> None:
        with st_holder[0]:
            if n:
                walk(n - 1)
            else:
                raise KeyError("bottom")

    with capture() as events, tracekit.message(TID):
        st_holder.append(tracekit.stage("REST", "persist"))
        with pytest.raises(KeyError):
            walk(3)
    assert len(events.filter(stage="REST")) == 4
    assert {e["status"] for e in events} == {"error"}


def test_a_stage_object_used_again_after_its_block_takes_the_new_message() -> None:
    # (it kept the first message's fields: the second event had the first trace id)
    with capture() as events:
        st = tracekit.stage("REST", "persist")
        with tracekit.message(TID, conv_id="c1"), st as s:
            s.set(msg_id="m1")
        with tracekit.message(TID2), st:
            pass
    first, second = events
    assert (first["trace_id"], first["conv_id"], first["msg_id"]) == (TID, "c1", "m1")
    assert second["trace_id"] == TID2
    assert "conv_id" not in second and "msg_id" not in second  # nothing of the first use


def test_a_stage_object_shared_by_overlapping_tasks_pairs_each_exit_with_its_entry() -> None:
    async def run(st: Any) -> None:
        async def task(name: str, wait_in: float) -> None:
            with tracekit.message(TID, actor=name):
                async with st as s:
                    s.set(who=name)
                    await asyncio.sleep(wait_in)

        # a enters first and leaves last: b's exit, in between, must end b's own entry
        await asyncio.gather(task("a", 0.2), task("b", 0.01))

    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with capture(otel=provider) as events:
        asyncio.run(run(tracekit.stage("REPO", "add")))
    by_actor = {e["actor"]: e for e in events.filter(stage="REPO")}
    assert set(by_actor) == {"a", "b"}
    assert by_actor["a"]["who"] == "a" and by_actor["b"]["who"] == "b"
    assert by_actor["a"]["duration_ms"] >= 150 > by_actor["b"]["duration_ms"]
    spans = exporter.get_finished_spans()
    assert len(spans) == 2  # both ended, each in its own task's context


def test_a_stage_object_entered_again_with_spans_nests_and_ends_both() -> None:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider.add_span_processor(SimpleSpanProcessor(exporter))
    with capture(otel=provider) as events, tracekit.message(TID):
        st = tracekit.stage("REPO", "add")
        with st, st:
            pass
    inner, outer = exporter.get_finished_spans()
    assert inner.parent is not None and inner.parent.span_id == outer.context.span_id
    assert [e["span_id"] for e in events] == [
        f"{inner.context.span_id:016x}",
        f"{outer.context.span_id:016x}",
    ]
    assert tracekit.stats() == {}  # (the capture restored the unconfigured state)


def test_a_nested_entry_left_in_another_context_is_still_ended() -> None:
    # (an async generator left by break is finalised in a new task: not where it entered)
    import contextvars

    with capture() as events, tracekit.message(TID):
        st = tracekit.stage("REPO", "add")
        st.__enter__()
        contextvars.copy_context().run(st.__enter__)  # the nested entry, made elsewhere
        st.__exit__(None, None, None)  # this context made none: the first entry ends
        contextvars.copy_context().run(st.__exit__, None, None, None)  # then the nested one
        st.__exit__(None, None, None)  # one exit too many: nothing left to end, no raise
    assert len(events) == 2 and not st._nested and st._free  # (free again)


# -- 2. capture() inside an activated Instrumentation -------------------------------------


def test_capture_inside_an_activated_instrumentation_sees_its_events(tmp_path: Path) -> None:
    log = tmp_path / "u1.jsonl"
    inst = tracekit.Instrumentation(service="client", source="c-u1", actor="u1", sink=log)
    with inst.activate():
        tracekit.emit("CTRL", "start")
        with capture() as events, tracekit.message(TID, conv_id="c1"):
            tracekit.emit("CTRL", "send")
            with tracekit.stage("REST", "request"):
                pass
        tracekit.emit("CTRL", "stop")
    inst.close()
    assert [(e["stage"], e["action"]) for e in events] == [("CTRL", "send"), ("REST", "request")]
    # as the instance writes them: its source, actor and seq (its log shows no gap)
    assert {(e["source"], e["actor"]) for e in events} == {("c-u1", "u1")}
    assert [e["seq"] for e in events] == [2, 3]
    written = read_jsonl(log)
    assert [e["seq"] for e in written] == [1, 2, 3, 4]  # its own sink still gets every one
    assert [e["action"] for e in written] == ["start", "send", "request", "stop"]


def test_capture_opened_outside_an_activation_leaves_its_events_to_its_sink(
    tmp_path: Path,
) -> None:
    # (the plugin's rule: such instances write to tracekit_logs, read from there; capturing
    # them in memory too would count each event twice)
    inst = tracekit.Instrumentation(service="client", source="c-u1", sink=tmp_path / "u1.jsonl")
    with capture() as events:
        with inst.activate():
            tracekit.emit("CTRL", "send")
        tracekit.emit("CTRL", "add")
    inst.close()
    assert [e["action"] for e in events] == ["add"]
    assert [e["action"] for e in read_jsonl(tmp_path / "u1.jsonl")] == ["send"]


def test_capture_inside_an_activation_also_takes_other_threads_global_events(
    tmp_path: Path,
) -> None:
    import threading

    inst = tracekit.Instrumentation(service="client", source="c-u1", sink=tmp_path / "u1.jsonl")
    with inst.activate(), capture() as events:
        tracekit.emit("CTRL", "send")
        worker = threading.Thread(target=tracekit.emit, args=("REST", "persist"))
        worker.start()
        worker.join()
    inst.close()
    assert sorted((e["source"], e["action"]) for e in events) == [
        ("c-u1", "send"),
        ("test-1", "persist"),
    ]


def test_capture_inside_an_activation_stops_taking_its_events_at_the_block_end(
    tmp_path: Path,
) -> None:
    inst = tracekit.Instrumentation(service="client", source="c-u1", sink=tmp_path / "u1.jsonl")
    with inst.activate():
        with capture() as outer:
            with capture() as inner:
                tracekit.emit("CTRL", "send")
            tracekit.emit("REST", "request")
        tracekit.emit("REST", "response")
        assert inst._emitter.taps == ()  # nothing left attached
    inst.close()
    assert [e["action"] for e in inner] == ["send"]
    assert [e["action"] for e in outer] == ["send", "request"]
    assert len(read_jsonl(tmp_path / "u1.jsonl")) == 3


def test_a_failing_instrumentation_sink_is_its_loss_not_the_captures(tmp_path: Path) -> None:
    class Broken(tracekit.MemorySink):
        def submit(self, event: Any, line: bytes) -> None:
            raise OSError("disk gone")

    inst = tracekit.Instrumentation(service="client", sink=Broken())
    with inst.activate(), capture() as events, tracekit.message(TID):
        tracekit.emit("CTRL", "send")
    assert [e["action"] for e in events][:1] == ["send"]
    assert inst.stats()["dropped"] >= 1  # counted where it was lost, as before


# -- 3. configure() inside a capture block: undone at its end, its sink closed -------------


def test_configure_inside_a_capture_closes_its_sink_when_undone(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    before = open_fds()
    with capture():
        tracekit.configure(service="chat-server", source="srv-1", sink=log)
        with tracekit.message(TID):
            tracekit.emit("REST", "persist")
        opened = [s for s in list(_sinks._live) if s._name == "tracekit-app.jsonl"]
        assert len(opened) == 1
    sink = opened[0]
    assert sink._stopped and not sink._thread.is_alive()  # closed: writer gone, file released
    assert sink not in _sinks._live
    if before:
        assert open_fds() <= before
    assert not tracekit.is_configured()  # what was there before the block (nothing)
    # every event was written before the close returned
    assert [e["action"] for e in read_jsonl(log)] == ["configured", "persist"]


def test_configure_inside_a_capture_restores_the_apps_configuration(tmp_path: Path) -> None:
    app_log, block_log = tmp_path / "app.jsonl", tmp_path / "block.jsonl"
    tracekit.configure(service="chat-server", source="srv-1", sink=app_log)
    app_sink = _core._emitter.sink  # type: ignore[union-attr]
    with capture():
        tracekit.configure(service="chat-server", source="srv-2", sink=block_log)
        tracekit.emit("REST", "persist")
    assert _core._emitter is not None and _core._emitter.sink is app_sink
    assert not app_sink._stopped  # the app's own sink is not the block's to close
    tracekit.emit("REST", "response")
    tracekit.flush()
    assert [e["action"] for e in read_jsonl(block_log)] == ["configured", "persist"]
    assert read_jsonl(app_log)[-1]["action"] == "response"


def test_configure_inside_a_capture_with_the_apps_own_sink_object_leaves_it_open() -> None:
    app_sink = tracekit.MemorySink()
    closed: list[bool] = []
    app_sink.close = lambda timeout=2.0: closed.append(True)  # type: ignore[method-assign]
    tracekit.configure(service="chat-server", sink=app_sink)
    with capture(), capture():
        tracekit.configure(service="chat-server", sink=app_sink)
    assert closed == [] and _core._emitter is not None and _core._emitter.sink is app_sink


# -- 4. message(): its context built without the dataclass's checks, same behaviour --------


def test_message_contexts_keep_the_dataclass_behaviour() -> None:
    with tracekit.message(TID, conv_id="c1", msg_id="m1", actor="u1", kind="text") as ctx:
        with tracekit.message(msg_id="m2") as refined:
            pass
    made = tracekit.MessageContext(TID, "c1", "m1", "u1", None, {"kind": "text"})
    assert type(ctx) is tracekit.MessageContext and ctx == made and ctx != refined
    assert repr(ctx) == repr(made)
    assert dataclasses.is_dataclass(ctx) and dataclasses.asdict(ctx) == dataclasses.asdict(made)
    assert dataclasses.replace(ctx, msg_id="m2") == refined
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.msg_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(ctx)  # (a dict field: as the dataclass was)
    assert not hasattr(ctx, "__dict__")
    assert copy.copy(ctx) == ctx and pickle.loads(pickle.dumps(ctx)) == ctx
    assert ctx.event_fields() == made.event_fields()
    assert list(ctx.event_fields()) == ["trace_id", "msg_id", "conv_id", "actor", "kind"]
    assert refined.event_fields() == {**made.event_fields(), "msg_id": "m2"}


def test_message_paths_give_what_the_checked_constructor_gives() -> None:
    upper = TID.upper()
    cases: list[tuple[Any, dict[str, Any]]] = [
        (TID, {}),
        (upper, {"conv_id": "c1"}),
        ("tmp-1", {"actor": "u1"}),
        (tracekit.MessageContext(TID, parent_span_id="00f067aa0ba902b7"), {"msg_id": "m"}),
    ]
    for given, kwargs in cases:
        with tracekit.message(given, **kwargs) as ctx:
            # the same message, deeper (a bad id's derived trace is the actor's: given again)
            with tracekit.message(given, actor=kwargs.get("actor"), extra=1) as again:
                pass
        tid = ctx.trace_id
        assert _context._CANONICAL.fullmatch(tid)
        assert ctx == dataclasses.replace(ctx)  # what the checked constructor makes of it
        assert again.trace_id == tid and again.fields == {**ctx.fields, "extra": 1}
        assert (again.conv_id, again.msg_id, again.actor, again.parent_span_id) == (
            ctx.conv_id,
            ctx.msg_id,
            ctx.actor,
            ctx.parent_span_id,
        )
        assert again.event_fields() == {**ctx.event_fields(), "extra": 1}
    with tracekit.message() as fresh:
        assert _context._CANONICAL.fullmatch(fresh.trace_id) and fresh.event_fields() == {
            "trace_id": fresh.trace_id
        }


def test_message_builds_its_context_without_the_dataclass_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (its __init__ stores each field through object.__setattr__, __post_init__ matches the
    # id again: 1.3 of the 3.5 us a message took unconfigured)
    checked: list[str] = []
    original = tracekit.MessageContext.__post_init__

    def counting(self: tracekit.MessageContext) -> None:
        checked.append(self.trace_id)
        original(self)

    monkeypatch.setattr(tracekit.MessageContext, "__post_init__", counting)
    with tracekit.message(TID, conv_id="c1"):  # a new message by its id
        with tracekit.message(msg_id="m1"):  # refined
            with tracekit.message(TID, kind="x"):  # the same message again, deeper
                with tracekit.message(TID2) as other:  # another inside it
                    pass
    with tracekit.message("tmp-1"), tracekit.message():  # a bad id's derived one; a fresh one
        pass
    assert checked == []
    assert other.trace_id == TID2 and type(other) is tracekit.MessageContext
    assert tracekit.MessageContext(TID).trace_id == TID and checked == [TID]  # (still checks)
