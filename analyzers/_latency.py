"""Latency per pipeline edge and end to end, on clock-corrected time; outliers and SLO breaches.

Outliers use the modified z-score (0.6745 * (x - median) / MAD) of the log latency, per edge,
only on the slow side, only with ``min_samples`` samples, and only when the latency also exceeds
the median by an absolute floor: that floor alone decides when the spread (MAD) is zero, and it
keeps sub-millisecond jitter from ever being an "outlier". A cross-host latency that is still
negative after correction is not a latency: it is left out and reported as a clock finding.
"""

from __future__ import annotations

import math
from typing import Any

import polars as pl

from tracekit.analyzers._findings import evidence, findings, ms
from tracekit.analyzers._paths import Paths, col
from tracekit.analyzers._pipeline import END_TO_END

__all__ = ["latency_samples", "latency_stats", "outliers_and_slo"]

_E2E = END_TO_END


def latency_samples(paths: Paths) -> pl.LazyFrame:
    """One row per measured edge: ``edge`` ("A->B" or "end_to_end"), ``lat`` (ns) and evidence."""
    p = paths.pipeline
    frames: list[pl.LazyFrame] = []
    pairs_edges = list(p.edges)
    final = p.role("final")
    if final is not None:
        pairs_edges.append((p.roles["send"], final))
    for n, (a, b) in enumerate(pairs_edges):
        ia, ib = p.index(a), p.index(b)
        rcp = p.hop(b).scope == "recipient"
        frame = paths.pairs.lazy() if rcp else paths.msg.lazy()
        name = _E2E if n >= len(p.edges) else f"{a}->{b}"
        frames.append(
            frame.filter(
                (pl.col(col("n", ia)).fill_null(0) > 0) & (pl.col(col("n", ib)).fill_null(0) > 0)
            ).select(
                pl.lit(name).alias("edge"),
                pl.lit(a).alias("from"),
                pl.lit(b).alias("to"),
                "trace_id",
                (pl.col("recipient") if rcp else pl.lit(None, dtype=pl.String)).alias("recipient"),
                "conv_id",
                (pl.col(col("t", ib)) - pl.col(col("t", ia))).alias("lat"),
                pl.col(col("t", ib)).alias("t"),
                pl.col(col("src", ia)).alias("src_a"),
                pl.col(col("src", ib)).alias("src_b"),
                pl.col(col("file", ia)).alias("file_a"),
                pl.col(col("line", ia)).alias("line_a"),
                pl.col(col("file", ib)).alias("file_b"),
                pl.col(col("line", ib)).alias("line_b"),
            )
        )
    return pl.concat(frames)


def _stats(lat_ms: pl.Expr) -> list[pl.Expr]:
    return [
        lat_ms.count().alias("count"),
        lat_ms.quantile(0.5, "linear").alias("p50_ms"),
        lat_ms.quantile(0.95, "linear").alias("p95_ms"),
        lat_ms.quantile(0.99, "linear").alias("p99_ms"),
        lat_ms.max().alias("max_ms"),
    ]


def _r(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 3)


