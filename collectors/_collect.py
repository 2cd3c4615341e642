"""collect(): inputs -> one event table plus the account of what was read."""

from __future__ import annotations

import functools
import hashlib
import io
import os
import re
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import orjson
import polars as pl

from tracekit.collectors._kv import (
    KV_LINE,
    LEGACY_TAGS,
    kv_event_line,
    legacy_line,
    legacy_tagged_lines,
    stage_pair_lines,
)
from tracekit.collectors._link import link
from tracekit.collectors._normalize import empty_table
from tracekit.collectors._sources import Source, expand_paths
from tracekit.collectors._stats import MAX_EXAMPLES, MAX_LINES_KEPT, InputStats
from tracekit.errors import InputError, SchemaError
from tracekit.table import EVENT_SCHEMA, compact

__all__ = ["BUILTIN_FORMATS", "Collected", "collect", "detect_format"]

#: Bump when the table a reader produces changes, so old cache entries are not reused.
#: 2: `event` is text, not Categorical; 3: review 7's reading of mixed kv/legacy files (a
#: cached file read before would keep its old rows: kv events read as legacy lines); 4: review
#: 7c's legacy-line rule (a quoted tag is text only in a kv event: a logfmt ``msg="[REST] ..."``
#: line is a legacy line), formats=[...] limiting rerouting, and a kv event holding JSON text no
#: longer warned about (a file cached before kept its old rows: 0 events where 1 is read now);
#: 5: a ``stage=`` inside a quoted or list value is no stage pair (review 7e: such legacy lines
#: were ignored, now read); 6: kv lines whose first pair is glued to the prefix
#: (``INFO:stage=...``) detected as kv again (version 5 read them as ignored legacy lines);
#: 7: review 8 (JSON objects among text lines read only when formats=[...] allows jsonl; a
#: kv event with a tag outside its values that the legacy reader ignores is the kv reader's;
#: a legacy line read from a quoted value: its event text ends where the value does; the
#: detection sample judged up to its last line end; a non-UTF-8 file's lines judged by the
#: line rules as its readers decode them); 8: structlog's ``stage='REST'`` a stage pair, a
#: pair glued to its prefix a pair for the tag test; 9: in a kv file, a kv event the legacy
#: reader gives back is read by the kv reader, and a long first line behind blank lines is
#: judged whole by detection (review 8b); 10: the legacy reader's tag and quoted-text scans
#: read a pair glued to its prefix as a pair (review 8b); 11: a kv file's rerouting warning
#: counts the kv events given back, in one warning (review 8c); 12: the table's
#: ``duration_ms`` column (session 16); 13: names read by their JSON type, recipients naming
#: nobody left empty, a negative seq left empty, malformed lines' numbers kept (session 19).
_CACHE_VERSION: Final = 13
BUILTIN_FORMATS: Final = ("jsonl", "kv", "legacy", "otlp")
_KV_KEYS: Final = re.compile(rb"(?:^|\s)(?:stage|event|action)=")
_KV_ACTION: Final = re.compile(rb"(?:^|\s)action=[^\s=]")
#: File signatures of things found next to logs that are never logs (databases, executables,
#: core dumps, images, archives): binary whatever text they contain.
_BINARY_MAGIC: Final = (
    b"SQLite format 3\x00",
    b"\x7fELF",
    b"\x89PNG",
    b"\xff\xd8\xff",
    b"GIF8",
    b"%PDF-",
    b"PK\x03\x04",
)
#: Literal markers of a trace event (a JSON ``"stage"`` key, a ``stage=`` pair, a legacy tag),
#: found with ``bytes.find`` (memchr speed; a regex alternation starting with ``(?:^|\s)`` ran at
#: ~40 ns a byte, 40 s per GB of core dump), each hit then checked by :data:`_EVENT_AT`.
_EVENT_MARKERS: Final = (b"stage", b"[CTRL]", b"[RE", b"[WS-")
#: A trace event's legacy tag (``[WS]`` lines are the socket's own chatter, not trace events).
_TAG_AT: Final = re.compile(
    rb"\[(?:" + b"|".join(re.escape(t.encode()) for t in LEGACY_TAGS if t != "WS") + rb")\]"
)
_COLON_AT: Final = re.compile(rb"\s*:")
#: How far into a garbled file a clean text line is looked for (events are looked for in the
#: whole file): a log behind more garbage than this is read from its first trace event.
_CLEAN_SEARCH: Final = 16 << 20
#: The bytes format detection looks at (cut at their last line end, :func:`_whole_lines`).
_SAMPLE: Final = 65536
#: After a clean text line, the bytes looked at to tell a log from text inside a binary file.
_READABLE_WINDOW: Final = 65536
_BLANK_LINE: Final = re.compile(rb"(?m)^[ \t\r\f\v]*$")
_NOT_BLANK: Final = re.compile(rb"[^ \t\n\r\f\v]")
_LEGACY_TAG: Final = re.compile(
    rb"\[(?:" + b"|".join(re.escape(t.encode()) for t in LEGACY_TAGS) + rb")\]"
)
_KV_LINE: Final = re.compile(KV_LINE)
#: What may stand before a JSON object on a text line for the object to be read as JSON:
#: nothing, or a container runtime's prefix (CRI: containerd, CRI-O, kubelet's /var/log/pods).
#: A Rust regex (polars): the object starts at the line's first '{"', so the prefix's time
#: holds none.
_JSON_PREFIX: Final = (
    r'[ \t]*(?:[0-9]{4}-[0-9]{2}-[0-9]{2}T(?:[^ {]|\{+[^ {"])*\{* (?:stdout|stderr) F [ \t]*)?'
)
#: A JSON-object line in two halves, each anchored at one end: one regex anchored at both ends
#: ('^...{".*}$') made the regex engine walk every byte of every line (0.6 s per 1M lines).
_OBJECT_START: Final = "^" + _JSON_PREFIX + r'\{"'
_OBJECT_END: Final = r"\}[ \t\r]*$"
_TEXTISH: Final = frozenset(b"\t\n\r\f\b\x1b") | frozenset(range(0x20, 0x100))
#: Candidates for a clean text line (then checked by :func:`_clean_line`): 16 bytes or more
#: between two line ends, none of them a control byte. A C-speed scan of a whole file.
_CLEAN_CANDIDATE: Final = re.compile(rb"(?m)^[^\x00-\x08\x0a-\x1f\x7f]{16,}\r?$")
#: Byte order marks of UTF-32/UTF-16 (UTF-32 LE first: it starts with UTF-16 LE's).
_UTF_BOMS: Final = (
    (b"\xff\xfe\x00\x00", "utf-32-le", "UTF-32 LE"),
    (b"\x00\x00\xfe\xff", "utf-32-be", "UTF-32 BE"),
    (b"\xff\xfe", "utf-16-le", "UTF-16 LE"),
    (b"\xfe\xff", "utf-16-be", "UTF-16 BE"),
)

FormatSpec = Any  # a builtin name, a path to a TOML format file, or a loaded TextFormat


@dataclass
class Collected:
    """What :func:`collect` returns: the event table (lazy, EVENT_SCHEMA, or the ``columns``
    asked for) and the account."""

    events: pl.LazyFrame
    inputs: InputStats


def _clean_line(line: bytes) -> bool:
    try:
        text = line.decode("utf-8").replace("\t", " ").rstrip("\r")
    except UnicodeDecodeError:
        return False
    return len(text) >= 16 and text.isprintable()


