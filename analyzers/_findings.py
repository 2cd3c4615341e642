"""The findings table: one schema for every kind, and helpers to build rows in polars."""

from __future__ import annotations

from typing import Final

import polars as pl

from tracekit.table import TIMESTAMP_DTYPE

__all__ = ["EVIDENCE", "FINDING_SCHEMA", "KINDS", "empty_findings", "evidence", "findings"]

#: Report order of the kinds (also the summary's keys).
KINDS: Final = (
    "drop",
    "in_flight",
    "duplicate",
    "unexpected",
    "reorder",
    "race",
    "latency_outlier",
    "slo_breach",
    "clock_skew",
    "log_gap",
)
EVIDENCE: Final = pl.List(pl.Struct({"file": pl.String, "line": pl.Int64}))
_COLUMNS: dict[str, pl.DataType] = {
    "kind": pl.String(),
    "trace_id": pl.String(),
    "recipient": pl.String(),
    "stage": pl.String(),
    "last_seen": pl.String(),
    "conv_id": pl.String(),
    "source": pl.String(),
    "detail": pl.String(),
    "evidence": EVIDENCE,
    "at": TIMESTAMP_DTYPE,  # (corrected) time of the event that shows the finding
}
FINDING_SCHEMA: Final = pl.Schema(_COLUMNS)


def evidence(*where: tuple[str, str]) -> pl.Expr:
    """``[{file, line}, ...]`` from (file column, line column) pairs, skipping unknown ones."""
    items = [pl.struct(pl.col(f).alias("file"), pl.col(n).alias("line")) for f, n in where]
    return (
        pl.concat_list(items)
        .list.eval(
            pl.element().filter(
                pl.element().struct.field("file").is_not_null()
                | pl.element().struct.field("line").is_not_null()
            )
        )
        .cast(EVIDENCE)
    )


def findings(lf: pl.LazyFrame, kind: str, **exprs: pl.Expr | str | None) -> pl.LazyFrame:
    """Select ``lf`` into the findings schema; missing columns are null."""
    out: list[pl.Expr] = [pl.lit(kind).alias("kind")]
    for name, dtype in FINDING_SCHEMA.items():
        if name == "kind":
            continue
        value = exprs.get(name)
        if value is None:
            expr = pl.lit(None, dtype=dtype)
        elif isinstance(value, str):
            expr = pl.col(value)
        else:
            expr = value
        if name == "at":
            expr = expr.cast(pl.Int64).cast(TIMESTAMP_DTYPE)
        out.append(expr.cast(dtype).alias(name))
    return lf.select(out)


def empty_findings() -> pl.LazyFrame:
    return pl.LazyFrame(schema=FINDING_SCHEMA)


def ms_apart(expr: pl.Expr, other: pl.Expr) -> pl.Expr:
    """:func:`ms` of ``expr``, to the microsecond where it and ``other`` read alike at 0.1 ms
    (review 24b: "took 500.0 ms, above the 500.0 ms SLO" for 500.001 ms)."""
    return pl.when(ms(expr) == ms(other)).then(ms(expr, places=3)).otherwise(ms(expr))


def ms(expr: pl.Expr, places: int = 1) -> pl.Expr:
    """ns -> ms with ``places`` decimals (0.1 ms; halves away from zero), as text for details.
    Rounded in integers: a float's last bit depends on polars' kernel (a one-row frame
    divides by 1e6, a longer one multiplies by its reciprocal, and the streaming engine cuts
    frames into pieces), and a latency on a 0.05 ms boundary then read 1.3 or 1.4 by the
    frame's size and engine (review 14c)."""
    scale = 10**places
    step = 1_000_000 // scale
    units = ((expr.abs() + step // 2) // step).cast(pl.Int64)
    sign = pl.when((expr < 0) & (units > 0)).then(pl.lit("-")).otherwise(pl.lit(""))
    fraction = (units % scale).cast(pl.String).str.zfill(places)
    return pl.format("{}{}.{}", sign, units // scale, fraction)
