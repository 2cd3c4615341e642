"""Drops and messages in flight: the first missing hop after the last one reached.

A hop is *missing* for a message (or for one of its recipients) when it never happened while
every hop before it did and no hop after it did either: if a later hop happened, the message
got through and only the evidence is missing, which is not a drop. That reports each broken path
once, at its first missing hop, with the last hop reached as ``last_seen``.

The grace window is measured from the end of the logs as a whole (the latest corrected
timestamp of any source; a device's own path: of its own log): a path whose last hop's line
was written within ``grace`` of that end is ``in_flight``. A stage's line is written when it
ends (its stamp plus ``duration_ms``): a broadcast follows its persist's end. So the logs'
time, a log gap that may hold the missing hop, a restart or a log's end near the last hop
count from when its line was written (its own log went on at least that long: with no grace,
a path is never in flight). A duration never moves another path's end of the logs: one wrong
value (microseconds written as milliseconds) would make every message under way a drop.
A path whose missing hop should have been logged by a source with a ``seq`` gap overlapping
``[last_seen, last_seen + w]`` (``w``: the time a hop may take, :func:`hop_window_ns`) is
indeterminate: it is not a drop, the ``log_gap`` finding lists it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Final

import polars as pl

from tracekit.analyzers._duplicates import resends
from tracekit.analyzers._findings import evidence, findings, ms, ms_apart
from tracekit.analyzers._paths import (
    Paths,
    as_text,
    col,
    engine,
    gap_start,
    grace_ns,
    hop_window_ns,
    took_ns,
)
from tracekit.analyzers._pipeline import Pipeline
from tracekit.analyzers._removed import removal_candidates

__all__ = ["drop_candidates", "drops_and_in_flight", "judged_candidates"]

_MSG_COLS: Final = ("n", "t", "src", "r")
#: Of the hop reached last: its first occurrence (time, source, row: the evidence's file and
#: line, looked up once the candidates are known) and how many times.
_LAST: Final = ("t", "src", "r", "n")
#: The same from one device's own events, which carry their file and line.
#: When a path's last hop's line was written: a stage's at its end (``took_last``, the
#: length its line says), any other when stamped. The next hop may come after it.
_WRITTEN: Final = pl.col("t_last") + pl.col("took_last")
_DEVICE_LAST: Final = ("t", "src", "file", "line", "n", "duration")


def _last_seen(
    p: Pipeline, preds: list[int], fields: tuple[str, ...] = _LAST
) -> dict[str, pl.Expr]:
    """Columns of the predecessor reached last (the only one in a chain)."""
    if len(preds) == 1:
        i = preds[0]
        return {
            "last_seen": pl.lit(p.hops[i].id),
            **{f"{k}_last": pl.col(col(k, i)) for k in fields},
        }
    order = pl.concat_list([pl.col(col("t", i)) for i in preds]).list.arg_max()
    out: dict[str, pl.Expr] = {
        "last_seen": order.replace_strict(
            dict(enumerate(p.hops[i].id for i in preds)), return_dtype=pl.String
        )
    }
    for k in fields:
        expr: pl.Expr = pl.lit(None)
        for n, i in reversed(list(enumerate(preds))):
            expr = pl.when(order == n).then(pl.col(col(k, i))).otherwise(expr)
        out[f"{k}_last"] = expr
    return out


def _reached(p: Pipeline, i: int, *, from_pairs: bool) -> pl.Expr:
    h = p.hops[i]
    if h.scope == "recipient" and not from_pairs:
        return pl.col(col("any", i)).fill_null(False)
    return pl.col(col("n", i)).fill_null(0) > 0


def _raw_candidates(paths: Paths) -> pl.LazyFrame:
    p = paths.pipeline
    later = [[p.index(d) for d in p.descendants(h.id)] for h in p.hops]
    # what a per-recipient row needs of its message to tell which hops it passed
    msg_cols = [
        c
        for i, h in enumerate(p.hops)
        for c in ([col("any", i)] if h.scope == "recipient" else [col(k, i) for k in _MSG_COLS])
        if c not in paths.pairs.columns
    ]
    # The message hops whose line some message lacks while a later hop proves they happened:
    # usually none, and then no path needs the rule below (one pass over the messages).
    msg_hops = [j for j, h in enumerate(p.hops) if h.scope == "message" and later[j]]
    lost_somewhere = paths.msg.select(
        (
            ~_reached(p, j, from_pairs=False)
            & pl.any_horizontal(_reached(p, k, from_pairs=False) for k in later[j])
        )
        .any()
        .alias(str(j))
        for j in msg_hops
    )
    lost = {int(c.name) for c in lost_somewhere.iter_columns() if c.any()}
    frames: list[pl.LazyFrame] = []
    for i, h in enumerate(p.hops):
        if not h.after:
            continue
        preds = [p.index(a) for a in h.after]
        pairs = h.scope == "recipient"
        # the hop and every hop after it missing
        gone = ~pl.any_horizontal(_reached(p, k, from_pairs=pairs) for k in [i, *later[i]])
        all_preds = pl.all_horizontal(_reached(p, j, from_pairs=pairs) for j in preds)
        base = paths.pairs.lazy().filter(pl.col("expected")) if pairs else paths.msg.lazy()
        who = {"sender": pl.col("sender"), "recipient": pl.col("recipient")}.get(h.emitter)
        cols = {
            "trace_id": pl.col("trace_id"),
            "recipient": pl.col("recipient") if pairs else pl.lit(None, dtype=pl.String),
            "stage": pl.lit(h.id),
            "emitter": pl.lit(h.emitter),
            "who": who if who is not None else pl.lit(None, dtype=pl.String),
            "conv_id": pl.col("conv_id"),
            # a recipient the broadcast did not name was expected from membership
            "by_membership": ~pl.col("named") if pairs else pl.lit(False),
        }
        frames.append(base.filter(gone & all_preds).select(**cols, **_last_seen(p, preds)))
        # A predecessor whose line is missing but which a later hop proves (another
        # recipient's, another branch's) was passed as well: the path broke at this hop, after
        # the last hop seen on the way to it. For a recipient, any recipient's later hop proves
        # a message hop; a recipient hop only its own, off the broken part of its path.
        broken = {i, *later[i]}
        shared = {j for j in preds if pairs and p.hops[j].scope == "message"}
        proof = {
            j: [k for k in later[j] if j in shared or k not in broken]
            if p.hops[j].scope == "recipient" or j in lost
            else []
            for j in preds
        }
        if not any(proof.values()):
            continue
        proven = base.filter(gone & ~all_preds)
        if pairs:
            msg = paths.msg.lazy().select("trace_id", *msg_cols)
            proven = proven.join(msg, on="trace_id")
        passed = [
            pl.any_horizontal(
                _reached(p, k, from_pairs=pairs and j not in shared) for k in [j, *ks]
            )
            for j, ks in proof.items()
        ]
        ancestors = [k for k in range(len(p.hops)) if i in later[k]]
        frames.append(
            proven.filter(pl.all_horizontal(passed))
            .select(**cols, **_last_seen(p, ancestors))
            .filter(pl.col("t_last").is_not_null())  # nothing seen before it: no time to judge
        )
    schema = {
        "trace_id": pl.String,
        "recipient": pl.String,
        "stage": pl.String,
        "emitter": pl.String,
        "who": pl.String,
        "conv_id": pl.String,
        "by_membership": pl.Boolean,
        "last_seen": pl.String,
        "t_last": pl.Int64,
        "src_last": pl.String,
        "r_last": pl.get_index_type(),  # the row of the evidence, where a path gives it
        "file_last": pl.String,
        "line_last": pl.Int64,
        "n_last": pl.UInt32,
        "duration_last": pl.Float64,  # the line's duration_ms, where the row is not given
        "device": pl.String,
        "t_end_device": pl.Int64,
        # a removal (:mod:`._removed`): when the final hop was reached, the removal's line,
        # whether a later history load showed the message again
        "t_add": pl.Int64,
        "file_rm": pl.String,
        "line_rm": pl.Int64,
        "restored": pl.Boolean,
        "removal": pl.Boolean,
    }
    frames += _device_candidates(paths)
    frames += removal_candidates(paths)
    if not frames:
        return pl.LazyFrame(schema=schema)
    # (one plan: asking each frame its schema resolved each plan once more, ~1 ms a frame)
    typed = pl.LazyFrame(schema=schema)
    return pl.concat([typed, *frames], how="diagonal_relaxed").select(
        pl.col(c).cast(t) for c, t in schema.items()
    )


def _device_candidates(paths: Paths) -> list[pl.LazyFrame]:
    """Broken paths on one device of a recipient whose other device got the message.

    The per-recipient path takes each hop from whichever device logged it first, so a phone
    that stored a message but never showed it (the seed bug) is hidden when the tablet showed
    it. Among the recipients whose own hops were logged more than once (usually few), each
    device (source) that started the recipient's part of the path is checked on its own: a hop
    it never logged, after one it did, that another device logged. A device that logged nothing
    is not judged: offline is not a drop.
    """
    p = paths.pipeline
    own = [i for i, h in enumerate(p.hops) if h.scope == "recipient" and h.emitter == "recipient"]
    if len(own) < 2:
        return []
    multi = paths.pairs.filter(
        pl.col("expected") & pl.any_horizontal(pl.col(col("n", i)) > 1 for i in own)
    ).select(
        "trace_id",
        "recipient",
        "conv_id",
        "named",
        *[(pl.col(col("n", i)) > 0).alias(f"user{i}") for i in own],
    )
    if multi.is_empty():
        return []
    hops = paths.hops_of(multi.lazy().select("trace_id")).filter(pl.col("hop").is_in(own))
    first = {  # per device and hop: the first occurrence (hop events are in log order)
        col(k, i): pl.col(v).filter(pl.col("hop") == i).first()
        for i in own
        for k, v in (("t", "t"), ("file", "file"), ("line", "line"), ("duration", "duration_ms"))
    }
    devices = (
        hops.with_columns(t=paths.true_time())
        .group_by("trace_id", "recipient", "source", maintain_order=True)
        .agg(
            **first,
            **{col("n", i): (pl.col("hop") == i).sum().cast(pl.UInt32) for i in own},
        )
        .with_columns(pl.col("source").alias(col("src", i)) for i in own)
        .join(multi.lazy(), on=["trace_id", "recipient"])
        # where the device's own log ends: a process that stopped (a restart, a crash) soon
        # after its last hop cannot be said to have dropped the rest
        .join(paths.sources.lazy().select("source", "t_end"), on="source", how="left")
    )
    later = {i: [p.index(d) for d in p.descendants(p.hops[i].id)] for i in own}
    frames: list[pl.LazyFrame] = []
    for i in own:
        preds = [j for j in (p.index(a) for a in p.hops[i].after) if j in own]
        if not preds:
            continue
        on_device = [k for k in later[i] if k in own]
        broken = (
            pl.all_horizontal(pl.col(col("n", j)) > 0 for j in preds)
            & ~pl.any_horizontal(pl.col(col("n", k)) > 0 for k in [i, *on_device])
            & pl.col(f"user{i}")  # another device got this far
        )
        frames.append(
            devices.filter(broken).select(
                "trace_id",
                "recipient",
                stage=pl.lit(p.hops[i].id),
                emitter=pl.lit("recipient"),
                who=pl.col("recipient"),
                conv_id=pl.col("conv_id"),
                by_membership=~pl.col("named"),
                **_last_seen(p, preds, _DEVICE_LAST),
                device=pl.col("source"),
                t_end_device=pl.col("t_end"),
            )
        )
    return frames


def drop_candidates(paths: Paths, grace: timedelta | None = None) -> pl.LazyFrame:
    """Every broken path with ``status`` = drop, in_flight, log_gap or unnamed (both
    indeterminate: a log gap or an event naming no recipient may hold its missing hop), and
    ``unnamed`` (whether such events may complete it, whatever the status)."""
    g = grace_ns(paths.pipeline, grace)
    end = paths.certain_end()  # (review 26a: whatever the offsets the pairs allow)
    t_end = end if end is not None else 0
    raw = _raw_candidates(paths).with_row_index("rid").collect(engine=engine())
    at_row = paths.hops.get_column("duration_ms").gather(raw.get_column("r_last"))
    located = paths.located(raw, "r_last", "file_r", "line_r").with_columns(
        duration_last=pl.coalesce("duration_last", pl.lit(at_row))
    )
    cand = (
        _latest_attempt(
            paths,
            located.with_columns(
                file_last=pl.coalesce("file_last", "file_r"),
                line_last=pl.coalesce("line_last", "line_r"),
            ).drop("r_last", "file_r", "line_r"),
        )
        .with_columns(took_last=took_ns(pl.col("duration_last")))
        .drop("duration_last")
    )
    cand = _with_unnamed(paths, _retried_since(paths, cand))
    ends = as_text(paths.sources.lazy().select(src_last="source", t_end_own="t_end"))
    cand = cand.lazy().join(ends, on="src_last", how="left").collect(engine=engine())
    if paths.gaps.is_empty():  # the usual case: nothing can be indeterminate
        gap_hit = pl.LazyFrame(
            schema={
                "rid": pl.UInt32,
                "gap_source": pl.String,
                "gap_pos": pl.Int64,
                "gap_count": pl.UInt32,
            }
        )
        return _cut(paths, _with_resent(paths, _classify(cand.lazy(), gap_hit, g, t_end)))
    # (`--grace 0s` says the logs are final, not that a hop takes no time: a receive lost in
    # a gap 2 ms after its deliver read as a drop)
    reach = hop_window_ns(paths.pipeline, grace)
    return _cut(
        paths,
        _with_resent(paths, _classify(cand.lazy(), _gap_hits(paths, cand.lazy(), reach), g, t_end)),
    )


def _cut(paths: Paths, cand: pl.LazyFrame) -> pl.LazyFrame:
    """``cand`` with status ``outside`` where the missing hop, or a hop after it on the same
    path, is among the hops a reading's time window left out (:attr:`Paths.outside`): the
    path goes on outside the window, not judged (reported in flight, said so: review 26c).
    A later hop counts too (session 27's fuzzing: a reconnecting client's history load shows
    the message with no receive; an ``--until`` between the deliver and the store read as a
    drop at the receive)."""
    if paths.outside.is_empty():  # (no window, or none cut)
        return cand.with_columns(cut_at=pl.lit(None, dtype=pl.String))
    cand = cand.collect(engine=engine()).lazy()  # (read twice below)
    p = paths.pipeline
    # each left-out hop stands for itself and every hop before it on its path (the
    # recipient's own at a recipient hop; the message's at a message hop); ``cut_at``, the
    # first of them on the path, is said
    lineage = pl.DataFrame(
        [
            (h.id, up.id, up.scope == "recipient")
            for h in p.hops
            for up in p.hops
            if up.id == h.id or h.id in p.descendants(up.id)
        ],
        schema={"stage": pl.String, "up": pl.String, "per_recipient": pl.Boolean},
        orient="row",
    )
    cut = (
        paths.outside.lazy()
        # (the candidates' traces only: a window over 5M events leaves out millions of hops,
        # each with its ancestors, review 27: 8 s)
        .join(cand.select(pl.col("trace_id").cast(pl.String)).unique(), on="trace_id", how="semi")
        .join(lineage.lazy(), on="stage")
        .select(
            "trace_id",
            stage="up",
            recipient=pl.when("per_recipient").then("recipient"),
            cut_at="stage",
            rank=pl.col("stage").replace_strict(p.ids, range(len(p.ids)), return_dtype=pl.Int32),
        )
        .sort("rank")
        .unique(["trace_id", "stage", "recipient"], keep="first")
        .drop("rank")
        .with_columns(cut=pl.lit(True))
    )
    # (a left-out line of the hop naming no recipient may be any recipient's: review 26d)
    anyone = (
        cut.filter(pl.col("recipient").is_null())
        .drop("recipient")
        .unique(["trace_id", "stage"], keep="first", maintain_order=True)
    )
    cut_here = (pl.col("cut") | pl.col("cut_any")).fill_null(False) & ~pl.col("removal").fill_null(
        False
    )
    return (
        cand.join(cut, on=["trace_id", "stage", "recipient"], how="left", nulls_equal=True)
        .join(
            anyone.rename({"cut": "cut_any", "cut_at": "cut_at_any"}),
            on=["trace_id", "stage"],
            how="left",
        )
        .with_columns(
            status=pl.when(cut_here).then(pl.lit("outside")).otherwise("status"),
            cut_at=pl.when(cut_here).then(pl.coalesce("cut_at", "cut_at_any")),
        )
        .drop("cut", "cut_any", "cut_at_any")
    )


def _with_resent(paths: Paths, cand: pl.LazyFrame) -> pl.LazyFrame:
    """``cand`` with status ``resent`` (no finding) for the fan-out of a re-send that was not
    broadcast again, where the trace which persisted its ``msg_id`` first went past the
    missing hop (for that recipient, at a recipient hop): a client's re-send under a new
    trace id, answered from the server's idempotency, stops at the broadcast while the
    message went on under its first trace (review 26a: a `drop` and one delivery in two for
    a message that reached everyone). The duplicate names the two traces. A re-send that
    was broadcast again is judged as its own message (two copies sent: whether a client
    that let the second go deduplicated it or lost it, the logs do not say), and so are
    its own request and response."""
    p = paths.pipeline
    bcast = p.role("broadcast")
    again = resends(paths)
    if bcast is None or again.is_empty() or "first" not in again.columns:  # (usually)
        return cand
    b = p.index(bcast)
    not_again = paths.msg.lazy().filter(pl.col(col("n", b)).fill_null(0) == 0)
    firsts = (
        again.lazy()
        .select(pl.col("trace_id").cast(pl.String), first=pl.col("first").cast(pl.String))
        .join(not_again.select(pl.col("trace_id").cast(pl.String)), on="trace_id", how="semi")
    )
    fan_out = sorted(p.index(h) for h in (bcast, *p.descendants(bcast)))
    reached = _reached_by(paths, firsts.select(trace_id="first").unique(), fan_out)
    return (
        cand.join(firsts, on="trace_id", how="left")
        .join(
            reached.rename({"trace_id": "first"}).with_columns(went_on=pl.lit(True)),
            on=["first", "recipient", "stage"],
            how="left",
            nulls_equal=True,
        )
        .with_columns(
            status=pl.when(pl.col("went_on") & ~pl.col("removal").fill_null(False))
            .then(pl.lit("resent"))
            .otherwise("status")
        )
        .drop("first", "went_on")
    )


def _reached_by(paths: Paths, traces: pl.LazyFrame, hops: list[int]) -> pl.LazyFrame:
    """Where ``traces`` (``trace_id``, text) went: ``trace_id``, ``recipient`` (null at a
    message hop) and ``stage`` of each of ``hops`` (indices) they reached, as text."""
    p = paths.pipeline
    return pl.concat(
        (paths.pairs if p.hops[i].scope == "recipient" else paths.msg)
        .lazy()
        .filter(pl.col(col("n", i)).fill_null(0) > 0)
        .join(traces, on="trace_id", how="semi")
        .select(
            pl.col("trace_id").cast(pl.String),
            recipient=pl.col("recipient")
            if p.hops[i].scope == "recipient"
            else pl.lit(None, pl.String),
            stage=pl.lit(p.hops[i].id),
        )
        for i in hops
    )


def judged_candidates(paths: Paths) -> pl.DataFrame:
    """:func:`drop_candidates` at the pipeline's grace window, collected once per analysis:
    the drops and the races' account of what became of a raced message read one verdict."""
    return paths.memoised(
        "drop_candidates", lambda: drop_candidates(paths).collect(engine=engine())
    )


