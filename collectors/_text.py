"""Text logs (legacy bracket text, user regex formats) -> event rows, vectorised.

Every step is a polars expression over the file's lines; no Python runs per line. The rows
keep a private ``_client_id`` column so :func:`tracekit.collectors._link.link` can tie lines to
messages across all files (a client log names the client id, the server log the server id).
"""

from __future__ import annotations

import os
import re
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Final

import polars as pl

from tracekit.collectors._formats import Rule, TextFormat, group_names, legacy_format
from tracekit.collectors._kv import (
    OPEN_VALUE,
    before_legacy_tag,
    kv_event_line,
    open_quote,
    stage_pair_line,
    tag_outside_pairs,
)
from tracekit.collectors._normalize import RAW_COLUMNS, normalize, prepared
from tracekit.collectors._stats import InputStats

__all__ = ["MAX_TEXT_LINE", "join_partials", "read_legacy", "read_text"]

#: Blank means ASCII whitespace only, as bytes.strip() sees it everywhere else.
_ASCII_SPACE: Final = " \t\n\r\x0b\x0c"

#: Text lines longer than this are counted as malformed rather than run through the regexes.
MAX_TEXT_LINE: Final = 1 << 20
#: A date and time of day whose fraction follows a comma (group 1: up to the comma).
_COMMA_FRACTION: Final = r"^(\s*\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}),(\d)"
#: Files with more lines than this are read in slices on several threads.
_SLICE: Final = 200_000
#: A CRI record (containerd, CRI-O: ``<RFC3339Nano> <stream> <P|F> <text>``): its stream and
#: tag ("stdout P"), and all its parts; the text follows one space.
_CRI_STREAM_TAG: Final = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]* ((?:stdout|stderr) [PF])(?: |$)"
_CRI_RECORD: Final = (
    r"^(?P<time>[0-9]{4}-[0-9]{2}-[0-9]{2}T[^ ]*) (?P<stream>stdout|stderr) (?P<tag>[PF])"
    r"(?: (?P<text>.*))?$"
)


def read_legacy(
    data: bytes,
    *,
    file: str,
    source: str,
    stats: InputStats,
    timezone: str | None = None,
    unread_kv: list[pl.DataFrame] | None = None,
) -> pl.DataFrame:
    """The built-in legacy format's reader: :func:`read_text`, a legacy tag inside a
    ``key=value`` pair's value being text (one rule with detection and the kv reader)."""
    return read_text(
        data,
        legacy_format(),
        file=file,
        source=source,
        stats=stats,
        timezone=timezone,
        unread_kv=unread_kv,
        outside_pairs=True,
    )


def _actor_for(source: str, fmt: TextFormat) -> str | None:
    """The actor a source (file) name gives: ``actor_from_source``'s ``actor`` group (or its
    whole match), else ``server`` where ``server_from_source`` matches. Run with polars, i.e.
    Rust's regex engine: the one the format's regexes were checked with and written for."""
    name = pl.Series([source], dtype=pl.String)
    if fmt.actor_from_source:
        regex = fmt.actor_from_source
        if name.str.contains(regex).item():
            groups = name.str.extract_groups(regex)
            if "actor" in groups.struct.fields:
                return groups.struct.field("actor").item()  # type: ignore[no-any-return]
            return name.str.extract(regex, 0).item()  # type: ignore[no-any-return]
    if fmt.server_from_source and name.str.contains(fmt.server_from_source).item():
        return "server"
    return None


def _decode(data: bytes, file: str, stats: InputStats) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        text = data.decode("utf-8", errors="replace")
        stats.warn(f"{file}: invalid UTF-8 bytes were replaced by U+FFFD; those lines are kept")
        return text


def csv_lines(data: bytes) -> pl.Series | None:
    """``data``'s lines, split in parallel straight from the bytes by polars' CSV reader with
    one column and no quoting (blank lines come back as nulls, keeping the numbering; invalid
    UTF-8 as U+FFFD); None when it cannot: the data holds the unit separator, or polars
    sniffed compression magic in it."""
    if b"\x1f" in data:
        return None
    try:
        return pl.read_csv(
            data,
            has_header=False,
            separator="\x1f",
            quote_char=None,
            schema={"raw": pl.String},
            encoding="utf8-lossy",
        ).get_column("raw")
    except (pl.exceptions.PolarsError, OSError):
        return None


