"""Tie events without a trace id to their message through the ids they mention.

A line naming two ids joins them (``clientMsgId=<uuid> id=msg123``); an event carrying both a
trace id and a ``msg_id`` joins those. Every event reachable from a message's ids gets that
message's trace id, across all files. Each group of joined ids gets, in this order:

1. the trace id an event of the group carries (tracekit's own JSON lines, OTLP);
2. else the trace id of the group's client message id UUID (``trace_id_from_uuid``);
3. else a stable derived id: the first 32 hex digits of
   ``sha256("tracekit-derived:" + smallest server id)`` (or smallest client id when no server id
   is known), so the same logs always give the same id.

A group with two different candidate trace ids (two UUIDs or two carried trace ids) is
ambiguous: its events stay unlinked, nothing is guessed. Message events (every stage but
``TRACEKIT``; every action but history fetches) left without a trace id are counted as unlinked.
"""

from __future__ import annotations

import hashlib
from typing import Final

import polars as pl

from tracekit.collectors._stats import InputStats
from tracekit.schema import META_STAGE

__all__ = ["link"]

_NOT_MESSAGE_ACTIONS: Final = ("fetch_start", "fetch_end")
_UUID_RE: Final = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"


def _derived(ident: str) -> str:
    return hashlib.sha256(b"tracekit-derived:" + ident.encode()).hexdigest()[:32]


def link(table: pl.DataFrame, stats: InputStats) -> pl.DataFrame:
    """Fill ``trace_id`` where it can be derived; drop the private ``_client_id`` column."""
    if "_client_id" not in table.columns:
        table = table.with_columns(pl.lit(None, dtype=pl.String).alias("_client_id"))
    table = table.with_columns(
        pl.when(pl.col("_client_id").str.contains(_UUID_RE))
        .then(pl.col("_client_id").str.to_lowercase())
        .otherwise(pl.col("_client_id"))
        .alias("_client_id")
    )
    need = table.filter(
        pl.col("trace_id").is_null()
        & (pl.col("msg_id").is_not_null() | pl.col("_client_id").is_not_null())
    )
    ambiguous_nodes: set[str] = set()
    if need.height:
        table, ambiguous_nodes = _fill(table, need)
    _count_unlinked(table, ambiguous_nodes, stats)
    return table.drop("_client_id")


def _fill(table: pl.DataFrame, need: pl.DataFrame) -> tuple[pl.DataFrame, set[str]]:
    m = pl.lit("m:") + pl.col("msg_id")
    c = pl.lit("c:") + pl.col("_client_id")
    t = pl.lit("t:") + pl.col("trace_id")
    wanted_m = need.get_column("msg_id").drop_nulls().unique()
    wanted_c = need.get_column("_client_id").drop_nulls().unique()
    # Only rows that can touch the ids in question feed the graph (keeps big JSON inputs cheap).
    relevant = table.filter(
        pl.col("msg_id").is_in(wanted_m.implode()) | pl.col("_client_id").is_in(wanted_c.implode())
    )
    edges = (
        pl.concat(
            [
                relevant.select(m.alias("a"), c.alias("b")),
                relevant.select(m.alias("a"), t.alias("b")),
                relevant.select(c.alias("a"), t.alias("b")),
            ]
        )
        .drop_nulls()
        .unique()
    )
    nodes = (
        pl.concat(
            [
                relevant.select(m.alias("n")),
                relevant.select(c.alias("n")),
                relevant.select(t.alias("n")),
            ]
        )
        .drop_nulls()
        .unique()
        .get_column("n")
        .to_list()
    )

    parent: dict[str, str] = {n: n for n in nodes}

    def find(x: str) -> str:
        root = x
        while parent[root] != root:
            root = parent[root]
        while parent[x] != root:
            parent[x], x = root, parent[x]
        return root

    for a, b in edges.iter_rows():
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    groups: dict[str, list[str]] = {}
    for n in nodes:
        groups.setdefault(find(n), []).append(n)

    from tracekit.schema import trace_id_from_uuid

    uuid_check = pl.Series([n[2:] for n in nodes if n.startswith("c:")], dtype=pl.String)
    uuids = set(uuid_check.filter(uuid_check.str.contains(_UUID_RE)).to_list())
    node_tid: dict[str, str] = {}
    ambiguous: set[str] = set()
    for members in groups.values():
        carried = {n[2:] for n in members if n.startswith("t:")}
        client_uuids = {n[2:] for n in members if n.startswith("c:") and n[2:] in uuids}
        if len(carried) > 1 or (not carried and len(client_uuids) > 1):
            ambiguous.update(members)
            continue
        if carried:
            tid = next(iter(carried))
        elif client_uuids:
            tid = trace_id_from_uuid(next(iter(client_uuids)))
        else:
            servers = sorted(n[2:] for n in members if n.startswith("m:"))
            clients = sorted(n[2:] for n in members if n.startswith("c:"))
            tid = _derived(servers[0] if servers else clients[0])
        for n in members:
            node_tid[n] = tid
    mapping = pl.DataFrame(
        {"_node": list(node_tid), "_tid": list(node_tid.values())},
        schema={"_node": pl.String, "_tid": pl.String},
    )
    key = pl.coalesce(m, c).alias("_node")
    out = (
        table.with_columns(key)
        .join(mapping, on="_node", how="left", maintain_order="left")
        .with_columns(pl.col("trace_id").fill_null(pl.col("_tid")))
        .drop("_node", "_tid")
    )
    return out, ambiguous


def _count_unlinked(table: pl.DataFrame, ambiguous: set[str], stats: InputStats) -> None:
    rows = table.filter(
        pl.col("trace_id").is_null()
        & (pl.col("stage") != META_STAGE)
        & ~pl.col("action").is_in(_NOT_MESSAGE_ACTIONS)
    )
    if not rows.height:
        return
    amb = pl.Series(sorted(ambiguous), dtype=pl.String)
    key = pl.coalesce(pl.lit("m:") + pl.col("msg_id"), pl.lit("c:") + pl.col("_client_id"))
    reason = (
        pl.when(key.is_in(amb.implode()))
        .then(pl.lit("ambiguous: its ids link to more than one message"))
        .when(key.is_null())
        .then(pl.lit("no message id on the line"))
        .otherwise(pl.lit("no trace id"))
    )
    detail = rows.select(
        pl.col("file"),
        pl.col("line"),
        (reason + pl.lit(": ") + pl.col("stage") + pl.lit(".") + pl.col("action")).alias("reason"),
    )
    stats.unlinked += detail.height
    for file, line, why in detail.head(10 - len(stats.unlinked_examples)).iter_rows():
        stats.unlinked_examples.append(f"{file}:{line}: {why}")