def _utf_text(sample: bytes, codec: str) -> bool:
    """Whether ``sample`` (after a byte order mark) reads as a log in ``codec``: at least half
    of its characters ASCII (times, keys, tags; random code units are nearly never ASCII)."""
    text = sample.decode(codec, errors="replace")
    return sum(1 for c in text if c < "\x80") * 2 >= len(text)


def _garbled(head: bytes) -> bool:
    """The file starts like no log: a database/executable/image/archive signature, or mostly
    control bytes or invalid UTF-8 in its first 4 KiB. It is still read as a log when a line
    further in reads as one (:func:`_first_readable`)."""
    head = head[:4096]
    if not head:
        return False
    if head.startswith(_BINARY_MAGIC):
        return True
    control = sum(1 for b in head if b not in _TEXTISH)
    invalid = head.decode("utf-8", errors="replace").count("\ufffd")
    return control > len(head) * 0.1 or invalid > len(head) * 0.1


def _event_at(data: bytes, at: int, marker: bytes) -> bool:
    """Whether the ``marker`` found at ``at`` starts a trace event's ``"stage":`` key, a
    ``stage=`` pair (after a space or a line start) or a legacy tag."""
    if marker != b"stage":
        return _TAG_AT.match(data, at) is not None
    before = data[at - 1 : at] if at else b"\n"
    after = data[at + 5 : at + 6]
    if after == b"=":
        return before.isspace()
    return before == after == b'"' and _COLON_AT.match(data, at + 6) is not None


def _first_event(data: bytes) -> int | None:
    """Offset of the first trace event marker in ``data`` (:data:`_EVENT_MARKERS`)."""
    best = len(data)
    for marker in _EVENT_MARKERS:
        end = best + len(marker) - 1  # a hit before the best one so far
        at = data.find(marker, 0, end)
        while at >= 0 and not _event_at(data, at, marker):
            at = data.find(marker, at + 1, end)
        if at >= 0:
            best = at
    return best if best < len(data) else None


def _readable_from(data: bytes, start: int) -> bool:
    """Whether the text from ``start`` (a clean line) reads as a log rather than text inside a
    binary file: at least 3 clean lines (:func:`_clean_line`) in the next
    :data:`_READABLE_WINDOW` bytes, and readable lines at least half of that window's bytes."""
    window = data[start : start + _READABLE_WINDOW]
    lines = window.split(b"\n")
    if start + _READABLE_WINDOW < len(data):
        lines.pop()  # cut off by the window
    clean = readable = total = 0
    for ln in lines:
        total += len(ln) + 1
        if not ln.strip():
            readable += len(ln) + 1
            continue
        if _clean_line(ln):
            clean += 1
            readable += len(ln) + 1
        elif _readable_line(ln):
            readable += len(ln) + 1
    return clean >= 3 and readable * 2 >= total


def _readable_line(line: bytes) -> bool:
    try:
        return line.decode("utf-8").replace("\t", " ").rstrip("\r").isprintable()
    except UnicodeDecodeError:
        return False


def _first_readable(data: bytes) -> int | None:
    """Offset of the first line of ``data`` (a garbled file, :func:`_garbled`) that reads as
    a log line, or None when none does (binary, not a log).

    A trace event showing through (a JSON ``"stage"`` key, a ``stage=`` pair, a legacy tag),
    searched in the whole file: a log after any amount of garbage is read, its valid lines
    are never thrown away with the garbage. In a file with no binary signature, also a clean
    text line in its first :data:`_CLEAN_SEARCH` bytes that a log follows
    (:func:`_readable_from`: more clean lines, readable text half the bytes); one clean line
    inside a binary file (a minidump, a journal) is no log."""
    found: list[int] = []
    event = _first_event(data)
    if event is not None:
        found.append(data.rfind(b"\n", 0, event) + 1)
    if not data.startswith(_BINARY_MAGIC):
        end = min(found[0] if found else len(data), _CLEAN_SEARCH)
        for m in _CLEAN_CANDIDATE.finditer(data, 0, end):
            if _clean_line(m.group(0)) and _readable_from(data, m.start()):
                found.append(m.start())
                break
    return min(found) if found else None


def _garbage_lines(data: bytes, end: int) -> tuple[bytes, list[int]]:
    """``data`` with its non-blank lines before offset ``end`` (a line start: the first line
    that reads as a log line, :func:`_first_readable`) made blank, and their numbers: the
    binary data ahead of the log. Line numbers stay true; the readers see blank lines there."""
    region = data[:end].split(b"\n")  # the last item is b"" (end is a line start)
    bad = [i + 1 for i, ln in enumerate(region[:-1]) if ln.strip()]
    if not bad:
        return data, bad
    return b"\n" * (len(region) - 1) + data[end:], bad


def _example_line(example: str) -> int:
    """The line number of a ``file:line: reason`` example (0 when it has none)."""
    m = _EXAMPLE_LINE.search(example)
    return int(m.group(1)) if m else 0


_EXAMPLE_LINE: Final = re.compile(r":(\d+): ")


class _FileStats(InputStats):
    """One input's account, merged into the whole account when the input is read: its
    examples are its first :data:`MAX_EXAMPLES` malformed lines by line number, whatever the
    order the readers found them in (parse errors are found before normalize's missing keys
    and bad timestamps, a mixed file's JSON lines apart from its text lines)."""

    def _keep(self, earlier: list[str], later: list[str]) -> None:
        self.examples = sorted(earlier + later, key=_example_line)[:MAX_EXAMPLES]

    def malformed_line(self, file: str, line: int, reason: str) -> None:
        self.malformed += 1
        self._keep_lines(file, [line])
        self._keep(self.examples, [f"{file}:{line}: {reason}"])

    def malformed_frame(self, file: str, bad: pl.DataFrame) -> None:
        self.malformed += bad.height
        if bad.height:
            self._keep_lines(file, bad.get_column("line").head(MAX_LINES_KEPT).to_list())
            rows = bad.select("line", "reason").sort("line", maintain_order=True)
            new = [f"{file}:{n}: {why}" for n, why in rows.head(MAX_EXAMPLES).iter_rows()]
            self._keep(self.examples, new)

    def merge(self, part: InputStats) -> None:
        mine, self.examples = self.examples, []
        super().merge(part)
        self._keep(mine, self.examples)


_OTLP_FIRST_KEY: Final = re.compile(rb'\s*\{\s*"resource(?:Spans|Logs)"\s*:')


def _otlp_export(sample: bytes, first_line: bytes) -> bool:
    """An OTLP/JSON export: the first JSON value has ``resourceSpans`` or ``resourceLogs`` at
    its top level (a line that only mentions the key, e.g. in a payload, is no export)."""
    if _OTLP_FIRST_KEY.match(sample):  # the key as the first one: also a cut-off or pretty value
        return True
    if b'"resourceSpans"' not in first_line and b'"resourceLogs"' not in first_line:
        return False
    try:
        obj = orjson.loads(first_line)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and ("resourceSpans" in obj or "resourceLogs" in obj)


def _whole_lines(head: bytes) -> bytes:
    """``head`` (the first bytes of more) up to its last line end: a sample cut in the middle
    of a line (inside a quoted value, a JSON object) is never judged; all of it when no line
    with text ends in it (one long line, maybe behind blank lines: review 8)."""
    end = head.rfind(b"\n")
    if end < 0 or _NOT_BLANK.search(head, 0, end) is None:
        return head
    return head[: end + 1]


