"""The analysis' compiled passes give exactly what their polars versions give, or decline.

``tracekit/analyzers/_passes.c`` counts each hop and finds its first row per message and per
(trace, recipient) in one pass (``firsts``; ``_paths._polars_wide`` is the same in polars,
and the fallback where the extension is not built), and picks the hop events of a few traces
(``rows_of``, for ``_paths._hops_of``), and finds the sources whose seqs do not rise line by
line (``unordered``, for the per-source stats' distinct count). These tests hold each to its polars version:
differential property tests on generated hop events (nulls, hops of neither side, several
chunks, named recipients never seen), a trace with more recipients than the kernel's chains
hold, and whole analyses with and without it. Likewise the lookups by code (a left join),
the clock correction's offset table, edge_stats' MAD off the sorted logs, and reorders'
grouping by one packed key.
"""

from __future__ import annotations

import itertools

import polars as pl
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import tracekit.analyzers._order as order_mod
import tracekit.analyzers._paths as paths_mod
from tracekit.analyzers import analyze, default_pipeline
from tracekit.analyzers._latency import _log_ms, _Logs, _median_deviation, edge_stats
from tracekit.analyzers._paths import (
    _coded,
    _hops_of,
    _lookup,
    _native_wide,
    _polars_wide,
    _source_stats,
    _unordered,
    _with_distinct,
    as_text,
    build_paths,
    rows_by_code,
)
from tracekit.synth import generate

MSG = [0, 1, 2, 3, 4]
RCP = [5, 6, 7, 8]
TRACES = [f"t{i}" for i in range(6)]
USERS = [f"u{i}" for i in range(5)]


def test_the_kernel_is_built() -> None:
    # Optional for users (setup.py); here it must exist, or the differential tests below
    # would compare polars with itself.
    assert paths_mod._passes is not None, "tracekit/analyzers/_passes.c did not build"


def hop_frame(rows: list[tuple[str | None, str | None, int | None]], cut: int) -> pl.DataFrame:
    """Hop events as build_paths has them (Categorical names, a hop only with a trace), in
    two chunks cut at ``cut``."""
    frame = pl.DataFrame(
        {
            "trace_id": [r[0] for r in rows],
            "recipient": [r[1] for r in rows],
            "hop": [r[2] if r[0] is not None else None for r in rows],
            "source": ["s"] * len(rows),
            "ts": list(range(len(rows))),
        },
        schema={
            "trace_id": pl.Categorical(),
            "recipient": pl.Categorical(),
            "hop": pl.Int32,
            "source": pl.Categorical(),
            "ts": pl.Int64,
        },
    )
    cut = min(cut, frame.height)
    return pl.concat([frame.head(cut), frame.tail(frame.height - cut)], rechunk=False)


def named_frame(pairs: list[tuple[str, str]]) -> pl.DataFrame:
    return pl.DataFrame(
        {"trace_id": [p[0] for p in pairs], "recipient": [p[1] for p in pairs]},
        schema={"trace_id": pl.Categorical(), "recipient": pl.Categorical()},
    ).with_columns(hop=pl.lit(-1, pl.Int32))


def by_key(frame: pl.DataFrame) -> pl.DataFrame:
    keys = [k for k in ("trace_id", "recipient") if k in frame.columns]
    return frame.sort([pl.col(k).cast(pl.String) for k in keys])


def assert_same(hops: pl.DataFrame, named: pl.DataFrame) -> tuple[pl.DataFrame, pl.DataFrame]:
    native = _native_wide(hops, named, MSG, RCP)
    assert native is not None
    expected = _polars_wide(_coded(hops), named, MSG, RCP)
    for got, want in zip(native, expected, strict=True):
        assert_frame_equal(by_key(got), by_key(want))
    return native


rows_strategy = st.lists(
    st.tuples(
        st.sampled_from([*TRACES, None]),
        st.sampled_from([*USERS, None]),
        st.one_of(st.none(), st.integers(0, 11)),  # 9-11: a hop of neither side
    ),
    max_size=80,
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=rows_strategy,
    named=st.lists(st.tuples(st.sampled_from(TRACES), st.sampled_from(USERS)), max_size=12),
    cut=st.integers(0, 80),
)
def test_the_kernel_gives_what_polars_gives(
    rows: list[tuple[str | None, str | None, int | None]],
    named: list[tuple[str, str]],
    cut: int,
) -> None:
    assert_same(hop_frame(rows, cut), named_frame(named))


