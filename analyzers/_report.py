"""``analyze``: every finding kind, latency and clock over one pass, assembled as the report."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import timedelta
from functools import partial
from typing import Any, Final

import polars as pl

from tracekit.analyzers._drops import drop_candidates, drops_and_in_flight, judged_candidates
from tracekit.analyzers._duplicates import duplicates, resends, unexpected
from tracekit.analyzers._findings import FINDING_SCHEMA, KINDS, empty_findings, findings
from tracekit.analyzers._gaps import clock_findings, log_gaps
from tracekit.analyzers._latency import (
    edge_stats,
    latency_samples,
    latency_stats,
    negative_latencies,
    outliers_and_slo,
)
from tracekit.analyzers._order import races, reorders
from tracekit.analyzers._paths import (
    Paths,
    as_text,
    build_paths,
    col,
    engine,
    engine_for,
    in_context,
)
from tracekit.analyzers._pipeline import END_TO_END, Pipeline, checked_window, default_pipeline
from tracekit.analyzers._removed import removed
from tracekit.analyzers._window import hops_outside, left_out_of
from tracekit.errors import PipelineError
from tracekit.schema import META_STAGE
from tracekit.table import TIMESTAMP_DTYPE, canonical_trace_ids

__all__ = ["REPORT_SCHEMA", "Report", "analyze", "timeline", "with_overrides"]

REPORT_SCHEMA: Final = "tracekit.report/1"
_INPUT_KEYS: Final = ("files", "lines", "events", "malformed")
_SORT: Final = ["rank", "at", "trace_id", "recipient", "stage", "source", "detail"]


@dataclass(frozen=True)
class Report:
    """The analysis of one event table (DESIGN.md section 6)."""

    findings: pl.DataFrame
    summary: dict[str, Any]
    latency: dict[str, Any]
    clock: list[dict[str, Any]]
    inputs: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        rows = []
        for r in self.findings.iter_rows(named=True):
            at = r["at"]
            rows.append(
                {
                    "kind": r["kind"],
                    "trace_id": r["trace_id"],
                    "recipient": r["recipient"],
                    "stage": r["stage"],
                    "last_seen": r["last_seen"],
                    "conv_id": r["conv_id"],
                    "source": r["source"],
                    "detail": r["detail"],
                    "evidence": [{"file": e["file"], "line": e["line"]} for e in r["evidence"]],
                    "at": at.isoformat().replace("+00:00", "Z") if at is not None else None,
                }
            )
        return {
            "schema": REPORT_SCHEMA,
            "inputs": dict(self.inputs),
            "summary": dict(self.summary),
            "findings": rows,
            "latency": self.latency,
            "clock": list(self.clock),
        }


def with_overrides(
    pipeline: Pipeline | None,
    *,
    grace: timedelta | None = None,
    slo: Mapping[str, timedelta] | None = None,
) -> Pipeline:
    """The pipeline with the caller's grace window and SLOs (``end_to_end`` or ``"A->B"``)."""
    if pipeline is not None and not isinstance(pipeline, Pipeline):
        # a path given where the model goes: said now, not as an AttributeError later
        raise TypeError(
            f"pipeline: a Pipeline (load_pipeline(path)), got {type(pipeline).__name__}"
        )
    p = pipeline or default_pipeline()
    if slo:
        edges = {f"{a}->{b}" for a, b in p.edges}
        for key, value in slo.items():
            if key != END_TO_END and key not in edges:
                raise PipelineError(
                    f"unknown SLO {key!r} (use {END_TO_END!r} or an edge of: "
                    f"{', '.join(sorted(edges))})"
                )
            checked_window(value, f"slo[{key!r}]")
        p = replace(p, slo={**p.slo, **slo})
    if grace is not None:
        p = replace(p, grace=checked_window(grace, "grace"))
    return p


def _clock_section(paths: Paths) -> list[dict[str, Any]]:
    out = []
    for s, c in sorted(paths.clock.items()):
        out.append(
            {
                "source": s,
                "offset_ms": round(c.offset_ns / 1e6, 3),
                "uncertainty_ms": None
                if c.uncertainty_ns is None
                else round(c.uncertainty_ns / 1e6, 3),
                "reference": s == paths.reference or c.against == s,
                "samples": c.samples,
                # the reference of its part of the logs (None: no pair ties it to one)
                "against": c.against,
            }
        )
    return out


