"""Duplicates (a hop seen twice for one message and recipient; two msg_ids for one trace) and
unexpected events (no send seen; a WS delivery to someone the broadcast did not name)."""

from __future__ import annotations

import polars as pl

from tracekit.analyzers._findings import EVIDENCE, empty_findings, evidence, findings, ms
from tracekit.analyzers._paths import (
    Paths,
    as_text,
    col,
    engine,
    gap_start,
    grace_ns,
    hop_window_ns,
    lost_beginning,
    run_of,
)

__all__ = ["duplicates", "unexpected"]


def _all_evidence(paths: Paths, keys: pl.LazyFrame) -> pl.LazyFrame:
    """``keys`` (trace_id, hop, rkey) -> every occurrence's file/line, in log order; the source
    that logged it most (``src_top``; ties by name) and, where several did, how many times each
    (``by_source``): the device that repeated a hop, not whichever log was read first."""
    hops = paths.hops_of(keys).select(
        "trace_id",
        "hop",
        pl.col("recipient").fill_null("").alias("rkey"),
        "source",
        "file",
        "line",
    )
    on = ["trace_id", "hop", "rkey"]
    mine = keys.join(hops, on=on)
    per_source = (
        mine.group_by(*on, "source")
        .agg(n=pl.len())
        .sort("n", "source", descending=[True, False])
        .group_by(on, maintain_order=True)
        .agg(
            pl.col("source").first().alias("src_top"),
            pl.when(pl.len() > 1)
            .then(pl.format("{} on {}", "n", "source").sort_by("source").str.join(", "))
            .alias("by_source"),
        )
    )
    return (
        mine.group_by(on)
        .agg(pl.struct("file", "line").sort_by("file", "line").alias("evidence"))
        .with_columns(pl.col("evidence").cast(EVIDENCE))
        .join(per_source, on=on, how="left")
    )


def _devices(paths: Paths, pairs: pl.LazyFrame, i: int) -> pl.LazyFrame:
    """``(trace_id, recipient)`` of ``pairs`` -> ``devices``: how many processes of the
    recipient's clients may have taken the server's writes of hop ``i`` to them: those whose
    log runs at a write's time (within the time a hop may take on each side), counted once
    however many writes they may have taken. A client restarted later, or ended before, is
    another process of the same device, not a second device (its logs do not overlap); each
    process its own log, the runs of one restarted under its name too
    (:meth:`Paths.process_spans`): one write to the old run and one redelivered to the new
    one is no duplicate (review 25c). The runs of one source follow one another: a run took
    no write made before the run ahead of it logged its last line, nor one made after the run
    behind it logged its first (session 27's fuzzing: two writes to the old run a moment
    before a restart counted both runs, a true double write unsaid). Not the grace window: a
    log that begins with its own receive of the write, or ended just before it, is the
    device's (with `--grace 0s` it was not, and one write to each device read as a
    duplicate). A log that lost its beginning ran before its first line (session 22's review:
    a tablet whose log began late made each earlier write to it a duplicate)."""
    g = hop_window_ns(paths.pipeline, None)
    wanted = pairs.select("trace_id", "recipient").collect(engine=engine())
    users = wanted.get_column("recipient").unique()
    per_source = ["source"]
    spans = (
        paths.client_sources(users)
        .join(paths.process_spans().lazy(), on="source")
        .sort("source", "run")
        .select(
            pl.col("actor").alias("recipient"),
            "source",
            "run",
            pl.max_horizontal(
                pl.col("t_start") - g, pl.col("t_end").shift(1).over(per_source)
            ).alias("lo"),
            pl.min_horizontal(
                pl.col("t_end") + g, pl.col("t_start").shift(-1).over(per_source)
            ).alias("hi"),
        )
    )
    writes = (
        paths.hops_of(wanted.lazy().select("trace_id"), hop=i)
        .join(wanted.lazy(), on=["trace_id", "recipient"])
        .select("trace_id", "recipient", t=paths.true_time())
    )
    return (
        writes.join(spans, on="recipient")
        .filter(pl.col("t").is_between("lo", "hi"))
        .group_by("trace_id", "recipient")
        .agg(devices=pl.struct("source", "run").n_unique())
    )


