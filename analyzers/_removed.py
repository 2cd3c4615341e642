"""Messages taken off a recipient's store after they reached it: the seed bug's other half.

A history page that replaces the store instead of merging into it wipes the socket messages
that reached ``final`` (``CTRL.add``) while the page was in flight. Every hop was logged, so no
path is broken, yet the message is not on the screen until the next refresh. The pipeline's
``remove`` role names the event a store logs when it loses a message (``CTRL.remove`` by
default; it is not a hop, so no path waits for it).

Judged per device (source), in that device's log order, for the recipients the message was
meant for: the first removal after the device's last ``final`` hop of the message for that
recipient (no ``final`` hop after it) is a ``drop`` at ``final`` with ``last_seen`` = ``final``
(the path was complete; the message did not stay), and the recipient no longer counts as
delivered unless another of their devices kept it. Like any drop it is ``in_flight`` while
the device's log ends within the grace window after the removal, and indeterminate (a
``log_gap``) where the recipient's logs lost events then: the ``final`` hop that would have
put it back may be among them. :func:`removal_candidates` feeds them to the drop classifier.

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

from tracekit.analyzers._fetches import fetch_bounds, fetch_positions, keyed
from tracekit.analyzers._paths import Paths, engine

__all__ = ["removal_candidates", "removed"]

_SCHEMA: Final = pl.Schema(
    {
        "trace_id": pl.String,
        "recipient": pl.String,
        "source": pl.String,
        "conv_id": pl.String,
        "named": pl.Boolean,
        "t_add": pl.Int64,
        "file_add": pl.String,
        "line_add": pl.Int64,
        "t_rm": pl.Int64,
        "pos_rm": pl.Int64,
        "file_rm": pl.String,
        "line_rm": pl.Int64,
        "restored": pl.Boolean,
        "pair_lost": pl.Boolean,
    }
)


def removed(paths: Paths) -> pl.DataFrame:
    """One row per (trace, expected recipient, device) whose device took the message off its
    store after ``final``: the device's last ``final`` hop and the first removal after it;
    ``restored`` when a history fetch begun after the removal showed it again, ``pair_lost``
    when no device of the recipient kept it."""
    p = paths.pipeline
    final = p.role("final")
    if final is None or paths.removals.is_empty():
        return pl.DataFrame(schema=_SCHEMA)
    f = p.index(final)
    return paths.memoised("removed", lambda: _removed(paths, f))  # drops, races, summary


def _removed(paths: Paths, final: int) -> pl.DataFrame:
    keys = ["trace_id", "recipient", "source"]
    rm = paths.removals.lazy()
    adds = paths.hops_of(rm.select("trace_id"), final).with_columns(t=paths.true_time())
    fields = ("pos", "t", "file", "line", "conv_id")
    last_add = adds.group_by(keys).agg(pl.col(fields).sort_by("pos").last().name.suffix("_add"))
    # the removal that took it off: the first after that add (a later one removed nothing)
    first_rm = (
        rm.join(last_add.select(*keys, "pos_add"), on=keys)
        .filter(pl.col("pos") > pl.col("pos_add"))
        .group_by(keys)
        .agg(pl.col(fields).sort_by("pos").first().name.suffix("_rm"))
    )
    expected = paths.pairs.lazy().filter("expected")
    gone = (
        last_add.join(first_rm, on=keys)
        # only deliveries the message was meant for (a stray one is `unexpected` already)
        .join(expected.select("trace_id", "recipient", "named", conv_pair="conv_id"), on=keys[:2])
        .with_columns(conv_id=pl.coalesce("conv_id_add", "conv_id_rm", "conv_pair"))
        .with_row_index("rid")
        .collect(engine=engine())
    )
    back = _restored(paths, gone)
    devices = adds.group_by("trace_id", "recipient").agg(devices=pl.col("source").n_unique())
    return (
        gone.lazy()
        .with_columns(restored=pl.col("rid").is_in(back.implode()))
        .join(devices, on=keys[:2])
        .with_columns(pair_lost=pl.len().over(keys[:2]) == pl.col("devices"))
        .select(_SCHEMA.names())
        .sort(keys)
        .collect(engine=engine())
    )


def _restored(paths: Paths, gone: pl.DataFrame) -> pl.Series:
    """``rid`` of the removals after which a fetch of the conversation started on the device
    and completed (its window, :mod:`._fetches`, begins after the removal and has an end)."""
    starts, ends = fetch_bounds(fetch_positions(paths))
    completed = starts.join(ends, on=["key", "k"]).select("key", "start_pos")
    return (
        keyed(gone.lazy().filter(pl.col("conv_id").is_not_null()), paths, "recipient")
        .join(completed, on="key")
        .filter(pl.col("start_pos") > pl.col("pos_rm"))
        .select("rid")
        .unique()
        .collect(engine=engine())
        .get_column("rid")
    )


def removal_candidates(paths: Paths) -> list[pl.LazyFrame]:
    """The removals as drop candidates of the device (:mod:`._drops`): judged from the removal
    (``t_last``) against the end of the device's log, the ``final`` hop as the last one seen
    (its line the evidence, with the removal's)."""
    lost = removed(paths)
    final = paths.pipeline.role("final")
    if lost.is_empty() or final is None:
        return []
    return [
        lost.lazy()
        .join(paths.sources.lazy().select("source", "t_end"), on="source", how="left")
        .select(
            "trace_id",
            "recipient",
            stage=pl.lit(final),
            emitter=pl.lit("recipient"),
            who=pl.col("recipient"),
            conv_id=pl.col("conv_id"),
            by_membership=~pl.col("named"),
            last_seen=pl.lit(final),
            t_last=pl.col("t_rm"),
            src_last=pl.col("source"),
            file_last=pl.col("file_add"),
            line_last=pl.col("line_add"),
            n_last=pl.lit(1, dtype=pl.UInt32),
            device=pl.col("source"),
            t_end_device=pl.col("t_end"),
            t_add=pl.col("t_add"),
            file_rm=pl.col("file_rm"),
            line_rm=pl.col("line_rm"),
            restored=pl.col("restored"),
            removal=pl.lit(True),
        )
    ]
