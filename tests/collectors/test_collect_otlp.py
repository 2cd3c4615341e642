"""OTLP: JSON exports on disk, and the OTLP/HTTP receiver fed by the real exporters."""

from __future__ import annotations

import gzip
import threading
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import orjson
import polars as pl
import pytest
from collectors_helpers import T1, T2, event, ts

from tracekit.collectors import MemorySource, collect
from tracekit.collectors.otlp_receiver import OTLPReceiver

NS = 1_795_600_800_000_000_000  # 2026-11-25T10:00:00Z


def test_sample_otlp_exports(samples: Path) -> None:
    got = collect([samples / "otlp"])
    frame = got.events.collect()
    traces = samples / "otlp" / "traces.jsonl"
    server = frame.filter(pl.col("source") == "chat-server-1")
    assert server.to_dicts()[1] == event(
        timestamp=ts("10:00:01.012"),
        stage="WS-BROADCAST",
        action="start",
        event="WS-BROADCAST start",
        trace_id=T1,
        msg_id="msg-1001",
        conv_id="conv-42",
        actor="server",
        source="chat-server-1",
        seq=2,
        span_id=server.get_column("span_id")[1],
        recipients=["u1", "u2"],
        duration_ms=0.12,
        file=str(traces),
        line=1,
    )
    assert frame.height == 13
    inputs = got.inputs
    assert (inputs.events, inputs.ignored, inputs.malformed) == (13, 2, 0)
    logs = frame.filter(pl.col("source") == "client-u2-91c0")
    assert logs.select("stage", "action", "level", "seq").rows() == [
        ("WS-RECV", "receive", "info", 1),
        ("REPO", "add", "info", 2),
        ("CTRL", "add", "info", 3),
    ]
    assert set(frame.get_column("trace_id")) == {T1}


def test_otlp_json_bad_lines() -> None:
    good = {"resourceSpans": [{"scopeSpans": [{"spans": [_span_json("CTRL", "send", 1)]}]}]}
    data = orjson.dumps(good) + b"\n{oops\n" + orjson.dumps({"other": 1}) + b"\n"
    got = collect([MemorySource(data, name="x.jsonl", format="otlp")])
    assert got.events.collect().height == 1
    assert [e.split(": ")[0] for e in got.inputs.examples] == ["x.jsonl:2", "x.jsonl:3"]
    broken = orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": [{"attributes": "x"}]}]}]})
    got = collect([MemorySource(broken + b"\n" + orjson.dumps(good) + b"\n", format="otlp")])
    assert got.events.collect().height == 1
    assert got.inputs.examples == [
        "memory:1: resourceSpans[0].scopeSpans[0].spans[0]: attributes are not a list (str)"
    ]


def test_a_span_is_as_long_as_its_start_to_its_end() -> None:
    # A span's event is stamped with its start; its end, where it has one not before its
    # start, is the event's duration_ms. Without it the span is still read (with its own
    # duration_ms attribute, if it has one).
    spans = [_span_json("CTRL", "send", ms) for ms in (1, 2, 3, 4, 5)]
    spans[1]["endTimeUnixNano"] = str(NS + 2_000_000 + 7_250_000)
    del spans[2]["endTimeUnixNano"]
    spans[3]["endTimeUnixNano"] = str(NS)  # before its start
    del spans[4]["endTimeUnixNano"]
    spans[4]["attributes"].append({"key": "duration_ms", "value": {"doubleValue": 5.5}})
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
    got = collect([MemorySource(orjson.dumps(doc), name="x.jsonl", format="otlp")])
    durations = got.events.collect().get_column("duration_ms").to_list()
    assert durations == [0.001, 7.25, None, None, 5.5]
    assert (got.inputs.malformed, got.inputs.warnings) == (0, [])


def _bad_items_export() -> dict[str, Any]:
    """Good spans and log records around bad ones: a span whose attributes are not a list, a
    log record that is not an object, an attribute without a key, an intValue that is none."""
    keyless = _span_json("CTRL", "send", 2)
    keyless["attributes"].append({"value": {"stringValue": "x"}})
    bad_int = _span_json("CTRL", "send", 3)
    bad_int["attributes"][4] = {"key": "tracekit.seq", "value": {"intValue": "two"}}
    record = {
        "timeUnixNano": str(NS + 5_000_000),
        "traceId": T2,
        "attributes": [
            {"key": "stage", "value": {"stringValue": "REPO"}},
            {"key": "action", "value": {"stringValue": "add"}},
            {"key": "actor", "value": {"stringValue": "u2"}},
            {"key": "source", "value": {"stringValue": "client-u2"}},
            {"key": "seq", "value": {"intValue": "4"}},
        ],
    }
    spans = [
        _span_json("CTRL", "send", 1),
        {**_span_json("CTRL", "send", 9), "attributes": "x"},
        keyless,
        bad_int,
    ]
    return {
        "resourceSpans": [{"scopeSpans": [{"spans": spans}]}],
        "resourceLogs": [{"scopeLogs": [{"logRecords": ["oops", record]}]}],
    }


