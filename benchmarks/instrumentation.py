"""Per-event cost of tracekit's instrumentation, next to its baselines, in one run.

    python benchmarks/instrumentation.py [--events 20000] [--repeats 7]
    python benchmarks/instrumentation.py --instructions [--events 2000]
    python benchmarks/instrumentation.py --case stage-span --events 3000   # one case, once

Baselines (same sink: a file under a temp dir):
- floor: ``orjson.dumps`` of the same event + an ISO timestamp + ``write``;
- structlog lean: orjson renderer, BytesLogger, cached logger (the leanest structlog setup);
- bare span: an OpenTelemetry SDK span with 6 attributes (no exporter processor cost);
- structlog event inside a bare span: both baselines in one loop iteration, which is what a
  stage with its span does. On the 2-core machines this costs clearly more than the sum of
  the two measured apart (CPU caches and branch predictors), so both ratios are printed.
Prints medians (us/event) and the ratios the targets are stated in, plus events/spans lost.

``--instructions`` runs every case under ``valgrind --tool=callgrind`` (``--events`` and 0
events, subtracted; every thread counted) and prints instructions per event: a count that
does not depend on what else the machine is running.
"""

from __future__ import annotations

import argparse
import datetime as dt
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field
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


@dataclass
class Run:
    """Shared state of one benchmark run: temp dir and what was lost."""

    tmp: Path
    events_dropped: int = 0
    spans_made: dict[str, int] = field(default_factory=dict)
    spans_exported: dict[str, int] = field(default_factory=dict)

    def provider(self, stack: ExitStack, name: str, calls: Callable[[], int]) -> TracerProvider:
        """An SDK provider with the default BatchSpanProcessor; spans lost are tallied."""
        exporter = CountingExporter()
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))

        def tally() -> None:
            provider.force_flush(30_000)
            provider.shutdown()
            self.spans_made[name] = self.spans_made.get(name, 0) + calls()
            self.spans_exported[name] = self.spans_exported.get(name, 0) + exporter.exported

        stack.callback(tally)
        return provider

    def tracekit(self, stack: ExitStack, **options: object) -> None:
        tracekit.configure(service="bench", **options)  # type: ignore[arg-type]

        def done() -> None:
            tracekit.flush(30)
            self.events_dropped += tracekit.stats()["dropped"]
            tracekit.shutdown()

        stack.callback(done)


class Counter:
    """Wraps a case's function to count calls (spans made, for the loss report)."""

    def __init__(self, fn: Callable[[], None]) -> None:
        self.fn = fn
        self.calls = 0

    def __call__(self) -> None:
        self.calls += 1
        self.fn()


