"""Raw string columns -> the event table (EVENT_SCHEMA), with an exact account of what was lost.

Every reader produces a frame of String columns named after schema v1 keys plus ``line``;
this module is the single place where they are typed (names made Categorical), checked and
counted.
"""

from __future__ import annotations

import re
from collections.abc import Collection
from typing import Final

import polars as pl

from tracekit.collectors._stats import InputStats
from tracekit.collectors._time import ParsedTimes, fast_iso_utc, parse_timestamps
from tracekit.schema import EVENT_KEYS, META_STAGE
from tracekit.table import (
    CATEGORICAL_COLUMNS,
    EVENT_SCHEMA,
    TIMESTAMP_DTYPE,
    canonical_trace_ids,
    is_canonical_trace_id,
)

__all__ = ["RAW_COLUMNS", "RAW_SCHEMA", "empty_table", "normalize", "prepared"]

#: Keys read as text whatever their JSON type (numbers stringify, lists serialise): one schema
#: for every line, so a wrongly typed value never costs the row, only that value.
RAW_COLUMNS: Final = (*EVENT_KEYS, "duration_ms", "dropped")
RAW_SCHEMA: Final = pl.Schema({c: pl.String for c in RAW_COLUMNS})
#: Required by schema v1 but not needed to place an event: kept, counted in ``missing``.
_SOFT_REQUIRED: Final = ("event", "actor", "source", "seq")


def empty_table() -> pl.DataFrame:
    return pl.DataFrame(schema=EVENT_SCHEMA)


def _clip(expr: pl.Expr, n: int = 40) -> pl.Expr:
    return (
        pl.when(expr.str.len_chars() > n).then(expr.str.slice(0, n) + pl.lit("...")).otherwise(expr)
    )


def prepared(
    frame: pl.LazyFrame, timestamp_format: str | None = None, plain: Collection[str] = ()
) -> pl.LazyFrame:
    """The per-row work of :func:`normalize` as lazy expressions, so a reader can fuse it into
    its scan (polars then parses and converts chunk by chunk, on all cores). ``plain``:
    names known to hold no value opening with a bracket or a brace and no empty one (the
    compiled scanner tells, for the names it read coded: polars' ``cat`` text functions
    read every category of the process, 1.3 s of a 5M-event read)."""
    schema = frame.collect_schema()
    names = schema.names()
    missing = [c for c in RAW_COLUMNS if c not in names]
    if missing:
        frame = frame.with_columns(pl.lit(None, dtype=pl.String).alias(c) for c in missing)
    fast = (
        pl.lit(None, dtype=TIMESTAMP_DTYPE)
        if timestamp_format is not None
        else pl.col("_ts_fast")  # parsed by the reader (the compiled JSON lines scanner)
        if "_ts_fast" in names
        else fast_iso_utc(pl.col("timestamp"))
    )

    # A name that opens with a bracket or a brace (a JSON list or object read as its text, or
    # "[CTRL]"): looked at in :func:`_names`, on those rows only (usually none). A name the
    # compiled scanner read coded (Categorical) is looked at as text only where its distinct
    # values hold such a value (not in ``plain``).
    def text(c: str) -> pl.Expr:
        return pl.col(c).cast(pl.String) if schema.get(c) == pl.Categorical() else pl.col(c)

    looked_at = [c for c in _NAME_COLUMNS if c not in plain]
    bracketed = (
        pl.any_horizontal(
            text(c).str.starts_with("[") | text(c).str.starts_with("{") for c in looked_at
        ).fill_null(False)
        if looked_at
        else pl.lit(False)
    )
    # Empty strings count as absent for the keys an event cannot do without (checked here,
    # not rewritten: rewriting three string columns costs more than the whole check).
    absent = [
        (
            pl.col(c).is_null()
            if c in plain
            else pl.col(c).is_null() | (text(c).str.len_bytes() == 0)
        ).alias(f"_{c}_absent")
        for c in ("stage", "action")
    ]
    # Every check on the text above, then the names made Categorical in the same pass, so in
    # the reader's query the cast runs chunk by chunk beside the parse, not as a pass after it.
    categorical = [c for c in CATEGORICAL_COLUMNS if c in RAW_COLUMNS]
    return frame.with_columns(
        fast.alias("_ts_fast"),
        pl.col("seq").cast(pl.Int64, strict=False).alias("_seq_i"),
        pl.col("duration_ms").cast(pl.Float64, strict=False).alias("_dur_f"),
        bracketed.alias("_bracketed"),
        *absent,
        pl.col(categorical).cast(pl.Categorical()),
    )


#: Names of an event's places, besides its stage and action: a list or an object there is no
#: name (its JSON text would be one, matching no other line's).
_PLACE_NAMES: Final = ("actor", "peer", "source", "conv_id", "msg_id")
_NAME_COLUMNS: Final = ("stage", "action", *_PLACE_NAMES)