def join_partials(lines: pl.Series, file: str) -> tuple[pl.Series, list[str]]:
    """``lines`` with CRI partial records joined, and a warning per line left incomplete.

    A container runtime (containerd, CRI-O; Docker's json-file entries, once unwrapped) splits
    a long line into ``P`` records and a last ``F`` record of the same stream (the other
    stream's records may come between them); the line is their texts in order. It takes the
    first record's place (its time and line number) as ``<time> <stream> F <line>``; the
    other records' places become blank lines, so every line keeps its number. A stream's
    ``P`` records with no ``F`` after them (the file ends) are read as one line too, with a
    warning. Costs nothing measurable for a log that is no CRI log (its first lines) or has no
    partial record (one literal search, ~25 ms per 1M lines); the rest is polars column work.
    """
    head = lines.head(1000)
    head = head.filter(head != "")
    if head.len() and not head.str.contains(_CRI_STREAM_TAG).any():
        return lines, []
    if not lines.str.contains(" P ", literal=True).any():
        return lines, []
    # Stream and tag of every record first (a short anchored regex); the time and text only of
    # the records of a line with a partial record.
    records = (
        pl.DataFrame([lines.alias("raw")])
        .with_row_index("line")
        .select("line", pl.col("raw").str.extract(_CRI_STREAM_TAG, 1).alias("_st"))
        .filter(pl.col("_st").is_not_null())
        .select(
            "line",
            pl.col("_st").str.head(6).alias("stream"),
            pl.col("_st").str.tail(1).alias("tag"),
        )
    )
    # A stream's records up to and including its next F are one line: its P records and the
    # F after a P (a window over two streams; the one-record lines never form groups).
    records = records.filter(
        (pl.col("tag") == "P") | (pl.col("tag").shift(1) == "P").over("stream")
    )
    if not records.height:
        return lines, []
    ended = (pl.col("tag") == "F").cast(pl.UInt32)
    records = records.with_columns((ended.cum_sum() - ended).over("stream").alias("_n"))
    parts = lines.gather(records.get_column("line")).str.extract_groups(_CRI_RECORD)
    records = records.with_columns(
        parts.struct.field("time"), parts.struct.field("text").fill_null("")
    )
    joined = records.group_by("stream", "_n", maintain_order=True).agg(
        pl.col("line").first().alias("first"),
        pl.col("line").last().alias("last"),
        (pl.col("time").first() + pl.lit(" ") + pl.col("stream").first() + pl.lit(" F "))
        .add(pl.col("text").str.join(""))
        .alias("raw"),
        (pl.col("tag").last() == "P").alias("open"),
    )
    firsts = joined.get_column("first")
    rest = records.get_column("line").filter(~records.get_column("line").is_in(firsts.implode()))
    out = lines.clone().scatter(firsts, joined.get_column("raw")).scatter(rest, "")
    notes = [
        f"{file}: lines {first + 1}-{last + 1}: a container runtime's partial line (P records) "
        "has no final (F) record at the end of the file; read as one line"
        for first, last in joined.filter("open").select("first", "last").iter_rows()
    ]
    return out, notes


def _lines(data: bytes, file: str, stats: InputStats) -> pl.DataFrame:
    """The file's lines with 1-based numbers (blank ones included, so numbers stay true):
    :func:`csv_lines`, else Python's split."""
    raw = csv_lines(data)
    if raw is None:
        text = _decode(data, file, stats)
        raw = pl.Series("raw", text.split("\n"), dtype=pl.String)
        if text.endswith("\n"):
            raw = raw.head(-1)
        raw = raw.str.strip_suffix("\r")
    else:
        raw = raw.fill_null("")
        if raw.str.contains("\ufffd", literal=True).any():
            _decode(data, file, stats)  # warns only when the bytes really were invalid
    raw, joins = join_partials(raw, file)
    for note in joins:
        stats.warn(note)
    stats.lines += raw.len()
    df = pl.DataFrame([raw]).with_row_index("line", offset=1)
    df = df.with_columns(pl.col("line").cast(pl.Int64))
    longest = df.get_column("raw").str.len_bytes().max()
    if isinstance(longest, int) and longest > MAX_TEXT_LINE:
        too_long = df.filter(pl.col("raw").str.len_bytes() > MAX_TEXT_LINE)
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
    return df