def _send_in_gap(paths: Paths, orphans: pl.DataFrame) -> pl.LazyFrame:
    """The ``orphans`` (``trace_id``, ``t_min``, ``sender_src``, ``acting``, ``conv_id``) whose
    send may be in a gap of the sender's log: one overlapping the time a hop may take before
    the message's first event (the send comes before every other hop). The sender's log is the
    one that logged its other sender hops, else (none survived) any client of that sender,
    else (no client of the sender in the logs, or none named) a log's lost beginning after it
    (a client's of the conversation, or a server's). -> ``trace_id``, ``gap_source``, the
    gap's last line before it (``gap_file``, ``gap_line``) and, where the gap is the log's
    lost beginning (``begun``: the message was sent before that log began), its first line
    (``gap_seq``, ``gap_t``, ``first_file``, ``first_line``)."""
    g = hop_window_ns(paths.pipeline, None)
    named = orphans.filter(pl.col("sender_src").is_not_null()).select(
        "trace_id", "t_min", pl.col("sender_src").alias("source")
    )
    # a message hop's actor is the sender (the server acts for them)
    unnamed = orphans.filter(pl.col("sender_src").is_null() & pl.col("acting").is_not_null())
    users = unnamed.get_column("acting").unique()
    sources = [named.lazy()]
    if len(users):
        sources.append(
            unnamed.lazy()
            .join(paths.client_sources(users), left_on="acting", right_on="actor")
            .select("trace_id", "t_min", "source")
        )
    mine = pl.concat(sources).with_columns(rank=pl.lit(0))
    # no client of the sender in the logs (or none named: a server that names itself on its
    # lines, as tracekit's chat server does, review 23b): a log's lost beginning after the
    # message may hold its send, a client's of the message's conversation (the first to
    # begin), else a server's (its persist, the send before it); no other gap says anything
    # of whose send it was
    unknown = orphans.lazy().join(mine.select("trace_id"), on="trace_id", how="anti")
    servers = paths.server_sources().get_column("source")
    begun = paths.gaps.filter(lost_beginning()).get_column("source").unique()
    clients = [i for i, h in enumerate(paths.pipeline.hops) if h.emitter != "server"]
    talking = as_text(
        paths.hop_rows()
        .filter(
            pl.col("source").is_in(begun.cast(paths.hops.schema["source"]).implode())
            & pl.col("hop").is_in(clients)
        )
        .select("source", "conv_id")
        .unique()
    ).with_columns(rank=pl.lit(1))
    asked = unknown.select("trace_id", "t_min", pl.col("conv_id").cast(pl.String))
    guessed = pl.concat(
        [
            asked.join(talking, on="conv_id", nulls_equal=False),
            asked.join(
                pl.LazyFrame({"source": begun}, schema={"source": pl.String})
                .filter(pl.col("source").is_in(servers.implode()))
                .with_columns(rank=pl.lit(2)),
                how="cross",
            ),
        ],
        how="vertical_relaxed",
    ).drop("conv_id")
    return (
        pl.concat([mine, guessed], how="vertical_relaxed")
        .join(paths.gaps.lazy(), on="source")
        .filter(
            (gap_start(g) <= pl.col("t_min"))
            & (pl.col("end_after") >= pl.col("t_min") - g)
            & ((pl.col("rank") == 0) | lost_beginning())
        )
        # one gap a message: the first of the first log (of a guessed one, the first to begin)
        .sort("rank", pl.when(pl.col("rank") > 0).then("t_before"), "source", "t_before")
        .unique("trace_id", keep="first", maintain_order=True)
        .select(
            "trace_id",
            pl.col("source").alias("gap_source"),
            pl.col("file_before").alias("gap_file"),
            pl.col("line_before").alias("gap_line"),
            lost_beginning().alias("begun"),
            pl.col("seq_after").alias("gap_seq"),
            # (a marker on the log's first line has no line before it: its own time)
            pl.coalesce("t_before", "end_after").alias("gap_t"),
            pl.col("file_after").alias("first_file"),
            pl.col("line_after").alias("first_line"),
        )
    )


