r"""logfmt (``key=value key="quoted value"``) and structlog's KeyValueRenderer output.

KeyValueRenderer writes Python reprs: ``event='CTRL send' seq=17 recipients=['u1', 'u2']
peer=None``; logfmt writes double quotes and bare words. Each line is cut into its
``key=value`` pairs by one left-to-right regex scan that consumes quoted values whole, so a
``peer=u9`` inside ``event='delivering to peer=u9'`` is text, never the key; vectorised.

Escapes in quoted values (and list items) are decoded the way Python reads a string literal:
that undoes both repr (``'it\'s'``, ``'\x1b'``, ``'\u2028'``) and logfmt (``"say \"hi\""``,
``\\``, ``\n``). Values without a backslash stay on the vectorised path; only the others are
decoded one by one in Python. Bare words are taken as written.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from typing import Final

import polars as pl

from tracekit.collectors._normalize import RAW_COLUMNS, empty_table, normalize
from tracekit.collectors._stats import InputStats
from tracekit.collectors._time import fast_iso_utc, parse_timestamps

__all__ = [
    "KV_LINE",
    "KV_PREFIX",
    "OPEN_VALUE",
    "before_legacy_tag",
    "kv_event_line",
    "legacy_line",
    "legacy_tagged",
    "legacy_tagged_lines",
    "open_quote",
    "read_kv",
    "spaced",
    "stage_pair_line",
    "stage_pair_lines",
    "tag_outside_pairs",
]

#: Blank means ASCII whitespace only, as bytes.strip() sees it everywhere else.
_ASCII_SPACE: Final = " \t\n\r\x0b\x0c"

#: A single- or double-quoted string; a backslash escapes the character after it.
_STRING: Final = r"'(?:[^'\\]|\\.)*'|" + r'"(?:[^"\\]|\\.)*"'
#: A quoted string, a list (``]`` may appear inside its quoted items; a quote that opens no
#: string is just a character) or a bare word.
_LIST: Final = rf"""\[(?:[^\]'"]|{_STRING}|['"])*\]"""
_VALUE: Final = rf"({_STRING}|{_LIST}|\S*)"
_ALIASES: Final = {"timestamp": ("timestamp", "ts", "time"), "level": ("level", "lvl")}
#: One ``key=value`` pair after the line's start or a space. Read left to right, match after
#: match, so a quoted value is consumed whole: ``key=`` inside it is text, not a key. The value
#: alternatives are tried in order (a string, a list, then a bare word), so a quote that opens
#: no string is just a character of a bare word.
#: Run by polars only (Rust's regex engine: linear time), never by Python's ``re``: a list's
#: ``''`` reads as an empty string or as two lone quotes, so a backtracking engine tries every
#: way of reading a list that has no ``]`` (2**n for n items: a 40-item line ran for hours).
_PAIR: Final = rf"(?:^|\s)[A-Za-z_][\w.@-]*={_VALUE}"
#: A ``_PAIR`` that is a ``stage=`` pair with a value (bare, quoted or a list; not ``=...``).
_STAGE: Final = r"^\s?stage=[^\s=]"

_TIME: Final = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?"
)
_LEVEL: Final = (
    r"(?i:trace|debug|info|notice|warn|warning|error|err|critical|crit|fatal|alert|emerg)"
)
_LOGGER: Final = r"[A-Za-z_][\w.$/-]*"
#: What may stand before a line's first ``key=value`` pair (a regex for both Rust (polars) and
#: Python): nothing, or a known prefix shape, read from the line's start. A container runtime's
#: ``<RFC3339> stdout|stderr F|P``; then an ISO-8601 time, bracketed or not; then up to three
#: of a level (``INFO``, ``[INFO]``, ``INFO:``) and a logger name (``app.db:``, ``[app.db]``,
#: ``app.db -``), with spaces (or `` - ``/`` | ``) between them. The pairs are read from where
#: it ends: a ``stage=`` in the middle of an app's sentence or SQL is text, never a pair.
KV_PREFIX: Final = (
    rf"\s*(?:{_TIME}[ \t]+(?:stdout|stderr)[ \t]+[FP][ \t]+)?"
    rf"(?:\[{_TIME}\][ \t]*(?:[-|][ \t]+)?|{_TIME}[ \t]+(?:[-|][ \t]+)?)?"
    rf"(?:(?:\[{_LEVEL}\]|{_LEVEL}:|\[{_LOGGER}\]|{_LOGGER}:)[ \t]*(?:[-|][ \t]+)?"
    rf"|{_LEVEL}[ \t]+(?:[-|][ \t]+)?|{_LOGGER}[ \t]+[-|][ \t]+){{0,3}}"
)
#: A key=value line: its prefix (group 1, :data:`KV_PREFIX`) and then a pair.
KV_LINE: Final = rf"^({KV_PREFIX})[A-Za-z_][\w.@-]*="
_FIRST_KEY: Final = r"[A-Za-z_][\w.@-]*="
#: A key=value line's prefix (group 1) and first key (group 2).
_GLUED: Final = rf"^({KV_PREFIX})({_FIRST_KEY})"
#: A line whose first key (the first "=" is its: a prefix holds none) follows a ":" or "]"
#: with no space (``INFO:event=``, ``[app]event=``): glued to its prefix, if it has one.
_GLUED_KEY: Final = rf"^[^=]*[\]:]{_FIRST_KEY}"
#: The built-in legacy reader's tags (legacy.toml's ``tags``; a test keeps them equal): a line
#: holding one is a legacy line. Here so that detection does not load the TOML file.
LEGACY_TAGS: Final = (
    "CTRL",
    "REST",
    "REST-SEND",
    "REST-FETCH",
    "REPO",
    "WS-BROADCAST",
    "WS-RECV",
    "WS",
)
_LEGACY_TAG: Final = r"\[(?:" + "|".join(map(re.escape, LEGACY_TAGS)) + r")\]"


_LEGACY_TAG_RE: Final = re.compile(_LEGACY_TAG)


#: A text before a line's first tag whose last ``=`` may open a value that runs on into the
#: tag: a bare word up to the text's end (``id=[REST]``), or a quoted string or list
#: (``event='...``). Only such a line can hold its tags in pairs' values; ``pid=7 [REST]``
#: cannot. A superset (any ``=``, not only a pair's): the pair scan decides.
OPEN_VALUE: Final = r"""=(?:\S*$|['"\[])"""
_OPEN_VALUE_RE: Final = re.compile(OPEN_VALUE)


def _glued(text: pl.Expr) -> pl.Expr:
    """Whether ``text`` is a key=value line whose first pair is glued to its prefix: two DFA
    searches (:data:`_GLUED_KEY`, :data:`KV_LINE`), no captures."""
    return text.str.contains(_GLUED_KEY) & text.str.contains(KV_LINE)


def spaced(text: pl.Expr) -> pl.Expr:
    """``text`` (a line) with a space between a known prefix and its first pair where they
    are glued (:data:`KV_LINE`; ``INFO:event='[REST] ...'``), so that pair reads as a pair, as
    in the stage test (review 7f): one character more, right after the prefix. The replace
    (captures, ~0.7 us a line) runs on the glued lines only."""
    glued = pl.when(_glued(text)).then(text)
    return pl.coalesce(glued.str.replace(_GLUED, "${1} ${2}"), text)


def tag_outside_pairs(text: pl.Expr) -> pl.Expr:
    """Whether ``text`` (a line) holds a legacy tag outside its ``key=value`` pairs' values.

    The pairs are cut out only of the lines that hold a tag at all (a null elsewhere: polars
    skips it), so a log without tags costs one DFA search. A pair glued to its prefix is a
    pair (:func:`spaced`, review 8); a tag in the prefix stays outside."""
    tagged = pl.when(text.str.contains(_LEGACY_TAG)).then(text)
    return spaced(tagged).str.replace_all(_PAIR, " ").str.contains(_LEGACY_TAG).fill_null(False)


def stage_pair_line(text: pl.Expr) -> pl.Expr:
    """Whether ``text`` (a line) reads as pairs from its start or behind a known prefix
    (:data:`KV_LINE`) with a ``stage=`` pair among them, whatever tags it holds (a legacy
    line the legacy reader makes no event of is then the kv reader's).

    The line's pairs, read left to right (``_PAIR``: a quoted or list value taken whole, so a
    ``stage=`` a value quotes is text, review 7e), a pair glued to its prefix included
    (:func:`spaced`, review 7f); one of them is ``stage=`` with a value, bare, quoted or a list
    (structlog writes ``stage='REST'``, review 8). The prefix holds no ``=``: no pair starts
    in it. ``extract_all`` needs only where the pairs are (a DFA search), not their groups: a
    third of the time of cutting the values out with a capturing replace."""
    mine = pl.when(text.str.contains("stage=", literal=True) & text.str.contains(KV_LINE))
    pairs = spaced(mine.then(text)).str.extract_all(_PAIR)
    return pairs.list.eval(pl.element().str.contains(_STAGE)).list.any().fill_null(False)


def _ask_polars(
    lines: list[str], ask: list[int], rule: Callable[[pl.Expr], pl.Expr], flags: list[bool]
) -> list[bool]:
    """``flags`` with ``rule`` (a line -> bool expression) decided for ``lines[i]``, i in
    ``ask``, in one polars call: the pair patterns run in Rust's regex engine (linear time),
    never Python's ``re``."""
    if ask:
        text = pl.Series("raw", [lines[i] for i in ask], dtype=pl.String)
        found = pl.DataFrame([text]).select(rule(pl.col("raw"))).to_series()
        for i, hit in zip(ask, found.to_list(), strict=True):
            flags[i] = bool(hit)
    return flags


def stage_pair_lines(lines: list[str]) -> list[bool]:
    """Whether each of ``lines`` (detection's sample) has a ``stage=`` pair: the rule of
    :func:`kv_event_line` and the kv reader, in one polars call for the lines that hold a
    ``stage=`` at all (``_PAIR`` runs in Rust's regex engine only, never Python's ``re``)."""
    flags = [False] * len(lines)
    ask = [i for i, line in enumerate(lines) if "stage=" in line]
    return _ask_polars(lines, ask, stage_pair_line, flags)


def legacy_line(text: pl.Expr) -> pl.Expr:
    """Whether ``text`` (a line) is a legacy line: it holds a legacy tag, unless all its tags
    sit inside its ``key=value`` pairs' values AND it is a key=value event (a ``stage=`` pair,
    :func:`kv_event_line`). One rule for detection, for the lines of a detected file rerouted
    to another reader, and for the kv and legacy readers: a kv event quoting a tag
    (``event='[REST] ...'``) is the kv reader's; legacy text an app writes through a logfmt or
    KeyValueRenderer handler (``msg="[REST] Sending message: ..."``, no ``stage=``) is a
    legacy line, never a kv line ignored without a word.

    Only a line with a ``=`` before its first tag can hold that tag in a pair's value: the
    others are legacy lines without the pair scan (one DFA search)."""
    tagged = text.str.contains(_LEGACY_TAG)
    plain = text.str.contains(rf"^[^=]*{_LEGACY_TAG}")  # no "=" before the first tag
    suspect = pl.when(tagged & ~plain).then(text)
    # both pair scans on the suspects only: elsewhere ``tagged`` or ``plain`` decides
    outside = tag_outside_pairs(suspect) | ~stage_pair_line(suspect)
    return (tagged & (plain | outside)).fill_null(False)


def before_legacy_tag(text: pl.Expr, tag: str) -> pl.Expr:
    """The text of a line before its first tag outside its pairs' values, for lines that hold
    one (:func:`tag_outside_pairs`; null or any text elsewhere). ``tag``: the legacy format's
    tag regex, without capture groups.

    One left-to-right scan that takes a pair whole wherever one starts, else one character,
    and stops at the first tag it meets (a lazy repeat: Rust's regex engine keeps a
    backtracking engine's priorities), so a tag a value quotes is never where the line's tag
    is. It scans the line :func:`spaced` (a pair glued to its prefix is a pair, review 8),
    then counts the characters it took on the line as written. For the few lines a caller
    suspects (a ``=`` before their first tag)."""
    took = spaced(text).str.extract(rf"^((?:{_PAIR}|.)*?){tag}", 1).str.len_chars()
    glue = pl.when(_glued(text)).then(text).str.extract(_GLUED, 1).str.len_chars()
    n = pl.when(glue.is_not_null() & (took > glue)).then(took - 1).otherwise(took)
    return pl.when(n.is_not_null()).then(text.str.slice(0, n))


#: A text whose last pair's value is a quoted string left open: the pairs before it taken
#: whole (a lazy repeat, as in :func:`before_legacy_tag`), then ``key=`` and the opening quote
#: (group 2: ``"``, group 3: ``'``; group 1 is ``_PAIR``'s) with no closing one after it.
_OPEN_STRING: Final = (
    rf"^(?:{_PAIR}|.)*?(?:^|\s)[A-Za-z_][\w.@-]*="
    r"""(?:(")(?:[^"\\]|\\.)*|(')(?:[^'\\]|\\.)*)$"""
)


def open_quote(text: pl.Expr) -> pl.Expr:
    """The quote (``"`` or ``'``) opening the value that ``text`` (a line up to its tag) leaves
    open, null when it leaves no quoted value open. For a few lines only (a tag inside a
    value); polars only, as every ``_PAIR`` pattern."""
    groups = spaced(text).str.extract_groups(_OPEN_STRING)  # one scan for both quotes
    return pl.coalesce(groups.struct.field("2"), groups.struct.field("3"))


def legacy_tagged_lines(lines: list[str]) -> list[bool]:
    """:func:`legacy_line` for each of ``lines`` (detection's sample). A line without a tag is
    none; one whose text before its first tag opens no value there (:data:`OPEN_VALUE`: no
    ``=`` at all, most legacy lines) holds that tag outside its pairs and is one, without the
    pair scan. The others go to polars in one call: ``_PAIR`` is for Rust's regex engine
    (linear time), never Python's ``re`` (exponential on a list without its ``]``)."""
    flags: list[bool] = []
    ask: list[int] = []
    for i, line in enumerate(lines):
        m = _LEGACY_TAG_RE.search(line)
        flags.append(m is not None)
        if m is not None and _OPEN_VALUE_RE.search(line, 0, m.start()) is not None:
            ask.append(i)
    return _ask_polars(lines, ask, legacy_line, flags)


def legacy_tagged(line: str) -> bool:
    """:func:`legacy_line` for one line (:func:`legacy_tagged_lines`)."""
    return legacy_tagged_lines([line])[0]


def kv_event_line(text: pl.Expr) -> pl.Expr:
    """Whether ``text`` (a line) reads as a key=value event: a ``stage=`` pair among the pairs
    from its start or behind a known prefix (:data:`KV_LINE`), and no legacy line
    (:func:`legacy_line`: a legacy line is the legacy reader's, whatever words it holds)."""
    return stage_pair_line(text) & ~tag_outside_pairs(text)


#: The ISO-8601 time a prefix starts a line with (a logging ``asctime``, a container
#: runtime's): an event's time when it has no ``timestamp``/``ts``/``time`` pair.
_PREFIX_TIME: Final = (
    r"^[ \t]*\[?([0-9]{4}-[0-9]{2}-[0-9]{2}[T ][0-9]{2}:[0-9]{2}:[0-9]{2}(?:[.,][0-9]+)?"
    r"(?:Z|[+-][0-9]{2}(?::?[0-9]{2})?)?)[\] \t]"
)
_STRING_RE: Final = re.compile(_STRING, re.DOTALL)
_LIST_RE: Final = re.compile(
    rf"\[\s*(?:(?:{_STRING})\s*,\s*)*(?:(?:{_STRING})\s*,?\s*)?\]", re.DOTALL
)
_ESCAPE_RE: Final = re.compile(
    r"\\(?:u([dD][89abAB][0-9a-fA-F]{2})\\u([dD][c-fC-F][0-9a-fA-F]{2})"  # a surrogate pair
    r"|x([0-9a-fA-F]{2})|u([0-9a-fA-F]{4})|U([0-9a-fA-F]{8})|([0-7]{1,3})|N\{([^}]*)\}|(.))",
    re.DOTALL,
)
_SIMPLE_ESCAPES: Final = {
    "\\": "\\",
    "'": "'",
    '"': '"',
    "n": "\n",
    "t": "\t",
    "r": "\r",
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "v": "\v",
}


def _escape(m: re.Match[str]) -> str:
    """One escape sequence -> its character; one that stands for none stays as written."""
    high, low, hex2, hex4, hex8, octal, name, char = m.groups()
    if char is not None:
        return _SIMPLE_ESCAPES.get(char, m.group(0))  # unknown escapes keep the backslash
    if high is not None:
        return chr(0x10000 + ((int(high, 16) - 0xD800) << 10) + (int(low, 16) - 0xDC00))
    if name is not None:
        try:
            return unicodedata.lookup(name)
        except KeyError:
            return m.group(0)
    code = int(octal, 8) if octal is not None else int(hex2 or hex4 or hex8, 16)
    if code > 0x10FFFF or 0xD800 <= code <= 0xDFFF:  # not a character: polars holds UTF-8
        return m.group(0)
    return chr(code)


def _decode_string(token: str) -> str:
    """``'it\\'s'`` -> ``it's``; a token that is not one whole quoted string stays as written."""
    if _STRING_RE.fullmatch(token) is None:
        return token
    return _ESCAPE_RE.sub(_escape, token[1:-1])


def _decode(token: str) -> str:
    """A quoted value or list repr with a backslash (or a list with double quotes) -> its text;
    lists become JSON, as :func:`_unquote` makes them. Never raises: falls back to the token."""
    try:
        if not token.startswith("["):
            return _decode_string(token)
        if _LIST_RE.fullmatch(token) is None:  # not a list of strings: the vectorised rewrite
            return token.replace("'", '"')
        items = [_decode_string(m.group(0)) for m in _STRING_RE.finditer(token)]
        return json.dumps(items, ensure_ascii=False)
    except Exception:
        return token


def _decode_listed(token: str) -> str:
    """:func:`_decode` for ``recipients``: a quoted list repr (logfmt quotes what
    KeyValueRenderer leaves bare: ``recipients="['u1', 'u2']"``) is a list too."""
    text = _decode(token)
    if token[:1] in ("'", '"') and text.startswith("["):
        return _decode(text)
    return text


def _quoted(v: pl.Expr) -> pl.Expr:
    both = (v.str.starts_with('"') & v.str.ends_with('"')) | (
        v.str.starts_with("'") & v.str.ends_with("'")
    )
    return both & (v.str.len_chars() >= 2)


def _unquote(v: pl.Expr, *, listed: bool = False) -> pl.Expr:
    """The vectorised decoding, exact for values without a backslash (see :func:`_slow`).
    ``listed``: a quoted list repr is a list (``recipients`` as logfmt writes it)."""
    inner = v.str.slice(1, v.str.len_chars() - 2)
    quoted_list = (_quoted(v) & inner.str.starts_with("[")) if listed else pl.lit(False)
    return (
        pl.when(v.is_in(["None", "null", ""]))
        .then(None)
        .when(quoted_list)
        .then(inner.str.replace_all("'", '"'))
        .when(_quoted(v))
        .then(inner)
        .when(v.str.starts_with("["))
        .then(v.str.replace_all("'", '"'))  # a Python list repr of strings -> JSON
        .otherwise(v)
    )


def _slow(v: pl.Expr) -> pl.Expr:
    """The values :func:`_unquote` cannot decode: quoted or listed ones with escapes in them,
    and lists with double-quoted items (Python's repr of a string holding ``'``)."""
    escaped = v.str.contains("\\", literal=True)
    is_list = v.str.starts_with("[")
    return (
        (escaped & (_quoted(v) | is_list)) | (is_list & v.str.contains('"', literal=True))
    ).fill_null(False)


def _decode_slow(tokens: pl.DataFrame, raw: pl.DataFrame) -> pl.DataFrame:
    """``raw`` with the values :func:`_slow` picks out of ``tokens`` decoded one by one."""
    masks = tokens.select(_slow(pl.col(c)).alias(c) for c in RAW_COLUMNS)
    for c in RAW_COLUMNS:
        mask = masks.get_column(c)
        if not mask.any():
            continue
        idx = mask.arg_true()
        decode = _decode_listed if c == "recipients" else _decode
        fixed = pl.Series([decode(t) for t in tokens.get_column(c).gather(idx)], dtype=pl.String)
        raw = raw.with_columns(raw.get_column(c).clone().scatter(idx, fixed))
    return raw


def _pairs(df: pl.DataFrame) -> pl.DataFrame:
    """``line`` and one String column per raw key: its value token as written (quotes kept),
    the first one on the line; null where the line has no such key. ``timestamp`` is the
    first of its aliases the line has; ``_ts_<alias>`` each of them (see :func:`_fall_back`).

    The lines are cut into their pairs by one left-to-right regex scan (see ``_PAIR``); a key
    is only ever looked up among those pairs, never searched for in the text."""
    names = [n for key in RAW_COLUMNS for n in _ALIASES.get(key, (key,))]
    rows = df.select(pl.col("raw"), pl.int_range(pl.len(), dtype=pl.UInt32).alias("_row"))
    # One regex over one column runs on one core: slices in a lazy concat run on all of them.
    step = max(50_000, -(-rows.height // 4))
    scans = [
        rows.slice(i, step)
        .lazy()
        .select("_row", pl.col("raw").str.extract_all(_PAIR).alias("_pair"))
        .explode("_pair")
        .select(
            "_row",
            pl.col("_pair").str.splitn("=", 2).struct.rename_fields(["_key", "_value"]),
        )
        .unnest("_pair")
        .with_columns(pl.col("_key").str.strip_chars_start())
        .filter(pl.col("_key").is_in(names))
        for i in range(0, max(rows.height, 1), step)
    ]
    pairs = pl.concat(scans).collect()
    empty = pl.repeat(None, df.height, dtype=pl.String, eager=True)
    columns: dict[str, pl.Series] = {}
    for (name, *_), part in pairs.partition_by("_key", as_dict=True).items():
        at = part.get_column("_row")  # ascending: the partition keeps the line order
        if (at.diff() == 0).any():  # a key given twice on a line: the first one counts
            part = part.filter(at.is_first_distinct())
        values = part.get_column("_value")
        columns[str(name)] = empty.clone().scatter(part.get_column("_row"), values)
    out = df.select("line").with_columns(columns.get(n, empty).alias(n) for n in names)
    return out.select(
        "line",
        *(pl.coalesce(_ALIASES.get(key, (key,))).alias(key) for key in RAW_COLUMNS),
        *(pl.col(n).alias(f"_ts_{n}") for n in _ALIASES["timestamp"]),
    )


def _after_prefix(raw: pl.Series) -> pl.Series:
    """The key=value lines ``raw`` from their first pair on (:data:`KV_LINE`'s prefix cut).

    The prefix holds no ``word=`` (its words end at a space, ``:`` or ``]``), so the first pair
    starts at the first ``word=`` match: a DFA search (``str.find``, no captures; extracting
    the prefix group cost ~2 us a line). ``find`` gives bytes and ``slice`` counts characters:
    a line with a non-ASCII prefix takes the prefix group's length instead."""
    pos = raw.str.find(_FIRST_KEY)
    if not (pos > 0).any():
        return raw
    cut = raw.str.slice(pos)
    odd = (pos > 0) & (raw.str.slice(0, pos).str.len_bytes() != pos)
    if odd.any():
        idx = odd.arg_true()
        part = raw.gather(idx)
        cut = cut.scatter(idx, part.str.slice(part.str.extract(KV_LINE, 1).str.len_chars()))
    return cut


def read_kv(
    data: bytes,
    *,
    file: str,
    source: str,
    stats: InputStats,
    timezone: str | None = None,
    judged: bool = False,
) -> pl.DataFrame:
    """``judged``: none of the lines is a legacy line, the caller has decided (the lines of a
    kv file it did not give the legacy reader, or key=value events the legacy reader made no
    event of, ``read_text``'s ``unread_kv``, whatever tags they hold): the rule is not run
    again (for a KeyValueRenderer log quoting a tag on every line, half of the reading)."""
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
    # pairs from the line's start, or from where a known prefix ends (KV_PREFIX: a logging
    # "<asctime> <level> <logger>:", a container runtime's "<time> stdout F")
    # A legacy line (a legacy tag outside the pairs' values) is no kv event, whatever pairs it
    # holds: collect() gives such lines of a detected kv file to the legacy reader; here (kv
    # forced) they are malformed, never a kv line without a stage.
    legacy = pl.lit(False) if judged else legacy_line(pl.col("raw"))
    # lazy: the rule's repeated sub-expressions computed once (an eager frame runs them again)
    df = df.lazy().with_columns(legacy.alias("_legacy")).collect()
    is_kv = pl.col("raw").str.contains(KV_LINE) & ~pl.col("_legacy")
    bad = df.filter(~is_kv)
    if bad.height:
        reason = (
            pl.when(pl.col("_legacy"))
            .then(pl.lit("a legacy tagged line, not key=value text"))
            .otherwise(pl.lit("not key=value text"))
        )
        stats.malformed_frame(file, bad.select("line", reason.alias("reason")))
        df = df.filter(is_kv)
    df = df.drop("_legacy")
    if df.height == 0:
        return empty_table()
    body = _after_prefix(df.get_column("raw"))
    tokens = _pairs(df.select("line", body))
    raw = tokens.select(
        "line", *(_unquote(pl.col(c), listed=c == "recipients").alias(c) for c in RAW_COLUMNS)
    )
    if "\\" in text or ("[" in text and '"' in text):  # escapes, or lists that need Python
        raw = _decode_slow(tokens, raw)
    raw = _fall_back(raw, tokens, df.get_column("raw"), body, timezone)
    if raw.get_column("timestamp").null_count():
        # no timestamp pair: the time a prefix starts the line with, if any
        prefix = df.get_column("raw").str.extract(_PREFIX_TIME, 1).str.replace(",", ".")
        raw = raw.with_columns(pl.coalesce(pl.col("timestamp"), prefix).alias("timestamp"))
    return normalize(raw, file=file, source=source, stats=stats, timezone=timezone)


def _fall_back(
    raw: pl.DataFrame,
    tokens: pl.DataFrame,
    lines: pl.Series,
    body: pl.Series,
    timezone: str | None,
) -> pl.DataFrame:
    """``raw`` with each ``timestamp`` that does not parse replaced by the first of the line's
    other times that does: its ``timestamp``/``ts``/``time`` pairs in that order, then the time
    its prefix starts with. A ``time=15ms`` (a duration) is no reason to lose an event whose
    prefix has its time; with nothing that parses, the first pair stays (malformed, named).

    Coalesced after parsing, only where there is another time to fall back on (a second pair,
    a prefix): tracekit's own format is checked first (cheap), the general parser runs on the
    few rows left."""
    ts = raw.get_column("timestamp")
    names = _ALIASES["timestamp"]
    pairs = tokens.select(_unquote(pl.col(f"_ts_{n}")).alias(n) for n in names)
    several = pairs.select(pl.sum_horizontal(pl.all().is_not_null()) > 1).to_series()
    prefixed = body.str.len_bytes() < lines.str.len_bytes()
    maybe = ts.is_not_null() & (several | prefixed)
    if not maybe.any():
        return raw
    idx = maybe.arg_true()
    first = ts.gather(idx)
    idx = idx.filter(pl.select(fast_iso_utc(pl.lit(first)).is_null()).to_series())
    if not idx.len():
        return raw
    idx = idx.filter(parse_timestamps(ts.gather(idx), timezone).values.is_null())
    if not idx.len():
        return raw
    candidates = [pairs.get_column(n).gather(idx) for n in names]
    candidates.append(lines.gather(idx).str.extract(_PREFIX_TIME, 1).str.replace(",", "."))
    chosen = pl.Series("timestamp", [None] * idx.len(), dtype=pl.String)
    for c in candidates:
        parses = parse_timestamps(c, timezone).values.is_not_null()
        chosen = chosen.fill_null(pl.select(pl.when(pl.lit(parses)).then(pl.lit(c))).to_series())
    fixed = chosen.fill_null(ts.gather(idx))
    return raw.with_columns(ts.clone().scatter(idx, fixed))
