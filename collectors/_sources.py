"""The input seam: where bytes come from (files, stdin, memory) and how they are unpacked.

Like httpx's transports, a :class:`Source` only delivers bytes plus a name for the evidence;
parsing lives elsewhere, so tests swap in a :class:`MemorySource` and exercise the real parsers.
"""

from __future__ import annotations

import abc
import bz2
import errno
import fnmatch
import math
import os
import re
import stat
import sys
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Final

import orjson

from tracekit.errors import InputError

__all__ = [
    "FileSource",
    "MemorySource",
    "RawInput",
    "Source",
    "StdinSource",
    "decompress",
    "expand_paths",
    "source_name_from_path",
]

_HEAD = 65536
_COMPRESSED_SUFFIXES = (".gz", ".bz2", ".zst", ".zstd")
_ROTATED = re.compile(r"^(?P<base>.+?)\.(?P<n>\d{1,4})$")
#: A date-stamped rotation: logrotate ``dateext`` (``-%Y%m%d``, ``-%Y%m%d%H``, ``-%Y-%m-%d``,
#: ``-%Y%m%d-%s``), Python's TimedRotatingFileHandler (``.%Y-%m-%d``, ``.%Y-%m-%d_%H``,
#: ``.%Y-%m-%d_%H-%M``, ``.%Y-%m-%d_%H-%M-%S``), ISO-like ``T10:00:05``.
_DATED = re.compile(
    r"^(?P<base>.+?)[.-](?P<stamp>(?P<date>\d{4}-?\d{2}-?\d{2})"
    r"(?:[T_-]?(?P<time>\d{2}(?:[-:]?\d{2}){0,2}))?(?:-(?P<epoch>\d{9,10}))?)$"
)
#: Never logs: documentation and configuration next to them in a directory walk.
_NOT_LOGS = ("README*", "*.md", "*.rst", "*.toml", "*.py", "*.parquet")
#: Hidden entries that hold no log: not read, and not said either (every run would say them).
_NO_LOGS: Final = frozenset({".git", ".gitkeep", ".gitignore", ".keep", ".DS_Store"})
#: The cache's own entries (``{inputs}-{state}.parquet`` / ``.json``, see _collect._cache_key):
#: never logs, also when the cache lives inside the log directory.
_CACHE_ENTRY = re.compile(r"^[0-9a-f]{16}-[0-9a-f]{16}\.(?:json|parquet)$")
_LOG_EXTENSIONS = (".log", ".jsonl", ".ndjson", ".json", ".txt", ".out", ".logfmt")


@dataclass
class RawInput:
    """What a source delivered: decompressed bytes (or, for a plain file, its path, so the
    JSON-lines reader can let polars map it instead of copying it into Python) and anything
    worth telling about them."""

    data: bytes | None
    raw_size: int
    warnings: list[str] = field(default_factory=list)
    path: Path | None = None
    head: bytes = b""  # the first 64 KiB, for format detection

    def __post_init__(self) -> None:
        if not self.head and self.data is not None:
            self.head = self.data[:_HEAD]

    def load(self) -> bytes:
        if self.data is None:
            assert self.path is not None
            self.data = self.path.read_bytes()
        return self.data


class Source(abc.ABC):
    """One input. ``name`` is what evidence (``file``) shows; ``source_name`` is the default
    ``source`` of events that do not carry one (derived from the file name)."""

    name: str
    source_name: str
    #: a format name forcing the parser (``jsonl``, ``legacy``, ...), None = detect
    format: str | None = None

    @abc.abstractmethod
    def read(self) -> RawInput:
        """Return the (decompressed) content; raise InputError when it cannot be read at all."""

    def identity(self) -> tuple[Any, ...] | None:
        """A cache key component; None when the content has no stable identity (stdin)."""
        return None


