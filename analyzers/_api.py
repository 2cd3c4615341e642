"""One function per finding kind: ``LazyFrame`` of events -> ``LazyFrame`` of findings.

Each rebuilds the paths it needs; ``analyze`` shares that work between all of them.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

import polars as pl

from tracekit.analyzers._drops import drop_candidates, drops_and_in_flight
from tracekit.analyzers._duplicates import duplicates, unexpected
from tracekit.analyzers._gaps import clock_findings, log_gaps
from tracekit.analyzers._latency import latency_samples, negative_latencies, outliers_and_slo
from tracekit.analyzers._order import races, reorders
from tracekit.analyzers._paths import build_paths
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


def _kind(lf: pl.LazyFrame, kind: str) -> pl.LazyFrame:
    return sort_lazy(lf.filter(pl.col("kind") == kind))


def find_drops(
    events: pl.LazyFrame, *, pipeline: Pipeline | None = None, grace: timedelta | None = None
) -> pl.LazyFrame:
    paths = build_paths(events, with_overrides(pipeline, grace=grace))
    return _kind(drops_and_in_flight(paths), "drop")


def find_in_flight(
    events: pl.LazyFrame, *, pipeline: Pipeline | None = None, grace: timedelta | None = None
) -> pl.LazyFrame:
    """Undecided paths: near the end of the logs, or begun before their start."""
    paths = build_paths(events, with_overrides(pipeline, grace=grace))
    return _kind(pl.concat([drops_and_in_flight(paths), unexpected(paths)]), "in_flight")


def find_duplicates(events: pl.LazyFrame, *, pipeline: Pipeline | None = None) -> pl.LazyFrame:
    return sort_lazy(duplicates(build_paths(events, pipeline)))


def find_unexpected(
    events: pl.LazyFrame, *, pipeline: Pipeline | None = None, grace: timedelta | None = None
) -> pl.LazyFrame:
    paths = build_paths(events, with_overrides(pipeline, grace=grace))
    return _kind(unexpected(paths), "unexpected")


def find_reorders(events: pl.LazyFrame, *, pipeline: Pipeline | None = None) -> pl.LazyFrame:
    return sort_lazy(reorders(build_paths(events, pipeline)))


def find_races(events: pl.LazyFrame, *, pipeline: Pipeline | None = None) -> pl.LazyFrame:
    return sort_lazy(races(build_paths(events, pipeline)))


def find_latency_outliers(
    events: pl.LazyFrame, *, pipeline: Pipeline | None = None
) -> pl.LazyFrame:
    paths = build_paths(events, pipeline)
    return _kind(outliers_and_slo(latency_samples(paths), paths), "latency_outlier")


def find_slo_breaches(
    events: pl.LazyFrame,
    *,
    pipeline: Pipeline | None = None,
    slo: Mapping[str, timedelta] | None = None,
) -> pl.LazyFrame:
    paths = build_paths(events, with_overrides(pipeline, slo=slo))
    return _kind(outliers_and_slo(latency_samples(paths), paths), "slo_breach")


def find_log_gaps(
    events: pl.LazyFrame, *, pipeline: Pipeline | None = None, grace: timedelta | None = None
) -> pl.LazyFrame:
    paths = build_paths(events, with_overrides(pipeline, grace=grace))
    return sort_lazy(log_gaps(paths, drop_candidates(paths)))


def find_clock_skew(events: pl.LazyFrame, *, pipeline: Pipeline | None = None) -> pl.LazyFrame:
    paths = build_paths(events, pipeline)
    return sort_lazy(
        clock_findings(paths, negative_latencies(latency_samples(paths), paths).collect())
    )
