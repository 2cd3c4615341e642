"""A reading's time window (the CLI's ``--since``/``--until``): the events it left out on
purpose are no loss of the logs.

Left out by their stamps, they leave seq jumps where the logs lost nothing: every source
read from ``--since`` begins above seq 1, and a stage stamped at its start but written at its
end (``CTRL.send`` after its request) falls outside a window its inner lines are inside, a hole
in the middle (session 23: ``check --since ... --max log_gap=0`` failed on every clean log).
A jump they fill stays a gap of :attr:`Paths.gaps` (a hop among them is not read: its message
is undecided there, as in any gap) but counts only what they do not fill (``missing``, and
``outside`` the rest): a gap with nothing missing is no ``log_gap`` finding.
"""

from __future__ import annotations

from dataclasses import replace

import polars as pl

from tracekit.analyzers._paths import Paths, engine

__all__ = ["left_out_of"]


def left_out_of(paths: Paths, left_out: pl.LazyFrame) -> Paths:
    """``paths`` with its gaps' counts less the events of ``left_out`` (``source``, ``seq``)
    numbered inside them. Distinct seqs: a source restarted under its name numbers its runs
    alike, so a left-out event of another run may be taken for one of the gap's (a loss
    under-counted, never a false one)."""
    numbered = paths.gaps.filter(pl.col("missing").is_not_null())
    if numbered.is_empty():
        return paths
    inside = (
        left_out.select(pl.col("source").cast(pl.String), pl.col("seq").cast(pl.Int64))
        .filter(
            pl.col("source").is_in(numbered.get_column("source").unique().implode())
            & pl.col("seq").is_not_null()
        )
        .unique()
        .join(
            numbered.lazy().select("source", "pos_before", "seq_before", "seq_after"), on="source"
        )
        .filter(pl.col("seq").is_between("seq_before", "seq_after", closed="none"))
        .group_by("source", "pos_before")
        .agg(
            pl.len().cast(pl.Int64).alias("filled"),
            # a lost beginning counts from seq 1 (as tracekit does); a log left out from 0 on
            # counts from 0: one more event below its first
            (pl.col("seq") == 0).any().cast(pl.Int64).alias("zero"),
        )
        .collect(engine=engine())
    )
    if inside.is_empty():
        return paths
    counted = pl.col("missing") + pl.col("zero").fill_null(0)
    filled = pl.min_horizontal(pl.col("filled").fill_null(0), counted)
    gaps = (
        paths.gaps.join(inside, on=["source", "pos_before"], how="left", maintain_order="left")
        .with_columns(missing=counted - filled, outside=pl.col("outside") + filled.fill_null(0))
        .drop("filled", "zero")
    )
    return replace(paths, gaps=gaps)