class FileSource(Source):
    def __init__(self, path: str | os.PathLike[str], *, name: str | None = None) -> None:
        self.path = Path(path)
        self.name = name if name is not None else str(path)
        self.source_name = source_name_from_path(self.path)

    def read(self) -> RawInput:
        try:
            with self.path.open("rb") as fh:
                st = os.fstat(fh.fileno())
                if stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                    # (/dev/zero was read "to its end" into memory, review 19a)
                    raise InputError(
                        f"{self.name}: a device, not a log (give - for standard input)"
                    )
                head = fh.read(_HEAD)
                if stat.S_ISREG(st.st_mode) and _compression(head) is None:
                    # Not compressed: leave the bytes on disk until a reader needs them.
                    return RawInput(None, st.st_size, path=self.path, head=head)
                # Compressed, or not a regular file (a pipe: <(cmd), /dev/stdin, a FIFO):
                # read once, here. A pipe's size is 0 and reopening it blocks or finds it
                # drained, so its bytes must not be left "on disk" for later.
                raw = head + fh.read()
        except IsADirectoryError:
            raise InputError(f"{self.name}: is a directory") from None
        except OSError as exc:
            raise InputError(f"{self.name}: cannot read: {exc.strerror or exc}") from None
        data, warnings = decompress(raw, self.name)
        return RawInput(data, len(raw), warnings)

    def identity(self) -> tuple[Any, ...] | None:
        try:
            st = self.path.stat()
        except OSError:
            return None
        if not stat.S_ISREG(st.st_mode):
            return None  # a pipe: its content is gone once read, nothing to key a cache on
        # Size and mtime alone miss a file replaced by one of the same size whose mtime was
        # kept (cp -p, rsync -t, tar x, touch -r, then a rename over it): the replacement is a
        # new inode, and its ctime (which utime cannot set) is new too.
        return (
            str(self.path.resolve()),
            st.st_size,
            st.st_mtime_ns,
            st.st_dev,
            st.st_ino,
            st.st_ctime_ns,
        )


class StdinSource(Source):
    """``-``: standard input, read to the end (compressed input is recognised too)."""

    def __init__(self, stream: BinaryIO | None = None) -> None:
        self._stream = stream
        self.name = "<stdin>"
        self.source_name = "stdin"

    def read(self) -> RawInput:
        stream = self._stream if self._stream is not None else getattr(sys.stdin, "buffer", None)
        if stream is None:  # (closed: `tracekit analyze - <&-`; review 19a: a traceback)
            raise InputError("<stdin>: cannot read: standard input is closed")
        try:
            raw = stream.read()
        except OSError as exc:
            raise InputError(f"<stdin>: cannot read: {exc}") from None
        data, warnings = decompress(raw, self.name)
        return RawInput(data, len(raw), warnings)


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return obj.isoformat()
    raise TypeError


def _finite(event: object) -> object:
    """``event`` with its NaN and infinite floats as their text: JSON holds none (orjson
    writes null), and an absent value would hide a bad one the reader counts and says.
    Anything but a mapping as it is (the reader says it is no JSON object)."""
    if not isinstance(event, Mapping):
        return event
    bad = [k for k, v in event.items() if isinstance(v, float) and not math.isfinite(v)]
    return {**event, **{k: str(event[k]) for k in bad}} if bad else event


class MemorySource(Source):
    """In-memory input for tests: event dicts (written as JSON lines) or raw lines/bytes.

    ``MemorySource([{"timestamp": ..., "stage": ...}])`` goes through the real JSON-lines
    parser; ``MemorySource(["[CTRL] sendMessage: ..."], format="legacy")`` through the
    legacy one.
    """

    def __init__(
        self,
        events: Iterable[Mapping[str, Any]] | Sequence[str] | str | bytes,
        *,
        name: str = "memory",
        source_name: str | None = None,
        format: str | None = None,
    ) -> None:
        if isinstance(events, bytes):
            data = events
        elif isinstance(events, str):
            data = events.encode()
        else:
            items = list(events)
            if items and all(isinstance(i, str) for i in items):
                data = "\n".join(items).encode() + b"\n"  # type: ignore[arg-type]
            else:
                data = b"".join(
                    orjson.dumps(_finite(i), default=_default) + b"\n"
                    for i in items
                    if not isinstance(i, str)
                )
        self._data = data
        self.name = name
        self.source_name = source_name if source_name is not None else name
        self.format = format

    def read(self) -> RawInput:
        data, warnings = decompress(self._data, self.name)
        return RawInput(data, len(self._data), warnings)

    def identity(self) -> tuple[Any, ...] | None:
        return ("memory", self.name, zlib.crc32(self._data), len(self._data))


# -- decompression ------------------------------------------------------------------------


def _compression(head: bytes) -> str | None:
    if head[:2] == b"\x1f\x8b":
        return "gzip"
    if head[:3] == b"BZh" and head[3:4].isdigit():
        return "bz2"
    if head[:4] == b"\x28\xb5\x2f\xfd":
        return "zstd"
    return None


