"""Benchmark: full analysis of a generated history vs a raw polars read and a DuckDB query.

    python benchmarks/analyze.py --events 1000000 [--seed 7] [--dir /tmp/tracekit-bench]

Generates (once, cached in ``--dir``) a history of about ``--events`` events with injected
faults (``tracekit.synth``), writes it as JSON lines and as a Parquet cache, then times, each in
its own child process (so peak RSS is that step's own):

- ``raw``: ``pl.scan_ndjson(path, schema=...).collect()``, the floor for reading the file;
- ``duckdb``: a hand-written SQL query doing the simple part of the job (group by trace, count
  stages per recipient, flag missing / duplicate hops);
- ``analyze``: reading the JSON lines into the event table + ``tracekit.analyzers.analyze``.
  The reader is ``tracekit.collectors.collect`` as the CLI calls it (``--reader collectors``,
  the default: ``columns=INPUT_COLUMNS``, the columns the analysis reads) or this
  file's own ``read_events`` (``--reader own``: ``scan_ndjson`` with the schema, ISO timestamps
  parsed, file/line added), written before the collectors landed;
- ``parquet``: a second analysis of the same file: ``collect`` with ``cache_dir`` (a hit on
  the collectors' Parquet cache, filled by a run before the timed ones) + ``analyze``
  (events/s).

Prints a table and, with ``--json``, one JSON object (for docs/perf/analyze.md).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from _measure import peak_rss_mb

RAW_SCHEMA = {
    "timestamp": "String",
    "stage": "String",
    "action": "String",
    "event": "String",
    "trace_id": "String",
    "msg_id": "String",
    "conv_id": "String",
    "actor": "String",
    "peer": "String",
    "source": "String",
    "seq": "Int64",
    "span_id": "String",
    "recipients": "List[String]",
    "level": "String",
    "duration_ms": "Float64",
}
FAULTS = [
    "drop",
    "drop",
    "race_drop",
    "duplicate",
    "msg_id",
    "reorder",
    "slow",
    "delay",
    "seq_gap",
    "log_loss",
    "skew",
    "unexpected",
    "orphan",
    "race",
    "race_overwrite",
]

DUCKDB_SQL = """
WITH ev AS (
  SELECT trace_id, stage || '.' || action AS hop,
         CASE WHEN stage || '.' || action = 'WS-BROADCAST.deliver' THEN peer
              WHEN stage IN ('WS-RECV', 'REPO') OR stage || '.' || action = 'CTRL.add'
              THEN actor END AS recipient
  FROM read_json('{path}', format = 'newline_delimited', columns = {{
    trace_id: 'VARCHAR', stage: 'VARCHAR', action: 'VARCHAR', actor: 'VARCHAR', peer: 'VARCHAR'}})
  WHERE trace_id IS NOT NULL
), per_hop AS (
  SELECT trace_id, recipient, hop, count(*) AS n FROM ev GROUP BY ALL
), per_recipient AS (
  SELECT trace_id, recipient, count(DISTINCT hop) AS hops, max(n) AS most FROM per_hop
  GROUP BY ALL
)
SELECT trace_id, recipient,
       CASE WHEN recipient IS NULL THEN hops < 5 ELSE hops < 4 END AS missing,
       most > 1 AS duplicate
