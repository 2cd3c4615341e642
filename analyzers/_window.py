"""A reading's time window (the CLI's ``--since``/``--until``): the events it left out on
purpose are no loss of the logs.

Left out by their stamps, they leave seq jumps where the logs lost nothing: every source
read from ``--since`` begins above seq 1, and a stage stamped at its start but written at its
end (``CTRL.send`` after its request) falls outside a window its inner lines are inside, a hole
in the middle (session 23: ``check --since ... --max log_gap=0`` failed on every clean log).
Each gap of :attr:`Paths.gaps` counts only what they do not fill (``missing``, and
``outside`` the rest): a gap with nothing missing is no ``log_gap`` finding. It stays a gap
for the paths whose next hop may be among the left-out events (not read: undecided there),
over their stamps only (review 23: held back from the log's start to its first line, a
drop in a quiet stretch after ``--since`` went unsaid), unless the left-out events say which
hops they are (the CLI gives them all): then a path whose next hop is among them is cut
(:attr:`Paths.outside`, in flight) and the gap holds none (review 26c). Known too, then: a
log the window cut goes on (its end), a re-send whose first trace is outside it is cut, and
the history loads it left out still hold the receives inside it (reviews 26c-26e).
"""

from __future__ import annotations

from dataclasses import replace
from typing import Final

import polars as pl

from tracekit.analyzers._paths import (
    FAILED_LEVELS,
    OUTSIDE_SCHEMA,
    Paths,
    as_text,
    col,
    dropped_markers,
    engine,
    fetch_events,
    hop_window_ns,
    took_ns,
    true_time,
)
from tracekit.analyzers._pipeline import Pipeline
from tracekit.table import canonical_trace_ids

__all__ = ["hops_outside", "left_out_of"]

_KEYS: Final = ["source", "pos_before"]

#: A left-out event's trace id as the paths hold it (an app's own table may log UUIDs:
#: build_paths takes them to the canonical hex, review 26e)
_TRACE: Final = pl.coalesce(
    canonical_trace_ids(pl.col("trace_id").cast(pl.String)), pl.col("trace_id").cast(pl.String)
)


def hops_outside(p: Pipeline, left_out: pl.LazyFrame) -> pl.DataFrame | None:
    """The pipeline's hops among the left-out events (:attr:`Paths.outside`), where they say
    which (``trace_id``, ``stage``, ``action``; the recipient from ``peer``/``actor`` as the
    hop names it); None where they do not (only ``source`` and ``seq`` given)."""
    have = left_out.collect_schema().names()
    if not {"trace_id", "stage", "action"} <= set(have):
        return None
    text: dict[str, pl.Expr] = {
        c: pl.col(c).cast(pl.String) for c in ("stage", "action", "peer", "actor") if c in have
    }
    none = pl.lit(None, dtype=pl.String)
    failed = (
        pl.col("level").is_in(FAILED_LEVELS).fill_null(False) if "level" in have else pl.lit(False)
    )
    frames = [
        left_out.filter(
            (text["stage"] == h.stage)
            & (text["action"] == h.action)
            & pl.col("trace_id").is_not_null()
            & ~failed  # (a failed try is no hop reached: paths never count it)
        ).select(
            trace_id=_TRACE,
            stage=pl.lit(h.id),
            recipient=text.get(h.recipient or "", none) if h.scope == "recipient" else none,
        )
        for h in p.hops
    ]
    return pl.concat(frames).unique().collect(engine=engine())


def _resent_outside(paths: Paths, left_out: pl.LazyFrame) -> pl.DataFrame:
    """Rows of :attr:`Paths.outside` for a re-send not broadcast again whose first trace
    persisted its ``msg_id`` among the left-out events, before the re-send's own persist: its
    fan-out went on under that trace, outside the window (review 26d: a --since between the
    two made the re-send a drop; 26e: a later trace's persist after --until is no first)."""
    p = paths.pipeline
    persist, bcast = p.role("persist"), p.role("broadcast")
    # (without stamps, which persist came first is not known)
    stamped = "timestamp" in left_out.collect_schema().names()
    if persist is None or bcast is None or "msg_id_min" not in paths.msg.columns or not stamped:
        return pl.DataFrame(schema=OUTSIDE_SCHEMA)
    hop, i = p.hop(persist), p.index(persist)
    first = (
        left_out.filter(
            (pl.col("stage").cast(pl.String) == hop.stage)
            & (pl.col("action").cast(pl.String) == hop.action)
            & pl.col("msg_id").is_not_null()
        )
        .select(
            first=_TRACE,
            msg_id=pl.col("msg_id").cast(pl.String),
            source=pl.col("source").cast(pl.String),
            ts=pl.col("timestamp").dt.epoch("ns"),
        )
        .with_columns(t_first=true_time(paths.offsets))
        .drop("source", "ts")
    )
    fan_out = sorted({bcast, *p.descendants(bcast)}, key=p.index)
    return (
        paths.msg.lazy()
        .filter(pl.col(col("n", p.index(bcast))).fill_null(0) == 0)
        .select(
            pl.col("trace_id").cast(pl.String),
            msg_id=pl.col("msg_id_min").cast(pl.String),
            t_own=pl.col(col("t", i)),
        )
        .join(first, on="msg_id")
        .filter((pl.col("trace_id") != pl.col("first")) & (pl.col("t_first") < pl.col("t_own")))
        .select("trace_id")
        .unique()
        .join(pl.LazyFrame({"stage": fan_out}), how="cross")
        .with_columns(recipient=pl.lit(None, dtype=pl.String))
        .collect(engine=engine())
    )


