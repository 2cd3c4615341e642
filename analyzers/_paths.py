"""Rebuild every message's path: events -> hops -> one wide row per message and per recipient.

This is the only pass over the whole event table. It keeps, per message and per hop, the
first occurrence (input order, i.e. log order) with its source, position and row (``r*``, where
a finding finds its file and line), and how many times the hop happened; per (message,
recipient) the same for the recipient hops. The
group-bys find only each hop's count and first row; the row's columns are then gathered. Clock
offsets are solved on these rows and every ``t*`` column of :class:`Paths` is on corrected time
(integer ns, ``true = ts - offset``). The finding functions only read these small frames.
"""

from __future__ import annotations

import math
import re
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from contextvars import ContextVar, copy_context
from dataclasses import dataclass, field, replace
from datetime import timedelta
from typing import Final, Literal, NamedTuple, TypeVar

import polars as pl

from tracekit._arrow import Capsules
from tracekit.analyzers._clock import ClockEstimate, majority_reference, solve_offsets
from tracekit.analyzers._pipeline import Pipeline, default_pipeline
from tracekit.errors import SchemaError
from tracekit.schema import META_STAGE
from tracekit.table import (
    TEXT_SCHEMA,
    TIMESTAMP_DTYPE,
    canonical_trace_ids,
    is_canonical_trace_id,
)

try:
    from tracekit.analyzers import _passes  # type: ignore[attr-defined]
except ImportError:  # not compiled (it is optional): polars groups the hops
    _passes = None

__all__ = [
    "INPUT_COLUMNS",
    "Paths",
    "build_paths",
    "conformed",
    "dropped_markers",
    "engine",
    "engine_for",
    "gap_start",
    "hop_events",
    "hop_window_ns",
    "in_context",
    "lost_beginning",
    "rows_by_code",
    "same_device",
    "took_ns",
    "true_time",
]

#: The event table's columns the analysis reads (the only pass over the table, in
#: :func:`build_paths`): a reader may leave the others out (``collect(columns=...)``).
INPUT_COLUMNS: Final = (
    "timestamp", "stage", "action", "trace_id", "msg_id", "conv_id", "actor", "peer",
    "source", "seq", "recipients", "level", "duration_ms", "file", "line",
)  # fmt: skip

_I64: Final = pl.Int64
_PER_HOP: Final = ("t", "src", "pos", "r")
_NAMED: Final = -1  # marker rows: a recipient named by the broadcast
_CHUNKS: Final = 32  # the event table is copied into one chunk beyond this many
_NAMED_SCHEMA: Final = pl.Schema(
    {"trace_id": pl.Categorical(), "recipient": pl.Categorical(), "hop": pl.Int32()}
)


#: A restarted source's positions: ``run << RUN_BITS | seq`` (seqs in [0, 2**RUN_BITS)).
RUN_BITS: Final = 40