def _sent_before(begun: pl.LazyFrame, first: pl.Expr, send: str) -> pl.LazyFrame:
    """``in_flight`` at the send of the messages (``unexpected``'s rows, with
    :func:`_send_in_gap`'s) whose ``send`` was never seen, sent before the log of
    ``gap_source`` began: a log that lost its beginning."""
    return findings(
        begun,
        "in_flight",
        trace_id="trace_id",
        stage=pl.lit(send),
        last_seen=first,
        conv_id="conv_id",
        source="src_first",
        detail=pl.format(
            "{} not seen: the message's first event ({}) comes {} ms {} {}'s log begins at seq "
            "{} (its beginning lost), so it was probably sent before it",
            pl.lit(send),
            first,
            ms((pl.col("gap_t") - pl.col("t_min")).abs()),
            pl.when(pl.col("gap_t") >= pl.col("t_min"))
            .then(pl.lit("before"))
            .otherwise(pl.lit("after")),
            pl.col("gap_source"),
            pl.col("gap_seq"),
        ),
        evidence=evidence(("file_first", "line_first"), ("first_file", "first_line")),
        at="t_first",
    )


def _over_removals(paths: Paths, frame: pl.LazyFrame, i: int) -> pl.LazyFrame:
    """The rows of ``frame`` (pairs whose hop ``i`` some device logged more than once) where
    a device logged it twice with no removal of the message between, in that device's log:
    add, remove, add is a message put back; add, add (then remove) was shown twice."""
    # (each run of an app restarted under its name keeps a store of its own, review 25c)
    run = run_of(paths)
    keys = ["trace_id", "recipient", "source", *(["run"] if run else [])]
    again = frame.collect(
        engine=engine()
    )  # few rows: the hop events are read for these traces only
    pairs = again.lazy().select("trace_id", "recipient")
    adds = (
        paths.hops_of(pairs.select("trace_id"), hop=i)
        .join(pairs, on=["trace_id", "recipient"])
        .with_columns(run)
        .select(*keys, "pos", add=pl.lit(True))
    )
    removals = (
        paths.removals.lazy()
        .join(pairs, on=["trace_id", "recipient"])
        .with_columns(run)
        .select(*keys, "pos", add=pl.lit(False))
    )
    twice = (
        pl.concat([adds, removals])
        .sort(*keys, "pos", "add", descending=[*(False for _ in keys), False, True])
        .filter(pl.col("add") & pl.col("add").shift(1).over(keys).fill_null(False))
    )
    return again.lazy().join(twice, on=["trace_id", "recipient"], how="semi")