def detect_format(data: bytes) -> str:
    """Guess a built-in format from the first non-blank lines (blank lines ahead of them, e.g.
    where a leading JSON block was blanked, are skipped whatever their number)."""
    first = _NOT_BLANK.search(data)
    if first is None:
        return "jsonl"
    start = data.rfind(b"\n", 0, first.start()) + 1
    sample = data[start : start + _SAMPLE]
    if start + _SAMPLE < len(data):  # cut: judged on whole lines only
        sample = _whole_lines(sample)
    lines = [ln for ln in sample.split(b"\n")[:200] if ln.strip()][:50]
    if not lines:
        return "jsonl"
    if _otlp_export(sample, lines[0]):
        return "otlp"
    if lines[0].strip() in (b"{", b"["):
        return "document"  # one pretty-printed JSON document: not a log
    # "[" alone is not enough: bracketed timestamps start many text logs.
    objects = sum(1 for ln in lines if ln.lstrip().startswith(b"{"))
    texts = [ln.decode("utf-8", errors="replace") for ln in lines]
    # legacy lines (_kv.legacy_line's rule, the readers' own): a pair scan only for the few
    # lines with a "=" before their first tag, in one polars call for the sample
    tagged = legacy_tagged_lines(texts)
    if objects * 2 >= len(lines):
        # legacy tagged lines among them: the legacy reader reads both kinds (mixed file)
        if objects < len(lines) and any(
            t for ln, t in zip(lines, tagged, strict=True) if not ln.lstrip().startswith(b"{")
        ):
            return "legacy"
        return "jsonl"
    # a stage= pair: one the kv reader reads, never a "stage=" inside a quoted or list value
    staged = stage_pair_lines(texts)
    kv = sum(
        1
        for ln, text, t, st in zip(lines, texts, tagged, staged, strict=True)
        if _kv_line(ln, text, t, st)
    )
    if kv * 2 >= len(lines):
        return "kv"
    return "legacy"


def _kv_line(line: bytes, text: str, tagged: bool, staged: bool) -> bool:
    """A logfmt/KeyValueRenderer line: pairs from its start, or an event's ``stage=`` and
    ``action=`` pairs from where a known prefix ends (``KV_PREFIX``: ``2026-... INFO app:``,
    ``<time> stdout F``); with or without a prefix, not a legacy line (``tagged``: a legacy
    tag, unless all its tags sit inside pairs' values and it is a ``stage=`` event). A
    ``stage=`` further in (an app's sentence, SQL) makes no kv line. ``text``: ``line`` decoded;
    ``staged``: it has a ``stage=`` pair (:func:`~tracekit.collectors._kv.stage_pair_lines`:
    not one inside a quoted or list value)."""
    m = _KV_LINE.match(text)  # \w as polars reads it
    if m is None or tagged:
        return False
    if not m.group(1).strip():
        return _KV_KEYS.search(line) is not None
    rest = line[len(m.group(1).encode()) :]
    return staged and _KV_ACTION.search(rest) is not None


def _text_lines(data: bytes) -> tuple[pl.Series, bool]:
    """``data``'s lines (blank ones as "", a CR before the LF dropped: as the text readers
    see them) and whether they were decoded as Latin-1.

    polars' CSV reader (one column, no quoting) splits them in parallel, as the text readers
    do. Input that is not valid UTF-8 is decoded as Latin-1 (one character per byte), so
    :func:`_joined` gives back the very bytes and the readers account for them as for the
    file; a file holding the unit separator is split by Python."""

    from tracekit.collectors._text import csv_lines

    def by_csv(blob: bytes) -> pl.Series | None:
        raw = csv_lines(blob)
        return None if raw is None else raw.fill_null("")

    raw = by_csv(data)
    if raw is not None:
        if not raw.str.contains("\ufffd", literal=True).any():
            return raw, False
        try:
            data.decode("utf-8")
            return raw, False  # a real U+FFFD
        except UnicodeDecodeError:
            pass
        raw = by_csv(data.decode("latin-1").encode("utf-8"))
        if raw is not None:
            return raw, True
    return _split_text(data.decode("latin-1")), True


def _split_text(text: str) -> pl.Series:
    """``text``'s lines split by Python (a CR before the LF dropped), where polars cannot."""
    split = text.split("\n")
    if text.endswith("\n"):
        split.pop()
    return pl.Series("raw", split, dtype=pl.String).str.strip_suffix("\r")


def _as_read(data: bytes, lines: pl.Series, latin1: bool) -> pl.Series:
    """``lines`` (:func:`_text_lines` of ``data``) as the readers see them, for the line
    rules (:func:`~tracekit.collectors._kv.legacy_line`, ``kv_event_line``): the same lines,
    or for a file read as Latin-1 (not UTF-8) its UTF-8 decoding with U+FFFD for the invalid
    bytes, as the readers decode it (:func:`~tracekit.collectors._text.csv_lines`). A Latin-1
    character is no stand-in there: byte 0xA0 is a no-break space in Latin-1 (whitespace to the
    pair patterns' ``\\s``) and U+FFFD to a reader, so a tag a bare value runs into was outside
    the value to one and inside it to the other.
    A second split, for non-UTF-8 files only."""
    if not latin1:
        return lines
    from tracekit.collectors._text import csv_lines

    seen = csv_lines(data)
    if seen is None:
        seen = _split_text(data.decode("utf-8", errors="replace"))
    seen = seen.fill_null("")
    return seen if seen.len() == lines.len() else lines


def _joined(lines: pl.Series, latin1: bool) -> bytes:
    """The bytes of ``lines``, one a line (what :func:`_text_lines` split)."""
    buf = io.BytesIO()
    pl.DataFrame([lines]).write_csv(buf, include_header=False, quote_style="never")
    out = buf.getvalue()
    return out.decode("utf-8").encode("latin-1") if latin1 else out


def _object_lines(lines: pl.Series) -> tuple[pl.Series, bool]:
    """Which lines are a JSON object, alone or behind a container runtime's prefix, and
    whether all of those are bare objects ('{"' first, '}' last). The regexes run only on the
    lines that are not bare objects."""
    bare = lines.str.starts_with('{"') & lines.str.ends_with("}")
    rest = (~bare).arg_true()
    if not rest.len():
        return bare, True
    others = lines.gather(rest)
    found = others.str.contains(_OBJECT_END) & others.str.contains(_OBJECT_START)
    return bare.scatter(rest, found), not found.any()


def _key_lines(lines: pl.DataFrame, key: str, *, kv: bool = True) -> pl.Series:
    """Numbers (column ``line``) of the rows of ``lines`` whose first ``key`` (a literal) is
    followed by a colon: a JSON key. ``kv=False``: not of key=value events
    (:func:`~tracekit.collectors._kv.kv_event_line`), which are read by the kv reader or
    counted in the unread key=value warning, never JSON events not read (review 7d)."""
    regex = re.escape(key) + r"([ \t\n\r\f\v]*:)?"
    raw = pl.col("raw")
    has = lines.filter(raw.str.contains(key, literal=True))
    found = has.filter(raw.str.extract(regex, 1).is_not_null())
    if not kv and found.height:
        found = found.filter(~kv_event_line(raw))
    return found.get_column("line")


def _numbered(lines: pl.Series) -> pl.DataFrame:
    return (
        pl.DataFrame([lines])
        .with_row_index("line", offset=1)
        .with_columns(pl.col("line").cast(pl.Int64))
    )


