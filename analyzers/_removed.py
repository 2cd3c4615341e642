"""Messages taken off a recipient's store after they reached it: the seed bug's other half.

A history page that replaces the store instead of merging into it wipes the socket messages
that reached ``final`` (``CTRL.add``) while the page was in flight. Every hop was logged, so no
path is broken, yet the message is not on the screen until the next refresh. The pipeline's
``remove`` role names the event a store logs when it loses a message (``CTRL.remove`` by
default; it is not a hop, so no path waits for it).

Judged per device (source), in that device's log order: a removal after the device's last
``final`` hop of the message for that recipient, with no ``final`` hop after it, is a ``drop``
at ``final`` with ``last_seen`` = ``final`` (the path was complete; the message did not stay).
The recipient still counts as delivered while another of their devices shows the message. A
removal of a message the device never logged at ``final`` (the sender's own copy, a message
shown from an earlier page) is not judged: it says nothing about a delivery.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from tracekit.analyzers._findings import empty_findings, evidence, findings, ms
from tracekit.analyzers._paths import Paths

__all__ = ["removal_drops", "removed"]

_SCHEMA: Final = pl.Schema(
    {
        "trace_id": pl.String,
        "recipient": pl.String,
        "source": pl.String,
        "conv_id": pl.String,
        "t_add": pl.Int64,
        "file_add": pl.String,
        "line_add": pl.Int64,
        "t_rm": pl.Int64,
        "file_rm": pl.String,
        "line_rm": pl.Int64,
        "pair_lost": pl.Boolean,
    }
)


def removed(paths: Paths) -> pl.DataFrame:
    """One row per (trace, recipient, device) whose device lost the message after ``final``:
    the last ``final`` hop there and the removal after it; ``pair_lost`` when no device of the
    recipient kept it."""
    p = paths.pipeline
    final = p.role("final")
    if final is None or paths.removals.is_empty():
        return pl.DataFrame(schema=_SCHEMA)
    keys = ["trace_id", "recipient", "source"]
    adds = (
        paths.hops_of(paths.removals.lazy().select("trace_id"))
        .filter(pl.col("hop") == p.index(final))
        .with_columns(t=paths.true_time())
    )
    last = pl.all().sort_by("pos").last()
    last_add = adds.group_by(keys).agg(
        last.name.suffix("_add"), pl.col("conv_id").drop_nulls().first()
    )
    last_rm = paths.removals.lazy().group_by(keys).agg(last.name.suffix("_rm"))
    devices = adds.group_by("trace_id", "recipient").agg(devices=pl.col("source").n_unique())
    return (
        last_add.join(last_rm, on=keys)
        .filter(pl.col("pos_rm") > pl.col("pos_add"))
        .join(devices, on=["trace_id", "recipient"])
        .with_columns(pair_lost=pl.len().over("trace_id", "recipient") == pl.col("devices"))
        .select(_SCHEMA.names())
        .sort(keys)
        .collect()
    )


def removal_drops(paths: Paths, lost: pl.DataFrame | None = None) -> pl.LazyFrame:
    """``drop`` findings of the messages :func:`removed` (``lost``, if at hand) found."""
    if lost is None:
        lost = removed(paths)
    final, remove = paths.pipeline.role("final"), paths.pipeline.role("remove")
    if lost.is_empty() or final is None or remove is None:
        return empty_findings()
    return findings(
        lost.lazy(),
        "drop",
        trace_id="trace_id",
        recipient="recipient",
        stage=pl.lit(final),
        last_seen=pl.lit(final),
        conv_id="conv_id",
        source="source",
        detail=pl.format(
            "recipient {} on {}: reached {}, then {} took the message off the store {} ms "
            "later and nothing added it again",
            pl.col("recipient"),
            pl.col("source"),
            pl.lit(final),
            pl.lit(remove),
            ms(pl.col("t_rm") - pl.col("t_add")),
        ),
        evidence=evidence(("file_add", "line_add"), ("file_rm", "line_rm")),
        at="t_rm",
    )