def duplicates(paths: Paths) -> pl.LazyFrame:
    p = paths.pipeline
    keys: list[pl.LazyFrame] = []
    for i, h in enumerate(p.hops):
        if h.repeatable:
            continue
        over: pl.Expr
        n = pl.col(col("n", i))
        # (how many processes of the recipient may have taken a server's writes: said)
        devices = pl.lit(None, dtype=pl.UInt32)
        if h.scope == "message":
            frame = paths.msg.lazy().select(
                "trace_id",
                pl.lit(None, dtype=pl.String).alias("recipient"),
                "conv_id",
                n,
                pl.col(col("src", i)),
                pl.col(col("t", i)),
            )
            over = n > 1
        else:
            frame = paths.pairs.lazy().select(
                "trace_id", "recipient", "conv_id", n, col("k", i), col("src", i), col("t", i)
            )
            # A user with several devices (sources) legitimately gets a hop once per device:
            # the recipient's own hops repeat only within one log (``k``: the sources that
            # logged it).
            allowed = pl.col(col("k", i))
            over = n > allowed
            if h.id == p.role("final") and not paths.removals.is_empty():
                # A message taken off a store (the remove role) may be added to it again: one
                # more per removal, counted per device, since each device keeps its own store
                # (a phone's removal allows the phone a second add, not the tablet).
                frame = _over_removals(paths, frame.filter(over), i)
                over = pl.lit(True)
            if h.emitter != "recipient":
                # The server writes once per device of the recipient, whether or not that
                # device logs it (offline, asleep): allowed as many as the devices whose logs
                # run at the time. This misses a true double write to one device while another
                # is offline, but a device that logs it twice repeats its own hops (flagged
                # above), while counting only the devices that logged this message would
                # report every message sent while a device is off: routine, and it would bury
                # the real duplicates.
                again = frame.filter(n > 1).collect(engine=engine())
                frame = again.lazy()
                if again.height:
                    took = _devices(paths, frame, i)
                    frame = frame.join(took, on=["trace_id", "recipient"], how="left")
                    devices = pl.col("devices").fill_null(0)
                    over = n > devices.clip(lower_bound=1)
        keys.append(
            frame.filter(over).select(
                "trace_id",
                pl.lit(i, dtype=pl.Int32).alias("hop"),
                pl.col("recipient").fill_null("").alias("rkey"),
                "recipient",
                "conv_id",
                n.alias("n"),
                pl.col(col("src", i)).alias("src"),
                pl.col(col("t", i)).alias("t"),
                devices.cast(pl.UInt32).alias("devices"),
            )
        )
    names = pl.col("hop").replace_strict(dict(enumerate(p.ids)), return_dtype=pl.String)
    out: list[pl.LazyFrame] = []
    if keys:
        # Collected once (few rows): the evidence below reads the keys three times.
        dup = pl.concat(keys).collect(engine=engine()).lazy()
        dup = dup.join(
            _all_evidence(paths, dup.select("trace_id", "hop", "rkey")),
            on=["trace_id", "hop", "rkey"],
            how="left",
        )
        out.append(
            findings(
                dup,
                "duplicate",
                trace_id="trace_id",
                recipient="recipient",
                stage=names,
                conv_id="conv_id",
                source=pl.coalesce("src_top", "src"),
                detail=pl.format(
                    "{} happened {} times{}{}{}",
                    names,
                    pl.col("n"),
                    pl.when(pl.col("recipient").is_not_null())
                    .then(pl.format(" for recipient {}", pl.col("recipient")))
                    .otherwise(pl.lit("")),
                    pl.when(pl.col("by_source").is_not_null())
                    .then(pl.format(" ({})", pl.col("by_source")))
                    .otherwise(pl.lit("")),
                    # (a user's device whose log was not given reads exactly so: say it)
                    pl.when(pl.col("devices").is_not_null())
                    .then(
                        pl.format(
                            "; processes of {}'s apps logging then: {} (the server writes "
                            "once to each connected device: is a device's log missing from "
                            "the inputs?)",
                            pl.col("recipient"),
                            pl.col("devices"),
                        )
                    )
                    .otherwise(pl.lit("")),
                ),
                evidence=pl.col("evidence"),
                at="t",
            )
        )
    persist = p.role("persist")
    if persist is not None:
        i = p.index(persist)
        ids = paths.msg.lazy().filter(pl.col("n_msg_id") > 1)
        # Every persist line (a retried persist is what assigns another id) and the first line
        # of each id, whichever hop carried it (e.g. a response with an id never persisted).
        persists = (
            _all_evidence(
                paths,
                ids.select(
                    "trace_id", pl.lit(i, dtype=pl.Int32).alias("hop"), pl.lit("").alias("rkey")
                ),
            )
            .select("trace_id", "evidence")
            .explode("evidence")
        )
        first_lines = paths.msg_ids.lazy().select(
            "trace_id", pl.struct("file", "line").alias("evidence")
        )
        where = (
            pl.concat([persists, first_lines.cast({"evidence": EVIDENCE.inner})])
            .unique()
            .group_by("trace_id")
            .agg(pl.col("evidence").sort())  # by file, then line
        )
        out.append(
            findings(
                ids.join(where.select("trace_id", "evidence"), on="trace_id", how="left"),
                "duplicate",
                trace_id="trace_id",
                stage=pl.lit(persist),
                conv_id="conv_id",
                source=col("src", i),
                detail=pl.when(pl.col("n_msg_id") == 2)
                .then(
                    pl.format(
                        "one trace id got two canonical msg_ids: {} and {}",
                        pl.col("msg_id_min"),
                        pl.col("msg_id_max"),
                    )
                )
                .otherwise(
                    pl.format(
                        "one trace id got {} canonical msg_ids, from {} to {}",
                        pl.col("n_msg_id"),
                        pl.col("msg_id_min"),
                        pl.col("msg_id_max"),
                    )
                ),
                evidence=pl.col("evidence").fill_null(pl.lit([], dtype=EVIDENCE)),
                at=col("t", i),
            )
        )
        out.append(_shared_msg_ids(paths, i, persist))
    return pl.concat(out) if out else empty_findings()