def _with_unnamed(paths: Paths, cand: pl.DataFrame) -> pl.DataFrame:
    """``unnamed``: a recipient's path that events naming no recipient (:meth:`Paths.unnamed`)
    may complete: they hold every last hop of the path at or after its missing one, in a log
    that may be the recipient's (the device's own, for a device's path; else one acting for
    that user or for nobody known, no other app of the recipient showing the path short), so
    its missing lines may be lost ones: not judged, as a path whose hop a log gap may hold is
    not (the events are reported as unexpected). One app's lines complete one path: a
    message's paths are let off where its logs can complete them all at once, else none (at
    least one is a drop; reviews 18d, 18e). Such events short of the path's end move where
    it broke, not whether (review 18c); nor do they touch a message's own hops, or a removal
    (a line before it restores nothing)."""
    unnamed = paths.unnamed()
    if unnamed.is_empty():  # the usual case
        return cand.with_columns(unnamed=pl.lit(False))
    p = paths.pipeline
    ends = {i for i, h in enumerate(p.hops) if not p.descendants(h.id)}
    reach = {
        h.id: [k for k in [i, *(p.index(d) for d in p.descendants(h.id))] if k in ends]
        for i, h in enumerate(p.hops)
        if h.scope == "recipient"
    }
    # whom each client log with such events acts for, where its other lines say
    owners = (
        paths.client_sources(sources=unnamed.get_column("source").unique())
        .group_by("source")
        .agg(pl.col("actor").alias("owners"))
    )
    server = [i for i, h in enumerate(p.hops) if h.emitter == "server"]
    # the apps whose own lines show the recipient's path of the message: a path one of them
    # left short is broken whatever another app's unnamed line is (a second device's)
    traces = unnamed.get_column("trace_id").unique().implode()
    named_in = (
        as_text(
            paths.hop_rows()
            .filter(
                pl.col("trace_id").cast(pl.String).is_in(traces)
                & ~pl.col("hop").is_in(server)
                & pl.col("recipient").is_not_null()
            )
            .select("trace_id", "recipient", "source")
        )
        .group_by("trace_id", "recipient")
        .agg(pl.col("source").unique().alias("named_in"))
    )
    device = pl.col("device").is_not_null()
    mine = (pl.col("owners").is_null() | pl.col("owners").list.contains(pl.col("recipient"))) & (
        pl.col("named_in").is_null()
        | (pl.col("named_in").list.set_difference(pl.concat_list("source")).list.len() == 0)
    )
    hit = (
        cand.lazy()
        .with_row_index("_c")
        .filter(pl.col("recipient").is_not_null() & ~pl.col("removal").fill_null(False))
        .select(
            "_c",
            "trace_id",
            "recipient",
            "device",
            reach=pl.col("stage").replace_strict(
                reach, default=None, return_dtype=pl.List(pl.Int32)
            ),
        )
        .join(unnamed.lazy().select("trace_id", "source", "hops"), on="trace_id")
        .join(owners, on="source", how="left")
        .join(named_in, on=["trace_id", "recipient"], how="left")
        .filter(
            (pl.col("reach").list.len() > 0)
            & (pl.col("reach").list.set_difference("hops").list.len() == 0)
            & pl.when(device).then(pl.col("device") == pl.col("source")).otherwise(mine)
        )
        .select("_c", "trace_id", "recipient", "source")
        .collect(engine=engine())
    )
    # One app's lines are one path: a message's paths are let off only where its logs can
    # complete them all at once (a log each), else at least one is a drop and all stand
    # (review 18d: one nameless log hid two drops; 18e: two hid none).
    whole = {
        trace
        for (trace,), edges in hit.group_by("trace_id")
        if _all_matched(edges.select("recipient", "source").unique().rows())
    }
    let_off = hit.filter(pl.col("trace_id").is_in(list(whole))).get_column("_c")
    return cand.with_columns(
        unnamed=pl.int_range(pl.len(), dtype=pl.UInt32).is_in(let_off.implode())
    )


