"""stage / emit / configure: what lands in the sink, and that nothing reaches the app."""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import structlog

import tracekit
from tracekit.testing import capture

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_unconfigured_calls_do_nothing_and_return_no_op() -> None:
    assert not tracekit.is_configured()
    with tracekit.stage("REST", "persist", msg_id="m1") as s:
        s.set(msg_id="m2")
    tracekit.emit("CTRL", "send")
    assert tracekit.stats() == {}
    assert tracekit.flush() is True


def test_decorator_applied_before_configure_emits_after(tmp_path: Path) -> None:
    @tracekit.stage("REPO", "add", peer="u2")
    def add(x: int) -> int:
        return x + 1

    assert add(1) == 2  # unconfigured: plain call
    with capture() as events, tracekit.message(TID, actor="u2"):
        assert add(2) == 3
    assert [(e["stage"], e["action"], e["peer"], e["trace_id"]) for e in events] == [
        ("REPO", "add", "u2", TID)
    ]


def test_stage_event_shape(tmp_path: Path) -> None:
    out = tmp_path / "logs" / "server.jsonl"
    tracekit.configure(service="chat-server", source="chat-server-1", sink=str(out))
    with tracekit.message(TID, conv_id="c1", actor="server"):
        with tracekit.stage("REST", "persist") as s:
            s.set(msg_id="m1")
        tracekit.emit("WS-BROADCAST", "start", recipients=["u1", "u2"])
    tracekit.flush()
    persist, start = read_jsonl(out)
    assert list(persist)[:4] == ["timestamp", "stage", "action", "event"]
    assert persist["timestamp"].endswith("Z") and len(persist["timestamp"]) == 27
    assert {k: persist[k] for k in ("stage", "action", "event", "trace_id", "conv_id")} == {
        "stage": "REST",
        "action": "persist",
        "event": "REST persist",
        "trace_id": TID,
        "conv_id": "c1",
    }
    assert (persist["msg_id"], persist["actor"], persist["status"]) == ("m1", "server", "ok")
    assert (persist["source"], persist["seq"]) == ("chat-server-1", 1)
    assert persist["duration_ms"] >= 0
    assert (start["seq"], start["recipients"], start.get("msg_id", None)) == (
        2,
        ["u1", "u2"],
        None,
    )
    tracekit.validate = None  # type: ignore[attr-defined]
    from tracekit.schema import validate_event

    validate_event(persist)
    validate_event(start)


def test_seq_is_per_source_and_continues_across_reconfigure(tmp_path: Path) -> None:
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    tracekit.configure(service="client", source="client-u1", sink=a)
    tracekit.emit("CTRL", "send")
    changes = tracekit.configure(service="client", source="client-u1", sink=b, sample=0.5)
    assert set(changes) == {"sink", "sample"}
    assert changes["sample"] == (1.0, 0.5)
    tracekit.emit("CTRL", "add")
    tracekit.flush()
    assert [e["seq"] for e in read_jsonl(a)] == [1]
    # the reconfiguration is itself an event, then the app's event: no seq gap
    second = read_jsonl(b)
    assert [(e["stage"], e["action"], e["seq"]) for e in second] == [
        ("TRACEKIT", "configured", 2),
        ("CTRL", "add", 3),
    ]
    assert second[0]["changed"] == ["sample", "sink"]


def test_default_sources_are_unlikely_to_collide(tmp_path: Path) -> None:
    # Log gaps and clock offsets are per source: two processes sharing a name interleave their
    # seqs. 48 random bits (16 used to collide for 300 processes about half the time).
    out = tmp_path / "e.jsonl"
    tracekit.configure(service="client", sink=str(out))
    tracekit.emit("CTRL", "send")
    tracekit.flush()
    source = json.loads(out.read_text().splitlines()[-1])["source"]
    assert re.fullmatch(r"client-[0-9a-f]{12}", source), source


def test_configure_twice_with_same_settings_changes_nothing(tmp_path: Path) -> None:
    sink = tmp_path / "x.jsonl"
    tracekit.configure(service="s", source="s-1", sink=sink)
    assert tracekit.configure(service="s", source="s-1", sink=sink) == {}


def test_bad_configuration_is_a_clear_error() -> None:
    with pytest.raises(tracekit.ConfigError, match="non-empty name"):
        tracekit.configure(service="")
    with pytest.raises(tracekit.ConfigError, match="between 0 and 1"):
        tracekit.configure(service="s", sample=1.5)
    with pytest.raises(tracekit.ConfigError, match="cannot open sink"):
        tracekit.configure(service="s", sink=42)  # type: ignore[arg-type]


def test_exception_is_recorded_and_reraised_unchanged() -> None:
    class Boom(Exception):
        pass

    err = Boom("db locked")
    with capture() as events, pytest.raises(Boom) as info, tracekit.message(TID):
        with tracekit.stage("REST", "persist"):
            raise err
    assert info.value is err
    (event,) = events
    assert (event["status"], event["error"], event["level"]) == (
        "error",
        "Boom: db locked",
        "error",
    )


