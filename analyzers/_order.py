"""Ordering violations and REST/WebSocket races: positions are compared inside one source's log
(by ``seq``, emission order), never by raw timestamps across hosts."""

from __future__ import annotations

import polars as pl

from tracekit.analyzers._drops import judged_candidates
from tracekit.analyzers._fetches import fetch_bounds, fetch_positions, fetch_window, keyed
from tracekit.analyzers._findings import empty_findings, evidence, findings, ms
from tracekit.analyzers._paths import RUN_BITS, Paths, as_text, col, engine, rows_by_code, run_of
from tracekit.analyzers._removed import removed

__all__ = ["races", "reorders"]


def reorders(paths: Paths) -> pl.LazyFrame:
    p = paths.pipeline
    order = p.role("order") or p.role("final")
    persist = p.role("persist")
    if order is None or persist is None:
        return empty_findings()
    o = p.index(order)

    def code(c: str) -> pl.Expr:  # a name's integer code (the table's own when Categorical)
        return pl.col(c).cast(pl.Categorical).to_physical().cast(pl.UInt64)

    # Each message's conversation and persist rank, by its trace id's code (``tc``).
    # (no ``tc`` where the hop events hold trace ids as text: their codes made now)
    kept = paths.hops.schema["trace_id"] == pl.Categorical()
    tc = pl.col("tc") if kept else code("trace_id")
    ranked = paths.msg.filter(pl.col("conv_id").is_not_null() & pl.col("prank").is_not_null())
    canon = ranked.select(tc.cast(pl.UInt32).alias("tc"), code("conv_id").alias("gc"), "prank")
    # Every store event, not only a pair's first: each device (source) keeps its own store, so
    # the order is checked per (conversation, recipient, source) by that log's seq. Narrow
    # integer rows (``row`` points back into the hop events); text only for the findings.
    stored = (
        paths.hops.lazy()
        .with_row_index("row")
        .filter((pl.col("hop") == o) & pl.col("recipient").is_not_null())
        .select(
            "row",
            pl.col("trace_id").cast(pl.Categorical).to_physical().alias("tc"),
            (code("source") * (1 << 32) + code("recipient")).alias("dev"),
            pl.col("pos").alias("rkey"),
        )
        .collect(engine=engine())
    )
    # the message's row by code (a join hashed ~1M store events: 57 ms at 5M events)
    at = rows_by_code(stored.get_column("tc"), canon.get_column("tc"))
    if at is None:
        stored = stored.join(canon, on="tc", maintain_order="left")
    else:
        stored = stored.with_columns(
            canon.select(pl.col("gc", "prank").gather(at)).get_columns()
        ).filter(at.is_not_null())
    stored = _grouped(stored).with_columns(
        gid=((pl.col("gc") != pl.col("gc").shift(1)) | (pl.col("dev") != pl.col("dev").shift(1)))
        .fill_null(True)
        .cum_sum()
    )
    back = (pl.col("gid") == pl.col("gid").shift(1)) & (
        (pl.col("rkey") < pl.col("rkey").shift(1))
        | (
            (pl.col("rkey") == pl.col("rkey").shift(1))
            & (pl.col("prank") < pl.col("prank").shift(1))
        )
    )
    messy = stored.filter(back).get_column("gid").unique()
    if len(messy):
        fix = pl.col("gid").is_in(messy.implode())
        # ties (one event in two files) by row, log order: the evidence is the same every run
        again = stored.filter(fix).sort("gid", "rkey", "prank", "row")
        stored = pl.concat([stored.filter(~fix), again])
    # One pass instead of windows: number the groups in frame order and add group * 2**32 to
    # the persist rank, so one running maximum never crosses a group.
    ahead = (
        stored.lazy()
        .with_columns(
            gid=(pl.col("gid") != pl.col("gid").shift(1)).fill_null(True).cum_sum().cast(pl.Int64)
        )
        # a message stored again on one device is a duplicate there, not a place in its order:
        # only its first store (earliest in that log) counts
        .filter((pl.col("gid").cast(pl.UInt64) * (1 << 32) + pl.col("tc")).is_first_distinct())
        .with_columns(key=pl.col("gid") * (1 << 32) + pl.col("prank"))
        .with_columns(running=pl.col("key").cum_max())
        .with_columns(
            lead_row=pl.when(pl.col("key") == pl.col("running"))
            .then(pl.col("row"))
            .forward_fill()
            .shift(1),
            prev_max=pl.col("running").shift(1),
        )
        .filter(pl.col("key") < pl.col("prev_max"))
        .select("row", "lead_row")
        .collect(engine=engine())
    )
    if ahead.height:
        i = p.index(persist)
        placed = ranked.select(
            tc.cast(pl.UInt32).alias("tc"),
            src=pl.col(col("src", i)).cast(pl.String),
            pt=pl.col(col("t", i)),
        )
        ahead = _certain(paths, stored, ahead, placed)
    cols = ["trace_id", "recipient", "source", "ts", "file", "line"]
    late = paths.hops.select(cols).gather(ahead.get_column("row"))
    lead = paths.hops.select("trace_id", "file", "line").gather(ahead.get_column("lead_row"))
    i = p.index(persist)
    persisted = paths.msg.lazy().select(
        "trace_id", "conv_id", p_by=pl.col(col("src", i)).cast(pl.String), p_at=col("t", i)
    )
    hits = (
        as_text(late.hstack(lead.rename(lambda c: f"lead_{c}").get_columns()).lazy())
        .join(persisted, on="trace_id", how="left")
        .join(
            persisted.select(lead_trace_id="trace_id", lead_p_by="p_by", lead_p_at="p_at"),
            on="lead_trace_id",
            how="left",
        )
    )
    # two servers persisted them: which, and how far apart (their clocks corrected)
    first = (
        pl.when(pl.col("p_by") != pl.col("lead_p_by"))
        .then(
            pl.format(
                "{} persisted it first, {} ms before {} persisted that one (corrected clocks)",
                pl.col("p_by"),
                ms(pl.col("lead_p_at") - pl.col("p_at")),
                pl.col("lead_p_by"),
            )
        )
        .otherwise(pl.lit("the server persisted it first"))
    )
    return findings(
        hits.with_columns(t=paths.true_time()),
        "reorder",
        trace_id="trace_id",
        recipient="recipient",
        stage=pl.lit(order),
        conv_id="conv_id",
        source="source",
        detail=pl.format(
            "recipient {} stored this message after {} although {}",
            pl.col("recipient"),
            pl.col("lead_trace_id"),
            first,
        ),
        evidence=evidence(("lead_file", "lead_line"), ("file", "line")),
        at="t",
    )


