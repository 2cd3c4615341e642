"""Latency per pipeline edge and end to end, on clock-corrected time; outliers and SLO breaches.

Outliers use the modified z-score (0.6745 * (x - median) / MAD) of the log latency, per edge,
only on the slow side, only with ``min_samples`` samples, and only when the latency also exceeds
the median by an absolute floor: that floor alone decides when the spread (MAD) is zero, and it
keeps sub-millisecond jitter from ever being an "outlier". The log is taken of the latency plus
that floor: a hop that takes 0 or 5 ms is fast either way, and the plain log of those (a factor
of 5, or of 500 against 0.01 ms) made its spread look wide enough to hide a 1000 ms spike. For
latencies well above the floor it is the log of the latency. A cross-host latency that is still
negative after correction is not a latency: it is left out and reported as a clock finding.

Samples are kept lean (edge id, row, latency, cross-host flag: 14 bytes a sample); names,
sources, files and lines are gathered back by row only for the few rows that become findings.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Final, overload

import polars as pl

from tracekit.analyzers._findings import evidence, findings, ms, ms_apart
from tracekit.analyzers._paths import Paths, col, engine, same_device
from tracekit.analyzers._pipeline import END_TO_END, Pipeline

__all__ = [
    "edge_stats",
    "latency_samples",
    "latency_stats",
    "negative_latencies",
    "outliers_and_slo",
]

_E2E = END_TO_END


def _edges(paths: Paths) -> list[tuple[str, str, str]]:
    """``(name, from, to)`` per measured edge: the pipeline's edges, then end to end."""
    p = paths.pipeline
    out = [(f"{a}->{b}", a, b) for a, b in p.edges]
    final = p.role("final")
    if final is not None:
        out.append((_E2E, p.roles["send"], final))
    return out


def _side(paths: Paths, to: str) -> pl.DataFrame:
    """The frame an edge into hop ``to`` is measured on: per (message, recipient) or per
    message."""
    return paths.pairs if paths.pipeline.hop(to).scope == "recipient" else paths.msg


def latency_samples(paths: Paths) -> pl.LazyFrame:
    """One row per measured pair: ``eid`` (index into the edges), ``row`` (the pair's or the
    message's row in the edge's :func:`_side`), ``lat`` (ns), ``cross``. No names: the trace
    ids as text were 48 bytes of the 62 a sample took (~0.35 GB at 5M events), and only the
    few samples that become findings need them (:func:`_enrich`)."""
    p = paths.pipeline
    frames: list[pl.LazyFrame] = [  # no edge at all (a one-hop pipeline): no sample
        pl.LazyFrame(
            schema={"eid": pl.UInt8, "row": pl.UInt32, "lat": pl.Int64, "cross": pl.Boolean}
        )
    ]
    for eid, (_, a, b) in enumerate(_edges(paths)):
        ia, ib = p.index(a), p.index(b)
        both = (pl.col(col("n", ia)).fill_null(0) > 0) & (pl.col(col("n", ib)).fill_null(0) > 0)
        if same_device(p, a, b):
            # first occurrences logged by two devices of the user: no latency between them
            both &= pl.col(col("src", ia)) == pl.col(col("src", ib))
        lat = pl.col(col("t", ib)) - pl.col(col("t", ia))
        retried = _from_last_attempt(paths, a, b, both) if p.hop(a).repeatable else None
        if retried is not None:
            # a lookup, not a join: the samples stay one projection of the side's columns (a
            # join of every sample kept another copy of them, 70 MB at 5M events)
            fixed = dict(zip(*retried.get_columns(), strict=True))
            lat = (
                pl.when(pl.col("row").is_in(list(fixed)))
                .then(pl.col("row").replace_strict(fixed, default=None, return_dtype=pl.Int64))
                .otherwise(lat)
            )
        frames.append(
            _side(paths, b)
            .lazy()
            .with_row_index("row")
            .filter(both)
            .select(
                pl.lit(eid, dtype=pl.UInt8).alias("eid"),
                "row",
                lat.alias("lat"),
                (pl.col(col("src", ia)) != pl.col(col("src", ib))).alias("cross"),
            )
        )
    return pl.concat(frames)