def _split_on_tag(df: pl.DataFrame, tag_regex: str, *, outside_pairs: bool) -> pl.DataFrame:
    """prefix / tag / msg around the first tag match (``outside_pairs``: the first one outside
    the line's ``key=value`` pairs' values, see :func:`_outside_pairs`).

    ``str.find`` (a DFA search, no captures) gives the byte offset of the tag; the capturing
    regex then runs anchored on the few bytes of the tag only. Several times faster than one
    capturing whole-line regex. ``str.slice`` counts characters, so rows whose prefix is not
    ASCII (offset in bytes != in characters) are redone with a slower exact replace."""
    plain = re.sub(r"\(\?P?<\w+>", "(?:", tag_regex)  # (?P<name> and (?<name>, not (?<=
    pos = pl.col("raw").str.find(plain)
    df = df.with_columns(pos.alias("_p"))
    df = df.with_columns(
        pl.col("raw").str.slice(0, pl.col("_p")).alias("prefix"),
        pl.col("raw").str.slice(pl.col("_p")).alias("_rest"),
    )
    if outside_pairs:
        df = _outside_pairs(df, plain)
    df = df.with_columns(
        pl.col("_rest").str.extract_groups(f"^(?P<_head>{tag_regex})").alias("_g")
    ).unnest("_g")
    df = df.with_columns(
        pl.col("_rest").str.slice(pl.col("_head").str.len_chars()).alias("msg"),
    )
    off = df.filter(pl.col("_p").is_not_null() & (pl.col("prefix").str.len_bytes() != pl.col("_p")))
    if off.height:
        exact = (
            pl.col("raw")
            .str.replace(tag_regex, "\x1f${tag}\x1f", n=1)
            .str.split_exact("\x1f", 2)
            .struct.rename_fields(["prefix", "tag", "msg"])
        )
        fixed = off.with_columns(exact.alias("_x")).with_columns(
            pl.col("_x").struct.field("prefix"),
            pl.col("_x").struct.field("tag"),
            pl.col("_x").struct.field("msg"),
        )
        df = df.update(fixed.select("line", "prefix", "tag", "msg"), on="line")
    if "_inside" in df.columns:
        df = _quoted_text(df)
    return df.drop("_p", "_rest", "_head")


def _quoted_text(df: pl.DataFrame) -> pl.DataFrame:
    """``df`` with ``_text``: for a legacy line read from inside a quoted value
    (``msg="[REST] Sending message: clientMsgId=c9" ts=...``, ``_inside``), its message up to
    the quote that closes the value (the event's text); null elsewhere, and where the value
    does not close. ``msg`` stays the whole rest of the line: the rules and the ids read it (an
    id in a pair after the value is the line's too). For the few such rows only."""
    inside = df.get_column("_inside").fill_null(False)
    idx = inside.arg_true()
    part = df.select(pl.col("prefix", "msg").gather(idx))
    quote = open_quote(pl.col("prefix"))
    cut = part.select(
        pl.when(quote == '"')
        .then(pl.col("msg").str.extract(r'^((?:[^"\\]|\\.)*)"', 1))
        .when(quote == "'")
        .then(pl.col("msg").str.extract(r"^((?:[^'\\]|\\.)*)'", 1))
        .str.strip_chars_end()
    ).to_series()
    text = pl.repeat(None, df.height, dtype=pl.String, eager=True).scatter(idx, cut)
    return df.with_columns(text.alias("_text")).drop("_inside")