def analyze(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    pipeline: Pipeline | None = None,
    grace: timedelta | None = None,
    slo: Mapping[str, timedelta] | None = None,
    inputs: Mapping[str, Any] | None = None,
    left_out: pl.LazyFrame | pl.DataFrame | None = None,
) -> Report:
    """Analyze an event table (``EVENT_SCHEMA``) against ``pipeline`` (default: the chat one).

    ``grace`` defaults to the pipeline's (5 s for the built-in one); ``slo`` adds or overrides
    thresholds (``{"end_to_end": timedelta(milliseconds=500)}``); ``inputs`` (the collectors'
    counts) is copied into the report. ``left_out``: the events a reading left out of
    ``events`` on purpose (a time window; ``source`` and ``seq``, and where given ``file``,
    ``line``, ``timestamp`` and ``duration_ms``): their seq numbers are no loss of the logs
    (no ``log_gap`` for them; :mod:`tracekit.analyzers._window`); with ``trace_id``,
    ``stage``, ``action`` (and ``peer``, ``actor``, ``level``), a path whose next hop is
    among them is cut by the window (``in_flight``), and no other is held back.
    """
    p = with_overrides(pipeline, grace=grace, slo=slo)
    outside = hops_outside(p, left_out.lazy()) if left_out is not None else None
    bcast = p.role("broadcast")
    cut = (
        outside.filter(pl.col("stage") == bcast).get_column("trace_id")
        if outside is not None and bcast is not None
        else None
    )
    paths = build_paths(events.lazy(), p, cut=cut)
    if left_out is not None:
        paths = left_out_of(paths, left_out.lazy(), outside)
    # the analysis' size decides the engine of its queries, here and on the pool's threads
    with engine_for(paths.hops.height):
        return _report(paths, inputs)


def _report(paths: Paths, inputs: Mapping[str, Any] | None) -> Report:
    """The finding kinds over ``paths`` and the report of them."""
    p = paths.pipeline

    counted: dict[str, int] = {}  # (counts the kinds leave for the report)

    def gapless() -> pl.DataFrame:  # drops and in-flight paths, and where gaps explain them
        judged = judged_candidates(paths)
        # paths lines naming no recipient may complete: no finding of their own to count
        # (also those in flight or in a log gap: undecided for that reason too)
        counted["unnamed"] = judged.filter(pl.col("unnamed")).height
        cand = judged.lazy()
        return pl.concat(
            [
                drops_and_in_flight(paths, cand=cand).collect(engine=engine()),
                log_gaps(paths, cand).collect(engine=engine()),
            ]
        )

    def collected(kind: Callable[[Paths], pl.LazyFrame]) -> pl.DataFrame:
        return kind(paths).collect(engine=engine())

    def latency() -> tuple[pl.DataFrame, pl.DataFrame]:  # outliers, SLO breaches, clock; stats
        samples = latency_samples(paths).collect(engine=engine())
        # a pair on one host stamped backwards is no latency and no clock's doing: said, as
        # the statistics leave it out (review 24b: a sample missing without a word)
        counted["backwards"] = samples.filter((pl.col("lat") < 0) & ~pl.col("cross")).height
        stats = edge_stats(samples.lazy(), p)
        negatives = negative_latencies(samples.lazy(), paths).collect(engine=engine())
        kinds = [
            outliers_and_slo(samples.lazy(), paths, stats),
            clock_findings(paths, negatives),
        ]
        return pl.concat([k.collect(engine=engine()) for k in kinds]), stats

    # Each kind is many small steps, most on one core: two run at a time, on threads (polars
    # works without the GIL), so one's Python and small frames overlap the other's. Not all
    # at once, nor as one plan: every kind's intermediate frames alive together were the
    # analysis' peak (~0.25 GB more at 5M events).
    pool = ThreadPoolExecutor(2, thread_name_prefix="tracekit-analyze")
    try:
        # (the drops first: the races read their verdicts)
        drops = pool.submit(in_context(gapless))
        kinds = [
            pool.submit(in_context(partial(collected, f)))
            for f in (reorders, races, duplicates, unexpected)
        ]
        lat = pool.submit(in_context(latency))
        found = pl.concat([drops.result(), *(k.result() for k in kinds), lat.result()[0]])
        stats = lat.result()[1]
    finally:  # an error or an interrupt: the kinds not begun are not run
        pool.shutdown(cancel_futures=True)
    found = _explain_clock(sort_findings(found))  # it names findings in report order
    skipped = dict((inputs or {}).get("malformed_lines") or {})
    found = _skipped_lines(found, skipped, paths) if skipped else found
    misspelt = _misspellings(paths)
    return Report(
        findings=found,
        summary=_summary(paths, found) | {"unnamed_paths": counted.get("unnamed", 0)},
        latency=latency_stats(stats, paths),
        clock=_clock_section(paths),
        # (no reading's account, as for a table or dicts: the events are the table's)
        inputs=_with_warnings(
            {k: int((inputs or {}).get(k, 0)) for k in _INPUT_KEYS}
            | ({} if inputs is not None else {"events": _events_of(paths)})
            | {k: v for k, v in (inputs or {}).items() if k not in _PRIVATE_INPUTS},
            [
                said
                for said in (
                    _misspelt_hops(misspelt, p),
                    _unread_lists(paths),
                    *_unlogged_emitters(paths, {hop for _, _, hop in misspelt}),
                    _backwards(counted.get("backwards", 0)),
                )
                if said
            ],
        ),
    )


#: The reading's account keys the report does not copy: the counts it writes itself, and the
#: malformed lines' numbers (read here, a list per file: no part of the report).
_PRIVATE_INPUTS: Final = (*_INPUT_KEYS, "malformed_lines")

_JUMP: Final = re.compile(r"(\d+) event\(s\) lost by the logging")