def resends(paths: Paths) -> pl.DataFrame:
    """The traces that persisted a canonical ``msg_id`` another trace persisted before them
    (:func:`_shared_msg_ids`), with that one (``first``) and its persist's row
    (``first_row``); none without a ``persist`` role."""
    persist = paths.pipeline.role("persist")
    if persist is None:
        return pl.DataFrame(
            schema={"trace_id": pl.String, "first": pl.String, "msg_id_min": pl.String}
        )
    i = paths.pipeline.index(persist)

    def compute() -> pl.DataFrame:
        keys = ["msg_id_min", "conv_id", col("src", i)]
        # the few columns first: a filter of the whole message frame copies all of them (50 MB
        # more at the 5M analysis' peak)
        # (a conversation not logged is one of its own: review 25c, a server that never
        # logs conv_id lost the check)
        named = [k for k in keys if k != "conv_id"]
        rows = paths.msg.select("trace_id", "n_msg_id", *keys, col("t", i), col("r", i)).filter(
            (pl.col("n_msg_id") == 1) & pl.all_horizontal(pl.col(k).is_not_null() for k in named)
        )
        ranked = (
            rows.filter(pl.struct(keys).is_duplicated())
            .sort(col("t", i), "trace_id")
            .with_columns(
                first=pl.col("trace_id").first().over(keys),
                first_row=pl.col(col("r", i)).first().over(keys),
            )
        )
        return ranked.filter(pl.col("trace_id") != pl.col("first"))

    return paths.memoised("resends", compute)


def _shared_msg_ids(paths: Paths, i: int, persist: str) -> pl.LazyFrame:
    """The mirror of two ids for one trace: one canonical ``msg_id`` persisted for several
    trace ids, the same message traced twice (a client that re-sent it under a new id, which
    the server's idempotency mapped to the first): each of its recipients may show it twice.
    Counted within one conversation and one persisting source, whose ids are unique (test runs
    each with a server of their own number their messages alike)."""
    later = resends(paths)
    if later.is_empty():
        return empty_findings()
    later = paths.located(later, col("r", i), "file", "line")
    later = paths.located(later, "first_row", "first_file", "first_line")
    return findings(
        later.lazy(),
        "duplicate",
        trace_id="trace_id",
        stage=pl.lit(persist),
        conv_id="conv_id",
        source=col("src", i),
        detail=pl.format(
            "msg_id {} was persisted for trace {} before: one message traced twice, which "
            "its recipients may show twice",
            pl.col("msg_id_min"),
            pl.col("first"),
        ),
        evidence=evidence(("first_file", "first_line"), ("file", "line")),
        at=col("t", i),
    )