def _from_last_attempt(paths: Paths, a: str, b: str, both: pl.Expr) -> pl.DataFrame | None:
    """``(row, lat_retry)``: where hop ``a`` (repeatable: a client's retries) happened more than
    once, the latency into ``b`` from the attempt that led to it, the last ``a`` at or before
    ``b``; from the first attempt, a request lost and sent again 200 ms later made the server
    look 200 ms slow. ``None`` where no ``a`` repeated."""
    p = paths.pipeline
    ia, ib = p.index(a), p.index(b)
    keys = ["trace_id", "recipient"] if p.hop(a).scope == "recipient" else ["trace_id"]
    many = (
        _side(paths, b)
        .with_row_index("row")
        .filter(both & (pl.col(col("n", ia)) > 1))
        .select("row", *keys, t_b=pl.col(col("t", ib)))
    )
    if many.is_empty():
        return None
    attempts = paths.hops_of(many.lazy().select("trace_id").unique(), hop=ia).select(
        *keys, t_a=paths.true_time()
    )
    return (
        many.lazy()
        .join(attempts, on=keys)
        .filter(pl.col("t_a") <= pl.col("t_b"))
        .group_by("row")
        .agg(lat_retry=pl.col("t_b").first() - pl.col("t_a").max())
        .collect(engine=engine())
    )


def _enrich(rows: pl.LazyFrame, paths: Paths) -> pl.LazyFrame:
    """Names, sources, conversation, time and evidence for a few sample rows, gathered by
    their ``row`` from each edge's side (no join: a join hashes every pair or message)."""
    p = paths.pipeline
    few = rows.collect(engine=engine())
    parts: list[pl.DataFrame] = []
    # no edge (a one-hop pipeline) has no sample: the send "edge" gives the columns, no row
    send = p.roles["send"]
    edges = list(enumerate(_edges(paths) or [("", send, send)]))
    # Only the edges the rows are on (each edge's gathers were a dozen small collects, for
    # every edge of every call: ~150 an analysis, most of them over no row); one edge, empty,
    # where there is no row, for the columns.
    on = set(few.get_column("eid").unique().to_list())
    for eid, (name, a, b) in [e for e in edges if e[0] in on] or edges[:1]:
        ia, ib = p.index(a), p.index(b)
        rcp = p.hop(b).scope == "recipient"
        mine = few.filter(pl.col("eid") == eid)
        at = pl.lit(mine.get_column("row"))
        side = _side(paths, b).select(
            pl.col("trace_id").gather(at),
            (pl.col("recipient").gather(at) if rcp else pl.lit(None, dtype=pl.String)).alias(
                "recipient"
            ),
            pl.col("conv_id").gather(at),
            pl.col(col("t", ib)).gather(at).alias("t"),
            pl.col(col("src", ia)).gather(at).alias("src_a"),
            pl.col(col("src", ib)).gather(at).alias("src_b"),
            pl.col(col("r", ia)).gather(at).alias("r_a"),
            pl.col(col("r", ib)).gather(at).alias("r_b"),
        )
        side = paths.located(
            paths.located(side, "r_a", "file_a", "line_a"), "r_b", "file_b", "line_b"
        )
        side = side.drop("r_a", "r_b")
        parts.append(
            pl.concat([mine.drop("row"), side], how="horizontal").with_columns(
                pl.lit(name).alias("edge"), pl.lit(a).alias("from"), pl.lit(b).alias("to")
            )
        )
    # One chunk layout: the parts' columns come chunked apart (a gathered column, a literal),
    # and polars 2.1's streaming engine panics filtering such a frame (review 8d).
    return pl.concat(parts, how="diagonal_relaxed").rechunk().lazy()