#: A name in brackets: DESIGN.md's notation for stages (``[CTRL]``), or an app's (``[bot]``).
_BRACKETED_NAME: Final = re.compile(r"\[[A-Za-z0-9_.:\-]+\]")


def _no_name(text: str) -> bool:
    """Whether ``text``, opening with a bracket or a brace, is no name: a JSON list or object
    as a reader renders one (``["u2"]``, ``{"id": 2}``, ``[]``, ``[1, 2]``; review 19d: those
    without a quote passed as names), but not a word in brackets (``[CTRL]``, ``[42]``) and
    not text that only opens with one (``[red]admin``)."""
    import json

    if _BRACKETED_NAME.fullmatch(text):
        return False
    try:
        return isinstance(json.loads(text), list | dict)
    except ValueError:
        return False


def _names(raw: pl.DataFrame, file: str, stats: InputStats) -> tuple[pl.DataFrame, pl.Expr]:
    """Names that are no names, looked at on the rows whose name opens with a bracket or a
    brace (usually none: nothing to do). A JSON list or object read as its text is a name no
    other line has (review 19a: a false drop, unsaid): as a stage or action it makes the line
    malformed (the returned mask), as an actor, peer, source, conversation or message id it
    is left empty, with a warning. ``[CTRL]``, the stages' notation in DESIGN.md, is ``CTRL``.
    Numbers and literals stay names: every reader renders them alike, and a logfmt line has
    no types to tell ``action=404`` from ``"action": 404``."""
    if not raw.get_column("_bracketed").any():
        return raw, pl.lit(False)
    odd = raw.filter(pl.col("_bracketed"))
    fixes: dict[str, pl.Expr] = {}
    unusable: list[pl.Expr] = []
    for c in _NAME_COLUMNS:
        values = odd.get_column(c).drop_nulls().cast(pl.String).unique().to_list()
        bad = [v for v in values if v[:1] in "[{" and _no_name(v)]
        stage_like = c in ("stage", "action")
        tags = [v for v in values if stage_like and _BRACKETED_NAME.fullmatch(v)]
        if not (bad or tags):
            continue
        text = pl.col(c).cast(pl.String)
        if tags:
            text = text.replace(tags, [t[1:-1].strip() for t in tags])
        if stage_like:
            unusable.append(pl.col(c).cast(pl.String).is_in(bad))
        elif bad:
            n = int(odd.get_column(c).cast(pl.String).is_in(bad).sum())
            stats.warn_count(
                file, n, f"events have a list or an object as their {c}; it was left empty"
            )
            text = pl.when(text.is_in(bad)).then(None).otherwise(text)
        fixes[c] = text.cast(pl.Categorical())
    if not fixes:
        return raw, pl.lit(False)
    mask = raw.select(pl.any_horizontal(unusable).fill_null(False)) if unusable else None
    raw = raw.with_columns(**fixes)
    if mask is None:
        return raw, pl.lit(False)
    return raw.with_columns(mask.to_series().alias("_not_text")), pl.col("_not_text")