def _all_matched(edges: list[tuple[str, str]]) -> bool:
    """Whether every recipient of ``edges`` ((recipient, log) a log may complete) gets a log
    of its own: a bipartite matching (Kuhn's augmenting paths; a message's few recipients)."""
    logs_of: dict[str, list[str]] = {}
    for recipient, log in edges:
        logs_of.setdefault(recipient, []).append(log)
    owner: dict[str, str] = {}

    def place(recipient: str, seen: set[str]) -> bool:
        for log in logs_of[recipient]:
            if log not in seen:
                seen.add(log)
                if log not in owner or place(owner[log], seen):
                    owner[log] = recipient
                    return True
        return False

    return all(place(r, set()) for r in logs_of)


def _retried_since(paths: Paths, cand: pl.DataFrame) -> pl.DataFrame:
    """A path whose sender retried an earlier hop after its last hop (a request sent again
    because its response never came) is still under way: judged from the latest retry
    (``t_last``), which ``retried`` names. Only message hops marked ``repeatable`` and upstream
    of the missing hop count; their events are read for the few traces that repeated one."""
    p = paths.pipeline
    rep = [i for i, h in enumerate(p.hops) if h.repeatable and h.scope == "message"]
    cand = cand.with_columns(retried=pl.lit(None, dtype=pl.String))
    if not rep or cand.is_empty():
        return cand
    again = paths.msg.filter(pl.any_horizontal(pl.col(col("n", i)) > 1 for i in rep))
    sub = cand.join(again.select("trace_id"), on="trace_id", how="semi")
    if sub.is_empty():
        return cand
    # per missing hop: the repeatable hops upstream of it
    upstream = {h.id: [i for i in rep if h.id in p.descendants(p.hops[i].id)] for h in p.hops}
    latest = (
        paths.hops_of(sub.lazy().select("trace_id"))
        .filter(pl.col("hop").is_in(rep))
        .with_columns(t=paths.true_time())
        .group_by("trace_id", "hop")
        .agg(pl.col("t").max(), took=took_ns(pl.col("duration_ms")).sort_by("t").last())
    )
    moved = (
        sub.lazy()
        .select(
            "rid",
            "trace_id",
            "t_last",
            hop=pl.col("stage").replace_strict(
                upstream, default=[], return_dtype=pl.List(pl.Int32)
            ),
        )
        .explode("hop")
        .join(latest, on=["trace_id", "hop"])
        .filter(pl.col("t") > pl.col("t_last"))
        .sort("t")
        .group_by("rid")
        .agg(
            pl.col("t").last().alias("t_retry"),
            pl.col("took").last().alias("took_retry"),
            pl.col("hop")
            .last()
            .replace_strict(dict(enumerate(p.ids)), return_dtype=pl.String)
            .alias("retried_"),
        )
        .collect(engine=engine())
    )
    return (
        cand.join(moved, on="rid", how="left")
        .with_columns(
            t_last=pl.coalesce("t_retry", "t_last"),
            took_last=pl.coalesce("took_retry", "took_last"),
            retried=pl.col("retried_"),
        )
        .drop("t_retry", "took_retry", "retried_")
    )


