"""Rows of one message's timeline (from ``tracekit.analyzers.timeline``) as plain dicts."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import polars as pl

__all__ = ["timeline_rows"]

# Accept the analyzers' column names and a few obvious synonyms.
_NAMES = {
    "recipient": ("recipient",),
    "hop": ("stage_action", "hop_id", "hop"),
    "source": ("source",),
    "timestamp": ("timestamp", "corrected", "corrected_ts", "time"),
    "latency_ms": ("latency_ms", "since_previous_ms", "delta_ms"),
    "reached": ("reached",),
    # reached, duplicate, dropped, failed, removed, in_flight, undecided, in_log_gap or
    # not_reached
    # (analyzers.timeline)
    "status": ("status",),
    # how many times the hop was logged (2 is a duplicate), and where it was logged first
    "count": ("count",),
    "file": ("file",),
    "line": ("line",),
}


def timeline_rows(frame: pl.DataFrame | pl.LazyFrame) -> list[dict[str, Any]]:
    df = frame.collect() if isinstance(frame, pl.LazyFrame) else frame
    rows = []
    for raw in df.to_dicts():
        row: dict[str, Any] = {}
        for name, options in _NAMES.items():
            value = next((raw[o] for o in options if o in raw), None)
            if isinstance(value, datetime):
                value = value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            row[name] = value
        if row["reached"] is None:
            row["reached"] = True
        if row["status"] is None:  # a frame without it: every hop not reached is missing
            row["status"] = "reached" if row["reached"] else "dropped"
        rows.append(row)
    return rows