def test_exact_counts_first_rows_and_named_pairs() -> None:
    hops = hop_frame(
        [
            ("t0", None, 0),  # send
            ("t0", "u1", 5),  # deliver to u1
            ("t0", "u1", 8),
            ("t0", "u1", 8),  # a duplicate add: counted twice, first row 2
            (None, None, None),  # not a hop event
            ("t0", None, 7),  # a recipient hop naming no one: the trace's row, no pair
            ("t1", "u2", 6),  # a trace with no message hop
        ],
        cut=3,
    )
    msg, pairs = assert_same(hops, named_frame([("t0", "u1"), ("t0", "u3")]))
    assert msg.select("trace_id", "n0", "r0").rows() == [("t0", 1, 0)]
    assert pairs.select("trace_id", "recipient", "n5", "r5", "n8", "r8", "named").rows() == [
        ("t0", "u1", 1, 1, 2, 2, True),
        ("t1", "u2", 0, None, 0, None, False),
        ("t0", "u3", 0, None, 0, None, True),  # named, never seen: after every seen pair
    ]


def test_a_trace_with_more_recipients_than_a_chain_holds() -> None:
    # A broadcast to a large group: past 16 recipients, a trace's pairs go to a hash table.
    users = [f"member{i}" for i in range(60)]
    rows: list[tuple[str | None, str | None, int | None]] = [("big", None, 0)]
    for hop in RCP:  # each hop to everyone, so every pair is looked up again and again
        rows += [("big", u, hop) for u in users]
    rows += [("big", u, 8) for u in users[::7]]  # some duplicates
    named = [("big", u) for u in [*users[::2], "absent1", "absent2"]]
    _, pairs = assert_same(hop_frame(rows, cut=100), named_frame(named))
    assert pairs.height == 62
    first = pairs.filter(pl.col("recipient") == "member7").row(0, named=True)
    assert (first["n8"], first["r8"], first["named"]) == (2, 1 + 3 * 60 + 7, False)


def test_no_hop_events() -> None:
    msg, pairs = assert_same(hop_frame([], 0), named_frame([]))
    assert msg.height == pairs.height == 0


FAULTS = ["drop", "duplicate", "reorder", "race_drop", "slow", "seq_gap", "unexpected", "skew"]