def _latest_attempt(paths: Paths, cand: pl.DataFrame) -> pl.DataFrame:
    """A path whose last hop repeated (a client's retries) is judged from its last attempt:
    time, source and evidence of that hop's last occurrence. A retry 2 s before the logs end
    is in flight, however long ago the first attempt was."""
    retried = cand.filter(pl.col("n_last") > 1).select(
        "rid", "trace_id", "recipient", "last_seen", "device"
    )
    if retried.is_empty():
        return cand
    p = paths.pipeline
    names = {i: h.id for i, h in enumerate(p.hops)}
    per_recipient = [h.id for h in p.hops if h.scope == "recipient"]
    last = (
        retried.lazy()
        .join(
            paths.hops_of(retried.lazy()).select(
                "trace_id",
                pl.col("hop").replace_strict(names, return_dtype=pl.String).alias("last_seen"),
                pl.col("recipient").alias("hop_recipient"),
                paths.true_time().alias("t"),
                "source",
                "file",
                "line",
                pl.col("duration_ms").alias("duration"),
            ),
            on=["trace_id", "last_seen"],
        )
        .filter(
            ~pl.col("last_seen").is_in(per_recipient)
            | (pl.col("hop_recipient") == pl.col("recipient"))
        )
        # a device's own path: its own last attempt, not another device's
        .filter(pl.col("device").is_null() | (pl.col("source") == pl.col("device")))
        .sort("t", "source", "line")
        .group_by("rid")
        .agg(pl.all().last())
        .select(
            "rid",
            pl.col("t").alias("t_last_"),
            pl.col("source").alias("src_last_"),
            pl.col("file").alias("file_last_"),
            pl.col("line").alias("line_last_"),
            pl.col("duration").alias("duration_last_"),
        )
        .collect(engine=engine())
    )
    fields = ("t", "src", "file", "line")
    found = pl.col("t_last_").is_not_null()
    return (
        cand.join(last, on="rid", how="left")
        .with_columns(pl.coalesce(f"{k}_last_", f"{k}_last").alias(f"{k}_last") for k in fields)
        .with_columns(
            duration_last=pl.when(found).then("duration_last_").otherwise("duration_last")
        )
        .drop(*(f"{k}_last_" for k in fields), "duration_last_")
    )