def _skipped_lines(
    found: pl.DataFrame, skipped: Mapping[str, list[int]], paths: Paths
) -> pl.DataFrame:
    """A ``log_gap`` across lines the reading skipped (malformed) says so: the logging need
    not have lost those events; tracekit may not have read them (review 19a: every malformed
    line with a seq read as "lost by the logging"). A gap from one file to the next (a
    rotated log) spans the first's lines after its last event and the second's before, where
    the first ends and the second begins with the gap (two files a source writes by turns,
    stdout and stderr, are no rotation: review 20c)."""
    details = found.get_column("detail").to_list()
    changed = False
    spans: dict[tuple[str, str], tuple[int, int]] | None = None  # (made where needed)
    for i, (kind, source, evidence) in enumerate(
        found.select("kind", "source", "evidence").iter_rows()
    ):
        ends = [(e["file"], e["line"]) for e in evidence or []]
        if kind != "log_gap" or not ends or len(ends) > 2:
            continue
        if len(ends) == 1:  # (a log's lost beginning: the lines above its first, :func:`_begun`)
            begun = _BEGUN.search(details[i])
            if begun is not None:
                said = _begun(details[i], begun, ends[0], skipped)
                changed, details[i] = changed or said != details[i], said
            continue
        (first, before), (last, after) = ends
        if first != last:  # a rotation: the first file ends with the gap, the next begins
            spans = spans if spans is not None else _file_spans(paths)
            if (
                spans.get((source, first), (0, 0))[1] != before
                or spans.get((source, last), (0, 0))[0] != after
            ):
                continue
        inside = {
            file: lines
            for file, lines in (
                [(first, [n for n in skipped.get(first, ()) if before < n < after])]
                if first == last
                else [
                    (first, [n for n in skipped.get(first, ()) if n > before]),
                    (last, [n for n in skipped.get(last, ()) if n < after]),
                ]
            )
            if lines
        }
        jump = _JUMP.search(details[i])
        if not inside or jump is None:
            continue
        missing, k = int(jump.group(1)), sum(map(len, inside.values()))
        where = "; ".join(
            f"{file}: line "
            + ", ".join(map(str, sorted(lines)[:5]))
            + (" ..." if len(lines) > 5 else "")
            for file, lines in inside.items()
        )
        # which lines they were is not known (one may be an app's traceback): said as may be;
        # after a "; ", so the jump's words (watch's key) hold no file name (review 19c)
        # a line holds one event at most: past k, the logging lost them (review 19d)
        said = (
            f"{missing} event(s) missing; {k} line(s) between them could not be read "
            f"({where}, malformed): "
            + (
                "the events may be among them, not lost by the logging"
                if k >= missing
                else f"{k} may be among them, the other {missing - k} lost by the logging"
            )
        )
        details[i] = details[i][: jump.start()] + said + details[i][jump.end() :]
        changed = True
    return found.with_columns(detail=pl.Series(details, dtype=pl.String)) if changed else found


_BEGUN: Final = re.compile(
    r"(\d+) earlier event\(s\) are not in these logs \(a log begun mid-traffic: rotated, cut "
    r"or started late\)"
)


def _begun(
    detail: str, begun: re.Match[str], first: tuple[str, int], skipped: Mapping[str, list[int]]
) -> str:
    """A log's lost beginning over lines of its file the reading skipped (malformed) above
    its first event: they may be the events, not a log begun mid-traffic (as for a gap,
    :func:`_skipped_lines`)."""
    file, line = first
    lines = sorted(n for n in skipped.get(file, ()) if n < line)
    if not lines:
        return detail
    missing, k = int(begun.group(1)), len(lines)
    said = (
        f"{missing} earlier event(s) missing; {k} line(s) above it could not be read ({file}: "
        f"line {', '.join(map(str, lines[:5]))}{' ...' if k > 5 else ''}, malformed): "
        + (
            "the events may be among them, not a log begun mid-traffic"
            if k >= missing
            else f"{k} may be among them, the other {missing - k} not in these logs"
        )
    )
    return detail[: begun.start()] + said + detail[begun.end() :]


def _file_spans(paths: Paths) -> dict[tuple[str, str], tuple[int, int]]:
    """Each source's first and last line per file (review 20d: a scan of every event per gap
    took seconds for thousands of gaps across two files)."""
    spans = as_text(
        paths.hops.lazy()
        .group_by("source", "file")
        .agg(pl.col("line").min().alias("lo"), pl.col("line").max().alias("hi"))
    ).collect(engine=engine())
    return {(s, f): (lo, hi) for s, f, lo, hi in spans.iter_rows()}


def _backwards(n: int) -> str | None:
    if not n:
        return None
    return (
        f"{n} latency sample(s) ran backwards within one log (the later hop stamped before "
        "the earlier one, on one host: no clock explains it); left out of the latency "
        "statistics"
    )


def _with_warnings(inputs: dict[str, Any], more: list[str]) -> dict[str, Any]:
    """``inputs`` with the analysis' own warnings after the reading's."""
    if not more:
        return inputs
    return inputs | {"warnings": [*(inputs.get("warnings") or []), *more]}


#: How many of the names of :func:`_misspelt_hops` its warning shows.
_NAMES_SHOWN: Final = 5