_BAD_ITEM_REASONS = [
    "resourceSpans[0].scopeSpans[0].spans[1]: attributes are not a list (str)",
    "resourceLogs[0].scopeLogs[0].logRecords[0]: not an object (str)",
]


def _bad_items_rows() -> list[tuple[Any, ...]]:
    return [
        ("CTRL", 5, ts("10:00:00.001")),
        ("CTRL", 5, ts("10:00:00.002")),  # only the attribute without a key is lost
        ("CTRL", None, ts("10:00:00.003")),  # seq "two": left empty, as in a JSON log
        ("REPO", 4, ts("10:00:00.005")),
    ]


def test_one_bad_span_or_record_costs_only_itself() -> None:
    data = orjson.dumps(_bad_items_export()) + b"\n"
    got = collect([MemorySource(data, name="x.jsonl", format="otlp")])
    frame = got.events.collect()
    assert frame.select("stage", "seq", "timestamp").rows() == _bad_items_rows()
    assert (got.inputs.events, got.inputs.malformed, got.inputs.ignored) == (4, 2, 0)
    assert got.inputs.examples == [f"x.jsonl:1: {r}" for r in _BAD_ITEM_REASONS]
    assert got.inputs.warnings == [
        "x.jsonl: 1 OTLP attributes without a key were skipped; their spans and records were "
        "kept (first: line 1, resourceSpans[0].scopeSpans[0].spans[2])",
        "x.jsonl: 1 events have a non-integer seq; it was left empty",
    ]


def _span_json(stage: str, action: str, ms: int) -> dict[str, Any]:
    return {
        "traceId": T2,
        "spanId": "00f067aa0ba902b7",
        "name": f"{stage} {action}",
        "startTimeUnixNano": str(NS + ms * 1_000_000),
        "endTimeUnixNano": str(NS + ms * 1_000_000 + 1000),
        "attributes": [
            {"key": "tracekit.stage", "value": {"stringValue": stage}},
            {"key": "tracekit.action", "value": {"stringValue": action}},
            {"key": "tracekit.actor", "value": {"stringValue": "u1"}},
            {"key": "tracekit.source", "value": {"stringValue": "client-u1"}},
            {"key": "tracekit.seq", "value": {"intValue": "5"}},
        ],
    }


@pytest.fixture
def receiver(tmp_path: Path) -> Any:
    out = tmp_path / "events.jsonl"
    with OTLPReceiver(out, port=0) as rx:
        yield rx, out


def _tracer_provider(url: str, sampler: Any = None, **kw: Any) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor

    provider = TracerProvider(
        resource=Resource.create({"service.name": "chat", "service.instance.id": "chat-server-1"}),
        sampler=sampler,
    )
    provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{url}/v1/traces", timeout=5, **kw))
    )
    return provider


def _emit_spans(provider: Any) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    tracer = provider.get_tracer("tracekit")
    parent = SpanContext(int(T1, 16), 0x1234, is_remote=True, trace_flags=TraceFlags(1))
    ctx = trace.set_span_in_context(NonRecordingSpan(parent))
    persist = tracer.start_span(
        "REST persist",
        context=ctx,
        start_time=NS + 10_000_000,
        attributes={
            "tracekit.stage": "REST",
            "tracekit.action": "persist",
            "messaging.message.id": "msg-1001",
            "messaging.message.conversation_id": "conv-42",
            "tracekit.actor": "u1",
            "tracekit.source": "chat-server-1",
        },
    )
    persist.set_attribute("tracekit.seq", 7)
    persist.end(end_time=NS + 11_000_000)
    start = tracer.start_span(
        "WS-BROADCAST start",
        context=ctx,
        start_time=NS + 12_000_000,
        attributes={
            "tracekit.stage": "WS-BROADCAST",
            "tracekit.action": "start",
            "messaging.message.id": "msg-1001",
            "tracekit.actor": "server",
            "tracekit.recipients": ["u1", "u2"],
            "tracekit.seq": 8,
        },
    )
    start.end(end_time=NS + 12_500_000)
    foreign = tracer.start_span("POST /messages", context=ctx, start_time=NS)
    foreign.end(end_time=NS + 20_000_000)