def decompress(raw: bytes, name: str) -> tuple[bytes, list[str]]:
    """Unpack gzip/bz2/zstd by magic bytes, keeping everything before a truncation or corruption."""
    kind = _compression(raw[:4])
    if kind is None:
        return raw, []
    unpack = {"gzip": _gunzip, "bz2": _bunzip, "zstd": _unzstd}[kind]
    data, warnings = unpack(raw, name)
    if not data and warnings and not _stream_header(kind, raw):
        # Nothing came out and no real header: the magic bytes were a coincidence (text).
        return raw, [f"{name}: starts like a {kind} stream but is not one; read as it is"]
    return data, warnings  # a real stream that broke before its first output: truncated


#: What follows the magic bytes in a real stream: gzip's method (deflate); bz2's first block
#: (pi) or, for an empty stream, its end-of-stream (sqrt(pi)) marker; zstd's frame header
#: descriptor, whose reserved bit (3) is 0.
_BZ2_MARKERS = (b"\x31\x41\x59\x26\x53\x59", b"\x17\x72\x45\x38\x50\x90")


def _stream_header(kind: str, raw: bytes) -> bool:
    if kind == "gzip":
        return raw[2:3] == b"\x08"
    if kind == "bz2":
        return raw[4:10] in _BZ2_MARKERS
    return len(raw) > 4 and not raw[4] & 0x08


def _gunzip(raw: bytes, name: str) -> tuple[bytes, list[str]]:
    out: list[bytes] = []
    rest = raw
    while rest:
        d = zlib.decompressobj(wbits=47)  # 32+15: gzip header, multi-member via the loop
        try:
            out.append(d.decompress(rest))
        except zlib.error as exc:
            done = sum(map(len, out))
            return b"".join(out), [
                f"{name}: corrupt gzip data after {done} decompressed bytes ({exc}); "
                "the rest of the file is unreadable"
            ]
        if not d.eof:
            out.append(d.flush())
            done = sum(map(len, out))
            return b"".join(out), [
                f"{name}: truncated gzip stream: the compressed data ends early; "
                f"kept the {done} bytes decompressed before the end"
            ]
        rest = d.unused_data.lstrip(b"\x00")
    return b"".join(out), []


def _bunzip(raw: bytes, name: str) -> tuple[bytes, list[str]]:
    out: list[bytes] = []
    rest = raw
    while rest:
        d = bz2.BZ2Decompressor()
        try:
            out.append(d.decompress(rest))
        except (OSError, EOFError) as exc:
            return b"".join(out), [f"{name}: corrupt bz2 data ({exc}); kept what came before"]
        if not d.eof:
            done = sum(map(len, out))
            return b"".join(out), [
                f"{name}: truncated bz2 stream; kept the {done} bytes decompressed before the end"
            ]
        rest = d.unused_data
    return b"".join(out), []


def _unzstd(raw: bytes, name: str) -> tuple[bytes, list[str]]:
    import zstandard

    out: list[bytes] = []
    rest = raw
    while rest:
        d = zstandard.ZstdDecompressor().decompressobj()
        try:
            out.append(d.decompress(rest))
        except zstandard.ZstdError as exc:
            return b"".join(out), [f"{name}: corrupt zstd data ({exc}); kept what came before"]
        if not d.eof:
            done = sum(map(len, out))
            return b"".join(out), [
                f"{name}: truncated zstd stream; kept the {done} bytes decompressed before the end"
            ]
        rest = d.unused_data
    return b"".join(out), []


# -- paths ----------------------------------------------------------------------------------


def _strip_compression(name: str) -> str:
    for suffix in _COMPRESSED_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def source_name_from_path(path: Path) -> str:
    """``logs/client-u2.log.2.gz`` -> ``client-u2``: compression, rotation and extension go."""
    name = _strip_compression(path.name)
    m = _ROTATED.match(name) or _DATED.match(name)
    if m:
        name = m.group("base")
    for ext in _LOG_EXTENSIONS:
        if name.endswith(ext) and len(name) > len(ext):
            return name[: -len(ext)]
    return name