def _r(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else round(float(x), 3)


def _log_ms(lat_ns: pl.Expr, floor_ms: float) -> pl.Expr:
    """log(latency + floor) in ms (at least log(1 ms)): differences far below the floor
    shrink, so they do not pass for spread."""
    return (lat_ns / 1e6 + floor_ms).clip(lower_bound=1.0).log()


_QUANTILES: Final = {"p50_ms": 0.5, "p95_ms": 0.95, "p99_ms": 0.99}
_STATS_SCHEMA: Final = pl.Schema(
    {
        "eid": pl.UInt8,
        "count": pl.UInt32,
        **dict.fromkeys(_QUANTILES, pl.Float64),
        "max_ms": pl.Float64,
        "med_log": pl.Float64,
        "mad": pl.Float64,
    }
)


def edge_stats(samples: pl.LazyFrame, p: Pipeline) -> pl.DataFrame:
    """Per edge: the report's percentiles and the outliers' robust statistics.

    Every sample's latency is sorted once, by edge then latency (:func:`_sorted_by_edge`), and
    the percentiles read off each edge's run (polars' "linear" quantile: ``frac * (hi - lo) +
    lo``), as is the median of their log (the log is monotonic); the spread (MAD) is a binary
    search over the run's logs. A group-by quantile selects afresh for each statistic: 116 ms
    against 39 ms for 1M events' samples; lists per edge held two more copies of them."""
    floor_ms = p.outlier_floor.total_seconds() * 1e3
    keys, mask, runs = _sorted_by_edge(samples.filter(pl.col("lat") >= 0).select("eid", "lat"))
    if not runs:
        return pl.DataFrame(schema=_STATS_SCHEMA)
    # each quantile's two neighbouring samples and the fraction between them, per edge (the
    # index as polars computes it: (n - 1) * q in float64, floored and ceiled)
    picks: dict[str, list[Any]] = {"eid": [], "count": [], "last": []}
    for e, start, n in runs:
        picks["eid"].append(e)
        picks["count"].append(n)
        picks["last"].append(start + n - 1)
        for name, q in _QUANTILES.items():
            idx = (n - 1) * q
            picks.setdefault(f"lo_{name}", []).append(start + math.floor(idx))
            picks.setdefault(f"hi_{name}", []).append(start + math.ceil(idx))
            picks.setdefault(f"frac_{name}", []).append(idx - math.floor(idx))
    frame = pl.DataFrame(
        {
            k: keys.gather(v) & mask if k.startswith(("lo_", "hi_", "last")) else v
            for k, v in picks.items()
        },
        schema_overrides={"eid": pl.UInt8, "count": pl.UInt32},
    )

    def at(name: str, of: Callable[[pl.Expr], pl.Expr]) -> pl.Expr:
        lo, hi = of(pl.col(f"lo_{name}")), of(pl.col(f"hi_{name}"))
        return pl.col(f"frac_{name}") * (hi - lo) + lo

    def ms(ns: pl.Expr) -> pl.Expr:
        return ns / 1e6

    per_edge = frame.select(
        "eid",
        "count",
        *[at(name, ms).alias(name) for name in _QUANTILES],
        ms(pl.col("last")).alias("max_ms"),
    )
    # The median of the logs and their MAD off the sorted logs (see _median_deviation): a
    # group-by median of every sample's deviation took 0.12 s at 5M events, this a few ms.
    # The logs are computed where they are read (_Logs: the log of every sample took 0.2 s at
    # 5M events, on one core), the median's too: polars computes a lone row's by another
    # division than a column's, and a one-edge table's median then differed from its
    # samples' logs in the last bit (a zero spread read as 1e-16, review 14b).
    lo, hi, frac = (frame.get_column(f"{k}_p50_ms").to_list() for k in ("lo", "hi", "frac"))
    # (as polars' linear quantile: frac * (hi - lo) + lo, in that order)
    med = [
        f * (_log_one(b, floor_ms) - _log_one(a, floor_ms)) + _log_one(a, floor_ms)
        for a, b, f in zip(lo, hi, frac, strict=True)
    ]
    mads = [
        _median_deviation(_Logs(keys, mask, start, n, floor_ms), m)
        for (_, start, n), m in zip(runs, med, strict=True)
    ]
    return per_edge.with_columns(
        pl.Series("med_log", med, dtype=pl.Float64), pl.Series("mad", mads, dtype=pl.Float64)
    )


def _sorted_by_edge(samples: pl.LazyFrame) -> tuple[pl.Series, int, list[tuple[int, int, int]]]:
    """The samples (``eid``, ``lat``: none negative) sorted by edge, then latency, as keys
    whose bits under the mask (the second value) are the latency; and per edge present,
    ascending, ``(eid, start, count)`` of its run. (Only the keys are kept: the latencies are
    read through the mask where they are needed, not copied out of them.)

    One sort of one integer key, the edge in the high bits and the latency in the low ones: a
    group-by sorting each edge's list took 0.15-0.25 s for 5M events' samples, this 0.08-0.10
    s. Where the key would not fit (latencies of years), a sort by the two columns."""
    ok = samples.collect(engine=engine())
    top, last = ok.select(pl.col("lat").max(), pl.col("eid").cast(pl.Int64).max()).row(0)
    if top is None:  # no sample
        return pl.Series("lat", [], dtype=pl.Int64), -1, []
    bits = int(top).bit_length()
    starts = range(int(last) + 2)
    if bits + int(last).bit_length() > 62:
        both = ok.sort("eid", "lat")
        keys, mask, at = both.get_column("lat"), -1, both.get_column("eid").cast(pl.Int64)
        bounds = pl.Series(list(starts), dtype=pl.Int64)
    else:
        key = (pl.col("eid").cast(pl.Int64) * (1 << bits) + pl.col("lat")).sort()
        at = keys = ok.select(key).to_series()
        del ok  # (the sort's input, freed before the callers' next copies)
        mask = (1 << bits) - 1
        bounds = pl.Series([e << bits for e in starts], dtype=pl.Int64)
    # where each edge's run begins (and the last ends): a binary search each, no pass
    edge = at.search_sorted(bounds, side="left").to_list()
    runs = [(e, edge[e], edge[e + 1] - edge[e]) for e in starts[:-1] if edge[e + 1] > edge[e]]
    return keys, mask, runs


class _Logs(Sequence[float]):
    """:func:`_log_ms` of a run of sorted latencies (``keys[start:start + n] & mask``), each
    computed when read: to the bit as polars computes a column of them (it multiplies by the
    divisor's reciprocal, and its log is libm's; a property test holds it to that)."""

    def __init__(self, keys: pl.Series, mask: int, start: int, n: int, floor_ms: float) -> None:
        self._keys, self._mask, self._start, self._n = keys, mask, start, n
        self._floor = floor_ms

    def __len__(self) -> int:
        return self._n

    @overload
    def __getitem__(self, i: int) -> float: ...
    @overload
    def __getitem__(self, i: slice) -> Sequence[float]: ...
    def __getitem__(self, i: int | slice) -> float | Sequence[float]:
        if isinstance(i, slice) or not 0 <= i < self._n:
            raise IndexError(i)  # (only what _median_deviation reads)
        return _log_one(int(self._keys[self._start + i]) & self._mask, self._floor)


def _log_one(ns: int, floor_ms: float) -> float:
    """:func:`_log_ms` of one latency, as polars computes it in a column (not alone)."""
    return math.log(max(ns * _PER_NS_MS + floor_ms, 1.0))


_PER_NS_MS: Final = 1 / 1e6


def _median_deviation(g: Sequence[float], m: float) -> float:
    """``(g - m).abs().median()`` of ``g`` sorted ascending, as polars computes it, without a
    pass over ``g``: the deviations fall to ``m`` and rise after it, two sorted runs (``m -
    g[i]`` leftwards of where ``m`` would go, ``g[j] - m`` from there), so their k-th smallest
    is a binary search (O(log n) reads). Polars' median of an even count is ``a + (b - a) *
    0.5`` of the middle two; the values are polars' own (its log, IEEE subtraction), so the
    result is the same to the bit."""
    n = len(g)
    split = bisect.bisect_left(g, m)  # g[:split] < m <= g[split:]

    def left(t: int) -> float:  # t-th smallest deviation left of m
        return m - float(g[split - 1 - t])

    def right(t: int) -> float:  # t-th smallest deviation from m on
        return float(g[split + t]) - m

    def kth(k: int) -> float:
        a, b = split, n - split
        lo, hi = max(0, k + 1 - b), min(k + 1, a)  # how many of the k + 1 smallest are left
        while lo < hi:
            i = (lo + hi) // 2
            if left(i) < right(k - i):  # the i + 1-th left one is among them
                lo = i + 1
            else:
                hi = i
        j = k + 1 - lo
        return max([left(lo - 1)] * bool(lo) + [right(j - 1)] * bool(j))

    if n % 2:
        return kth(n // 2)
    lo_mid, hi_mid = kth(n // 2 - 1), kth(n // 2)
    return lo_mid + (hi_mid - lo_mid) * 0.5


def latency_stats(stats: pl.DataFrame, paths: Paths) -> dict[str, Any]:
    """The report's ``latency`` section: per edge in pipeline order, then end to end."""
    by_edge = {r["eid"]: r for r in stats.iter_rows(named=True)}
    keys = ("p50_ms", "p95_ms", "p99_ms", "max_ms")
    empty: dict[str, Any] = {"count": 0, **dict.fromkeys(keys)}
    blocks: dict[str, dict[str, Any]] = {}
    for eid, (name, _, _) in enumerate(_edges(paths)):
        r = by_edge.get(eid)
        blocks[name] = (
            dict(empty) if r is None else {"count": int(r["count"]), **{k: _r(r[k]) for k in keys}}
        )
    hops = [{"from": a, "to": b, **blocks[f"{a}->{b}"]} for a, b in paths.pipeline.edges]
    return {"hops": hops, "end_to_end": blocks.get(_E2E, empty)}


def outliers_and_slo(
    samples: pl.LazyFrame, paths: Paths, stats: pl.DataFrame | None = None
) -> pl.LazyFrame:
    p = paths.pipeline
    edges = _edges(paths)
    e2e = next((i for i, (name, _, _) in enumerate(edges) if name == _E2E), -1)
    floor = p.outlier_floor.total_seconds() * 1e3
    # (read three times below; a no-op when collected)
    samples = samples.collect(engine=engine()).lazy()
    ok = samples.filter(pl.col("lat") >= 0)
    if stats is None:
        stats = edge_stats(samples, p)
    # Only rows past median + floor are scored: thresholds go in as a lookup, not as a join of
    # every sample.
    usable = stats.filter(
        (pl.col("eid") != e2e) & (pl.col("count") >= p.outlier_min_samples)
    ).select("eid", pl.col("p50_ms").alias("med_ms"), "med_log", "mad")
    above = {r["eid"]: int((r["med_ms"] + floor) * 1e6) for r in usable.iter_rows(named=True)}
    candidates = ok.filter(pl.col("lat") > _per_edge(above, len(edges))).join(
        usable.lazy(), on="eid"
    )
    # Scored on the shortest latency the clock bounds allow: a cross-host sample is corrected
    # with estimated offsets, and where a clock is known only on one side (a client that only
    # receives) its estimate can be off by tens of ms. A spike has to stand out whatever the
    # offsets are within their bounds.
    least = _least_latency(_enrich(candidates, paths), paths)
    scored = least.with_columns(
        z=0.6745 * (_log_ms(pl.col("lat_lo"), floor) - pl.col("med_log")) / pl.col("mad")
    ).filter(
        (pl.col("lat_lo") > pl.col("med_ms") * 1e6 + floor * 1e6)
        & ((pl.col("mad") == 0) | (pl.col("z") > p.outlier_z))
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
            "{} took {} ms{}{} (median {} ms, modified z-score {})",
            pl.col("edge"),
            ms(pl.col("lat")),
            rcp,
            pl.when(pl.col("lat_lo") < pl.col("lat"))
            .then(pl.format(", at least {} ms within the clock bounds", ms(pl.col("lat_lo"))))
            .otherwise(pl.lit("")),
            pl.col("med_ms").round(1).cast(pl.String),
            pl.when(pl.col("mad") == 0)
            .then(pl.lit("inf"))
            .otherwise(pl.col("z").round(1).cast(pl.String)),
        ),
        evidence=evidence(("file_a", "line_a"), ("file_b", "line_b")),
        at="t",
    )
    ids = {name: i for i, (name, _, _) in enumerate(edges)}
    limits = {ids[k]: int(v.total_seconds() * 1e9) for k, v in p.slo.items() if k in ids}
    if not limits:
        return outl
    slo_ns = _per_edge(limits, len(edges))
    # Judged on the corrected latency, as the SLO is stated; where the clock bounds allow a
    # latency within it (a client that only receives is bounded on one side: every receive
    # may look seconds late if its clock runs ahead), the detail says the breach is not sure.
    breach = _least_latency(
        _enrich(ok.filter(pl.col("lat") > slo_ns).with_columns(slo_ns.alias("slo_ns")), paths),
        paths,
    )
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
            "{}{} took {} ms{}, above the {} ms SLO{}",
            pl.col("edge").replace(_E2E, "end to end: "),
            pl.when(pl.col("edge") == _E2E)
            .then(pl.format("{} -> {}", pl.col("from"), pl.col("to")))
            .otherwise(pl.lit("")),
            ms_apart(pl.col("lat"), pl.col("slo_ns")),
            rcp,
            ms_apart(pl.col("slo_ns"), pl.col("lat")),
            _unsure(paths),
        ),
        evidence=evidence(("file_a", "line_a"), ("file_b", "line_b")),
        at="t",
    )
    return pl.concat([outl, slo])