def _spelling(name: str) -> str:
    """A hop's name as a misspelling may still match it: lower case, letters and digits."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def _misspellings(paths: Paths) -> list[tuple[str, int, str]]:
    """Events of a message named almost as a hop or role event of the pipeline is (another
    case, ``_`` for ``-``, a space): on no path, so not analysed; each name, how many, and
    the hop it is close to, for :func:`_misspelt_hops` to say (review 19a:
    ``WS_RECV.receive`` read as every delivery dropped there and a race gone, with no word
    why). An app's own other events (``UI.render``) are not: they are no misspelling, and
    there is nothing to say of them."""
    p = paths.pipeline
    if "traced" not in paths.rest.columns:
        return []
    roles = [p.roles[r] for r in ("fetch_start", "fetch_end", "remove") if r in p.roles]
    near = {_spelling(n): n for n in [h.id for h in p.hops] + roles}
    odd = (
        paths.rest.lazy()
        .filter(pl.col("traced") & (pl.col("stage") != META_STAGE))
        .group_by(name=pl.concat_str("stage", pl.lit("."), "action"))
        .agg(n=pl.len())
        .sort(["n", "name"], descending=[True, False])
        .collect()
    )
    return [
        (name, n, near[key])
        for name, n in odd.iter_rows()
        if (key := _spelling(name)) in near and near[key] != name
    ]


def _misspelt_hops(said: list[tuple[str, int, str]], p: Pipeline) -> str | None:
    """:func:`_misspellings`, said: each name with the hop it is close to, and how often."""
    if not said:
        return None
    shown = ", ".join(f"{name} ({n}) for {hop}" for name, n, hop in said[:_NAMES_SHOWN])
    more = f" and {len(said) - _NAMES_SHOWN} more" if len(said) > _NAMES_SHOWN else ""
    return (
        f"{sum(n for _, n, _ in said)} event(s) of messages are named almost as a hop of the "
        f"pipeline {p.name!r} is: {shown}{more}; read as no hop, on no message's path"
    )


def _unread_lists(paths: Paths) -> str | None:
    """Recipients lists in the logs that the model reads none of (no ``broadcast`` role)."""
    if paths.unread_lists is None:
        return None
    n, file, line = paths.unread_lists
    return (
        f"{n} line(s) carry a recipients list (the first at {file}:{line}), but the pipeline "
        f"{paths.pipeline.name!r} names no 'broadcast' role to read them from: the expected "
        "recipients were taken from conversation membership (name the hop that lists them "
        "in [roles] broadcast)"
    )


#: Whose logs a pipeline's ``emitter`` names, as :func:`_unlogged_emitters` says it.
_EMITTERS: Final = {
    "sender": "the sender's app",
    "server": "the server",
    "recipient": "the recipients' apps",
}


def _unlogged_emitters(paths: Paths, misspelt: set[str]) -> list[str]:
    """Whose hops no line of the inputs logs, where drops or in-flight paths stand at them
    (not those a time window cut: their hops are logged, outside it): a set of logs without
    the clients' (or the server's). Every path then breaks where that log's hops begin, each
    said to be a drop: this says why once per such log (a server's log alone read as a drop
    of every message at ``REST.response`` and every delivery at ``WS-RECV.receive``). Not
    for hops some events are named almost as (``misspelt``: that warning says why), nor for
    a client's hops where a client's log is given (an app that logged no hop, offline: its
    log is among the inputs, the question would mislead)."""
    p = paths.pipeline
    judged = set(
        judged_candidates(paths)
        .filter(pl.col("status").is_in(["drop", "in_flight"]))
        .get_column("stage")
        .unique()
        .to_list()
    )
    servers = paths.server_sources().get_column("source")
    clients_given = bool(
        paths.sources.select(
            (~pl.col("source").cast(pl.String).is_in(servers.implode())).any()
        ).item()
    )

    def counted(i: int) -> bool:  # (the paths' counts: a few rows per message, no event)
        frame = paths.pairs if p.hops[i].scope == "recipient" else paths.msg
        return bool(frame.get_column(col("n", i)).fill_null(0).max() or 0)

    said = []
    for emitter, whose in _EMITTERS.items():
        hops = [p.index(h.id) for h in p.hops if h.emitter == emitter]
        names = [p.hops[i].id for i in hops]
        if not judged.intersection(names) or misspelt.intersection(names):
            continue
        if emitter != "server" and clients_given:
            continue
        # (the events only where the paths counted none: a line naming no recipient is on
        # no path, yet logged; a pass over 5M events' hops took 0.1 s)
        if not any(counted(i) for i in hops) and not paths.hops.get_column("hop").is_in(hops).any():
            said.append(
                f"no line of the inputs logs a hop of {whose} ({', '.join(names)}): are those "
                "logs among the inputs? Every path that should pass these hops reads as a "
                "drop at them"
            )
    return said


def _events_of(paths: Paths) -> int:
    """How many events the table held (its copies left out of ``hops``, counted back)."""
    return paths.hops.height + int(paths.copies.get_column("events").sum())


def sort_findings(found: pl.DataFrame) -> pl.DataFrame:
    return sort_lazy(found.lazy()).collect(engine=engine())


def sort_lazy(found: pl.LazyFrame) -> pl.LazyFrame:
    """The report's deterministic order: kind, time, trace, recipient, stage, source, detail."""
    rank = pl.col("kind").replace_strict(
        {k: i for i, k in enumerate(KINDS)}, default=len(KINDS), return_dtype=pl.Int32
    )
    return (
        found.with_columns(rank=rank)
        .sort(_SORT, nulls_last=True, maintain_order=True)
        .drop("rank")
        .select(list(FINDING_SCHEMA))
    )