def _warn_unread(
    file: str, lines: pl.Series, frame: pl.DataFrame, why: str, stats: InputStats
) -> None:
    """Warn about lines that look like JSON events but are not events in ``frame``."""
    if not lines.len():
        return
    read = frame.get_column("line") if frame.height else pl.Series("line", [], pl.Int64)
    unread = lines.filter(~lines.is_in(read.implode()))
    if unread.len():
        stats.warn(
            f"{file}: {unread.len()} lines look like JSON events but were not read as such "
            f"(first: line {unread[0]}); {why}"
        )


_WHY_PREFIX: Final = (
    "a JSON event is read when it is the whole line or follows a container runtime's "
    "'<time> stdout F ' prefix"
)
_WHY_NO_JSONL: Final = "formats=[...] does not include jsonl"
_WHY_STRING: Final = "they hold the event as text inside a JSON string"
_WHY_KV: Final = (
    "a key=value event is read in a file read as kv (detected when most of its first lines are "
    "such events, or formats=['kv'])"
)


def _warn_unread_kv(
    file: str,
    lines: pl.DataFrame,
    frame: pl.DataFrame,
    fmt: Any,
    stats: InputStats,
    also: pl.Series | None = None,
) -> None:
    """Warn about the rows of ``lines`` (``line``, ``raw``) with a ``stage=`` pair that are
    not events in ``frame`` (read by ``fmt``, not the kv reader), and the lines ``also``
    numbers (key=value events the legacy reader gave back, the kv reader not allowed)."""
    if fmt == "kv" or getattr(fmt, "kind", "regex") == "json":
        return
    found = lines.filter(kv_event_line(pl.col("raw"))).get_column("line")
    if also is not None and also.len():
        found = pl.concat([found, also.cast(found.dtype)]).unique()
    if not found.len():
        return
    read = frame.get_column("line") if frame.height else pl.Series("line", [], pl.Int64)
    _warn_kv_lines(file, found.filter(~found.is_in(read.cast(found.dtype).implode())), stats)


def _warn_kv_lines(file: str, unread: pl.Series, stats: InputStats) -> None:
    if unread.len():
        stats.warn(
            f"{file}: {unread.len()} lines look like key=value events but were not read as "
            f"such (first: line {unread.sort()[0]}); {_WHY_KV}"
        )


def _docker_json(head: bytes) -> bool:
    """Docker's json-file driver: ``{"log": "<line>\\n", "stream": ..., "time": ...}``."""
    first = head.lstrip().split(b"\n", 1)[0]
    if not first.startswith(b'{"log":'):
        return False
    try:
        obj = orjson.loads(first)
    except orjson.JSONDecodeError:
        return False
    return isinstance(obj, dict) and isinstance(obj.get("log"), str) and "time" in obj


def _unwrap_docker(data: bytes) -> bytes:
    """Each line's ``log`` as a CRI line (``<time> <stream> F <log>``): the container
    runtime's prefix the readers know (a legacy line without a time takes Docker's; a JSON
    event behind it is read as JSON). Lines that are not such objects stay as they are, so
    line numbers and the account stay true. Docker cuts a line longer than 16 KiB into
    several entries and only the last one's ``log`` ends with a newline: the others become
    partial CRI records (``P``), joined as a CRI runtime's are
    (:func:`tracekit.collectors._text.join_partials`)."""
    from tracekit.collectors._text import csv_lines

    raw = csv_lines(data)
    if raw is None:
        text = data.decode("utf-8", errors="replace")
        raw = pl.Series("raw", text.split("\n"), dtype=pl.String)
        if text.endswith("\n"):
            raw = raw.head(-1)
    line = pl.col("raw").fill_null("").str.strip_suffix("\r")
    log = line.str.json_path_match("$.log")
    when = line.str.json_path_match("$.time")
    stream = line.str.json_path_match("$.stream").fill_null("stdout")
    text_ = log.str.strip_suffix("\n").str.replace_all("\n", " ", literal=True)
    tag = pl.when(log.str.ends_with("\n")).then(pl.lit(" F ")).otherwise(pl.lit(" P "))
    out = (
        pl.when(log.is_null())
        .then(line)
        .when(when.is_null())
        .then(text_)
        .otherwise(when + pl.lit(" ") + stream + tag + text_)
    )
    joined = pl.DataFrame([raw]).select(out.str.join("\n")).item()
    return str(joined).encode() + b"\n"


def _leading_value_end(data: bytes, start: int) -> int | None:
    """Byte offset just after the JSON value starting at ``start`` (after whitespace), or
    None when it is not a complete JSON value."""
    import json

    text = data.decode("utf-8", errors="surrogateescape")
    lead = len(data[:start].decode("utf-8", errors="surrogateescape"))
    try:
        _, end = json.JSONDecoder().raw_decode(text, lead)
    except ValueError:
        return None
    return len(text[:end].encode("utf-8", errors="surrogateescape"))


def _reader(name: str) -> Callable[..., pl.DataFrame]:
    """The reader of a built-in format other than jsonl (which _read_one calls directly)."""
    if name == "kv":
        from tracekit.collectors._kv import read_kv

        return read_kv
    if name == "legacy":
        from tracekit.collectors._text import read_legacy

        return read_legacy
    if name == "otlp":
        from tracekit.collectors._otlp import read_otlp_json

        return read_otlp_json
    raise InputError(f"unknown format {name!r} (known: {', '.join(BUILTIN_FORMATS)})")


def _resolve_formats(formats: Sequence[FormatSpec] | None) -> list[Any]:
    """Builtin names stay strings; anything else is a user format (loaded from TOML)."""
    if not formats:
        return []
    from tracekit.collectors._formats import TextFormat, load_format

    out: list[Any] = []
    for f in formats:
        if isinstance(f, TextFormat) or (isinstance(f, str) and f in BUILTIN_FORMATS):
            out.append(f)
        elif isinstance(f, str | os.PathLike):
            out.append(load_format(Path(f)))
        else:
            raise InputError(f"not a format: {f!r}")
    return out


def _choose(data: bytes, src: Source, formats: list[Any]) -> Any:
    if src.format is not None:
        return src.format if src.format in BUILTIN_FORMATS else _resolve_formats([src.format])[0]
    if len(formats) == 1:
        return formats[0]
    if len(data) >= _SAMPLE:  # a head taken from more (the first 64 KiB): whole lines only
        data = _whole_lines(data[:_SAMPLE])
    users = [f for f in formats if not isinstance(f, str)]
    for fmt in users:
        if fmt.matches(data):
            return fmt
    guess = detect_format(data)
    builtins = [f for f in formats if isinstance(f, str)]
    if builtins and guess not in builtins and guess != "document":
        return builtins[0]
    return guess


def _cache_key(sources: list[Source], options: dict[str, Any], formats: list[Any]) -> str | None:
    """``{inputs}-{state}``: the first half names the inputs, options and formats, the second
    adds the inputs' sizes and times. A new state of the same inputs replaces the old entry,
    so a cache over growing logs does not grow with every run."""
    idents: list[Any] = []
    names: list[Any] = []
    for src in sources:
        ident = src.identity()
        if ident is None:
            return None
        idents.append([src.name, list(ident)])
        names.append([src.name, ident[0]])
    fmt_ids = [f if isinstance(f, str) else f.identity() for f in formats]

    def digest(inputs: list[Any]) -> str:
        blob = orjson.dumps(
            {"v": _CACHE_VERSION, "inputs": inputs, "options": options, "formats": fmt_ids},
            default=str,
        )
        return hashlib.sha256(blob).hexdigest()[:16]

    return f"{digest(names)}-{digest(idents)}"