def normalize(
    raw: pl.DataFrame,
    *,
    file: str,
    source: str,
    stats: InputStats,
    timezone: str | None = None,
    timestamp_format: str | None = None,
    soft_required: tuple[str, ...] = _SOFT_REQUIRED,
    no_timestamp: str = "missing required key 'timestamp'",
    keep: tuple[str, ...] = (),
    count_foreign_as_ignored: bool = True,
) -> pl.DataFrame:
    """Type and check ``raw``; rows that cannot be events are counted as malformed.

    ``raw`` is a frame of String columns (plus ``line``), optionally already passed through
    :func:`prepared`. ``soft_required``: the keys whose absence is counted in ``missing``
    (text formats derive ``source`` from the file name by design, so they leave it out).
    ``keep``: extra columns of ``raw`` carried to the output after the schema's."""
    if raw.height == 0:
        return empty_table()
    if "_ts_fast" not in raw.columns:
        raw = prepared(raw.lazy(), timestamp_format).collect()
    ts_raw = raw.get_column("timestamp")
    fast = raw.get_column("_ts_fast")
    todo = fast.is_null() & (ts_raw.str.len_bytes() > 0)
    if timestamp_format is not None:
        times = parse_timestamps(ts_raw, timezone, fmt=timestamp_format)
        raw = raw.with_columns(times.values.alias("ts"))
    elif todo.any():
        # Only the rows not in tracekit's own format go through the general (slower) parser.
        idx = todo.arg_true()
        times = parse_timestamps(ts_raw.gather(idx), timezone)
        raw = raw.with_columns(fast.scatter(idx, times.values).alias("ts")).drop("_ts_fast")
    else:
        raw = raw.rename({"_ts_fast": "ts"})
        times = ParsedTimes(fast.clear(), 0, False)
    raw, not_text = _names(raw, file, stats)
    absent = {c: pl.col(f"_{c}_absent") for c in ("stage", "action")}
    no_ts = pl.col("timestamp").is_null() | (pl.col("timestamp").str.len_bytes() == 0)
    unusable = pl.col("ts").is_null() | absent["stage"] | absent["action"] | not_text
    if raw.select(unusable.any()).item():  # the reasons are only worked out when needed
        reason = (
            pl.when(no_ts)
            .then(pl.lit(no_timestamp))
            .when(pl.col("ts").is_null())
            .then(pl.lit("unparseable timestamp ") + _clip(pl.col("timestamp")))
            .when(absent["stage"])
            .then(pl.lit("missing required key 'stage'"))
            .when(absent["action"])
            .then(pl.lit("missing required key 'action'"))
            .otherwise(pl.lit("'stage' and 'action' must be strings"))
        )
        # Objects with none of stage, action, trace_id are the application's own log lines
        # (tracekit shares the structlog stream): ignored, not malformed.
        foreign = absent["stage"] & absent["action"] & pl.col("trace_id").is_null()
        bad = raw.filter(unusable)
        if count_foreign_as_ignored:
            stats.ignored += bad.filter(foreign).height
            bad = bad.filter(~foreign)
        stats.malformed_frame(file, bad.with_columns(reason.alias("reason")))
        raw = raw.filter(~unusable)
    if times.naive and times.assumed_utc:
        stats.warn_count(
            file,
            times.naive,
            "timestamps have no time zone and were read as UTC; "
            "pass timezone=... (e.g. 'Europe/Berlin') if they are local times",
        )
    if times.repeated:
        stats.warn_count(
            file,
            times.repeated,
            f"local times fall in the hour a DST change in {timezone} repeats; "
            "each placed in the first or second pass by where the log's clock stepped back",
        )
    if times.skipped:
        stats.warn_count(
            file,
            times.skipped,
            f"local times fall in the hour a DST change in {timezone} skips; "
            "they do not exist there (a wrong clock or time zone?) and count as malformed",
        )
    if raw.height == 0:
        return empty_table()

    for key in soft_required:
        stats.count_missing(key, int(raw.get_column(key).is_null().sum()))

    seq = raw.get_column("seq")
    seq_int = raw.get_column("_seq_i")
    bad_seq = int((seq.is_not_null() & seq_int.is_null()).sum())
    if bad_seq:  # "4.0" and the like: integral floats are fine, 4.5 is no position
        as_float = seq.cast(pl.Float64, strict=False)
        integral = as_float.zip_with(as_float == as_float.round(), as_float.clear(1))
        seq_int = seq_int.fill_null(integral.cast(pl.Int64, strict=False))
        bad_seq = int((seq.is_not_null() & seq_int.is_null()).sum())
    if bad_seq:
        stats.warn_count(file, bad_seq, "events have a non-integer seq; it was left empty")
    negative = int((seq_int < 0).sum())
    if negative:  # a position counts up from 0: read, -2 made two false gaps (review 19a)
        seq_int = seq_int.zip_with(seq_int >= 0, seq_int.clear(1))
        stats.warn_count(file, negative, "events have a negative seq; it was left empty")

    duration = raw.get_column("_dur_f")
    not_finite = duration.is_not_null() & ~duration.is_finite()
    bad_duration = int((raw.get_column("duration_ms").is_not_null() & duration.is_null()).sum())
    bad_duration += int(not_finite.sum())
    if bad_duration:  # "n/a", "12ms", NaN: no length of time
        duration = duration.zip_with(~not_finite, duration.clear(1))
        stats.warn_count(
            file, bad_duration, "events have a duration_ms that is not a number; it was left empty"
        )

    # Canonical trace ids pass as they are; anything else is normalised or dropped. Checked on
    # the distinct ids (Categorical by now): a regex on every event cost ~10% of a JSON read.
    ids = raw.get_column("trace_id").unique().drop_nulls().cast(pl.String)
    if ids.to_frame().select(is_canonical_trace_id(pl.col("trace_id")).all()).item():
        raw = raw.with_columns(pl.col("trace_id").alias("trace_id_n"))
    else:
        canonical = canonical_trace_ids(pl.col("trace_id").cast(pl.String))
        raw = raw.with_columns(canonical.alias("trace_id_n"))
        bad_tid = int(
            (
                raw.get_column("trace_id").is_not_null() & raw.get_column("trace_id_n").is_null()
            ).sum()
        )
        if bad_tid:
            stats.warn_count(file, bad_tid, "events have an invalid trace_id; it was left empty")

    recipients = _recipients(raw, file, stats)

    dropped = raw.filter(pl.col("stage") == META_STAGE).get_column("dropped")
    if dropped.len():
        stats.dropped_by_sink += int(dropped.cast(pl.Int64, strict=False).fill_null(0).sum())

    out = raw.select(
        pl.col("ts").alias("timestamp"),
        "stage",
        "action",
        "event",
        pl.col("trace_id_n").cast(pl.Categorical()).alias("trace_id"),
        "msg_id",
        "conv_id",
        "actor",
        "peer",
        pl.col("source").fill_null(pl.lit(source)),
        seq_int.alias("seq"),
        "span_id",
        recipients.alias("recipients"),
        "level",
        duration.alias("duration_ms"),
        pl.lit(file, dtype=pl.Categorical()).alias("file"),
        pl.col("line").cast(pl.Int64),
        *keep,
    )
    stats.events += out.height
    # One chunk layout for every column: a table whose columns are chunked apart (seq, the
    # recipients, ...) is copied whole by polars to realign them in the next with_columns or
    # filter on it (467 MB at 5M events, in linking, then again in the analysis).
    return out.rechunk()


