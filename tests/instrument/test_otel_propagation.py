"""Spans of the real OpenTelemetry SDK, and one trace across two real processes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.trace import SpanKind, StatusCode

import tracekit
from tracekit.propagation import ENVELOPE_KEY
from tracekit.testing import capture

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def test_stage_span_in_message_trace_with_semconv_attributes(spans: Any) -> None:
    provider, exporter = spans
    with capture(otel=provider) as events, tracekit.message(TID, conv_id="c1", actor="server"):
        with tracekit.stage("REST", "persist", msg_id="m1"):
            with tracekit.stage("WS-BROADCAST", "deliver", peer="u2"):
                pass
    deliver, persist = exporter.get_finished_spans()
    assert (persist.name, deliver.name) == ("REST persist", "WS-BROADCAST deliver")
    assert f"{persist.context.trace_id:032x}" == TID
    assert deliver.parent is not None and deliver.parent.span_id == persist.context.span_id
    assert persist.parent is not None and persist.parent.is_remote  # the message's shared parent
    assert (persist.kind, deliver.kind) == (SpanKind.SERVER, SpanKind.PRODUCER)
    assert persist.attributes is not None and deliver.attributes is not None
    assert {k: persist.attributes[k] for k in persist.attributes if k.startswith("messaging")} == {
        "messaging.operation.type": "process",
        "messaging.message.id": "m1",
        "messaging.message.conversation_id": "c1",
    }
    assert deliver.attributes["tracekit.peer"] == "u2"
    assert deliver.attributes["messaging.operation.type"] == "send"
    # the event names its span, and the span its event's seq
    by_action = {e["action"]: e for e in events}
    assert by_action["persist"]["span_id"] == f"{persist.context.span_id:016x}"
    assert persist.attributes["tracekit.seq"] == by_action["persist"]["seq"]


def test_a_point_event_has_a_zero_length_span_too(spans: Any) -> None:
    # Every event that takes a seq has its span: read back from OTLP, a trace whose
    # WS-BROADCAST.start was an emit() had a hole (a false log gap, recipients lost).
    provider, exporter = spans
    with capture(otel=provider) as events, tracekit.message(TID, conv_id="c1"):
        with tracekit.stage("REST", "persist"):
            tracekit.emit("WS-BROADCAST", "start", recipients=["u2"])
    start, persist = exporter.get_finished_spans()
    assert start.name == "WS-BROADCAST start"
    assert start.start_time == start.end_time
    assert f"{start.context.trace_id:032x}" == TID
    assert start.parent is not None and start.parent.span_id == persist.context.span_id
    by_action = {e["action"]: e for e in events}
    assert by_action["start"]["span_id"] == f"{start.context.span_id:016x}"
    assert start.attributes is not None
    assert start.attributes["tracekit.seq"] == by_action["start"]["seq"]
    assert start.attributes["tracekit.recipients"] == ("u2",)  # (review 24a: it had none)


def test_fields_set_during_the_stage_reach_the_span(spans: Any) -> None:
    provider, exporter = spans
    with capture(otel=provider) as events, tracekit.message(TID, conv_id="c1"):
        with tracekit.stage("REST", "persist") as stage:
            stage.set(msg_id="m7", recipients=["u2", "u3"])
    (span,) = exporter.get_finished_spans()
    assert span.attributes is not None
    assert span.attributes["messaging.message.id"] == "m7"
    assert span.attributes["tracekit.recipients"] == ("u2", "u3")
    assert events[0]["msg_id"] == "m7"


def test_exception_recorded_on_span(spans: Any) -> None:
    provider, exporter = spans
    with (
        capture(otel=provider),
        tracekit.message(TID),
        pytest.raises(KeyError),
        tracekit.stage("REPO", "add"),
    ):
        raise KeyError("c9")
    (span,) = exporter.get_finished_spans()
    assert span.status.status_code is StatusCode.ERROR
    assert [e.name for e in span.events] == ["exception"]
    assert span.events[0].attributes is not None
    assert span.events[0].attributes["exception.type"] == "KeyError"


def test_unconfigured_stage_makes_no_span(spans: Any) -> None:
    _provider, exporter = spans
    with tracekit.message(TID), tracekit.stage("REST", "persist"):
        pass
    assert exporter.get_finished_spans() == ()


def test_inject_extract_headers_and_envelope() -> None:
    headers: dict[str, str] = {}
    payload: dict[str, Any] = {"type": "message:created", "id": "m1"}
    with tracekit.message(TID, conv_id="c1", msg_id="m1"):
        tracekit.inject(headers)
        tracekit.inject(payload, tracekit.envelope_setter)
    assert headers == {
        "traceparent": f"00-{TID}-{TID[16:]}-01",
        "tracekit-trace-id": TID,
        "tracekit-conv-id": "c1",
        "tracekit-msg-id": "m1",
    }
    assert payload["type"] == "message:created" and payload[ENVELOPE_KEY] == headers
    upper = {k.upper(): v for k, v in headers.items()}
    for carrier, getter in ((upper, tracekit.dict_getter), (payload, tracekit.envelope_getter)):
        ctx = tracekit.extract(carrier, getter)
        assert ctx is not None
        assert (ctx.trace_id, ctx.conv_id, ctx.msg_id, ctx.parent_span_id) == (
            TID,
            "c1",
            "m1",
            TID[16:],
        )


@pytest.mark.parametrize(
    "carrier",
    [
        {},
        {"traceparent": "garbage"},
        {"tracekit-trace-id": "not-hex"},
        {"traceparent": f"00-{'0' * 32}-{'1' * 16}-01"},
        {"tracekit-trace-id": 42},
    ],
)
def test_extract_returns_none_for_missing_or_malformed(carrier: dict[str, Any]) -> None:
    assert tracekit.extract(carrier) is None


def test_traceparent_alone_is_enough() -> None:
    ctx = tracekit.extract({"traceparent": f"00-{TID}-00f067aa0ba902b7-01"})
    assert ctx is not None and (ctx.trace_id, ctx.parent_span_id) == (TID, "00f067aa0ba902b7")


_PROCESS = textwrap.dedent(
    """
    import json, sys
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
    import tracekit

    role, sink = sys.argv[1], sys.argv[2]
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracekit.configure(service=role, source=role + "-1", sink=sink, otel=provider)
    if role == "client":
        headers = {}
        with tracekit.message(conv_id="c1", actor="u1"):
            with tracekit.stage("CTRL", "send"), tracekit.stage("REST", "request"):
                tracekit.inject(headers)
        out = {"headers": headers}
    else:
        headers = json.loads(sys.argv[3])
        with tracekit.message(tracekit.extract(headers), actor="server"):
            with tracekit.stage("REST", "persist", msg_id="m1"):
                pass
        out = {}
    out["spans"] = [
        {"name": s.name, "trace_id": f"{s.context.trace_id:032x}",
         "span_id": f"{s.context.span_id:016x}",
         "parent": f"{s.parent.span_id:016x}" if s.parent else None}
        for s in exporter.get_finished_spans()
    ]
    print(json.dumps(out))
    """
)


def test_one_trace_across_two_real_processes(tmp_path: Path) -> None:
    def run(*args: str) -> dict[str, Any]:
        proc = subprocess.run(
            [sys.executable, "-c", _PROCESS, *args],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        return json.loads(proc.stdout)  # type: ignore[no-any-return]

    client = run("client", str(tmp_path / "client.jsonl"))
    server = run("server", str(tmp_path / "server.jsonl"), json.dumps(client["headers"]))

    events = [
        json.loads(line)
        for name in ("client.jsonl", "server.jsonl")
        for line in (tmp_path / name).read_text().splitlines()
    ]
    trace_ids = {e["trace_id"] for e in events}
    assert len(trace_ids) == 1
    (trace_id,) = trace_ids
    assert sorted((e["source"], e["stage"], e["action"]) for e in events) == [
        ("client-1", "CTRL", "send"),
        ("client-1", "REST", "request"),
        ("server-1", "REST", "persist"),
    ]
    spans = {s["name"]: s for s in client["spans"] + server["spans"]}
    assert {s["trace_id"] for s in spans.values()} == {trace_id}
    assert spans["REST persist"]["parent"] == spans["REST request"]["span_id"]
    assert spans["REST request"]["parent"] == spans["CTRL send"]["span_id"]