def collect(
    paths: Iterable[str | os.PathLike[str] | Source] | str | os.PathLike[str] | Source,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    timezone: str | None = None,
    formats: Sequence[FormatSpec] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    columns: Collection[str] | None = None,
) -> Collected:
    """Read every input into one event table (EVENT_SCHEMA, in input then line order).

    ``paths``: files, directories (recursive; ``include``/``exclude`` globs), ``-`` for stdin,
    or :class:`Source` objects. ``timezone`` is applied to timestamps without a zone (without
    it they are read as UTC and a warning says so). ``formats`` restricts or forces the parsers
    (``jsonl``, ``kv``, ``legacy``, ``otlp`` or a TOML format file). ``cache_dir`` keeps the
    table as Parquet keyed by the inputs' identity (path, size, mtime, device, inode,
    ctime). ``columns``: only these columns of the table (in its order), like polars'
    ``read_parquet(columns=...)``; every line is still read and checked, so the account is a
    full read's, but the other columns are never kept (the analyzers read
    ``tracekit.analyzers.INPUT_COLUMNS``: all but ``event`` and ``span_id``).

    Raises InputError when an input as a whole cannot be read; bad lines are only counted.
    """
    wanted = _projection(columns)
    if isinstance(paths, str | os.PathLike | Source):
        paths = [paths]
    notes: list[str] = []  # inputs skipped or read once, for the account
    sources = expand_paths(
        paths, include=include, exclude=exclude, cache_dir=cache_dir, warnings=notes
    )
    if timezone is not None:
        _check_timezone(timezone)
    fmts = _resolve_formats(formats)

    key = None
    cache_path: Path | None = None
    kept: tuple[str, ...] | None = None  # what the caller asked for, when more is read
    if cache_dir is not None:
        key = _cache_key(
            sources, {"include": include, "exclude": exclude, "timezone": timezone}, fmts
        )
        if key is not None:
            cache_path = Path(cache_dir)
            hit = _cache_read(cache_path, key, wanted)
            if hit is not None:
                for note in notes:
                    hit.inputs.warn(note)
                return hit
            # An entry of other columns: read theirs too, so two callers asking for different
            # columns do not replace each other's entry on every read. (A second look at the
            # entry's footer, on a miss only: the logs are read next.)
            held = () if wanted is None else _cache_columns(cache_path, key)
            if wanted is not None and held:
                kept = wanted
                wanted = tuple(c for c in EVENT_SCHEMA if c in held or c in kept)

    stats = InputStats()
    for note in notes:
        stats.warn(note)
    # Columns left out as soon as each input is read; linking still needs its own.
    unread = [] if wanted is None else [c for c in EVENT_SCHEMA if c not in {*wanted, *_LINKED}]
    frames: list[pl.DataFrame] = []
    for src in sources:
        part = _FileStats()
        frames.append(_read_one(src, fmts, timezone, part, unread).drop(unread, strict=False))
        stats.merge(part)
    frames = [f for f in frames if f.height]
    table = pl.concat(frames, how="diagonal") if frames else empty_table().drop(unread)
    # Readers return compact frames; linking may leave trace ids as text, hence the cast.
    table = compact(link(table, stats).lazy(), wanted).collect()
    if cache_path is not None and key is not None:
        _cache_write(cache_path, key, table, stats)
        if kept is not None:
            table = table.select(kept)
    return Collected(table.lazy(), stats)


#: The columns linking reads (see ``_link``), read whatever the caller asked for.
_LINKED: Final = frozenset(
    {"stage", "action", "trace_id", "msg_id", "actor", "source", "file", "line"}
)


def _projection(columns: Collection[str] | None) -> tuple[str, ...] | None:
    """``columns`` in the table's order (None: all of them); an unknown name is an error."""
    if columns is None:
        return None
    # one name, not its letters; any collection (a Series, an array) as a list of names
    columns = [columns] if isinstance(columns, str) else list(columns)
    if not columns:  # a frame of no columns has no rows either: the events would be lost
        raise SchemaError("columns: empty; name at least one column of the event table")
    # by their repr: a name that is no string (a number, None) is named, not compared
    unknown = sorted({c for c in columns if c not in EVENT_SCHEMA}, key=repr)
    if unknown:
        raise SchemaError(
            f"columns: {', '.join(map(repr, unknown))} not in the event table "
            f"({', '.join(EVENT_SCHEMA)})",
            key=str(unknown[0]),
        )
    return tuple(c for c in EVENT_SCHEMA if c in columns)


def _check_timezone(tz: str) -> None:
    from tracekit.collectors._time import known_zone

    if not known_zone(tz):
        raise InputError(f"unknown timezone {tz!r} (use an IANA name such as 'Europe/Berlin')")