def _gap_hits(paths: Paths, cand: pl.LazyFrame, g: int) -> pl.LazyFrame:
    """``(rid, gap_source, gap_pos, gap_count)``: the first gap of the logs that should hold
    the missing hop which overlaps ``[t_last, written + g]`` (``written``: when the last hop's
    line was written, ``t_last + took_last``; the next hop may come after it), and how many
    do."""

    # (a gap's stamps are its log's: as early or late as that clock may be, review 26a;
    # on the clock of the path's last hop, they compare as they are: review 26b)
    def overlaps(early: pl.Expr, late: pl.Expr) -> pl.Expr:
        return (pl.col("end_after") + late >= pl.col("t_last")) & (
            gap_start(g) - early <= _WRITTEN + g
        )

    other = pl.col("source") != pl.col("src_last").fill_null("")
    gaps = (
        paths.gaps.lazy()
        .with_columns(pl.col("source").cast(pl.String))
        .join(paths.clock_slack().lazy(), on="source", how="left")
        .with_columns(pl.col("early", "late").fill_null(0))
    )
    # Whose logs are looked up only for the few paths that meet some gap in time.
    cand = (
        cand.join(
            gaps.select("start_before", "end_before", "end_after", "early", "late"), how="cross"
        )
        .filter(overlaps(pl.col("early"), pl.col("late")))
        .select(cand.collect_schema().names())
        .unique("rid")
        .collect(engine=engine())
        .lazy()
    )
    p = paths.pipeline
    # Only the logs with gaps matter (names as integer codes until unique, few rows, is done).
    gappy = paths.gaps.get_column("source").unique()
    hops = paths.hop_rows().filter(pl.col("source").is_in(gappy.implode()))
    server_hops = [i for i, h in enumerate(p.hops) if h.emitter == "server"]
    client_hops = [i for i, h in enumerate(p.hops) if h.emitter != "server"]
    server_sources = as_text(
        hops.filter(pl.col("hop").is_in(server_hops)).select("source").unique()
    ).collect(engine=engine())
    # A user's logs: the sources of their client hops and of their other events (history
    # fetches, meta events: a log whose every hop was lost still says whose it is). A server
    # log's events may act for users too: not their client.
    user_sources = (
        pl.concat(
            [
                as_text(
                    hops.filter(pl.col("hop").is_in(client_hops)).select("actor", "source").unique()
                ),
                paths.rest.lazy()
                .filter(pl.col("source").is_in(gappy.implode()))
                .select("actor", "source")
                .join(server_sources.lazy(), on="source", how="anti"),
            ]
        )
        .drop_nulls()
        .unique()
    )
    is_server = pl.col("emitter") == "server"
    client = cand.filter(~is_server)
    server = cand.filter(is_server)
    srcs = [
        # A server hop belongs in the log of a server that handled the message (persisted,
        # broadcast, or wrote to another recipient's socket) or that writes to this recipient's
        # socket: only their gaps count, not every server's. Where no server is named, any
        # server's gap counts (below).
        server.join(_logged_by(paths, "server", "trace_id", server), on="trace_id").select(
            "rid", "source"
        ),
        server.join(_logged_by(paths, "server", "recipient", server), on="recipient").select(
            "rid", "source"
        ),
        # one device's path (a phone that never showed what the tablet did) belongs in that
        # device's log alone: a gap in the tablet's log says nothing of the phone's
        client.filter(pl.col("device").is_null())
        .join(user_sources, left_on="who", right_on="actor")
        .select("rid", "source"),
        client.filter(pl.col("device").is_not_null()).select("rid", source=pl.col("device")),
        # the sender's log is also the one holding the message's other sender hops: the sender
        # is unknown when the send's line is lost
        client.filter(pl.col("emitter") == "sender")
        .join(_logged_by(paths, "sender", "trace_id", client), on="trace_id")
        .select("rid", "source"),
    ]
    # Whose log should hold the missing hop is not known (a server hop of a message no server
    # line names, or a sender hop of a message none of whose sender lines survived): a gap in
    # any log of that side counts.
    unknown = cand.filter(is_server | pl.col("who").is_null()).join(
        pl.concat(srcs), on="rid", how="anti"
    )
    client_sources = (
        gaps.select("source").unique().join(server_sources.lazy(), on="source", how="anti")
    )
    srcs += [
        unknown.filter(is_server).join(server_sources.lazy(), how="cross").select("rid", "source"),
        unknown.filter(~is_server).join(client_sources, how="cross").select("rid", "source"),
    ]
    return (
        pl.concat(srcs)
        .join(cand.select("rid", "t_last", "took_last", "src_last"), on="rid")
        .join(gaps, on="source")
        .filter(
            overlaps(
                pl.when(other).then("early").otherwise(0), pl.when(other).then("late").otherwise(0)
            )
        )
        .group_by("rid")
        .agg(
            pl.col("source").sort_by("source", "pos_before").first().alias("gap_source"),
            pl.col("pos_before").sort_by("source", "pos_before").first().alias("gap_pos"),
            # (how many gaps may hold it: one, and only that gap explains the path)
            pl.struct("source", "pos_before").n_unique().cast(pl.UInt32).alias("gap_count"),
        )
    )


def _logged_by(paths: Paths, emitter: str, key: str, wanted: pl.LazyFrame) -> pl.LazyFrame:
    """``(key, source)``: the sources that logged the hops of ``emitter`` in the messages
    (``key`` = ``trace_id``) or recipients (``recipient``) found in ``wanted``."""
    p = paths.pipeline
    frames = []
    for frame, scope in ((paths.msg, "message"), (paths.pairs, "recipient")):
        idx = [i for i, h in enumerate(p.hops) if h.emitter == emitter and h.scope == scope]
        if idx and key in frame.columns:
            frames.append(
                frame.lazy()
                .join(wanted.select(key), on=key, how="semi")
                .select(key, pl.concat_list(pl.col(col("src", i)) for i in idx).alias("source"))
                .explode("source")
                .with_columns(pl.col("source").cast(pl.String))
            )
    if not frames:
        return pl.LazyFrame(schema={key: pl.String, "source": pl.String})
    return pl.concat(frames).drop_nulls().unique()


def _classify(cand: pl.LazyFrame, gap_hit: pl.LazyFrame, g: int, t_end: int) -> pl.LazyFrame:
    # A device's path is judged against the end of its own log, every other path against the
    # end of the logs as a whole: see docs/decisions.md (session 11) for why a recipient's
    # only device is not judged by its own log. The grace counts from when the last hop's
    # line was written (a stage's at its end: a broadcast follows its persist's end), and a
    # path's logs end no sooner than that (its stamp may be the latest of all, its end later).
    # (the logs as a whole end no sooner than the last hop's own log, on its clock: review 26b)
    logs = pl.max_horizontal(pl.lit(t_end, dtype=pl.Int64), "t_end_own")
    end = pl.max_horizontal(pl.coalesce("t_end_device", logs), _WRITTEN)
    return (
        cand.join(gap_hit, on="rid", how="left")
        .with_columns(
            status=pl.when(_WRITTEN + g > end)
            .then(pl.lit("in_flight"))
            .when(pl.col("gap_source").is_not_null())
            .then(pl.lit("log_gap"))
            .when(pl.col("unnamed"))
            .then(pl.lit("unnamed"))
            .otherwise(pl.lit("drop")),
            logs_after=end - _WRITTEN,
            own_end=pl.col("t_end_device").is_not_null(),
        )
        .drop("rid", "t_end_device", "t_end_own")
    )


def _with_server_going(paths: Paths, drops: pl.LazyFrame) -> pl.LazyFrame:
    """``drops`` with ``server_going``: for a server hop after a client's (a request no
    server logged), the one server whose log was going at the last hop, which
    :func:`_with_restart` and :func:`_with_log_end` name if it restarted or stopped (each
    once it knows it has one to name); null elsewhere, and with several going (which had
    the request is not known)."""
    servers = paths.server_sources()
    base = drops.with_row_index("_g")
    one = (
        base.filter(
            (pl.col("emitter") == "server")
            & ~pl.col("src_last").is_in(servers.get_column("source").implode())
        )
        .select("_g", "t_last")
        .join(servers.lazy(), how="cross")
        .join(as_text(paths.sources.lazy().select("source", "t_start", "t_end")), on="source")
        .filter(pl.col("t_last").is_between("t_start", "t_end"))
        .group_by("_g")
        .agg(pl.col("source").first(), n=pl.len())
        .filter(pl.col("n") == 1)
        .select("_g", server_going=pl.col("source"))
    )
    # (in the drops' order: a caller numbers the rows after this and reads the plan more
    # than once, so an order that changed between runs would mix the rows up)
    return base.join(one, on="_g", how="left", maintain_order="left").drop("_g")


