"""Rebuild every message's path and find what went wrong, and where.

``analyze(events)`` runs every analyzer over an event table (``tracekit.table.EVENT_SCHEMA``)
and returns a :class:`Report`; the ``find_*`` functions run one finding kind each
(``LazyFrame -> LazyFrame`` in the findings schema) and :func:`timeline` shows one message's path.
"""

from tracekit.analyzers._api import (
    find_clock_skew,
    find_drops,
    find_duplicates,
    find_in_flight,
    find_latency_outliers,
    find_log_gaps,
    find_races,
    find_reorders,
    find_slo_breaches,
    find_unexpected,
)
from tracekit.analyzers._findings import FINDING_SCHEMA, KINDS
from tracekit.analyzers._pipeline import Hop, Pipeline, default_pipeline, load_pipeline
from tracekit.analyzers._report import REPORT_SCHEMA, Report, analyze, timeline

__all__ = [
    "FINDING_SCHEMA",
    "KINDS",
    "REPORT_SCHEMA",
    "Hop",
    "Pipeline",
    "Report",
    "analyze",
    "default_pipeline",
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
    "load_pipeline",
    "timeline",
]