def _certain(
    paths: Paths, stored: pl.DataFrame, ahead: pl.DataFrame, placed: pl.DataFrame
) -> pl.DataFrame:
    """``ahead`` (``row``: a store event of a message stored late, ``lead_row``: the one
    before it in its log persisted latest) where the order of the two persists is known: one
    server's log, or two servers' corrected times further apart than both clocks' uncertainty
    (review 25b: 2 ms apart on clocks known to 10 ms read as a reorder). A late store whose
    lead is not certain is judged against the others stored before it: the certain one
    persisted latest leads; with none, no reorder is said."""
    uncertainty = {s: c.uncertainty_ns for s, c in paths.clock.items()}
    unsure = (
        pl.col(c).replace_strict(uncertainty, default=None, return_dtype=pl.Int64)
        for c in ("src", "src_lead")
    )
    certain = (
        (pl.col("src") == pl.col("src_lead"))
        | (pl.col("pt_lead") - pl.col("pt") > pl.sum_horizontal(*unsure, ignore_nulls=False))
    ).fill_null(False)

    def placing(pairs: pl.DataFrame) -> pl.DataFrame:  # (``tc``: late's, ``tc_lead``)
        return pairs.join(placed, on="tc").join(placed.rename(lambda c: f"{c}_lead"), on="tc_lead")

    codes = stored.select("row", "tc")
    own = placing(
        ahead.join(codes, on="row").join(
            codes.rename({"row": "lead_row", "tc": "tc_lead"}), on="lead_row"
        )
    )
    sure = own.filter(certain).select("row", "lead_row")
    # (the usual case: one server, every lead certain; the others are few, and only they are
    # matched with every store before them: review 25e, a conversation stored newest first
    # took 8 s and 3.7 GB when every late store was)
    doubted = own.filter(~certain).select("row")
    if doubted.is_empty():
        return sure.sort("row")
    late = stored.join(doubted, on="row").select(
        "row", "gid", late_rkey="rkey", late_prank="prank", tc="tc"
    )
    pairs = placing(
        late.join(
            stored.select("gid", row_lead="row", rkey="rkey", prank="prank", tc_lead="tc"),
            on="gid",
        ).filter((pl.col("rkey") < pl.col("late_rkey")) & (pl.col("prank") > pl.col("late_prank")))
    )
    found = (
        pairs.filter(certain)
        # (of ties in rank, the last stored: the lead the running maximum names, review 25f)
        .sort("row", "prank", "rkey", descending=[False, True, True])
        .group_by("row", maintain_order=True)
        .agg(pl.col("row_lead").first().alias("lead_row"))
    )
    return pl.concat([sure, found.cast(sure.schema)]).sort("row")