@pytest.mark.parametrize(("seed", "lost_sources"), [(3, False), (11, False), (6, True)])
def test_whole_analyses_agree_with_and_without_the_fast_paths(
    seed: int, lost_sources: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every fast path off at once: the compiled passes, and the lookups by code (as where the
    # codes are sparse), which then join or replace by name. The same paths, the same findings.
    # With lost_sources, some events name no source (a table given to analyze directly; the
    # collectors fill it in): such a hop's time is not shifted by a clock (review 12b).
    synth = generate(seed, messages=80, users=8, second_devices=0.3, faults=FAULTS)
    events = synth.frame()
    if lost_sources:
        lost = (pl.int_range(pl.len()) % 31) == 7
        events = events.with_columns(pl.when(~lost).then(pl.col("source")).alias("source"))
    fast = build_paths(events.lazy(), default_pipeline())
    assert fast.offsets
    report = analyze(events)
    monkeypatch.setattr(paths_mod, "_passes", None)
    monkeypatch.setattr(paths_mod, "rows_by_code", lambda keys, among: None)
    monkeypatch.setattr(order_mod, "rows_by_code", lambda keys, among: None)
    monkeypatch.setattr(paths_mod, "_offsets_by_code", lambda offsets, sources: None)
    slow = build_paths(events.lazy(), default_pipeline())
    assert_frame_equal(by_key(fast.msg), by_key(slow.msg))
    assert_frame_equal(by_key(fast.pairs), by_key(slow.pairs))
    assert_frame_equal(report.findings, analyze(events).findings)
    kinds = set(report.findings.get_column("kind"))
    assert {"duplicate", "reorder", "race", "log_gap"} <= kinds
    assert "drop" in kinds or lost_sources  # (its evidence may be among the lost sources)


def test_a_lookup_declines_sparse_codes() -> None:
    # An index from code to row as large as the codes: declined where it would be mostly
    # empty (the caller joins instead)
    keys = pl.Series([0, 50_000_000], dtype=pl.UInt32)
    assert rows_by_code(keys, pl.Series([50_000_000], dtype=pl.UInt32)) is None
    found = rows_by_code(
        pl.Series([7, 3, None, 9], dtype=pl.UInt32), pl.Series([3, 7], dtype=pl.UInt32)
    )
    assert found is not None and found.to_list() == [1, 0, None, None]


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    rows=rows_strategy,
    wanted=st.lists(st.sampled_from([*TRACES, "never-logged"]), max_size=4),
    hop=st.one_of(st.none(), st.integers(0, 9)),
    cut=st.integers(0, 80),
)
def test_the_hops_of_a_few_traces_are_polars_own(
    rows: list[tuple[str | None, str | None, int | None]],
    wanted: list[str],
    hop: int | None,
    cut: int,
) -> None:
    hops = hop_frame(rows, cut)
    traces = pl.LazyFrame({"trace_id": wanted}, schema={"trace_id": pl.String})
    got = _hops_of(hops, traces, hop).collect()
    try:
        saved, paths_mod._passes = paths_mod._passes, None
        want = _hops_of(hops, traces, hop).collect()
    finally:
        paths_mod._passes = saved
    assert_frame_equal(got, want)  # same rows, in log order
    assert set(got.get_column("trace_id")) <= set(wanted)


@settings(max_examples=100, deadline=None)
@given(
    left=st.lists(st.sampled_from([*TRACES, None]), max_size=30),
    right=st.lists(st.sampled_from(TRACES), unique=True, max_size=6),
    text=st.booleans(),
)
def test_a_lookup_by_code_is_a_left_join(
    left: list[str | None], right: list[str], text: bool
) -> None:
    # _lookup gathers by the key's code where polars hashed every key; text keys join
    dtype = pl.String if text else pl.Categorical()
    lf = pl.DataFrame(
        {"trace_id": left, "x": range(len(left))}, schema={"trace_id": dtype, "x": pl.Int64}
    )
    rf = pl.DataFrame(
        {"trace_id": right, "y": [f"y-{t}" for t in right], "z": range(len(right))},
        schema={"trace_id": dtype, "y": pl.String, "z": pl.Int64},
    )
    got = _lookup(lf, rf)
    want = lf.join(rf, on="trace_id", how="left", maintain_order="left")
    assert_frame_equal(got, want)


def test_the_passes_decline_what_is_no_arrow_column() -> None:
    # A column they do not take (no Arrow stream, another type) is a None, never an error:
    # the caller runs polars
    empty = pl.Series([], dtype=pl.UInt32)
    hop = pl.Series([], dtype=pl.Int32)
    passes = paths_mod._passes
    assert passes.firsts(object(), empty, hop, (0,), (1,), empty, empty) is None
    assert passes.firsts(pl.Series(["t1"]), empty, hop, (0,), (1,), empty, empty) is None
    assert passes.rows_of([1, 2], empty) is None
    nulls = named_frame([("t0", "u1")]).with_columns(
        pl.lit(None, pl.Categorical()).alias("recipient")
    )
    assert _native_wide(hop_frame([("t0", "u1", 5)], 1), nulls, MSG, RCP) is None


def test_text_names_give_the_same_findings() -> None:
    # Names as text in the table: no code is kept in Paths.msg (a code saved from a frame made
    # text may later stand for another string), reorders make theirs when run; and a second
    # device's clock pairs take its source as the other sources (review 12b: a crash).
    synth = generate(5, messages=80, users=8, second_devices=0.3, faults=["reorder", "drop"])
    events = synth.frame()
    as_text = events.with_columns(pl.col(pl.Categorical).cast(pl.String))
    assert build_paths(as_text.lazy(), default_pipeline()).msg.get_column("tc").null_count() > 0
    found = analyze(events).findings
    assert {"reorder", "drop"} <= set(found.get_column("kind"))
    assert_frame_equal(analyze(as_text).findings, found)


@settings(max_examples=300, deadline=None)
@given(
    lats=st.lists(
        st.one_of(st.integers(0, 10**8), st.integers(0, 3 * 10**6), st.just(5_000_000)),
        min_size=1,
        max_size=60,
    ),
    floor=st.sampled_from([0.0, 20.0]),
    where=st.one_of(st.none(), st.floats(-1.0, 6.0)),
)
def test_the_median_deviation_off_sorted_logs_is_polars_own(
    lats: list[int], floor: float, where: float | None
) -> None:
    # edge_stats' MAD by binary search over the two sorted runs of deviations: the same float
    # polars' group-by median of every deviation gives, to the bit (ties, odd and even counts)
    g = pl.select(_log_ms(pl.Series(sorted(lats), dtype=pl.Int64), floor)).to_series()
    m = float(g.median()) if where is None else where  # type: ignore[arg-type]
    assert _median_deviation(g, m) == (g - m).abs().median()


@settings(max_examples=100, deadline=None)
@given(
    lats=st.lists(
        st.one_of(st.integers(0, 10**10), st.integers(0, 2**52), st.integers(0, 3 * 10**6)),
        min_size=2,
        max_size=300,
    ),
    floor=st.sampled_from([0.0, 20.0, 2.5]),
    bits=st.integers(0, 8),
)
def test_the_logs_read_one_at_a_time_are_polars_column_of_them(
    lats: list[int], floor: float, bits: int
) -> None:
    # edge_stats computes the MAD's logs where it reads them (_Logs), not as a column: they
    # must be the column's to the bit (polars multiplies by 1e6's reciprocal there; a value
    # computed alone, by true division, differs in ~3% of cases)
    column = pl.select(_log_ms(pl.Series(lats, dtype=pl.Int64), floor)).to_series().to_list()
    high = 5 << 53  # an edge id in the bits above the latency's, masked off when read
    keys = pl.Series([high | x for x in lats], dtype=pl.Int64)
    mask = (1 << 53) - 1
    logs = _Logs(keys, mask, 0, len(lats), floor)
    assert [logs[i] for i in range(len(lats))] == column
    shifted = _Logs(pl.Series([0] * bits + lats, dtype=pl.Int64), -1, bits, len(lats), floor)
    assert list(shifted) == column


@settings(max_examples=100, deadline=None)
@given(
    lats=st.lists(st.integers(0, 10**10), min_size=1, max_size=80),
    same=st.integers(1, 12),
)
# (a latency whose log polars computes otherwise in a one-row frame than in a column)
@example(lats=[2_444_298_126], same=1)
@example(lats=[2_444_298_126], same=5)
def test_one_edges_median_is_its_samples_logs_median(lats: list[int], same: int) -> None:
    # A one-edge table: polars computed a lone row's log by true division, its samples' (a
    # column) by the reciprocal; the median then differed from the samples' logs in the last
    # bit, and an edge with no spread had a MAD of 1e-16, not 0 (review 14b). Now the median
    # is the samples' own, and a spread of zero is 0.
    p = default_pipeline()
    floor = p.outlier_floor.total_seconds() * 1e3
    for sample in (lats, [lats[0]] * same):
        frame = pl.DataFrame(
            {"eid": [3] * len(sample), "lat": sample}, schema={"eid": pl.UInt8, "lat": pl.Int64}
        )
        stats = edge_stats(frame.lazy(), p).row(0, named=True)
        logs = pl.select(_log_ms(pl.Series([*sample, 0], dtype=pl.Int64), floor)).to_series()
        assert stats["med_log"] == logs.head(len(sample)).median()
    assert stats["mad"] == 0.0


def test_the_mad_is_the_group_by_median_of_every_deviation() -> None:
    # edge_stats against what it replaced, a group-by median of each sample's deviation, on
    # edges of one sample (where polars' division of one value differs in the last bit from
    # that of a column, review 12b), two, and many
    lats = [7_000_000] + [3_000_000, 9_500_000] + [1_000_000 + 37_017 * i for i in range(500)]
    eids = [0] + [1, 1] + [2] * 500
    samples = pl.DataFrame(
        {"eid": eids, "lat": lats}, schema={"eid": pl.UInt8, "lat": pl.Int64}
    ).with_columns(row=pl.int_range(pl.len(), dtype=pl.UInt32), cross=pl.lit(False))
    p = default_pipeline()
    stats = edge_stats(samples.lazy(), p).sort("eid")
    floor = p.outlier_floor.total_seconds() * 1e3
    med = dict(stats.select("eid", "med_log").iter_rows())
    deviation = _log_ms(pl.col("lat"), floor) - pl.col("eid").replace_strict(
        med, return_dtype=pl.Float64
    )
    want = samples.group_by("eid").agg(deviation.abs().median().alias("mad")).sort("eid")
    assert stats.get_column("mad").to_list() == want.get_column("mad").to_list()
    assert stats.get_column("mad")[0] == 0.0


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(
            # small codes (one packed key) or large ones (the two sorts)
            st.one_of(st.integers(0, 7), st.integers(0, 2**40)),
            st.integers(0, 3),
            st.one_of(st.integers(0, 3), st.integers(0, 2**31)),
        ),
        max_size=40,
    )
)
def test_reorders_grouping_is_the_two_stable_sorts(rows: list[tuple[int, int, int]]) -> None:
    # reorders' store events by (conversation, device), log order kept in each group: one
    # sort of the packed codes where they fit, as the two stable sorts it replaced
    stored = pl.DataFrame(
        {
            "row": list(range(len(rows))),
            "gc": [c for c, _, _ in rows],
            "dev": [s * (1 << 32) + r for _, s, r in rows],
        },
        schema={"row": pl.UInt32, "gc": pl.UInt64, "dev": pl.UInt64},
    )
    want = stored.sort("dev", maintain_order=True).sort("gc", maintain_order=True)
    assert_frame_equal(order_mod._grouped(stored), want)