def test_receiver_with_real_span_exporter(receiver: Any) -> None:
    rx, out = receiver
    provider = _tracer_provider(rx.url)
    _emit_spans(provider)
    provider.shutdown()
    assert (rx.events, rx.ignored, rx.rejected) == (2, 1, 0)
    got = collect([out])
    frame = got.events.collect()
    span_ids = frame.get_column("span_id").to_list()
    assert all(isinstance(s, str) and len(s) == 16 for s in span_ids)
    assert frame.to_dicts() == [
        event(
            timestamp=ts("10:00:00.010"),
            stage="REST",
            action="persist",
            event="REST persist",
            trace_id=T1,
            msg_id="msg-1001",
            conv_id="conv-42",
            actor="u1",
            source="chat-server-1",
            seq=7,
            span_id=span_ids[0],
            duration_ms=1.0,  # the span's end, 1 ms after its start
            file=str(out),
            line=1,
        ),
        event(
            timestamp=ts("10:00:00.012"),
            stage="WS-BROADCAST",
            action="start",
            event="WS-BROADCAST start",
            trace_id=T1,
            msg_id="msg-1001",
            actor="server",
            source="chat-server-1",  # from the resource's service.instance.id
            seq=8,
            span_id=span_ids[1],
            recipients=["u1", "u2"],
            duration_ms=0.5,
            file=str(out),
            line=2,
        ),
    ]


def test_receiver_gzip_exporter(receiver: Any) -> None:
    from opentelemetry.exporter.otlp.proto.http import Compression

    rx, out = receiver
    provider = _tracer_provider(rx.url, compression=Compression.Gzip)
    _emit_spans(provider)
    provider.shutdown()
    assert rx.events == 2
    assert collect([out]).events.collect().height == 2


def test_receiver_with_real_log_exporter(receiver: Any) -> None:
    from opentelemetry._logs import LogRecord, SeverityNumber
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.trace import TraceFlags

    rx, out = receiver
    provider = LoggerProvider(resource=Resource.create({"service.instance.id": "client-u2-91c0"}))
    provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{rx.url}/v1/logs", timeout=5))
    )
    logger = provider.get_logger("chat.client")
    logger.emit(
        LogRecord(
            timestamp=NS + 20_000_000,
            trace_id=int(T1, 16),
            span_id=0xB3D05A82BB5F508D,
            trace_flags=TraceFlags(1),
            severity_text="INFO",
            severity_number=SeverityNumber.INFO,
            body="WS-RECV receive",
            attributes={
                "stage": "WS-RECV",
                "action": "receive",
                "msg_id": "msg-1001",
                "actor": "u2",
                "seq": 1,
            },
        )
    )
    logger.emit(LogRecord(timestamp=NS, body="websocket connected", severity_text="INFO"))
    provider.shutdown()
    assert (rx.events, rx.ignored) == (1, 1)
    frame = collect([out]).events.collect()
    assert frame.to_dicts() == [
        event(
            timestamp=ts("10:00:00.020"),
            stage="WS-RECV",
            action="receive",
            event="WS-RECV receive",
            trace_id=T1,
            msg_id="msg-1001",
            actor="u2",
            source="client-u2-91c0",
            seq=1,
            span_id="b3d05a82bb5f508d",
            level="info",
            file=str(out),
            line=1,
        )
    ]