def _rotation_key(path: Path) -> tuple[str, str, int, int, str]:
    """Order rotated sets oldest first: app.log.2.gz, app.log.1, app.log (logrotate numbering);
    date-stamped rotations sort by their stamp's date, time and epoch (whatever its separators:
    ``app.log-20260102`` before ``app.log-2026-01-03``), before the live file."""
    name = _strip_compression(path.name)
    m = _ROTATED.match(name)
    if m:
        return (str(path.parent), m.group("base"), 0, -int(m.group("n")), "")
    m = _DATED.match(name)
    if m:
        date = re.sub(r"\D", "", m.group("date"))
        time = re.sub(r"\D", "", m.group("time") or "").ljust(6, "0")
        epoch = (m.group("epoch") or "").rjust(10, "0")
        return (str(path.parent), m.group("base"), 1, 0, f"{date}{time}{epoch}")
    return (str(path.parent), name, 2, 0, "")


def _zero_dirs(pattern: str) -> list[str]:
    """``pattern`` and its forms with any ``**/`` matching no directory (as in glob and
    gitignore): ``**/*.jsonl`` -> ``**/*.jsonl``, ``*.jsonl``; ``a/**/b`` -> also ``a/b``."""
    head, sep, tail = pattern.partition("**/")
    if not sep:
        return [pattern]
    if head and not head.endswith("/"):
        # x**/: the ** is part of a name, not a whole path segment
        return [head + sep + rest for rest in _zero_dirs(tail)]
    return [head + keep + rest for rest in _zero_dirs(tail) for keep in (sep, "")]


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(
        fnmatch.fnmatch(rel, p) or fnmatch.fnmatch(name, p)
        for pattern in patterns
        for p in _zero_dirs(pattern)
    )


def _not_a_file(path: Path) -> str:
    """What a path that is no regular file is, in a few words."""
    if path.is_symlink() and not path.exists():
        try:
            path.stat()
        except OSError as exc:
            if exc.errno == errno.ELOOP:  # (said as "a link to a missing file", review 19a)
                return "a link loop"
        return "a link to a missing file"
    return "not a regular file (a pipe, socket or device)"


def _walk_dir(
    path: Path,
    include: Sequence[str] | None,
    exclude: Sequence[str] | None,
    skip_dir: Path | None,
    notes: list[str],
) -> tuple[list[Path], int]:
    """The files under directory ``path`` that pass the globs, and how many the include globs
    left out."""
    found: list[Path] = []
    # Links to directories are followed (like find -L, rg -L): an archive linked into
    # the log directory is part of it. Each directory is walked once: first every real
    # directory under ``path``, then the links, so a directory is reached by its own
    # path (the one include/exclude globs are written for) before any link to it; a link
    # loop or a second link to a directory ends there, with a note.
    walked: dict[Path, Path] = {_resolved(path): path}
    links: list[Path] = []  # links to directories, walked after the real directories
    left_out = 0  # files the include globs did not match

    def claim(sub: Path) -> bool:
        """Whether ``sub`` is the first path reaching its directory (then it is walked)."""
        real = _resolved(sub)
        if real == skip_dir:
            return False
        first = walked.get(real)
        if first is not None:
            notes.append(
                f"{sub}: a link to {first}, a directory walked already "
                "(a loop, or a second path to it); not walked again"
                if sub.is_symlink()
                else f"{sub}: the same directory as {first}; walked once"
            )
            return False
        walked[real] = sub
        return True

    def walk(top: Path) -> None:
        nonlocal left_out
        hidden: list[str] = []  # said, not read: a hidden directory may hold logs

        def unreadable(exc: OSError) -> None:
            # said, not skipped unsaid (review 19a: its logs' deliveries read as drops); not
            # fatal (review 19c: a lost+found beside the logs stopped every reading, and
            # watch), nor said where the exclude globs leave it out
            where = Path(os.fsdecode(exc.filename or top))
            if where == path:  # the directory named itself: as a named file, fatal (19d)
                raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None
            rel = where.relative_to(path).as_posix() if where.is_relative_to(path) else where.name
            if not (exclude and _matches(f"{rel}/-", exclude)):
                notes.append(
                    f"{exc.filename}: cannot read the directory: {exc.strerror or exc}; its "
                    "files, if any, not read"
                )

        for root, dirs, files in os.walk(top, onerror=unreadable):  # (links not descended)
            keep: list[str] = []
            here = Path(root).relative_to(top)
            for d in sorted(dirs):
                if d.startswith("."):
                    if d not in _NO_LOGS and _resolved(Path(root) / d) != skip_dir:
                        hidden.append(f"{(here / d).as_posix()}/")
                    continue
                sub = Path(root) / d
                if sub.is_symlink():
                    links.append(sub)
                elif claim(sub):
                    keep.append(d)
            dirs[:] = keep
            for f in sorted(files):
                if f.startswith("."):
                    if f not in _NO_LOGS:
                        hidden.append((here / f).as_posix())
                    continue
                if any(fnmatch.fnmatch(f, p) for p in _NOT_LOGS) or _CACHE_ENTRY.match(f):
                    continue
                full = Path(root) / f
                rel = full.relative_to(path).as_posix()
                if include and not _matches(rel, include):
                    left_out += 1
                    continue
                if exclude and _matches(rel, exclude):
                    continue
                if not full.is_file():
                    # a FIFO would block the read, a socket or a dangling link fail it
                    notes.append(f"{full}: {_not_a_file(full)}; skipped")
                    continue
                found.append(full)
        if hidden:
            names = ", ".join(hidden[:3]) + (
                f" and {len(hidden) - 3} more" if len(hidden) > 3 else ""
            )
            notes.append(
                f"{top}: {len(hidden)} hidden entr{'y' if len(hidden) == 1 else 'ies'} not read "
                f"({names}); name one to read it"
            )

    walk(path)
    for link_dir in links:  # grows while links are walked: links found in them
        if claim(link_dir):
            walk(link_dir)
    return found, left_out


