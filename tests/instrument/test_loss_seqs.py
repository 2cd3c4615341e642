"""Every event tracekit loses takes a seq, and the report of it stands where that seq is
(session 25, review 25a): under the source whose seqs the lost events took, and with a span
that carries its own seq."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracekit
from tracekit.analyzers import analyze
from tracekit.collectors import collect

T1, T2, T3 = "1" * 32, "2" * 32, "3" * 32


class _Disk:
    """A log file whose writes fail while ``full``."""

    def __init__(self, path: Path) -> None:
        self.full, self._file = False, path.open("ab")

    def write(self, line: bytes) -> int:
        if self.full:
            raise OSError(28, "No space left on device")
        self._file.write(line)
        return len(line)

    def flush(self) -> None:
        self._file.flush()


def _message(tid: str, msg_id: str, disk: _Disk | None = None) -> None:
    """A message to u2, every hop in one process; ``disk`` fills up after its request."""
    hops = [
        ("u1", "CTRL", "send", {}),
        ("u1", "REST", "request", {}),
        ("server", "REST", "persist", {}),
        ("server", "WS-BROADCAST", "start", {"recipients": ["u2"]}),
        ("server", "WS-BROADCAST", "deliver", {"peer": "u2"}),
        ("u1", "REST", "response", {}),
        ("u2", "WS-RECV", "receive", {}),
        ("u2", "REPO", "add", {}),
        ("u2", "CTRL", "add", {}),
    ]
    with tracekit.message(tid, conv_id="c1", msg_id=msg_id):
        for actor, stage, action, extra in hops:
            if disk is not None and stage == "REST" and action == "persist":
                tracekit.flush()
                disk.full = True
            with tracekit.bind(actor=actor):
                tracekit.emit(stage, action, **extra)


def _lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_loss_carried_over_a_new_source_is_said_under_the_old_one(tmp_path: Path) -> None:
    # m2's last 7 events (seqs 12-18 of chat-A) were lost by a full disk, then configure()
    # moved to another file under another source: the new emitter's report (chat-B seq 2)
    # stood in another log than the loss, which showed nowhere, and m2 read as a drop
    a, b = tmp_path / "a.jsonl", tmp_path / "b.jsonl"
    disk = _Disk(a)
    tracekit.configure(service="chat", source="chat-A", sink=disk)
    _message(T1, "m1")
    _message(T2, "m2", disk)
    tracekit.flush()
    tracekit.configure(service="chat", source="chat-B", sink=str(b))
    _message(T3, "m3")
    tracekit.shutdown()
    (report,) = [e for e in _lines(b) if e["action"] == "dropped"]
    assert (report["source"], report["seq"], report["dropped"]) == ("chat-A", 19, 7)
    got = collect([a, b])
    found = analyze(got.events, grace=timedelta(0), inputs=got.inputs.to_dict()).findings
    assert found.select("kind", "source", "detail").rows() == [
        (
            "log_gap",
            "chat-A",
            "seq jumps from 11 to 19: 7 event(s) lost by the logging; 1 message path(s) "
            f"indeterminate, not reported as drops: {T2} (at REST.persist)",
        )
    ]


def test_the_report_of_a_loss_is_not_the_apps_to_filter(
    spans: tuple[TracerProvider, InMemorySpanExporter], tmp_path: Path
) -> None:
    # a processor that drops warnings (structlog's DropEvent) filtered the report, whose span
    # (begun before it) went out without a seq: read from the spans, a gap of its own
    provider, exporter = spans

    def quiet(_l: Any, _m: str, ed: dict[str, Any]) -> dict[str, Any]:
        if ed.get("level") == "warning":
            raise structlog.DropEvent
        return ed

    def flaky(_l: Any, _m: str, ed: dict[str, Any]) -> dict[str, Any]:
        if ed.get("msg_id") == "m1" and ed["action"] == "add":
            raise RuntimeError("boom")
        return ed

    app = tmp_path / "app.jsonl"
    tracekit.configure(
        service="chat", source="chat-1", sink=app, otel=provider, processors=[quiet, flaky]
    )
    _message(T1, "m1")
    tracekit.shutdown()
    reports = [e for e in _lines(app) if e["stage"] == "TRACEKIT" and e["action"] == "dropped"]
    assert [(e["seq"], e["lost_seq"]) for e in reports] == [(9, 8), (11, 10)]
    marked = [
        (s.attributes or {}).get("tracekit.seq")
        for s in exporter.get_finished_spans()
        if s.name == "TRACEKIT dropped"
    ]
    assert marked == [9, 11]
