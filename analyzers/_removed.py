"""Messages taken off a recipient's store after they reached it: the seed bug's other half.

A history page that replaces the store instead of merging into it wipes the socket messages
that reached ``final`` (``CTRL.add``) while the page was in flight. Every hop was logged, so no
path is broken, yet the message is not on the screen until the next refresh. The pipeline's
``remove`` role names the event a store logs when it loses a message (``CTRL.remove`` by
default; it is not a hop, so no path waits for it).

Judged per device (source), in that device's log order: a removal after the device's last
``final`` hop of the message for that recipient, with no ``final`` hop after it, is a ``drop``
at ``final`` with ``last_seen`` = ``final`` (the path was complete; the message did not stay),
and the recipient no longer counts as delivered unless another of their devices kept it.

A history fetch of the conversation that *started after the removal* and completed on that
device showed the message again: its page was read after the message was persisted (persist,
delivery, ``final``, removal and the fetch's start follow one another). It is still a drop,
as the other half of the seed bug is (a socket message dropped before ``final`` also shows
up with the next history load): the message left the screen until a refresh. The finding says
so. A removal of a message the device never logged at ``final`` (the sender's own copy, a
message shown from an earlier page) is not judged: it says nothing about a delivery.
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
        "restored": pl.Boolean,
        "pair_lost": pl.Boolean,
    }
)


def removed(paths: Paths) -> pl.DataFrame:
    """One row per (trace, recipient, device) whose device took the message off its store
    after ``final``: the last ``final`` hop there and the removal after it; ``restored`` when a
    history fetch begun after the removal showed it again, ``pair_lost`` when no device of the
    recipient kept it."""
    p = paths.pipeline
    final = p.role("final")
    if final is None or paths.removals.is_empty():
        return pl.DataFrame(schema=_SCHEMA)
    if "removed" in paths.memo:  # asked by the drops, the races and the summary
        return paths.memo["removed"]
    keys = ["trace_id", "recipient", "source"]
    wanted = paths.removals.lazy().select("trace_id")
    adds = paths.hops_of(wanted, p.index(final)).with_columns(t=paths.true_time())
    last = pl.all().sort_by("pos").last()
    last_add = adds.group_by(keys).agg(
        last.name.suffix("_add"), pl.col("conv_id").drop_nulls().first()
    )
    last_rm = paths.removals.lazy().group_by(keys).agg(last.name.suffix("_rm"))
    devices = adds.group_by("trace_id", "recipient").agg(devices=pl.col("source").n_unique())
    gone = (
        last_add.join(last_rm, on=keys)
        .filter(pl.col("pos_rm") > pl.col("pos_add"))
        .with_row_index("rid")
        .collect()
    )
    back = _restored(paths, gone)
    paths.memo["removed"] = out = (
        gone.lazy()
        .with_columns(restored=pl.col("rid").is_in(back.implode()))
        .join(devices, on=["trace_id", "recipient"])
        .with_columns(pair_lost=pl.len().over("trace_id", "recipient") == pl.col("devices"))
        .select(_SCHEMA.names())
        .sort(keys)
        .collect()
    )
    return out


def _restored(paths: Paths, gone: pl.DataFrame) -> pl.Series:
    """``rid`` of the removals after which a fetch of the conversation started on the device
    and completed. Fetches carry no id: ends close starts in order, so the fetch that starts
    at a given position is complete once as many ends follow it as fetches were open there
    (at least itself)."""
    fetches = paths.fetches.lazy().filter(pl.col("conv_id").is_not_null())
    where = ["source", "conv_id"]
    is_start = pl.col("kind") == "start"
    counted = fetches.sort(*where, "pos").with_columns(
        starts=is_start.cast(pl.Int64).cum_sum().over(where),
        ends=(~is_start).cast(pl.Int64).cum_sum().over(where),
    )
    total = counted.group_by(where).agg(total_ends=pl.col("ends").max())
    starts = (
        counted.filter(is_start)
        .join(total, on=where)
        .select(
            *where,
            pl.col("pos").alias("pos_start"),
            done=pl.col("total_ends") - pl.col("ends")
            >= pl.max_horizontal(pl.lit(1), pl.col("starts") - pl.col("ends")),
        )
    )
    return (
        gone.lazy()
        .join(starts, on=where)
        .filter((pl.col("pos_start") > pl.col("pos_rm")) & pl.col("done"))
        .select("rid")
        .unique()
        .collect()
        .get_column("rid")
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
            "later and {}",
            pl.col("recipient"),
            pl.col("source"),
            pl.lit(final),
            pl.lit(remove),
            ms(pl.col("t_rm") - pl.col("t_add")),
            pl.when(pl.col("restored"))
            .then(pl.lit("only a later history load of the conversation showed it again"))
            .otherwise(pl.lit("nothing added it again")),
        ),
        evidence=evidence(("file_add", "line_add"), ("file_rm", "line_rm")),
        at="t_rm",
    )
