"""Per-event cost of tracekit's instrumentation, next to its baselines, in one run.

    python benchmarks/instrumentation.py [--events 20000] [--repeats 7]

Baselines (same sink: a file under a temp dir):
- floor: ``orjson.dumps`` of the same event + an ISO timestamp + ``write``;
- structlog lean: orjson renderer, BytesLogger, cached logger (the leanest structlog setup);
- bare span: an OpenTelemetry SDK span with 6 attributes (no exporter processor cost).
Prints medians (us/event) and the ratios the targets are stated in, plus events/spans lost.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import orjson
import structlog
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SpanExporter, SpanExportResult

import tracekit

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


class CountingExporter(SpanExporter):
    def __init__(self) -> None:
        self.exported = 0

    def export(self, spans: object) -> SpanExportResult:
        self.exported += len(spans)  # type: ignore[arg-type]
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        return None


def timed(fn: Callable[[], None], n: int, repeats: int) -> float:
    """Median us per call over ``repeats`` runs of ``n`` calls."""
    samples = []
    for _ in range(repeats):
        start = time.perf_counter_ns()
        for _ in range(n):
            fn()
        samples.append((time.perf_counter_ns() - start) / n / 1000)
    return statistics.median(samples)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    n, repeats = args.events, args.repeats
    tmp = Path(tempfile.mkdtemp(prefix="tk-bench-"))
    rows: list[tuple[str, float]] = []

    # Unconfigured: the cost an app pays for carrying instrumentation it hasn't turned on.
    tracekit.shutdown()

    def noop_call() -> None:
        tracekit.stage("REST", "persist", msg_id="m1", conv_id="c1")

    def noop_with() -> None:
        with tracekit.stage("REST", "persist", msg_id="m1", conv_id="c1"):
            pass

    rows.append(("unconfigured stage() call", timed(noop_call, n, repeats)))
    rows.append(("unconfigured `with stage()` block", timed(noop_with, n, repeats)))
    rows.append(
        ("unconfigured emit()", timed(lambda: tracekit.emit("CTRL", "send", x=1), n, repeats))
    )

    # Floor: render + write by hand.
    floor_file = (tmp / "floor.jsonl").open("ab")
    seq = iter(range(10**9))

    def floor() -> None:
        ts = dt.datetime.now(dt.UTC).isoformat().replace("+00:00", "Z")
        floor_file.write(
            orjson.dumps(
                {
                    "timestamp": ts,
                    "stage": "WS-RECV",
                    "action": "receive",
                    "event": "WS-RECV receive",
                    "trace_id": TID,
                    "conv_id": "c1",
                    "actor": "u2",
                    "level": "info",
                    "source": "client-u2",
                    "seq": next(seq),
                },
                option=orjson.OPT_APPEND_NEWLINE,
            )
        )

    rows.append(("floor: orjson.dumps + ISO ts + write", timed(floor, n, repeats)))

    # structlog, leanest setup.
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory((tmp / "structlog.jsonl").open("ab")),
        cache_logger_on_first_use=True,
    )
    log = structlog.get_logger()

    def lean() -> None:
        log.info(
            "WS-RECV receive",
            stage="WS-RECV",
            action="receive",
            trace_id=TID,
            conv_id="c1",
            actor="u2",
            source="client-u2",
            seq=1,
        )

    structlog_us = timed(lean, n, repeats)
    rows.append(("structlog lean (orjson, BytesLogger, cached)", structlog_us))

    # A bare OpenTelemetry SDK span with 6 attributes.
    exporter = CountingExporter()
    provider = TracerProvider()
    processor = BatchSpanProcessor(exporter)
    provider.add_span_processor(processor)
    tracer = provider.get_tracer("bench")
    attrs = {f"a{i}": "v" for i in range(6)}

    def bare_span() -> None:
        with tracer.start_as_current_span("REST persist", attributes=attrs):
            pass

    span_us = timed(bare_span, n, repeats)
    rows.append(("bare OTel SDK span, 6 attributes", span_us))

    # tracekit, configured.
    tracekit.configure(service="bench", source="bench-1", sink=tmp / "tracekit.jsonl")

    def tk_emit() -> None:
        tracekit.emit("WS-RECV", "receive", trace_id=TID, conv_id="c1", actor="u2")

    emit_us = timed(tk_emit, n, repeats)
    rows.append(("tracekit emit(), no OTel", emit_us))

    msg = tracekit.MessageContext(trace_id=TID, conv_id="c1", actor="u2")

    def tk_stage_no_span() -> None:
        with tracekit.stage("WS-RECV", "receive"):
            pass

    # The message is bound once, as an app binds it once per message for several stages.
    with tracekit.message(msg):
        stage_us = timed(tk_stage_no_span, n, repeats)
    rows.append(("tracekit stage() in message, no OTel", stage_us))
    tracekit.flush(30)
    events_dropped = tracekit.stats()["dropped"]

    exporter2 = CountingExporter()
    provider2 = TracerProvider()
    provider2.add_span_processor(BatchSpanProcessor(exporter2))
    tracekit.configure(
        service="bench", source="bench-2", sink=tmp / "tracekit-otel.jsonl", otel=provider2
    )

    def tk_stage_span() -> None:
        with tracekit.stage("WS-RECV", "receive"):
            pass

    with tracekit.message(msg):
        stage_span_us = timed(tk_stage_span, n, repeats)
    rows.append(("tracekit stage() in message, with span", stage_span_us))
    tracekit.flush(30)
    events_dropped += tracekit.stats()["dropped"]
    tracekit.shutdown()
    processor.force_flush(30_000)
    provider2.force_flush(30_000)
    spans_made = n * repeats

    width = max(len(name) for name, _ in rows)
    print(f"{'case':<{width}}  us/event (median of {repeats} x {n})")
    for name, us in rows:
        print(f"{name:<{width}}  {us:8.3f}")
    print()
    print(f"emit() / structlog lean:              {emit_us / structlog_us:5.2f}x  (target <= 1.1x)")
    print(
        f"stage()+span / (structlog + span):    {stage_span_us / (structlog_us + span_us):5.2f}x"
        "  (target <= 1.1x)"
    )
    print(f"unconfigured stage() call:            {rows[0][1]:5.3f} us (target <= 0.3 us)")
    print(f"tracekit events dropped by the sink:  {events_dropped}")
    print(
        f"spans lost by BatchSpanProcessor:     bare {spans_made - exporter.exported} / "
        f"{spans_made}, tracekit {spans_made - exporter2.exported} / {spans_made}"
    )


if __name__ == "__main__":
    main()