def _next_runs(paths: Paths) -> pl.LazyFrame:
    """Per fetch start (``source``, ``start_pos``) in a run a restart ended: where the next
    run begins (``restart_file``, ``restart_line``). Empty where no source restarted."""
    schema = {
        "source": pl.String, "start_pos": pl.Int64, "restart_file": pl.String,
        "restart_line": pl.Int64,
    }  # fmt: skip
    if not paths.runs:
        return pl.LazyFrame(schema=schema)
    # a restart begins run r (its pos // 2**RUN_BITS); a fetch of run r - 1 ended there
    run = pl.col("pos") // (1 << RUN_BITS)
    begins = paths.restarts.lazy().select(
        "source", run=run, restart_file=pl.col("file"), restart_line=pl.col("line")
    )
    starts = as_text(
        paths.fetches.lazy().filter(pl.col("kind") == "start").select("source", "pos")
    ).with_columns(run=run + 1)
    return (
        starts.join(begins, on=["source", "run"])
        .select("source", pl.col("pos").alias("start_pos"), "restart_file", "restart_line")
        .unique(["source", "start_pos"])
    )


def _grouped(stored: pl.DataFrame) -> pl.DataFrame:
    """``stored`` sorted by conversation (``gc``) and device (``dev``: source code << 32 |
    recipient code), log order kept inside each group: a log is in seq order already unless
    its writer interleaved lines (or its files were read out of order), and only such groups
    are sorted again by the caller. One stable sort of the three codes packed into one key
    where they fit in 64 bits (0.07 s for 1M store events), else two stable one-key sorts
    (0.10 s; as one plan polars merges them into one two-key sort, several times slower)."""
    source, recipient = pl.col("dev") // (1 << 32), pl.col("dev") % (1 << 32)
    top = stored.select(
        pl.col("gc").max().alias("c"), source.max().alias("s"), recipient.max().alias("r")
    ).row(0)
    c, s, r = (int(x or 0).bit_length() for x in top)
    if c + s + r > 64:
        return stored.sort("dev", maintain_order=True).sort("gc", maintain_order=True)
    key = pl.col("gc").cast(pl.UInt64) * (1 << (s + r)) + source * (1 << r) + recipient
    return stored.sort(key, maintain_order=True)