def _read_one(
    src: Source,
    formats: list[Any],
    timezone: str | None,
    stats: InputStats,
    unread: Sequence[str] = (),
) -> pl.DataFrame:
    """One input -> its events; ``unread``: columns the caller drops (a reader that can
    leave them out does)."""
    raw = src.read()
    stats.files += 1
    stats.bytes += raw.raw_size
    for w in raw.warnings:
        stats.warn(w)
    if raw.head.startswith(b"\xef\xbb\xbf"):  # a UTF-8 byte order mark (Windows tools)
        raw.data = raw.load()[3:]
        raw.path = None
        raw.head = raw.data[:65536]
    for bom, codec, label in _UTF_BOMS:
        if raw.head.startswith(bom):
            # PowerShell 5's '>' and Out-File write UTF-16 LE: read as the UTF-8 it stands for
            data = raw.load()[len(bom) :]
            if not _utf_text(data[:8192], codec):
                continue  # binary data that happens to start like a byte order mark
            try:
                text, note = data.decode(codec), ""
            except UnicodeDecodeError:
                text = data.decode(codec, errors="replace")
                note = "; undecodable bytes were replaced by U+FFFD"
            raw.data = text.encode("utf-8", errors="replace")
            raw.path = None
            raw.head = raw.data[:65536]
            stats.warn(f"{src.name}: {label} text (byte order mark); decoded to UTF-8{note}")
            break
    if raw.head.startswith(b"\x00"):
        # logrotate copytruncate while the writer keeps its offset: a hole of NUL bytes (often
        # megabytes) before the first new line. Skipped (NUL bytes only, so every line keeps
        # its number) and the rest read as usual.
        data = raw.load()
        rest = data.lstrip(b"\x00")
        stats.warn(
            f"{src.name}: starts with {len(data) - len(rest)} NUL bytes (a hole left by log "
            "rotation, e.g. copytruncate); skipped them"
        )
        if not rest.split(b"\n", 1)[0].strip():  # the first line was NUL bytes only
            stats.ignored += 1
            stats.lines += 0 if rest else 1  # no newline after the run: that line is all
        raw.data = rest
        raw.path = None
        raw.head = rest[:65536]
    head = raw.head
    if (raw.raw_size == 0 or (len(head) < 65536 and not head.strip())) and (
        raw.data is None or not raw.data.strip()
    ):
        from tracekit.collectors._jsonl import count_lines

        stats.lines += count_lines(raw.load())
        stats.warn(f"{src.name}: empty, no events")
        return empty_table()
    if _garbled(head):
        data = raw.load()
        start = _first_readable(data)
        if start is None:
            from tracekit.collectors._jsonl import count_lines

            n_lines = count_lines(data)
            body = data[:-1] if data.endswith(b"\n") else data
            # counted without splitting: a core dump can be gigabytes
            blank = sum(1 for _ in _BLANK_LINE.finditer(body)) if body else 0
            nonblank = n_lines - blank
            # Not a log at all (a database, a core dump next to the logs): its "lines" are
            # ignored, not malformed; the warning says what was skipped.
            stats.lines += n_lines
            stats.ignored += nonblank
            stats.warn(
                f"{src.name}: binary data, not a log; skipped ({len(data)} bytes, {nonblank} lines)"
            )
            return empty_table()
        # Garbage ahead of log lines (a torn write, a binary blob pasted in): its lines are
        # malformed, made blank for the readers (line numbers stay), and the rest is read.
        rest, bad = _garbage_lines(data, start)
        if bad:
            stats.malformed_frame(
                src.name,
                pl.DataFrame(
                    {"line": bad, "reason": "binary data, not a log line"},
                    schema={"line": pl.Int64, "reason": pl.String},
                ),
            )
            stats.warn(
                f"{src.name}: {len(bad)} lines of binary data ahead of the log lines "
                f"(first: line {bad[0]}); counted as malformed, the lines after them read"
            )
            raw.data = rest
            raw.path = None
            raw.head = rest[:65536]
        start += len(rest) - len(data)  # blanked lines are shorter
        head = rest[start : start + 65536]  # the format is the log lines'
    if src.format is None and len(formats) != 1 and _docker_json(head):
        raw.data = _unwrap_docker(raw.load())
        raw.path = None
        head = raw.head = raw.data[:65536]
    fmt = _choose(head, src, formats)
    while fmt == "document":
        # A pretty-printed JSON value: the whole file (a document, skipped), or a block ahead
        # of the log lines (a config printed at startup): its lines are ignored, the rest read.
        data = raw.load()
        try:
            orjson.loads(data)
            end = None
        except orjson.JSONDecodeError:
            start = len(data) - len(data.lstrip())
            end = _leading_value_end(data, start)
        if end is None or not data[end:].strip():
            from tracekit.collectors._jsonl import count_lines

            n = count_lines(data)
            stats.lines += n
            stats.ignored += n - sum(1 for _ in _BLANK_LINE.finditer(data.removesuffix(b"\n")))
            stats.warn(f"{src.name}: a JSON document, not JSON lines nor an OTLP export; skipped")
            return empty_table()
        block = data[:end]
        first = data.count(b"\n", 0, start) + 1
        last = block.count(b"\n") + 1
        stats.ignored += sum(1 for ln in block.split(b"\n") if ln.strip())
        stats.warn(
            f"{src.name}: lines {first}-{last}: a pretty-printed JSON value ahead of the log "
            "lines; ignored"
        )
        raw.data = b"\n" * block.count(b"\n") + data[end:]  # line numbers stay true
        raw.path = None
        raw.head = raw.data[:65536]
        # chosen by the lines after the block: its blanked lines can fill any head
        head = data[end : end + 65536]
        fmt = _choose(head, src, formats)
    name = fmt if isinstance(fmt, str) else fmt.name
    # A detected file's lines of another built-in format go to that format's reader, if
    # formats=[...] allows it (any reader, when not given): otherwise the file's reader counts
    # them, as with that one format forced (malformed, or ignored and warned about).
    detected = src.format is None and len(formats) != 1
    to_kv = detected and (not formats or "kv" in formats)
    to_legacy = detected and (not formats or "legacy" in formats)
    to_jsonl = detected and (not formats or "jsonl" in formats)
    # why a JSON event among text lines was not read (warned about by line number)
    why_json = _WHY_PREFIX if to_jsonl else _WHY_NO_JSONL
    if src.format is not None:  # no formats=[...] to name: the source's own format (review 8b)
        why_json = f"the source is read as {name} only"
    if fmt == "jsonl":
        from tracekit.collectors._jsonl import read_jsonl

        # polars reads a plain file itself (memory-mapped) rather than from a Python copy
        part = _FileStats()
        frame = read_jsonl(
            raw.data,
            path=raw.path,
            file=src.name,
            source=src.source_name,
            stats=part,
            timezone=timezone,
            skip=unread,
        )
        if part.malformed and to_legacy:
            # Detected from its first lines, but legacy tagged lines further down are no bad
            # JSON: read the file as mixed (its JSON objects as JSON lines, the rest as legacy).
            data = raw.load()
            if _LEGACY_TAG.search(data):
                lines, latin1 = _text_lines(data)
                is_object, bare = _object_lines(lines)
                if is_object.any():
                    seen = _as_read(data, lines, latin1)
                    return _read_mixed(
                        lines,
                        latin1,
                        is_object,
                        bare,
                        "legacy",
                        src,
                        timezone,
                        stats,
                        kv=to_kv,
                        seen=seen,
                    )
        stats.formats[name] = stats.formats.get(name, 0) + 1
        stats.merge(part)
        if b'\\"stage\\"' in head:  # events as text inside a JSON string (a wrapper)
            lines, _ = _text_lines(raw.load())
            found = _key_lines(_numbered(lines), '\\"stage\\"')
            _warn_unread(src.name, found, frame, _WHY_STRING, stats)
        return frame
    data = raw.load()
    # No "{", no JSON object anywhere: one memchr pass instead of two substring searches, which
    # cost ~5% of reading a 1M-line legacy log (every '"' is a partial match for them).
    braces = b"{" in data
    numbered: pl.DataFrame | None = None
    # Detected as kv, but legacy tagged lines among its lines: the legacy reader reads them.
    # (Detected as legacy, the key=value events among its lines are the kv reader's: the
    # legacy reader gives them back, see below.)
    kv_mixed = fmt == "kv" and to_legacy and _LEGACY_TAG.search(data) is not None
    if fmt in ("kv", "legacy") and braces:
        from tracekit.collectors._text import join_partials

        # a JSON event a container runtime split is one object again
        raw_lines, latin1 = _text_lines(data)
        lines, joins = join_partials(raw_lines, src.name)
        seen = join_partials(_as_read(data, raw_lines, True), "")[0] if latin1 else lines
        is_object, bare = _object_lines(lines)
        if is_object.any() and to_jsonl:  # else the file's reader counts them, as forced
            for note in joins:
                stats.warn(note)
            legacy = _legacy_lines(seen) if kv_mixed else None
            return _read_mixed(
                lines,
                latin1,
                is_object,
                bare,
                fmt,
                src,
                timezone,
                stats,
                legacy=legacy,
                kv=to_kv,
                seen=seen,
            )
        numbered = _numbered(seen)  # the reader joins the partial lines itself
    if kv_mixed:
        lines, latin1 = _text_lines(data)
        seen = _as_read(data, lines, latin1)
        legacy = _legacy_lines(seen)
        if legacy.any():
            no_object = pl.repeat(False, lines.len(), dtype=pl.Boolean, eager=True)
            return _read_mixed(
                lines,
                latin1,
                no_object,
                True,
                fmt,
                src,
                timezone,
                stats,
                legacy=legacy,
                why=why_json,
                seen=seen,
            )
    stats.formats[name] = stats.formats.get(name, 0) + 1
    unread_kv: list[pl.DataFrame] = []
    if fmt == "legacy":  # it finds the key=value events among the lines it ignores
        from tracekit.collectors._text import read_legacy

        result = read_legacy(
            data,
            file=src.name,
            source=src.source_name,
            stats=stats,
            timezone=timezone,
            unread_kv=unread_kv,
        )
    elif isinstance(fmt, str):
        reader = _reader(fmt)
        if kv_mixed:  # no legacy line among its lines: decided above, not again
            reader = functools.partial(reader, judged=True)
        result = reader(data, file=src.name, source=src.source_name, stats=stats, timezone=timezone)
    else:
        result = fmt.read(
            data, file=src.name, source=src.source_name, stats=stats, timezone=timezone
        )
    if unread_kv and to_kv:
        result = _read_kv_among(result, pl.concat(unread_kv), False, fmt, src, timezone, stats)
    elif unread_kv:
        _warn_kv_lines(src.name, pl.concat(unread_kv).get_column("line"), stats)
    elif not isinstance(fmt, str) and b"stage=" in data:  # a user format
        if numbered is None:
            numbered = _numbered(_as_read(data, *_text_lines(data)))
        _warn_unread_kv(src.name, numbered, result, fmt, stats)
    # after the kv reader's rows joined: a kv event holding JSON text is read, not unread
    if braces and getattr(fmt, "kind", "regex") != "json" and b'"stage"' in data:
        if numbered is None:
            numbered = _numbered(_as_read(data, *_text_lines(data)))
        _warn_unread(src.name, _key_lines(numbered, '"stage"', kv=False), result, why_json, stats)
    return result