def _with_restart(paths: Paths, drops: pl.LazyFrame, g: int) -> pl.LazyFrame:
    """``drops`` with the first restart, within the time a hop may take after the last hop
    (``g``: :func:`hop_window_ns`; a test judged with no grace still says its crashes), of a
    process that logged that hop or should have logged the missing one (the user's client,
    for a client hop): ``restarted`` (its source), ``t_restart``, ``file_restart``,
    ``line_restart``; null where none. The process stopped with the message under way, a loss
    of another cause than the app's code. Not for a removal (the app took the message off)
    nor a path judged from its sender's retry (``t_last`` is then the retry's)."""
    cols = {
        "restarted": pl.String, "t_restart": pl.Int64, "file_restart": pl.String,
        "line_restart": pl.Int64,
    }  # fmt: skip
    if paths.restarts.is_empty():
        return drops.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in cols.items())
    restarts = paths.restarts.select(
        restarted=pl.col("source"),
        t_restart=pl.col("t"),
        file_restart=pl.col("file"),
        line_restart=pl.col("line"),
    ).sort("t_restart", "restarted")
    # A user's clients: the restarted sources that logged client hops as that user (a
    # server's lines act for many users; a log of no hop is nobody's client).
    server_hops = [i for i, h in enumerate(paths.pipeline.hops) if h.emitter == "server"]
    restarted = pl.col("source").cast(pl.String).is_in(restarts.get_column("restarted").implode())
    logged = as_text(
        paths.hop_rows()
        .filter(restarted)
        .select("source", "actor", server=pl.col("hop").is_in(server_hops))
        .unique()
    ).collect(engine=engine())
    servers = logged.filter("server").select("source").unique()
    users = (
        logged.filter(~pl.col("server"))
        .select("source", "actor")
        .drop_nulls()
        .join(servers, on="source", how="anti")
    )
    clients = restarts.join(users, left_on="restarted", right_on="source").sort(
        "t_restart", "restarted"
    )
    judged = ~pl.col("removal").fill_null(False) & pl.col("retried").is_null()
    # numbered once, collected: a plan read again may give its rows in another order (a join
    # upstream that keeps none), and the numbers would mix the drops up
    base = _with_server_going(paths, drops).with_row_index("_d").collect(engine=engine()).lazy()

    def first_after(who: pl.Expr, by: str, found: pl.DataFrame) -> pl.LazyFrame:
        # (strictly after: a last hop logged by the new run, or at its first millisecond, is
        # not one the restart cut off; after its line was written: the old run wrote it)
        return (
            base.filter(judged & who.is_not_null())
            .select("_d", _WRITTEN.alias("_w"), who.cast(pl.String).alias("_key"))
            .sort("_w")
            .join_asof(
                found.lazy().with_columns(pl.col(by).alias("_key")),
                left_on="_w",
                right_on="t_restart",
                by="_key",
                strategy="forward",
                tolerance=g,
                allow_exact_matches=False,
                check_sortedness=False,  # both sorted by time
            )
        )

    # (a device's own path: its own log only, which the last hop's source is)
    client_hop = pl.when((pl.col("emitter") != "server") & pl.col("device").is_null()).then(
        pl.col("who")
    )
    best = (
        pl.concat(
            [
                first_after(pl.col("src_last"), "restarted", restarts),
                first_after(pl.col("server_going"), "restarted", restarts),
                first_after(client_hop, "actor", clients),
            ],
            how="diagonal",
        )
        .filter(pl.col("t_restart").is_not_null())
        .sort("t_restart", "restarted")
        .unique("_d", keep="first", maintain_order=True)
        .select("_d", *cols)
        .collect(engine=engine())
    )
    # A run that went on with the conversation after the last hop (a later message's hop
    # before its restart) was not cut off with this one (review 26c: a server that delivered
    # five more messages of it, restarted 0.7 s later, was named the cause)
    went_on = (
        best.lazy()
        .join(base.select("_d", "trace_id", "conv_id", _WRITTEN.alias("_w")), on="_d")
        .join(
            as_text(
                paths.hop_rows()
                .filter(restarted)
                .select("source", "trace_id", "conv_id", t=paths.true_time())
            ),
            left_on=["restarted", "conv_id"],
            right_on=["source", "conv_id"],
        )
        .filter(
            (pl.col("t") > pl.col("_w"))
            & (pl.col("t") < pl.col("t_restart"))
            & (pl.col("trace_id_right") != pl.col("trace_id"))
        )
        .select("_d")
        .unique()
    )
    blamed = best.lazy().join(went_on, on="_d", how="anti")
    return base.join(blamed, on="_d", how="left").drop("_d", "server_going")


def _with_log_end(paths: Paths, drops: pl.LazyFrame, g: int) -> pl.LazyFrame:
    """``drops`` (with :func:`_with_restart`'s columns) with where the log of the process
    that had the message ends, within the time a hop may take of the last hop (``g``:
    :func:`hop_window_ns`), where the other logs go on that long after that end:
    ``ended`` (its source), ``t_ended``; null where not. The process is the last hop's, or
    for a missing client hop the user's client: the one whose log was going at the last hop
    (an app restarted under a new name has an older and a newer log), else the last to end
    before it (the app was gone when the server wrote to its socket). A server that died
    after persisting, an app closed with the message under way: the loss of a process that
    stopped, or went quiet (tracekit logs no heartbeat). Not where a restart is named, nor
    for a removal, a path judged from a retry, or a device's own path (judged by its log's
    end already)."""
    window = g
    found = drops.with_row_index("_d").collect(engine=engine())
    judged = found.filter(
        ~pl.col("removal").fill_null(False)
        & pl.col("retried").is_null()
        & pl.col("restarted").is_null()
        & ~pl.col("own_end")
    )
    none = [
        pl.lit(None, dtype=pl.String).alias("ended"),
        pl.lit(None, dtype=pl.Int64).alias("t_ended"),
    ]
    t_end = paths.certain_end()
    if judged.is_empty() or t_end is None:
        return found.lazy().drop("_d").with_columns(none)
    every = paths.sources.select(
        ended=pl.col("source").cast(pl.String), t_from=pl.col("t_start"), t_ended=pl.col("t_end")
    )
    ends = every.filter(pl.col("t_ended") + window <= t_end)  # the other logs go on
    if ends.is_empty():
        return found.lazy().drop("_d").with_columns(none)
    judged = _with_server_going(paths, judged.lazy()).collect(engine=engine())
    client_hop = pl.col("emitter") != "server"
    users = judged.filter(client_hop).get_column("who").drop_nulls().unique()
    # (as the duplicates' devices: a log of the user's history loads alone is an app of theirs)
    clients = paths.client_sources(users).select(who=pl.col("actor"), ended=pl.col("source"))
    going = (pl.col("t_from") <= pl.col("t_last")) & (pl.col("t_last") <= pl.col("t_ended"))
    theirs = (
        judged.lazy()
        .filter(client_hop)
        .select("_d", "t_last", "who")
        .join(clients.lazy(), on="who")
        .join(every.lazy(), on="ended")
        .filter(going | (pl.col("t_ended") < pl.col("t_last")))
        .group_by("_d")
        .agg(
            n_going=going.sum(),
            # the one going at the last hop, else the last to end before it
            ended=pl.col("ended").sort_by(going, "t_ended").last(),
            t_ended=pl.col("t_ended").sort_by(going, "t_ended").last(),
        )
        .filter(pl.col("n_going") <= 1)
        .drop("n_going")
    )
    # A server hop: the last hop's source; after a client's hop (a request no server
    # logged), first the one server whose log was going then (:func:`_with_server_going`).
    own = pl.concat(
        [
            judged.lazy().filter(~client_hop).select("_d", ended=pl.col("src_last"), rank=1),
            judged.lazy()
            .filter(pl.col("server_going").is_not_null())
            .select("_d", ended=pl.col("server_going"), rank=0),
        ]
    )
    stopped = (
        pl.concat([theirs.select("_d", "ended", rank=1), own])
        .join(judged.lazy().select("_d", "t_last", "took_last", "src_last"), on="_d")
        .join(ends.lazy().drop("t_from"), on="ended")
        .filter(pl.col("t_ended").is_between(pl.col("t_last") - window, _WRITTEN + window))
        .sort("_d", "rank")
        .unique("_d", keep="first", maintain_order=True)
        # (the log that wrote the last hop's line went on until it was written)
        .select(
            "_d",
            "ended",
            pl.when(pl.col("ended") == pl.col("src_last"))
            .then(pl.max_horizontal("t_ended", _WRITTEN))
            .otherwise("t_ended")
            .alias("t_ended"),
        )
    )
    return found.lazy().join(stopped, on="_d", how="left").drop("_d")