def _fetches_outside(paths: Paths, left_out: pl.LazyFrame) -> Paths:
    """``paths`` with the history fetch lines the window left out among its fetches: a load
    begun before ``--since`` was in flight at a receive inside the window, one ended after
    ``--until`` too (review 26c: the race went unsaid, or read "no end logged"). Lines with
    a ``seq`` only (their log position; a log without seq ranks its lines by time)."""
    have = left_out.collect_schema().names()

    def text(c: str, dtype: type[pl.DataType]) -> pl.Expr:
        return pl.col(c).cast(dtype) if c in have else pl.lit(None, dtype=dtype)

    # (the left-out lines shaped as the other events the paths take their fetches from)
    rest = left_out.filter(pl.col("seq").is_not_null()).select(
        *(pl.col(c).cast(pl.String) for c in ("stage", "action", "source", "actor", "conv_id")),
        ts=pl.col("timestamp").dt.epoch("ns"),
        pos=pl.col("seq").cast(pl.Int64),
        file=text("file", pl.String),
        line=text("line", pl.Int64),
    )
    # Beside the lines read, a source's left-out lines lie before or after them in seq: one
    # among them is another run of a restarted process or a log's other copy (26e: false
    # races), and that source's are left out. Lines read twice count once.
    kept = as_text(paths.sources.lazy().select("source", "seq_min", "seq_max"))
    lines = (
        fetch_events(rest.collect(engine=engine()), paths.pipeline)
        .lazy()
        .unique(["source", "pos"], keep="first", maintain_order=True)
        .join(kept, on="source", how="left")
        .filter(
            ~pl.col("pos").is_between("seq_min", "seq_max").fill_null(False).any().over("source")
        )
        .drop("seq_min", "seq_max")
        .collect(engine=engine())
    )
    if lines.is_empty():
        return paths
    fetches = pl.concat(
        [paths.fetches, lines.select(paths.fetches.columns)], how="vertical_relaxed"
    )
    return replace(paths, fetches=fetches)


def _ends_outside(paths: Paths, left_out: pl.LazyFrame) -> Paths:
    """``paths`` whose sources' logs end no sooner than their left-out events: a log the
    window cut goes on (review 26d: a device whose lines after ``--until`` were left out
    read as a log ending inside the grace window, its drop in flight)."""
    last = (
        left_out.select(pl.col("source").cast(pl.String), ts=pl.col("timestamp").dt.epoch("ns"))
        .with_columns(t=true_time(paths.offsets))
        .group_by("source")
        .agg(t_out=pl.col("t").max())
    )
    sources = (
        paths.sources.lazy()
        .with_columns(pl.col("source").cast(pl.String).alias("_name"))
        .join(last, left_on="_name", right_on="source", how="left")
        .with_columns(t_end=pl.max_horizontal("t_end", "t_out"))
        .drop("_name", "t_out")
        .collect(engine=engine())
    )
    t_end = sources.get_column("t_end").max()
    return replace(
        paths, sources=sources, t_end=int(t_end) if isinstance(t_end, int) else paths.t_end
    )