def _unsure(paths: Paths) -> pl.Expr:
    """An SLO breach's caveat where the clock bounds (``lat_lo``, :func:`_least_latency`)
    allow a latency within the SLO, naming the clock most of the doubt comes from: the
    receiving side's room to run further ahead than estimated (``hi - offset``) or the
    sending side's to run further behind (``offset - lo``), whichever is larger (review 15a:
    a sender known to 605 ms was left out for a receiver whose missing bound was worth 5
    ms). None where the two sources' own tightest pair binds (``lat_direct``): neither
    clock alone is the doubt."""
    clock = paths.clock

    def said(s: str) -> str:
        c = clock[s]
        if c.uncertainty_ns is not None:
            return f"{s}'s clock is known to within {c.uncertainty_ns / 1e6:.1f} ms"
        if math.isfinite(c.lo_ns) or math.isfinite(c.hi_ns):
            return f"{s}'s clock is bounded on one side only"
        return f"{s}'s clock is bounded by no pair"

    a, b = pl.col("src_a").cast(pl.String), pl.col("src_b").cast(pl.String)
    ahead = _by_source(b, {s: c.hi_ns - c.offset_ns for s, c in clock.items()}, 0.0)
    behind = _by_source(a, {s: c.offset_ns - c.lo_ns for s, c in clock.items()}, 0.0)
    names = {s: said(s) for s in clock}
    which = (
        pl.when(pl.col("lat_direct"))
        .then(pl.lit(None, dtype=pl.String))
        .when(ahead >= behind)
        .then(_by_source(b, names, None, pl.String()))
        .otherwise(_by_source(a, names, None, pl.String()))
    )
    lo = pl.col("lat_lo")
    # (-inf: nothing bounds it; 0: only the pair itself, a receive after its send)
    least = pl.when(lo.is_finite() & (lo > 0)).then(lo)
    return (
        pl.when(lo <= pl.col("slo_ns"))
        .then(
            pl.format(
                "; not certain: {}{}",
                pl.when(least.is_not_null())
                .then(pl.format("at least {} ms within the clock bounds", ms(least)))
                .otherwise(pl.lit("within the SLO at some clock offsets the logs allow")),
                pl.when(which.is_not_null()).then(pl.format(" ({})", which)).otherwise(pl.lit("")),
            )
        )
        .otherwise(pl.lit(""))
    )