def _legacy_lines(lines: pl.Series) -> pl.Series:
    """Which ``lines`` are legacy lines (:func:`~tracekit.collectors._kv.legacy_line`, the rule
    of detection and of the readers)."""
    # lazy: the rule's repeated sub-expressions computed once (an eager select runs them again)
    frame = pl.LazyFrame([lines.alias("raw")]).select(legacy_line(pl.col("raw")))
    return frame.collect().to_series()


def _read_mixed(
    lines: pl.Series,
    latin1: bool,
    is_object: pl.Series,
    bare: bool,
    fmt: str,
    src: Source,
    timezone: str | None,
    stats: InputStats,
    *,
    legacy: pl.Series | None = None,
    kv: bool = False,
    why: str = _WHY_PREFIX,
    seen: pl.Series | None = None,
) -> pl.DataFrame:
    """A text log with JSON lines among its lines: the JSON objects go to the JSON-lines
    reader, the rest to ``fmt``'s, so that every line keeps its number and is counted once.
    ``legacy``: the legacy lines of a kv file (not objects), which go to the legacy reader
    (detected, and ``formats=[...]`` allowing legacy).
    ``kv``: the key=value events the legacy reader gives back go to the kv reader (a format
    detected, not forced, and ``formats=[...]`` allowing kv); otherwise they are warned about.
    ``why``: the reason the warning about JSON events not read gives.
    ``seen``: ``lines`` as the readers see them (:func:`_as_read`), for the line rules.

    polars column work, none per line in Python: each reader reads its lines as a file of
    their own (the JSON-lines reader on its fast path, which blank lines in their place would
    cost), then events and examples get the file's line numbers back."""
    from tracekit.collectors._jsonl import read_jsonl

    raw = pl.col("raw")
    obj = pl.col("obj")
    table = _numbered(lines).with_columns(is_object.alias("obj"))
    # what the warnings look at: the text as the readers see it
    checked = table if seen is None else _numbered(seen).with_columns(is_object.alias("obj"))
    if legacy is None:
        table = table.with_columns(pl.lit(False).alias("tagged"))
    else:
        table = table.with_columns((legacy & ~is_object).alias("tagged"))
    tagged = pl.col("tagged")
    objects = table.filter(obj).select("line", "raw")
    untagged = checked.filter(~obj).select("line", "raw")
    text = table.filter(~obj & ~tagged).select("line", "raw")
    tagged_lines = table.filter(tagged).select("line", "raw")
    frames: list[pl.DataFrame] = []
    before = stats.lines
    has_text = text.select(raw.str.contains(r"[^ \t\n\r\x0b\x0c]").any()).item()
    kv_rows = table.clear().select("line", "raw")
    unread_kv = kv_rows.get_column("line")  # given back by the legacy reader, kv not allowed
    if has_text:
        stats.formats[fmt] = stats.formats.get(fmt, 0) + 1
        rows = text.filter(raw != "")
        if fmt == "legacy":
            frame, kv_rows = _read_legacy_apart(rows, latin1, src, timezone, stats)
            if kv_rows.height and kv:
                frame = _read_kv_among(frame, kv_rows, latin1, fmt, src, timezone, stats)
            elif kv_rows.height:  # kv not allowed: warned about (with the others, below)
                unread_kv = kv_rows.get_column("line")
        elif fmt == "kv" and legacy is not None:  # its legacy lines are taken out: none here
            read = functools.partial(_reader("kv"), judged=True)
            frame = _read_apart(read, rows, latin1, src, timezone, stats)
        else:
            frame = _read_apart(_reader(fmt), rows, latin1, src, timezone, stats)
        frames.append(frame)
    if tagged_lines.height:
        stats.formats["legacy"] = stats.formats.get("legacy", 0) + 1
        legacy_frame, back = _read_legacy_apart(tagged_lines, latin1, src, timezone, stats)
        # the ones the legacy reader made no event of (ignored or malformed: review 8), but
        # the key=value events it gave back: the kv file's own reader's, said in one warning
        mine = tagged_lines.filter(~pl.col("line").is_in(back.get_column("line").implode()))
        note = _unread_note(mine, legacy_frame, "not read as events")
        said = (
            f"{src.name}: {tagged_lines.height} lines are legacy tagged lines among {fmt} "
            f"lines; read them with the legacy reader{note}"
        )
        stats.warn(said)  # ahead of what the kv reader says of the lines given back
        if back.height:
            if not has_text:  # no line of the file was the kv reader's yet
                stats.formats["kv"] = stats.formats.get("kv", 0) + 1
            legacy_frame = _read_kv_among(
                legacy_frame, back, latin1, "legacy", src, timezone, stats, own=True
            )
            gone = _unread(back, legacy_frame)
            given = f"{back.height} of them key=value events it gave back to the kv reader"
            if gone.len():
                given += f"; {gone.len()} of those not read as events, first: line {gone[0]}"
            stats.amend(said, f"{said} ({given})")
        frames.append(legacy_frame)
    if objects.height:
        if has_text or tagged_lines.height:
            stats.warn(
                f"{src.name}: {objects.height} lines are JSON objects among {fmt} text lines; "
                "read them as JSON lines"
            )
        else:  # every line a JSON object (behind a container runtime's prefix)
            stats.formats["jsonl"] = stats.formats.get("jsonl", 0) + 1
    stats.lines = before + lines.len()
    if objects.height:
        if not bare:
            objects = objects.with_columns(
                raw.str.replace("^" + _JSON_PREFIX, "").str.strip_chars_end(" \t\r")
            )
        frames.append(_read_apart(read_jsonl, objects, latin1, src, timezone, stats))
    out = pl.concat(
        [f for f in frames if f.height] or frames[-1:] or [empty_table()], how="diagonal"
    )
    out = out.sort("line")
    _warn_unread(src.name, _key_lines(untagged, '"stage"', kv=False), out, why, stats)
    routed = pl.col("line").is_in(kv_rows.get_column("line").implode())
    _warn_unread_kv(src.name, untagged.filter(~routed), out, fmt, stats, also=unread_kv)
    return out