def unexpected(paths: Paths) -> pl.LazyFrame:
    p = paths.pipeline
    send = p.index(p.roles["send"])
    msg_hops = [i for i, h in enumerate(p.hops) if h.scope == "message"]
    rcp_hops = [i for i, h in enumerate(p.hops) if h.scope == "recipient"]
    first: pl.Expr = pl.lit(None, dtype=pl.String)
    for i in reversed(msg_hops + rcp_hops):
        reached = (
            pl.col(col("n", i)) > 0 if i in msg_hops else pl.col(col("any", i)).fill_null(False)
        )
        first = pl.when(reached).then(pl.lit(p.ids[i])).otherwise(first)
    orphans = paths.msg.lazy().filter(pl.col(col("n", send)) == 0)
    if not paths.failed.is_empty():  # a send tried and failed was seen: the message went on
        # (review 25c: "never seen" of a send whose line is in the logs, at an error level)
        tried = paths.failed.lazy().filter(pl.col("hop") == send).select("trace_id")
        orphans = orphans.join(tried.unique(), on="trace_id", how="anti")
    again = resends(paths)
    if not again.is_empty():  # a re-send's request under a new trace id, its first sent
        sent = paths.msg.lazy().filter(pl.col(col("n", send)) > 0).select(first="trace_id")
        resent = again.lazy().select("trace_id", "first").join(sent, on="first")
        orphans = orphans.join(resent.select("trace_id"), on="trace_id", how="anti")
    by_sender = [i for i in msg_hops if p.hops[i].emitter == "sender"]
    # The first event is one of the hop named first (``first``: pipeline order), the earliest
    # on corrected time (then by source, file, line: a total order, so every column comes from
    # one row), not the first row read: the logs' order across files is arbitrary.
    rank = {h: k for k, h in enumerate(msg_hops + rcp_hops)}
    order = [
        pl.col("hop").replace_strict(rank, default=len(rank)),
        *map(pl.col, ("t", "source", "file", "line")),
    ]
    first_event = (
        paths.hops_of(orphans.select("trace_id"))
        .with_columns(t=paths.true_time())
        .group_by("trace_id")
        .agg(
            pl.col("t").sort_by(order).first().alias("t_first"),
            pl.col("t").min().alias("t_min"),
            pl.col("source").sort_by(order).first().alias("src_first"),
            pl.col("file").sort_by(order).first().alias("file_first"),
            pl.col("line").sort_by(order).first().alias("line_first"),
            pl.col("hop").sort_by(order).first().alias("hop_first"),
            pl.len().alias("n_events"),
            pl.col("source").filter(pl.col("hop").is_in(by_sender)).first().alias("sender_src"),
            pl.col("actor").filter(pl.col("hop").is_in(msg_hops)).first().alias("acting"),
        )
    )
    # A message whose first event comes within the time a hop may take after the logs begin
    # was probably sent before them: undecided (in flight), like one near their end.
    start = paths.t_start if paths.t_start is not None else 0
    window = hop_window_ns(p, None)
    early = pl.col("t_min") - start < window
    orphans = orphans.join(first_event, on="trace_id", how="left")
    # a recipient hop whose event names no recipient counts for no pair: named by the event
    first = pl.coalesce(
        first, pl.col("hop_first").replace_strict(dict(enumerate(p.ids)), return_dtype=pl.String)
    )
    # Near the logs' end, likewise: a stage's line is written at its end, so a send still
    # open when the logs end (its request, persist... already written) is not yet in them
    # (review 21d: every message of a log cut mid-traffic read as unexpected).
    certain = paths.certain_end()  # (whatever the offsets the pairs allow: review 26a)
    end = certain if certain is not None else 0
    grace = grace_ns(p, None)
    near_end = ~early & (end - pl.col("t_min") < grace)
    send_id = pl.lit(p.ids[send])
    # a send a reading's time window left out (review 26c): cut by the window, not unseen
    sends_out = paths.outside.filter(pl.col("stage") == p.ids[send]).get_column("trace_id")
    cut = pl.col("trace_id").is_in(sends_out.implode())
    early, near_end = ~cut & early, ~cut & near_end
    undecided = findings(
        orphans.filter(cut | early | near_end),
        "in_flight",
        trace_id="trace_id",
        stage=send_id,
        last_seen=first,
        conv_id="conv_id",
        source="src_first",
        detail=pl.when(cut)
        .then(
            pl.format(
                "{} is outside the time window read (--since/--until): the message's first "
                "event in it is {}",
                send_id,
                first,
            )
        )
        .when(early)
        .then(
            pl.format(
                "{} not seen: the message's first event ({}) comes {} ms after the logs "
                "begin, within the {} ms {}, so it was probably sent before them",
                send_id,
                first,
                ms(pl.col("t_min") - start),
                pl.lit(str(round(window / 1e6))),
                pl.lit("grace window" if window > grace_ns(p, p.hop_window) else "a hop may take"),
            )
        )
        .otherwise(
            pl.format(
                "{} not seen yet: the message's first event ({}) comes {} ms before the logs "
                "end, within the {} ms grace window (a stage's line is written when it ends)",
                send_id,
                first,
                ms(pl.lit(end) - pl.col("t_min")),
                pl.lit(str(round(grace / 1e6))),
            )
        ),
        evidence=evidence(("file_first", "line_first")),
        at="t_first",
    )
    late = orphans.filter(~cut & ~early & ~near_end)
    if paths.gaps.is_empty():
        late = late.with_columns(
            gap_source=pl.lit(None, dtype=pl.String),
            gap_file=pl.lit(None, dtype=pl.String),
            gap_line=pl.lit(None, dtype=pl.Int64),
            begun=pl.lit(False),
        )
    else:
        # A send that the sender's own logging may have lost (a seq gap just before the
        # message's first event) makes "never seen" indeterminate, as a drop inside a log gap
        # is. Still reported, marked, with the gap in its evidence: not listing it anywhere
        # would hide it (the log_gap finding names only drops; see the drop candidates).
        rows = late.collect(engine=engine())
        sent_in_gap = _send_in_gap(
            paths, rows.select("trace_id", "t_min", "sender_src", "acting", "conv_id")
        )
        late = rows.lazy().join(sent_in_gap, on="trace_id", how="left")
        # sent before a log that lost its beginning began (the sender's, or the server's
        # where the sender's is not in the logs): as one sent before all the logs, in flight
        # (session 22's review: "unexpected, indeterminate" beside its log's lost beginning)
        undecided = pl.concat(
            [undecided, _sent_before(late.filter(pl.col("begun")), first, p.ids[send])]
        )
    no_send = findings(
        late.filter(~pl.col("begun").fill_null(False)),
        "unexpected",
        trace_id="trace_id",
        stage=first,
        conv_id="conv_id",
        source="src_first",
        detail=pl.format(
            "{} event(s) for a message whose {} was never seen (first: {}){}",
            pl.col("n_events"),
            pl.lit(p.ids[send]),
            first,
            pl.when(pl.col("gap_source").is_not_null())
            .then(
                pl.format(
                    "; indeterminate: the sender's log {} lost events around it",
                    pl.col("gap_source"),
                )
            )
            .otherwise(pl.lit("")),
        ),
        evidence=evidence(("gap_file", "gap_line"), ("file_first", "line_first")),
        at="t_first",
    )
    # (a message whose send was never seen is said whole above, these events with it)
    sent = paths.msg.lazy().filter(pl.col(col("n", send)) > 0).select("trace_id")
    found = [undecided, no_send, _unnamed(paths, sent)]
    entry = [p.index(r) for r in (p.role("deliver"), p.role("receive")) if r is not None]
    if not entry:
        entry = rcp_hops[:1]
    if not entry:
        return pl.concat(found)
    via_ws = pl.lit(False)
    for i in entry:
        via_ws |= pl.col(col("n", i)).fill_null(0) > 0
    cols: dict[str, pl.Expr] = {}
    for k in ("id", "t", "src", "r"):
        expr: pl.Expr = pl.lit(None)
        for i in reversed(rcp_hops):
            val = pl.lit(p.ids[i]) if k == "id" else pl.col(col(k, i))
            expr = pl.when(pl.col(col("n", i)).fill_null(0) > 0).then(val).otherwise(expr)
        cols[k] = expr
    strays = (
        paths.pairs.lazy()
        .filter(~pl.col("expected") & pl.col("has_list").fill_null(False) & via_ws)
        .with_columns(r_id=cols["id"], r_t=cols["t"], r_src=cols["src"], r_row=cols["r"])
        .collect(engine=engine())
    )
    stray = findings(
        paths.located(strays, "r_row", "r_file", "r_line").lazy(),
        "unexpected",
        trace_id="trace_id",
        recipient="recipient",
        stage="r_id",
        conv_id="conv_id",
        source="r_src",
        detail=pl.format(
            "{} reached recipient {}, whom the broadcast did not name",
            pl.col("r_id"),
            pl.col("recipient"),
        ),
        evidence=evidence(("r_file", "r_line")),
        at="r_t",
    )
    return pl.concat([*found, stray])


