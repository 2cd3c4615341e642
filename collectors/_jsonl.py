"""JSON lines (structlog's JSONRenderer): the hot path.

Fast path: one ``scan_ndjson`` over the whole input (polars reads a plain file from disk itself)
with every key typed as String, so numbers and lists come back as text and a wrongly typed value
never costs the row; then normalize's per-row work (timestamps, seq, checks, Categorical
casts) fused into the scan. No Python code runs per line. Only when polars rejects the input (a line
that is not a JSON object) or skips blank lines (which would shift line numbers) does the slow
path run: 4 MiB blocks of whole lines, blank lines given a sentinel object where they shift
rows, and a block that fails bisected by bytes down to the offending lines, which are counted
with the parser's reason.
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Collection, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from io import RawIOBase
from pathlib import Path
from typing import Any, Final, NamedTuple

import orjson
import polars as pl

from tracekit._arrow import Capsules
from tracekit.collectors._normalize import RAW_SCHEMA, empty_table, normalize, prepared
from tracekit.collectors._stats import MAX_EXAMPLES, InputStats
from tracekit.collectors._time import fast_iso_utc
from tracekit.table import CATEGORICAL_COLUMNS

try:
    from tracekit.collectors import _jsonscan  # type: ignore[attr-defined]
except ImportError:  # not compiled (it is optional): polars reads JSON lines alone
    _jsonscan = None

__all__ = ["CHUNK_BYTES", "count_lines", "read_jsonl"]

_BLANK_KEY: Final = "__tracekit_blank__"
_BLANK_LINE: Final = b'{"' + _BLANK_KEY.encode() + b'":"1"}'
_BLANK_RE: Final = re.compile(rb"(?m)^[ \t\r\f\v]*$")
#: Byte size of the blocks the slow path parses (then bisects when one fails).
_BLOCK_BYTES: Final = 4 << 20
_AT: Final = re.compile(r"at character (\d+)")


def count_lines(data: bytes | bytearray) -> int:
    if _jsonscan is not None:  # memchr: bytes.count is a byte loop (1 s of CPU per 1.6 GB)
        return int(_jsonscan.count_lines(data))
    if not data:
        return 0
    return data.count(b"\n") + (0 if data.endswith(b"\n") else 1)


def _count_file_lines(path: Path) -> int:
    """Lines of a file, blank ones included: polars' CSV reader counts rows in parallel
    without materialising them (ten times faster than bytes.count); Python's count is the
    fallback."""
    try:
        n = (
            pl.scan_csv(
                path, has_header=False, separator="\x1f", quote_char=None, schema={"l": pl.String}
            )
            .select(pl.len())
            .collect()
            .item()
        )
        return int(n)
    except (pl.exceptions.PolarsError, OSError):
        pass
    n = 0
    last = b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(16 << 20):
            n += chunk.count(b"\n")
            last = chunk[-1:]
    return n + (0 if last == b"\n" else 1)


def _parse(data: bytes | bytearray | Path, schema: pl.Schema) -> pl.DataFrame:
    if isinstance(data, Path):
        return pl.scan_ndjson(data, schema=schema).collect()
    return pl.read_ndjson(_bytes(data), schema=schema)


def _bytes(data: bytes | bytearray) -> bytes:
    """polars reads bytes, not a bytearray (a block of a large file: a rare second parse)."""
    return bytes(data) if isinstance(data, bytearray) else data


#: Inputs from this size are scanned in two halves, one per core.
_SPLIT_BYTES: Final = 4 << 20
_pool: ThreadPoolExecutor | None = None


class Scanned(NamedTuple):
    """What the compiled scanner read: the columns, and the coded ones with plain values."""

    frame: pl.DataFrame
    plain: frozenset[str]


def _native(
    data: bytes | bytearray | Path, keys: tuple[str, ...], ts_key: int, coded: int = 0
) -> Scanned | None:
    """``data`` read by the compiled scanner (tracekit/collectors/_jsonscan.c): the String
    columns polars would read, plus ``_ts_fast`` (timestamps in tracekit's own layout). The
    keys whose bit is set in ``coded`` come Categorical (the same values: the scanner keeps
    each distinct one once, where a String column held every row's copy for the cast that
    followed); ``plain`` names those of them that hold no value opening with a bracket or a
    brace, and no empty one. None when it is not built, or when a line is outside what
    it reads exactly as polars does; the caller then reads with polars."""
    if _jsonscan is None or any(not k or "\x00" in k for k in keys):
        return None  # (odd names from a user's rename: an empty one would come back renamed)
    if isinstance(data, Path):
        # Read, not mapped: a log truncated while mapped (copytruncate rotation) would kill
        # the process with SIGBUS; a read sees a consistent, shorter file. (Inputs over
        # a block come here in blocks, as bytes.)
        try:
            data = data.read_bytes()
        except OSError:
            return None
    cut = data.find(b"\n", len(data) // 2) + 1 if len(data) >= _SPLIT_BYTES else 0
    if cut <= 0 or cut >= len(data):
        parts = [_jsonscan.scan(data, keys, ts_key, coded)]
    else:
        global _pool
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tracekit-scan")
        view = memoryview(data)  # halves without a copy
        second = _pool.submit(_jsonscan.scan, view[cut:], keys, ts_key, coded)
        try:
            first = _jsonscan.scan(view[:cut], keys, ts_key, coded)
        except BaseException:
            second.exception()  # the other half finishes with the buffer before we unwind
            raise
        parts = [first, second.result()]
    if any(part is None for part in parts):
        return None
    frames = [pl.DataFrame([pl.Series(Capsules(*c)) for c in p[1]]) for p in parts]
    odd = 0
    for part in parts:
        odd |= part[2]
    return Scanned(
        pl.concat(frames, rechunk=False) if len(frames) > 1 else frames[0],
        frozenset(k for i, k in enumerate(keys) if coded >> i & 1 and not odd >> i & 1),
    )


def _parse_prepared(
    data: bytes | bytearray | Path,
    schema: pl.Schema,
    rename: dict[str, str] | None,
    fmt: str | None,
    first_line: int = 1,
    *,
    native: bool = False,
) -> pl.DataFrame | None:
    """The fast path: parse with row numbers, then normalize's per-row work. With ``native``,
    the compiled scanner's (None when it declines the input); else polars'."""
    frame: pl.LazyFrame
    renamed = rename or {}
    plain: set[str] = set()  # (names prepared need not look at row by row)
    if native:
        keys = tuple(schema.names())
        inverse = {v: k for k, v in renamed.items()}
        ts_name = inverse.get("timestamp", "timestamp")
        ts_key = keys.index(ts_name) if fmt is None and ts_name in keys else -1
        # the names (the event table's Categorical columns) read coded, as Categorical
        coded = sum(
            1 << i
            for i, k in enumerate(keys)
            if renamed.get(k, k) in CATEGORICAL_COLUMNS and i != ts_key
        )
        read = _native(data, keys, ts_key, coded)
        if read is None:
            return None
        scanned = read.frame
        # with a user's timestamp format, the scanner's parse of tracekit's layout is unused
        frame = (
            _with_fast_times(scanned, ts_name) if ts_key >= 0 else scanned.drop("_ts_fast")
        ).lazy()
        plain = {renamed.get(k, k) for k in read.plain}
    elif isinstance(data, Path):
        frame = pl.scan_ndjson(data, schema=schema)
    else:
        frame = pl.read_ndjson(_bytes(data), schema=schema).lazy()
    frame = frame.with_row_index("line", offset=first_line)
    if rename:
        frame = frame.rename({k: v for k, v in rename.items() if k in schema})
    return prepared(frame, fmt, plain).collect()


def _with_fast_times(frame: pl.DataFrame, ts_name: str) -> pl.DataFrame:
    """The scanner parses the plainest form of tracekit's timestamps; the few it leaves that
    :func:`fast_iso_utc` reads get its values, so the result never depends on the reader."""
    if ts_name not in frame.columns:
        return frame
    fast = frame.get_column("_ts_fast")
    text = frame.get_column(ts_name)
    if fast.null_count() == text.null_count():
        return frame
    idx = (fast.is_null() & text.is_not_null()).arg_true()
    redo = pl.select(fast_iso_utc(pl.lit(text.gather(idx)))).to_series()
    return frame.with_columns(fast.scatter(idx, redo))


def read_jsonl(
    data: bytes | None,
    *,
    file: str,
    source: str,
    stats: InputStats,
    timezone: str | None = None,
    rename: dict[str, str] | None = None,
    timestamp_format: str | None = None,
    path: Path | None = None,
    skip: Collection[str] = (),
) -> pl.DataFrame:
    """Parse JSON lines into the event table (:data:`tracekit.table.EVENT_SCHEMA`).

    ``rename`` maps input keys to schema keys (a user format's field mapping). Give ``data``,
    or ``path`` for a plain file polars can map. Inputs over a block are read in blocks of
    :data:`CHUNK_BYTES` whole lines, each made compact as it is parsed, so peak memory
    follows the event table rather than the text, and one block's read and scan overlap
    another's conversion (1M events, 226 MB: 0.59-0.65 s in blocks, 0.72-0.76 s in one
    read; session 12; in session 2, before the compiled scanner and the reused buffers, one
    read was the faster)."""
    if data is None and path is None:
        raise ValueError("read_jsonl needs data or path")
    size = len(data) if data is not None else path.stat().st_size  # type: ignore[union-attr]
    # Columns the caller drops: those no check reads are not even parsed (the scanner
    # validates and skips their values), the others dropped block by block.
    options = {
        "rename": rename,
        "timestamp_format": timestamp_format,
        "timezone": timezone,
        "unparsed": _UNCHECKED.intersection(skip),
    }
    if size <= CHUNK_BYTES:
        return _read_block(data, path, 1, file, source, stats, options).drop(skip, strict=False)
    frames: list[pl.DataFrame] = []
    # Two blocks in flight: one's single-threaded steps overlap the other's parse (polars
    # releases the GIL), and memory stays bounded by a few blocks. Each block keeps its own
    # account, merged in order so examples and warnings read as for one pass.
    pending: deque[tuple[Future[pl.DataFrame], InputStats, bytes | bytearray]] = deque()
    spare: list[bytearray] = []  # parsed blocks' buffers, read into again

    def block_frame(block: bytes | bytearray, first_line: int, part: InputStats) -> pl.DataFrame:
        frame = _read_block(block, None, first_line, file, source, part, options)
        return frame.drop(skip, strict=False)

    def finish_one() -> None:
        future, part, block = pending.popleft()
        frames.append(future.result())
        stats.merge(part)
        if isinstance(block, bytearray):
            spare.append(block)

    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="tracekit-jsonl") as pool:
        first_line = 1
        for block in _blocks(data, path, spare):
            part = type(stats)()  # the caller's kind: its examples by line
            pending.append((pool.submit(block_frame, block, first_line, part), part, block))
            first_line += count_lines(block)
            if len(pending) == 2:
                finish_one()
        while pending:
            finish_one()
    return pl.concat(frames) if frames else empty_table().drop(skip, strict=False)


#: Columns normalize passes through unchecked: a read that drops them need not parse them.
_UNCHECKED: Final = frozenset({"span_id", "level"})

#: Block size of the chunked read (whole lines; the last line of a block is completed).
CHUNK_BYTES: Final = 64 << 20


def _blocks(
    data: bytes | None, path: Path | None, spare: list[bytearray] | None = None
) -> Iterator[bytes | bytearray]:
    """Blocks of about :data:`CHUNK_BYTES` whole lines. From a file, each is read into a
    buffer from ``spare`` (the caller returns a block's buffer there once it is parsed): a
    fresh 64 MiB buffer a block, and a copy to complete its last line, cost a 5M-event read
    1.5 s of page faults and copies; a reused one takes a single read (0.5 s)."""
    if data is not None:
        view = memoryview(data)
        pos = 0
        while pos < len(data):
            end = data.find(b"\n", min(pos + CHUNK_BYTES, len(data)))
            end = len(data) if end < 0 else end + 1
            yield bytes(view[pos:end])
            pos = end
        return
    with path.open("rb", buffering=0) as fh:  # type: ignore[union-attr]
        yield from _file_blocks(fh, spare if spare is not None else [])


def _file_blocks(fh: RawIOBase, spare: list[bytearray]) -> Iterator[bytearray]:
    """The blocks of an unbuffered file, read into ``spare`` buffers."""
    tail = b""  # the start of a line the previous block cut
    while True:
        buf = _buffer(spare, len(tail) + CHUNK_BYTES)
        buf[: len(tail)] = tail  # same size: no reallocation
        got = len(tail)
        while got < len(buf) and (n := fh.readinto(memoryview(buf)[got:])):
            got += n
        tail = b""
        if got < len(buf):  # the end of the file
            del buf[got:]
        elif (end := buf.rfind(b"\n") + 1) == 0:
            # a line longer than a block: read on to its end a block at a time (an unbuffered
            # file's readline reads a byte a call; review 10: 36M calls for a 100 MiB line)
            while chunk := fh.read(CHUNK_BYTES):
                cut = chunk.find(b"\n") + 1
                if cut:
                    buf += chunk[:cut]
                    tail = chunk[cut:]
                    break
                buf += chunk
        else:
            tail = bytes(buf[end:])
            del buf[end:]  # a small cut: CPython keeps the allocation for the next use
        if not buf:
            return
        yield buf


def _buffer(spare: list[bytearray], size: int) -> bytearray:
    """A buffer of ``size`` bytes, a spare one if there is one (resized within its
    allocation: its pages are already the process's, no fault, no zeroing)."""
    while spare:
        buf = spare.pop()
        try:
            if len(buf) > size:
                del buf[size:]
            elif len(buf) < size:
                buf.extend(bytes(size - len(buf)))
        except BufferError:  # still exported (a view not yet collected): not reusable
            continue
        return buf
    return bytearray(size)


def _read_block(
    data: bytes | bytearray | None,
    path: Path | None,
    first_line: int,
    file: str,
    source: str,
    stats: InputStats,
    options: dict[str, Any],
) -> pl.DataFrame:
    """One block of whole lines (or the whole input) -> the event table."""
    rename: dict[str, str] | None = options["rename"]
    fmt: str | None = options["timestamp_format"]
    schema = pl.Schema({c: t for c, t in RAW_SCHEMA.items() if c not in options["unparsed"]})
    if rename:
        inverse = {v: k for k, v in rename.items()}
        schema = pl.Schema({inverse.get(c, c): pl.String for c in schema})
    source_data = data if data is not None else path
    # The scanner reads every line or none (it declines blank lines), so its rows are the
    # lines, and its lists are exact (it declines lists with escapes).
    raw = _parse_prepared(source_data, schema, rename, fmt, first_line, native=True)  # type: ignore[arg-type]
    if raw is not None:
        stats.lines += raw.height
        if raw.height == 0:
            return empty_table()
    else:
        n_lines = count_lines(data) if data is not None else _count_file_lines(path)  # type: ignore[arg-type]
        stats.lines += n_lines
        if n_lines == 0:
            return empty_table()
        try:
            raw = _parse_prepared(source_data, schema, rename, fmt, first_line)  # type: ignore[arg-type]
        except (pl.exceptions.PolarsError, OSError):  # polars sniffs compression: OSError
            raw = None
        if raw is None or raw.height != n_lines:
            if data is None:
                data = path.read_bytes()  # type: ignore[union-attr]
            raw = _slow(_bytes(data), schema, file, stats, first_line)
            if rename:
                raw = raw.rename({k: v for k, v in rename.items() if k in raw.columns})
        raw = _exact_lists(raw, data, path, first_line)
    return normalize(
        raw,
        file=file,
        source=source,
        stats=stats,
        timezone=options["timezone"],
        timestamp_format=fmt,
    )


def _exact_lists(
    raw: pl.DataFrame, data: bytes | bytearray | None, path: Path | None, first_line: int
) -> pl.DataFrame:
    """``recipients`` as exact JSON text where polars cannot give it back.

    Read as text, a list comes back as JSON with its strings unescaped but for ``"``:
    ``["a\\\\b"]`` becomes ``["a\\b"]``, which then decodes as a backspace (silently wrong) or
    not at all (``a\\[b``). The few rows whose text holds a backslash are read again from their
    line with orjson; a line that still cannot be read keeps its text (and its warning)."""
    if "recipients" not in raw.columns or raw.height == 0:
        return raw
    lossy = raw.select("line", "recipients").filter(
        pl.col("recipients").str.contains("\\", literal=True)
    )
    if lossy.is_empty():
        return raw
    if data is None:
        data = path.read_bytes() if path is not None else b""
    lines = data.split(b"\n")
    exact: list[str | None] = []
    for n in lossy.get_column("line"):
        try:
            value = orjson.loads(lines[n - first_line])["recipients"]
            exact.append(orjson.dumps(value).decode() if isinstance(value, list) else None)
        except (orjson.JSONDecodeError, IndexError, KeyError, TypeError):
            exact.append(None)
    fixed = pl.DataFrame(
        {"line": lossy.get_column("line"), "recipients": exact},
        schema={"line": raw.schema["line"], "recipients": pl.String},
    )
    return raw.update(fixed, on="line")


def _reason(exc: Exception, line: bytes) -> str:
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    size = f" ({len(line) / 1e6:.1f} MB line)" if len(line) > 1_000_000 else ""
    if "InvalidUtf8" in text or "utf-8" in text.lower():
        return "invalid UTF-8" + size
    if "expected to contain JSON object" in text:
        return "not a JSON object" + size
    at = _AT.search(text)
    # lines ending in a bare CR (classic Mac) read as one line: say what it looks like
    # (review 19a: "invalid JSON at character 283" of a whole file of good events)
    cr = (
        "; it holds lines ending in a bare CR (\\r): convert them with tr '\\r' '\\n'"
        if b"}\r{" in line
        else ""
    )
    return "invalid JSON" + (f" at character {at.group(1)}" if at else "") + size + cr


def _slow(
    data: bytes, schema: pl.Schema, file: str, stats: InputStats, first_line: int = 1
) -> pl.DataFrame:
    """Parse what polars rejected as a whole, in blocks of whole lines: a block polars reads
    (blank lines given a sentinel object) is one parse; in a block it rejects, each line is
    checked with orjson (microseconds a line) and the good lines are parsed in one polars call.
    The bad lines are counted, the first few with polars' own reason (a parse of that line
    alone), so the account and the examples are those of a parse line by line."""
    full = pl.Schema([*schema.items(), (_BLANK_KEY, pl.String())])
    frames: list[pl.DataFrame] = []

    def parse_block(start: int, end: int, first_line: int) -> None:
        # data[start:end] holds whole lines (without the final newline), first one first_line
        chunk = data[start:end]
        n = chunk.count(b"\n") + 1
        if not chunk.strip():
            return  # blank lines only
        try:
            df = _parse(chunk, full)
            if df.height != n:
                # blank lines shift the rows: give them a sentinel object, then drop them
                df = _parse(_BLANK_RE.sub(_BLANK_LINE, chunk), full)
                if df.height != n:
                    raise pl.exceptions.ComputeError("row count mismatch")
        except (pl.exceptions.PolarsError, OSError):
            by_line(chunk, first_line)
            return
        frames.append(df.with_row_index("line", offset=first_line))

    def by_line(chunk: bytes, first_line: int) -> None:
        good: list[tuple[int, bytes]] = []
        bad: list[int] = []
        reasons: list[str] = []
        for number, text in enumerate(chunk.split(b"\n"), first_line):
            if not text.strip():
                continue
            try:
                ok = isinstance(orjson.loads(text), dict)
            except orjson.JSONDecodeError:
                ok = False
            if not ok and (len(reasons) < MAX_EXAMPLES or b"\\u" in text):
                # polars' reason, for the examples; and polars reads a lone surrogate escape
                # ("\ud800") that orjson rejects: the verdict is polars'
                why = _rejection(text, full)
                if why is None:
                    ok = True
                elif len(reasons) < MAX_EXAMPLES:
                    reasons.append(why)
            if ok:
                good.append((number, text))
            else:
                bad.append(number)
        if bad:
            reasons += ["invalid JSON"] * (len(bad) - len(reasons))  # past the examples
            stats.malformed_frame(
                file,
                pl.DataFrame(
                    {"line": bad, "reason": reasons},
                    schema={"line": pl.Int64, "reason": pl.String},
                ),
            )
        if good:
            parse_lines(good)

    def parse_lines(items: list[tuple[int, bytes]]) -> None:
        """Non-blank lines, parsed in one call; bisected should polars reject one."""
        try:
            df = _parse(b"\n".join(text for _, text in items), full)
            if df.height != len(items):
                raise pl.exceptions.ComputeError("row count mismatch")
        except (pl.exceptions.PolarsError, OSError) as exc:
            if len(items) == 1:
                stats.malformed_line(file, items[0][0], _reason(exc, items[0][1]))
                return
            mid = len(items) // 2
            parse_lines(items[:mid])
            parse_lines(items[mid:])
            return
        numbers = pl.Series("line", [number for number, _ in items], dtype=pl.UInt32)
        frames.append(df.insert_column(0, numbers))

    end = len(data) - 1 if data.endswith(b"\n") else len(data)
    pos, line = 0, first_line
    while pos < end:
        stop = data.find(b"\n", min(pos + _BLOCK_BYTES, end), end)
        stop = end if stop < 0 else stop
        parse_block(pos, stop, line)
        line += data.count(b"\n", pos, stop) + 1
        pos = stop + 1
    if not frames:
        return pl.DataFrame(schema={"line": pl.UInt32, **schema})
    out = pl.concat(frames)
    return out.filter(pl.col(_BLANK_KEY).is_null()).drop(_BLANK_KEY)


def _rejection(line: bytes, schema: pl.Schema) -> str | None:
    """Why polars rejects ``line`` alone, or None when it reads it (one object, one row)."""
    try:
        if _parse(line, schema).height == 1:
            return None
        raise pl.exceptions.ComputeError("row count mismatch")
    except (pl.exceptions.PolarsError, OSError) as exc:
        return _reason(exc, line)
