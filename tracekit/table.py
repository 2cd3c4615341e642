"""The event table: schema v1 as a polars frame, shared by collectors and analyzers.

Collectors produce a ``LazyFrame`` with exactly :data:`EVENT_SCHEMA`; analyzers only ever see
that. Imports polars, so ``import tracekit`` never imports this module.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from numbers import Integral
from typing import Any, Final

import polars as pl

from tracekit.schema import EVENT_KEYS

__all__ = [
    "CATEGORICAL_COLUMNS",
    "EVENT_SCHEMA",
    "TEXT_SCHEMA",
    "TIMESTAMP_DTYPE",
    "canonical_trace_ids",
    "compact",
    "empty_events",
    "events_frame",
    "is_canonical_trace_id",
]

TIMESTAMP_DTYPE: Final = pl.Datetime("ns", "UTC")

#: Column order and types of the event table with every name as text: schema v1's keys, then
#: ``duration_ms``, then ``file``/``line``, the evidence of each event (where it was read).
#: ``recipients`` is set on ``WS-BROADCAST.start`` events. ``duration_ms`` is how long the
#: stage took (tracekit writes a stage's line at its end, stamped with its start; an OTLP
#: span has its end), null for a line written when it happened: ``timestamp + duration_ms``
#: is when the line was written, which bounds the stamps of the lines a log lost before it.
TEXT_SCHEMA: Final = pl.Schema(
    {  # type: ignore[arg-type]
        key: {
            "timestamp": TIMESTAMP_DTYPE,
            "seq": pl.Int64,
            "recipients": pl.List(pl.String),
            "duration_ms": pl.Float64,
            "line": pl.Int64,
        }.get(key, pl.String)
        for key in (*EVENT_KEYS, "duration_ms", "file", "line")
    }
)

#: Text columns that stay text: ``span_id`` is unique per event, and ``event`` is the whole
#: message of a legacy line (unique per line there). As Categorical they would save no memory
#: and cost a cast through polars' process-wide category map (0.3 s per 1M legacy lines).
_FREE_TEXT: Final = ("event", "span_id")

#: The text columns that hold names (a few thousand distinct values in millions of events).
#: Kept as Categorical, 4 bytes a row instead of a 16-byte string view plus the text: at 5M
#: events the table is ~0.4 GB instead of ~1.4 GB, and group-bys on them hash integers.
CATEGORICAL_COLUMNS: Final = tuple(
    key for key, dtype in TEXT_SCHEMA.items() if dtype == pl.String and key not in _FREE_TEXT
)

#: The event table: :data:`TEXT_SCHEMA` with :data:`CATEGORICAL_COLUMNS` as Categorical.
#: Compare them with strings as usual (``pl.col("stage") == "CTRL"``); for string functions,
#: ``.cast(pl.String)`` first.
EVENT_SCHEMA: Final = pl.Schema(
    {
        name: pl.Categorical() if name in CATEGORICAL_COLUMNS else dtype
        for name, dtype in TEXT_SCHEMA.items()
    }
)


def is_canonical_trace_id(ids: pl.Expr) -> pl.Expr:
    """Whether each of ``ids`` (text) is a canonical trace id: 32 lowercase hex digits, not
    all zero (:func:`tracekit.schema.is_trace_id`, as an expression)."""
    return ids.str.contains(r"^[0-9a-f]{32}$") & (ids != "0" * 32)


def canonical_trace_ids(ids: pl.Expr) -> pl.Expr:
    """The canonical form of each of ``ids`` (text) that has one, else null: 32 hex digits
    in any case, or 36 with dashes (a UUID), spaces around them ignored. What the collectors
    read a trace id as, so the same message logged as a UUID by one process and as hex by
    another is one trace."""
    tid = ids.str.strip_chars().str.to_lowercase()
    tid = pl.when(tid.str.len_bytes() == 36).then(tid.str.replace_all("-", "")).otherwise(tid)
    return pl.when(is_canonical_trace_id(tid)).then(tid)


def compact(frame: pl.LazyFrame, columns: Collection[str] | None = None) -> pl.LazyFrame:
    """A frame in :data:`TEXT_SCHEMA` (or already compact) -> :data:`EVENT_SCHEMA`; with
    ``columns``, only those (in the schema's order)."""
    return frame.select(
        pl.col(name).cast(dtype)
        for name, dtype in EVENT_SCHEMA.items()
        if columns is None or name in columns
    )


def empty_events() -> pl.LazyFrame:
    """An event table with no rows."""
    return pl.LazyFrame(schema=EVENT_SCHEMA)


def events_frame(rows: Iterable[Mapping[str, Any]]) -> pl.DataFrame:
    """Build an event table from dicts (tests, in-memory sources).

    Missing keys become nulls, unknown keys are ignored, ``timestamp`` may be an ISO-8601
    string (``Z`` or offset) or a ``datetime`` (naive: UTC), one or the other in each event;
    everything is normalised to UTC nanoseconds. A value the table cannot hold (no
    timestamp, one that reads as no time, a ``seq`` that is no integer, ``recipients`` that
    are no list of names) raises :class:`~tracekit.errors.SchemaError` naming the event and
    the key (review 25d: polars' own errors, or a names list read letter by letter).
    """
    columns: dict[str, list[Any]] = {name: [] for name in EVENT_SCHEMA}
    for i, row in enumerate(rows):
        _check_row(i, row)
        for name, values in columns.items():
            values.append(row.get(name))
    raw_ts = columns.pop("timestamp")
    if len({type(t) is str for t in raw_ts}) > 1:  # text and datetimes: all as text
        raw_ts = [_iso(t) for t in raw_ts]
    frame = pl.DataFrame(
        columns, schema={k: v for k, v in EVENT_SCHEMA.items() if k != "timestamp"}
    )
    ts = pl.Series("timestamp", raw_ts)
    if ts.dtype == pl.String:
        read = ts.str.to_datetime(time_unit="ns", time_zone="UTC", strict=False)
        if (bad := (read.is_null() & ts.is_not_null()).arg_true()).len():
            from tracekit.errors import SchemaError

            i = int(bad[0])
            raise SchemaError(
                f"event {i}: timestamp {raw_ts[i]!r} reads as no time", key="timestamp"
            )
        ts = read
    elif isinstance(ts.dtype, pl.Datetime):
        naive = getattr(ts.dtype, "time_zone", None) is None
        ts = ts.dt.cast_time_unit("ns")
        ts = ts.dt.replace_time_zone("UTC") if naive else ts.dt.convert_time_zone("UTC")
    elif ts.dtype == pl.Null:
        ts = pl.Series("timestamp", raw_ts, dtype=TIMESTAMP_DTYPE)
    else:  # epoch numbers are taken as nanoseconds here; collectors handle other units
        ts = ts.cast(TIMESTAMP_DTYPE)
    return frame.with_columns(ts).select(list(EVENT_SCHEMA))


def _check_row(i: int, row: Mapping[str, Any]) -> None:
    """:func:`events_frame`'s checks of one event (``i``: its place among them)."""
    from tracekit.errors import SchemaError

    if row.get("timestamp") is None:
        raise SchemaError(
            f"event {i} has no timestamp: a hop is placed by its time (structlog's "
            "TimeStamper(fmt='iso') adds one; tracekit.testing.capture() writes them)",
            key="timestamp",
        )
    seq = row.get("seq")
    if seq is not None and (isinstance(seq, bool) or not isinstance(seq, Integral)):
        raise SchemaError(f"event {i}: seq {seq!r} is not an integer", key="seq")
    names = row.get("recipients")
    if names is not None and (
        isinstance(names, str | bytes)
        or not isinstance(names, list | tuple)
        or not all(isinstance(n, str) for n in names)
    ):
        raise SchemaError(
            f"event {i}: recipients {names!r} are not a list of names", key="recipients"
        )


def _iso(stamp: Any) -> Any:
    """A datetime as ISO-8601 text (naive: UTC), so an event's datetime and another's text
    read alike; anything else as it is."""
    from datetime import UTC, datetime

    if isinstance(stamp, datetime):
        aware = stamp if stamp.tzinfo is not None else stamp.replace(tzinfo=UTC)
        return aware.isoformat()
    return stamp