#: How many of the findings a clock affects its finding names (the rest are counted).
_AFFECTED_SHOWN: Final = 3


def _explain_clock(found: pl.DataFrame) -> pl.DataFrame:
    """Clock findings name the other findings that come from that source (DESIGN.md section
    5: "which findings it affects"), in report order, the first few by kind, trace and
    recipient, the rest counted."""
    skew = found.filter(pl.col("kind") == "clock_skew")
    if skew.is_empty():
        return found
    name = pl.format(
        "{} {}{}",
        "kind",
        pl.col("trace_id").fill_null("-"),
        pl.when(pl.col("recipient").is_not_null())
        .then(pl.format(" for {}", "recipient"))
        .otherwise(pl.lit("")),
    )
    affected = (
        found.filter(
            (pl.col("kind") != "clock_skew") & pl.col("source").is_in(skew["source"].implode())
        )
        .group_by("source", maintain_order=True)
        .agg(n_affected=pl.len(), names=name.head(_AFFECTED_SHOWN))
        .with_columns(
            affects=pl.format(
                "; it affects {} other finding(s) from this source: {}{}",
                "n_affected",
                pl.col("names").list.join(", "),
                pl.when(pl.col("n_affected") > _AFFECTED_SHOWN)
                .then(pl.format(" and {} more", pl.col("n_affected") - _AFFECTED_SHOWN))
                .otherwise(pl.lit("")),
            )
        )
        .select("source", "affects")
    )
    return (
        found.join(affected, on="source", how="left", maintain_order="left")
        .with_columns(
            detail=pl.when((pl.col("kind") == "clock_skew") & pl.col("affects").is_not_null())
            .then(pl.concat_str("detail", "affects"))
            .otherwise(pl.col("detail"))
        )
        .drop("affects")
    )


def _summary(paths: Paths, found: pl.DataFrame) -> dict[str, Any]:
    p = paths.pipeline
    counts = dict(found.group_by("kind").len().iter_rows())
    # counted in one pass (a filtered copy of the pairs was 0.2-0.4 GB at 5M events)
    final = p.role("final")
    expected = pl.col("expected")
    reached = pl.col(col("n", p.index(final))).fill_null(0) > 0 if final else pl.lit(False)
    n_expected, delivered = paths.pairs.select(
        expected.sum().alias("n"), (expected & reached).sum().alias("delivered")
    ).row(0)
    # reached the store, then taken off it on every device that had it: not on a screen
    gone = removed(paths).filter("pair_lost").select("trace_id", "recipient").unique()
    if gone.height:
        delivered -= (
            paths.pairs.lazy()
            .filter(expected)
            .join(gone.lazy(), on=["trace_id", "recipient"], how="semi")
            .select(pl.len())
            .collect(engine=engine())
            .item()
        )
    again = resends(paths)
    if final is not None and not again.is_empty():
        # a recipient the message reached under another trace of its msg_id has it: a
        # re-send's, where its first trace delivered it (the re-send not broadcast again:
        # review 26a, one delivery in two for a message that reached everyone), and the first
        # trace's, where a re-send delivered what it lost (session 27)
        # (not where that delivery was taken off the screen again: review 26b)
        got = (
            paths.pairs.lazy()
            .filter(reached)
            .select("trace_id", "recipient")
            .join(gone.lazy(), on=["trace_id", "recipient"], how="anti")
            .rename({"trace_id": "other"})
        )
        linked = again.lazy().select("trace_id", other="first")
        linked = pl.concat([linked, linked.select(trace_id="other", other="trace_id")])
        delivered += (
            paths.pairs.lazy()
            .filter(expected & ~reached)
            .join(linked, on="trace_id")
            .join(got, on=["other", "recipient"], how="semi")
            .select("trace_id", "recipient")
            .unique()
            .select(pl.len())
            .collect(engine=engine())
            .item()
        )
    listed = paths.msg.select(pl.col("recipients").is_not_null().sum()).item()
    out: dict[str, Any] = {
        "messages": paths.msg.height,
        "deliveries_expected": int(n_expected),
        "delivered": int(delivered),
    }
    out.update({k: int(counts.get(k, 0)) for k in KINDS})
    # (a model of message hops only expects no recipients: none from anywhere, review 21a)
    members = paths.msg.height - listed if any(h.scope == "recipient" for h in p.hops) else 0
    out["recipients_from"] = {"broadcast": listed, "membership": members}
    # sources whose seq started over (a restarted process), and whether their runs were read
    # apart (else their order findings may be false)
    out["restarts"] = paths.restarts.select(
        "source", "file", "line", mended=pl.lit(paths.runs)
    ).to_dicts()
    # events read twice (one logged line in two copies of a log), each counted once
    out["copies"] = paths.copies.to_dicts()
    return out