def _unnamed(paths: Paths, sent: pl.LazyFrame) -> pl.LazyFrame:
    """An app's recipient hop events that name no recipient (:meth:`Paths.unnamed`), per
    message and log: on no recipient's path, so said here, not lost; a path they may
    complete is not judged (:func:`._drops._with_unnamed`). Of the messages ``sent`` only."""
    p = paths.pipeline
    ids = dict(enumerate(p.ids))
    keys = {i: h.recipient for i, h in enumerate(p.hops) if h.scope == "recipient"}
    named = pl.col("hops").list.eval(pl.element().replace_strict(ids, return_dtype=pl.String))
    key = pl.col("hops").list.eval(pl.element().replace_strict(keys, return_dtype=pl.String))
    return findings(
        paths.unnamed().lazy().join(sent, on="trace_id", how="semi"),
        "unexpected",
        trace_id="trace_id",
        stage=pl.col("hop").replace_strict(ids, return_dtype=pl.String),
        conv_id="conv_id",
        source="source",
        detail=pl.format(
            "{} event(s) of this message on {} name no recipient (no {} on their lines: {}), so "
            "they are on no recipient's path; a recipient's path they may complete is not "
            "judged",
            pl.col("n"),
            pl.col("source"),
            key.list.unique(maintain_order=True).list.join(" or "),
            named.list.join(", "),
        ),
        evidence=evidence(("file", "line")),
        at="t",
    )