def test_receiver_json_bodies_and_errors(receiver: Any) -> None:
    rx, out = receiver
    body = {"resourceSpans": [{"scopeSpans": [{"spans": [_span_json("CTRL", "send", 1)]}]}]}
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        ok = client.post(
            "/v1/traces", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
        assert (ok.status_code, ok.json()) == (200, {})
        zipped = client.post(
            "/v1/traces",
            content=gzip.compress(orjson.dumps(body)),
            headers={"Content-Type": "application/json", "Content-Encoding": "gzip"},
        )
        assert zipped.status_code == 200
        assert (
            client.post(
                "/v1/traces",
                content=b"\x00garbage",
                headers={"Content-Type": "application/x-protobuf"},
            ).status_code
            == 400
        )
        assert (
            client.post(
                "/v1/logs", content=b"{nope", headers={"Content-Type": "application/json"}
            ).status_code
            == 400
        )
        assert client.post("/v1/metrics", content=b"{}").status_code == 404
        assert (
            client.post(
                "/v1/traces", content=b"x", headers={"Content-Type": "text/plain"}
            ).status_code
            == 415
        )
    assert (rx.events, rx.rejected) == (2, 3)
    frame = collect([out]).events.collect()
    assert (
        frame.select("trace_id", "stage", "seq", "timestamp").rows()
        == [
            (T2, "CTRL", 5, ts("10:00:00.001")),
        ]
        * 2
    )


def test_receiver_concurrent_requests(receiver: Any) -> None:
    rx, out = receiver
    body = orjson.dumps(
        {"resourceSpans": [{"scopeSpans": [{"spans": [_span_json("CTRL", "send", 1)] * 50}]}]}
    )

    def post() -> None:
        with httpx.Client(base_url=rx.url, timeout=5) as client:
            for _ in range(5):
                client.post(
                    "/v1/traces", content=body, headers={"Content-Type": "application/json"}
                )

    threads = [threading.Thread(target=post) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    got = collect([out])
    assert got.inputs.malformed == 0 and got.events.collect().height == 4 * 5 * 50


def test_receiver_json_logs(receiver: Any) -> None:
    rx, out = receiver
    record = {
        "timeUnixNano": str(NS + 5_000_000),
        "severityText": "WARN",
        "traceId": T2,
        "body": {
            "stringValue": orjson.dumps(
                {"stage": "REPO", "action": "add", "msg_id": "m2", "actor": "u2", "seq": 4}
            ).decode()
        },
    }
    body = {
        "resourceLogs": [
            {
                "resource": {
                    "attributes": [
                        {"key": "service.instance.id", "value": {"stringValue": "client-u2-91c0"}}
                    ]
                },
                "scopeLogs": [{"logRecords": [record]}],
            }
        ]
    }
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        ok = client.post(
            "/v1/logs", content=orjson.dumps(body), headers={"Content-Type": "application/json"}
        )
    assert ok.status_code == 200
    frame = collect([out]).events.collect()
    assert frame.select(
        "timestamp", "stage", "action", "trace_id", "msg_id", "source", "seq", "level"
    ).rows() == [(ts("10:00:00.005"), "REPO", "add", T2, "m2", "client-u2-91c0", 4, "warn")]


def test_receiver_chunked_body(receiver: Any) -> None:
    rx, out = receiver
    body = orjson.dumps(
        {"resourceSpans": [{"scopeSpans": [{"spans": [_span_json("CTRL", "send", 1)]}]}]}
    )

    def chunks() -> Any:
        yield body[:10]
        yield body[10:]

    with httpx.Client(base_url=rx.url, timeout=5) as client:
        ok = client.post(
            "/v1/traces", content=chunks(), headers={"Content-Type": "application/json"}
        )
    assert ok.status_code == 200
    assert collect([out]).events.collect().height == 1


def test_receiver_refuses_a_negative_chunk_size(receiver: Any) -> None:
    import socket

    rx, _ = receiver
    request = (
        b"POST /v1/traces HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Transfer-Encoding: chunked\r\n\r\n-5\r\nabc\r\n0\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as conn:
        conn.sendall(request)
        status = conn.makefile("rb").readline()
    assert status.split()[1] == b"413"  # (a 500 from the read, review 19a)


def test_a_port_in_use_leaves_no_output_file(tmp_path: Path) -> None:
    with OTLPReceiver(tmp_path / "first.jsonl", port=0) as rx:
        out = tmp_path / "second.jsonl"
        with pytest.raises(OSError):
            OTLPReceiver(out, port=rx.port)
        assert not out.exists()


def test_receiver_keeps_the_good_items_of_a_request_with_bad_ones(receiver: Any) -> None:
    rx, out = receiver
    doc = _bad_items_export()
    traces = {"resourceSpans": doc["resourceSpans"]}
    logs = {"resourceLogs": doc["resourceLogs"]}
    json_type = {"Content-Type": "application/json"}
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        t = client.post("/v1/traces", content=orjson.dumps(traces), headers=json_type)
        lg = client.post("/v1/logs", content=orjson.dumps(logs), headers=json_type)
    keyless = (
        "1 attribute(s) without a key skipped (first: resourceSpans[0].scopeSpans[0].spans[2])"
    )
    assert (t.status_code, t.json()) == (
        200,
        {
            "partialSuccess": {
                "rejectedSpans": "1",
                "errorMessage": f"{_BAD_ITEM_REASONS[0]}; {keyless}",
            }
        },
    )
    assert (lg.status_code, lg.json()) == (
        200,
        {"partialSuccess": {"rejectedLogRecords": "1", "errorMessage": _BAD_ITEM_REASONS[1]}},
    )
    assert (rx.requests, rx.events, rx.malformed, rx.rejected, rx.keyless) == (2, 4, 2, 0, 1)
    assert rx.examples == _BAD_ITEM_REASONS
    got = collect([out])
    assert got.events.collect().select("stage", "seq", "timestamp").rows() == _bad_items_rows()
    assert (got.inputs.events, got.inputs.malformed) == (4, 0)
    # the bad seq is left to the reader, which warns as for the same export read from a file
    assert got.inputs.warnings == [f"{out}: 1 events have a non-integer seq; it was left empty"]


def _overflow_export() -> dict[str, Any]:
    """A good span, then spans whose times no clock gives (past 2262, negative)."""
    late = {**_span_json("CTRL", "send", 2), "startTimeUnixNano": "9" * 26}
    negative = {**_span_json("CTRL", "send", 3), "startTimeUnixNano": "-1"}
    spans = [_span_json("CTRL", "send", 1), late, negative]
    return {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}


_OVERFLOW_REASONS = [
    "resourceSpans[0].scopeSpans[0].spans[1]: startTimeUnixNano "
    "'99999999999999999999999999' is not a time (nanoseconds since 1970)",
    "resourceSpans[0].scopeSpans[0].spans[2]: startTimeUnixNano '-1' is not a time "
    "(nanoseconds since 1970)",
]


def test_a_span_time_out_of_range_is_one_malformed_span() -> None:
    data = orjson.dumps(_overflow_export())
    got = collect([MemorySource(data, name="x.json", format="otlp")])
    assert got.events.collect().select("stage", "seq", "timestamp").rows() == [
        ("CTRL", 5, ts("10:00:00.001"))
    ]
    assert (got.inputs.events, got.inputs.malformed) == (1, 2)
    assert got.inputs.examples == [f"x.json:1: {r}" for r in _OVERFLOW_REASONS]


def test_receiver_answers_and_keeps_the_good_span_when_a_time_is_out_of_range(
    receiver: Any,
) -> None:
    rx, out = receiver
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        r = client.post(
            "/v1/traces",
            content=orjson.dumps(_overflow_export()),
            headers={"Content-Type": "application/json"},
        )
    assert (r.status_code, r.json()) == (
        200,
        {"partialSuccess": {"rejectedSpans": "2", "errorMessage": "; ".join(_OVERFLOW_REASONS)}},
    )
    assert (rx.requests, rx.events, rx.malformed, rx.rejected) == (1, 1, 2, 0)
    assert rx.examples == _OVERFLOW_REASONS
    assert out.read_bytes() == (
        b'{"timestamp":"2026-11-25T10:00:00.001000000Z","stage":"CTRL","action":"send",'
        b'"event":"CTRL send","trace_id":"' + T2.encode() + b'","actor":"u1",'
        b'"source":"client-u1","seq":5,"span_id":"00f067aa0ba902b7","duration_ms":0.001}\n'
    )


def _body_times_export() -> dict[str, Any]:
    """Log records whose JSON bodies are tracekit events with times in every form a reader
    takes (ISO, an offset, epoch seconds with a fraction, epoch milliseconds), and a bad seq."""
    bodies: list[dict[str, Any]] = [
        {"timestamp": "2026-11-25T10:00:00.123456Z", "seq": 1},
        {"timestamp": "2026-11-25T11:00:00.25+01:00", "seq": 2},
        {"timestamp": 1795600800.5, "seq": 3},
        {"timestamp": 1795600800750, "seq": "two"},
    ]
    records = [
        {
            "timeUnixNano": str(NS + 999_000_000),  # the body's own time wins
            "body": {
                "stringValue": orjson.dumps(
                    {"stage": "WS-RECV", "action": "receive", "actor": "u2", **b}
                ).decode()
            },
        }
        for b in bodies
    ]
    return {"resourceLogs": [{"scopeLogs": [{"logRecords": records}]}]}


def test_receiver_writes_body_times_as_the_file_reader_reads_them(receiver: Any) -> None:
    from tracekit.collectors.otlp_receiver import event_line

    rx, out = receiver
    doc = _body_times_export()
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        r = client.post(
            "/v1/logs", content=orjson.dumps(doc), headers={"Content-Type": "application/json"}
        )
    assert (r.status_code, r.json(), rx.events, rx.malformed) == (200, {}, 4, 0)
    expected = [
        (ts("10:00:00.123456"), 1),
        (ts("10:00:00.250"), 2),
        (ts("10:00:00.500"), 3),
        (ts("10:00:00.750"), None),
    ]
    warning = "1 events have a non-integer seq; it was left empty"
    received = collect([out])
    assert received.events.collect().select("timestamp", "seq").rows() == expected
    assert (received.inputs.malformed, received.inputs.warnings) == (0, [f"{out}: {warning}"])
    from_file = collect([MemorySource(orjson.dumps(doc), name="x.json", format="otlp")])
    assert from_file.events.collect().select("timestamp", "seq").rows() == expected
    assert (from_file.inputs.malformed, from_file.inputs.warnings) == (0, [f"x.json: {warning}"])
    assert event_line({"timestamp": 1767225600.123, "stage": "REST", "action": "persist"}) == (
        b'{"timestamp":"1767225600.123","stage":"REST","action":"persist"}\n'
    )


def _attr_list(**kw: str) -> list[dict[str, Any]]:
    return [{"key": f"tracekit.{k}", "value": {"stringValue": v}} for k, v in kw.items()]


def test_span_events_with_a_stage_are_events() -> None:
    fetch = {
        "timeUnixNano": str(NS + 4_000_000),
        "name": "REST fetch_start",
        "attributes": _attr_list(stage="REST", action="fetch_start", actor="u2"),
    }
    exception = {"timeUnixNano": str(NS + 5_000_000), "name": "exception", "attributes": []}
    bad = {"timeUnixNano": str(NS + 6_000_000), "name": "x", "attributes": "x"}
    own = {**_span_json("CTRL", "send", 1), "events": [fetch, exception, bad]}
    foreign = {
        "traceId": T1,
        "spanId": "b3d05a82bb5f508d",
        "name": "GET /x",
        "startTimeUnixNano": str(NS),
        "events": [{**fetch, "timeUnixNano": str(NS + 7_000_000)}],
    }
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [own, foreign]}]}]}
    got = collect([MemorySource(orjson.dumps(doc), name="x.json", format="otlp")])
    rows = got.events.collect().select(
        "timestamp", "stage", "action", "event", "trace_id", "span_id", "actor", "seq"
    )
    assert rows.rows() == [
        (ts("10:00:00.001"), "CTRL", "send", "CTRL send", T2, "00f067aa0ba902b7", "u1", 5),
        (ts("10:00:00.004"), "REST", "fetch_start", "REST fetch_start", T2, "00f067aa0ba902b7",
         "u2", None),
        (ts("10:00:00.007"), "REST", "fetch_start", "REST fetch_start", T1, "b3d05a82bb5f508d",
         "u2", None),
    ]  # fmt: skip
    assert (got.inputs.events, got.inputs.ignored, got.inputs.malformed) == (3, 2, 1)
    assert got.inputs.examples == [
        "x.json:1: resourceSpans[0].scopeSpans[0].spans[0].events[2]: "
        "attributes are not a list (str)"
    ]


