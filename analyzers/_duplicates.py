"""Duplicates (a hop seen twice for one message and recipient; two msg_ids for one trace) and
unexpected events (no send seen; a WS delivery to someone the broadcast did not name)."""

from __future__ import annotations

import polars as pl

from tracekit.analyzers._findings import EVIDENCE, empty_findings, evidence, findings, ms
from tracekit.analyzers._paths import Paths, as_text, col, grace_ns

__all__ = ["duplicates", "unexpected"]


def _all_evidence(paths: Paths, keys: pl.LazyFrame) -> pl.LazyFrame:
    """``keys`` (trace_id, hop, rkey) -> every occurrence's file/line, in log order."""
    hops = paths.hops_of(keys).select(
        "trace_id", "hop", pl.col("recipient").fill_null("").alias("rkey"), "file", "line"
    )
    return (
        keys.join(hops, on=["trace_id", "hop", "rkey"])
        .group_by("trace_id", "hop", "rkey")
        .agg(pl.struct("file", "line").sort_by("file", "line").alias("evidence"))
        .with_columns(pl.col("evidence").cast(EVIDENCE))
    )


def _devices(paths: Paths, users: pl.Series) -> pl.LazyFrame:
    """``recipient`` -> ``devices``: how many client sources the logs show acting for each of
    ``users`` (their own hops, history loads, any other event), anywhere in the logs. Each
    process instance is a source, so a client restarted during the logs counts twice."""
    server = [i for i, h in enumerate(paths.pipeline.hops) if h.emitter == "server"]
    hops = paths.hops.lazy()
    mine = pl.col("actor").is_in(users.cast(paths.hops.schema["actor"]).implode())
    # a server logs on behalf of users too (a persist's actor is the sender): not a device
    servers = hops.filter(pl.col("hop").is_in(server)).select(
        pl.col("source").unique().cast(pl.String)
    )
    seen = pl.concat(
        [
            as_text(hops.filter(mine & ~pl.col("hop").is_in(server)).select("actor", "source")),
            paths.rest.lazy()
            .filter(pl.col("actor").is_in(users.implode()))
            .select("actor", "source"),
        ]
    )
    return (
        seen.join(servers, on="source", how="anti")
        .group_by(pl.col("actor").alias("recipient"))
        .agg(pl.col("source").n_unique().alias("devices"))
    )


def duplicates(paths: Paths) -> pl.LazyFrame:
    p = paths.pipeline
    keys: list[pl.LazyFrame] = []
    for i, h in enumerate(p.hops):
        if h.repeatable:
            continue
        over: pl.Expr
        n = pl.col(col("n", i))
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
            over = n > pl.col(col("k", i))
            if h.emitter != "recipient":
                # The server writes once per device of the recipient, whether or not that
                # device logs it (offline, asleep): allowed as many as the devices the logs
                # show for that user anywhere. This misses a true double write to one device
                # while another is offline, but a device that logs it twice repeats its own
                # hops (flagged above), while counting only the devices that logged this
                # message would report every message sent while a device is off: routine,
                # and it would bury the real duplicates.
                again = frame.filter(n > 1).collect()
                users = again.get_column("recipient").unique()
                devices = _devices(paths, users) if len(users) else None
                frame = again.lazy()
                if devices is not None:
                    frame = frame.join(devices, on="recipient", how="left")
                    over = n > pl.col("devices").fill_null(0).clip(lower_bound=1)
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
            )
        )
    names = pl.col("hop").replace_strict(dict(enumerate(p.ids)), return_dtype=pl.String)
    out: list[pl.LazyFrame] = []
    if keys:
        dup = pl.concat(keys)
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
                source="src",
                detail=pl.format(
                    "{} happened {} times{}",
                    names,
                    pl.col("n"),
                    pl.when(pl.col("recipient").is_not_null())
                    .then(pl.format(" for recipient {}", pl.col("recipient")))
                    .otherwise(pl.lit("")),
                ),
                evidence=pl.col("evidence"),
                at="t",
            )
        )
    persist = p.role("persist")
    if persist is not None:
        i = p.index(persist)
        out.append(
            findings(
                paths.msg.lazy().filter(pl.col("n_msg_id") > 1),
                "duplicate",
                trace_id="trace_id",
                stage=pl.lit(persist),
                conv_id="conv_id",
                source=col("src", i),
                detail=pl.format(
                    "one trace id got two canonical msg_ids: {} and {}",
                    pl.col("msg_id_min"),
                    pl.col("msg_id_max"),
                ),
                evidence=evidence((col("file", i), col("line", i))),
                at=col("t", i),
            )
        )
    return pl.concat(out) if out else empty_findings()


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
    first_event = (
        paths.hops_of(orphans.select("trace_id"))
        .group_by("trace_id")
        .agg(
            paths.true_time().first().alias("t_first"),
            paths.true_time().min().alias("t_min"),
            pl.col("source").first().alias("src_first"),
            pl.col("file").first().alias("file_first"),
            pl.col("line").first().alias("line_first"),
            pl.len().alias("n_events"),
        )
    )
    # A message whose first event comes within the grace window after the logs begin was
    # probably sent before them: undecided (in flight), like one near their end.
    start = paths.t_start if paths.t_start is not None else 0
    early = pl.col("t_min") - start < grace_ns(p, None)
    orphans = orphans.join(first_event, on="trace_id", how="left")
    before = findings(
        orphans.filter(early),
        "in_flight",
        trace_id="trace_id",
        stage=pl.lit(p.ids[send]),
        last_seen=first,
        conv_id="conv_id",
        source="src_first",
        detail=pl.format(
            "{} not seen: the message's first event ({}) comes {} ms after the logs begin, "
            "inside the {} ms grace window, so it was probably sent before them",
            pl.lit(p.ids[send]),
            first,
            ms(pl.col("t_min") - start),
            pl.lit(str(round(grace_ns(p, None) / 1e6))),
        ),
        evidence=evidence(("file_first", "line_first")),
        at="t_first",
    )
    no_send = findings(
        orphans.filter(~early),
        "unexpected",
        trace_id="trace_id",
        stage=first,
        conv_id="conv_id",
        source="src_first",
        detail=pl.format(
            "{} event(s) for a message whose {} was never seen (first: {})",
            pl.col("n_events"),
            pl.lit(p.ids[send]),
            first,
        ),
        evidence=evidence(("file_first", "line_first")),
        at="t_first",
    )
    entry = [p.index(r) for r in (p.role("deliver"), p.role("receive")) if r is not None]
    if not entry:
        entry = rcp_hops[:1]
    if not entry:
        return pl.concat([before, no_send])
    via_ws = pl.lit(False)
    for i in entry:
        via_ws |= pl.col(col("n", i)).fill_null(0) > 0
    cols: dict[str, pl.Expr] = {}
    for k in ("id", "t", "src", "file", "line"):
        expr: pl.Expr = pl.lit(None)
        for i in reversed(rcp_hops):
            val = pl.lit(p.ids[i]) if k == "id" else pl.col(col(k, i))
            expr = pl.when(pl.col(col("n", i)).fill_null(0) > 0).then(val).otherwise(expr)
        cols[k] = expr
    stray = findings(
        paths.pairs.lazy()
        .filter(~pl.col("expected") & pl.col("has_list").fill_null(False) & via_ws)
        .with_columns(
            r_id=cols["id"],
            r_t=cols["t"],
            r_src=cols["src"],
            r_file=cols["file"],
            r_line=cols["line"],
        ),
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
    return pl.concat([before, no_send, stray])