def _outside_pairs(df: pl.DataFrame, plain: str) -> pl.DataFrame:
    """``df`` (``raw``, ``_p``, ``prefix``, ``_rest`` of :func:`_split_on_tag`) with the tag
    of each line at its first legacy tag outside the line's ``key=value`` pairs' values, the
    rule of detection and the kv reader (:func:`~tracekit.collectors._kv.legacy_line`): a
    tag a value quotes (``event='[REST] Sending message'``) is text.

    A line whose tags are all inside its pairs' values is no legacy line (its ``_p`` null)
    only when it is a key=value event (:func:`~tracekit.collectors._kv.kv_event_line`, a
    ``stage=`` pair): the caller counts it as it counts untagged lines and gives it to the kv
    reader. Any other such line keeps its first tag wherever it stands: legacy text an app
    writes through a logfmt or KeyValueRenderer handler (``msg="[REST] Sending message: ..."``)
    is the legacy reader's, never ignored without a word.

    Only a line whose prefix (the text before its first tag) holds a value that may run into
    the tag can hold it in a pair's value (:data:`~tracekit.collectors._kv.OPEN_VALUE`, as in
    detection): one literal search for ``=`` over the prefixes (a timestamp, a few bytes), a
    regex over the few that have one, and only the lines it matches are scanned pair by pair. Their prefix is cut in characters, exact
    whatever the text, so ``_p`` is set to its bytes (never redone as a non-ASCII prefix)."""
    prefixes = df.get_column("prefix")
    has_eq = prefixes.str.contains("=", literal=True)
    if not has_eq.any():
        return df
    idx = has_eq.fill_null(False).arg_true()
    idx = idx.filter(prefixes.gather(idx).str.contains(OPEN_VALUE))
    if not idx.len():
        return df
    line = pl.col("raw")
    # Each rule once (an eager select evaluates a repeated sub-expression again, review 8): a
    # line moves when a tag is outside its values, or when it is a kv event (a stage pair;
    # kv_event_line's other half is that no tag is outside, true wherever this decides).
    found = pl.DataFrame([df.get_column("raw").gather(idx)]).with_columns(
        tag_outside_pairs(line).alias("out"), stage_pair_line(line).alias("staged")
    )
    out = found.get_column("out")
    moved = out | found.get_column("staged")
    if not moved.all():  # a tag inside a value, the line's all the same: see _quoted_text
        inside = pl.repeat(False, df.height, dtype=pl.Boolean, eager=True)
        df = df.with_columns(inside.scatter(idx.filter(~moved), True).alias("_inside"))
    if not moved.any():
        return df
    idx = idx.filter(moved)
    found = found.filter(moved)
    # the text before the tag outside, scanned pair by pair on those lines only; null: a kv
    # event
    prefix = pl.repeat(None, found.height, dtype=pl.String, eager=True)
    at = found.get_column("out").arg_true()
    if at.len():
        before = found.filter(pl.col("out")).select(before_legacy_tag(line, plain))
        prefix = prefix.scatter(at, before.to_series())
    rest = found.get_column("raw").str.slice(prefix.str.len_chars())
    return df.with_columns(
        df.get_column("_p").clone().scatter(idx, prefix.str.len_bytes()),
        df.get_column("prefix").clone().scatter(idx, prefix),
        df.get_column("_rest").clone().scatter(idx, rest),
    )


#: What a ``bare`` rule does not look at: quoted strings (what a user wrote) and ``key=value``
#: pairs (ids, names). A quote counts only after a space, ``=``, a bracket or a comma, so the
#: apostrophe of "couldn't" opens nothing.
_QUOTED_OR_PAIR: Final = r"""(^|[\s=(\[,])(?:"(?:[^"\\]|\\.)*"|'(?:[^'\\]|\\.)*')|[\w.-]+=\S*"""


def _bare_hits(frame: pl.DataFrame, fmt: TextFormat, rules: list[Rule]) -> pl.DataFrame:
    """``_bare{i}``: whether rule ``i`` (marked ``bare``, or with an ``ignore`` regex) matches
    the message without what it does not look at: :data:`_QUOTED_OR_PAIR` for a ``bare`` rule
    (failure words in "Sorry, I cannot make it" or ``conversationId=errors`` are no failure),
    the rule's ``ignore`` matches ("sent without errors"). Each rule is searched once over the
    lines as they are; only the few lines it matches are stripped and searched again (a regex
    replace over every line would cost more than the whole rule chain)."""
    checked = {
        fmt.rules.index(r): (r.match, r.bare, r.ignore)
        for r in rules
        if r.match and (r.bare or r.ignore)
    }
    if not checked:
        return frame
    hits = frame.select(
        pl.col("_msg").str.contains(m).fill_null(False).alias(f"_bare{i}")
        for i, (m, _, _) in checked.items()
    )
    idx = hits.select(pl.any_horizontal(pl.all())).to_series().arg_true()
    msgs = frame.get_column("_msg").gather(idx)
    stripped: dict[tuple[bool, str | None], pl.Series] = {}
    cols = []
    for i, (m, bare, ignore) in checked.items():
        key = (bare, ignore)
        if key not in stripped:
            text = msgs if ignore is None else msgs.str.replace_all(ignore, " ")
            stripped[key] = text.str.replace_all(_QUOTED_OR_PAIR, "${1}") if bare else text
        hit = hits.get_column(f"_bare{i}")
        still = stripped[key].str.contains(m).fill_null(False) & hit.gather(idx)
        cols.append(hit.scatter(idx, still))
    return frame.with_columns(cols)