async def test_async_stage_decorator_and_task_inheritance() -> None:
    @tracekit.stage("WS-RECV", "receive")
    async def receive(n: int) -> int:
        await asyncio.sleep(0)
        tracekit.emit("REPO", "add", n=n)
        return n

    with capture() as events:
        with tracekit.message(TID, conv_id="c1", actor="u2"):
            async with tracekit.stage("CTRL", "add"):
                results = await asyncio.gather(receive(1), asyncio.create_task(receive(2)))
        other = await asyncio.create_task(receive(3))  # outside the message: no trace id
    assert results == [1, 2] and other == 3
    by_hop = sorted((e["stage"], e["action"], e.get("n")) for e in events if e.get("trace_id"))
    assert by_hop == [
        ("CTRL", "add", None),
        ("REPO", "add", 1),
        ("REPO", "add", 2),
        ("WS-RECV", "receive", None),
        ("WS-RECV", "receive", None),
    ]
    assert all(e["conv_id"] == "c1" and e["actor"] == "u2" for e in events if e.get("trace_id"))
    assert next(e for e in events if "trace_id" not in e)["n"] == 3


def test_message_refinement_keeps_trace_and_adds_msg_id() -> None:
    with capture() as events:
        with tracekit.message(TID, conv_id="c1"):
            with tracekit.message(msg_id="m9"):
                tracekit.emit("REST", "persist")
            tracekit.emit("WS-BROADCAST", "start")
        with tracekit.message() as fresh:
            tracekit.emit("CTRL", "send")
    assert [(e["trace_id"], e.get("msg_id")) for e in events] == [
        (TID, "m9"),
        (TID, None),
        (fresh.trace_id, None),
    ]
    assert fresh.trace_id != TID


def test_client_message_uuid_is_the_trace() -> None:
    with capture() as events, tracekit.message("4bf92f35-77b3-4da6-a3ce-929d0e0e4736"):
        tracekit.emit("CTRL", "send")
    assert events[0]["trace_id"] == TID


def test_bound_fields_apply_without_a_message() -> None:
    with capture() as events, tracekit.bind(actor="u2", conv_id="c3"):
        tracekit.emit("REST", "fetch_start")
    assert (events[0]["actor"], events[0]["conv_id"], "trace_id" in events[0]) == (
        "u2",
        "c3",
        False,
    )


def test_text_is_redacted_unless_opted_in() -> None:
    with capture() as events, tracekit.message(TID):
        tracekit.emit("CTRL", "send", text="hi Bob", content="x", body="y", length=6)
    assert {k: events[0][k] for k in ("text", "content", "body", "length")} == {
        "text": "[redacted]",
        "content": "[redacted]",
        "body": "[redacted]",
        "length": 6,
    }
    with capture(redact=False) as kept, tracekit.message(TID):
        tracekit.emit("CTRL", "send", text="hi Bob")
    assert kept[0]["text"] == "hi Bob"
    with capture(redact=["secret"]) as custom, tracekit.message(TID):
        tracekit.emit("CTRL", "send", text="hi", secret="s")
    assert (custom[0]["text"], custom[0]["secret"]) == ("hi", "[redacted]")


def test_sampling_is_deterministic_by_trace_id_and_leaves_no_seq_gap() -> None:
    trace_ids = [tracekit.new_trace_id() for _ in range(400)]

    def run() -> list[str]:
        with capture(sample=0.25) as events:
            for tid in trace_ids:
                with tracekit.message(tid), tracekit.stage("CTRL", "send"):
                    tracekit.emit("REST", "request")
        assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
        # whole traces only: both events of a kept message are there
        kept = [e["trace_id"] for e in events]
        assert all(kept.count(t) == 2 for t in set(kept))
        return sorted(set(kept))

    first, second = run(), run()
    assert first == second
    assert 50 < len(first) < 150  # about a quarter of 400


def test_structlog_processors_run_in_the_pipeline() -> None:
    def drop_heartbeats(_l: Any, _m: str, ed: dict[str, Any]) -> dict[str, Any]:
        if ed.get("heartbeat"):
            raise structlog.DropEvent
        return ed

    with capture(processors=[structlog.processors.add_log_level, drop_heartbeats]) as events:
        tracekit.emit("WS-RECV", "receive", heartbeat=True)
        tracekit.emit("WS-RECV", "receive")
    # the dropped event took no seq, so analysis sees no log gap
    assert [(e["seq"], e.get("heartbeat")) for e in events] == [(1, None)]


class _BrokenStream(io.StringIO):
    def __init__(self) -> None:
        super().__init__()
        self.broken = True

    def write(self, s: str) -> int:
        if self.broken:
            raise OSError(28, "No space left on device")
        return super().write(s)


