"""The account of what was read: counts, the first few examples, file-level warnings."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Final

if TYPE_CHECKING:
    import polars as pl

__all__ = ["MAX_EXAMPLES", "MAX_LINES_KEPT", "InputStats"]

#: How many ``file:line: reason`` examples are kept per kind; the counts are always exact.
MAX_EXAMPLES: Final = 10
#: How many malformed lines' numbers are kept per file (:attr:`InputStats.malformed_lines`).
MAX_LINES_KEPT: Final = 10_000


@dataclass
class InputStats:
    """Exact counts of what :func:`collect` read, with a few examples of what went wrong.

    ``lines`` counts physical lines (blank ones too); every non-blank line ends up as exactly one
    of: an event, ``malformed`` (unusable, with a reason) or ``ignored`` (readable but not a
    trace event, e.g. a legacy line without a stage tag or a foreign OTLP span). ``unlinked``
    counts message events that could not be tied to a trace id (they are still in the table,
    with a null ``trace_id``).
    """

    files: int = 0
    lines: int = 0
    events: int = 0
    malformed: int = 0
    unlinked: int = 0
    ignored: int = 0
    bytes: int = 0
    examples: list[str] = field(default_factory=list)
    unlinked_examples: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    formats: dict[str, int] = field(default_factory=dict)
    #: events lacking a required key (schema v1) that were kept anyway, per key
    missing: dict[str, int] = field(default_factory=dict)
    #: events the instrumentation itself reported dropping (``TRACEKIT.dropped``)
    dropped_by_sink: int = 0
    cached: bool = False
    #: per file, the numbers of its malformed lines (at most :data:`MAX_LINES_KEPT`): a seq
    #: jump across one is a line tracekit skipped, not an event the logging lost
    malformed_lines: dict[str, list[int]] = field(default_factory=dict)
    #: (file, text) -> (index in warnings, count so far), for :meth:`warn_count`
    _counted: dict[tuple[str, str], tuple[int, int]] = field(
        default_factory=dict, repr=False, compare=False
    )

    def to_dict(self) -> dict[str, Any]:
        return {
            "files": self.files,
            "lines": self.lines,
            "events": self.events,
            "malformed": self.malformed,
            "unlinked": self.unlinked,
            "ignored": self.ignored,
            "bytes": self.bytes,
            "examples": list(self.examples),
            "unlinked_examples": list(self.unlinked_examples),
            "warnings": list(self.warnings),
            "formats": dict(sorted(self.formats.items())),
            "missing": dict(sorted(self.missing.items())),
            "dropped_by_sink": self.dropped_by_sink,
            "cached": self.cached,
            "malformed_lines": {f: list(lines) for f, lines in self.malformed_lines.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> InputStats:
        names = cls.__dataclass_fields__
        return cls(**{k: v for k, v in data.items() if k in names})

    # -- recording -------------------------------------------------------------------------

    def malformed_line(self, file: str, line: int, reason: str) -> None:
        self.malformed += 1
        self._keep_lines(file, [line])
        if len(self.examples) < MAX_EXAMPLES:
            self.examples.append(f"{file}:{line}: {reason}")

    def _keep_lines(self, file: str, lines: list[int]) -> None:
        kept = self.malformed_lines.setdefault(file, [])
        kept.extend(lines[: max(0, MAX_LINES_KEPT - len(kept))])

    def malformed_frame(self, file: str, bad: pl.DataFrame) -> None:
        """Record rows of ``bad`` (columns ``line`` and ``reason``) as malformed."""
        self.malformed += bad.height
        if bad.height:
            self._keep_lines(file, bad.get_column("line").head(MAX_LINES_KEPT).to_list())
        room = MAX_EXAMPLES - len(self.examples)
        if room > 0 and bad.height:
            for line, reason in bad.select("line", "reason").head(room).iter_rows():
                self.examples.append(f"{file}:{line}: {reason}")

    def unlinked_frame(self, rows: pl.DataFrame) -> None:
        """Record ``rows`` (columns ``file``, ``line`` and ``reason``) as unlinked: linking
        spans every input, so the rows name their files."""
        self.unlinked += rows.height
        room = MAX_EXAMPLES - len(self.unlinked_examples)
        if room > 0 and rows.height:
            for file, line, reason in rows.select("file", "line", "reason").head(room).iter_rows():
                self.unlinked_examples.append(f"{file}:{line}: {reason}")

    def merge(self, part: InputStats) -> None:
        """Add the account of a later part of the same read (a block of a large file):
        counts add up, examples keep their order, counted warnings are summed."""
        for name in (
            "files",
            "lines",
            "events",
            "malformed",
            "unlinked",
            "ignored",
            "bytes",
            "dropped_by_sink",
        ):
            setattr(self, name, getattr(self, name) + getattr(part, name))
        self.examples.extend(part.examples[: max(0, MAX_EXAMPLES - len(self.examples))])
        room = max(0, MAX_EXAMPLES - len(self.unlinked_examples))
        self.unlinked_examples.extend(part.unlinked_examples[:room])
        counted = {index: key for key, (index, _) in part._counted.items()}
        for index, message in enumerate(part.warnings):
            key = counted.get(index)
            if key is None:
                self.warn(message)
            else:
                self.warn_count(key[0], part._counted[key][1], key[1])
        for missing_key, n in part.missing.items():
            self.count_missing(missing_key, n)
        for name, n in part.formats.items():
            self.formats[name] = self.formats.get(name, 0) + n
        for file, lines in part.malformed_lines.items():
            self._keep_lines(file, lines)

    def warn(self, message: str) -> None:
        if message not in self.warnings:
            self.warnings.append(message)

    def amend(self, message: str, new: str) -> None:
        """``message`` (a warning given) says ``new`` now, in its place in the order: a
        warning that introduces lines stays ahead of what their reader says of them."""
        self.warnings[self.warnings.index(message)] = new

    def warn_count(self, file: str, n: int, text: str) -> None:
        """Warn ``"{file}: {n} {text}"``; another call for the same file and text adds to
        that warning's count (a file read in blocks still warns once)."""
        before = self._counted.get((file, text))
        if before is None:
            self._counted[(file, text)] = (len(self.warnings), n)
            self.warnings.append(f"{file}: {n} {text}")
            return
        index, total = before[0], before[1] + n
        self._counted[(file, text)] = (index, total)
        self.warnings[index] = f"{file}: {total} {text}"

    def count_missing(self, key: str, n: int) -> None:
        if n:
            self.missing[key] = self.missing.get(key, 0) + n