def _stage_action(df: pl.DataFrame, fmt: TextFormat, key: str, msg: pl.Expr) -> pl.DataFrame:
    """``_ev`` = "STAGE.action": rules (first match wins), then aliases, then the raw groups.
    A rule's ``*.action`` takes the stage of the row's tag: its alias's stage, else the tag.

    Rules run per tag on that tag's rows only, so their cost does not grow with the number of
    tags."""
    has_action = "action" in df.columns
    if df.height == 0:
        return df.with_columns(pl.lit(None, dtype=pl.String).alias("_ev"))

    stage_of_tag = pl.col(key).replace_strict(
        {tag: ev.split(".", 1)[0] for tag, ev in fmt.aliases.items()},
        default=pl.col(key),
        return_dtype=pl.String,
    )

    def chain_for(rules: list[Rule], tag: str | None = None) -> pl.Expr:
        """``tag``: the one tag of the rows (a partition), so ``*.action`` is a literal."""
        alias = pl.col(key).replace_strict(fmt.aliases, default=None, return_dtype=pl.String)
        if has_action:
            alias = alias.fill_null(pl.col(key) + pl.lit(".") + pl.col("action"))
        elif not fmt.rules and not fmt.aliases:
            alias = pl.col(key) + pl.lit(".")
        chain: Any = None
        for rule in rules:
            if (rule.bare or rule.ignore) and rule.match:
                cond = pl.col(f"_bare{fmt.rules.index(rule)}")
            else:
                cond = pl.col("_msg").str.contains(rule.match) if rule.match else pl.lit(True)
            event = pl.lit(rule.event)
            if rule.event.startswith("*.") and tag is not None:  # the stage the tag stands for
                stage = fmt.aliases[tag].split(".", 1)[0] if tag in fmt.aliases else tag
                event = pl.lit(stage + rule.event[1:])
            elif rule.event.startswith("*."):
                event = stage_of_tag + pl.lit(rule.event[1:])
            chain = (pl.when(cond) if chain is None else chain.when(cond)).then(event)
        return alias if chain is None else chain.otherwise(alias)

    if not any(r.tag is not None for r in fmt.rules):
        return (
            _bare_hits(df.with_columns(msg.alias("_msg")), fmt, list(fmt.rules))
            .with_columns(chain_for(list(fmt.rules)).alias("_ev"))
            .select(*df.columns, "_ev")
        )
    # Narrow partitions (line, tag, message), re-sorted by line: the wide frame never moves.
    cols = ["line", key, *(["action"] if has_action else [])]
    narrow = df.select(*cols, msg.alias("_msg"))
    pieces = []
    for part in narrow.partition_by(key, maintain_order=True):
        tag = part.get_column(key)[0]
        rules = [r for r in fmt.rules if r.tag is None or r.tag == tag]
        part = _bare_hits(part, fmt, rules)
        pieces.append(part.select("line", chain_for(rules, tag).alias("_ev")))
    ev = pl.concat(pieces).sort("line").get_column("_ev")
    return df.with_columns(ev)


def _whole_group(regex: str) -> bool:
    """True when group 1 of ``regex`` is the whole pattern, ``(...)``, so group 1 is the match.

    Conservative: a character class holding a bracket or parenthesis gives False."""
    if not regex.startswith("(") or regex.startswith("(?") or not regex.endswith(")"):
        return False
    depth, i, in_class = 0, 0, False
    while i < len(regex):
        c = regex[i]
        if c == "\\":
            i += 2
            continue
        if in_class:
            if c in "([)":
                return False
            in_class = c != "]"
        elif c == "[":
            if regex[i + 1 : i + 2] in ("]", "^"):
                return False
            in_class = True
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0 and i != len(regex) - 1:
                return False
        i += 1
    return depth == 0


def _groups(fmt: TextFormat) -> list[str]:
    if fmt.tag_regex:
        return ["prefix", "tag", "msg"]
    return group_names(fmt.line_regex)