def _with_log_start(paths: Paths, drops: pl.LazyFrame) -> pl.LazyFrame:
    """``drops`` with where the logs of the app that missed a client hop begin, where every
    one of them begins after the last hop's line was written: ``begun`` (the first to begin)
    and ``t_begun``; null elsewhere. The app was running (its server wrote to its socket, it
    sent the message) but none of its logs covers that time: an older rotated file not
    given, or lost (fuzzing 18b: a client log without its first 30% read as a flood of
    drops, saying nothing of it). Said, not decided: an app that only started later is the
    same lines. Not for a removal, nor a device's own path (its log's span judged it).
    Also ``no_app``: no log of that user's app is among the inputs at all (review 26c: a
    client log not given read as a drop of every message to its user, not a word of why)."""
    found = drops.with_row_index("_d").collect(engine=engine())
    none = [
        pl.lit(None, dtype=pl.String).alias("begun"),
        pl.lit(None, dtype=pl.Int64).alias("t_begun"),
        pl.lit(None, dtype=pl.Boolean).alias("no_app"),
    ]
    judged = found.filter(
        ~pl.col("removal").fill_null(False)
        & ~pl.col("own_end")
        & (pl.col("emitter") != "server")
        & pl.col("who").is_not_null()
    )
    if judged.is_empty():
        return found.lazy().drop("_d").with_columns(none)
    users = judged.get_column("who").unique()
    clients = paths.client_sources(users).select(who=pl.col("actor"), begun=pl.col("source"))
    # (a log that lost its beginning, or whose beginning a time window left out, ran before
    # its first line)
    # (the earliest it may have begun, whatever its clock's offset: review 26a)
    spans = (
        paths.log_spans()
        .join(paths.clock_slack(), on="source", how="left")
        .select(begun="source", t_begun=pl.col("t_start") - pl.col("early").fill_null(0))
    )
    late = (
        judged.lazy()
        .select("_d", "who", "t_last", "took_last")
        .join(clients, on="who")
        .join(spans.lazy(), on="begun")
        .group_by("_d")
        .agg(
            pl.col("begun").sort_by("t_begun").first(),
            pl.col("t_begun").min(),
            (pl.col("t_begun") > _WRITTEN).all().alias("all_after"),
        )
        .filter("all_after")
        .drop("all_after")
    )
    # (an app's line: a client hop or an event of the user's client, in any log: a process
    # that logs a server's hops too, tests' captured events, is no client of theirs; the
    # hop events looked at only for users with no client source, usually none)
    apps = clients.select("who").unique().collect(engine=engine()).get_column("who")
    if (unknown := users.filter(~users.is_in(apps.implode()))).len():
        server = [i for i, h in enumerate(paths.pipeline.hops) if h.emitter == "server"]
        own = as_text(
            paths.hop_rows()
            .filter(
                pl.col("actor").is_in(unknown.cast(paths.hops.schema["actor"]).implode())
                & ~pl.col("hop").is_in(server)
            )
            .select(who="actor")
            .unique()
        ).collect(engine=engine())
        apps = pl.concat([apps, own.get_column("who")])
    without = judged.filter(~pl.col("who").is_in(apps.implode())).select("_d", no_app=True)
    return (
        found.lazy()
        .join(late, on="_d", how="left")
        .join(without.lazy(), on="_d", how="left")
        .drop("_d")
    )


def _with_failures(paths: Paths, drops: pl.LazyFrame) -> pl.LazyFrame:
    """``drops`` (or in-flight paths) with the lines of their missing hop that say it failed
    (:attr:`Paths.failed`: a stage that raised is an attempt, not the hop reached): how many
    (``n_failed``) and the first's ``file_failed``/``line_failed``; null where none. A
    device's own path counts its device's lines only (review 20c)."""
    cols = {"n_failed": pl.Int64, "file_failed": pl.String, "line_failed": pl.Int64}
    if paths.failed.is_empty():  # (usually: nothing to look up)
        return drops.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in cols.items())
    names = {i: h.id for i, h in enumerate(paths.pipeline.hops)}
    failed = paths.failed.lazy().with_columns(
        stage=pl.col("hop").replace_strict(names, return_dtype=pl.String)
    )
    numbered = drops.with_row_index("_f").collect(engine=engine())
    tried = (
        numbered.lazy()
        # (not a removal's: its stage was reached, then undone; review 20d)
        .filter(~pl.col("removal").fill_null(False))
        .select("_f", "trace_id", "recipient", "stage", "device")
        .join(
            failed,
            on=["trace_id", "recipient", "stage"],
            nulls_equal=True,
            maintain_order="left_right",  # (the failed lines in log order: "the first")
        )
        .filter(pl.col("device").is_null() | (pl.col("device") == pl.col("source")))
        .group_by("_f", maintain_order=True)
        .agg(
            pl.len().cast(pl.Int64).alias("n_failed"),
            pl.col("file").first().alias("file_failed"),
            pl.col("line").first().alias("line_failed"),
        )
    )
    # (in the drops' order: :func:`_with_restart` numbers them and reads the plan again)
    return numbered.lazy().join(tried, on="_f", how="left", maintain_order="left").drop("_f")


def _with_resends(paths: Paths, drops: pl.LazyFrame) -> pl.LazyFrame:
    """``drops`` with, for a trace that re-sent a message another trace had persisted (review
    20b: a client's re-send under a new trace id, which the server answered from its
    idempotency and did not broadcast again), that trace (``resent_of``) and the id
    (``resent_id``); for the trace a re-send re-sent, the first re-send that got past its
    missing hop (``resent_by``: a lost response or broadcast the re-send made good; still a
    drop, the hop that should have happened did not, but the message went on); null
    elsewhere."""
    none = {"resent_of": pl.String, "resent_id": pl.String, "resent_by": pl.String}
    again = resends(paths)
    if again.is_empty() or "msg_id_min" not in again.columns:
        return drops.with_columns(pl.lit(None, dtype=t).alias(c) for c, t in none.items())
    # (`resends` holds each first trace's re-sends in the order they were persisted: the
    # first that got past a hop is named)
    again = again.with_row_index("_k").select(
        "_k",
        pl.col("trace_id").cast(pl.String),
        resent_of=pl.col("first").cast(pl.String),
        resent_id=pl.col("msg_id_min"),
    )
    went_on = (
        _reached_by(paths, again.lazy().select("trace_id"), list(range(len(paths.pipeline.hops))))
        .join(again.lazy().select("_k", "trace_id", "resent_of"), on="trace_id")
        .group_by("resent_of", "recipient", "stage")
        .agg(resent_by=pl.col("trace_id").sort_by("_k").first())
        .rename({"resent_of": "trace_id"})
    )
    again = again.drop("_k")
    # (in the drops' order: :func:`_with_restart` numbers them)
    return drops.join(again.lazy(), on="trace_id", how="left", maintain_order="left").join(
        went_on, on=["trace_id", "recipient", "stage"], how="left", nulls_equal=True,
        maintain_order="left",
    )  # fmt: skip