def _read_legacy_apart(
    rows: pl.DataFrame, latin1: bool, src: Source, timezone: str | None, stats: InputStats
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``rows`` (``line``, ``raw``) read by the legacy reader (:func:`_read_apart`), and the
    rows it gave back: key=value events it made no event of (``read_legacy``'s ``unread_kv``),
    counted as ignored until another reader takes them."""
    from tracekit.collectors._text import read_legacy

    given: list[pl.DataFrame] = []
    read = functools.partial(read_legacy, unread_kv=given)
    frame = _read_apart(read, rows, latin1, src, timezone, stats)
    if not given:
        return frame, rows.clear()
    # numbered as lines of their own: the file's lines, as written
    at = rows.get_column("line").gather(pl.concat(given).get_column("line") - 1)
    return frame, rows.filter(pl.col("line").is_in(at.implode()))


def _unread(rows: pl.DataFrame, read: pl.DataFrame) -> pl.Series:
    """Numbers of the ``rows`` (``line``) that ``read`` (a reader's events) has no event of."""
    numbers = rows.get_column("line")
    return numbers.filter(~numbers.is_in(read.get_column("line").implode()))


def _unread_note(rows: pl.DataFrame, read: pl.DataFrame, what: str) -> str:
    """`` (N of them <what>, first: line L)`` for the ``rows`` (``line``) rerouted to another
    reader that it made no event of (``read``): a rerouting warning never says a line was read
    when it was not (review 7d); empty when all were read."""
    unread = _unread(rows, read)
    return f" ({unread.len()} of them {what}, first: line {unread[0]})" if unread.len() else ""


def _read_kv_among(
    frame: pl.DataFrame,
    rows: pl.DataFrame,
    latin1: bool,
    fmt: str,
    src: Source,
    timezone: str | None,
    stats: InputStats,
    *,
    own: bool = False,
) -> pl.DataFrame:
    """``frame``, read by the legacy reader, with ``rows`` (``line``, ``raw``: the key=value
    events it ignored and gave back, ``read_text``'s ``unread_kv``) read by the kv reader as
    it reads a kv file's lines, in line order. The legacy reader counted them as ignored:
    they are the kv reader's to count now (events or malformed); a warning counts them.
    ``own``: the lines come from a kv file, already counted as one, whose rerouting warning
    (the caller's) says what became of them."""
    from tracekit.collectors._kv import read_kv

    stats.ignored -= rows.height
    if not own:
        stats.formats["kv"] = stats.formats.get("kv", 0) + 1
    read = functools.partial(read_kv, judged=True)  # a tag outside their values too
    kv = _read_apart(read, rows, latin1, src, timezone, stats)
    if not own:
        # the ones the kv reader made no event of (malformed: no action, no timestamp)
        note = _unread_note(rows, kv, "not read as events")
        stats.warn(
            f"{src.name}: {rows.height} lines are key=value events among {fmt} lines; "
            f"read them with the kv reader{note}"
        )
    if not kv.height:
        return frame
    if not frame.height:
        return kv
    return pl.concat([frame, kv], how="diagonal").sort("line")


def _read_apart(
    read: Callable[..., pl.DataFrame],
    rows: pl.DataFrame,
    latin1: bool,
    src: Source,
    timezone: str | None,
    stats: InputStats,
) -> pl.DataFrame:
    """``rows`` (``line``, ``raw``) read by ``read`` as lines 1..n of their own, then given
    the file's line numbers back (events and examples); their account is added to ``stats``
    but their lines, which the caller counts."""
    part = _FileStats()
    frame = read(
        _joined(rows.get_column("raw"), latin1),
        file=src.name,
        source=src.source_name,
        stats=part,
        timezone=timezone,
    )
    numbers = rows.get_column("line")
    if frame.height:
        frame = frame.with_columns(numbers.gather(frame.get_column("line") - 1).alias("line"))
    part.examples = [_renumbered(ex, src.name, numbers) for ex in part.examples]
    part.malformed_lines = {
        f: numbers.gather([n - 1 for n in lines]).to_list() if f == src.name else lines
        for f, lines in part.malformed_lines.items()
    }
    part.lines = 0
    stats.merge(part)
    return frame


def _renumbered(example: str, file: str, numbers: pl.Series) -> str:
    """``file:N: reason`` with N, a line of the objects read apart, as the file's line."""
    prefix = f"{file}:"
    if not example.startswith(prefix):
        return example
    n, sep, reason = example[len(prefix) :].partition(":")
    if not (sep and n.isdigit()) or not 0 < int(n) <= numbers.len():
        return example
    return f"{prefix}{numbers[int(n) - 1]}:{reason}"


def _cache_read(cache_dir: Path, key: str, columns: tuple[str, ...] | None) -> Collected | None:
    """The cached table (``columns`` of it) and account, or None: a missing, unreadable or
    damaged entry, or one that lacks a column asked for, is a miss (the logs are read again
    and the entry rewritten), never an error."""
    parquet = cache_dir / f"{key}.parquet"
    meta = cache_dir / f"{key}.json"
    wanted = tuple(EVENT_SCHEMA) if columns is None else columns
    if not set(wanted) <= set(_cache_columns(cache_dir, key)):
        return None  # none, another version's table, or a projection without them
    try:
        if not meta.is_file():
            return None
        stats = InputStats.from_dict(orjson.loads(meta.read_bytes()))
        # Read now, not scanned: damage must show here, not in the caller's collect.
        table = pl.read_parquet(parquet, columns=list(wanted))
    except (OSError, ValueError, TypeError, AttributeError, pl.exceptions.PolarsError):
        return None  # orjson.JSONDecodeError is a ValueError
    if table.schema != pl.Schema({c: EVENT_SCHEMA[c] for c in wanted}):
        return None
    stats.cached = True
    return Collected(table.lazy(), stats)


def _cache_columns(cache_dir: Path, key: str) -> tuple[str, ...]:
    """The event table's columns a cache entry holds (none when it cannot be read)."""
    parquet = cache_dir / f"{key}.parquet"
    try:
        if not parquet.is_file():  # a FIFO, a directory: never opened (a FIFO blocks)
            return ()
        held = pl.read_parquet_schema(parquet)
    except (OSError, ValueError, pl.exceptions.PolarsError):
        return ()
    return tuple(c for c, dtype in held.items() if EVENT_SCHEMA.get(c) == dtype)


def _cache_write(cache_dir: Path, key: str, table: pl.DataFrame, stats: InputStats) -> None:
    """Best effort: a cache that cannot be written only costs speed next time."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        tmp = cache_dir / f".{key}.{os.getpid()}.tmp"
        # Uncompressed: reading it back is what the cache is for (about 2x faster than lz4).
        # One row group: each group's dictionary of trace and msg ids is inserted into polars'
        # category map again, and the reader decodes columns in parallel anyway. Polars'
        # default groups (262,144 rows) were the slowest (docs/perf/ingest.md, session 5);
        # at 5M events the analysis' columns read at 9.1-9.8M events/s from one group per
        # thread, 10.4-13.3M/s from one (session 9).
        table.write_parquet(
            tmp,
            compression="uncompressed",
            statistics=False,
            row_group_size=max(1, table.height),
        )
        os.replace(tmp, cache_dir / f"{key}.parquet")
        tmp_meta = cache_dir / f".{key}.{os.getpid()}.json.tmp"
        tmp_meta.write_bytes(orjson.dumps(stats.to_dict()))
        os.replace(tmp_meta, cache_dir / f"{key}.json")
    except OSError as exc:
        stats.warn(f"cache not written to {cache_dir}: {exc.strerror or exc}")
        return
    inputs = key.split("-", 1)[0]
    for old in cache_dir.glob(f"{inputs}-*"):  # earlier states of the same inputs
        if old.stem != key:
            try:
                old.unlink(missing_ok=True)
            except OSError:
                pass