def races(paths: Paths) -> pl.LazyFrame:
    p = paths.pipeline
    receive = p.role("receive")
    if receive is None or paths.fetches.is_empty():
        return empty_findings()
    r = p.index(receive)
    rcp = [i for i, h in enumerate(p.hops) if h.scope == "recipient"]
    final = p.role("final")
    # Fetches and receives are matched on the key of their series (:func:`keyed`); the fetch
    # named is the earliest still open: its window holds the receive.
    fetch = fetch_positions(paths)
    # how many fetches were started and are still open after each fetch event
    run = fetch_window(paths)  # (and the run, where a source restarted)
    open_at = fetch.lazy().select(*run, "pos", "started", "open").sort("pos")
    starts, ends = fetch_bounds(fetch)
    # Receives are matched narrow (row, key, pos); only the raced rows are then read whole.
    narrow = ["row", "trace_id", "source", "recipient", "pos", "conv_id"]
    received = paths.hops.lazy().with_row_index("row").filter(pl.col("hop") == r).select(narrow)
    # A receive that does not name its conversation takes its message's (rare: a join of few rows).
    unnamed = (
        as_text(received.filter(pl.col("conv_id").is_null()))
        .drop("conv_id")
        .join(paths.msg.lazy().select("trace_id", "conv_id"), on="trace_id", how="left")
        .with_columns(
            pl.col(c).cast(paths.hops.schema[c])
            for c in ("trace_id", "source", "recipient", "conv_id")
        )
        .select(narrow)
    )
    # Only receives within the span of their key's fetch events can be in a window: after the
    # first start, and up to the last event unless a fetch is still open there (history loads
    # run at connect: most receives come after them, and are not sorted and matched).
    # (per run of a restarted client: a fetch open at its restart ended there)
    span = (
        fetch.lazy()
        .group_by(run)
        .agg(
            first=pl.col("pos").filter(pl.col("kind") == "start").min(),
            last=pl.col("pos").last(),
            still_open=pl.col("open").last() > 0,
        )
    )
    inside = (
        keyed(
            pl.concat([received.filter(pl.col("conv_id").is_not_null()), unnamed]),
            paths,
            "recipient",
        )
        .select("row", "conv_id", "pos", "key", *run_of(paths))
        .join(span, on=run)
        .filter(
            (pl.col("pos") > pl.col("first")) & ((pl.col("pos") <= pl.col("last")) | "still_open")
        )
        .drop("first", "last", "still_open")
        .sort("pos")
        # the last fetch event strictly before the receive in its log (a tie, only possible
        # without seq, counts as after it); both sides sorted by pos, hence in every group
        .join_asof(
            open_at,
            on="pos",
            by=run,
            strategy="backward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .filter(pl.col("open") > 0)
        .select("row", "key", "conv_id", k=pl.col("started") - pl.col("open") + 1)
        .collect(engine=engine())
    )
    cols = ["trace_id", "recipient", "source", "pos", "ts", "file", "line"]
    picked = paths.hops.select(cols).gather(inside.get_column("row"))
    recv = as_text(picked.hstack(inside.select("key", "conv_id", "k")).lazy())
    raced = (
        recv.join(starts, on=["key", "k"])
        .join(ends, on=["key", "k"], how="left")
        # One race per client (DESIGN.md: "on that client"; two devices of a recipient may
        # both race, and each loses or keeps the message on its own), at the first fetch in
        # flight there.
        .sort("trace_id", "recipient", "source", "start_pos", "pos", maintain_order=True)
        .unique(subset=["trace_id", "recipient", "source"], keep="first", maintain_order=True)
        .collect(engine=engine())
    )
    # What became of the message on the raced client: its own hops (few rows, the raced
    # traces'), not the recipient's path, which another device of theirs may have finished.
    keys = ["trace_id", "recipient", "source"]
    f = p.index(final) if final is not None else -1
    at_final = pl.col("hop") == f
    # The first fetch of the conversation begun after the receive: a final hop after it,
    # with no hop of the message there between the receive and it, is that history load's
    # doing (the seed bug: the message appeared after a refresh; review 25e: not where the
    # socket's own path went on before the load began, its final hop only after it).
    later = (
        starts.select("key", "start_pos", reload_file="start_file", reload_line="start_line")
        .sort("start_pos")
        .collect(engine=engine())
    )
    reloads = (
        raced.lazy()
        .select(*keys, "key", "pos")
        .sort("pos")
        .join_asof(
            later.lazy(),
            left_on="pos",
            right_on="start_pos",
            by="key",
            strategy="forward",
            allow_exact_matches=False,
            check_sortedness=False,
        )
        .select(*keys, reload_pos="start_pos", reload_file="reload_file", reload_line="reload_line")
    )
    after = pl.col("pos") > pl.col("recv_pos")
    state = (
        paths.hops_of(raced.lazy().select("trace_id"))
        .filter(pl.col("hop").is_in(rcp))
        .join(raced.lazy().select(*keys, recv_pos="pos"), on=keys)
        .join(reloads.select(*keys, "reload_pos"), on=keys, how="left")
        .group_by(keys)
        .agg(
            # recipient hops are in pipeline order: the furthest one reached
            pl.col("hop")
            .max()
            .replace_strict(dict(enumerate(p.ids)), return_dtype=pl.String)
            .alias("last_seen"),
            # shown after the receive, or only before it (a redelivery of a message shown)
            pl.col("pos").filter(at_final & after).min().alias("final_pos"),
            (at_final & (pl.col("pos") < pl.col("recv_pos"))).any().alias("shown_before"),
            (after & (pl.col("pos") < pl.col("reload_pos"))).any().alias("went_on"),
        )
    )
    # Where it never reached final there, the drop analysis' verdict on that path (a drop,
    # or undecided: in flight, or a log gap or unnamed lines may hold the hop), not one of
    # the race's own (review 25b: "went missing" beside an in_flight or a log_gap finding).
    verdict = (
        judged_candidates(paths)
        .lazy()
        .filter(~pl.col("removal").fill_null(False))
        .join(raced.lazy().select(keys), on=["trace_id", "recipient"])
        .filter(pl.col("device").is_null() | (pl.col("device") == pl.col("source")))
        .group_by(keys)
        .agg(pl.col("status").first())
    )
    # the raced device's store took it, then lost it again (a page replaced the store)
    lost = removed(paths).select("trace_id", "recipient", "source", "restored")
    # A fetch with no end in its log, and a seq gap between its start and the receive: the
    # end may be among the events lost there, before the receive (no race at all).
    unended = (
        raced.lazy()
        .filter(pl.col("end_pos").is_null())
        .select(*keys, "start_pos", "pos")
        .join(paths.gaps.lazy().select("source", "pos_before", "missing"), on="source")
        .filter(pl.col("pos_before").is_between("start_pos", "pos", closed="left"))
        .group_by(keys)
        .agg(pl.col("missing").sum().alias("lost"))
    )
    hits = (
        raced.lazy()
        .join(state, on=keys, how="left")
        .join(reloads, on=keys, how="left")
        .join(verdict, on=keys, how="left")
        .join(lost.lazy(), on=["trace_id", "recipient", "source"], how="left")
        .join(unended, on=keys, how="left")
        .join(_next_runs(paths), on=["source", "start_pos"], how="left")
        .with_columns(
            # (the restart ended the fetch only where no end was seen)
            pl.when(pl.col("end_pos").is_null()).then(pl.col(f"restart_{c}")).name.keep()
            for c in ("file", "line")
        )
        .with_columns(
            pl.when((pl.col("final_pos") > pl.col("reload_pos")) & ~pl.col("went_on"))
            .then(pl.col(f"reload_{c}"))
            .alias(f"load_{c}")
            for c in ("file", "line")
        )
        .with_columns(t=paths.true_time())
    )
    took = f"reached {final}, then {p.role('remove')} took it off the store"
    then = (
        # a receive whose line names no recipient (no actor) is on no recipient's path
        pl.when(pl.col("recipient").is_null())
        .then(pl.lit("its line names no recipient (no actor): whose message it was is unknown"))
        .when(pl.col("restored").not_())
        .then(pl.lit(f"the message then went missing: {took}"))
        .when(pl.col("restored"))
        .then(pl.lit(f"the message then went missing: {took} until a later history load showed it"))
        # without a final role, how far it got on that client is all there is to say
        .when(pl.lit(final is None))
        .then(pl.format("on that client it then got as far as {}", pl.col("last_seen")))
        .when((pl.col("final_pos") > pl.col("reload_pos")) & ~pl.col("went_on"))
        .then(
            pl.lit(
                "the message then went missing until a later history load showed it (it "
                f"reached {final} only after that load began)"
            )
        )
        .when(pl.col("final_pos").is_not_null())
        .then(pl.lit(f"the message then reached {final}"))
        .when(pl.col("shown_before"))
        .then(pl.lit(f"the message had reached {final} on that client before this receive"))
        .when(pl.col("status") == "in_flight")
        .then(
            pl.format(
                "the message had not reached {} there when the logs end (last reached {}): "
                "in flight, not yet a drop",
                pl.lit(final),
                pl.col("last_seen"),
            )
        )
        .when(pl.col("status") == "outside")
        .then(
            pl.format(
                "last reached {} in the time window read; what became of it there is outside it",
                pl.col("last_seen"),
            )
        )
        .when(pl.col("status").is_in(["log_gap", "unnamed"]))
        .then(
            pl.format(
                "last reached {}; whether it then reached {} is not known: {} may hold it",
                pl.col("last_seen"),
                pl.lit(final),
                pl.when(pl.col("status") == "log_gap")
                .then(pl.lit("events the log lost"))
                .otherwise(pl.lit("lines naming no recipient")),
            )
        )
        .otherwise(
            pl.format(
                "the message then went missing: last reached {}, never reached {}",
                pl.col("last_seen"),
                pl.lit(final),
            )
        )
    )
    # A fetch with no end logged: how long it had been open (minutes point to an end that was
    # not logged, or a load that hung; decided in log order, and a stage line carries its
    # start, so the receive's time may be a little before the fetch's: then "at the
    # receive"), and why it may have none.
    age = (pl.col("ts") - pl.col("start_ts")).clip(lower_bound=0)
    began = (
        pl.when(age < 50_000)  # (under 0.05 ms: 0.0 as written)
        .then(pl.lit("at the receive"))
        .otherwise(pl.format("{} ms before the receive", ms(age)))
    )
    unended_why = (
        pl.when(pl.col("lost").is_not_null())
        .then(
            pl.format(
                ": it never finished, or its end is among the {} event(s) the log lost before "
                "the receive, which would make this no race",
                pl.col("lost"),
            )
        )
        .when(pl.col("restart_line").is_not_null())
        .then(
            pl.format(
                ": {} restarted, a new run of its log begins at {}:{}",
                pl.col("source"),
                pl.col("restart_file"),
                pl.col("restart_line"),
            )
        )
        .otherwise(pl.lit(""))
    )
    return findings(
        hits,
        "race",
        trace_id="trace_id",
        recipient="recipient",
        stage=pl.lit(receive),
        last_seen="last_seen",
        conv_id="conv_id",
        source="source",
        detail=pl.format(
            "{} for conversation {} arrived on {} while a {} history fetch of it was in flight{}; {}",
            pl.lit(receive),
            pl.col("conv_id"),
            pl.col("source"),
            # (the model's fetch stage: REST in the chat pipeline, review 21a)
            pl.lit(str(p.role("fetch_start")).partition(".")[0]),
            pl.when(pl.col("end_pos").is_not_null())
            .then(pl.lit(""))
            .otherwise(pl.format(" (no end logged; it began {}{})", began, unended_why)),
            then,
        ),
        evidence=evidence(
            ("start_file", "start_line"),
            ("file", "line"),
            ("end_file", "end_line"),
            ("restart_file", "restart_line"),
            ("load_file", "load_line"),  # (the later load that showed it, where one did)
        ),
        at="t",
    )
