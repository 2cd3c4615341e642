"""Text logs (legacy bracket text, user regex formats) -> event rows, vectorised.

Every step is a polars expression over the file's lines; no Python runs per line. The rows
keep a private ``_client_id`` column so :func:`tracekit.collectors._link.link` can tie lines to
messages across all files (a client log names the client id, the server log the server id).
"""

from __future__ import annotations

import re
from typing import Final

import polars as pl

from tracekit.collectors._formats import TextFormat, legacy_format
from tracekit.collectors._normalize import RAW_COLUMNS, normalize
from tracekit.collectors._stats import InputStats

__all__ = ["MAX_TEXT_LINE", "read_legacy", "read_text"]

#: Text lines longer than this are counted as malformed rather than run through the regexes.
MAX_TEXT_LINE: Final = 1 << 20
_GROUP_KEYS: Final = frozenset(RAW_COLUMNS) | {"client_id"}


def read_legacy(
    data: bytes, *, file: str, source: str, stats: InputStats, timezone: str | None = None
) -> pl.DataFrame:
    return read_text(
        data, legacy_format(), file=file, source=source, stats=stats, timezone=timezone
    )


def _actor_for(source: str, fmt: TextFormat) -> str | None:
    if fmt.actor_from_source:
        m = re.search(fmt.actor_from_source, source)
        if m:
            return m.group("actor") if "actor" in m.groupdict() else m.group(0)
    if fmt.server_from_source and re.search(fmt.server_from_source, source):
        return "server"
    return None


def _decode(data: bytes, file: str, stats: InputStats) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        stats.warn(f"{file}: invalid UTF-8 bytes were replaced by U+FFFD; those lines are kept")
        return text


def read_text(
    data: bytes,
    fmt: TextFormat,
    *,
    file: str,
    source: str,
    stats: InputStats,
    timezone: str | None = None,
) -> pl.DataFrame:
    text = _decode(data, file, stats)
    if text.endswith("\n"):
        text = text[:-1]
    lines = pl.Series("raw", [text]).str.split("\n").explode()
    stats.lines += lines.len()
    df = pl.DataFrame([lines]).with_row_index("line", offset=1)
    df = df.with_columns(pl.col("raw").str.strip_suffix("\r"), pl.col("line").cast(pl.Int64))

    too_long = df.filter(pl.col("raw").str.len_bytes() > MAX_TEXT_LINE)
    if too_long.height:
        stats.malformed_frame(
            file,
            too_long.select(
                "line",
                (
                    pl.lit("line too long (")
                    + (pl.col("raw").str.len_bytes() / 1e6).round(1).cast(pl.String)
                    + pl.lit(" MB), not parsed")
                ).alias("reason"),
            ),
        )
        df = df.filter(pl.col("raw").str.len_bytes() <= MAX_TEXT_LINE)

    groups = [g for g in re.findall(r"\(\?P<(\w+)>", fmt.line_regex)]
    df = df.with_columns(pl.col("raw").str.extract_groups(fmt.line_regex).alias("g")).unnest("g")
    key = "tag" if "tag" in groups else "stage"
    matched = pl.col(key).is_not_null()
    blank = pl.col("raw").str.strip_chars() == ""

    # Timestamps: a group, or the first match of timestamp_regex in the prefix (or line).
    if "timestamp" in groups:
        ts = pl.col("timestamp")
    elif fmt.timestamp_regex:
        where = pl.col("prefix") if "prefix" in groups else pl.col("raw")
        ts = (
            pl.when(matched)
            .then(where)
            .otherwise(pl.col("raw"))
            .str.extract(fmt.timestamp_regex, 1)
        )
    else:
        ts = pl.lit(None, dtype=pl.String)
    df = df.with_columns(ts.alias("_ts"))
    inherited = 0
    if fmt.untimed == "previous":
        df = df.with_columns(
            pl.col("_ts").is_null().alias("_untimed"),
            pl.col("_ts").forward_fill().alias("_ts"),
        )
        inherited = df.filter(matched & pl.col("_untimed") & pl.col("_ts").is_not_null()).height

    n_blank = df.filter(blank).height
    ignored = df.filter(~matched & ~blank).height
    df = df.filter(matched)

    # Stage and action: rules (first match wins), then aliases, then the groups as written.
    msg = pl.col("msg") if "msg" in groups else pl.col("raw")
    ev: pl.Expr | None = None
    chain: pl.expr.whenthen.Then | pl.expr.whenthen.ChainedThen | None = None
    for rule in fmt.rules:
        cond = pl.lit(True)
        if rule.tag is not None:
            cond = cond & (pl.col(key) == rule.tag)
        if rule.match:
            cond = cond & msg.str.contains(rule.match)
        chain = (pl.when(cond) if chain is None else chain.when(cond)).then(pl.lit(rule.event))
    alias = pl.col(key).replace_strict(fmt.aliases, default=None, return_dtype=pl.String)
    ev = alias if chain is None else chain.otherwise(alias)
    if "action" in groups:
        direct = pl.col(key) + pl.lit(".") + pl.col("action")
        ev = ev.fill_null(direct)
    elif not fmt.rules and not fmt.aliases:
        ev = pl.col(key) + pl.lit(".")
    df = df.with_columns(ev.alias("_ev"))
    unmapped = df.filter(pl.col("_ev").is_null()).height
    stats.ignored += ignored + unmapped
    df = df.filter(pl.col("_ev").is_not_null())
    if fmt.untimed == "previous":
        untimed = df.filter(pl.col("_untimed") & pl.col("_ts").is_not_null()).height
        if untimed:
            stats.warn(
                f"{file}: {untimed} lines have no timestamp; they took the previous line's time"
            )
    del inherited, n_blank

    parts = pl.col("_ev").str.split_exact(".", 1)
    cols: dict[str, pl.Expr] = {
        "timestamp": pl.col("_ts"),
        "stage": parts.struct.field("field_0"),
        "action": parts.struct.field("field_1").replace("", None),
        "event": (
            pl.lit("[") + pl.col(key) + pl.lit("] ") + msg
            if key == "tag"
            else pl.col("msg" if "msg" in groups else "raw")
        ),
    }
    for name in [*RAW_COLUMNS, "client_id"]:
        if name in cols or name in ("dropped",):
            continue
        if name in groups:
            cols[name] = pl.col(name).replace("", None)
        elif name in fmt.fields:
            cols[name] = msg.str.extract(fmt.fields[name], 1)
        else:
            cols[name] = pl.lit(None, dtype=pl.String)
    actor = _actor_for(source, fmt)
    if actor is not None:
        cols["actor"] = cols["actor"].fill_null(pl.lit(actor))
    raw = df.select(pl.col("line"), *(e.alias(k) for k, e in cols.items()))
    out = normalize(
        raw.drop("client_id"),
        file=file,
        source=source,
        stats=stats,
        timezone=timezone or fmt.timezone,
        timestamp_format=fmt.timestamp_format,
        soft_required=("event", "actor", "seq")
        if "source" not in groups
        else ("event", "actor", "seq", "source"),
    )
    # Carry the client id for linking (normalize keeps row order and only drops malformed rows).
    ids = raw.select("line", pl.col("client_id").alias("_client_id"))
    return out.join(ids, on="line", how="left", maintain_order="left")