_LAST: list[tuple[object, Pipeline, Paths]] = []


def _paths_for(events: pl.LazyFrame | pl.DataFrame, p: Pipeline) -> Paths:
    """Rebuilt paths, reused while the same events object is asked about again (a report
    showing the timelines of its findings asks once per message)."""
    if _LAST and _LAST[0][0] is events and _LAST[0][1] == p:
        return _LAST[0][2]
    paths = build_paths(events.lazy(), p)
    _LAST[:] = [(events, p, paths)]
    return paths


def _per_device(
    paths: Paths, trace_id: str, pairs: pl.DataFrame, frames: list[pl.DataFrame]
) -> tuple[list[pl.DataFrame], dict[str, tuple[str, str]]]:
    """A recipient whose own hops several devices logged gets them per device ("u2 on
    client-u2"), each device's missing hops marked: the recipient's path takes each hop from
    whichever device logged it, so a phone that never showed what the tablet showed looked
    complete (and its +ms ran from one device to the other), while the analysis reports the
    phone's drop. Also each such row's label -> (recipient, device)."""
    p = paths.pipeline
    own = [i for i, h in enumerate(p.hops) if h.scope == "recipient" and h.emitter == "recipient"]
    ks = [col("k", i) for i in own if col("k", i) in pairs.columns]
    if not ks or pairs.is_empty():
        return frames, {}
    multi = pairs.filter(pl.any_horizontal(pl.col(k) > 1 for k in ks))
    if multi.is_empty():
        return frames, {}
    users = multi.get_column("recipient").cast(pl.String).to_list()
    events = (
        paths.hops_of(pl.LazyFrame({"trace_id": [trace_id]}))
        .filter(pl.col("hop").is_in(own) & pl.col("recipient").is_in(users))
        .with_columns(t=paths.true_time())
        .sort("pos")
        .group_by("recipient", "source", "hop")
        .agg(pl.len().alias("count"), pl.col("t", "file", "line").first())
        .collect(engine=engine())
    )
    rows: list[dict[str, object]] = []
    labels: dict[str, tuple[str, str]] = {}
    for user in sorted(users):
        pair = multi.filter(pl.col("recipient").cast(pl.String) == user).row(0, named=True)
        mine = events.filter(pl.col("recipient") == user)
        for device in sorted(mine.get_column("source").unique().to_list()):
            got = {
                r["hop"]: r for r in mine.filter(pl.col("source") == device).iter_rows(named=True)
            }
            labels[f"{user} on {device}"] = (user, device)
            for i in own:
                h = p.hops[i]
                t_prev = None
                for a in h.after:
                    ia = p.index(a)
                    t_a = got[ia]["t"] if ia in got else (None if ia in own else pair[col("t", ia)])
                    if t_a is not None and (t_prev is None or t_a > t_prev):
                        t_prev = t_a
                hit = got.get(i)
                rows.append(
                    {
                        "recipient": f"{user} on {device}",
                        "hop": i,
                        "stage_action": h.id,
                        "reached": hit is not None,
                        "count": hit["count"] if hit else 0,
                        "source": device if hit else None,
                        "timestamp": hit["t"] if hit else None,
                        "latency_ms": (hit["t"] - t_prev) / 1e6
                        if hit is not None and t_prev is not None
                        else None,
                        "file": hit["file"] if hit else None,
                        "line": hit["line"] if hit else None,
                    }
                )
    schema = frames[0].schema
    devices = pl.DataFrame(
        rows,
        schema={**schema, "timestamp": pl.Int64},
        orient="row",
    ).with_columns(pl.col("timestamp").cast(schema["timestamp"]))
    drop = pl.col("recipient").is_in(users) & pl.col("hop").is_in(own)
    return [f.filter(~drop) for f in frames] + [devices], labels