def _by_source(
    side: pl.Expr,
    values: Mapping[str, float] | Mapping[str, str],
    default: float | None,
    dtype: pl.DataType | None = None,
) -> pl.Expr:
    """``values`` of each row's source (``side``, as text); ``default`` for another."""
    return side.replace_strict(values, default=default, return_dtype=dtype or pl.Float64())


def _per_edge(values: Mapping[int, int], edges: int) -> pl.Expr:
    """Each sample's value of ``values`` by its edge (``eid``), null for an edge without one:
    a gather from a table by edge, where a replace_strict hashed every sample (5.7M samples:
    46 -> 20 ms)."""
    table = pl.Series([values.get(e) for e in range(edges)], dtype=pl.Int64)
    return pl.lit(table).gather(pl.col("eid"))


def _least_latency(rows: pl.LazyFrame, paths: Paths) -> pl.LazyFrame:
    """``lat_lo``: the shortest latency the clocks allow. With ``true = ts - offset``, the true
    latency is the corrected one minus how much further ``offset_b - offset_a`` may go than the
    estimates put it: up to ``hi_b - lo_a`` (each source against the reference), or up to the
    tightest pair of the two sources themselves (``Paths.clock_pairs``), whichever is smaller
    (``lat_direct``: the pair). -inf where nothing bounds it, the latency itself on one host."""
    est = {s: c.offset_ns for s, c in paths.clock.items()}
    hi = {s: c.hi_ns for s, c in paths.clock.items()}
    lo = {s: c.lo_ns for s, c in paths.clock.items()}
    a, b = pl.col("src_a").cast(pl.String), pl.col("src_b").cast(pl.String)
    estimated = _by_source(b, est, 0.0) - _by_source(a, est, 0.0)  # offset_b - offset_a
    via_reference = _by_source(b, hi, math.inf) - _by_source(a, lo, -math.inf)
    pairs = {f"{x}\x1f{y}": float(w) for (x, y), w in paths.clock_pairs.items()}
    direct = _by_source(pl.concat_str([a, b], separator="\x1f"), pairs, math.inf)
    slack = (pl.min_horizontal(via_reference, direct) - estimated).clip(lower_bound=0.0)
    one_host = pl.col("src_a") == pl.col("src_b")
    return rows.with_columns(
        lat_lo=pl.when(one_host)
        .then(pl.col("lat").cast(pl.Float64))
        .otherwise(pl.col("lat") - slack),
        lat_direct=~one_host & (direct < via_reference),
    )


#: One order for every column of a group's worst pair: all of its columns from one row (each
#: broke a tie in the latency by its own value, review 20c: a trace and another's lines).
_WORST: Final = ("lat", "trace_id", "file_a", "line_a", "file_b", "line_b")


def negative_latencies(samples: pl.LazyFrame, paths: Paths) -> pl.LazyFrame:
    """Cross-host pairs still reversed after correction, per source pair."""
    rows = _enrich(samples.filter((pl.col("lat") < 0) & pl.col("cross")), paths)
    return (
        rows.group_by("src_a", "src_b")
        .agg(
            # the worst pair, named: its message and both lines (review 20b: no trace, no line)
            *[
                pl.col(c).sort_by(_WORST).first()
                for c in ("edge", "trace_id", "file_a", "line_a", "file_b", "line_b")
            ],
            n=pl.len(),
            worst=pl.col("lat").min(),
        )
        .sort("src_a", "src_b")
    )