def test_broken_sink_costs_the_app_nothing_and_the_loss_is_reported() -> None:
    stream = _BrokenStream()
    tracekit.configure(service="client", source="client-u2", sink=stream)
    for _ in range(5):
        tracekit.emit("WS-RECV", "receive")  # must not raise
    tracekit.flush()
    assert tracekit.stats()["dropped"] == 5
    stream.broken = False  # disk freed
    tracekit.emit("CTRL", "add")
    tracekit.flush()
    time.sleep(0.05)
    tracekit.flush()
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(e["stage"], e["action"], e["seq"]) for e in lines[:1]] == [("CTRL", "add", 6)]
    (report,) = [e for e in lines if e["stage"] == "TRACEKIT"]
    assert (report["action"], report["dropped"], report["total_dropped"]) == ("dropped", 5, 5)
    assert "No space left on device" in report["reason"]


def test_closed_stream_does_not_raise() -> None:
    stream = io.StringIO()
    tracekit.configure(service="s", sink=stream)
    stream.close()
    tracekit.emit("CTRL", "send")
    assert tracekit.flush() is False  # it did not raise, and it says the event was lost
    assert tracekit.stats()["dropped"] == 1


def test_full_queue_drops_and_counts_instead_of_blocking() -> None:
    gate = threading.Event()

    def slow(_event: Any) -> None:
        gate.wait(5)

    tracekit.configure(service="s", sink=slow, max_queue=10)
    start = time.perf_counter()
    for _ in range(1000):
        tracekit.emit("CTRL", "send")
    elapsed = time.perf_counter() - start
    gate.set()
    tracekit.flush()
    assert tracekit.stats()["dropped"] >= 1000 - 10 - 4096  # at most one batch in flight
    assert tracekit.stats()["dropped"] > 0
    assert elapsed < 1.0  # generous: the point is it does not wait for the sink


async def test_slow_sink_never_blocks_the_event_loop() -> None:
    def slow(_event: Any) -> None:
        time.sleep(0.05)

    tracekit.configure(service="s", sink=slow)
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        for _ in range(10):
            await asyncio.sleep(0.001)
            ticks += 1

    task = asyncio.create_task(ticker())
    for _ in range(20):
        tracekit.emit("WS-RECV", "receive")  # 20 x 50 ms of sink time if it were inline
        await asyncio.sleep(0)
    start = time.perf_counter()
    await task
    assert ticks == 10
    assert time.perf_counter() - start < 0.5


def test_flush_on_exit(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = tmp_path / "exit.jsonl"
    code = (
        "import tracekit\n"
        f"tracekit.configure(service='c', source='c-1', sink={str(out)!r})\n"
        "for i in range(2000):\n"
        "    tracekit.emit('CTRL', 'send', i=i)\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)
    assert [e["seq"] for e in read_jsonl(out)] == list(range(1, 2001))


async def test_instrumentations_give_each_client_its_own_source_and_seq(tmp_path: Path) -> None:
    u1 = tracekit.Instrumentation(service="client", source="client-u1", sink=tmp_path / "u1.jsonl")
    u2 = tracekit.Instrumentation(service="client", source="client-u2", sink=tmp_path / "u2.jsonl")

    async def client(inst: tracekit.Instrumentation, n: int) -> None:
        with inst.activate():
            for _ in range(n):
                await asyncio.sleep(0)
                # a task started inside activate() inherits the instance
                await asyncio.create_task(asyncio.sleep(0))
                tracekit.emit("WS-RECV", "receive")

    await asyncio.gather(client(u1, 3), client(u2, 2))
    tracekit.emit("CTRL", "send")  # outside: unconfigured, goes nowhere
    for inst in (u1, u2):
        inst.close()
    assert [(e["source"], e["seq"]) for e in read_jsonl(tmp_path / "u1.jsonl")] == [
        ("client-u1", 1),
        ("client-u1", 2),
        ("client-u1", 3),
    ]
    assert [(e["source"], e["seq"]) for e in read_jsonl(tmp_path / "u2.jsonl")] == [
        ("client-u2", 1),
        ("client-u2", 2),
    ]


def test_reconfiguring_inside_an_activated_instrumentation_logs_to_the_process_sink(
    tmp_path: Path,
) -> None:
    a, b, c = tmp_path / "a.jsonl", tmp_path / "b.jsonl", tmp_path / "c.jsonl"
    tracekit.configure(service="client", source="client-u1", sink=a)
    inst = tracekit.Instrumentation(service="c", source="c-1", sink=c)
    with inst.activate():
        tracekit.configure(service="client", source="client-u1", sink=b)
        tracekit.emit("CTRL", "add")  # the activated instance's
    tracekit.flush()
    inst.close()
    # the configuration event goes where the configuration writes, seq after a's event
    assert [(e["stage"], e["action"], e["seq"]) for e in read_jsonl(b)] == [
        ("TRACEKIT", "configured", 1)
    ]
    assert [(e["stage"], e["action"], e["source"]) for e in read_jsonl(c)] == [
        ("CTRL", "add", "c-1")
    ]