def test_receiver_maps_span_events_from_the_real_exporter(receiver: Any) -> None:
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    rx, out = receiver
    provider = _tracer_provider(rx.url)
    tracer = provider.get_tracer("tracekit")
    parent = SpanContext(int(T1, 16), 0x1234, is_remote=True, trace_flags=TraceFlags(1))
    span = tracer.start_span(
        "GET /messages", context=trace.set_span_in_context(NonRecordingSpan(parent)), start_time=NS
    )
    span.add_event(
        "REST fetch_start",
        attributes={"tracekit.stage": "REST", "tracekit.action": "fetch_start", "tracekit.seq": 3},
        timestamp=NS + 4_000_000,
    )
    span.add_event("cache miss", timestamp=NS + 5_000_000)
    span.end(end_time=NS + 9_000_000)
    provider.shutdown()
    assert (rx.events, rx.ignored, rx.malformed) == (1, 2, 0)
    span_id = f"{span.get_span_context().span_id:016x}"
    assert collect([out]).events.collect().to_dicts() == [
        event(
            timestamp=ts("10:00:00.004"),
            stage="REST",
            action="fetch_start",
            event="REST fetch_start",
            trace_id=T1,
            source="chat-server-1",
            seq=3,
            span_id=span_id,
            file=str(out),
            line=1,
        )
    ]


