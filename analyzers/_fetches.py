"""History fetches paired into windows: each fetch's start and, once seen, its end, in its
client's log. Shared by the races (a receive inside a window) and the removals (a window begun
after a removal showed the message again). A restarted client's fetches open at its restart
never end: its windows are paired run by run (``run``, :func:`tracekit.analyzers._paths.run_of`)."""

from __future__ import annotations

from typing import Final

import polars as pl

from tracekit.analyzers._paths import RUN_BITS, Paths, as_text, engine, run_of

__all__ = ["fetch_bounds", "fetch_positions", "fetch_window", "keyed"]


def _code(name: str) -> pl.Expr:
    """A name's code (the event table's own where its names are Categorical, so text
    columns give the same one)."""
    return pl.col(name).cast(pl.Categorical).to_physical()


def _lines(paths: Paths) -> pl.LazyFrame:
    """The fetch lines that name a conversation, in each log's order. An end naming none
    ends the oldest fetch open on its client then (review 25b: left out, that fetch never
    ended, and every later receive of its conversation was a race)."""
    return paths.memoised("fetch_lines", lambda: _with_ends_named(paths)).lazy()


def _with_ends_named(paths: Paths) -> pl.DataFrame:
    lines = paths.fetches.sort("source", "pos", maintain_order=True)
    unnamed = (pl.col("kind") == "end") & pl.col("conv_id").is_null()
    clients = lines.filter(unnamed).get_column("source").unique()
    if not clients.is_empty():  # (usually none)
        theirs = lines.with_row_index("i").filter(pl.col("source").is_in(clients.implode()))
        run = (pl.col("pos") // (1 << RUN_BITS)) if paths.runs else pl.lit(0)
        ended = _oldest_open(theirs.with_columns(run=run), _by_user(paths, theirs))
        conv = pl.Series("conv_id", [None] * lines.height, pl.String).scatter(
            list(ended), list(ended.values())
        )
        lines = lines.with_columns(pl.coalesce("conv_id", conv))
    return lines.filter(pl.col("conv_id").is_not_null())


def _oldest_open(lines: pl.DataFrame, by_user: set[str]) -> dict[int, str]:
    """Per end naming no conversation (its row ``i``), the conversation of the fetch it ends:
    the oldest open on its client (its ``run``), its user's where the client's fetches are
    kept per user (``by_user``, as :func:`keyed` keeps them), as ends pair with starts first
    in, first out (:func:`fetch_positions`). A restart ends every fetch open. Walked line by
    line: only the few clients that log such ends."""
    out: dict[int, str] = {}
    open_: list[tuple[str | None, str]] = []  # (user, conversation), oldest first
    client: tuple[str, int] | None = None
    for i, kind, source, run, actor, conv in lines.select(
        "i", "kind", "source", "run", "actor", "conv_id"
    ).iter_rows():
        if (source, run) != client:
            client, open_ = (source, run), []
        who = actor if source in by_user else None
        if kind == "start":
            if conv is not None:
                open_.append((who, conv))
            continue
        # an end ends its user's oldest fetch open, of its conversation where it names one;
        # a user's end with none open closes nothing (its start was before the logs)
        ends = [k for k, (w, c) in enumerate(open_) if w == who and conv in (None, c)]
        if ends:
            ended = open_.pop(ends[0])[1]
            if conv is None:
                out[i] = ended
    return out


def _users(paths: Paths, asked: pl.Series) -> pl.DataFrame:
    """Which of the names ``asked`` (``actor``) are users: receive a message somewhere in the
    logs (the receive role's hop, else every recipient hop's: an integer filter first, the
    names' only on those); ``user``, true."""
    p = paths.pipeline
    rcp = [i for i, h in enumerate(p.hops) if h.scope == "recipient"]
    receive = p.role("receive")
    hops = [p.index(receive)] if receive is not None else rcp
    return (
        as_text(
            paths.hops.lazy()
            .filter(pl.col("hop").is_in(hops))
            .filter(pl.col("recipient").is_in(asked.implode()))
            .select(actor="recipient")
            .unique()
        )
        .with_columns(user=pl.lit(True))
        .collect(engine=engine())
    )


#: A client's fetches are its users' where every fetch line names one, and one at least is a
#: user (review 25f: one load generator's user who only loads history made them the client's
#: again, all of them: one user's load another's race)
_NAMED: Final = pl.col("actor").is_not_null().all() & pl.col("user").fill_null(False).any()


def _by_user(paths: Paths, fetches: pl.DataFrame) -> set[str]:
    """The clients (sources) among ``fetches``' whose fetches are kept per user (_NAMED)."""
    users = _users(paths, fetches.get_column("actor").drop_nulls().unique())
    named = fetches.join(users, on="actor", how="left").group_by("source").agg(named=_NAMED)
    return set(named.filter("named").get_column("source"))


def _groups(paths: Paths) -> pl.DataFrame:
    """Whose fetches make one series of windows, numbered (``key``): a client's of one
    conversation (source, conversation), and where the client's every fetch line names its
    user, one at least a user who receives messages in the logs, that user's (review 25b: a
    load generator logging several users under one source made one user's fetch another's
    race; 25e: an app logging its loads under its service's name, tracekit's default actor,
    lost them all).
    """
    return paths.memoised("fetch_groups", lambda: _numbered(paths))


def _numbered(paths: Paths) -> pl.DataFrame:
    fetches = _lines(paths).collect(engine=engine())
    users = _users(paths, fetches.get_column("actor").drop_nulls().unique())
    return (
        fetches.join(users, on="actor", how="left")
        .select(
            s=_code("source"),
            c=_code("conv_id"),
            who=pl.when(_NAMED.over("source")).then(_code("actor")),
        )
        .unique(maintain_order=True)
        .with_row_index("key")
    )


def keyed(frame: pl.LazyFrame, paths: Paths, who: str) -> pl.LazyFrame:
    """``frame``'s rows with the ``key`` of the fetches that concern them: their source's and
    conversation's, and ``who``'s where that client's fetch lines name their user (a row
    naming nobody: any of them). Rows no fetch concerns are left out."""
    groups = _groups(paths)
    by_user = groups.get_column("who").is_not_null()
    users, clients = groups.filter(by_user).lazy(), groups.filter(~by_user).drop("who").lazy()
    rows = frame.with_columns(s=_code("source"), c=_code("conv_id"), who=_code(who))
    parts = []  # (only the kinds of series there are: a join of every receive costs)
    if by_user.any():
        parts += [
            rows.join(users, on=["s", "c", "who"]).drop("who"),
            rows.filter(pl.col("who").is_null()).drop("who").join(users.drop("who"), on=["s", "c"]),
        ]
    if not by_user.all() or not parts:
        parts.append(rows.drop("who").join(clients, on=["s", "c"]))
    return pl.concat(parts).drop("s", "c")


def fetch_window(paths: Paths) -> list[str]:
    """What a fetch window is kept per: the ``key``, and the ``run`` where a source restarted
    (:func:`fetch_positions` and the receives then carry it, :func:`run_of`)."""
    return ["key", "run"] if paths.runs else ["key"]


def fetch_positions(paths: Paths) -> pl.DataFrame:
    """The fetch events of each series (:func:`keyed`: a client's, of one conversation), in
    log order, with how many fetches were ``started`` and are ``open`` after each, whether
    an end ``closes`` one, and how many were ``closed`` (or left open by an earlier run of
    the client), with the ``run`` where a source restarted.

    Fetch events carry no fetch id: fetches may overlap, and an end closes one of the open
    ones. Ends are paired with starts in order (the k-th end that closes something closes the
    k-th start), so at any position the open fetches are starts number ends + 1 .. starts.
    Open count = running sum of +1/-1 in log order, floored at 0 (an end whose start came
    before the logs closes nothing): floor(x) = x - min(0, running min of x)."""
    return paths.memoised("fetch_positions", lambda: _fetch_positions(paths))


def _fetch_positions(paths: Paths) -> pl.DataFrame:
    # Open counts are kept per run (a restart ends every fetch then open); starts are numbered
    # over the whole log, and a run's first end closes the first start of its own run: the
    # starts of earlier runs count as closed.
    run = fetch_window(paths)
    is_start = pl.col("kind") == "start"
    raw = pl.when(is_start).then(1).otherwise(-1).cum_sum().over(run)
    floor = pl.min_horizontal(pl.lit(0), pl.col("raw").cum_min().over(run))
    closes = ~is_start & (pl.col("open").shift(1).over(run).fill_null(0) > 0)
    earlier = (pl.col("started") - is_start.cast(pl.Int64)).first().over(run) if paths.runs else 0
    return (
        keyed(_lines(paths), paths, "actor")
        .with_columns(*run_of(paths))
        .sort("key", "pos", maintain_order=True)
        .with_columns(raw=raw, started=is_start.cast(pl.Int64).cum_sum().over("key"))
        .with_columns(open=pl.col("raw") - floor)
        .with_columns(closes=closes)
        .with_columns(closed=pl.col("closes").cast(pl.Int64).cum_sum().over(run) + earlier)
        .collect(engine=engine())
    )


def fetch_bounds(fetch: pl.DataFrame) -> tuple[pl.LazyFrame, pl.LazyFrame]:
    """The k-th fetch's start and end per key (``start_pos``/``_file``/``_line``/``_ts``,
    ``end_pos``/...), from :func:`fetch_positions`; join them on ``key`` and ``k``."""

    def side(rows: pl.Expr, k: str, name: str) -> pl.LazyFrame:
        where = pl.col("pos", "file", "line", "ts").name.prefix(f"{name}_")
        return fetch.lazy().filter(rows).select("key", pl.col(k).alias("k"), where)

    return side(pl.col("kind") == "start", "started", "start"), side(
        pl.col("closes"), "closed", "end"
    )