def _extract(
    df: pl.DataFrame, fmt: TextFormat, actor: str | None, outside_pairs: bool = False
) -> tuple[pl.DataFrame, int, pl.Series]:
    """Lines -> raw String columns of their events, how many lines were ignored, and the
    numbers of the ignored ones that hold a ``stage=`` pair (key=value events).
    ``outside_pairs``: a tag inside a pair's value is text (:func:`_outside_pairs`).

    Works on any slice of a file's lines (no state carries from one line to the next), so
    slices can run in parallel."""
    groups = _groups(fmt)
    if fmt.tag_regex:
        df = _split_on_tag(df, fmt.tag_regex, outside_pairs=outside_pairs)
        df = df.with_columns(pl.col("msg").str.strip_chars_end())
    else:
        df = df.with_columns(pl.col("raw").str.extract_groups(fmt.line_regex).alias("g"))
        df = df.unnest("g")
    key = "tag" if "tag" in groups else "stage"
    matched = pl.col(key).is_not_null()
    blank = pl.col("raw").str.strip_chars(_ASCII_SPACE) == ""
    # blank is checked on the untagged rows only: stripping every line copies the whole text
    unmatched = df.filter(~matched).filter(~blank)
    ignored = unmatched.height
    kv = [_with_kv_stage(unmatched, pl.col("raw"))]
    df = df.filter(matched)
    ts_in_raw = bool(fmt.timestamp_regex) and not {"timestamp", "prefix"} & set(groups)

    msg = pl.col("msg") if "msg" in groups else pl.col("raw")
    df = _stage_action(df, fmt, key, msg)  # on narrow frames: the whole line is not moved
    unmapped = df.filter(pl.col("_ev").is_null())
    ignored += unmapped.height
    if not fmt.tag_regex:  # a line with the format's tag is the format's, not a kv event
        kv.append(_with_kv_stage(unmapped, msg))
    elif outside_pairs:
        # a key=value event holding a tag outside its values (`stage=REST ... [REST] hi`) is a
        # legacy line; one the legacy reader makes no event of is given back all the same
        kv.append(_with_kv_stage(unmapped, pl.col("raw"), tagged=True))
    if "raw" not in groups and "msg" in groups and not ts_in_raw:
        df = df.drop("raw")  # every later step reads the parts, not the whole line
    df = df.filter(pl.col("_ev").is_not_null())

    # Timestamps: a group, or the first match of timestamp_regex in the prefix (or line).
    if "timestamp" in groups:
        ts = pl.col("timestamp")
    elif fmt.timestamp_regex:
        where = pl.col("prefix") if "prefix" in groups else pl.col("raw")
        if _whole_group(fmt.timestamp_regex):  # the match itself: no capture search needed
            ts = where.str.extract_all(fmt.timestamp_regex).list.first()
        else:
            ts = where.str.extract(fmt.timestamp_regex, 1)
    else:
        ts = pl.lit(None, dtype=pl.String)

    parts = pl.col("_ev").str.split_exact(".", 1)
    # the legacy line as written from its tag on; a user format's msg group (or line)
    text = pl.coalesce("_text", msg) if "_text" in df.columns else msg  # see _quoted_text
    event = pl.lit("[") + pl.col(key) + pl.lit("] ") + text if fmt.tag_regex else msg
    cols: dict[str, pl.Expr] = {
        "timestamp": ts,
        "stage": parts.struct.field("field_0"),
        "action": parts.struct.field("field_1").replace("", None),
        "event": event,  # text in the table (nearly unique per line)
    }
    for name in [*RAW_COLUMNS, "client_id"]:
        if name in cols or name == "dropped":
            continue
        if name in groups:
            cols[name] = pl.col(name).replace("", None)
        elif name in fmt.fields:
            cols[name] = msg.str.extract(fmt.fields[name], 1)
        else:
            cols[name] = pl.lit(None, dtype=pl.String)
    if actor is not None:
        cols["actor"] = cols["actor"].fill_null(pl.lit(actor))
    # for linking, which keys on Categorical ids: cast here, in the slice threads
    cols["client_id"] = cols["client_id"].cast(pl.Categorical())
    # One select: the regexes run in parallel, one per column; normalize's per-row checks and
    # casts (timestamp parse included) fused in, so they too run in the slice threads.
    out = df.lazy().select(pl.col("line"), *(e.alias(k) for k, e in cols.items()))
    kv_lines = pl.concat(kv).sort()
    return prepared(out, fmt.timestamp_format).collect(), ignored, kv_lines


