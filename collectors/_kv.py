"""logfmt (``key=value key="quoted value"``) and structlog's KeyValueRenderer output.

KeyValueRenderer writes Python reprs: ``event='CTRL send' seq=17 recipients=['u1', 'u2']
peer=None``; logfmt writes double quotes and bare words. One regex per schema key, vectorised.
"""

from __future__ import annotations

from typing import Final

import polars as pl

from tracekit.collectors._normalize import RAW_COLUMNS, empty_table, normalize
from tracekit.collectors._stats import InputStats

__all__ = ["read_kv"]

#: Blank means ASCII whitespace only, as bytes.strip() sees it everywhere else.
_ASCII_SPACE: Final = " \t\n\r\x0b\x0c"

_VALUE: Final = r"""("(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*'|\[[^\]]*\]|\S*)"""
_ALIASES: Final = {"timestamp": ("timestamp", "ts", "time"), "level": ("level", "lvl")}


def _unquote(v: pl.Expr) -> pl.Expr:
    inner = v.str.slice(1, v.str.len_chars() - 2).str.replace_all(r"\\(.)", "$1")
    quoted = (v.str.starts_with('"') & v.str.ends_with('"')) | (
        v.str.starts_with("'") & v.str.ends_with("'")
    )
    return (
        pl.when(v.is_in(["None", "null", ""]))
        .then(None)
        .when(quoted & (v.str.len_chars() >= 2))
        .then(inner)
        .when(v.str.starts_with("["))
        .then(v.str.replace_all("'", '"'))  # a Python list repr of strings -> JSON
        .otherwise(v)
    )


def read_kv(
    data: bytes, *, file: str, source: str, stats: InputStats, timezone: str | None = None
) -> pl.DataFrame:
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        stats.warn(f"{file}: invalid UTF-8 bytes were replaced by U+FFFD; those lines are kept")
    if text.endswith("\n"):
        text = text[:-1]
    lines = pl.Series("raw", [text]).str.split("\n").explode()
    stats.lines += lines.len()
    df = pl.DataFrame([lines]).with_row_index("line", offset=1)
    df = df.with_columns(pl.col("raw").str.strip_suffix("\r"), pl.col("line").cast(pl.Int64))
    df = df.filter(pl.col("raw").str.strip_chars(_ASCII_SPACE) != "")
    is_kv = pl.col("raw").str.contains(r"^\s*[A-Za-z_][\w.@-]*=")
    bad = df.filter(~is_kv)
    if bad.height:
        stats.malformed_frame(
            file, bad.select("line", pl.lit("not key=value text").alias("reason"))
        )
        df = df.filter(is_kv)
    if df.height == 0:
        return empty_table()
    cols = []
    for key in RAW_COLUMNS:
        names = _ALIASES.get(key, (key,))
        found = [pl.col("raw").str.extract(rf"(?:^|\s){n}={_VALUE}", 1) for n in names]
        cols.append(_unquote(pl.coalesce(found) if len(found) > 1 else found[0]).alias(key))
    raw = df.select("line", *cols)
    return normalize(raw, file=file, source=source, stats=stats, timezone=timezone)