def run_of(paths: Paths) -> list[pl.Expr]:
    """``run``, which run of its source a ``pos`` belongs to, where a source restarted (else
    nothing: windows over one more key cost the races a third more time at 5M events)."""
    return [(pl.col("pos") // (1 << RUN_BITS)).alias("run")] if paths.runs else []


Engine = Literal["auto", "in-memory"]
_ENGINE: ContextVar[Engine] = ContextVar("tracekit_engine", default="auto")
#: From this many events, the analysis' queries run on polars' default engine (streaming);
#: below, in memory. The streaming engine sets up each query in 0.15-0.5 ms where the
#: in-memory one takes 0.01-0.13 ms, and an analysis is ~390 queries, most of them small;
#: on the large ones it is the faster (1M events: 0.50 -> 0.43 s in memory; 5M: 1.64 ->
#: 1.80 s in memory; a one-message analysis 98 -> 80 ms; session 14).
_STREAMED: Final = 2_500_000
_T = TypeVar("_T")


def engine() -> Engine:
    """The engine for the analysis' queries (``collect(engine=engine())``): set for the
    analysis' size by :func:`engine_for`; polars' own default outside one."""
    return _ENGINE.get()


@contextmanager
def engine_for(events: int) -> Iterator[None]:
    """:func:`engine` for an analysis of ``events`` events, inside the block (and the threads
    it starts through :func:`in_context`)."""
    token = _ENGINE.set("in-memory" if events < _STREAMED else "auto")
    try:
        yield
    finally:
        _ENGINE.reset(token)


def in_context(fn: Callable[[], _T]) -> Callable[[], _T]:
    """``fn`` to run on another thread with this one's :func:`engine` (a pool's thread does
    not inherit the submitting thread's context)."""
    ctx = copy_context()
    return lambda: ctx.run(fn)


def col(kind: str, i: int) -> str:
    """Name of a per-hop column, e.g. ``t3`` (first corrected ns of hop 3), ``n3`` (count)."""
    return f"{kind}{i}"


#: :attr:`Paths.copies`
COPIES_SCHEMA: Final = pl.Schema(
    {
        "source": pl.String,
        "events": pl.Int64,
        "file": pl.String,
        "line": pl.Int64,
        "kept_file": pl.String,
        "kept_line": pl.Int64,
    }
)


OUTSIDE_SCHEMA: Final = pl.Schema(
    {"trace_id": pl.String, "stage": pl.String, "recipient": pl.String}
)
FAILED_SCHEMA: Final = pl.Schema(
    {
        "trace_id": pl.String,
        "hop": pl.Int32,
        "recipient": pl.String,
        "source": pl.String,
        "file": pl.String,
        "line": pl.Int64,
    }
)


@dataclass(frozen=True)
class Paths:
    pipeline: Pipeline
    #: every event, in log order, with ``hop`` (index; null: not a hop of the pipeline),
    #: ``recipient``, ``ts`` and ``pos``: the table's own columns, not a copy of its hop events
    #: (one ~230 MB copy at 5M events). Read hop events through :meth:`hop_rows` or
    #: :meth:`hops_of`; a ``row`` is an index into this frame.
    hops: pl.DataFrame
    #: one row per trace id (``tc``: its code in ``hops``' trace_id where that is Categorical,
    #: else null)
    msg: pl.DataFrame
    pairs: pl.DataFrame  # one row per (trace id, recipient), expected and/or observed
    clock: dict[str, ClockEstimate]
    #: per (source a, source b): the tightest ts_b - ts_a of their causal pairs that the clock
    #: kept, a bound on offset_b - offset_a (raw ns)
    clock_pairs: dict[tuple[str, str], int]
    reference: str | None
    sources: pl.DataFrame  # per-source stats: n, seq bounds, corrected end
    t_end: int | None  # corrected end of the logs (ns: the latest stamp), None when empty
    t_start: int | None  # corrected start of the logs (ns)
    fetches: pl.DataFrame  # REST.fetch_start/fetch_end events
    #: every other event (meta, fetches, non-hop): for log gaps; ``traced``: it has a trace id
    rest: pl.DataFrame
    gaps: pl.DataFrame  # one row per seq jump of a source
    offsets: dict[str, int]  # ns per source (only non-zero ones)
    msg_ids: pl.DataFrame  # first line of each msg_id of the traces that got several
    #: events of the pipeline's ``remove`` role (not hops): whose store lost which message,
    #: with ``pos`` (log position) and ``t`` (corrected ns); empty without the role
    removals: pl.DataFrame
    #: where a source's seq started over (a process restarted under the same name):
    #: ``source``, ``file``, ``line``, ``row`` (in ``hops``), and the new run's first line's
    #: ``pos`` and ``t`` (corrected ns)
    restarts: pl.DataFrame
    #: positions hold each run of a restarted source (``pos = run << RUN_BITS | seq``): its
    #: runs compare in the order they were logged (:func:`run_of`). False without a restart,
    #: or where a restarted log's seqs do not fit (said, not mended)
    runs: bool = False
    #: events read twice (one logged line in two copies of a log, or exports that overlap),
    #: left out of every frame above: per source, how many (``events``) and the first copy's
    #: ``file``/``line`` with the line kept for it (``kept_file``/``kept_line``)
    copies: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=COPIES_SCHEMA))
    #: lines of a hop that say it failed (:data:`FAILED_LEVELS`), on no path: ``trace_id``,
    #: ``hop`` (index), ``recipient``, ``source``, ``file``, ``line``, in log order
    failed: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=FAILED_SCHEMA))
    #: lines with a ``recipients`` list in a model with recipient hops and no ``broadcast``
    #: role, which reads none: how many, and the first one's file and line
    unread_lists: tuple[int, str, int] | None = None
    #: the hops a reading's time window left out (``--since``/``--until``): ``trace_id``,
    #: ``stage`` and ``recipient`` (null at a message hop); a path whose missing hop is among
    #: them is cut by the window, not judged (:mod:`._window`)
    outside: pl.DataFrame = field(default_factory=lambda: pl.DataFrame(schema=OUTSIDE_SCHEMA))
    #: frames derived from these, computed once (:meth:`memoised`)
    memo: dict[str, pl.DataFrame] = field(default_factory=dict, compare=False, repr=False)
    _memo_lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, compare=False, repr=False
    )
    _memo_locks: dict[str, threading.Lock] = field(
        default_factory=dict, init=False, compare=False, repr=False
    )

    def memoised(self, key: str, compute: Callable[[], pl.DataFrame]) -> pl.DataFrame:
        """``compute()``, once per ``key``: ``analyze`` runs the finding kinds on threads, and
        two of them asking for one frame get the same. A lock per key: one frame being made
        holds back no other (a memoised frame may ask for another; none asks for itself)."""
        with self._memo_lock:
            lock = self._memo_locks.setdefault(key, threading.Lock())
        with lock:
            if key not in self.memo:
                self.memo[key] = compute()
            return self.memo[key]

    def true_time(self, ts: str = "ts", source: str = "source") -> pl.Expr:
        """Corrected time of raw ``ts`` logged by ``source`` (``hops`` keeps raw ``ts``)."""
        return true_time(self.offsets, ts, source)

    def located(self, frame: pl.DataFrame, row: str, file: str, line: str) -> pl.DataFrame:
        """``frame`` with the ``file`` (text) and ``line`` of the hop events at its ``row``
        column (an ``r*``: null where the hop was not reached)."""
        at = frame.get_column(row)
        return frame.with_columns(
            self.hops.get_column("file").gather(at).cast(pl.String).alias(file),
            self.hops.get_column("line").gather(at).alias(line),
        )

    def hop_rows(self) -> pl.LazyFrame:
        """The hop events (names Categorical, log order)."""
        return self.hops.lazy().filter(pl.col("hop").is_not_null())

    def server_sources(self) -> pl.DataFrame:
        """``source`` (text): the sources that logged a server hop (computed once)."""
        server = [i for i, h in enumerate(self.pipeline.hops) if h.emitter == "server"]
        return self.memoised(
            "server_sources",
            lambda: as_text(
                self.hop_rows()
                .filter(pl.col("hop").is_in(server))
                .select(pl.col("source").unique())
            ).collect(engine=engine()),
        )

    def unnamed(self) -> pl.DataFrame:
        """A recipient's app's hop events that name no recipient (a client's line without its
        actor): on no recipient's path, though one may be on the path of a recipient whose
        hop is missing. One row per (``trace_id``, ``source``), as text: ``n``, ``hops``
        (distinct indices), and the first one's (on corrected time) ``hop``, ``t``,
        ``conv_id``, ``file``, ``line``. Usually none (computed once). Not a server's: a
        deliver without its peer (a legacy server's "sent to 2 sockets") completes no path,
        and would be a finding on every message of such a log (review 18c)."""
        rcp = [
            i
            for i, h in enumerate(self.pipeline.hops)
            if h.scope == "recipient" and h.emitter != "server"
        ]
        first = [pl.col("t"), pl.col("file"), pl.col("line")]

        def compute() -> pl.DataFrame:
            return as_text(
                self.hop_rows()
                .filter(pl.col("hop").is_in(rcp) & pl.col("recipient").is_null())
                .with_columns(t=self.true_time())
                .group_by("trace_id", "source")
                .agg(
                    pl.len().alias("n"),
                    pl.col("hop").unique().sort().alias("hops"),
                    *(
                        pl.col(c).sort_by(first).first()
                        for c in ("hop", "t", "conv_id", "file", "line")
                    ),
                )
                .sort("trace_id", "source")
            ).collect(engine=engine())

        return self.memoised("unnamed", compute)

    def client_sources(
        self, users: pl.Series | None = None, *, sources: pl.Series | None = None
    ) -> pl.LazyFrame:
        """``(actor, source)``: the client sources the logs show acting for each of ``users``
        (their own hops, history loads, any other event), as text; or, given ``sources``,
        whom each of those acts for. Each process instance is a source; a server logs on
        behalf of users too (a persist's actor is the sender), so a source that logged a
        server hop is no client."""
        server = [i for i, h in enumerate(self.pipeline.hops) if h.emitter == "server"]
        if sources is not None:
            key, wanted = "source", sources
        else:
            assert users is not None, "client_sources: give users or sources"
            key, wanted = "actor", users
        seen = pl.concat(
            [
                as_text(
                    self.hop_rows()
                    .filter(
                        pl.col(key).is_in(wanted.cast(self.hops.schema[key]).implode())
                        & ~pl.col("hop").is_in(server)
                    )
                    .select("actor", "source")
                ),
                self.rest.lazy()
                .filter(pl.col(key).is_in(wanted.cast(pl.String).implode()))
                .select("actor", "source"),
            ]
        )
        return (
            seen.drop_nulls().join(self.server_sources().lazy(), on="source", how="anti").unique()
        )

    def clock_slack(self) -> pl.DataFrame:
        """``source`` (text), ``early`` and ``late`` (ns, at least 0): how much earlier and
        later than its corrected stamps a source's events may truly have happened, where the
        pairs bound its clock on one side only and its offset is the point of that side
        nearest zero (clocks are taken as in sync unless the logs force an offset): the
        bound's distance. A verdict that the logs went on, or that a log gap cannot hold a
        line, holds at every offset they allow (review 26a: a phone that only receives, its
        clock 3 s ahead, was taken as in sync: its log's end read 3 s late, a path in flight
        a drop). A clock bounded on both sides is read at its estimate, as the latencies are
        (its uncertainty, half a round trip, is the report's)."""

        def side(c: ClockEstimate, bound: float, other: float, sign: int) -> int:
            if not math.isfinite(bound) or math.isfinite(other):
                return 0
            return max(0, round(sign * (bound - c.offset_ns)))

        rows = [
            (s, side(c, c.hi_ns, c.lo_ns, 1), side(c, c.lo_ns, c.hi_ns, -1))
            for s, c in self.clock.items()
        ]
        return pl.DataFrame(
            rows, schema={"source": pl.String, "early": _I64, "late": _I64}, orient="row"
        )

    def certain_end(self) -> int | None:
        """The latest time (corrected ns) the logs certainly reach, whatever the offsets the
        pairs allow (:meth:`clock_slack`): what a path's grace window is judged against."""
        if self.t_end is None:
            return None
        ends = (
            as_text(self.sources.lazy().select("source", "t_end"))
            .join(self.clock_slack().lazy(), on="source", how="left")
            .select((pl.col("t_end") - pl.col("early").fill_null(0)).max())
            .collect(engine=engine())
            .item()
        )
        return int(ends) if ends is not None else self.t_end

    def log_spans(self) -> pl.DataFrame:
        """``source`` (text), ``t_start`` and ``t_end``: when each source's log runs (corrected
        ns). A log that lost its beginning (it begins above seq 1, or, without seq, with
        ``TRACEKIT.dropped``), or whose beginning a reading's time window left out, ran before
        its first line: since ever, for as long as nothing says otherwise."""
        leading = (pl.col("seq_before") == -1) & pl.col("missing").is_not_null()
        before = self.gaps.filter(lost_beginning() | leading).get_column("source").unique()
        return self.sources.select(
            pl.col("source").cast(pl.String),
            pl.when(pl.col("source").cast(pl.String).is_in(before.implode()))
            .then(pl.lit(_SINCE_EVER, dtype=_I64))
            .otherwise(pl.col("t_start"))
            .alias("t_start"),
            "t_end",
        )

    def process_spans(self) -> pl.DataFrame:
        """:meth:`log_spans`, one row per run of a source restarted under its name (``run``;
        0 elsewhere): each run a process of its own, its log from its first line to its last
        (review 25c: a message delivered to a client's old process and to its new one was a
        duplicate where the app names itself, none where it does not). The first run begins
        as the log does, the last ends as it does."""
        spans = self.log_spans().with_columns(run=pl.lit(0, dtype=_I64))
        if not self.runs or self.restarts.is_empty():
            return spans
        again = self.restarts.get_column("source").unique()
        runs = as_text(
            self.hops.lazy()
            .filter(pl.col("source").is_in(again.cast(self.hops.schema["source"]).implode()))
            .group_by("source", (pl.col("pos") // (1 << RUN_BITS)).alias("run"))
            .agg(self.true_time().min().alias("t_first"), self.true_time().max().alias("t_last"))
        ).collect(engine=engine())
        first = pl.col("run") == pl.col("run").min().over("source")
        last = pl.col("run") == pl.col("run").max().over("source")
        split = runs.join(spans.drop("run"), on="source").select(
            "source",
            pl.when(first).then("t_start").otherwise("t_first").alias("t_start"),
            pl.when(last).then("t_end").otherwise("t_last").alias("t_end"),
            pl.col("run").cast(_I64),
        )
        kept = spans.filter(~pl.col("source").is_in(again.cast(pl.String).implode()))
        return pl.concat([kept, split.select(kept.columns)])

    def hops_of(self, trace_ids: pl.LazyFrame, hop: int | None = None) -> pl.LazyFrame:
        """The hop events of these traces (a frame with a text ``trace_id``), names as text: the
        rows are picked on the table's integer codes, so only theirs are converted. ``hop``:
        only that hop's events (picked first, on its index)."""
        return _hops_of(self.hops, trace_ids, hop)


def as_text(frame: pl.LazyFrame) -> pl.LazyFrame:
    """Categorical columns (the event table's names) -> String."""
    return frame.with_columns(pl.col(pl.Categorical).cast(pl.String))


def _hops_of(hops: pl.DataFrame, trace_ids: pl.LazyFrame, hop: int | None = None) -> pl.LazyFrame:
    wanted = (
        trace_ids.select(pl.col("trace_id").cast(hops.schema["trace_id"]))
        .unique()
        .collect(engine=engine())
    )
    rows = _rows_of(hops, wanted.get_column("trace_id"))
    if rows is not None:  # compiled: the rows of those traces, in log order
        picked = hops[rows] if hop is None else hops[rows].filter(pl.col("hop") == hop)
    else:
        # The traces' events picked eagerly (few rows), then their hops: in one plan, polars
        # pushes the hop filter below the join and copies every hop event of the table first.
        # Log order kept: callers take each trace's first event.
        lf = hops.lazy() if hop is None else hops.lazy().filter(pl.col("hop") == hop)
        picked = lf.join(wanted.lazy(), on="trace_id", how="semi", maintain_order="left").collect(
            engine=engine()
        )
    return as_text(picked.lazy().filter(pl.col("hop").is_not_null()))


def _rows_of(hops: pl.DataFrame, traces: pl.Series) -> pl.Series | None:
    """The rows of ``hops`` whose trace is one of ``traces``, in order (compiled, _passes.c:
    polars' semi join or ``is_in`` hashes every row, ~20 ms at 5M events, for a few traces).
    None where it is not built or the names are not Categorical."""
    if _passes is None or pl.get_index_type() != pl.UInt32:
        return None
    trace = hops.get_column("trace_id")
    if trace.dtype != pl.Categorical() or traces.dtype != trace.dtype:
        return None
    out = _passes.rows_of(trace.to_physical(), traces.to_physical())
    return None if out is None else pl.Series(Capsules(*out))


def true_time(offsets: dict[str, int], ts: str = "ts", source: str = "source") -> pl.Expr:
    if not offsets:
        return pl.col(ts)
    return pl.col(ts) - pl.col(source).replace_strict(offsets, default=0, return_dtype=_I64)


def _with_hop(
    events: pl.LazyFrame, p: Pipeline, *, seqless: bool = True, runs: bool = False
) -> pl.LazyFrame:
    """``hop`` (index), ``ts`` (ns) and ``pos``, an event's position in its source's log: its
    ``seq``; without one (legacy text), its rank by time with ties in the order the lines were
    read (a millisecond holds several lines of a log). ``seqless=False`` says every event has
    a ``seq`` (no rank to compute). ``runs``: the events' ``run`` column (:func:`_runs`) is
    packed above their seq."""
    # Equality tests on the two columns beat building "STAGE.action" strings for every event.
    hop: pl.Expr = pl.lit(None, dtype=pl.Int32)
    for i, h in reversed(list(enumerate(p.hops))):
        is_hop = (pl.col("stage") == h.stage) & (pl.col("action") == h.action)
        hop = pl.when(is_hop).then(pl.lit(i, dtype=pl.Int32)).otherwise(hop)
    ts = pl.col("timestamp").cast(_I64)
    by_time = pl.when(pl.col("seq").is_null()).then(ts).rank("ordinal").cast(_I64)
    # A line without seq in a log that has seq (an event that lost its key) sits at the seq of
    # the line read before it in that log (a tie, after it): the time rank of every seq-less
    # line, another scale, made false reorders there. Logs without seq take the time rank.
    seq = pl.col("run") * (1 << RUN_BITS) + pl.col("seq") if runs else pl.col("seq")
    after = seq.forward_fill().over("source")
    return events.with_columns(
        hop=pl.when(pl.col("trace_id").is_not_null() & ~_FAILED).then(hop).otherwise(None),
        ts=ts,
        pos=pl.coalesce(seq, after, by_time) if seqless else seq,
    )


#: Levels of a line that says its stage failed: tracekit writes a stage that raised at level
#: ``error`` (with ``status="error"``), its OTLP span's ERROR status reads as that level, and
#: logging libraries spell it so. Such a line is an attempt, not the hop reached.
_FAILING: Final = "error err critical crit fatal emerg emergency alert severe panic dpanic"
FAILED_LEVELS: Final = tuple(  # (syslog's names, Python's, Java's SEVERE, zap's panics)
    spelt for name in _FAILING.split() for spelt in (name, name.upper(), name.capitalize())
)
_FAILED: Final = pl.col("level").is_in(FAILED_LEVELS).fill_null(False)


def hop_events(events: pl.LazyFrame, p: Pipeline) -> pl.LazyFrame:
    """Events of the pipeline's hops, with ``hop`` (index), ``recipient``, ``ts`` (ns), ``pos``."""
    return _hop_rows(_with_hop(events, p), p).filter(pl.col("hop").is_not_null())


def _hop_rows(base: pl.LazyFrame, p: Pipeline) -> pl.LazyFrame:
    """Every event with its ``hop`` (null where none) and ``recipient`` (the peer or actor
    the hop is about)."""
    peer_hops = [i for i, h in enumerate(p.hops) if h.recipient == "peer"]
    actor_hops = [i for i, h in enumerate(p.hops) if h.recipient == "actor"]
    recipient = (
        pl.when(pl.col("hop").is_in(peer_hops))
        .then(pl.col("peer"))
        .when(pl.col("hop").is_in(actor_hops))
        .then(pl.col("actor"))
        .otherwise(None)
    )
    cols: list[str | pl.Expr] = [
        "trace_id",
        "hop",
        recipient.alias("recipient"),
        "ts",
        "source",
        "seq",
        "pos",
        "actor",
        "conv_id",
        "msg_id",
        "recipients",
        "duration_ms",
        "file",
        "line",
    ]
    return base.select(cols)


def _first_rows(indices: list[int]) -> list[pl.Expr]:
    """Per hop: how many times it happened (``n*``) and the row of its first occurrence in
    log order (``r*``, an index into the hop events). Two aggregations a hop; the first
    occurrence's columns are then gathered by row (:func:`_gather`)."""
    out: list[pl.Expr] = []
    for i in indices:
        hit = pl.col("hop") == i
        out.append(hit.sum().cast(pl.UInt32).alias(col("n", i)))
        out.append(pl.when(hit).then(pl.col("row")).min().alias(col("r", i)))
    return out


def _wide(hops: pl.LazyFrame, keys: list[str], indices: list[int], *extra: pl.Expr) -> pl.LazyFrame:
    """One row per key (Categorical columns) with the hops' counts and first rows."""
    aggs = [*_first_rows(indices), *extra]
    if len(keys) == 1:
        return hops.group_by(keys).agg(aggs)
    # (trace, recipient): their two 32-bit codes packed into one integer hash 40% faster than
    # the pair of columns.
    a, b = (pl.col(k).to_physical().cast(pl.UInt64) for k in keys)
    packed = (a * (1 << 32) + b).alias("_key")
    return hops.group_by(packed).agg(*[pl.col(k).first() for k in keys], *aggs).drop("_key")


def _coded(hops: pl.DataFrame, rows: pl.Series | None = None) -> pl.LazyFrame:
    """The hop events' keys (Categorical), ``hop``, ``row`` (an index into ``hops``, whose
    order is log order), ``source`` and ``ts``; only those at ``rows`` where given. Lazy: the
    group-bys read ``hops`` through it, no event-sized copy is kept."""
    events = (
        hops.lazy().with_row_index("row")
        if rows is None
        else hops[rows].lazy().with_columns(pl.lit(rows).alias("row"))
    )
    return (
        events.filter(pl.col("hop").is_not_null())
        .with_columns(pl.col("trace_id", "recipient").cast(pl.Categorical))
        .select("trace_id", "recipient", "hop", "row", "source", "ts")
    )


def _polars_wide(
    coded: pl.LazyFrame, named: pl.DataFrame, msg_idx: list[int], rcp_idx: list[int]
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """Per message and per (trace, recipient), each hop's count and first row (:func:`_wide`).

    Message hops grouped over their own rows (a quarter of the hop events). A trace with no
    such row gets its row from the recipient side (the full join in ``build_paths``); a
    recipient hop whose event names no recipient is kept here, so that its trace has one too.
    The recipients ``named`` by a broadcast join the recipient rows as markers (hop -1).
    Collected one after another: together (collect_all), the plans contend for the two cores
    and took 20% longer (0.54 s against 0.45 at 5M events)."""
    msg_rows = coded.filter(pl.col("hop").is_in(msg_idx) | pl.col("recipient").is_null())
    with_recipient = pl.concat(
        [coded.filter(pl.col("recipient").is_not_null()), named.lazy()], how="diagonal"
    )
    named_any = (pl.col("hop") == _NAMED).any().alias("named")
    return (
        _wide(msg_rows, ["trace_id"], msg_idx).collect(engine=engine()),
        _wide(with_recipient, ["trace_id", "recipient"], rcp_idx, named_any).collect(
            engine=engine()
        ),
    )


def _native_wide(
    hops: pl.DataFrame, named: pl.DataFrame, msg_idx: list[int], rcp_idx: list[int]
) -> tuple[pl.DataFrame, pl.DataFrame] | None:
    """What :func:`_polars_wide` gives, computed by the compiled pass (_passes.c), groups in
    the order of their first row. None when it is not built or declines the input (e.g.
    64-bit row indices): polars' group-bys then."""
    # (Its inputs are build_paths': a hop only with a trace, hop indices from 0, named pairs
    # without nulls. Polars groups a null key where the pass skips it.)
    if (
        _passes is None
        or pl.get_index_type() != pl.UInt32
        or named.null_count().sum_horizontal()[0]
    ):
        return None
    cat = pl.Categorical()
    trace, recipient = (
        s if s.dtype == cat else s.cast(cat)
        for s in (hops.get_column("trace_id"), hops.get_column("recipient"))
    )
    out = _passes.firsts(
        trace.to_physical(),
        recipient.to_physical(),
        hops.get_column("hop"),
        tuple(msg_idx),
        tuple(rcp_idx),
        named.get_column("trace_id").to_physical(),
        named.get_column("recipient").to_physical(),
    )
    if out is None:
        return None

    def series(pair: tuple[object, object], name: str) -> pl.Series:
        return pl.Series(Capsules(*pair)).alias(name)

    def per_hop(
        ns: list[tuple[object, object]], rs: list[tuple[object, object]], idx: list[int]
    ) -> list[pl.Series]:
        return [
            s
            for i, n, r in zip(idx, ns, rs, strict=True)
            for s in (series(n, col("n", i)), series(r, col("r", i)))
        ]

    (m_key, m_n, m_r), (p_key, p_n, p_r, p_named) = out
    msg = pl.DataFrame(
        [trace.gather(series(m_key, "k")).alias("trace_id"), *per_hop(m_n, m_r, msg_idx)]
    )
    # a pair's key row is a hop event's, or (beyond them) a named pair's
    at = series(p_key, "k")
    keys = [
        pl.concat([s, named.get_column(name)], rechunk=False).gather(at).alias(name)
        for s, name in ((trace, "trace_id"), (recipient, "recipient"))
    ]
    pairs = pl.DataFrame([*keys, *per_hop(p_n, p_r, rcp_idx), series(p_named, "named")])
    return msg, pairs


def _code_table_size(codes: list[pl.Series], rows: int) -> int | None:
    """The size of a table indexed by integer codes (a Categorical's, physical) that holds
    every one of ``codes``; None where the codes are sparse against the ``rows`` it serves
    (the table would be mostly empty: a process that made many other strings Categorical,
    e.g. a long ``watch``), and the caller joins or replaces by name instead."""
    top = int(pl.select(pl.max_horizontal(*(c.max() for c in codes), 0)).item())
    return None if top > 8 * rows + (1 << 20) else top + 1


def rows_by_code(keys: pl.Series, among: pl.Series) -> pl.Series | None:
    """For each of ``keys``, the row of ``among`` that holds it, null where none: integer
    codes (a Categorical's, physical), looked up in an index from code to row rather than
    hashed. ``among`` must be unique (a repeated code keeps its last row, where a join would
    repeat the key's rows): every caller's is a group-by's keys or one row per trace. None
    where the codes are sparse (:func:`_code_table_size`)."""
    size = _code_table_size([keys, among], keys.len() + among.len())
    if size is None:
        return None
    rows = pl.int_range(among.len(), dtype=pl.UInt32, eager=True)
    index = pl.Series(values=[None], dtype=pl.UInt32).extend_constant(None, size - 1)
    return index.scatter(among.drop_nulls(), rows.filter(among.is_not_null())).gather(keys)


def _union_keys(parts: list[pl.DataFrame], key: str = "trace_id") -> pl.DataFrame:
    """Each ``key`` of ``parts`` once, in order of first appearance. The first part's keys are
    unique (a group-by's) and usually hold every other part's: those are looked up in it by
    code (:func:`rows_by_code`), and only the others made unique (a unique of every part's
    keys took 0.11 s at 5M events)."""
    head = parts[0].select(key)
    rest = pl.concat([f.select(key) for f in parts[1:]])
    cat = pl.Categorical()
    at = (
        rows_by_code(rest.get_column(key).to_physical(), head.get_column(key).to_physical())
        if head.schema[key] == cat and rest.schema[key] == cat
        else None
    )
    if at is None:
        return pl.concat([head, rest]).unique(maintain_order=True)
    extra = rest.filter(at.is_null()).unique(maintain_order=True)
    return pl.concat([head, extra]) if extra.height else head


def _lookup(left: pl.DataFrame, right: pl.DataFrame, key: str = "trace_id") -> pl.DataFrame:
    """A left join of ``right`` (unique ``key``; no other column name in common with
    ``left``) on ``key``, a Categorical both share, by :func:`rows_by_code` (1M pairs joined to
    their message: 90 ms as a hash join, 35 ms); ``left``'s order kept."""
    dtype = left.schema[key]
    at = (
        rows_by_code(left.get_column(key).to_physical(), right.get_column(key).to_physical())
        if dtype == pl.Categorical() and right.schema[key] == dtype
        else None
    )
    if at is None:
        return left.join(right, on=key, how="left", maintain_order="left")
    return left.hstack(right.drop(key).select(pl.all().gather(at)).get_columns())


def _offsets_by_code(offsets: dict[str, int], sources: list[pl.Series]) -> pl.Series | None:
    """Each source's clock offset (ns, 0 where none) at its Categorical code, a table for
    ``sources`` (columns of source names) to gather from: a replace_strict hashed every row's
    name (0.10 s for the paths' columns at 5M events, this 0.05 s). None where there is no
    offset, a column is not Categorical, or the codes are sparse (:func:`_code_table_size`)."""
    if not offsets or any(s.dtype != pl.Categorical() for s in sources):
        return None
    codes = pl.Series(list(offsets), dtype=pl.Categorical()).to_physical()
    physical = [s.to_physical() for s in sources]
    size = _code_table_size([codes, *physical], max((s.len() for s in sources), default=0))
    if size is None:
        return None
    return pl.zeros(size, dtype=_I64, eager=True).scatter(codes, list(offsets.values()))


def _sources_per_hop(
    wide: pl.DataFrame,
    hops: pl.DataFrame,
    keys: list[str],
    indices: list[int],
    pos: pl.Series,
    runs: bool = False,
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``k*``: how many processes logged the hop (two devices of one user are not a
    duplicate, nor two runs of one app restarted under its name: ``runs``, the positions hold
    them; review 25c). Counted only for the groups where a hop repeats; elsewhere it is the
    hop's count.

    Where several sources logged a hop, its first occurrence (``r*``) is not the first row
    read (the order of the logs across files is arbitrary) but, of each source's first in its
    own log, the earliest by timestamp (then by source name). Also returned: those per-source
    first occurrences (keys, ``hop``, ``source``, ``ts``, ``n``: how often that source logged
    it; ``row``: where), so that every device's clock gets its pairs, not only the chosen
    one's, and so that the choice is made again on corrected time (:func:`_repick`)."""
    wide = wide.with_columns(pl.col(col("n", i)).alias(col("k", i)) for i in indices)
    devices = pl.DataFrame(
        schema={
            **{k: pl.Categorical() for k in keys},
            "hop": pl.Int32,
            "source": pl.Categorical(),
            "ts": pl.Int64,
            "n": pl.UInt32,
            "row": pl.get_index_type(),
        }
    )
    if not indices:
        return wide, devices
    repeated = pl.any_horizontal(pl.col(col("n", i)) > 1 for i in indices)
    again = wide.filter(repeated)
    if again.is_empty():
        return wide, devices
    # the hop events of those traces (compiled: a pass over the codes; else every hop event)
    picked = (
        _coded(hops, _rows_of(hops, again.get_column("trace_id")))
        .join(again.lazy().select(keys), on=keys, how="semi")
        .filter(pl.col("hop").is_in(indices))
        .collect(engine=engine())
    )
    # each source's first in its own log order (seq), not the first row read: files given
    # newest first put a later occurrence ahead (ties, a line without seq: by row). Positions
    # gathered for these few rows only (a column of every hop event in the group-bys' frames
    # raised the 5M analysis' peak by 50 MB).
    placed = picked.with_columns(pos.gather(picked.get_column("row")).alias("pos"))
    per_source = placed.group_by(*keys, "hop", "source").agg(
        pl.col("row", "ts").sort_by("pos", "row", nulls_last=True).first(),
        pl.len().cast(pl.UInt32).alias("n"),
    )
    process = (
        pl.struct("source", (pl.col("pos") // (1 << RUN_BITS)).alias("run"))
        if runs
        else pl.col("source")
    )
    counted = placed.group_by(keys).agg(
        process.filter(pl.col("hop") == i).n_unique().cast(pl.UInt32).alias(col("k", i))
        for i in indices
    )
    # the representative occurrence of each hop the group's sources logged
    reps = (
        per_source.group_by(*keys, "hop")
        .agg(pl.col("row").sort_by("ts", pl.col("source").cast(pl.String)).first())
        .pivot(on="hop", index=keys, values="row")
    )
    reps = reps.rename({c: col("r", int(c)) for c in reps.columns if c not in keys})
    chosen = [c for c in reps.columns if c not in keys]
    ks = [col("k", i) for i in indices]
    fixed = (
        again.lazy()
        .drop(ks)
        .join(counted.lazy(), on=keys)
        .join(reps.lazy(), on=keys, how="left", suffix="_rep")
        .with_columns(pl.coalesce(f"{c}_rep", c).alias(c) for c in chosen)
        .select(wide.columns)
        .collect(engine=engine())
    )
    several = per_source.join(
        per_source.group_by(*keys, "hop").agg(pl.len().alias("_s")).filter(pl.col("_s") > 1),
        on=[*keys, "hop"],
        how="semi",
    )
    return pl.concat([wide.filter(~repeated), fixed]), several.select(devices.columns)


#: Gathered for every hop of every path. Its file and line are not: ``r*`` (the row) finds
#: them for the few paths a finding cites (:meth:`Paths.located`); gathered, they were a
#: fifth of path building (0.12 s at 5M events) and 60 MB.
_GATHERED: Final = {"t": "ts", "src": "source", "pos": "pos"}


def _gather(
    frame: pl.DataFrame,
    hops: pl.DataFrame,
    indices: list[int],
    positions: frozenset[int],
    *,
    in_order: bool = False,
) -> pl.DataFrame:
    """Each hop's first occurrence, by its row ``r*``: ``t*`` (raw ns), ``src*``, and
    ``pos*`` where order is checked. Names stay Categorical."""
    cat = pl.Categorical()
    picks: list[pl.Expr] = []
    if indices and not in_order:
        # In log order of their first event: one message's events lie close together in each
        # log, so every hop's rows are then read nearly in order. Gathered at random, 1M rows
        # x 5 columns took 20 ms from one chunk and 122 ms from 18 (a 5M-event JSON read);
        # in order, 10 and 20 ms. (A group-by's row order is arbitrary anyway; the compiled
        # one's, ``in_order``, is already that of the first rows.)
        frame = frame.sort(pl.min_horizontal(col("r", i) for i in indices), nulls_last=True)
    for i in indices:
        rows = pl.lit(frame.get_column(col("r", i)))
        for name, source in _GATHERED.items():
            if name == "pos" and i not in positions:
                continue
            values = pl.col(source).gather(rows).alias(col(name, i))
            picks.append(values.cast(cat) if name == "src" else values)
    if picks:  # one select: the gathers (random reads, cache misses) run on every core
        frame = frame.with_columns(hops.select(picks).get_columns())
    return frame


def _repick(
    frame: pl.DataFrame,
    devices: pl.DataFrame,
    keys: list[str],
    hops: pl.DataFrame,
    offsets: dict[str, int],
    positions: frozenset[int],
) -> tuple[pl.DataFrame, set[int]]:
    """The hops several sources logged (:func:`_sources_per_hop`) chosen again, once the
    clocks are known: of each source's first occurrence, the earliest by corrected time (a
    device whose clock runs behind no longer stands for the recipient because of it). Returns
    the frame with those hops' ``r*``, ``t*`` (raw), ``src*`` and ``pos*`` replaced, and the
    hops where some row changed."""
    if devices.is_empty() or not offsets:
        return frame, set()
    names = [pl.col(k).cast(pl.String) for k in keys]
    rows = [col("r", i) for i in devices.get_column("hop").unique().sort()]
    best = (
        devices.lazy()
        .with_columns(*names, t=true_time(offsets), name=pl.col("source").cast(pl.String))
        .sort("t", "name")
        .group_by(*keys, "hop")
        .agg(pl.col("row").first())
        .join(frame.lazy().select(*keys, *rows), on=keys)
        .collect(engine=engine())
    )
    moved: set[int] = set()
    fixes = []
    for i in sorted(best.get_column("hop").unique().to_list()):
        r = col("r", i)
        changed = best.filter((pl.col("hop") == i) & (pl.col("row") != pl.col(r)))
        if changed.is_empty():
            continue
        moved.add(i)
        at = changed.get_column("row")
        cols = {col("r", i): at, col("t", i): hops.get_column("ts").gather(at)}
        cols[col("src", i)] = hops.get_column("source").gather(at).cast(frame.schema[col("src", i)])
        if i in positions and col("pos", i) in frame.columns:
            cols[col("pos", i)] = hops.get_column("pos").gather(at)
        fixes.append(changed.select(keys).with_columns(**{k: v.alias(k) for k, v in cols.items()}))
    if not fixes:
        return frame, moved
    fix = pl.concat(fixes, how="diagonal_relaxed")
    fix = fix.group_by(keys).agg(pl.exclude(keys).drop_nulls().first())
    changed_cols = [c for c in fix.columns if c not in keys]
    out = (
        frame.join(fix, on=keys, how="left", suffix="_new")
        .with_columns(pl.coalesce(f"{c}_new", c).alias(c) for c in changed_cols)
        .select(frame.columns)
    )
    return out, moved


def fetch_events(rest: pl.DataFrame, p: Pipeline) -> pl.DataFrame:
    """The history fetch lines among ``rest`` (events with ``stage``, ``action`` and the
    fetches' columns), with their ``kind`` (``start``, ``end``)."""
    start, end = p.role("fetch_start"), p.role("fetch_end")
    cols = ("kind", "source", "actor", "conv_id", "ts", "pos", "file", "line")
    if start is None or end is None:
        return rest.head(0).with_columns(kind=pl.lit(None, dtype=pl.String)).select(cols)
    key = pl.concat_str([pl.col("stage"), pl.lit("."), pl.col("action")])
    kind = pl.when(key == start).then(pl.lit("start")).when(key == end).then(pl.lit("end"))
    return rest.with_columns(kind=kind).filter(pl.col("kind").is_not_null()).select(cols)


def _source_stats(events: pl.LazyFrame, *, distinct: bool = True) -> pl.LazyFrame:
    """Per source: its lines, seqs (``n_seq_unique`` distinct: a seq repeated is a restart,
    or a line read twice, :func:`_copies`), first, least and greatest seq and time. Without
    ``distinct``, ``n_seq_unique`` is left out (:func:`_with_distinct` adds it)."""
    # _BACK on next lines only (a diff inside the group-by took 0.15 s at 5M events, this 0.01 s)
    return (
        events.with_columns(_back=_BACK)
        .group_by("source")
        .agg(
            pl.len().alias("n"),
            pl.col("seq").count().alias("n_seq"),
            *([pl.col("seq").drop_nulls().n_unique().alias("n_seq_unique")] if distinct else []),
            # (the first seq read above the least: a seq goes back somewhere, :func:`_restarts`)
            pl.col("seq").drop_nulls().first().alias("seq_first"),
            pl.col("seq").min().alias("seq_min"),
            pl.col("seq").max().alias("seq_max"),
            pl.col("_back").any().alias("seq_back"),
            pl.col("ts").min().alias("ts_min"),
            pl.col("ts").max().alias("ts_max"),
        )
    )


def _unordered(table: pl.DataFrame) -> pl.Series | None:
    """The sources (Categorical; null: the lines without one) whose seqs do not rise from
    line to line (compiled, _passes.c); None where it is not built or the sources are not
    Categorical."""
    source = table.get_column("source")
    if _passes is None or source.dtype != pl.Categorical():
        return None
    rows = _passes.unordered(source.to_physical(), table.get_column("seq"))
    return None if rows is None else source.gather(pl.Series(Capsules(*rows)))


def _with_distinct(stats: pl.DataFrame, events: pl.LazyFrame, unordered: pl.Series) -> pl.DataFrame:
    """``stats`` (:func:`_source_stats` without ``distinct``) with ``n_seq_unique``: a source
    whose seqs rise from line to line has them all distinct; polars counts the others'."""
    stats = stats.with_columns(n_seq_unique=pl.col("n_seq"))
    if unordered.is_empty():
        return stats
    named = unordered.drop_nulls().implode()
    mine = pl.col("source").is_in(named)
    if unordered.has_nulls():
        mine = mine | pl.col("source").is_null()
    counted = as_text(
        events.filter(mine).group_by("source").agg(n_distinct=pl.col("seq").drop_nulls().n_unique())
    ).collect(engine=engine())
    return (
        stats.join(counted, on="source", how="left", nulls_equal=True, maintain_order="left")
        .with_columns(n_seq_unique=pl.coalesce("n_distinct", "n_seq_unique"))
        .drop("n_distinct")
    )


def same_device(p: Pipeline, a: str, b: str) -> bool:
    """Both hops are logged on one client (the sender's or the recipient's): logged by two
    sources, they come from two devices of that user and are not a causal pair."""
    emitters = {p.hop(a).emitter, p.hop(b).emitter}
    return len(emitters) == 1 and "server" not in emitters


Constraint = tuple[str, str, int, int]
Ladders = dict[tuple[str, str], tuple[list[int], list[int]]]
_LADDER: Final = 64  # pairs known per source pair when pairs contradict each other


def _clock_constraints(
    msg: pl.DataFrame,
    pairs: pl.DataFrame,
    p: Pipeline,
    devices: tuple[pl.DataFrame, pl.DataFrame] | None = None,
) -> tuple[list[Constraint], list[Constraint], Callable[[], Ladders]]:
    """Tightest ``(src_a, src_b, min(ts_b - ts_a), n)`` over every cross-source pipeline edge;
    then the same over the clean pairs only, where both hops happened once (a retried hop's
    first occurrence may belong to another attempt than the other hop's: request of attempt 1,
    response of attempt 2, a valid but loose bound; see :func:`solve_offsets`).

    ``devices`` (:func:`_sources_per_hop`, per message and per pair): where several sources
    logged ``b`` (two devices of a recipient), each one's first occurrence pairs with ``a``, so
    every device's clock is bounded, whichever occurrence represents the pair.

    Also, on demand (only pairs that contradict each other need them), each source pair's
    ``_LADDER`` smallest ``ts_b - ts_a`` of all and of clean pairs: a pair that contradicts
    the others is set aside for the next (:func:`solve_offsets`)."""
    frames: list[pl.LazyFrame] = []
    # End to end too: a message's send begins before any recipient's last hop, and a check of
    # reversed pairs looks at it (a sender whose exchanges with the server were all cut, its
    # offset unbounded, made a false clock finding blamed on its peer: review 21d).
    final = p.role("final")
    e2e = [(p.roles["send"], final)] if final is not None and "send" in p.roles else []
    for a, b in dict.fromkeys([*p.edges, *e2e]):
        if same_device(p, a, b):
            continue
        ia, ib = p.index(a), p.index(b)
        rcp = p.hop(b).scope == "recipient"
        keys = ["trace_id", "recipient"] if rcp else ["trace_id"]
        side = (pairs if rcp else msg).lazy()
        cols = {
            "a": pl.col(col("src", ia)),
            "b": pl.col(col("src", ib)),
            "t_a": pl.col(col("t", ia)),
            "t_b": pl.col(col("t", ib)),
            "n_a": pl.col(col("n", ia)),
            "n_b": pl.col(col("n", ib)),
        }
        dev = devices[1 if rcp else 0] if devices is not None else None
        # Where several sources logged the cause a (a broadcast a failover server repeated),
        # which one caused b is unknown: pairing b with either could be false (b logged
        # "before its cause"), so those paths give this edge no pair.
        rcp_a = p.hop(a).scope == "recipient"
        dev_a = devices[1 if rcp_a else 0] if devices is not None else None
        if dev_a is not None and not (causes := dev_a.filter(pl.col("hop") == ia)).is_empty():
            keys_a = ["trace_id", "recipient"] if rcp_a else ["trace_id"]
            unsure = causes.select(pl.col(k).cast(pl.String) for k in keys_a).unique().lazy()
            side = side.join(unsure, on=keys_a, how="anti")
        each = dev.filter(pl.col("hop") == ib) if dev is not None else None
        if each is None or each.is_empty():
            frames.append(side.select(**cols))
            continue
        # where several sources logged b: a pair per source (the representative is one)
        each = each.select(
            *[pl.col(k).cast(pl.String) for k in keys],
            b=pl.col("source").cast(pl.Categorical()),  # as the src columns (text input too)
            t_b="ts",
            n_b="n",
        )
        frames.append(
            side.join(each.lazy().select(keys).unique(), on=keys, how="anti").select(**cols)
        )
        frames.append(
            side.select(*keys, **{k: v for k, v in cols.items() if k.endswith("a")})
            .join(each.lazy(), on=keys)
            .select(*cols)
        )
    if not frames:
        return [], [], dict
    pooled = (
        pl.concat(frames)
        .select(
            "a",
            "b",
            (pl.col("t_b") - pl.col("t_a")).alias("w"),
            ((pl.col("n_a") == 1) & (pl.col("n_b") == 1)).alias("clean"),
        )
        .filter(pl.col("a") != pl.col("b"))
        .drop_nulls()
    )
    agg = (
        pooled.group_by("a", "b")
        .agg(
            pl.col("w").min(),
            pl.len().alias("n"),
            pl.col("w").filter("clean").min().alias("w_clean"),
            pl.col("clean").sum().alias("n_clean"),
        )
        .sort("a", "b")
        .collect(engine=engine())
    )
    # (columns as lists, zipped: iter_rows was ~7 ms for 7,000 source pairs)
    firsts, seconds, w, n, w_clean, n_clean = (s.to_list() for s in agg.iter_columns())
    every = list(zip(firsts, seconds, w, n, strict=True))
    clean = [c for c in zip(firsts, seconds, w_clean, n_clean, strict=True) if c[3]]

    def ladders() -> Ladders:
        rungs = pooled.group_by("a", "b").agg(
            pl.col("w").bottom_k(_LADDER).sort(),
            pl.col("w").filter("clean").bottom_k(_LADDER).sort().alias("w_clean"),
        )
        return {(r[0], r[1]): (r[2], r[3]) for r in rungs.collect(engine=engine()).iter_rows()}

    return every, clean, ladders


def _fallback(
    msg: pl.DataFrame,
    observed: pl.DataFrame,
    fetches: pl.DataFrame,
    p: Pipeline,
    cut: pl.Series | None = None,
) -> pl.LazyFrame:
    """Expected recipients of messages whose broadcast names none: conversation membership,
    of the members seen by then. A message whose broadcast a time window left out (``cut``)
    may have named them: it expects none but those seen with it, and who received it says
    nothing of membership (review 26d: a user its list left out, seen receiving it, was
    "expected" of another message).

    Trace ids and recipients are Categorical in ``msg``/``observed`` and in the result."""
    if cut is not None and cut.len():
        msg = msg.filter(~pl.col("trace_id").cast(pl.String).is_in(cut.implode()))
        observed = observed.filter(~pl.col("trace_id").cast(pl.String).is_in(cut.implode()))
    unlisted = msg.filter(pl.col("recipients").is_null() & pl.col("conv_id").is_not_null())
    if unlisted.is_empty():
        return pl.LazyFrame(schema={"trace_id": pl.Categorical(), "recipient": pl.Categorical()})
    # When a message or a path was first logged (raw stamps: the clocks are not known yet)
    at = [c for c in msg.columns if re.fullmatch(r"t\d+", c)]
    t_msg = pl.min_horizontal(at) if at else pl.lit(None, dtype=_I64)
    t_path = [c for c in observed.columns if re.fullmatch(r"t\d+", c)]
    bcast = p.index(p.roles["broadcast"]) if "broadcast" in p.roles else None
    # Membership of just the conversations that need it (a few legacy broadcasts, or none).
    convs = unlisted.select("conv_id").unique().lazy()
    in_convs = msg.lazy().join(convs, on="conv_id", how="semi")
    members = (
        pl.concat(
            [
                in_convs.select("conv_id", pl.col("sender").alias("user"), t=t_msg),
                in_convs.filter(pl.col("recipients").is_not_null())
                .select(
                    "conv_id",
                    pl.col("recipients").alias("user"),
                    t=pl.col(col("t", bcast)) if bcast is not None else t_msg,
                )
                .explode("user"),
                # recipients seen receiving, unless a broadcast list left them out (a stray
                # delivery is an `unexpected` finding, not a membership)
                observed.lazy()
                .select(
                    "trace_id",
                    "named",
                    pl.col("recipient").alias("user"),
                    t=pl.min_horizontal(t_path) if t_path else pl.lit(None, dtype=_I64),
                )
                .join(
                    in_convs.select(
                        "trace_id", "conv_id", pl.col("recipients").is_null().alias("unlisted")
                    ),
                    on="trace_id",
                )
                .filter(pl.col("named") | pl.col("unlisted"))
                .select("conv_id", pl.col("user").cast(pl.String), "t"),
                fetches.lazy()
                .select("conv_id", pl.col("actor").alias("user"), t=pl.col("ts"))
                .join(convs, on="conv_id", how="semi"),
            ],
            how="vertical_relaxed",
        )
        .drop_nulls(["conv_id", "user"])
        .group_by("conv_id", "user")
        .agg(joined=pl.col("t").min())
    )
    # Every member seen in the conversation by the message, except the sender (the sender
    # counts only where the logs show them receiving it: observed pairs are expected in this
    # mode anyway). Not one first seen later (review 20b: a user who joined 29 s after it was
    # "expected" and its drop reported): by then give or take a hop's time, for the clocks.
    # Whoever sent a message none of whose sender lines is logged (begun before the logs)
    # may be any member: none is expected but those seen with it (review 26a: its sender
    # counted as a delivery expected and not made, with no finding to say so). A send logged
    # naming no one still expects the members (review 26b: a real drop went unsaid).
    sends = [col("n", i) for i, h in enumerate(p.hops) if h.emitter == "sender"]
    sent = pl.any_horizontal(pl.col(c).fill_null(0) > 0 for c in sends if c in msg.columns)
    window = grace_ns(p, p.hop_window)
    return (
        unlisted.lazy()
        .filter(pl.col("sender").is_not_null() | sent)
        .select("trace_id", "conv_id", "sender", t_msg=t_msg)
        .join(members, on="conv_id")
        .filter(
            (pl.col("user") != pl.col("sender").fill_null(""))
            & (
                pl.col("joined").is_null()
                | pl.col("t_msg").is_null()
                | (pl.col("joined") <= pl.col("t_msg") + window)
            )
        )
        .select("trace_id", pl.col("user").cast(pl.Categorical).alias("recipient"))
    )


def _trace_facts(hops: pl.LazyFrame, send: int, bcast: int | None) -> list[pl.LazyFrame]:
    """Sender, conversation, canonical ids and recipients list per trace (each from few rows).

    ``hops`` has ``trace_id`` as Categorical (integer grouping and joins, kept); the other
    names come back as text.
    """
    lf = hops

    def first(rows: pl.Expr, value: pl.Expr) -> pl.LazyFrame:
        # each trace's first row in log order (a unique, ~20x faster than a group-by's first)
        picked = lf.filter(rows).select("trace_id", value)
        return picked.unique("trace_id", keep="first", maintain_order=True)

    facts = [
        first(pl.col("hop") == send, pl.col("actor").alias("sender")),
        first(pl.col("recipient").is_null() & pl.col("conv_id").is_not_null(), pl.col("conv_id")),
        lf.filter(pl.col("msg_id").is_not_null())
        .group_by("trace_id")
        .agg(
            pl.col("msg_id").min().alias("msg_id_min"),
            pl.col("msg_id").max().alias("msg_id_max"),
            pl.col("msg_id").n_unique().alias("n_msg_id"),
        ),
    ]
    if bcast is not None:
        # the list's row in the hop events (``rr``), not the list: copied once, in the end
        named = (pl.col("hop") == bcast) & pl.col("recipients").is_not_null()
        facts.append(first(named, pl.col("rr")))
    text = pl.col(pl.Categorical).exclude("trace_id").cast(pl.String)
    return [f.with_columns(text) for f in facts]


def _sender_fallback(msg: pl.DataFrame, hops: pl.DataFrame, p: Pipeline) -> pl.DataFrame:
    """The sender of a message whose send was not logged (an orphan): the actor of its first
    other hop that the sender's client logs (``emitter = "sender"``, e.g. ``REST.request``),
    else of a server's message hop (``REST.persist``: the server acts for the sender; session
    22's review: a message whose client lines were all lost). Unknown, membership expects
    none but the members seen with the message (:func:`_fallback`)."""
    lacking = msg.filter(pl.col("sender").is_null()).select("trace_id")
    mine = [i for i, h in enumerate(p.hops) if h.scope == "message"]
    own = [i for i in mine if p.hops[i].emitter == "sender"]
    if not lacking.height or not mine:
        return msg
    # a server that names itself on its lines ("server", as tracekit's chat server does)
    # acts for nobody: its name on its deliveries is no sender
    delivers = [i for i, h in enumerate(p.hops) if h.emitter == "server" and h.scope != "message"]
    itself = (
        hops.lazy()
        .filter(pl.col("hop").is_in(delivers))
        .select(pl.col("actor").cast(pl.String).unique())
        .collect(engine=engine())
        .get_column("actor")
    )
    found = (
        _hops_of(hops, lacking.lazy())
        .filter(
            pl.col("hop").is_in(mine)
            & pl.col("actor").is_not_null()
            & (pl.col("hop").is_in(own) | ~pl.col("actor").is_in(itself.implode()))
        )
        .group_by("trace_id")
        .agg(pl.col("actor").sort_by(~pl.col("hop").is_in(own), "hop").first().alias("_sender"))
        .with_columns(pl.col("trace_id").cast(msg.schema["trace_id"]))
        .collect(engine=engine())
    )
    msg = (
        msg.join(found, on="trace_id", how="left", maintain_order="left")
        .with_columns(sender=pl.coalesce("sender", "_sender"))
        .drop("_sender")
    )
    return _sender_of_source(msg, hops, own)


def _sender_of_source(msg: pl.DataFrame, hops: pl.DataFrame, own: list[int]) -> pl.DataFrame:
    """The sender of a message whose sender lines name no one (a legacy log without actors)
    and whose server names itself: the one user the client that logged them names on its
    other client lines, where it names exactly one (review 26b: unknown, its sender was
    expected by membership, a false drop; a process logging several users names none)."""
    lacking = msg.filter(pl.col("sender").is_null()).select("trace_id")
    if not lacking.height or not own:
        return msg
    logged = (
        _hops_of(hops, lacking.lazy())
        .filter(pl.col("hop").is_in(own))
        .group_by("trace_id")
        .agg(pl.col("source").first())
    )
    users = (
        hops.lazy()
        .filter(
            pl.col("source").is_in(
                logged.select("source").collect(engine=engine()).get_column("source").implode()
            )
            & pl.col("actor").is_not_null()
            & pl.col("hop").is_not_null()
        )
        .group_by("source")
        .agg(pl.col("actor").unique())
        .filter(pl.col("actor").list.len() == 1)
        .select(
            pl.col("source").cast(pl.String), _user=pl.col("actor").list.first().cast(pl.String)
        )
    )
    found = (
        logged.join(users, on="source")
        .select(pl.col("trace_id").cast(msg.schema["trace_id"]), "_user")
        .collect(engine=engine())
    )
    return (
        msg.join(found, on="trace_id", how="left", maintain_order="left")
        .with_columns(sender=pl.coalesce("sender", "_user"))
        .drop("_user")
    )


def _persist_rank(msg: pl.DataFrame, p: Pipeline) -> tuple[pl.DataFrame, bool]:
    """``prank``: the message's place in its conversation's canonical (persist) order, and
    whether some conversation is persisted by several sources.

    The persisting source's log position (``seq``) when one source persists the conversation,
    else its time (positions of two logs do not compare; ``build_paths`` ranks again on
    clock-corrected time once the offsets are known). One dense rank over all messages keeps
    each conversation's own order and small integers for the reorder check.
    """
    persist = p.role("persist")
    if persist is None:
        return msg.with_columns(prank=pl.lit(None, dtype=pl.Int64)), False
    i = p.index(persist)
    multi = (
        msg.lazy()
        .filter(pl.col(col("src", i)).is_not_null())
        .group_by("conv_id")
        .agg(pl.col(col("src", i)).n_unique().alias("k"))
        .filter(pl.col("k") > 1)
        .collect(engine=engine())
        .get_column("conv_id")
    )
    t, pos = pl.col(col("t", i)), pl.col(col("pos", i))
    # by time where several persist, one server's own persists in its log order where their
    # stamps tie (review 25b: persists of one millisecond lost their order, and a reorder
    # between them went unsaid)
    tied = pos.rank("ordinal").over("conv_id", col("src", i), col("t", i)).cast(pl.Int64) - 1
    key = (
        pl.when(pl.col("conv_id").is_in(multi.implode()))
        .then(t.rank("dense").cast(pl.Int64) * (1 << 20) + tied)
        .otherwise(pos)
    )
    ranked = msg.with_columns(
        prank=pl.when(pl.col(col("n", i)) > 0).then(key.rank("dense").cast(pl.Int64))
    )
    return ranked, not multi.is_empty()


def build_paths(
    events: pl.LazyFrame, pipeline: Pipeline | None = None, *, cut: pl.Series | None = None
) -> Paths:
    """The paths of ``events``. ``cut``: the trace ids whose broadcast a reading's time window
    left out (its recipients list unread: :func:`_fallback`)."""
    p = pipeline or default_pipeline()
    # The input read once (zero-copy when it is already in memory, one read of the needed
    # columns when it is a scan); hop and other events then filtered from it separately, so
    # no intermediate copy of every event exists.
    try:
        table = conformed(events).collect(engine=engine())
    except pl.exceptions.InvalidOperationError as exc:  # a value its type cannot take (a seq
        # over 2**63 as UInt64): said as the table's, not as a polars error from inside; an
        # error of the caller's own plan (another column) stays theirs
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        column = re.search(r"in column '([^']+)'", reason)
        if column is None or column.group(1) not in INPUT_COLUMNS:
            raise
        raise SchemaError(
            f"the event table cannot be read in its types: {reason}", key=column.group(1)
        ) from exc
    with engine_for(table.height):
        paths = _paths_of(table, p, cut)
        if (canonical := _canonical_ids(table, paths)) is not None:
            paths = _paths_of(canonical, p, cut)
        return paths


def _canonical_ids(table: pl.DataFrame, paths: Paths) -> pl.DataFrame | None:
    """``table`` with its trace ids in their canonical form, where a message's or a
    removal's is not (a UUID in one log and hex in another, in a table of the application's
    own: two traces of one message); None where each is or has none (the collectors' tables;
    checked on the messages' ids: ~3 ms at 1M events). Ids with no canonical form are kept
    as they are. (No other event of a trace counts for it.)"""
    ids = pl.col("trace_id").cast(pl.String)
    odd = pl.concat([paths.msg.select(ids), paths.removals.select(ids)]).filter(
        ~is_canonical_trace_id(ids)
    )
    if odd.is_empty() or not odd.select(canonical_trace_ids(ids).is_not_null().any()).item():
        return None
    return table.with_columns(
        pl.coalesce(canonical_trace_ids(ids), ids).cast(table.schema["trace_id"])
    )


#: What a column of :data:`TEXT_SCHEMA` may be, said by its type there (else text: String,
#: Categorical or Enum).
_KINDS: Final[dict[pl.DataType, str]] = {
    TIMESTAMP_DTYPE: "a Datetime",
    pl.Int64(): "an integer",
    pl.Float64(): "a number",
    pl.List(pl.String): "a list of text",
}

#: Columns an event table must have: without them no event can be placed on a path.
_REQUIRED: Final = ("timestamp", "stage", "action", "trace_id", "source")


def conformed(events: pl.LazyFrame) -> pl.LazyFrame:
    """:data:`INPUT_COLUMNS` of ``events`` in the types the analysis computes with. A table
    of the application's own may differ from the collectors' (``EVENT_SCHEMA``): times in
    another unit or zone (milliseconds read as nanoseconds made every drop in flight) or
    naive (read as UTC), other integer widths, names as text or Enum, an optional column of
    nulls only or left out (``duration_ms`` before session 16). Anything else raises
    :class:`~tracekit.errors.SchemaError` naming the column, not a polars error from deep
    inside the analysis."""
    have = events.collect_schema()
    out: list[pl.Expr] = []
    for name in INPUT_COLUMNS:
        want = TEXT_SCHEMA[name]
        got = have.get(name)
        if got is None:
            if name in _REQUIRED:
                raise SchemaError(f"the event table has no {name!r} column", key=name)
            out.append(pl.lit(None, dtype=want).alias(name))
        elif got == want:
            out.append(pl.col(name))
        elif got == pl.Null:
            if name in _REQUIRED:
                raise SchemaError(f"the event table's {name!r} column holds no value", key=name)
            out.append(pl.col(name).cast(want))
        elif name == "timestamp" and isinstance(got, pl.Datetime):
            stamp = pl.col(name)
            if got.time_zone is None:  # naive: UTC, as the collectors read a zoneless time
                stamp = stamp.dt.replace_time_zone("UTC")
            out.append(stamp.dt.convert_time_zone("UTC").dt.cast_time_unit("ns"))
        elif want == pl.String and got in (pl.String, pl.Categorical):
            out.append(pl.col(name))
        elif want == pl.String and isinstance(got, pl.Enum):  # (an Enum joins no Categorical)
            out.append(pl.col(name).cast(pl.Categorical()))
        elif name == "level":  # an app's own levels (30, 50 or True): no failure read in them
            out.append(pl.lit(None, dtype=want).alias(name))
        elif (
            (want == pl.Int64 and got.is_integer())
            or (want == pl.Float64 and got.is_numeric())
            or (
                name == "recipients"
                and isinstance(got, pl.List)
                and got.inner in (pl.String, pl.Categorical, pl.Enum, pl.Null)
            )
        ):
            out.append(pl.col(name).cast(want))
        else:
            raise SchemaError(
                f"the event table's {name!r} column is {got}, not {_KINDS.get(want, 'text')}",
                key=name,
            )
    return events.select(out)


def _paths_of(table: pl.DataFrame, p: Pipeline, cut: pl.Series | None = None) -> Paths:
    seqless = table.get_column("seq").has_nulls()
    # A restart under the old name, or lines read twice, are looked for first where a seq
    # goes back between two lines of a source (4 ms at 5M events), so the paths are built
    # right from the start; elsewhere the per-source stats wait on a thread. A restart or
    # copies found there (a log that interleaves sources, so no two of its lines are
    # adjacent, or a copy in a file of its own) build the paths again.
    known = _per_source(table) if table.select(_BACK.any()).item() else None
    if known is not None:
        table = known.table
    run = None if known is None else _runs(table, known.restarts)
    paths, found = _build(table, p, seqless, known, run, cut)
    if known is None and not found.copies.is_empty():
        table = found.table
        paths, _ = _build(table, p, seqless, found, _runs(table, found.restarts), cut)
    elif known is None and (run := _runs(table, found.restarts)) is not None:
        paths, _ = _build(table, p, seqless, found, run, cut)
    return paths


class _PerSource(NamedTuple):
    """What is known of the table's sources before its paths are built."""

    table: pl.DataFrame  # without the copies
    sources: pl.DataFrame  # per-source stats (:func:`_source_stats`, as text)
    restarts: pl.DataFrame  # (:func:`_restarts`)
    copies: pl.DataFrame  # events read twice, left out (:data:`COPIES_SCHEMA`)


def _per_source(table: pl.DataFrame) -> _PerSource:
    """The table without its copies (:func:`_copies`), its per-source stats and restarts."""

    def stats(of: pl.DataFrame) -> pl.DataFrame:
        lf = of.lazy().with_columns(ts=pl.col("timestamp").cast(_I64))
        unordered = _unordered(of)
        if unordered is None:
            return as_text(_source_stats(lf)).collect(engine=engine())
        return _with_distinct(
            as_text(_source_stats(lf, distinct=False)).collect(engine=engine()), lf, unordered
        )

    sources = stats(table)
    copies = _copies(table, sources)
    said = _copies_said(table, copies)
    if not copies.is_empty():  # (the stats again, of what is left: only where copies were)
        table = _without(table, copies)
        sources = stats(table)
    return _PerSource(table, sources, _restarts(table, sources), said)


#: What makes two events one logged line read twice: where it came from, its seq (an event
#: logged twice differs there: each emit takes the next one), its names, and its time to
#: the millisecond (:data:`_COPY_WITHIN`). Not ``event``, ``span_id``, ``level`` or
#: ``recipients``: one reader or format may leave them out or word them otherwise (an OTLP
#: span's name, a JSON line without its span id).
_COPY_KEY: Final = (
    pl.col("source"), pl.col("seq"), pl.col("stage"), pl.col("action"), pl.col("trace_id"),
    pl.col("msg_id"), pl.col("conv_id"), pl.col("actor"), pl.col("peer"),
)  # fmt: skip

#: A line's readings' times are at most this apart (ns): a JSON line keeps microseconds
#: where its OTLP span keeps nanoseconds, an export cuts or rounds them to the millisecond
#: (fuzzing 18b: a rounded copy fell in the next millisecond of a truncated key, a false
#: duplicate; one export cut and one rounded are 1 ms apart, review 18c); a process
#: restarted under its name does not log the same seq and names again within a millisecond.
_COPY_WITHIN: Final = 1_000_000


def _copies(table: pl.DataFrame, sources: pl.DataFrame) -> pl.DataFrame:
    """The events that repeat another of their source on :data:`_COPY_KEY`, seq included:
    one logged line read twice. ``row`` (in ``table``) of each copy left out and ``kept``, the
    reading kept: the one in the file that holds most of the source's lines (then the first
    read), so a partial backup read first does not take a run's first lines out of its log
    (review 15c: a restart was lost). Looked for only in the sources where a seq repeats
    (:func:`_source_stats`): nothing to do in a log without."""
    suspects = sources.filter(pl.col("n_seq") > pl.col("n_seq_unique")).get_column("source")
    if suspects.is_empty():
        return pl.DataFrame(schema={"row": pl.UInt32, "kept": pl.UInt32})
    return (
        table.lazy()
        .with_row_index("row")
        .filter(
            pl.col("source").cast(pl.String).is_in(suspects.implode()) & pl.col("seq").is_not_null()
        )
        .with_columns(in_file=pl.len().over("source", "file"))
        # readings of one line: the same key, each at most _COPY_WITHIN after the one before
        .sort("timestamp")
        .with_columns(
            apart=(pl.col("timestamp").diff().dt.total_nanoseconds() > _COPY_WITHIN)
            .fill_null(False)
            .cum_sum()
            .over(_COPY_KEY)
        )
        .with_columns(
            kept=pl.col("row")
            .sort_by("in_file", "row", descending=[True, False])
            .first()
            .over(*_COPY_KEY, "apart")
        )
        .filter(pl.col("row") != pl.col("kept"))
        .select("row", "kept")
        .collect(engine=engine())
    )


def _copies_said(table: pl.DataFrame, copies: pl.DataFrame) -> pl.DataFrame:
    """Per source, how many events were copies, and the first copy (read order) with the
    line kept for it (:data:`COPIES_SCHEMA`)."""
    at, kept = copies.get_column("row"), copies.get_column("kept")
    return (
        pl.DataFrame(
            {
                "source": table.get_column("source").gather(at).cast(pl.String),
                "file": table.get_column("file").gather(at).cast(pl.String),
                "line": table.get_column("line").gather(at).cast(pl.Int64),
                "kept_file": table.get_column("file").gather(kept).cast(pl.String),
                "kept_line": table.get_column("line").gather(kept).cast(pl.Int64),
                "row": at,
            }
        )
        .sort("row")
        .group_by("source", maintain_order=True)
        .agg(pl.len().cast(pl.Int64).alias("events"), pl.exclude("row").first())
        .select(list(COPIES_SCHEMA))
    )


#: What one reading of a line may leave out and another carry (a format without the list or
#: the stage's length): the reading kept takes them from a copy where it has none.
_COPY_FILLS: Final = ("recipients", "duration_ms")


def _without(table: pl.DataFrame, copies: pl.DataFrame) -> pl.DataFrame:
    """``table`` without the ``copies`` rows, read order kept; where the reading kept lacks a
    value of :data:`_COPY_FILLS`, the first copy's that has one."""
    keep = pl.repeat(True, table.height, eager=True).scatter(copies.get_column("row"), False)
    at, kept = copies.get_column("row"), copies.get_column("kept")
    # the copies that have a value their kept reading lacks (usually none: nothing to do)
    lacking = pl.any_horizontal(
        table.get_column(c).gather(kept).is_null() & table.get_column(c).gather(at).is_not_null()
        for c in _COPY_FILLS
    )
    wanted = copies.filter(lacking)
    if wanted.is_empty():
        return table.filter(keep).rechunk()
    fills = (
        pl.DataFrame({"kept": wanted.get_column("kept")})
        .with_columns(table.get_column(c).gather(wanted.get_column("row")) for c in _COPY_FILLS)
        .group_by("kept")
        .agg(pl.col(c).drop_nulls().first().alias(f"_{c}") for c in _COPY_FILLS)
    )
    return (
        table.with_row_index("_row")
        .join(fills, left_on="_row", right_on="kept", how="left", maintain_order="left")
        .with_columns(pl.coalesce(c, f"_{c}").alias(c) for c in _COPY_FILLS)
        .select(table.columns)
        .filter(keep)
        .rechunk()
    )


def _build(
    table: pl.DataFrame,
    p: Pipeline,
    seqless: bool,
    known: _PerSource | None,
    run: pl.Series | None,
    cut: pl.Series | None = None,
) -> tuple[Paths, _PerSource]:
    """The paths of ``table`` and what is known of its sources (``known``, else made on a
    thread meanwhile), with ``run`` packed into the positions."""
    events = table.lazy() if run is None else table.with_columns(run).lazy()
    base = _with_hop(events, p, seqless=seqless, runs=run is not None)
    # Frames needed only later are made on a thread meanwhile (the hop events' passes are
    # mostly on one core): the per-source stats and restarts, the other events, the
    # per-trace facts.
    side = ThreadPoolExecutor(1, thread_name_prefix="tracekit-paths")
    stats: Future[_PerSource]
    if known is None:
        stats = side.submit(in_context(lambda: _per_source(table)))
    else:
        stats = Future()
        stats.set_result(known)
    try:
        failed = side.submit(in_context(lambda: _failed(events, p)))
        paths = _assemble(base, p, seqless, side, stats, mended=run is not None, cut=cut)
        paths = replace(paths, failed=failed.result())
    finally:  # an error: what was not begun is not run
        side.shutdown(cancel_futures=True)
    return paths, stats.result()


def _failed(events: pl.LazyFrame, p: Pipeline) -> pl.DataFrame:
    """The lines of a hop that say it failed (:attr:`Paths.failed`): the level looked at
    first, on every event; the hop on those lines only (usually none)."""
    lines = events.filter(_FAILED & pl.col("trace_id").is_not_null())
    hop = _with_hop(lines.with_columns(level=pl.lit(None, pl.String)), p)
    rows = _hop_rows(hop, p).filter(pl.col("hop").is_not_null())
    return as_text(rows.select(FAILED_SCHEMA.names())).collect(engine=engine())


#: A seq below the line before it of the same source (lines out of order, or a restart).
_BACK: Final = (pl.col("seq") < pl.col("seq").shift(1)) & (
    pl.col("source") == pl.col("source").shift(1)
)


def _runs(table: pl.DataFrame, restarts: pl.DataFrame) -> pl.Series | None:
    """Each event's run of its source: how many of its restarts began at or before its line
    (:func:`_in_time_order`). Not by time: tracekit's own stage lines carry the stage's start
    and are written at its end, after the lines logged inside it, so a new run's second line
    may be older than its first (review 14d: a time rule put it back in the old run, a false
    gap that hid a drop). None without a restart, or where any seq of the table is outside
    ``[0, 2**RUN_BITS)`` (positions could not hold the runs: the restart is said, not
    mended; the runs' packing is read off every source's positions, :func:`run_of`)."""
    if restarts.is_empty():
        return None
    seq = table.get_column("seq")
    low, high = seq.min(), seq.max()
    assert isinstance(low, int) and isinstance(high, int)  # a restart is between two seqs
    if low < 0 or high >= 1 << RUN_BITS:
        return None
    restarted = restarts.get_column("source").unique()
    begins = pl.col("row").is_in(restarts.get_column("row").implode())
    runs = (
        table.lazy()
        .with_row_index("row")
        .filter(pl.col("source").cast(pl.String).is_in(restarted.implode()))
        .select("row", "source", "file", "timestamp", "duration_ms")
        .pipe(_in_time_order)
        .select("row", begins.cum_sum().over("source").cast(_I64).alias("run"))
        .collect(engine=engine())
    )
    run = pl.zeros(table.height, dtype=_I64, eager=True).alias("run")
    return run.scatter(runs.get_column("row"), runs.get_column("run"))


def _in_time_order(lines: pl.LazyFrame) -> pl.LazyFrame:
    """``lines`` (with ``row``, their read order, and ``duration_ms``) as each source logged
    them: its files by when the first of their lines was written, each file's lines as read.
    Read order sorts a source's ``10.log`` before its ``9.log`` (review 13b): its later run
    came first. Written, not stamped: a stage's line carries its start and is written at its
    end, so a small file's earliest stamp may be later than the next file's (fuzzing 18b: a
    file of one line sorted after the next put it in the next run, a false gap). To the
    millisecond, files of one millisecond in read order: a length written in microseconds
    may end a microsecond after the next line's stamp. Files of a source written side by
    side (their times overlap: OTLP spans in one and log records in another, two sinks) are
    one stream, their lines merged by when each was written (session 27's fuzzing: a
    restarted client's hops read after its other lines, the first run's after the second's,
    made false reorders)."""
    written = pl.col("timestamp").cast(_I64) + took_ns(pl.col("duration_ms"))
    per_file = ["source", "file"]
    lines = lines.with_columns(
        _w=written,
        _first=written.min().over(per_file) // 1_000_000,
        _last=written.max().over(per_file) // 1_000_000,
    )
    # (files in order of their first line; one that begins before every earlier one has
    # ended joins their stream)
    files = (
        lines.group_by(per_file)
        .agg(pl.col("_first").first(), pl.col("_last").first())
        .sort("source", "_first", "file")
        .with_columns(
            _new=(pl.col("_first") >= pl.col("_last").cum_max().shift(1).over("source")).fill_null(
                True
            )
        )
        .with_columns(_stream=pl.col("_new").cum_sum().over("source"))
        .with_columns(
            _begins=pl.col("_first").min().over("source", "_stream"),
            _merged=pl.len().over("source", "_stream") > 1,
        )
        .select(*per_file, "_begins", "_merged")
    )
    return (
        lines.join(files, on=per_file, how="left")
        # (to the millisecond, as the files are: a length written in microseconds may end a
        # microsecond after the next line's stamp; then in read order)
        .sort("_begins", pl.when("_merged").then(pl.col("_w") // 1_000_000), "row")
        .drop("_w", "_first", "_last", "_begins", "_merged")
    )


#: A seq this far below the one before it (and at or below every earlier one) starts a new
#: run though it repeats none (lines out of order are a few apart, a thread's reordering at
#: most).
_RESTART_DROP: Final = 100

#: How far from a log's first line a line out of order may land: a seq back to where a
#: counter starts further on is a restart, however close to the log's least seq.
_OUT_OF_ORDER: Final = 3


def _restarts(table: pl.DataFrame, sources: pl.DataFrame) -> pl.DataFrame:
    """Where a source's ``seq`` starts over: a process restarted under the same name. DESIGN.md
    calls a source one process instance; one name then holds several runs whose seqs do not
    compare. The runs stay one source (one clock, one device: a run renamed into a source of
    its own lost its clock estimate and read as a second device, review 13); their positions
    hold the run (:func:`_runs`), so order, log gaps and fetch windows are read run by run.

    One row per restart, in read order: the ``source``, the ``file`` and ``line`` where it
    begins and its ``row`` in the table. A restart is an event whose seq goes back (below
    the one before it in the source's lines, :func:`_in_time_order`) to a value the source
    already logged, or more than :data:`_RESTART_DROP` below the one before it, or to 0 or 1
    more than 2 below every seq before it or past the log's first few lines (the first run's
    log lost its beginning), at or below every seq before it; or to a value the source
    already logged, more than :data:`_RESTART_DROP` below the one before it, with no line
    after it above what one counter going on from it reaches (a new run that lost its own
    first lines: review 26b's doubt); logged after every event before it (a new process
    logs after the old one). Only sources whose seq goes back somewhere are looked at
    (counted with the per-source stats). Not a restart: lines out of order by a few, a line logged twice, a log read
    twice (its copy is no later), a rotated log's parts read newest first (no seq repeats),
    two processes logging under one name at once."""
    schema = {"source": pl.String, "file": pl.String, "line": pl.Int64, "row": pl.UInt32}
    # (seqs going back between two lines of the source; or, its lines interleaved with
    # another source's, more seqs than its range holds, or a first seq above its least: a
    # restart whose first run lost more lines than the next logged, session 15)
    suspects = sources.filter(
        pl.col("seq_back")
        | (pl.col("n_seq") > pl.col("seq_max") - pl.col("seq_min") + 1)
        | (pl.col("seq_first") > pl.col("seq_min"))
    ).get_column("source")
    if suspects.is_empty():
        return pl.DataFrame(schema=schema)
    name = pl.col("source").cast(pl.String)
    seq = pl.col("seq")
    return (
        table.lazy()
        .with_row_index("row")
        .filter(name.is_in(suspects.implode()) & seq.is_not_null())
        .select(
            name, "seq", "timestamp", "duration_ms", pl.col("file").cast(pl.String), "line", "row"
        )
        .pipe(_in_time_order)
        .with_columns(
            before=seq.shift(1).over("source"),
            low=seq.cum_min().shift(1).over("source"),
            again=pl.int_range(pl.len()).over("source", "seq") > 0,
            latest=pl.col("timestamp").cum_max().shift(1).over("source"),
            nth=pl.int_range(pl.len()).over("source"),
            # (the highest seq of the lines after it, and how many there are: one counter
            # counts up by one a line; a new run that also lost lines further on is not
            # found by this rule)
            ahead=seq.reverse().cum_max().reverse().shift(-1).over("source"),
            after=(pl.len() - 1 - pl.int_range(pl.len())).over("source"),
        )
        .filter(
            (seq < pl.col("before"))
            & (
                (seq <= pl.col("low"))
                & (
                    pl.col("again")
                    | (seq + _RESTART_DROP < pl.col("before"))
                    # back to where a counter starts, below a log that begins further on than
                    # a few lines out of order could: the first run lost its own beginning,
                    # so there is nothing to repeat (session 22's review: 133 of 168 head
                    # cuts of a restarted log read as one run, with false reorders)
                    | ((seq <= 1) & ((pl.col("low") - seq > 2) | (pl.col("nth") > _OUT_OF_ORDER)))
                )
                # a new run that lost its own first lines (seq 3 after a run that began at
                # 1): a seq logged before, far below the line before it, and no line after
                # it above what one counter going on from it reaches (two processes logging
                # under one name at once go back and forth between their counters, in bursts
                # of any length: review 27)
                | (
                    pl.col("again")
                    & (seq + _RESTART_DROP < pl.col("before"))
                    & (pl.col("ahead").fill_null(seq) <= seq + pl.col("after") + _OUT_OF_ORDER)
                )
            )
            & (pl.col("timestamp") > pl.col("latest"))
        )
        .select(list(schema))
        .sort("row")
        .collect(engine=engine())
    )


def _assemble(
    base: pl.LazyFrame,
    p: Pipeline,
    seqless: bool,
    side: ThreadPoolExecutor,
    per_source: Future[_PerSource],
    *,
    mended: bool,
    cut: pl.Series | None = None,
) -> Paths:
    """:func:`build_paths` of the events with their hop (``base``: :func:`_with_hop`);
    ``per_source``: the per-source stats and restarts, being made on ``side``; ``mended``:
    the positions hold the runs of restarted sources."""
    msg_idx = [i for i, h in enumerate(p.hops) if h.scope == "message"]
    rcp_idx = [i for i, h in enumerate(p.hops) if h.scope == "recipient"]
    send = p.index(p.roles["send"])
    bcast = p.index(p.roles["broadcast"]) if "broadcast" in p.roles else None
    rest_later = side.submit(
        in_context(
            lambda: as_text(
                base.filter(pl.col("hop").is_null()).select(
                    "stage",
                    "action",
                    pl.col("trace_id").is_not_null().alias("traced"),
                    "source",
                    "seq",
                    "ts",
                    "pos",
                    "actor",
                    "conv_id",
                    "duration_ms",
                    "file",
                    "line",
                )
            ).collect(engine=engine())
        )
    )
    # Names stay Categorical (4 bytes a row) in the event-sized frame (hops_df); the
    # per-source, per-message and per-recipient frames hold their keys as text (their per-hop
    # source and file names stay Categorical: one pair per hop and row adds up).
    # Every event with its hop: the table's own columns, no copy (the in-memory engine; the
    # streaming one cuts them into morsels). A filtered copy of the hop events was the
    # analysis' largest frame (~230 MB at 5M events). The first occurrences are gathered from
    # it by row: from a table of many chunks (files, or 64 MiB blocks of a large one) that is
    # slower (1M rows x 5 columns: 27 ms from one chunk, 88 ms from 18, 170 ms from 1000),
    # so beyond _CHUNKS it is copied into one. The collectors' table stays in its chunks:
    # made one there, the copy's freed chunks stayed with the allocator (a 5M-event read
    # peaked at 1.36 GB instead of 1.08), for no gain in the analysis' time.
    hops_df = _hop_rows(base, p).collect(engine="in-memory")
    if hops_df.n_chunks() > _CHUNKS:
        hops_df = hops_df.rechunk()
    # (pos is seq: one buffer for both, not two filtered copies, 38 MB at 5M)
    if not seqless and not mended:
        hops_df = hops_df.with_columns(pos=pl.col("seq"))
    # Categorical keys group as integers: several times faster than hashing trace id strings.
    cat = {"trace_id": pl.col("trace_id").cast(pl.Categorical)}
    facts_cols = (
        hops_df.lazy()
        .with_row_index("rr")
        .filter(pl.col("hop").is_not_null())
        .select("trace_id", "hop", "recipient", "actor", "conv_id", "msg_id", "recipients", "rr")
    )

    def later(frame: pl.LazyFrame) -> Future[pl.DataFrame]:
        return side.submit(in_context(lambda: frame.collect(engine=engine())))

    facts_later = [later(f) for f in _trace_facts(facts_cols.with_columns(**cat), send, bcast)]
    # Ids and recipient lists are read only for the facts: not kept (60 MB at 5M events),
    # except where each id of a trace with several was first logged (evidence, a few rows).
    del facts_cols
    # Recipients named by the broadcast join the per-recipient rows as markers (hop -1): one
    # group-by then yields every expected or observed pair, with no full join.
    named_rows = (
        hops_df.lazy()
        .filter((pl.col("hop") == bcast) & pl.col("recipients").is_not_null())
        .select(
            pl.col("trace_id").cast(pl.Categorical),
            pl.col("recipients").list.unique().alias("recipient"),
        )
        .explode("recipient")
        .drop_nulls("recipient")
        .with_columns(pl.col("recipient").cast(pl.Categorical), hop=pl.lit(_NAMED, pl.Int32))
        .collect(engine=engine())
        if bcast is not None
        else pl.DataFrame(schema=_NAMED_SCHEMA)
    )
    rcp_keys = ["trace_id", "recipient"]
    # Log positions are only compared for the persist order and the recipients' store order.
    positions = frozenset(p.index(h) for r in ("persist", "order", "final") if (h := p.role(r)))
    # Compiled, both group-bys are one pass (_passes.c); else polars'.
    native = _native_wide(hops_df, named_rows, msg_idx, rcp_idx)
    msg_w, rcp_w = native or _polars_wide(_coded(hops_df), named_rows, msg_idx, rcp_idx)
    del named_rows
    facts = [f.result() for f in facts_later]
    several = facts[2].filter(pl.col("n_msg_id") > 1).get_column("trace_id")
    with_ids = hops_df if several.len() else hops_df.head(0)  # usually none: no scan
    msg_ids = as_text(
        with_ids.lazy()
        .filter(
            pl.col("trace_id").is_in(several.implode())
            & pl.col("msg_id").is_not_null()
            & pl.col("hop").is_not_null()
        )
        .select("trace_id", "msg_id", "file", "line")
        .unique(["trace_id", "msg_id"], keep="first", maintain_order=True)
    ).collect(engine=engine())
    lists = hops_df.get_column("recipients")  # (gathered for the messages below)
    # Lists the model cannot read (no broadcast role), where it has recipients: said (review
    # 21a: read as no list, the expected recipients were the members, their drops false)
    unread: tuple[int, str, int] | None = None
    if bcast is None and rcp_idx and lists.null_count() < lists.len():
        listed = lists.is_not_null()
        file, line = hops_df.filter(listed).select("file", "line").row(0)
        unread = (int(listed.sum()), str(file), int(line))
    hops_df = hops_df.drop("msg_id", "recipients")
    any_w = rcp_w.group_by("trace_id").agg(
        *[(pl.col(col("n", i)) > 0).any().alias(col("any", i)) for i in rcp_idx]
    )
    pos = hops_df.get_column("pos")
    msg_w, msg_dev = _sources_per_hop(msg_w, hops_df, ["trace_id"], msg_idx, pos, mended)
    rcp_w, rcp_dev = _sources_per_hop(rcp_w, hops_df, rcp_keys, rcp_idx, pos, mended)
    # Joined on the Categorical trace id (integers); text from here on.
    # The narrow frames joined first: each join of the wide one copies all its columns.
    wide = _gather(msg_w, hops_df, msg_idx, positions, in_order=native is not None)
    # Every trace with a message hop, a pair or a fact, once; the columns of each looked up by
    # its code (full joins hashed every key of every part: 0.14 s at 5M events).
    parts = [wide, any_w, *facts]
    traces = _union_keys(parts)
    # usually the messages' keys themselves, in their order: their columns need no lookup
    same = traces.height == wide.height
    msg_raw = wide if same else traces
    for part in parts[1:] if same else parts:
        msg_raw = _lookup(msg_raw, part)
    msg_raw = msg_raw.with_columns(
        pl.col(col(k, i)).fill_null(0) for i in msg_idx for k in ("n", "k")
    )
    if bcast is None:
        msg_raw = msg_raw.with_columns(recipients=pl.lit(None, dtype=pl.List(pl.String)))
    else:  # each message's recipients list, from its broadcast's row
        msg_raw = msg_raw.with_columns(recipients=lists.gather(msg_raw.get_column("rr"))).drop("rr")
    del lists
    lacking = msg_raw.filter(pl.col("conv_id").is_null()).select("trace_id")
    if lacking.height:  # no message event named the conversation: take a recipient event's
        conv_any = (
            _hops_of(hops_df, lacking.lazy())
            .filter(pl.col("conv_id").is_not_null())
            .group_by("trace_id")
            .agg(pl.col("conv_id").first().alias("conv_any"))
            .with_columns(pl.col("trace_id").cast(pl.Categorical))
            .collect(engine=engine())
        )
        msg_raw = (
            msg_raw.join(conv_any, on="trace_id", how="left")
            .with_columns(conv_id=pl.coalesce("conv_id", "conv_any"))
            .drop("conv_any")
        )
    msg_raw = _sender_fallback(msg_raw, hops_df, p)
    msg_raw, multi_persist = _persist_rank(msg_raw.with_columns(pl.col("n_msg_id").fill_null(0)), p)
    rcp_raw = _gather(rcp_w, hops_df, rcp_idx, positions, in_order=native is not None)
    del msg_w, rcp_w, any_w, facts
    keys = ["trace_id", "recipient"]
    # Membership's pairs (few, or none where every broadcast names its recipients): added to
    # the observed ones only where there are some (a concat copied every observed pair).
    rest = rest_later.result()
    fetches = fetch_events(rest, p)
    fallback = _fallback(msg_raw, rcp_raw, fetches, p, cut).collect(engine=engine())
    if fallback.height and rcp_raw.height:
        fallback = fallback.join(rcp_raw.select(keys), on=keys, how="anti")
    observed = (
        pl.concat([rcp_raw, fallback], how="diagonal_relaxed") if fallback.height else rcp_raw
    )
    # Only the message hops that recipient rows refer to: predecessors of recipient hops
    # (drops, latency, clock) and the send (end to end).
    needed = {p.index(a) for h in p.hops if h.scope == "recipient" for a in h.after} | {send}
    needed &= set(msg_idx)
    per_message = msg_raw.select(
        "trace_id",
        "conv_id",
        "sender",
        pl.col("recipients").is_not_null().alias("has_list"),
        "prank",
        *[
            pl.col(col(k, i))
            for i in sorted(needed)
            for k in ("n", *_PER_HOP)
            if col(k, i) in msg_raw.columns
        ],
    )
    pairs_raw = _lookup(
        observed.with_columns(pl.col("named").fill_null(False)), per_message
    ).with_columns(
        # Membership mode: every recipient seen counts as expected (nothing to contradict it).
        expected=pl.col("named") | ~pl.col("has_list").fill_null(False)
    )
    del rcp_raw, observed, fallback  # pairs_raw holds them now
    # Keys joined as Categorical (integers) up to here; the frames hold them as text.
    strings = [pl.col(k).cast(pl.String) for k in keys]
    # ``tc``: the trace id's code, which the hop events share (reorders look messages up by
    # it). Only where they hold it Categorical: polars gives a code to another string once no
    # Categorical refers to its own, so a code saved from a frame that is then made text may
    # stand for another trace by the time it is read.
    tc = (
        pl.col("trace_id").to_physical() if hops_df.schema["trace_id"] == pl.Categorical() else None
    )
    msg_raw = msg_raw.with_columns(strings[0], tc=tc)
    pairs_raw = pairs_raw.with_columns(strings)

    # Clock: reference = the source that persists most messages (else the busiest source).
    # References: the sources that persist messages, the most first (else the busiest source).
    # The first is the reference; the others serve parts of the logs that share no pair with
    # it (e.g. test runs, each with its own server).
    persist = p.role("persist")
    _, sources, restarts, copies = per_source.result()
    preferred: list[str] = []
    if persist is not None:
        persisted = msg_raw.get_column(col("src", p.index(persist))).drop_nulls().cast(pl.String)
        counts = persisted.value_counts(name="n").sort(
            ["n", persisted.name], descending=[True, False]
        )
        preferred = counts.get_column(persisted.name).to_list()
    if not preferred and sources.height:
        busiest = sources.sort(["n", "source"], descending=[True, False]).get_column("source")
        preferred = busiest.drop_nulls().head(1).to_list()
    reference: str | None = preferred[0] if preferred else None
    constraints, clean, ladders = _clock_constraints(msg_raw, pairs_raw, p, (msg_dev, rcp_dev))
    names = sources.get_column("source").drop_nulls()

    def own_references() -> list[str]:
        """A part of the logs with no persisting source is measured against a server of its
        own (the busiest), else its busiest source."""
        server = [i for i, h in enumerate(p.hops) if h.emitter == "server"]
        logged: set[str] = set()
        for frame in (msg_raw, pairs_raw):
            for c in (col("src", i) for i in server):
                if c in frame.columns:
                    logged.update(frame.get_column(c).drop_nulls().cast(pl.String).unique())
        busiest = sources.sort(["n", "source"], descending=[True, False]).get_column("source")
        return sorted(busiest.drop_nulls().to_list(), key=lambda s: s not in logged)

    clock, clock_pairs = solve_offsets(
        reference, names, constraints, clean, ladders, preferred=preferred, fallback=own_references
    )
    # Several servers persist: the reference is the one the other clocks agree with
    better = majority_reference(clock, preferred, p.clock_skew.total_seconds() * 1e9)
    if better is not None and better != reference:
        reference, preferred = better, [better, *(s for s in preferred if s != better)]
        clock, clock_pairs = solve_offsets(
            reference,
            names,
            constraints,
            clean,
            ladders,
            preferred=preferred,
            fallback=own_references,
        )
    offsets = {s: c.offset_ns for s, c in clock.items() if c.offset_ns}
    msg_raw, moved = _repick(msg_raw, msg_dev, ["trace_id"], hops_df, offsets, positions)
    if moved & needed:  # the pairs' copies of those message hops, again
        copied = [
            c
            for i in sorted(moved & needed)
            for k in ("n", *_PER_HOP)
            if (c := col(k, i)) in pairs_raw.columns
        ]
        pairs_raw = (
            pairs_raw.drop(copied)
            .join(msg_raw.select("trace_id", *copied), on="trace_id", how="left")
            .select(pairs_raw.columns)
        )
    pairs_raw, _ = _repick(pairs_raw, rcp_dev, keys, hops_df, offsets, positions)
    persist_moved = persist is not None and p.index(persist) in moved

    by_code = _offsets_by_code(
        offsets,
        [
            f.get_column(col("src", i))
            for f, idx in ((msg_raw, msg_idx), (pairs_raw, sorted(needed) + rcp_idx))
            for i in idx
        ],
    )

    def corrected(frame: pl.DataFrame, indices: list[int]) -> pl.DataFrame:
        if not offsets:
            return frame
        out: dict[str, pl.Expr] = {}
        for i in indices:
            t, src = col("t", i), pl.col(col("src", i))
            if by_code is None:
                offset = src.replace_strict(offsets, default=0, return_dtype=_I64)
            else:
                # (a hop with no source: not shifted, as replace_strict's default has it)
                offset = pl.lit(by_code).gather(src.to_physical()).fill_null(0)
            out[t] = pl.col(t) - offset
        # one frame operation, the hops' columns corrected in parallel (eagerly one after
        # another they ran on one core; a few ms at 5M events)
        return frame.with_columns(**out)

    msg = corrected(msg_raw, msg_idx)
    pairs = corrected(pairs_raw, sorted(needed) + rcp_idx)
    if (multi_persist or persist_moved) and offsets:
        # several servers' persist times compare only corrected
        msg, _ = _persist_rank(msg, p)
        pairs = (
            pairs.drop("prank")
            .join(msg.select("trace_id", "prank"), on="trace_id", how="left")
            .select(pairs.columns)
        )

    def fix(frame: pl.DataFrame, ts: str, out: str) -> pl.DataFrame:
        shift = (
            pl.col("source").replace_strict(offsets, default=0, return_dtype=_I64)
            if offsets
            else pl.lit(0, dtype=_I64)
        )
        return frame.with_columns((pl.col(ts) - shift).alias(out))

    rest = fix(rest, "ts", "t")
    sources = fix(fix(sources, "ts_max", "t_end"), "ts_min", "t_start")
    at = restarts.get_column("row")
    restarts = fix(
        restarts.with_columns(
            pos=hops_df.get_column("pos").gather(at), ts=hops_df.get_column("ts").gather(at)
        ),
        "ts",
        "t",
    ).drop("ts")
    gaps = _gaps(
        hops_df.lazy().filter(pl.col("hop").is_not_null()), rest, sources, offsets, restarts, mended
    )
    t_end_val = sources.get_column("t_end").max()
    t_start_val = sources.get_column("t_start").min()
    return Paths(
        pipeline=p,
        hops=hops_df,
        msg=msg,
        pairs=pairs,
        clock=clock,
        clock_pairs=clock_pairs,
        reference=reference,
        sources=sources,
        t_end=int(t_end_val) if isinstance(t_end_val, int) else None,
        t_start=int(t_start_val) if isinstance(t_start_val, int) else None,
        fetches=fetches,
        rest=rest,
        gaps=gaps,
        offsets=offsets,
        msg_ids=msg_ids,
        removals=_removals(base, p, offsets),
        restarts=restarts,
        runs=mended,
        copies=copies,
        unread_lists=unread,
    )


def _removals(base: pl.LazyFrame, p: Pipeline, offsets: dict[str, int]) -> pl.DataFrame:
    """Events of the ``remove`` role, named by the recipient column of the hop they undo (a
    store logs its own user as ``actor``: the fallback when that column is ``peer``)."""
    remove, final = p.role("remove"), p.role("final")
    cols: dict[str, pl.DataType | type[pl.DataType]] = {
        "trace_id": pl.String, "recipient": pl.String, "source": pl.String,
        "conv_id": pl.String, "pos": _I64, "t": _I64, "file": pl.String, "line": _I64,
    }  # fmt: skip
    if remove is None or final is None:
        return pl.DataFrame(schema=cols)
    stage, action = remove.split(".", 1)
    who = p.hop(final).recipient or "actor"
    recipient = pl.coalesce(pl.col(who).cast(pl.String), pl.col("actor").cast(pl.String))
    return (
        as_text(
            base.filter(
                (pl.col("stage") == stage)
                & (pl.col("action") == action)
                & pl.col("trace_id").is_not_null()
                & ~_FAILED  # (a removal that failed took nothing off: review 20c)
            ).select(
                "trace_id",
                recipient.alias("recipient"),
                "source",
                "conv_id",
                "pos",
                "ts",
                "file",
                "line",
            )
        )
        .with_columns(t=true_time(offsets))
        .filter(pl.col("recipient").is_not_null())
        .select(list(cols))
        .collect(engine=engine())
    )


def took_ns(duration_ms: pl.Expr) -> pl.Expr:
    """How long a line's stage took (ns): none (a line written when it is stamped), a
    negative or NaN one read as 0; at most a day (no chat stage lasts that long; times stay
    in int64)."""
    return (duration_ms.fill_nan(None).clip(0, 86_400_000) * 1e6).cast(_I64).fill_null(0)


_LINE_COLS: Final = ("source", "seq", "pos", "t", "duration_ms", "file", "line")


def _with_written(rows: pl.DataFrame) -> pl.DataFrame:
    """Lines of some logs (:data:`_LINE_COLS` and ``hop_line``: a line of a pipeline hop)
    with when each was written (``end``, on the corrected clock) and the earliest stamp a
    hop line its log wrote after it may carry (``reach``). A stage's line is written at its
    end, stamped with its start; any other when stamped. A log's lines are written in seq
    order, so a line a gap lost was written after the line before the gap and before the
    line after it: it is stamped no later than the one's end (its stamp alone let a lost
    line stamped later read as a drop; review 15b), and a lost hop line no earlier than the
    other's end less the longest hop stage the log shows (one that began earlier, a send
    wrapping its request: review 16a). Hops only: a long stage of the app's own (a
    connection held open for minutes) says nothing of how long its hops take."""
    took = took_ns(pl.col("duration_ms")).alias("took")
    longest = pl.when(pl.col("hop_line")).then(pl.col("took")).max().over("source")
    return (
        rows.with_columns(took)
        .with_columns(end=pl.col("t") + pl.col("took"))
        .with_columns(reach=pl.col("end") - longest.fill_null(0))
        .drop("took", "hop_line")
    )


#: A time before any log (ns), where a gap has no line before it; far enough from int64's
#: least that a window's arithmetic on it cannot wrap.
_SINCE_EVER: Final = -(1 << 62)


def lost_beginning() -> pl.Expr:
    """Whether a row of :attr:`Paths.gaps` is a log's lost beginning: no line before it."""
    return pl.col("start_before") == _SINCE_EVER


def gap_start(g: int) -> pl.Expr:
    """The earliest stamp a hop line lost in a gap (a row of :attr:`Paths.gaps`) may carry,
    judged with the grace window ``g`` (ns): its ``start_before``, but a lost hop stage is
    not taken to have lasted more than ``g`` (review 16c: one 30-minute send made every gap
    of its log swallow the drops of the 30 minutes before it)."""
    return pl.max_horizontal("start_before", pl.col("end_before") - g)


def _gaps(
    hops: pl.LazyFrame,
    rest: pl.DataFrame,
    sources: pl.DataFrame,
    offsets: dict[str, int],
    restarts: pl.DataFrame,
    mended: bool,
) -> pl.DataFrame:
    """Seq jumps per source (per run of a restarted one: ``pos_before``/``pos_after`` place
    each in it). Only sources whose seq range is not dense get sorted."""
    gappy = sources.filter(
        # a seq number of its range with no event: a gap. Distinct seqs, not lines: a seq
        # logged twice (two processes under one name) cancelled a hole out (review 19a: a
        # real loss read as a drop); a restarted source's later runs may fill in its first's
        (pl.col("n_seq") > 0)
        & (
            (pl.col("seq_max") - pl.col("seq_min") + 1 != pl.col("n_seq_unique"))
            | (pl.col("seq_min") > 1)  # (its beginning lost: :func:`_leading`)
            | pl.col("source").is_in(restarts.get_column("source").implode())
        )
    ).get_column("source")
    in_gappy = pl.col("source").is_in(gappy.implode()) & pl.col("seq").is_not_null()
    rows = _with_written(
        pl.concat(
            [
                as_text(
                    hops.filter(in_gappy).select(
                        "source", "seq", "pos", "ts", "duration_ms", "file", "line"
                    )
                )
                .with_columns(t=true_time(offsets))
                .select(*_LINE_COLS, hop_line=pl.lit(True))
                .collect(engine=engine()),
                rest.filter(in_gappy).select(*_LINE_COLS, hop_line=pl.lit(False)),
            ]
        )
    ).sort("source", "pos")
    after = ("seq", "pos", "end", "file", "line")
    nxt = {f"{c}_after": pl.col(c).shift(-1).over("source") for c in after}
    # lines without seq in these logs, each at the position of the line before it
    # (`_with_hop`): an event whose seq was lost, not an event the logging lost
    lost_seq = pl.col("source").is_in(gappy.implode()) & pl.col("seq").is_null()
    seqless = pl.concat(
        [
            as_text(hops.filter(lost_seq).select("source", "pos", "file", "line")).collect(
                engine=engine()
            ),
            rest.filter(lost_seq).select("source", "pos", "file", "line"),
        ]
    )
    unnumbered = seqless.group_by("source", "pos").agg(pl.len().cast(_I64).alias("unnumbered"))
    missing = pl.col("pos_after") - pl.col("pos") - 1 - pl.col("unnumbered")
    # no jump between two runs: each counts from its own start
    one_run = (
        pl.col("pos_after") // (1 << RUN_BITS) == pl.col("pos") // (1 << RUN_BITS)
        if mended
        else pl.lit(True)
    )
    jumps = (
        rows.with_columns(**nxt)
        .join(unnumbered, on=["source", "pos"], how="left", maintain_order="left")
        .with_columns(pl.col("unnumbered").fill_null(0))
        .filter((missing > 0) & one_run)
        .select(
            "source",
            pl.col("seq").alias("seq_before"),
            "seq_after",
            missing.alias("missing"),
            pl.col("t").alias("t_before"),
            pl.col("reach").alias("start_before"),
            pl.col("end").alias("end_before"),
            "end_after",
            pl.col("file").alias("file_before"),
            pl.col("line").alias("line_before"),
            "file_after",
            "line_after",
            pl.col("pos").alias("pos_before"),
            "pos_after",
        )
    )
    leading = _leading(rows, seqless)
    markers = dropped_markers(hops, rest, offsets)
    return pl.concat([leading, jumps, markers], how="vertical_relaxed").with_columns(
        # events among the missing that a reading's time window left out (:mod:`._window`)
        outside=pl.lit(0, dtype=_I64)
    )


def _leading(rows: pl.DataFrame, seqless: pl.DataFrame) -> pl.DataFrame:
    """A log that begins above seq 1 lost its beginning (a log begun mid-traffic: rotated,
    cut, or started late): a gap with no line before it, of the events numbered from 1 (as
    tracekit counts; a log counting from 0 begins at 0 or 1) up to its first line. Its paths
    are undecided where the missing hop would be logged before that line ends (review 21d:
    40% of the cuts of a clean history read as false drops). The first run only: a restarted
    process's later run follows its earlier one, and a message missed while it was down is a
    drop. Lines without seq above its first line in its file are events whose seq was lost,
    not events the log lost (``seqless``)."""
    first = rows.group_by("source", maintain_order=True).first()
    above = (
        first.select("source", "file", first="line")
        .join(seqless.select("source", "file", "line"), on=["source", "file"])
        .filter(pl.col("line") < pl.col("first"))
        .group_by("source")
        .agg(pl.len().cast(_I64).alias("above"))
    )
    missing = pl.col("seq") - 1 - pl.col("above").fill_null(0)
    return (
        first.join(above, on="source", how="left")
        .filter((missing > 0) & (pl.col("pos") < (1 << RUN_BITS)))
        .select(
            "source",
            pl.lit(-1, dtype=_I64).alias("seq_before"),
            pl.col("seq").alias("seq_after"),
            missing.alias("missing"),
            # (the first line shows it: the finding's time)
            pl.col("t").alias("t_before"),
            pl.lit(_SINCE_EVER, dtype=_I64).alias("start_before"),
            pl.lit(_SINCE_EVER, dtype=_I64).alias("end_before"),
            pl.col("end").alias("end_after"),
            pl.lit(None, dtype=pl.String).alias("file_before"),
            pl.lit(None, dtype=_I64).alias("line_before"),
            pl.col("file").alias("file_after"),
            pl.col("line").alias("line_after"),
            (pl.col("pos") - 1).alias("pos_before"),
            pl.col("pos").alias("pos_after"),
        )
    )


def dropped_markers(
    hops: pl.LazyFrame, rest: pl.DataFrame, offsets: dict[str, int]
) -> pl.DataFrame:
    """``TRACEKIT.dropped``: the emitter itself says it lost events since its previous event.

    Only markers without ``seq`` (a log without seq: nothing else finds its losses). Every
    event tracekit loses takes a seq (session 25), so a loss in a numbered log is a seq jump,
    said with its count; a marker with a seq says nothing more, and where another copy of
    the log (its spans) holds the events the JSON sink lost, the seqs run on and nothing was
    lost (review 24a: the marker still held the paths before it back, hiding a real drop).
    """
    is_marker = (
        (pl.col("stage") == META_STAGE) & (pl.col("action") == "dropped") & pl.col("seq").is_null()
    )
    marked = rest.filter(is_marker).get_column("source").unique()
    if marked.is_empty():  # (the usual case: the frame's columns, nothing read)
        hops, rest = hops.head(0), rest.head(0)
    rows = _with_written(
        pl.concat(
            [
                as_text(
                    hops.filter(pl.col("source").is_in(marked.implode())).select(
                        "source", "seq", "pos", "ts", "duration_ms", "file", "line"
                    )
                )
                .with_columns(t=true_time(offsets))
                .select(*_LINE_COLS, marker=pl.lit(False), hop_line=pl.lit(True))
                .collect(engine=engine()),
                rest.filter(pl.col("source").is_in(marked.implode())).select(
                    *_LINE_COLS, is_marker.alias("marker"), hop_line=pl.lit(False)
                ),
            ]
        )
    ).sort("source", "pos", "t")
    before = ("seq", "t", "reach", "end", "file", "line", "pos")
    prev = {f"{c}_before": pl.col(c).shift(1).over("source") for c in before}
    return (
        rows.with_columns(**prev)
        .filter(pl.col("marker"))
        .select(
            "source",
            "seq_before",
            pl.col("seq").alias("seq_after"),
            pl.lit(None, dtype=pl.Int64).alias("missing"),
            "t_before",
            # (the first line of its log: lost since the log began)
            pl.col("reach_before").fill_null(_SINCE_EVER).alias("start_before"),
            pl.col("end_before").fill_null(_SINCE_EVER),
            # (the marker is written when it is stamped: it is no stage)
            pl.col("t").alias("end_after"),
            "file_before",
            "line_before",
            pl.col("file").alias("file_after"),
            pl.col("line").alias("line_after"),
            "pos_before",
            pl.col("pos").alias("pos_after"),
        )
        .with_columns(pl.col("seq_before", "pos_before").fill_null(-1))
    )


def grace_ns(p: Pipeline, grace: timedelta | None) -> int:
    g = p.grace if grace is None else grace
    return int(g.total_seconds() * 1_000_000_000)


def hop_window_ns(p: Pipeline, grace: timedelta | None) -> int:
    """How long a hop may take (ns): the model's :attr:`Pipeline.hop_window`, or the grace
    window where that is longer (a hop awaited that long at the end of the logs may take
    that long anywhere)."""
    return max(grace_ns(p, grace), grace_ns(p, p.hop_window))
