"""Log gaps (``seq`` jumps) and clock findings: the analysis of the logs themselves."""

from __future__ import annotations

from typing import Any

import polars as pl

from tracekit.analyzers._findings import evidence, findings
from tracekit.analyzers._paths import Paths

__all__ = ["clock_findings", "log_gaps"]


def log_gaps(paths: Paths, indeterminate: pl.LazyFrame) -> pl.LazyFrame:
    """One finding per seq jump, naming the message paths it leaves undecided."""
    # The lines the gap's own paths need there (only it may hold them): one per message at a
    # message hop, one per recipient and device at a recipient hop. More than the gap lost,
    # and some are drops, which ones unknown (review 23b: a gap of 2 held 7 true drops).
    per_message = [h.id for h in paths.pipeline.hops if h.scope == "message"]
    line = pl.struct(
        "trace_id",
        "stage",
        *(
            pl.when(~pl.col("stage").is_in(per_message)).then(pl.col(c)).alias(c)
            for c in ("recipient", "device")
        ),
    )
    lost = (
        indeterminate.filter(pl.col("status") == "log_gap")
        .with_columns(
            what=pl.when(pl.col("recipient").is_not_null())
            .then(
                pl.format("{} ({} at {})", pl.col("trace_id"), pl.col("recipient"), pl.col("stage"))
            )
            .otherwise(pl.format("{} (at {})", pl.col("trace_id"), pl.col("stage")))
        )
        .group_by(pl.col("gap_source").alias("source"), pl.col("gap_pos").alias("pos_before"))
        .agg(
            n_lost=pl.len(),
            lost=pl.col("what").sort().head(5).str.join(", "),
            # (not a path lines naming no recipient may complete: review 23c)
            needed=line.filter((pl.col("gap_count") == 1) & ~pl.col("unnamed")).n_unique(),
        )
    )
    # what the gap may hold: the events lost there, and those a time window left out
    held = pl.col("missing") + pl.col("outside")
    rows = (
        paths.gaps.lazy()
        # (a jump a reading's time window filled: nothing lost, :mod:`._window`)
        .filter(pl.col("missing").is_null() | (pl.col("missing") > 0))
        .join(lost, on=["source", "pos_before"], how="left")
    )
    return findings(
        rows,
        "log_gap",
        source="source",
        detail=pl.format(
            "{}{}{}",
            # (a lost beginning has no line before it: seq_before -1; events from memory have
            # no file or line at all)
            pl.when(pl.col("missing").is_not_null() & (pl.col("seq_before") == -1))
            .then(
                pl.format(
                    "the log {}begins at seq {}: {} earlier event(s) are not in these logs "
                    "(a log begun mid-traffic: rotated, cut or started late)",
                    # (some before it were left out of the reading: what was read begins there)
                    pl.when(pl.col("outside") > 0).then(pl.lit("read ")).otherwise(pl.lit("")),
                    pl.col("seq_after"),
                    pl.col("missing"),
                )
            )
            .when(pl.col("missing").is_not_null())
            .then(
                pl.format(
                    "seq jumps from {} to {}: {} event(s) lost by the logging",
                    pl.col("seq_before"),
                    pl.col("seq_after"),
                    pl.col("missing"),
                )
            )
            .otherwise(pl.lit("the emitter reported dropping events (TRACEKIT.dropped)")),
            pl.when(pl.col("outside") > 0)
            .then(pl.format("; {} more are outside the time window read", pl.col("outside")))
            .otherwise(pl.lit("")),
            pl.when(pl.col("n_lost").is_not_null())
            .then(
                pl.format(
                    "; {} message path(s) indeterminate, not reported as drops: {}{}{}",
                    pl.col("n_lost"),
                    pl.col("lost"),
                    pl.when(pl.col("n_lost") > 5).then(pl.lit(", ...")).otherwise(pl.lit("")),
                    pl.when(pl.col("needed") > held)
                    .then(
                        pl.format(
                            " (their hops need {} line(s) in it, which may hold {}: at least {} "
                            "of them are drops)",
                            pl.col("needed"),
                            held,
                            pl.col("needed") - held,
                        )
                    )
                    .otherwise(pl.lit("")),
                )
            )
            .otherwise(pl.lit("")),
        ),
        evidence=evidence(("file_before", "line_before"), ("file_after", "line_after")),
        at="t_before",
    )