def _with_kv_stage(rows: pl.DataFrame, text: pl.Expr, *, tagged: bool = False) -> pl.Series:
    """Numbers of the ``rows`` whose ``text`` reads as a key=value event (``kv_event_line``;
    ``tagged``: legacy lines the legacy reader made no event of, with a ``stage=`` pair)."""
    if not rows.height:
        return rows.get_column("line")
    rule = stage_pair_line(text) if tagged else kv_event_line(text)
    return rows.filter(rule).get_column("line")


def _decimal_point(raw: pl.DataFrame) -> pl.DataFrame:
    """``10:00:00,123`` -> ``10:00:00.123`` (log4j's decimal comma), so a zoned time with a
    comma parses like one with a dot instead of failing. Only on the rows the fast parse left
    (tracekit's own ``...Z`` times never get here)."""
    slow = raw.get_column("_ts_fast").is_null() & raw.get_column("timestamp").is_not_null()
    if not slow.any():
        return raw
    idx = slow.arg_true()
    text = raw.get_column("timestamp").clone()  # scatter writes in place
    part = text.gather(idx)
    fixed = part.str.replace(_COMMA_FRACTION, "${1}.${2}")
    if not (fixed != part).any():
        return raw
    return raw.with_columns(text.scatter(idx, fixed))


def read_text(
    data: bytes,
    fmt: TextFormat,
    *,
    file: str,
    source: str,
    stats: InputStats,
    timezone: str | None = None,
    unread_kv: list[pl.DataFrame] | None = None,
    outside_pairs: bool = False,
) -> pl.DataFrame:
    """``unread_kv``: where to add the ignored lines (``line``, ``raw``) holding a ``stage=``
    pair (key=value events this reader does not read), for the caller to read or warn about.
    ``outside_pairs``: a tag inside a ``key=value`` pair's value is text, not the line's tag
    (the built-in legacy format; a user format's tags are taken wherever they stand)."""
    df = _lines(data, file, stats)
    actor = _actor_for(source, fmt)
    # Most steps are one regex over one column, i.e. one core: big files go in slices on a
    # few threads (polars releases the GIL), then join up in line order.
    workers = min(4, os.cpu_count() or 1)
    step = max(_SLICE, -(-df.height // workers))
    slices = [df.slice(i, step) for i in range(0, df.height, step)] or [df]
    if len(slices) == 1:
        results = [_extract(slices[0], fmt, actor, outside_pairs)]
    else:
        with ThreadPoolExecutor(max_workers=workers) as pool:
            results = list(pool.map(lambda part: _extract(part, fmt, actor, outside_pairs), slices))
    raw = pl.concat([r[0] for r in results])
    stats.ignored += sum(r[1] for r in results)
    if unread_kv is not None:
        kv_lines = pl.concat([r[2] for r in results])
        if kv_lines.len():  # few: the lines' text from the file's, for the kv reader
            unread_kv.append(
                df.filter(pl.col("line").is_in(kv_lines.implode())).select("line", "raw")
            )
    if fmt.untimed == "previous":
        untimed = raw.get_column("timestamp").is_null()
        # Each row takes the text and the parsed time of the last timed row up to it.
        timed = pl.when(pl.col("timestamp").is_not_null()).then(pl.int_range(pl.len()))
        if untimed.any():
            raw = raw.with_columns(pl.col("timestamp", "_ts_fast").gather(timed.forward_fill()))
        n_inherited = int((untimed & raw.get_column("timestamp").is_not_null()).sum())
        if n_inherited:
            stats.warn(
                f"{file}: {n_inherited} lines have no timestamp; "
                "they took the previous event line's time"
            )
    if fmt.timestamp_format is None:
        raw = _decimal_point(raw)
    soft = ("event", "actor", "seq") + (("source",) if "source" in _groups(fmt) else ())
    return normalize(
        raw.rename({"client_id": "_client_id"}),
        file=file,
        source=source,
        stats=stats,
        timezone=timezone or fmt.timezone,
        timestamp_format=fmt.timestamp_format,
        soft_required=soft,
        no_timestamp="no timestamp on the line"
        + (" nor on an event line before it" if fmt.untimed == "previous" else ""),
        keep=("_client_id",),  # for linking across files (tracekit.collectors._link)
        count_foreign_as_ignored=False,  # every row here has a stage: a tagged line
    )