#: Values that name nobody, in a recipients list; as the whole value, the literals (an empty
#: value, ``recipients=`` in logfmt, is none listed: no warning, review 19c).
_NO_NAMES: Final = ("", "true", "false")
_LITERALS: Final = ("true", "false")
#: A whole value that lists nobody, said of nothing: ``recipients=`` or ``recipients=null``
#: (go-kit's nil) in logfmt, ``""`` in JSON (review 19d: it read as a recipient "").
_NONE_LISTED: Final = ("", "null")


def _recipients(raw: pl.DataFrame, file: str, stats: InputStats) -> pl.Expr:
    """JSON lists (as the reader serialised them) or comma-separated text -> List(String).

    An expression, so the column keeps the chunks of the others (a column built apart, in one
    chunk, makes every later operation on the table realign hundreds of chunks). Decoding is
    tried on the distinct lists first; a value that is not a list of strings is left empty,
    alone."""
    dtype = pl.List(pl.String)
    c = pl.col("recipients")
    is_json = c.str.starts_with("[")
    present = raw.select("recipients").filter(c.is_not_null())
    if present.height == 0:
        return pl.lit(None, dtype=dtype)
    listed = present.filter(is_json).get_column("recipients").unique()
    broken: list[str] = []
    try:  # (one decode of the distinct lists, where all decode: the usual case)
        lists = listed.str.json_decode(dtype)
    except pl.exceptions.PolarsError:
        broken = _undecodable(listed, dtype)
        lists = listed.filter(~listed.is_in(broken)).str.json_decode(dtype)
    # Decoded, a number is its text (an id) but a null, an empty string or a boolean no name;
    # unlisted, an object or a boolean is none either (review 19a: `true`, `[1, null]`,
    # `{"u1": 1}` named recipients, and the real ones read as unexpected)
    kept = listed.filter(~listed.is_in(broken))
    unnamed = lists.list.eval(pl.element().is_null() | pl.element().is_in(_NO_NAMES)).list.any()
    texts = present.filter(~is_json).get_column("recipients").unique()
    bad = pl.Series(
        [
            *broken,
            *kept.filter(unnamed.fill_null(False)).to_list(),
            *texts.filter(texts.str.starts_with("{") | texts.is_in(_LITERALS)).to_list(),
        ],
        dtype=pl.String,
    ).implode()
    decodable = is_json & ~c.is_in(bad)
    n_bad = present.filter(c.is_in(bad)).height
    if n_bad:
        stats.warn_count(
            file, n_bad, "events have 'recipients' that are not lists of strings; left empty"
        )
    elif present.select(is_json.all()).item():
        # Lists only (JSON lines always): the text branch would still run on every row.
        return c.str.json_decode(dtype)
    decoded = pl.when(decodable).then(c).str.json_decode(dtype)
    named = pl.when(~c.is_in(bad) & ~c.is_in(_NONE_LISTED)).then(c)
    as_text = named.str.split(",").list.eval(pl.element().str.strip_chars())
    return pl.when(is_json).then(decoded).otherwise(as_text)


def _undecodable(values: pl.Series, dtype: pl.DataType) -> list[str]:
    """The distinct values ``json_decode`` rejects, found by halving: a few decodes when few
    values are bad, however many there are in all."""
    try:
        values.str.json_decode(dtype)
        return []
    except pl.exceptions.PolarsError:
        if values.len() <= 1:
            return values.to_list()
        half = values.len() // 2
        return _undecodable(values.head(half), dtype) + _undecodable(values.slice(half), dtype)