def timeline(
    events: pl.LazyFrame | pl.DataFrame,
    trace_id: str,
    pipeline: Pipeline | None = None,
    *,
    findings: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """One message's path: a row per (recipient, hop), message hops first (recipient null).

    Columns: recipient, hop (pipeline order), stage_action, reached, status, count, source,
    timestamp (clock-corrected), latency_ms (from the previous hop reached), file, line.
    ``status`` says what the analysis makes of the row: ``reached``, ``duplicate`` (reached,
    and a duplicate there: a server hop written once to each of a recipient's devices is
    logged twice and is not one), ``dropped`` (the first missing hop of a drop), ``failed``
    (that hop where its lines say it was tried and failed: ``file``/``line`` the first such
    line), ``removed``
    (the removal that took the message off a store it had reached: that drop), ``in_flight``
    (the first missing hop, or the removal, of a path still inside the grace window),
    ``undecided`` (the first missing hop of a path that the recipient's app's lines naming no
    recipient may complete: not judged), ``in_log_gap`` (the first missing hop of a path a
    ``log_gap`` may hold: not judged either) or ``not_reached`` (any other hop not reached:
    after the first missing one).
    Events of the pipeline's ``remove`` role follow a recipient's hops (one row each, latency
    from ``final``). Clock offsets are estimated from the whole table, so pass all events, not
    only this trace's; the rebuilt paths of the last ``events`` object are kept, so asking
    about many messages is cheap. ``findings``: the report's, where the caller has one (else
    the drops and duplicates are found here, once for those paths).
    """
    p = pipeline or default_pipeline()
    checked_window(p.grace, "grace")  # (a model with a caller's grace put in place)
    # (the paths hold each id in its canonical form where it has one, by the table's rule)
    trace_id = pl.select(canonical_trace_ids(pl.lit(trace_id, pl.String))).item() or trace_id
    paths = _paths_for(events, p)
    with engine_for(paths.hops.height):  # as the analysis' (:func:`analyze`)
        return _timeline(paths, trace_id, findings)


def _timeline(paths: Paths, trace_id: str, findings: pl.DataFrame | None) -> pl.DataFrame:
    p = paths.pipeline
    msg = paths.msg.filter(pl.col("trace_id") == trace_id)
    pairs = paths.pairs.filter(pl.col("trace_id") == trace_id).sort("recipient")
    frames: list[pl.DataFrame] = []
    for i, h in enumerate(p.hops):
        src = msg if h.scope == "message" else pairs
        if src.is_empty():
            continue
        src = paths.located(src, col("r", i), "_file", "_line")
        prev: pl.Expr = pl.lit(None, dtype=pl.Int64)
        for a in h.after:
            t_a = pl.col(col("t", p.index(a)))
            prev = pl.when(prev.is_null() | (t_a > prev)).then(t_a).otherwise(prev)
        frames.append(
            src.select(
                (pl.col("recipient") if h.scope == "recipient" else pl.lit(None, pl.String))
                .cast(pl.String)
                .alias("recipient"),
                pl.lit(i, dtype=pl.Int32).alias("hop"),
                pl.lit(h.id).alias("stage_action"),
                (pl.col(col("n", i)).fill_null(0) > 0).alias("reached"),
                pl.col(col("n", i)).fill_null(0).cast(pl.UInt32).alias("count"),
                pl.col(col("src", i)).cast(pl.String).alias("source"),
                pl.col(col("t", i)).cast(pl.Int64).cast(TIMESTAMP_DTYPE).alias("timestamp"),
                ((pl.col(col("t", i)) - prev) / 1e6).alias("latency_ms"),
                pl.col("_file").alias("file"),
                pl.col("_line").cast(pl.Int64).alias("line"),
            )
        )
    removals = paths.removals.filter(pl.col("trace_id") == trace_id)
    final = p.role("final")
    if final is not None and not removals.is_empty():
        # after the hops: the events that took the message off a recipient's store again,
        # each timed from the last final hop before it in the same log
        adds = (
            paths.hops_of(pl.LazyFrame({"trace_id": [trace_id]}), p.index(final))
            .select("recipient", "source", "pos", paths.true_time().alias("t_final"))
            .sort("pos")
        )
        frames.append(
            removals.lazy()
            .sort("pos")
            .join_asof(
                adds,
                on="pos",
                by=["recipient", "source"],
                strategy="backward",
                check_sortedness=False,  # both sorted by pos above
            )
            .sort("recipient", "pos")
            .collect(engine=engine())
            .select(
                "recipient",
                pl.lit(len(p.hops), dtype=pl.Int32).alias("hop"),
                pl.lit(p.role("remove")).alias("stage_action"),
                pl.lit(True).alias("reached"),
                pl.lit(1, dtype=pl.UInt32).alias("count"),
                "source",
                pl.col("t").cast(TIMESTAMP_DTYPE).alias("timestamp"),
                ((pl.col("t") - pl.col("t_final")) / 1e6).alias("latency_ms"),
                "file",
                "line",
            )
        )
    frames, devices = _per_device(paths, trace_id, pairs, frames)
    if not frames:
        return pl.DataFrame(
            schema={
                "recipient": pl.String,
                "hop": pl.Int32,
                "stage_action": pl.String,
                "reached": pl.Boolean,
                "status": pl.String,
                "count": pl.UInt32,
                "source": pl.String,
                "timestamp": TIMESTAMP_DTYPE,
                "latency_ms": pl.Float64,
                "file": pl.String,
                "line": pl.Int64,
            }
        )
    rows = pl.concat(frames).sort("recipient", "hop", nulls_last=False)
    if findings is None:
        findings = paths.memoised("timeline_marks", lambda: _marking(paths))
    findings = pl.concat(
        [findings, paths.memoised("timeline_undecided", lambda: _undecided(paths))]
    )
    # where a hop not reached was tried and failed: (recipient, hop) -> its lines, log order
    tried: dict[tuple[str | None, int], list[tuple[str, str, int]]] = {}
    for who, hop, source, file, line in (
        paths.failed.filter(pl.col("trace_id") == trace_id)
        .select("recipient", "hop", "source", "file", "line")
        .iter_rows()
    ):
        tried.setdefault((who, hop), []).append((source, file, line))
    found = findings.filter(pl.col("trace_id") == trace_id)
    return _with_status(rows, found, p, devices, tried)


def _marking(paths: Paths) -> pl.DataFrame:
    """The findings that mark a timeline's rows (drops, in-flight paths, duplicates)."""
    return pl.concat(
        [
            drops_and_in_flight(paths).collect(engine=engine()),
            duplicates(paths).collect(engine=engine()),
        ]
    )


def _undecided(paths: Paths) -> pl.DataFrame:
    """Marks (kinds ``undecided`` and ``in_log_gap``, no finding kinds) of the paths that lines
    naming no recipient may complete, or a log gap may hold: not judged, so no finding marks
    them (:mod:`._drops`; review 19a: a gap's path read "not reached", unexplained)."""
    if paths.unnamed().is_empty() and paths.gaps.is_empty():  # the usual case: none
        return empty_findings().collect(engine=engine())
    cand = drop_candidates(paths)
    return pl.concat(
        findings(
            cand.filter(pl.col("status") == status),
            mark,
            trace_id="trace_id",
            recipient="recipient",
            stage="stage",
            last_seen="last_seen",
            source="device",
        )
        for status, mark in (("unnamed", "undecided"), ("log_gap", "in_log_gap"))
    ).collect(engine=engine())


_MARKS: Final = ("drop", "in_flight", "duplicate", "undecided", "in_log_gap")


def _with_status(
    rows: pl.DataFrame,
    found: pl.DataFrame,
    p: Pipeline,
    devices: dict[str, tuple[str, str]],
    tried: Mapping[tuple[str | None, int], list[tuple[str, str, int]]],
) -> pl.DataFrame:
    """``status`` (see :func:`timeline`) from one message's findings, which name a recipient
    and, in ``source``, a device. A recipient's row (or a message hop's) takes the findings of
    its recipient and hop. A device's row (``devices``: "u2 on client-u2" -> (u2, client-u2))
    takes its device's own; a device with no drop or in-flight finding of its own takes the
    recipient's at its first hop not reached (a recipient-level drop names one device of
    several that all stopped there: review 13). A removal row is the drop (or in-flight path)
    at ``final`` of its device whose evidence cites the removal's line."""
    marks = (
        found.filter(pl.col("kind").is_in(_MARKS))
        .select("kind", "recipient", "stage", "last_seen", "source", "evidence")
        .to_dicts()
    )
    final, remove = p.role("final"), p.role("remove")
    undecided = ("drop", "in_flight")
    decided = {  # devices with a drop or in-flight finding of their own
        (m["recipient"], m["source"]) for m in marks if m["kind"] in undecided
    }

    def kinds(recipient: str | None, stage: str, source: str | None = None) -> set[str]:
        return {
            m["kind"]
            for m in marks
            if m["recipient"] == recipient
            and m["stage"] == stage
            and (source is None or m["source"] == source)
        }

    def removed(recipient: str, source: str, file: str, line: int) -> str | None:
        for m in marks:
            cites = any((e["file"], e["line"]) == (file, line) for e in m["evidence"] or ())
            if (
                m["kind"] in undecided
                and (m["recipient"], m["source"]) == (recipient, source)
                and m["stage"] == m["last_seen"] == final
                and cites
            ):
                return "removed" if m["kind"] == "drop" else "in_flight"
        return None

    def failed_at(label: str | None, hop: int) -> tuple[str, int] | None:
        """The first line saying ``hop`` was tried and failed: on the row's device, if any."""
        device = devices.get(label) if label is not None else None
        for source, file, line in tried.get((device[0] if device else label, hop), ()):
            if device is None or source == device[1]:
                return file, line
        return None

    status: list[str] = []
    places: list[tuple[str | None, int | None]] = []  # file and line, as the rows have them
    passed: set[str] = set()  # device rows whose first hop not reached came already
    for label, hop, stage, reached, source, file, line in rows.select(
        "recipient", "hop", "stage_action", "reached", "source", "file", "line"
    ).iter_rows():
        places.append((file, line))
        device = devices.get(label) if label is not None else None
        if reached:
            if stage == remove and label is not None and source and file:
                status.append(removed(label, source, file, line) or "reached")
                continue
            dup = kinds(device[0], stage, device[1]) if device else kinds(label, stage)
            status.append("duplicate" if "duplicate" in dup else "reached")
            continue
        if device is None:
            mine = kinds(label, stage)
        elif device in decided:
            mine = kinds(device[0], stage, device[1])
        else:
            mine = kinds(device[0], stage) if label not in passed else set()
        if device is not None:
            passed.add(label)
        failed = failed_at(label, hop) if "drop" in mine else None
        if failed is not None:  # (its place: the failing line)
            places[-1] = failed
        status.append(
            ("failed" if failed else "dropped")
            if "drop" in mine
            else "in_flight"
            if "in_flight" in mine
            else "undecided"
            if "undecided" in mine
            else "in_log_gap"
            if "in_log_gap" in mine
            else "not_reached"
        )
    return rows.with_columns(
        file=pl.Series([f for f, _ in places], dtype=pl.String),
        line=pl.Series([n for _, n in places], dtype=pl.Int64),
    ).insert_column(4, pl.Series("status", status, dtype=pl.String))
