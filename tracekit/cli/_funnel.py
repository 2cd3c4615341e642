"""The delivery funnel: how many messages (or deliveries) reached each hop of the pipeline."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import polars as pl

from tracekit.analyzers import Pipeline

__all__ = ["funnel"]


def funnel(
    events: pl.LazyFrame, pipeline: Pipeline, summary: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One row per hop: ``reached`` distinct messages (message hops) or (message, recipient)
    pairs (recipient hops), against the report's ``messages`` / ``deliveries_expected``."""
    hop_id = pl.concat_str([pl.col("stage"), pl.lit("."), pl.col("action")])
    keyed = events.filter(pl.col("trace_id").is_not_null()).with_columns(hop=hop_id)
    exprs = []
    for hop in pipeline.hops:
        in_hop = pl.col("hop") == hop.id
        if hop.scope == "recipient" and hop.recipient is not None:
            key = pl.concat_str([pl.col("trace_id"), pl.lit("/"), pl.col(hop.recipient)])
        else:
            key = pl.col("trace_id")
        exprs.append(key.filter(in_hop).drop_nulls().n_unique().alias(hop.id))
    counts = keyed.select(exprs).collect().row(0, named=True) if exprs else {}
    return [
        {
            "hop": hop.id,
            "scope": hop.scope,
            "reached": int(counts.get(hop.id, 0)),
            "expected": int(
                summary.get("deliveries_expected" if hop.scope == "recipient" else "messages", 0)
            ),
        }
        for hop in pipeline.hops
    ]