def expand_paths(
    paths: Iterable[str | os.PathLike[str] | Source],
    *,
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    warnings: list[str] | None = None,
) -> list[Source]:
    """Turn the user's inputs into sources: files as given, directories walked recursively
    (links to directories followed, each directory walked once; hidden entries, ``cache_dir``
    and the cache's entries skipped, so are pipes, sockets and dangling links; include/exclude
    globs on the relative path or the name, ``**/`` also matching no directory), ``-`` as stdin.
    Rotated sets read oldest first, also when named one by one (``app.log*``). A file reached
    twice (named again, or by another path or a link) is read once, the first time. A missing
    path raises InputError. What was skipped is appended to ``warnings``."""
    notes = warnings if warnings is not None else []
    sources: list[Source] = []
    run: list[Path] = []  # consecutive file arguments, e.g. a shell glob of a rotated set
    skip_dir = _resolved(Path(cache_dir)) if cache_dir is not None else None

    def flush() -> None:
        sources.extend(FileSource(p) for p in sorted(run, key=_rotation_key))
        run.clear()

    for item in paths:
        if isinstance(item, Source):
            flush()
            sources.append(item)
            continue
        text = os.fspath(item)
        if text == "-":
            flush()
            if any(isinstance(s, StdinSource) for s in sources):
                # stdin is read once: a second "-" would only find it empty
                notes.append("-: stdin given twice; read once")
                continue
            sources.append(StdinSource())
            continue
        path = Path(text)
        if path.is_dir():
            flush()
            found, left_out = _walk_dir(path, include, exclude, skip_dir, notes)
            if left_out and not found:
                notes.append(
                    f"{path}: none of its {left_out} file(s) matches include "
                    f"{', '.join(include or ())}; nothing read from it"
                )
            sources.extend(FileSource(p) for p in sorted(found, key=_rotation_key))
        elif path.exists():
            run.append(path)
        elif path.is_symlink():
            raise InputError(f"{text}: {_not_a_file(path)}")
        else:
            raise InputError(f"{text}: no such file or directory")
    flush()
    return _read_once(sources, notes)


def _resolved(path: Path) -> Path:
    try:
        return path.resolve()
    except (OSError, RuntimeError):  # a link loop
        return path.absolute()


def _read_once(sources: list[Source], notes: list[str]) -> list[Source]:
    """Drop a file reached again (named twice, a directory plus a file in it, a link next to
    its target): read twice, every event of it would be a made-up duplicate."""
    seen: dict[Path, FileSource] = {}
    kept: list[Source] = []
    again: list[tuple[FileSource, FileSource]] = []
    for src in sources:
        if isinstance(src, FileSource):
            key = _resolved(src.path)
            first = seen.get(key)
            if first is not None:
                again.append((src, first))
                continue
            seen[key] = src
        kept.append(src)
    if len(again) == 1:
        dup, first = again[0]
        notes.append(
            f"{dup.name}: given twice; read once"
            if dup.name == first.name
            else f"{dup.name}: the same file as {first.name}; read once"
        )
    elif again:
        dup, first = again[0]
        notes.append(
            f"{len(again)} inputs are files read already (given again, or by another path or "
            f"link); each read once (first: {dup.name}, the same file as {first.name})"
        )
    return kept