FROM per_recipient
WHERE (CASE WHEN recipient IS NULL THEN hops < 5 ELSE hops < 4 END) OR most > 1
"""


def _pl_schema() -> Any:
    import polars as pl

    types = {
        "String": pl.String,
        "Int64": pl.Int64,
        "Float64": pl.Float64,
        "List[String]": pl.List(pl.String),
    }
    return pl.Schema({k: types[v] for k, v in RAW_SCHEMA.items()})


def read_events(path: Path) -> Any:
    """JSON lines -> the event table (a stand-in for the collectors, see the module doc)."""
    import polars as pl

    from tracekit.table import EVENT_SCHEMA

    return (
        pl.scan_ndjson(path, schema=_pl_schema())
        .with_columns(
            pl.col("timestamp").str.to_datetime(
                "%Y-%m-%dT%H:%M:%S%.fZ", time_unit="ns", time_zone="UTC"
            ),
            pl.lit(str(path)).alias("file"),
            # with_row_index on a scan serialises the reader; int_range does not
            pl.int_range(1, pl.len() + 1, dtype=pl.Int64).alias("line"),
        )
        .select(list(EVENT_SCHEMA))
    )


def _child(mode: str, path: Path, reader: str = "collectors") -> dict[str, Any]:
    import polars as pl

    t0 = time.perf_counter()
    out: dict[str, Any] = {"mode": mode}
    if mode == "raw":
        df = pl.scan_ndjson(path, schema=_pl_schema()).collect()
        out["rows"] = df.height
    elif mode == "duckdb":
        import duckdb

        con = duckdb.connect()
        con.execute(f"SET threads TO {os.cpu_count() or 1}")
        rows = con.execute(DUCKDB_SQL.format(path=path)).fetchall()
        out["rows"] = len(rows)
    elif mode in ("analyze", "parquet"):
        from tracekit.analyzers import INPUT_COLUMNS, analyze

        inputs = None
        if mode == "parquet":
            from tracekit.collectors import collect

            collected = collect(
                [str(path)], cache_dir=str(path.parent / "cache"), columns=INPUT_COLUMNS
            )
            out["cached"] = collected.inputs.cached
            lf, inputs = collected.events, collected.inputs.to_dict()
        elif reader == "collectors":
            from tracekit.collectors import collect

            collected = collect([str(path)], columns=INPUT_COLUMNS)
            lf, inputs = collected.events, collected.inputs.to_dict()
        else:
            lf = read_events(path)
        report = analyze(lf, inputs=inputs)
        out["rows"] = report.findings.height
        out["summary"] = {k: v for k, v in report.summary.items() if v}
    else:
        raise SystemExit(f"unknown mode {mode}")
    out["seconds"] = round(time.perf_counter() - t0, 3)
    if mode in ("analyze", "parquet"):  # after the clock: what was found, to check it
        out["found"] = sorted(map(list, report.findings.select(_KEY).iter_rows()), key=repr)
    out["peak_rss_mb"] = peak_rss_mb()
    return out


#: What a finding is checked on against the generator's truth.
_KEY: tuple[str, ...] = ("kind", "trace_id", "recipient", "stage", "last_seen")


def _prepare(events: int, seed: int, folder: Path) -> tuple[Path, int, list[list[Any]]]:
    folder.mkdir(parents=True, exist_ok=True)
    # the fault list and the generator's code are part of the name: a history generated for
    # another list, or by another generator (seq from 0, say), is not reused
    import tracekit.synth

    made_by = Path(tracekit.synth.__file__).read_bytes()
    faults_tag = hashlib.sha1(",".join(FAULTS).encode() + made_by).hexdigest()[:8]
    jsonl = folder / f"synth-{events}-{seed}-{faults_tag}.jsonl"
    meta = jsonl.with_suffix(".meta.json")
    if not (jsonl.exists() and meta.exists() and "truth" in json.loads(meta.read_text())):
        from tracekit.synth import generate

        t0 = time.perf_counter()
        # ~21 events per message with conversations of 2-6 members, all members named.
        synth = generate(
            seed,
            messages=max(events // 21, 60),
            users=max(events // 3000, 30),
            conversations=max(events // 2000, 3),
            max_members=6,
            faults=FAULTS,
        )
        n = synth.write_jsonl(jsonl)
        truth = sorted(([getattr(e, k) for k in _KEY] for e in synth.truth), key=repr)
        meta.write_text(json.dumps({"events": n, "faults": len(truth), "truth": truth}))
        print(
            f"generated {n} events in {time.perf_counter() - t0:.1f} s -> {jsonl}", file=sys.stderr
        )
    info = json.loads(meta.read_text())
    return jsonl, int(info["events"]), info["truth"]


def _compile_tracekit() -> None:
    """tracekit's bytecode, as an install has it: where PYTHONDONTWRITEBYTECODE is set (as on
    the machine these numbers come from), every timed run would compile its modules again
    (70 ms of an analysis, against 18 ms to import them compiled)."""
    import compileall

    import tracekit
    import tracekit.analyzers
    import tracekit.collectors

    # each package on its own: compile_dir does not follow the symlinked ones
    for package in (tracekit, tracekit.analyzers, tracekit.collectors):
        compileall.compile_dir(Path(package.__file__).resolve().parent, quiet=1)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--events", type=int, default=1_000_000)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--dir", type=Path, default=Path("/tmp/tracekit-bench"))
    ap.add_argument("--repeat", type=int, default=1, help="runs per mode; the best is kept")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--reader", choices=("collectors", "own"), default="collectors")
    ap.add_argument("--child", nargs=2, metavar=("MODE", "PATH"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        print(json.dumps(_child(args.child[0], Path(args.child[1]), args.reader)))
        return 0
    jsonl, n, truth = _prepare(args.events, args.seed, args.dir)
    _compile_tracekit()
    results: dict[str, dict[str, Any]] = {}
    modes = (("raw", jsonl), ("duckdb", jsonl), ("analyze", jsonl), ("parquet", jsonl))
    # the collectors' cache filled (not timed): the "parquet" runs are second analyses
    subprocess.run(
        [sys.executable, __file__, "--child", "parquet", str(jsonl)],
        check=True,
        capture_output=True,
    )
    # Rounds interleave the modes, so a burst of load from other jobs hits all of them alike.
    for _ in range(args.repeat):
        for mode, path in modes:
            proc = subprocess.run(
                [sys.executable, __file__, "--reader", args.reader, "--child", mode, str(path)],
                check=True,
                capture_output=True,
                text=True,
            )
            res = json.loads(proc.stdout.strip().splitlines()[-1])
            if mode not in results or res["seconds"] < results[mode]["seconds"]:
                results[mode] = res
    raw, duck, full, pq = (results[m] for m in ("raw", "duckdb", "analyze", "parquet"))
    summary = {
        "events": n,
        "reader": args.reader,
        "injected_faults": len(truth),
        "jsonl_mb": round(jsonl.stat().st_size / 2**20, 1),
        "cpus": os.cpu_count(),
        "raw_s": raw["seconds"],
        "duckdb_s": duck["seconds"],
        "analyze_s": full["seconds"],
        "parquet_analyze_s": pq["seconds"],
        "analyze_vs_raw": round(full["seconds"] / raw["seconds"], 2),
        "analyze_vs_duckdb": round(full["seconds"] / duck["seconds"], 2),
        "parquet_events_per_s": round(n / pq["seconds"]),
        "parquet_cached": pq.get("cached"),
        "parquet_findings": pq["rows"],
        "peak_rss_mb": {m: r["peak_rss_mb"] for m, r in results.items()},
        "findings": full["rows"],
        # exactly the generator's truth (kind, trace, recipient, stage, last seen), both runs
        "findings_are_the_truth": full["found"] == truth and pq["found"] == truth,
        "summary": full.get("summary"),
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        for k, v in summary.items():
            print(f"{k:>22}: {v}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