def drops_and_in_flight(
    paths: Paths, grace: timedelta | None = None, cand: pl.LazyFrame | None = None
) -> pl.LazyFrame:
    """``drop`` and ``in_flight`` findings (``cand``: :func:`drop_candidates`, if at hand),
    with the messages a recipient's store lost after ``final`` (:mod:`._removed`)."""
    if cand is None:
        cand = drop_candidates(paths, grace)
    g = grace_ns(paths.pipeline, grace)
    device = pl.col("device").is_not_null()
    who = (
        pl.when(device)
        .then(pl.format("recipient {} on {}: ", pl.col("recipient"), pl.col("device")))
        .when(pl.col("recipient").is_not_null())
        .then(pl.format("recipient {}: ", pl.col("recipient")))
        .otherwise(pl.lit(""))
    )
    removal = pl.col("removal").fill_null(False)
    on_device = (
        pl.when(device & ~removal)
        .then(pl.lit(", which another of their devices did"))
        .otherwise(pl.lit(""))
    )
    membership = (
        pl.when(pl.col("by_membership"))
        .then(
            pl.lit(
                "; expected from conversation membership, no broadcast in the logs listed the "
                "recipients"
                if "broadcast" in paths.pipeline.roles
                # (review 21a: it sent the user to the logs, which had the lists)
                else "; expected from conversation membership: the pipeline names no "
                "'broadcast' role to read a recipients list from"
            )
        )
        .otherwise(pl.lit(""))
    )
    # an upstream hop its sender retried since (the path is judged from that retry)
    retried = (
        pl.when(pl.col("retried").is_not_null())
        .then(pl.format("its sender retried {} later; ", pl.col("retried")))
        .otherwise(pl.lit(""))
    )
    # whose end the path was judged against: its device's log, or the logs as a whole
    own = pl.col("own_end")
    logs_go = (
        pl.when(own).then(pl.format("{}'s log goes", "src_last")).otherwise(pl.lit("the logs go"))
    )
    logs_end = (
        pl.when(own).then(pl.format("{}'s log ends", "src_last")).otherwise(pl.lit("the logs end"))
    )

    # (to the microsecond at the grace window's edge: not "5000.0 ms later, inside the
    # 5000 ms grace window"; with no window, none)
    def edge(after: pl.Expr) -> pl.Expr:
        return ms_apart(after, pl.lit(g, dtype=pl.Int64)) if g else ms(after)

    # the last hop a stage, its line written at its end: the logs' time counts from there
    since_ended = pl.when(pl.col("took_last") > 0).then(pl.lit("it ended"))
    # the removal (:mod:`._removed`): the final hop was reached, then undone
    taken = pl.format(
        "{}reached {}, then {} took the message off the store {} ms later",
        who,
        pl.col("last_seen"),
        pl.lit(paths.pipeline.role("remove")),
        ms(pl.col("t_last") - pl.col("t_add")),
    )
    # (how near the last hop a restart or a log's end is named: the time a hop may take)
    hop = hop_window_ns(paths.pipeline, grace)
    # (the missing hop's lines that say it failed: an attempt, not the hop reached)
    # (where the first is: events of no file, a test's captured ones, have none to say;
    # review 25d: the whole phrase went with it)
    first_at = (
        pl.when(pl.col("file_failed").is_not_null() & pl.col("line_failed").is_not_null())
        .then(pl.format(", the first at {}:{}", "file_failed", "line_failed"))
        .otherwise(pl.lit(""))
    )
    tried_and_failed = pl.format(
        "; {} was tried and failed ({} line(s) of it logged at an error level{})",
        "stage",
        "n_failed",
        first_at,
    ).fill_null("")
    judged_drops = _with_resends(
        paths, _with_failures(paths, cand.filter(pl.col("status") == "drop"))
    )
    drop = findings(
        _with_log_start(paths, _with_log_end(paths, _with_restart(paths, judged_drops, hop), hop)),
        "drop",
        trace_id="trace_id",
        recipient="recipient",
        stage="stage",
        last_seen="last_seen",
        conv_id="conv_id",
        source="src_last",
        detail=pl.when(removal)
        .then(
            pl.format(
                "{} and {}{}",
                taken,
                pl.when(pl.col("restored"))
                .then(pl.lit("only a later history load of the conversation showed it again"))
                .otherwise(pl.lit("nothing added it again")),
                membership,
            )
        )
        .otherwise(
            pl.format(
                "{}reached {}, never reached {}{} ({}{} on {} ms after {}){}",
                who,
                pl.col("last_seen"),
                pl.col("stage"),
                on_device,
                retried,
                logs_go,
                edge(pl.col("logs_after")),
                pl.when(pl.col("retried").is_not_null())
                .then(pl.lit("that"))
                .otherwise(since_ended.fill_null("it")),
                membership,
            )
        )
        + pl.format(
            "; {} restarted {} ms after {} (a new run of its log begins at {}:{})",
            "restarted",
            ms(pl.col("t_restart") - _WRITTEN),
            since_ended.fill_null("it"),
            "file_restart",
            "line_restart",
        ).fill_null("")
        + pl.when(pl.col("t_ended") >= _WRITTEN)
        .then(
            pl.format(
                "; {}'s log ends {} ms after {}",
                "ended",
                ms(pl.col("t_ended") - _WRITTEN),
                since_ended.fill_null("it"),
            )
        )
        .otherwise(
            pl.format(
                "; {}'s log ended {} ms before {}",
                "ended",
                ms(_WRITTEN - pl.col("t_ended")),
                since_ended.fill_null("it"),
            )
        )
        .fill_null("")
        + pl.format(
            "; {}'s log begins {} ms after {}: none of {}'s app logs from then is among the "
            "inputs (an older rotated file?)",
            "begun",
            ms(pl.col("t_begun") - _WRITTEN),
            since_ended.fill_null("it"),
            "who",
        ).fill_null("")
        + pl.when(pl.col("no_app"))
        .then(pl.format("; no log of {}'s app is among the inputs", "who"))
        .otherwise(pl.lit(""))
        + tried_and_failed
        + pl.format(
            "; a re-send: trace {} persisted its msg_id {} before (see the duplicate)",
            "resent_of",
            "resent_id",
        ).fill_null("")
        + pl.format(
            "; its re-send, trace {}, got past {}{} (see the duplicate)",
            "resent_by",
            "stage",
            pl.when(pl.col("recipient").is_not_null())
            .then(pl.format(" for {}", "recipient"))
            .otherwise(pl.lit("")),
        ).fill_null(""),
        evidence=evidence(
            ("file_last", "line_last"),
            ("file_failed", "line_failed"),
            ("file_rm", "line_rm"),
            ("file_restart", "line_restart"),
        ),
        at="t_last",
    )
    in_flight = findings(
        _with_failures(paths, cand.filter(pl.col("status") == "in_flight")),
        "in_flight",
        trace_id="trace_id",
        recipient="recipient",
        stage="stage",
        last_seen="last_seen",
        conv_id="conv_id",
        source="src_last",
        detail=pl.format(
            "{}; {} {} ms {}, inside the {} ms grace window{}",
            pl.when(removal)
            .then(taken)
            .otherwise(
                pl.format(
                    "{}reached {}, {} not seen yet{}{}",
                    who,
                    pl.col("last_seen"),
                    pl.col("stage"),
                    on_device,
                    pl.when(pl.col("retried").is_not_null())
                    .then(pl.format(", and its sender retried {} since", pl.col("retried")))
                    .otherwise(pl.lit("")),
                )
            ),
            logs_end,
            edge(pl.col("logs_after")),
            pl.format("after {}", since_ended).fill_null("later"),
            pl.lit(str(round(g / 1e6))),
            membership,
        )
        + tried_and_failed,
        evidence=evidence(
            ("file_last", "line_last"), ("file_failed", "line_failed"), ("file_rm", "line_rm")
        ),
        at="t_last",
    )
    cut = findings(
        cand.filter(pl.col("status") == "outside"),
        "in_flight",
        trace_id="trace_id",
        recipient="recipient",
        stage="stage",
        last_seen="last_seen",
        conv_id="conv_id",
        source="src_last",
        detail=pl.format(
            "{}reached {}{}; {} is outside the time window read (--since/--until): not judged{}",
            who,
            pl.col("last_seen"),
            # (a later hop of the path left out: the missing one may never have been logged,
            # as a history load shows a message with no receive)
            pl.when(pl.col("cut_at") != pl.col("stage"))
            .then(pl.format(", {} not seen", pl.col("stage")))
            .otherwise(pl.lit("")),
            pl.col("cut_at").fill_null(pl.col("stage")),
            membership,
        ),
        evidence=evidence(("file_last", "line_last")),
        at="t_last",
    )
    return pl.concat([drop, in_flight, cut])