def test_attributes_without_a_key_are_counted_in_a_warning() -> None:
    # Chosen: a warning, not malformed. The span or record stays an event (its other
    # attributes kept), so counting it as malformed would count one item twice.
    span = _span_json("CTRL", "send", 1)
    span["attributes"] += [{"value": {"stringValue": "x"}}, {"key": 5, "value": {"intValue": 1}}]
    record = {
        "timeUnixNano": str(NS + 2_000_000),
        "traceId": T2,
        "attributes": [
            *_attr_list(stage="REPO", action="add", actor="u2", source="client-u2"),
            "not an attribute",
            {"key": "x", "value": {"kvlistValue": {"values": [{"value": {"intValue": 1}}]}}},
        ],
    }
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [{"value": {"stringValue": "chat"}}]},
                "scopeSpans": [{"spans": [span]}],
            }
        ],
        "resourceLogs": [{"scopeLogs": [{"logRecords": [record]}]}],
    }
    good = {"resourceSpans": [{"scopeSpans": [{"spans": [_span_json("CTRL", "send", 3)]}]}]}
    data = orjson.dumps(good) + b"\n" + orjson.dumps(doc) + b"\n"
    got = collect([MemorySource(data, name="x.jsonl", format="otlp")])
    rows = got.events.collect().select("line", "stage", "action", "trace_id", "actor", "seq")
    assert rows.rows() == [
        (1, "CTRL", "send", T2, "u1", 5),
        (2, "CTRL", "send", T2, "u1", 5),
        (2, "REPO", "add", T2, "u2", None),
    ]
    i = got.inputs
    assert (i.lines, i.events, i.ignored, i.malformed) == (2, 3, 0, 0)
    assert i.warnings == [
        "x.jsonl: 5 OTLP attributes without a key were skipped; their spans and records were "
        "kept (first: line 2, resourceSpans[0].resource)"
    ]


@pytest.mark.parametrize("content_type", ["application/json", "application/x-protobuf"])
def test_receiver_counts_attributes_without_a_key_and_warns_the_exporter(
    receiver: Any, content_type: str
) -> None:
    rx, out = receiver
    span = _span_json("CTRL", "send", 1)
    span["attributes"] += [{"value": {"stringValue": "x"}}]
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [span]}]}]}
    if content_type == "application/json":
        body = orjson.dumps(doc)
    else:
        from google.protobuf.json_format import ParseDict
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        body = ParseDict(doc, ExportTraceServiceRequest()).SerializeToString()
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        r = client.post("/v1/traces", content=body, headers={"Content-Type": content_type})
    warning = (
        "1 attribute(s) without a key skipped (first: resourceSpans[0].scopeSpans[0].spans[0])"
    )
    if content_type == "application/json":
        assert r.json() == {"partialSuccess": {"rejectedSpans": "0", "errorMessage": warning}}
    else:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceResponse,
        )

        resp = ExportTraceServiceResponse.FromString(r.content)
        assert (resp.partial_success.rejected_spans, resp.partial_success.error_message) == (
            0,
            warning,
        )
    assert (rx.events, rx.malformed, rx.keyless) == (1, 0, 1)
    assert collect([out]).events.collect().select("stage", "action", "seq").rows() == [
        ("CTRL", "send", 5)
    ]


