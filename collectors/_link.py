"""Tie events without a trace id to their message through the ids they mention.

A line naming two ids joins them (``clientMsgId=<uuid> id=msg123``); an event carrying both a
trace id and a ``msg_id`` joins those. Every event reachable from a message's ids gets that
message's trace id, across all files. Each group of joined ids gets, in this order:

1. the trace id an event of the group carries (tracekit's own JSON lines, OTLP);
2. else the trace id of the group's client message id UUID (``trace_id_from_uuid``);
3. else a stable derived id: the first 32 hex digits of
   ``sha256("tracekit-derived:" + smallest server id)`` (or smallest client id when no server id
   is known), so the same logs always give the same id.

A server id names one message everywhere, and so does a client id that is a UUID. Any other
client id (``tmp-17``, a per-client counter) is unique only within its client: it is scoped to
the line's actor, the sender who owns it (the client's own file, or ``from=`` on a server line;
the source when no actor is known), so u1's ``tmp-1`` and u2's ``tmp-1`` are two nodes. A
derived id seeded by such a client id hashes ``actor + "\x1f" + client id``.

The server does not own the temp ids it logs; its lines need not name the sender. A temp id on
a line of the server (actor ``server``, or no actor in a source that logs a server hop of the
default pipeline: ``REST.persist``, ``WS-BROADCAST.start``/``deliver``) or of no known owner
takes the scope of the one client that used that id (on its own lines or behind ``from=``), so
a persist line without ``from=`` still ties u1's send to its server id. When several clients
used it, which one the line means cannot be told: the line keeps no client id (it may still
link through its server id), is counted in a per-file warning, and if left without a trace id
is unlinked as ambiguous. When no client used it, it keeps its own scope (actor, else source).

A group is ambiguous, its events stay unlinked and nothing is guessed, when it holds two
different candidate trace ids (two UUIDs or two carried trace ids), or when its id would be
derived (no carried trace id, no UUID) but it holds two server ids: a client reused a temp id
(restart, second device), and which line belongs to which message cannot be told. Under a
carried trace id or a UUID two server ids stay linked: one message persisted twice, a duplicate
the analyzers report. Message events (every stage but ``TRACEKIT``; every action but history
fetches) left without a trace id are counted as unlinked.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from tracekit.collectors._stats import InputStats
from tracekit.schema import META_STAGE, derived_trace_id

__all__ = ["link"]

_NOT_MESSAGE_ACTIONS: Final = ("fetch_start", "fetch_end")
#: Hops the default chat pipeline has the server log (``emitter = "server"``): a source
#: logging any of them is a server's log.
_SERVER_HOPS: Final = {"REST": ("persist",), "WS-BROADCAST": ("start", "deliver")}
_UUID_RE: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def link(table: pl.DataFrame, stats: InputStats) -> pl.DataFrame:
    """Fill ``trace_id`` where it can be derived; drop the private ``_client_id`` column."""
    if table.get_column("trace_id").null_count() == 0:  # tracekit's own logs: nothing to do
        return table.drop("_client_id") if "_client_id" in table.columns else table
    if "_client_id" not in table.columns:
        table = table.with_columns(pl.lit(None, dtype=pl.String).alias("_client_id"))
    table = _scope_client_ids(table, stats)
    need = table.select("msg_id", "_client_id").filter(
        table.get_column("trace_id").is_null()
        & (table.get_column("msg_id").is_not_null() | table.get_column("_client_id").is_not_null())
    )
    ambiguous_nodes: set[str] = set()
    if need.height:
        table, ambiguous_nodes = _fill(table, need)
    _count_unlinked(table, ambiguous_nodes, stats)
    return table.drop("_client_id", "_client_ambiguous", strict=False)


def _server_hop() -> pl.Expr:
    """Events of the hops a server logs in the default chat pipeline (``emitter = "server"``)."""
    return pl.any_horizontal(
        (pl.col("stage") == stage) & pl.col("action").is_in(actions)
        for stage, actions in _SERVER_HOPS.items()
    )


def _scope_client_ids(table: pl.DataFrame, stats: InputStats) -> pl.DataFrame:
    """Client ids that are not UUIDs -> ``owner + "\x1f" + id``: a temp id is unique only
    within the client that made it. A line of the server, or of no known owner, names a
    client's temp id: it takes the scope of the one client that used that id; when several did,
    its client id is dropped and the line flagged in ``_client_ambiguous``. Decided on the
    distinct ids; the rows are only rewritten when such ids exist."""
    cid = table.get_column("_client_id")
    if cid.null_count() == cid.len():
        return table
    distinct = cid.drop_nulls().unique()
    local = distinct.filter(~distinct.cast(pl.String).str.contains(_UUID_RE))
    if local.len() == 0:
        return table
    text = pl.col("_client_id").cast(pl.String)
    # A line's own scope, the sender owning its temp id: its actor (the client's own file, or
    # from= on a server line), else its source.
    own_scope = pl.coalesce(pl.col("actor").cast(pl.String), pl.col("source").cast(pl.String))
    own_scope = own_scope.fill_null("") + pl.lit("\x1f") + text
    # Orphans: temp ids on the server's lines (actor "server", or no actor in a log of server
    # hops) or on lines of no known owner. Tested on the Categorical codes, no text.
    servers = table.filter(_server_hop()).get_column("source").unique()
    actor, source = pl.col("actor"), pl.col("source")
    server_line = (actor == "server").fill_null(False) | (
        actor.is_null() & (source.is_null() | source.is_in(servers.implode()).fill_null(False))
    )
    table = table.with_columns(
        pl.col("_client_id").is_in(local.implode()).fill_null(False).alias("_local")
    ).with_columns((pl.col("_local") & server_line).alias("_orphan"))
    local_row, orphan = pl.col("_local"), pl.col("_orphan")
    any_orphan, any_owned = table.select(
        orphan.any().alias("orphan"), (local_row & ~orphan).any().alias("owned")
    ).row(0)
    if not (any_orphan and any_owned):  # nobody to join: every temp id keeps its own scope
        scoped = pl.when(local_row).then(own_scope).otherwise(text)
        return table.with_columns(scoped.cast(pl.Categorical()).alias("_client_id")).drop(
            "_local", "_orphan"
        )
    # The clients that used each temp id an orphan names: one -> its scope; several ->
    # ambiguous; none -> the orphan's own scope.
    wanted = table.filter(orphan).get_column("_client_id").unique()
    used = (
        table.filter(local_row & ~orphan & pl.col("_client_id").is_in(wanted.implode()))
        .select("_client_id", pl.coalesce(pl.col("actor"), "source").cast(pl.String).alias("by"))
        .group_by("_client_id")
        .agg(pl.col("by").min().alias("only"), pl.col("by").n_unique().alias("n"))
    )
    code = pl.col("_client_id").to_physical()
    only = used.select(pl.when(pl.col("n") == 1).then("only")).to_series()
    guess = code.replace_strict(
        used.get_column("_client_id").to_physical(), only, default=None, return_dtype=pl.String
    )
    several = used.filter(pl.col("n") > 1).get_column("_client_id").to_physical()
    amb = orphan & code.is_in(several.implode())
    scoped = (
        pl.when(~local_row)
        .then(text)
        .when(amb)
        .then(None)
        .when(orphan & guess.is_not_null())
        .then(guess + pl.lit("\x1f") + text)
        .otherwise(own_scope)
    )
    out = table.with_columns(
        scoped.cast(pl.Categorical()).alias("_client_id"), amb.alias("_client_ambiguous")
    ).drop("_local", "_orphan")
    flagged = out.filter("_client_ambiguous").group_by("file", maintain_order=True).len()
    for file, n in flagged.iter_rows():
        stats.warn_count(
            str(file),
            n,
            "lines name a temp client id that several clients used but not their sender"
            " (from=): not linked by it",
        )
    return out


def _components(n_nodes: int, edges: pl.DataFrame) -> pl.DataFrame:
    """Integer node ids ``0..n_nodes-1`` -> ``label`` (the smallest id of its connected
    component), by min-label propagation with pointer jumping. Returns columns ``id``, ``label``.

    Components here are tiny (a client id, a server id, maybe a trace id), so this converges in
    two or three vectorised rounds; no Python runs per id."""
    labels = pl.DataFrame({"id": pl.int_range(0, n_nodes, dtype=pl.UInt32, eager=True)})
    labels = labels.with_columns(pl.col("id").alias("label"))
    if edges.height == 0:
        return labels
    ends = pl.concat([edges.get_column("a"), edges.get_column("b")])
    if not ends.is_duplicated().any():
        # The usual case (one client id <-> one server id): every component is a single edge
        # or a lone node, so no propagation is needed.
        low = edges.select(pl.min_horizontal("a", "b")).to_series()
        label = labels.get_column("label").clone()  # ids are positions: written in place
        label.scatter(edges.get_column("a"), low).scatter(edges.get_column("b"), low)
        return labels.with_columns(label)
    both = pl.concat(
        [
            edges.select(pl.col("a").alias("src"), pl.col("b").alias("dst")),
            edges.select(pl.col("b").alias("src"), pl.col("a").alias("dst")),
        ]
    )
    for _ in range(10_000):
        cand = (
            both.join(labels, left_on="dst", right_on="id")
            .group_by("src")
            .agg(pl.col("label").min().alias("cand"))
        )
        new = labels.join(cand, left_on="id", right_on="src", how="left").select(
            "id", pl.min_horizontal("label", "cand").alias("label")
        )
        # pointer jumping: adopt the label's own label, halving long chains each round
        new = new.join(
            new.rename({"id": "l2", "label": "ll"}), left_on="label", right_on="l2", how="left"
        ).select("id", pl.coalesce("ll", "label").alias("label"))
        changed = (new.get_column("label") != labels.get_column("label")).any()
        labels = new
        if not changed:
            break
    return labels


def _numbered(values: pl.Series, name: str, offset: int) -> pl.DataFrame:
    """Distinct ``values`` (nulls dropped) -> ``name`` (as given), ``text`` (as String) and
    ``id`` from ``offset`` in the order of the text, so the smallest id of a kind within a
    component is its smallest value: components aggregate integers, not strings."""
    values = values.drop_nulls().unique()
    text = values.cast(pl.String)
    order = text.arg_sort()
    ids = pl.int_range(offset, offset + values.len(), dtype=pl.UInt32, eager=True)
    return pl.DataFrame({name: values.gather(order), "text": text.gather(order), "id": ids})


def _fill(table: pl.DataFrame, need: pl.DataFrame) -> tuple[pl.DataFrame, set[str]]:
    # The ids are Categorical (the table arrives compact; the text reader casts the client ids
    # in its threads): the graph hashes their integer codes and the trace ids found go back as
    # Categorical, so no column of the whole table is converted to text and back.
    table = table.with_columns(pl.col("msg_id", "trace_id", "_client_id").cast(pl.Categorical()))
    ids = table.select("msg_id", "_client_id", "trace_id")
    if need.height * 2 < table.height:
        # Only rows that can touch the ids in question feed the graph (big JSON inputs).
        wanted_m = need.get_column("msg_id").drop_nulls().unique()
        wanted_c = need.get_column("_client_id").drop_nulls().unique()
        ids = ids.filter(
            pl.col("msg_id").is_in(wanted_m.implode())
            | pl.col("_client_id").is_in(wanted_c.implode())
        )
    ids = ids.filter(pl.any_horizontal(pl.col("msg_id", "_client_id").is_not_null()))
    # Every server id, client id and trace id becomes one integer node (no string keys).
    m_ids = _numbered(ids.get_column("msg_id"), "msg_id", 0)
    c_ids = _numbered(ids.get_column("_client_id"), "_client_id", m_ids.height)
    t_ids = _numbered(ids.get_column("trace_id"), "trace_id", m_ids.height + c_ids.height)
    # Edges come from lines naming two ids or more, as distinct tuples (they repeat).
    named = pl.sum_horizontal(pl.col("msg_id", "_client_id", "trace_id").is_not_null())
    tup = ids.filter(named >= 2).unique()
    n_m, n_c = m_ids.height, c_ids.height
    n_nodes = n_m + n_c + t_ids.height
    num = (
        tup.join(m_ids.select("msg_id", pl.col("id").alias("m")), on="msg_id", how="left")
        .join(c_ids.select("_client_id", pl.col("id").alias("c")), on="_client_id", how="left")
        .join(t_ids.select("trace_id", pl.col("id").alias("t")), on="trace_id", how="left")
        .select("m", "c", "t")
    )
    edges = (
        pl.concat(
            [
                num.select(pl.col("m").alias("a"), pl.col("c").alias("b")),
                num.select(pl.col("m").alias("a"), pl.col("t").alias("b")),
                num.select(pl.col("c").alias("a"), pl.col("t").alias("b")),
            ]
        )
        .drop_nulls()
        .unique()
    )
    labels = _components(n_nodes, edges)

    # What each component holds, as min/max of integers per label: node ids of each kind
    # (numbered in text order) and the dense rank of the lowercased client UUIDs (case-blind).
    m_text, c_text, t_text = (f.get_column("text") for f in (m_ids, c_ids, t_ids))
    text = pl.col("text")
    uuid = c_ids.select(pl.when(text.str.contains(_UUID_RE)).then(text.str.to_lowercase()))
    uuid_rank = uuid.to_series().rank("dense").cast(pl.UInt32)
    uuid_text = uuid.to_series().drop_nulls().unique().sort()
    node = pl.col("id")
    rank_of_node = pl.concat(
        [pl.repeat(None, n_m, dtype=pl.UInt32, eager=True), uuid_rank],
    ).extend_constant(None, t_ids.height)
    per = (
        labels.with_columns(
            pl.when(node < n_m).then(node).alias("_m"),
            pl.when((node >= n_m) & (node < n_m + n_c)).then(node - n_m).alias("_c"),
            pl.when(node >= n_m + n_c).then(node - n_m - n_c).alias("_t"),
            rank_of_node.gather(labels.get_column("id")).alias("_u"),
        )
        .group_by("label")
        .agg(
            pl.col("_t").min().alias("carried"),
            (pl.col("_t").min() != pl.col("_t").max()).alias("two_carried"),
            pl.col("_u").min().alias("uuid"),
            (pl.col("_u").min() != pl.col("_u").max()).alias("two_uuids"),
            pl.col("_m").min().alias("server"),
            (pl.col("_m").min() != pl.col("_m").max()).alias("two_servers"),
            pl.col("_c").min().alias("client"),
        )
    )
    per = per.with_columns(
        pl.Series("carried", t_text.gather(per.get_column("carried"))),
        pl.Series("uuid", uuid_text.gather(per.get_column("uuid") - 1)),
        pl.Series("server", m_text.gather(per.get_column("server"))),
        pl.Series("client", c_text.gather(per.get_column("client"))),
    )
    per = per.with_columns(
        (
            pl.col("two_carried").fill_null(False)
            | (pl.col("carried").is_null() & pl.col("two_uuids").fill_null(False))
            # an id to derive for a group of two messages (a reused temp id)
            | (
                pl.col("carried").is_null()
                & pl.col("uuid").is_null()
                & pl.col("two_servers").fill_null(False)
            )
        ).alias("ambiguous"),
        pl.coalesce("carried", pl.col("uuid").str.replace_all("-", "")).alias("tid"),
    )
    # A derived id only where neither a carried trace id nor a UUID exists (sha256: stable).
    derive = per.filter(pl.col("tid").is_null() & ~pl.col("ambiguous"))
    if derive.height:
        seeds = derive.select(pl.coalesce("server", "client")).to_series().to_list()
        derived = pl.DataFrame(
            {"label": derive.get_column("label"), "derived": [derived_trace_id(x) for x in seeds]}
        )
        per = per.join(derived, on="label", how="left").with_columns(
            pl.coalesce("tid", "derived").alias("tid")
        )
    per = per.select(
        "label",
        "ambiguous",
        pl.when(pl.col("ambiguous") | (pl.col("tid") == "0" * 32))
        .then(None)
        .otherwise(pl.col("tid"))
        .cast(pl.Categorical())
        .alias("tid"),
    )
    node_tid = labels.join(per, on="label")
    by_msg = m_ids.join(node_tid, on="id")
    by_client = c_ids.join(node_tid, on="id")
    ambiguous = {f"m:{x}" for x in by_msg.filter("ambiguous").get_column("text")} | {
        f"c:{x}" for x in by_client.filter("ambiguous").get_column("text")
    }

    # Hash lookups on the ids' integer codes: no per-row key strings, no wide joins.
    def tid_of(column: str, found: pl.DataFrame) -> pl.Series:
        codes = found.get_column(column).to_physical()
        by_code = table.get_column(column).to_physical()
        return by_code.replace_strict(codes, found.get_column("tid"), default=None)

    tid_m, tid_c = tid_of("msg_id", by_msg), tid_of("_client_id", by_client)
    has_m = table.get_column("msg_id").is_not_null()
    out = table.with_columns(pl.col("trace_id").fill_null(tid_m.zip_with(has_m, tid_c)))
    return out, ambiguous


def _count_unlinked(table: pl.DataFrame, ambiguous: set[str], stats: InputStats) -> None:
    flag = (
        pl.col("_client_ambiguous")
        if "_client_ambiguous" in table.columns
        else pl.lit(False).alias("_client_ambiguous")
    )
    narrow = table.select(
        "trace_id", "stage", "action", "msg_id", "_client_id", "file", "line", flag
    )
    rows = narrow.filter(
        pl.col("trace_id").is_null()
        & (pl.col("stage") != META_STAGE)
        & ~pl.col("action").is_in(_NOT_MESSAGE_ACTIONS)
    ).with_columns(pl.col("msg_id", "_client_id").cast(pl.String))
    if not rows.height:
        return
    amb = pl.Series(sorted(ambiguous), dtype=pl.String)
    key = pl.coalesce(pl.lit("m:") + pl.col("msg_id"), pl.lit("c:") + pl.col("_client_id"))
    reason = (
        pl.when(key.is_in(amb.implode()))
        .then(pl.lit("ambiguous: its ids link to more than one message"))
        .when(pl.col("_client_ambiguous"))
        .then(pl.lit("ambiguous: its temp client id was used by more than one client"))
        .when(key.is_null())
        .then(pl.lit("no message id on the line"))
        .otherwise(pl.lit("no trace id"))
    )
    detail = rows.select(
        pl.col("file"),
        pl.col("line"),
        (reason + pl.lit(": ") + pl.col("stage") + pl.lit(".") + pl.col("action")).alias("reason"),
    )
    stats.unlinked_frame(detail)
