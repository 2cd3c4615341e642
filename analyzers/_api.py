"""One function per finding kind: ``LazyFrame`` of events -> ``LazyFrame`` of findings.

Lazy as polars' own frames are: a call checks its arguments (an unknown SLO raises there)
and reads nothing; the events are read and the paths rebuilt when the result is collected,
once per collect. ``analyze`` shares that work between every kind.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import timedelta

import polars as pl

from tracekit.analyzers._drops import drop_candidates, drops_and_in_flight
from tracekit.analyzers._duplicates import duplicates, unexpected
from tracekit.analyzers._findings import FINDING_SCHEMA
from tracekit.analyzers._gaps import clock_findings, log_gaps
from tracekit.analyzers._latency import latency_samples, negative_latencies, outliers_and_slo
from tracekit.analyzers._order import races, reorders
from tracekit.analyzers._paths import Paths, build_paths, conformed, engine, engine_for
from tracekit.analyzers._pipeline import Pipeline
from tracekit.analyzers._report import sort_lazy, with_overrides

__all__ = [
    "find_clock_skew",
    "find_drops",
    "find_duplicates",
    "find_in_flight",
    "find_latency_outliers",
    "find_log_gaps",
    "find_races",
    "find_reorders",
    "find_slo_breaches",
    "find_unexpected",
]


def _deferred(
    events: pl.LazyFrame | pl.DataFrame,
    pipeline: Pipeline,
    finder: Callable[[Paths], pl.LazyFrame],
) -> pl.LazyFrame:
    """``finder`` over the paths of ``events``, run when the result is collected. What the
    call can check, it checks: a wrong argument fails here, not at some later collect."""
    if isinstance(events, pl.DataFrame):
        events = events.lazy()
    if not isinstance(events, pl.LazyFrame):
        raise TypeError(f"events: a polars LazyFrame or DataFrame, got {type(events).__name__}")
    conformed(events)  # (a table of other types fails here: its schema only, nothing read)

    def found() -> pl.DataFrame:
        paths = build_paths(events, pipeline)
        with engine_for(paths.hops.height):
            return sort_lazy(finder(paths)).collect(engine=engine())

    return pl.defer(found, schema=FINDING_SCHEMA)


def _kind(kind: str, finder: Callable[[Paths], pl.LazyFrame]) -> Callable[[Paths], pl.LazyFrame]:
    """``finder``'s findings of one ``kind`` (a finder that also yields another)."""
    return lambda paths: finder(paths).filter(pl.col("kind") == kind)


def find_drops(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    pipeline: Pipeline | None = None,
    grace: timedelta | None = None,
) -> pl.LazyFrame:
    p = with_overrides(pipeline, grace=grace)
    return _deferred(events, p, _kind("drop", drops_and_in_flight))


def find_in_flight(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    pipeline: Pipeline | None = None,
    grace: timedelta | None = None,
) -> pl.LazyFrame:
    """Undecided paths: near the end of the logs, or begun before their start."""
    p = with_overrides(pipeline, grace=grace)
    both = _kind(
        "in_flight", lambda paths: pl.concat([drops_and_in_flight(paths), unexpected(paths)])
    )
    return _deferred(events, p, both)


def find_duplicates(
    events: pl.LazyFrame | pl.DataFrame, *, pipeline: Pipeline | None = None
) -> pl.LazyFrame:
    return _deferred(events, with_overrides(pipeline), duplicates)


def find_unexpected(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    pipeline: Pipeline | None = None,
    grace: timedelta | None = None,
) -> pl.LazyFrame:
    p = with_overrides(pipeline, grace=grace)
    return _deferred(events, p, _kind("unexpected", unexpected))


def find_reorders(
    events: pl.LazyFrame | pl.DataFrame, *, pipeline: Pipeline | None = None
) -> pl.LazyFrame:
    return _deferred(events, with_overrides(pipeline), reorders)


def find_races(
    events: pl.LazyFrame | pl.DataFrame, *, pipeline: Pipeline | None = None
) -> pl.LazyFrame:
    return _deferred(events, with_overrides(pipeline), races)


def _latency(paths: Paths) -> pl.LazyFrame:
    return outliers_and_slo(latency_samples(paths), paths)


def find_latency_outliers(
    events: pl.LazyFrame | pl.DataFrame, *, pipeline: Pipeline | None = None
) -> pl.LazyFrame:
    return _deferred(events, with_overrides(pipeline), _kind("latency_outlier", _latency))


def find_slo_breaches(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    pipeline: Pipeline | None = None,
    slo: Mapping[str, timedelta] | None = None,
) -> pl.LazyFrame:
    p = with_overrides(pipeline, slo=slo)
    return _deferred(events, p, _kind("slo_breach", _latency))


def find_log_gaps(
    events: pl.LazyFrame | pl.DataFrame,
    *,
    pipeline: Pipeline | None = None,
    grace: timedelta | None = None,
) -> pl.LazyFrame:
    p = with_overrides(pipeline, grace=grace)
    return _deferred(events, p, lambda paths: log_gaps(paths, drop_candidates(paths)))


def find_clock_skew(
    events: pl.LazyFrame | pl.DataFrame, *, pipeline: Pipeline | None = None
) -> pl.LazyFrame:
    def clock(paths: Paths) -> pl.LazyFrame:
        negatives = negative_latencies(latency_samples(paths), paths).collect(engine=engine())
        return clock_findings(paths, negatives)

    return _deferred(events, with_overrides(pipeline), clock)
