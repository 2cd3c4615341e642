"""Review D, instrumentation core: each test states exactly what must land in the sink, the
spans and the stats (sampling, hostile values with OpenTelemetry on, generator stages, trace id
checks, lost events, nested redaction, configure validation, cancellation, reserved keys,
NaN and other values JSON cannot hold)."""

from __future__ import annotations

import asyncio
import collections
import decimal
import io
import json
import math
import random
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import tracekit
from tracekit import _core
from tracekit.testing import capture

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def otel() -> tuple[TracerProvider, InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def trace_of(span: ReadableSpan) -> str:
    assert span.context is not None
    return f"{span.context.trace_id:032x}"


# 1. sample= decides on the rightmost 56 bits: random in UUIDv4/v7 ids (hex digit 16 is not).


def test_sampling_keeps_the_asked_share_of_uuid_trace_ids() -> None:
    rng = random.Random(7)
    ids = [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(4000)]
    for sample in (0.1, 0.5, 0.9):
        with capture(sample=sample) as events:
            for client_id in ids:
                with tracekit.message(client_id):
                    tracekit.emit("CTRL", "send")
        assert abs(len(events) / len(ids) - sample) < 0.03, (sample, len(events))


def test_sampling_threshold_is_on_the_rightmost_56_bits() -> None:
    # digit 16 (the UUID variant nibble) no longer matters; digits 18..31 decide
    below = "0" * 16 + "ff" + "7" + "f" * 13  # rightmost 56 bits just under half
    above = "0" * 16 + "00" + "8" + "0" * 13  # exactly half: not kept
    with capture(sample=0.5) as events:
        for tid in (below, above):
            with tracekit.message(tid):
                tracekit.emit("CTRL", "send")
        assert tracekit.stats()["sampled_out"] == 1
    assert [e["trace_id"] for e in events] == [below]


# 3. A field whose str() raises costs neither the event nor the span.


class BadStr:
    def __str__(self) -> str:
        raise RuntimeError("boom")

    def __repr__(self) -> str:
        return "<BadStr>"

    def __bool__(self) -> bool:
        raise RuntimeError("no bool")


def test_field_with_raising_str_keeps_event_and_span_with_otel() -> None:
    provider, exporter = otel()
    with capture(otel=provider) as events, tracekit.message(TID):
        with tracekit.stage("REST", "persist", msg_id=BadStr()):
            pass
        tracekit.emit("WS-BROADCAST", "deliver", peer=BadStr(), actor=BadStr())
        with tracekit.stage("CTRL", "send") as s:
            s.set(msg_id=BadStr())
        assert tracekit.stats()["internal_errors"] == 0
        assert tracekit.stats()["dropped"] == 0
    assert [(e["stage"], e["action"], e["seq"]) for e in events] == [
        ("REST", "persist", 1),
        ("WS-BROADCAST", "deliver", 2),
        ("CTRL", "send", 3),
    ]
    assert events[0]["msg_id"] == "<BadStr>" and events[1]["peer"] == "<BadStr>"
    spans = {s.name: s for s in exporter.get_finished_spans()}
    assert sorted(spans) == ["CTRL send", "REST persist", "WS-BROADCAST deliver"]
    odd = "<BadStr object, str() failed>"
    assert spans["REST persist"].attributes["messaging.message.id"] == odd  # type: ignore[index]
    deliver = spans["WS-BROADCAST deliver"].attributes
    assert deliver is not None
    assert (deliver["tracekit.peer"], deliver["tracekit.actor"]) == (odd, odd)
    assert [e["span_id"] for e in events] == [
        f"{spans[n].context.span_id:016x}"  # type: ignore[union-attr]
        for n in ("REST persist", "WS-BROADCAST deliver", "CTRL send")
    ]


def test_span_start_failure_costs_the_span_not_the_event(monkeypatch: pytest.MonkeyPatch) -> None:
    provider, exporter = otel()
    with capture(otel=provider) as events, tracekit.message(TID):
        spans = _core._active().spans  # type: ignore[union-attr]

        def broken(*_a: Any, **_k: Any) -> Any:
            raise RuntimeError("tracer broken")

        monkeypatch.setattr(spans, "start", broken)
        with tracekit.stage("REST", "persist"):
            pass
        tracekit.emit("CTRL", "send")
        assert tracekit.stats()["internal_errors"] == 2
    assert [(e["event"], e.get("status"), e.get("span_id")) for e in events] == [
        ("REST persist", "ok", None),
        ("CTRL send", None, None),
    ]
    assert exporter.get_finished_spans() == ()


# 6. An exception whose __str__ raises: the event is written, the span ended with ERROR.


class Weird(Exception):
    def __str__(self) -> str:
        raise RuntimeError("no str for you")


@pytest.mark.parametrize("use_otel", [False, True])
def test_exception_with_raising_str_keeps_event_and_ends_span(use_otel: bool) -> None:
    provider, exporter = otel()
    with capture(otel=provider if use_otel else False) as events, tracekit.message(TID):
        with pytest.raises(Weird):
            with tracekit.stage("REST", "persist"):
                raise Weird()
        assert tracekit.stats()["internal_errors"] == 0
    expected = "Weird: <Weird object, str() failed>"
    assert [(e["status"], e["level"], e["error"]) for e in events] == [("error", "error", expected)]
    spans = exporter.get_finished_spans()
    if use_otel:
        assert [(s.name, s.status.status_code, s.status.description) for s in spans] == [
            ("REST persist", StatusCode.ERROR, expected)
        ]
        assert [ev.name for ev in spans[0].events] == ["exception"]
    else:
        assert spans == ()


# 7. @stage on generator functions spans the iteration.


def test_generator_stage_spans_the_iteration_and_records_errors() -> None:
    @tracekit.stage("REPO", "fetch_start")
    def pages() -> Iterator[int]:
        time.sleep(0.03)
        yield 1
        time.sleep(0.03)
        raise ValueError("failed while iterating")

    @tracekit.stage("REPO", "fetch_end")
    def counted(n: int) -> Iterator[int]:
        got = yield n
        yield got
        return None

    import inspect

    assert inspect.isgeneratorfunction(pages)
    with capture() as events, tracekit.message(TID):
        with pytest.raises(ValueError, match="failed while iterating"):
            assert list(pages()) == [1]
        gen = counted(5)
        assert next(gen) == 5
        assert gen.send(7) == 7  # send() reaches the body
        assert list(gen) == []
    first, second = events
    assert (first["status"], first["error"]) == ("error", "ValueError: failed while iterating")
    assert first["duration_ms"] >= 55
    assert (second["stage"], second["action"], second["status"]) == ("REPO", "fetch_end", "ok")


def test_generator_stage_closed_early_is_not_an_error_and_span_only_current_in_body() -> None:
    provider, exporter = otel()

    @tracekit.stage("REPO", "fetch_start")
    def pages() -> Iterator[int]:
        with tracekit.stage("REPO", "inner"):  # nests in the generator's span
            yield 1
        yield 2

    with capture(otel=provider) as events, tracekit.message(TID):
        for page in pages():
            with tracekit.stage("CTRL", "render", page=page):  # the consumer's: not nested
                pass
            break
    assert [(e["action"], e["status"]) for e in events] == [
        ("render", "ok"),
        ("inner", "closed"),
        ("fetch_start", "closed"),
    ]
    spans = {s.name: s for s in exporter.get_finished_spans()}
    gen_id = spans["REPO fetch_start"].context.span_id  # type: ignore[union-attr]
    assert spans["REPO inner"].parent.span_id == gen_id  # type: ignore[union-attr]
    assert spans["CTRL render"].parent.span_id != gen_id  # type: ignore[union-attr]
    assert all(s.status.status_code is StatusCode.UNSET for s in spans.values())


def test_async_generator_stage_spans_the_iteration() -> None:
    @tracekit.stage("REPO", "fetch_end")
    async def pages() -> AsyncIterator[int]:
        await asyncio.sleep(0.03)
        yield 1
        await asyncio.sleep(0.03)
        raise ValueError("failed while iterating (async)")

    @tracekit.stage("REPO", "fetch_start")
    async def endless() -> AsyncIterator[int]:
        while True:
            yield 1

    async def main() -> None:
        with pytest.raises(ValueError):
            async for _ in pages():
                pass
        gen = endless()
        async for _ in gen:
            break
        await gen.aclose()

    import inspect

    assert inspect.isasyncgenfunction(pages)
    with capture() as events, tracekit.message(TID):
        asyncio.run(main())
    first, second = events
    assert (first["status"], first["error"]) == (
        "error",
        "ValueError: failed while iterating (async)",
    )
    assert first["duration_ms"] >= 55
    assert (second["action"], second["status"], second.get("error")) == (
        "fetch_start",
        "closed",
        None,
    )


# 10. Trace ids given to stage/emit (or in message(**fields)) are checked like message()'s.


def test_trace_ids_given_to_stage_and_emit_are_normalised() -> None:
    provider, exporter = otel()
    with capture(otel=provider) as events:
        with tracekit.stage("CTRL", "send", trace_id=str(uuid.UUID(TID))):
            pass
        tracekit.emit("CTRL", "send2", trace_id=TID.upper())
        with tracekit.message(TID, trace_id="not-a-trace"):  # the message's own id wins
            tracekit.emit("REPO", "add")
            with tracekit.stage("REPO", "persist"):
                pass
        tracekit.emit("CTRL", "send3", trace_id="tmp-1", actor="u1")
        assert tracekit.stats()["bad_trace_ids"] == 1
    derived = tracekit.schema.derived_trace_id("u1\x1ftmp-1")
    assert [(e["trace_id"], e.get("bad_trace_id")) for e in events] == [
        (TID, None),
        (TID, None),
        (TID, None),
        (TID, None),
        (derived, "tmp-1"),
    ]
    assert [trace_of(s) for s in exporter.get_finished_spans()] == [TID] * 4 + [derived]


# 12. Events lost to internal errors are drops: counted, reported, flush() False.


class FlakySink:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.n = 0
        self.dropped = 0

    def submit(self, event: dict[str, Any], line: bytes) -> None:
        self.n += 1
        if self.n == 2:
            raise OSError("transient")
        self.events.append(dict(event))

    def flush(self, timeout: float = 2.0) -> bool:
        return True

    def close(self, timeout: float = 2.0) -> None:
        pass


def test_sink_submit_failure_is_a_reported_drop() -> None:
    sink = FlakySink()
    tracekit.configure(service="svc", source="svc-1", sink=sink)
    with tracekit.message(TID):
        for _ in range(3):
            tracekit.emit("CTRL", "send")
    assert [(e["stage"], e["seq"], e.get("lost_seq")) for e in sink.events] == [
        ("CTRL", 1, None),
        ("TRACEKIT", 3, 2),
        ("CTRL", 4, None),
    ]
    assert sink.events[1]["reason"] == "sink.submit raised OSError: transient"
    assert tracekit.stats()["dropped"] == 1
    assert tracekit.flush() is False
    assert tracekit.flush() is True  # nothing lost since


def test_internal_failure_while_writing_is_a_reported_drop(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = _core.iso_utc

    def failing_once(ns: int) -> str:
        calls.append(ns)
        if len(calls) == 1:
            raise RuntimeError("clock bug")
        return real(ns)

    monkeypatch.setattr(_core, "iso_utc", failing_once)
    out = io.StringIO()
    tracekit.configure(service="svc", source="svc-1", sink=out)
    with tracekit.message(TID):
        with tracekit.stage("REST", "persist"):
            pass
        tracekit.emit("CTRL", "send")
    assert tracekit.flush() is False
    rows = lines_of(out)
    # the lost stage event took seq 1 (every loss is a seq jump the analysis can read)
    assert [(e["stage"], e["action"], e["seq"], e.get("dropped")) for e in rows] == [
        ("TRACEKIT", "dropped", 2, 1),
        ("CTRL", "send", 3, None),
    ]
    assert (rows[0]["reason"], rows[0]["lost_seq"]) == (
        "internal error: RuntimeError: clock bug",
        1,
    )
    assert tracekit.stats()["dropped"] == 1


# 14. Redaction reaches nested values and other spellings of the keys.


def test_redaction_of_nested_and_differently_cased_keys() -> None:
    secret = "my password is hunter2"
    payload = {"type": "message", "text": secret, "meta": ({"Body": secret},)}
    with capture() as events, tracekit.message(TID):
        tracekit.emit("CTRL", "send", payload=payload)
        tracekit.emit("CTRL", "send", messages=[{"content": secret}, {"role": "user"}])
        tracekit.emit("CTRL", "send", Text=secret, MESSAGE_TEXT=secret, messageText=secret)
        tracekit.emit("CTRL", "send", payload={"tExT": secret})
        tracekit.emit("CTRL", "send", text=None, n=[1, 2])
        tracekit.emit("CTRL", "send", payload=collections.defaultdict(int, body=secret))
    mine = {"payload", "messages", "Text", "MESSAGE_TEXT", "messageText", "text", "n"}
    assert [{k: v for k, v in e.items() if k in mine} for e in events] == [
        {"payload": {"type": "message", "text": "[redacted]", "meta": [{"Body": "[redacted]"}]}},
        {"messages": [{"content": "[redacted]"}, {"role": "user"}]},
        {"Text": "[redacted]", "MESSAGE_TEXT": "[redacted]", "messageText": "[redacted]"},
        {"payload": {"tExT": "[redacted]"}},
        {"text": None, "n": [1, 2]},
        {"payload": {"body": "[redacted]"}},
    ]
    # the app's own objects are not changed
    assert payload == {"type": "message", "text": secret, "meta": ({"Body": secret},)}


def test_redaction_writes_a_cycle_holding_text_without_the_text() -> None:
    cyclic: dict[str, Any] = {"text": "secret"}
    cyclic["self"] = cyclic
    out = io.StringIO()
    tracekit.configure(service="svc", source="s1", sink=out)
    tracekit.emit("CTRL", "send", payload=cyclic)
    assert tracekit.flush()
    (row,) = lines_of(out)
    assert row["payload"] == {"text": "[redacted]", "self": "<cycle>"}
    assert row["unserialisable"] == ["payload"]


# 15. configure() refuses wrong types with ConfigError.


@pytest.mark.parametrize(
    "bad",
    [
        {"sample": "0.5"},
        {"sample": True},
        {"redact": None},
        {"redact": "text"},
        {"redact": [1]},
        {"processors": None},
        {"processors": [1]},
        {"max_queue": "x"},
        {"max_queue": 0},
        {"level": None},
        {"source": 5},
    ],
)
def test_configure_refuses_wrong_types_with_config_error(bad: dict[str, Any]) -> None:
    with pytest.raises(tracekit.ConfigError):
        tracekit.configure(service="svc", sink=io.StringIO(), **bad)
    assert not tracekit.is_configured()


# 16. GeneratorExit and CancelledError are no errors.


def test_generator_exit_and_cancellation_are_not_errors() -> None:
    provider, exporter = otel()

    def pages() -> Iterator[int]:
        with tracekit.stage("REPO", "fetch_end"):
            yield 1
            yield 2

    async def main() -> None:
        it = pages()
        next(it)
        it.close()
        with pytest.raises(TimeoutError):
            async with asyncio.timeout(0.01):
                async with tracekit.stage("REST", "request"):
                    await asyncio.sleep(1)

    with capture(otel=provider) as events, tracekit.message(TID):
        asyncio.run(main())
    assert [(e["action"], e["status"], e["level"], e.get("error")) for e in events] == [
        ("fetch_end", "closed", "info", None),
        ("request", "cancelled", "info", None),
    ]
    spans = exporter.get_finished_spans()
    assert [(s.name, s.status.status_code, list(s.events)) for s in spans] == [
        ("REPO fetch_end", StatusCode.UNSET, []),
        ("REST request", StatusCode.UNSET, []),
    ]


# 17. Fields named timestamp/stage/action do not replace the computed values.


def test_reserved_field_names_are_kept_aside() -> None:
    provider, exporter = otel()
    with capture(otel=provider) as events, tracekit.message(TID):
        with tracekit.stage("CTRL", "send", timestamp="2020-01-01T00:00:00Z"):
            pass
        tracekit.emit("WS-RECV", "receive", stage="client-ui", action="x")
    send, receive = events
    assert send["timestamp"].startswith("20") and send["timestamp"] != "2020-01-01T00:00:00Z"
    assert send["field_timestamp"] == "2020-01-01T00:00:00Z"
    assert (receive["stage"], receive["action"], receive["event"]) == (
        "WS-RECV",
        "receive",
        "WS-RECV receive",
    )
    assert (receive["field_stage"], receive["field_action"]) == ("client-ui", "x")
    assert [s.name for s in exporter.get_finished_spans()] == ["CTRL send", "WS-RECV receive"]


def test_fields_named_like_what_a_stage_computes_are_kept_aside() -> None:
    # status, duration_ms, span_id and, on a failure, error and level are the stage's own:
    # an app field of that name was overwritten, silently
    provider, _ = otel()
    app = {"status": "queued", "duration_ms": "n/a", "span_id": "app-1", "error": "none"}
    with capture(otel=provider) as events, tracekit.message(TID):
        with tracekit.stage("REST", "persist", **app):
            pass
        with pytest.raises(ValueError), tracekit.stage("REST", "response", level="warning"):
            raise ValueError("boom")
    ok, failed = events
    assert (ok["status"], ok["field_status"], ok["field_duration_ms"]) == ("ok", "queued", "n/a")
    assert ok["field_span_id"] == "app-1"
    assert len(ok["span_id"]) == 16 and isinstance(ok["duration_ms"], float)
    assert (ok["error"], "field_error" in ok) == ("none", False)  # not computed when it is ok
    assert (failed["level"], failed["field_level"], failed["error"]) == (
        "error",
        "warning",
        "ValueError: boom",
    )


# 18. Values JSON cannot hold are written as text and listed under `unserialisable`.


def test_nan_inf_bytes_sets_decimal_are_text_and_listed() -> None:
    out = io.StringIO()
    tracekit.configure(service="svc", source="s1", sink=out)
    tracekit.emit(
        "CTRL",
        "send",
        latency_ms=math.nan,
        budget=math.inf,
        floor=-math.inf,
        raw=b"\x00ab",
        ids={1},
        price=decimal.Decimal("1.10"),
        nested={"x": [math.nan]},
        ok=1.5,
        none=None,
    )
    tracekit.emit("CTRL", "plain", none=None, ok=1.5)
    assert tracekit.flush()
    odd, plain = lines_of(out)
    assert {k: odd[k] for k in ("latency_ms", "budget", "floor", "raw", "ids", "price")} == {
        "latency_ms": "NaN",
        "budget": "Infinity",
        "floor": "-Infinity",
        "raw": "b'\\x00ab'",
        "ids": "{1}",
        "price": "Decimal('1.10')",
    }
    assert (odd["nested"], odd["ok"], odd["none"]) == ({"x": ["NaN"]}, 1.5, None)
    assert odd["unserialisable"] == [
        "latency_ms",
        "budget",
        "floor",
        "raw",
        "ids",
        "price",
        "nested",
    ]
    assert "unserialisable" not in plain


def test_processors_see_nested_text_redacted_and_stage_fields_cache_is_per_message() -> None:
    seen: list[Any] = []

    def spy(_l: Any, _m: str, event: Any) -> Any:
        seen.append(event.get("payload"))
        return event

    with capture(processors=[spy]) as events:
        tracekit.emit("CTRL", "send", payload={"Body": "secret"})
        # a message whose own fields are nested: its field-less stages are redacted too
        with tracekit.message(TID, meta={"content": "secret"}):
            with tracekit.stage("REST", "persist"):
                pass
            with tracekit.stage("REST", "persist"):
                pass
            tracekit.emit("CTRL", "send")
        with tracekit.message(TID):  # a plain one after it: no stale answer
            with tracekit.stage("REST", "persist"):
                pass
            tracekit.emit("CTRL", "send", payload=[{"text": "secret"}], ms=math.nan)
    assert seen[0] == {"Body": "[redacted]"}
    assert [e.get("meta") for e in events] == [
        None,
        {"content": "[redacted]"},
        {"content": "[redacted]"},
        {"content": "[redacted]"},
        None,
        None,
    ]
    assert (events[-1]["payload"], events[-1]["ms"]) == ([{"text": "[redacted]"}], "NaN")