def source_frame(rows: list[tuple[str | None, int | None]], cut: int) -> pl.DataFrame:
    """Lines of sources (Categorical, some unnamed) and their seqs, in two chunks."""
    frame = pl.DataFrame(
        {
            "source": [r[0] for r in rows],
            "seq": [r[1] for r in rows],
            "ts": list(range(len(rows))),
        },
        schema={"source": pl.Categorical(), "seq": pl.Int64, "ts": pl.Int64},
    )
    cut = min(cut, frame.height)
    return pl.concat([frame.head(cut), frame.tail(frame.height - cut)], rechunk=False)


def test_the_sources_whose_seqs_fall_or_repeat() -> None:
    frame = source_frame(
        [
            ("a", 1), ("b", 5), ("a", 2), ("b", 5),  # b repeats 5
            ("c", 3), ("c", None), ("c", 2),  # c falls, past a line without a seq
            ("d", 1), (None, 7), (None, 4),  # unnamed lines fall
            ("a", 9), ("b", 1), ("d", None),  # b falls again: said once
        ],
        cut=5,
    )  # fmt: skip
    unordered = _unordered(frame)
    assert unordered is not None
    assert unordered.dtype == pl.Categorical()
    assert unordered.to_list() == ["b", "c", None]


@settings(max_examples=200, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.sampled_from(["a", "b", "c", None]), st.one_of(st.none(), st.integers(0, 6))),
        max_size=60,
    ),
    cut=st.integers(0, 60),
)
def test_the_distinct_seqs_are_polars_count(
    rows: list[tuple[str | None, int | None]], cut: int
) -> None:
    frame = source_frame(rows, cut)
    unordered = _unordered(frame)
    assert unordered is not None
    events = frame.lazy()
    want = as_text(_source_stats(events)).collect()
    got = _with_distinct(
        as_text(_source_stats(events, distinct=False)).collect(), events, unordered
    )
    assert_frame_equal(got, want, check_row_order=False, check_column_order=False)
    # the unordered ones are exactly those whose seqs do not rise line by line
    rising = {
        name
        for name in {r[0] for r in rows}
        if all(
            x < y
            for x, y in itertools.pairwise([q for s, q in rows if s == name and q is not None])
        )
    }
    assert set(unordered.to_list()) == {r[0] for r in rows} - rising