def _lean_logger(run: Run, stack: ExitStack) -> Callable[[], None]:
    structlog.configure(
        processors=[
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.JSONRenderer(serializer=orjson.dumps),
        ],
        logger_factory=structlog.BytesLoggerFactory(
            stack.enter_context((run.tmp / "structlog.jsonl").open("ab"))
        ),
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

    return lean


def case_harness(run: Run, stack: ExitStack) -> Callable[[], None]:
    def empty() -> None:
        return None

    return empty


def case_noop_call(run: Run, stack: ExitStack) -> Callable[[], None]:
    tracekit.shutdown()

    def noop_call() -> None:
        tracekit.stage("REST", "persist", msg_id="m1", conv_id="c1")

    return noop_call


def case_noop_with(run: Run, stack: ExitStack) -> Callable[[], None]:
    tracekit.shutdown()

    def noop_with() -> None:
        with tracekit.stage("REST", "persist", msg_id="m1", conv_id="c1"):
            pass

    return noop_with


def case_noop_emit(run: Run, stack: ExitStack) -> Callable[[], None]:
    tracekit.shutdown()

    def noop_emit() -> None:
        tracekit.emit("CTRL", "send", x=1)

    return noop_emit


def case_floor(run: Run, stack: ExitStack) -> Callable[[], None]:
    floor_file = stack.enter_context((run.tmp / "floor.jsonl").open("ab"))
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

    return floor


def case_structlog(run: Run, stack: ExitStack) -> Callable[[], None]:
    return _lean_logger(run, stack)


def _bare_span(run: Run, stack: ExitStack, name: str, body: Callable[[], None] | None) -> Counter:
    holder: list[Counter] = []
    provider = run.provider(stack, name, lambda: holder[0].calls)
    tracer = provider.get_tracer("bench")
    attrs = {f"a{i}": "v" for i in range(6)}
    if body is None:

        def bare_span() -> None:
            with tracer.start_as_current_span("REST persist", attributes=attrs):
                pass

    else:
        inner = body

        def bare_span() -> None:
            with tracer.start_as_current_span("REST persist", attributes=attrs):
                inner()

    holder.append(Counter(bare_span))
    return holder[0]


def case_bare_span(run: Run, stack: ExitStack) -> Callable[[], None]:
    return _bare_span(run, stack, "bare", None)


def case_structlog_in_span(run: Run, stack: ExitStack) -> Callable[[], None]:
    return _bare_span(run, stack, "structlog in bare", _lean_logger(run, stack))


def case_emit(run: Run, stack: ExitStack) -> Callable[[], None]:
    run.tracekit(stack, source="bench-1", sink=run.tmp / "tracekit.jsonl")

    def tk_emit() -> None:
        tracekit.emit("WS-RECV", "receive", trace_id=TID, conv_id="c1", actor="u2")

    return tk_emit


def _in_message(stack: ExitStack) -> None:
    # The message is bound once, as an app binds it once per message for several stages.
    msg = tracekit.MessageContext(trace_id=TID, conv_id="c1", actor="u2")
    stack.enter_context(tracekit.message(msg))


def case_stage(run: Run, stack: ExitStack) -> Callable[[], None]:
    run.tracekit(stack, source="bench-2", sink=run.tmp / "tracekit.jsonl")
    _in_message(stack)

    def tk_stage() -> None:
        with tracekit.stage("WS-RECV", "receive"):
            pass

    return tk_stage


def case_stage_span(run: Run, stack: ExitStack) -> Callable[[], None]:
    holder: list[Counter] = []
    provider = run.provider(stack, "tracekit", lambda: holder[0].calls)
    run.tracekit(stack, source="bench-3", sink=run.tmp / "tracekit-otel.jsonl", otel=provider)
    _in_message(stack)

    def tk_stage_span() -> None:
        with tracekit.stage("WS-RECV", "receive"):
            pass

    holder.append(Counter(tk_stage_span))
    return holder[0]


Setup = Callable[[Run, ExitStack], Callable[[], None]]
CASES: dict[str, tuple[str, Setup]] = {
    "harness": ("harness: empty function, same loop", case_harness),
    "noop-call": ("unconfigured stage() call", case_noop_call),
    "noop-with": ("unconfigured `with stage()` block", case_noop_with),
    "noop-emit": ("unconfigured emit()", case_noop_emit),
    "floor": ("floor: orjson.dumps + ISO ts + write", case_floor),
    "structlog": ("structlog lean (orjson, BytesLogger, cached)", case_structlog),
    "bare-span": ("bare OTel SDK span, 6 attributes", case_bare_span),
    "structlog-in-span": ("structlog event inside a bare span", case_structlog_in_span),
    "emit": ("tracekit emit(), no OTel", case_emit),
    "stage": ("tracekit stage() in message, no OTel", case_stage),
    "stage-span": ("tracekit stage() in message, with span", case_stage_span),
}


def measure(run: Run, n: int, repeats: int) -> dict[str, float]:
    """Median us/event of every case. The cases take turns (one pass of ``n`` events each,
    ``repeats`` rounds), so a load that comes and goes on the machine hits them alike."""
    samples: dict[str, list[float]] = {key: [] for key in CASES}
    for _ in range(repeats):
        for key, (_label, setup) in CASES.items():
            with ExitStack() as stack:
                fn = setup(run, stack)
                fn()  # warm: caches, the structlog logger, the span name
                samples[key].append(timed(fn, n, 1))
    return {key: statistics.median(values) for key, values in samples.items()}


def report(results: dict[str, float], unit: str, run: Run | None, header: str) -> None:
    width = max(len(label) for label, _ in CASES.values())
    print(f"{'case':<{width}}  {header}")
    for key, value in results.items():
        print(f"{CASES[key][0]:<{width}}  {value:{'10.0f' if unit == 'instr' else '8.3f'}}")
    lean, span, both = results["structlog"], results["bare-span"], results["structlog-in-span"]
    emit, stage_span = results["emit"], results["stage-span"]
    print()
    print(
        f"emit() / structlog lean:                          {emit / lean:5.2f}x  (target <= 1.1x)"
    )
    print(
        f"stage()+span / (structlog + span, apart):         {stage_span / (lean + span):5.2f}x"
        "  (target <= 1.1x)"
    )
    print(f"stage()+span / (structlog event inside the span): {stage_span / both:5.2f}x")
    print(f"baselines together / apart:                       {both / (lean + span):5.2f}x")
    if unit == "us":
        noop = results["noop-call"]
        print(
            f"unconfigured stage() call:                        {noop:5.3f} us"
            f" ({noop - results['harness']:5.3f} us without the harness; target <= 0.3 us)"
        )
    if run is not None:
        print(f"tracekit events dropped by the sink:              {run.events_dropped}")
        lost = ", ".join(
            f"{name} {run.spans_made[name] - run.spans_exported[name]} / {run.spans_made[name]}"
            for name in run.spans_made
        )
        print(f"spans lost by BatchSpanProcessor:                 {lost}")


def instructions(n: int) -> dict[str, float]:
    """Instructions per event of every case, counted by callgrind (all threads)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("--instructions needs valgrind")

    def count(key: str, events: int) -> int:
        proc = subprocess.run(
            [
                valgrind,
                "--tool=callgrind",
                "--callgrind-out-file=/dev/null",
                sys.executable,
                __file__,
                "--case",
                key,
                "--events",
                str(events),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        match = re.search(r"I\s+refs:\s+([\d,]+)", proc.stderr)
        if match is None:
            raise SystemExit(f"no instruction count from callgrind for {key}:\n{proc.stderr}")
        return int(match.group(1).replace(",", ""))

    out = {}
    for key in CASES:
        out[key] = (count(key, n) - count(key, 0)) / n
        print(f"  {key}: {out[key]:.0f}", file=sys.stderr)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=None)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--case", choices=sorted(CASES), help="run one case once (for callgrind)")
    parser.add_argument("--instructions", action="store_true", help="count with callgrind")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="tk-bench-") as tmp:  # (each run left ~1 MB)
        _run(args, Run(Path(tmp)))


def _run(args: argparse.Namespace, run: Run) -> None:
    if args.case:
        n = args.events if args.events is not None else 2_000
        with ExitStack() as stack:
            fn = CASES[args.case][1](run, stack)
            fn()
            for _ in range(n):
                fn()
        return
    if args.instructions:
        n = args.events if args.events is not None else 2_000
        report(instructions(n), "instr", None, f"instructions/event (callgrind, {n} events)")
        return
    n = args.events if args.events is not None else 20_000
    results = measure(run, n, args.repeats)
    report(results, "us", run, f"us/event (median of {args.repeats} rounds x {n})")


if __name__ == "__main__":
    main()