def test_a_trace_id_of_no_form_is_said_not_dropped(tmp_path: Path) -> None:
    spans = [_span_json("CTRL", "send", n) for n in range(4)]
    spans[0]["traceId"], spans[1]["traceId"] = "xyz", T2[:31]  # (review 19a: unsaid)
    spans[3]["traceId"] = "AAAAAAAAAAAAAAAAAAAAAA=="  # all zeros: OTLP's "not set" (19c)
    export = tmp_path / "export.json"
    export.write_bytes(orjson.dumps({"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}))
    got = collect([export])
    assert got.events.collect().get_column("trace_id").to_list() == [None, None, T2, None]
    assert got.inputs.warnings == [
        f"{export}: 2 events have an invalid trace_id; it was left empty"
    ]


def test_a_span_with_no_time_is_refused_not_written(receiver: Any) -> None:
    rx, out = receiver
    timeless = _span_json("CTRL", "send", 0)
    del timeless["startTimeUnixNano"]
    body = {
        "resourceSpans": [{"scopeSpans": [{"spans": [_span_json("CTRL", "send", 1), timeless]}]}]
    }
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        reply = client.post("/v1/traces", json=body)
    # (review 19a: a 200 {}, and a line written that no reader could place)
    assert reply.json() == {
        "partialSuccess": {
            "rejectedSpans": "1",
            "errorMessage": "resourceSpans[0].scopeSpans[0].spans[1]: no startTimeUnixNano: a "
            "span with no time",
        }
    }
    got = collect([out])
    assert (got.inputs.events, got.inputs.malformed) == (1, 0)


def test_tracekits_own_spans_alone_name_the_broadcasts_recipients(
    receiver: Any, tmp_path: Path
) -> None:
    # Review 24a: tracekit's spans carried no recipients, so an analysis of spans alone took
    # the expected deliveries from membership: drops for the wrong people, none for the one
    # listed who never got the message. Real SDK spans, through the OTLP/HTTP exporter.
    import tracekit
    from tracekit.analyzers import analyze

    rx, out = receiver
    provider = _tracer_provider(rx.url)
    tracekit.configure(service="chat", sink=tmp_path / "app.jsonl", otel=provider)
    with tracekit.message(T1, conv_id="c1"):
        with tracekit.bind(actor="u1"):
            tracekit.emit("CTRL", "send")
            tracekit.emit("REST", "request")
        with tracekit.bind(actor="server"), tracekit.message(msg_id="m1"):
            with tracekit.stage("REST", "persist"):
                tracekit.emit("WS-BROADCAST", "start", recipients=["u2", "u3"])
            for user in ("u2", "u3"):
                tracekit.emit("WS-BROADCAST", "deliver", peer=user)
        with tracekit.bind(actor="u1"), tracekit.message(msg_id="m1"):
            tracekit.emit("REST", "response")
        with tracekit.bind(actor="u2"), tracekit.message(msg_id="m1"):  # u3 never receives it
            for stage, action in (("WS-RECV", "receive"), ("REPO", "add"), ("CTRL", "add")):
                tracekit.emit(stage, action)
    tracekit.shutdown()
    provider.shutdown()
    events = collect([out]).events.collect()
    start = events.filter(pl.col("action") == "start")
    assert start.get_column("recipients").to_list() == [["u2", "u3"]]
    report = analyze(events, grace=timedelta(0))
    assert report.summary["recipients_from"] == {"broadcast": 1, "membership": 0}
    drops = report.findings.filter(pl.col("kind") == "drop")
    assert drops.select("trace_id", "recipient", "stage", "last_seen").rows() == [
        (T1, "u3", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]


def test_an_events_span_outside_any_message_is_its_json_line_read_twice(
    receiver: Any, tmp_path: Path
) -> None:
    # Review 24a: a history load's fetch (no message) had a span in a trace of its own, so
    # read beside its JSON line (no trace id) the two were two events, and a ratio sampler
    # dropped such root spans. Now the span says it is untraced and is always sampled.
    from opentelemetry.sdk.trace.sampling import ParentBased, TraceIdRatioBased

    import tracekit
    from tracekit.analyzers import analyze

    rx, out = receiver
    # every trace started here dropped: only a span with a sampled parent is kept
    provider = _tracer_provider(rx.url, sampler=ParentBased(TraceIdRatioBased(0.0)))
    app = tmp_path / "app.jsonl"
    tracekit.configure(service="chat", source="client-u2", sink=app, otel=provider)
    with tracekit.bind(actor="u2", conv_id="c1"):
        tracekit.emit("REST", "fetch_start")
    with tracekit.message(T1, conv_id="c1"):
        with tracekit.bind(actor="u1"):
            tracekit.emit("CTRL", "send")
            tracekit.emit("REST", "request")
        with tracekit.bind(actor="server"), tracekit.message(msg_id="m1"):
            tracekit.emit("REST", "persist")
            tracekit.emit("WS-BROADCAST", "start", recipients=["u2"])
            tracekit.emit("WS-BROADCAST", "deliver", peer="u2")
        with tracekit.bind(actor="u1"), tracekit.message(msg_id="m1"):
            tracekit.emit("REST", "response")
        with tracekit.bind(actor="u2"), tracekit.message(msg_id="m1"):
            tracekit.emit("WS-RECV", "receive")  # while the page is loading
    with tracekit.bind(actor="u2", conv_id="c1"):
        tracekit.emit("REST", "fetch_end")
    tracekit.shutdown()
    provider.shutdown()
    spans = collect([out]).events.collect()
    fetches = spans.filter(pl.col("action").cast(pl.String).str.starts_with("fetch"))
    assert fetches.select("action", "trace_id", "seq").rows() == [
        ("fetch_start", None, 1),
        ("fetch_end", None, 9),
    ]
    alone = analyze(collect([app]).events, grace=timedelta(0))
    both = analyze(collect([app, out]).events, grace=timedelta(0))
    # every span is its line read again (one run of the copies, all 9 events of the file)
    assert [c["events"] for c in both.summary["copies"]] == [spans.height] == [9]
    key = ["kind", "trace_id", "recipient", "stage", "last_seen"]
    # the seed bug: received while the page loaded, never stored
    assert alone.findings.select(key).rows() == [
        ("drop", T1, "u2", "REPO.add", "WS-RECV.receive"),
        ("race", T1, "u2", "WS-RECV.receive", "WS-RECV.receive"),
    ]
    assert both.findings.select(key).rows() == alone.findings.select(key).rows()


class _FullDisk:
    """A log stream whose writes fail while ``full`` (the JSON sink drops those events)."""

    def __init__(self) -> None:
        self.full, self.lines = True, [b""]

    def write(self, s: bytes) -> int:
        if self.full:
            raise OSError(28, "No space left on device")
        self.lines.append(s)
        return len(s)

    def flush(self) -> None:
        pass


def test_events_the_json_sink_lost_are_no_gap_where_their_spans_are_read(
    receiver: Any, tmp_path: Path
) -> None:
    # Review 24a: the JSON sink lost m1's lines (disk full) and said so with a
    # TRACEKIT.dropped line; the spans hold every event. Read with the spans, the marker was
    # a gap of its own (one placed after m2's receive held m2's path back: its drop
    # unsaid); read alone, the spans lacked the marker's seq (a one-event gap).
    import time

    from chatflow import send_message

    import tracekit
    from tracekit.analyzers import analyze

    rx, out = receiver
    provider = _tracer_provider(rx.url)
    disk = _FullDisk()
    tracekit.configure(service="chat", source="chat-1", sink=disk, otel=provider)

    send_message(T1, msg_id="m1")  # 9 events, lost by the JSON sink
    tracekit.flush()
    disk.full = False
    tracekit.emit("CTRL", "ready")  # (an event of no message: the sink's next write)
    for _ in range(100):  # the sink's report of its loss, written once the disk takes lines
        tracekit.flush()  # (awaited: written while m2 is sent, it would take a seq among m2's)
        if any(b'"TRACEKIT"' in line for line in disk.lines):
            break
        time.sleep(0.01)
    send_message(T2, msg_id="m2", stop_before={"u2": "REPO.add"})  # the real drop
    send_message("3" * 32, msg_id="m3")
    tracekit.shutdown()
    provider.shutdown()
    app = tmp_path / "app.jsonl"
    app.write_bytes(b"".join(disk.lines))
    written = [orjson.loads(line) for line in b"".join(disk.lines).splitlines()]
    # (seqs 1-9 lost by the sink; its report follows the first line written)
    assert [(e["action"], e["seq"], e.get("dropped")) for e in written[:2]] == [
        ("ready", 10, None),
        ("dropped", 11, 9),
    ]

    key = ["kind", "trace_id", "recipient", "stage", "last_seen"]
    drop = ("drop", T2, "u2", "REPO.add", "WS-RECV.receive")
    alone = analyze(collect([app]).events, grace=timedelta(0))
    assert alone.findings.select(key).rows() == [drop, ("log_gap", None, None, None, None)]
    assert alone.findings.get_column("detail")[1].startswith(
        "the log begins at seq 10: 9 earlier event(s) are not in these logs"
    )
    spans = collect([out]).events.collect()
    assert spans.filter(pl.col("stage") == "TRACEKIT").get_column("seq").to_list() == [11]
    for read in (collect([out]).events, collect([app, out]).events):
        assert analyze(read, grace=timedelta(0)).findings.select(key).rows() == [drop]