def latency_stats(samples: pl.DataFrame, paths: Paths) -> dict[str, Any]:
    """The report's ``latency`` section: per edge in pipeline order, then end to end."""
    ok = samples.lazy().filter(pl.col("lat") >= 0)
    stats = ok.group_by("edge").agg(*_stats(pl.col("lat") / 1e6)).collect()
    by_edge = {r["edge"]: r for r in stats.iter_rows(named=True)}

    def block(name: str) -> dict[str, Any]:
        r = by_edge.get(name)
        if r is None:
            return {"count": 0, "p50_ms": None, "p95_ms": None, "p99_ms": None, "max_ms": None}
        return {
            "count": int(r["count"]),
            **{k: _r(r[k]) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")},
        }

    hops = [{"from": a, "to": b, **block(f"{a}->{b}")} for a, b in paths.pipeline.edges]
    return {"hops": hops, "end_to_end": block(_E2E)}


def outliers_and_slo(samples: pl.LazyFrame, paths: Paths) -> pl.LazyFrame:
    p = paths.pipeline
    floor = p.outlier_floor.total_seconds() * 1e3
    lat_ms = pl.col("lat") / 1e6
    ok = samples.filter(pl.col("lat") >= 0).with_columns(
        lat_ms=lat_ms, log=lat_ms.clip(lower_bound=0.01).log()
    )
    per_edge = (
        ok.filter(pl.col("edge") != _E2E)
        .group_by("edge")
        .agg(n=pl.len(), med_log=pl.col("log").median(), med_ms=pl.col("lat_ms").median())
    )
    mad = (
        ok.join(per_edge, on="edge")
        .group_by("edge")
        .agg(mad=(pl.col("log") - pl.col("med_log")).abs().median())
    )
    scored = (
        ok.join(per_edge.join(mad, on="edge"), on="edge")
        .with_columns(z=0.6745 * (pl.col("log") - pl.col("med_log")) / pl.col("mad"))
        .filter(
            (pl.col("n") >= p.outlier_min_samples)
            & (pl.col("lat_ms") - pl.col("med_ms") > floor)
            & ((pl.col("mad") == 0) | (pl.col("z") > p.outlier_z))
        )
    )
    rcp = (
        pl.when(pl.col("recipient").is_not_null())
        .then(pl.format(" for recipient {}", pl.col("recipient")))
        .otherwise(pl.lit(""))
    )
    outl = findings(
        scored,
        "latency_outlier",
        trace_id="trace_id",
        recipient="recipient",
        stage="to",
        last_seen="from",
        conv_id="conv_id",
        source="src_b",
        detail=pl.format(
            "{} took {} ms{} (median {} ms, modified z-score {})",
            pl.col("edge"),
            ms(pl.col("lat")),
            rcp,
            pl.col("med_ms").round(1).cast(pl.String),
            pl.when(pl.col("mad") == 0)
            .then(pl.lit("inf"))
            .otherwise(pl.col("z").round(1).cast(pl.String)),
        ),
        evidence=evidence(("file_a", "line_a"), ("file_b", "line_b")),
        at="t",
    )
    if not p.slo:
        return outl
    thresholds = pl.LazyFrame(
        {
            "edge": list(p.slo),
            "slo_ns": [int(v.total_seconds() * 1e9) for v in p.slo.values()],
        }
    )
    breach = ok.join(thresholds, on="edge").filter(pl.col("lat") > pl.col("slo_ns"))
    slo = findings(
        breach,
        "slo_breach",
        trace_id="trace_id",
        recipient="recipient",
        stage="to",
        last_seen="from",
        conv_id="conv_id",
        source="src_b",
        detail=pl.format(
            "{}{} took {} ms{}, above the {} ms SLO",
            pl.col("edge").replace(_E2E, "end to end: "),
            pl.when(pl.col("edge") == _E2E)
            .then(pl.format("{} -> {}", pl.col("from"), pl.col("to")))
            .otherwise(pl.lit("")),
            ms(pl.col("lat")),
            rcp,
            ms(pl.col("slo_ns")),
        ),
        evidence=evidence(("file_a", "line_a"), ("file_b", "line_b")),
        at="t",
    )
    return pl.concat([outl, slo])


def negative_latencies(samples: pl.LazyFrame) -> pl.LazyFrame:
    """Cross-host pairs still reversed after correction, per source pair."""
    return (
        samples.filter((pl.col("lat") < 0) & (pl.col("src_a") != pl.col("src_b")))
        .group_by("src_a", "src_b")
        .agg(
            n=pl.len(),
            worst=pl.col("lat").min(),
            edge=pl.col("edge").sort().first(),
            file_b=pl.col("file_b").sort().first(),
            line_b=pl.col("line_b").sort().first(),
        )
        .sort("src_a", "src_b")
    )