def _is_reference(paths: Paths, source: str) -> bool:
    """The reference, or that of a part of the logs no pair ties to it."""
    c = paths.clock.get(source)
    return source == paths.reference or (c is not None and c.against == source)


def clock_findings(paths: Paths, negatives: pl.DataFrame) -> pl.LazyFrame:
    p = paths.pipeline
    limit = p.clock_skew.total_seconds() * 1e9
    rows: list[dict[str, object]] = []
    worst: dict[str, dict[str, Any]] = {}  # per source, its most reversed pair
    for r in negatives.sort("worst", "src_a", "src_b").iter_rows(named=True):
        for s in (r["src_a"], r["src_b"]):
            worst.setdefault(s, r)
    for s, c in sorted(paths.clock.items()):
        if _is_reference(paths, s):
            continue
        against = c.against or paths.reference
        off_ms = c.offset_ns / 1e6
        if not c.consistent:
            early = c.lo_ns - c.hi_ns if c.contradiction_ns is None else c.contradiction_ns
            pair = worst.get(s)
            rows.append(
                {
                    "source": s,
                    "detail": (
                        f"clock of {s} contradicts causality: an event is logged "
                        f"{early / 1e6:.1f} ms before its cause"
                        + (f" on {c.contradicted_by}" if c.contradicted_by else "")
                        + " at the offsets every other pair allows; estimated "
                        f"{off_ms:+.1f} ms against {against}"
                        + (_worst_pair(pair) if pair is not None else "")
                    ),
                    **(_pair_lines(pair) if pair is not None else {}),
                }
            )
        elif abs(c.offset_ns) > limit and (
            c.uncertainty_ns is None or abs(c.offset_ns) > c.uncertainty_ns
        ):
            # one-sided (a client that only receives): the offset is a bound, not an estimate
            unc = (
                f"uncertainty unbounded: its {c.samples} causal pair(s) bound the offset on one "
                "side only"
                if c.uncertainty_ns is None
                else f"uncertainty {c.uncertainty_ns / 1e6:.1f} ms, from {c.samples} causal pair(s)"
            )
            rows.append(
                {
                    "source": s,
                    "detail": (
                        f"{s} runs {abs(off_ms):.1f} ms {'ahead of' if off_ms >= 0 else 'behind'} "
                        f"{against} ({unc}); "
                        f"cross-host latencies are corrected for it"
                    ),
                }
            )
    flagged = {r["source"] for r in rows}
    for r in negatives.iter_rows(named=True):
        if r["src_a"] in flagged or r["src_b"] in flagged:
            continue
        # Blame the side that is not the reference.
        src = r["src_a"] if _is_reference(paths, r["src_b"]) else r["src_b"]
        other = r["src_b"] if src == r["src_a"] else r["src_a"]
        flagged.add(src)
        rows.append(
            {
                "source": src,
                "detail": (
                    f"{r['n']} {r['edge']} pair(s) between {other} and {src} are still "
                    f"reversed after clock correction (worst {r['worst'] / 1e6:.1f} ms, trace "
                    f"{r['trace_id']}): clock, not latency"
                ),
                **_pair_lines(r),
            }
        )
    frame = pl.LazyFrame(
        rows,
        schema={
            "source": pl.String, "detail": pl.String, "trace_id": pl.String,
            "file_a": pl.String, "line_a": pl.Int64, "file_b": pl.String, "line_b": pl.Int64,
        },
    )  # fmt: skip
    return findings(
        frame,
        "clock_skew",
        trace_id="trace_id",
        source="source",
        detail="detail",
        evidence=evidence(("file_a", "line_a"), ("file_b", "line_b")),
    )


def _worst_pair(r: dict[str, Any]) -> str:
    """Which pair of a contradiction is the worst: its message and hops (the evidence holds
    its two lines)."""
    return f"; the worst: {r['edge']} of trace {r['trace_id']}, {r['worst'] / 1e6:.1f} ms"


def _pair_lines(r: dict[str, Any]) -> dict[str, Any]:
    """The finding's trace and evidence: the worst pair's message and its two lines."""
    return {k: r[k] for k in ("trace_id", "file_a", "line_a", "file_b", "line_b")}