def left_out_of(paths: Paths, left_out: pl.LazyFrame, outside: pl.DataFrame | None = None) -> Paths:
    """``paths`` with its gaps' counts less the events of ``left_out`` inside them: ``source``
    and ``seq``, and where given ``file`` and ``line`` (a left-out event counts for a gap
    only between its two lines: a restarted source numbers its runs alike, and another run's
    event would fill it) and ``timestamp`` and ``duration_ms`` (the stamps a gap they fill
    holds paths over; without them it holds them as a lost stretch of the log does)."""
    have = left_out.collect_schema().names()
    if outside is None:
        outside = hops_outside(paths.pipeline, left_out)
    if outside is not None:
        if "msg_id" in have:
            outside = pl.concat([outside, _resent_outside(paths, left_out)])
        paths = replace(paths, outside=outside)
    if "timestamp" in have and outside is not None:  # (the paths it cuts known: 26e)
        paths = _ends_outside(paths, left_out)
    if {"timestamp", "stage", "action", "actor", "conv_id"} <= set(have) and not paths.runs:
        paths = _fetches_outside(paths, left_out)
    numbered = paths.gaps.filter(pl.col("missing").is_not_null())
    if numbered.is_empty():
        return paths
    placed = "file" in have and "line" in have
    stamped = "timestamp" in have
    events = left_out.select(
        pl.col("source").cast(pl.String),
        pl.col("seq").cast(pl.Int64),
        (pl.col("file").cast(pl.String) if placed else pl.lit(None, dtype=pl.String)).alias(
            "o_file"
        ),
        (pl.col("line").cast(pl.Int64) if placed else pl.lit(None, dtype=pl.Int64)).alias("o_line"),
        (pl.col("timestamp").dt.epoch("ns") if stamped else pl.lit(None, dtype=pl.Int64)).alias(
            "ts"
        ),
        took_ns(
            pl.col("duration_ms") if "duration_ms" in have else pl.lit(None, dtype=pl.Float64)
        ).alias("took"),
    ).filter(
        pl.col("source").is_in(numbered.get_column("source").unique().implode())
        & pl.col("seq").is_not_null()
    )
    # between the gap's two lines where both are known in one file (a gap across a rotation
    # or of events from memory: by seq alone)
    file, line = pl.col("o_file"), pl.col("o_line")
    after_first = (
        file.is_null() | pl.col("file_before").is_null() | (file != pl.col("file_before"))
    ) | (line > pl.col("line_before"))
    before_last = (
        file.is_null() | pl.col("file_after").is_null() | (file != pl.col("file_after"))
    ) | (line < pl.col("line_after"))
    inside = (
        events.join(
            numbered.lazy().select(
                *_KEYS,
                "seq_before",
                "seq_after",
                "file_before",
                "line_before",
                "file_after",
                "line_after",
            ),
            on="source",
        )
        .filter(
            pl.col("seq").is_between("seq_before", "seq_after", closed="none")
            & after_first
            & before_last
        )
        .with_columns(t=true_time(paths.offsets))
        .group_by(_KEYS)
        .agg(
            pl.col("seq").n_unique().cast(pl.Int64).alias("filled"),
            # a lost beginning counts from seq 1 (as tracekit does); a log left out from 0 on
            # counts from 0: one more event below its first
            (pl.col("seq") == 0).any().cast(pl.Int64).alias("zero"),
            pl.col("t").min().alias("t_lo"),
            (pl.col("t") + pl.col("took")).max().alias("t_hi"),
        )
        .collect(engine=engine())
    )
    if inside.is_empty():
        return paths
    counted = pl.col("missing") + pl.col("zero").fill_null(0)
    filled = pl.min_horizontal(pl.col("filled").fill_null(0), counted)
    # a gap they fill whole lost nothing: it holds the paths whose next hop may be among
    # them, over their stamps (written up to t_hi, and the time a hop may take after: their
    # clock may not be placed by what the window kept, review 23c: a client 600 ms behind
    # had its receives left out before their delivers, read as drops), no longer from the
    # line before it
    # Where the left-out events say which hops they are, a path whose hop is among them is
    # cut by the window (:attr:`Paths.outside`), and the gap holds none (review 26c: its
    # 5 s reach after a --since held every drop of a short run back, and with nothing
    # missing no finding named them: 11 drops unsaid, every gate passed).
    hop = hop_window_ns(paths.pipeline, None)
    whole = (counted - filled == 0) & pl.col("t_lo").is_not_null()
    reach = pl.lit(None, dtype=pl.Int64) if outside is not None else pl.col("t_hi") + hop
    gaps = (
        paths.gaps.join(inside, on=_KEYS, how="left", maintain_order="left")
        .with_columns(
            missing=counted - filled,
            outside=pl.col("outside") + filled.fill_null(0),
            start_before=pl.when(whole).then("t_lo").otherwise("start_before"),
            end_before=pl.when(whole).then("t_lo").otherwise("end_before"),
            end_after=pl.when(whole).then(reach).otherwise("end_after"),
        )
        .drop("filled", "zero", "t_lo", "t_hi")
    )
    markers = dropped_markers(
        paths.hops.lazy().filter(pl.col("hop").is_not_null()), paths.rest, paths.offsets
    ).with_columns(outside=pl.lit(0, dtype=pl.Int64))
    kept = gaps.filter(pl.col("missing").is_not_null())
    return replace(paths, gaps=pl.concat([kept, markers], how="vertical_relaxed"))
