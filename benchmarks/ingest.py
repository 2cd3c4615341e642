"""Ingest benchmark: tracekit.collectors vs a raw ``pl.scan_ndjson(...).collect()``.

    python benchmarks/ingest.py                      # 5M events (~1.3 GB), 1M legacy lines
    python benchmarks/ingest.py --events 1000000 --legacy-lines 1000000

Every measurement runs in a fresh subprocess (peak RSS is that process's ``VmHWM``, see ``_measure.py``), one
after the other, on files generated once in a temporary directory. Rows:

- ``raw scan_ndjson``: ``pl.scan_ndjson(path).collect()`` (schema inferred, timestamps left as text);
- ``collect jsonl``: ``collect([path]).events.collect()`` (timestamps parsed to UTC ns, checked,
  counted, evidence columns);
- ``collect jsonl, cached``: the same with ``cache_dir`` on a second run (Parquet hit);
- ``collect jsonl, cached, analysis columns``: that hit as a second analysis reads it
  (``columns=tracekit.analyzers.INPUT_COLUMNS``, what ``tracekit analyze --cache-dir`` asks for);
- ``collect legacy``: the bracket-text reader on a legacy log, linking included.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _measure import peak_rss_mb

REPO = Path(__file__).resolve().parents[1]


def _generate_jsonl(path: Path, n: int) -> None:
    import polars as pl

    users = 50
    i = pl.int_range(0, n, eager=True)
    msg = i // 10
    ts = pl.datetime(2026, 11, 25, time_zone="UTC") + pl.duration(microseconds=i * 997)
    stages = [
        "CTRL",
        "REST",
        "REST",
        "REST",
        "WS-BROADCAST",
        "WS-BROADCAST",
        "WS-RECV",
        "REPO",
        "CTRL",
        "REST",
    ]
    actions = [
        "send",
        "request",
        "persist",
        "response",
        "start",
        "deliver",
        "receive",
        "add",
        "add",
        "fetch_start",
    ]
    # Real hex ids (invalid ones would send every row down the linking path).
    blob = os.urandom(16 * (n // 10 + 1)).hex()
    trace_ids = pl.Series([blob[k : k + 32] for k in range(0, len(blob), 32)])
    blob = os.urandom(8 * n).hex()
    span_ids = pl.Series([blob[k : k + 16] for k in range(0, len(blob), 16)])
    df = pl.DataFrame(
        {"i": i, "msg": msg, "trace_id": trace_ids.gather(msg), "span_id": span_ids}
    ).with_columns(
        ts.dt.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").alias("timestamp"),
        pl.col("i").mod(10).replace_strict(list(range(10)), stages).alias("stage"),
        pl.col("i").mod(10).replace_strict(list(range(10)), actions).alias("action"),
    )
    df = df.select(
        "timestamp",
        "stage",
        "action",
        (pl.col("stage") + " " + pl.col("action")).alias("event"),
        "trace_id",
        (pl.lit("m") + pl.col("msg").cast(pl.String)).alias("msg_id"),
        (pl.lit("c") + (pl.col("msg") % 100).cast(pl.String)).alias("conv_id"),
        (pl.lit("u") + (pl.col("msg") % users).cast(pl.String)).alias("actor"),
        pl.when(pl.col("action") == "deliver").then(pl.lit("u2")).alias("peer"),
        (pl.lit("client-u") + (pl.col("msg") % users).cast(pl.String)).alias("source"),
        (pl.col("i") // users).alias("seq"),
        "span_id",
        pl.lit(0.12).alias("duration_ms"),
        pl.lit("ok").alias("status"),
        pl.lit("info").alias("level"),
    )
    df.write_ndjson(path)


def _generate_legacy(path: Path, n: int) -> None:
    lines_per_msg = 8
    out = []
    for k in range(n // lines_per_msg + 1):
        u = f"{k:08x}-0000-4000-8000-{k:012x}"
        m = f"msg-{k}"
        t = f"2026-11-25T10:{(k // 60_000) % 60:02d}:{(k // 1000) % 60:02d}.{k % 1000:03d}Z"
        out += [
            f'{t} stdout F [CTRL] sendMessage: "hello {k}" clientMsgId={u}',
            f"{t} stdout F [REST] Sending message: clientMsgId={u} conversationId=conv-{k % 50}",
            f"{t} stdout F [REST-SEND] Message sent: id={m} clientMsgId={u}",
            f"{t} stdout F [WS-BROADCAST] Sending to userId=u2 id={m}",
            f"{t} stdout F [WS-RECV] Received event type=message:created id={m}",
            f"{t} stdout F [REPO] Added message to store id={m}",
            f"{t} stdout F [CTRL] Message added to UI id={m}",
            f"{t} stdout F heartbeat ok {k}",
        ]
    path.write_text("\n".join(out[:n]) + "\n")


def _child(kind: str, path: str, cache: str) -> None:
    import polars as pl

    if kind != "raw":  # imports are not part of the measurement, as for the raw read
        import tracekit.collectors._collect
        import tracekit.collectors._jsonl
        import tracekit.collectors._text  # noqa: F401
        from tracekit.analyzers import INPUT_COLUMNS
    start = time.perf_counter()
    if kind == "raw":
        rows = pl.scan_ndjson(path).collect().height
    else:
        from tracekit.collectors import collect

        # "analysis": the columns the analysis reads, as `tracekit analyze` collects them
        columns = INPUT_COLUMNS if kind == "analysis" else None
        got = collect([path], cache_dir=cache or None, columns=columns)
        rows = got.events.collect().height
        if kind == "legacy":
            rows = got.inputs.lines
    seconds = time.perf_counter() - start
    peak = peak_rss_mb()
    print(json.dumps({"seconds": seconds, "rows": rows, "peak_mb": peak}))


def _run(kind: str, path: Path, cache: Path | None = None) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, __file__, "--child", kind, str(path), str(cache or "")]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=True)
    result: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=5_000_000, help="JSON-lines events")
    parser.add_argument("--legacy-lines", type=int, default=1_000_000, help="legacy text lines")
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(*args.child)
        return
    with tempfile.TemporaryDirectory(prefix="tracekit-bench-") as tmp:
        d = Path(tmp)
        jsonl, legacy, cache = d / "events.jsonl", d / "legacy.log", d / "cache"
        t = time.perf_counter()
        _generate_jsonl(jsonl, args.events)
        _generate_legacy(legacy, args.legacy_lines)
        size = jsonl.stat().st_size / 1e6
        print(
            f"generated {args.events:,} events ({size:,.0f} MB) and {args.legacy_lines:,} "
            f"legacy lines in {time.perf_counter() - t:.1f} s",
            flush=True,
        )
        rows = [
            ("raw scan_ndjson", _run("raw", jsonl)),
            ("collect jsonl", _run("collect", jsonl)),
        ]
        _run("collect", jsonl, cache)  # fills the cache (not timed)
        rows.append(("collect jsonl, cached", _run("collect", jsonl, cache)))
        # a second analysis reads the cache's analysis columns (CLI: `--cache-dir`)
        rows.append(("collect jsonl, cached, analysis columns", _run("analysis", jsonl, cache)))
        rows.append(("collect legacy", _run("legacy", legacy)))
    base = rows[0][1]
    print()
    print("| measurement | rows | seconds | rows/s | peak RSS MB | time vs raw | RSS vs raw |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name, r in rows:
        ratio_t = r["seconds"] / base["seconds"] if name != "collect legacy" else float("nan")
        ratio_m = r["peak_mb"] / base["peak_mb"] if name != "collect legacy" else float("nan")
        print(
            f"| {name} | {int(r['rows']):,} | {r['seconds']:.2f} | {r['rows'] / r['seconds']:,.0f} "
            f"| {r['peak_mb']:,.0f} | {ratio_t:.2f}x | {ratio_m:.2f}x |".replace("nanx", "-")
        )


if __name__ == "__main__":
    main()
