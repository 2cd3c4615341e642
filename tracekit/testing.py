"""Helpers for testing code instrumented with tracekit, shipped for users (like structlog's).

- :func:`capture` swaps in an in-memory sink for a block and restores what was there before.
- :func:`analyze_events` runs the analysis on captured events, event dicts, or log files.
- ``assert_complete``, ``assert_no_findings``, ``assert_latency``: assertions whose failure
  message shows each failing message's path as a timeline, the missing hop marked.

Importing this module stays light (the pytest plugin imports it in every session): polars and
the analyzers load on the first analysis.
"""

from __future__ import annotations

import itertools
import os
import re
import weakref
from collections.abc import Iterable, Iterator, Mapping, MutableMapping, Sequence
from contextlib import contextmanager
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, TypeAlias

from tracekit import _core
from tracekit._sinks import MemorySink, Sink
from tracekit.schema import META_STAGE

if TYPE_CHECKING:
    import polars as pl

    from tracekit.analyzers import Pipeline, Report

__all__ = [
    "CapturedEvents",
    "Events",
    "analyze_events",
    "assert_complete",
    "assert_latency",
    "assert_no_findings",
    "capture",
    "format_timeline",
    "load_events",
    "unreadable",
]


class CapturedEvents(list[dict[str, Any]]):
    """The events emitted inside :func:`capture`, in emission order, each as written: parsed
    from its JSON line (JSON types: a tuple is a list, a datetime its text, an int key a str)."""

    def filter(self, **match: Any) -> list[dict[str, Any]]:
        """Events whose keys equal every given value, e.g. ``filter(stage="REST")``."""
        return [e for e in self if all(e.get(k) == v for k, v in match.items())]

    def hops(self) -> list[str]:
        """``stage.action`` of every message event, in order (meta events left out)."""
        return [f"{e['stage']}.{e['action']}" for e in self if e["stage"] != META_STAGE]


#: What the analysis helpers accept: event dicts (e.g. :class:`CapturedEvents`), an event
#: table, or log files/directories (read with :mod:`tracekit.collectors`).
Events: TypeAlias = "Iterable[Mapping[str, Any]] | pl.DataFrame | pl.LazyFrame | str | os.PathLike[str] | Sequence[str | os.PathLike[str]]"


@contextmanager
def capture(
    *, service: str | None = None, source: str = "test-1", **options: Any
) -> Iterator[CapturedEvents]:
    """Capture emitted events in memory for the block (process-wide, all threads). Each is
    kept as written, parsed from its JSON line (as a callable sink gets it): JSON types, not
    the app's objects (a tuple comes back as a list, a datetime as its text, an int key a str).

    Where the app has configured tracekit, the block keeps that configuration (its service,
    actor, redaction, processors, OpenTelemetry, level) and its sink, which still gets every
    event: the capture is added, not swapped in (review 19b: a test's events took the actor
    ``test`` and the app's log got nothing). Not its sampling: a capture keeps every message
    unless given ``sample=``. ``source`` is the block's own; its ``seq`` runs from 1, or, where
    the app's log gets the events too, on from the last block of that name (a log where a
    source starts over reads as a restart). ``options`` are :func:`tracekit.configure`'s
    (``actor=``, ``otel=``, ``redact=``, ``sample=``...) and override the app's; ``service=``
    alone takes the actor with it, as in ``configure``. Without a configuration, its
    defaults (service ``test``).

    Opened inside ``Instrumentation.activate()``, where the block's events go to that
    instance, the capture takes them too, as the instance writes them (its source, seq,
    actor, sampling; its sink still gets each one). An instance activated only inside the
    block keeps writing to its own sink alone. A ``configure()`` inside the block replaces
    the block's configuration for the rest of it, as it replaces any (its source, sink...);
    the capture still takes its events, as it writes them. At the block's end it is undone
    and the sink it opened closed.
    """
    events = CapturedEvents()
    base = _core._emitter
    app = base.config if base is not None else None

    def given(name: str, default: Any) -> Any:
        return options.pop(name) if name in options else (getattr(app, name) if app else default)

    sink = _Capture(events, also=base.sink if base is not None else None)
    config = _core._make_config(
        service=service if service is not None else (app.service if app else "test"),
        source=source,
        # (service= given: its actor, as configure() makes it; review 19c)
        actor=options.pop("actor", None) if service is not None else given("actor", None),
        sink=sink,
        otel=given("otel", False),
        redact=given("redact", True),
        sample=options.pop("sample", 1.0),  # (an app sampling 0% captured nothing, 19c)
        processors=given("processors", ()),
        max_queue=100_000,
        level=given("level", "info"),
    )
    if options:
        raise TypeError(f"capture() got unexpected options: {', '.join(sorted(options))}")
    seq = _teed_seq(base.sink, source) if base is not None else None
    emitter = _core._Emitter(config, sink, seq=seq)
    emitter.transient = True
    # (review 20a: the activated instance won over the capture, which got nothing)
    scoped = _core._scoped.get()
    keep = sink.keep
    if scoped is not None:
        _core._tap(scoped, keep)
    previous = _core._swap(emitter)
    try:
        yield events
    finally:
        if scoped is not None:
            _core._untap(scoped, keep)
        _core._restore(previous, emitter)


#: Per app sink and source name, the seq of the blocks whose events that sink gets too: a
#: second block of that name goes on numbering (review 19c: each started at 1 in the app's
#: log, a restart there). Another sink (a test's own log) numbers from 1 again.
_TEED_SEQS: weakref.WeakKeyDictionary[Any, dict[str, Iterator[int]]] = weakref.WeakKeyDictionary()
_TEED_ANY: dict[str, Iterator[int]] = {}  # (sinks that take no weak reference)


def _teed_seq(sink: Any, source: str) -> Iterator[int]:
    try:
        by_source = _TEED_SEQS.setdefault(sink, {})
    except TypeError:
        by_source = _TEED_ANY
    return by_source.setdefault(source, itertools.count(1))


class _Capture(MemorySink):
    """The capture's sink: the events in memory, and each line also to ``also`` (the app's
    own sink, which its emitter, swapped out for the block, still owns: not closed here)."""

    def __init__(self, events: CapturedEvents, also: Sink | None = None) -> None:
        super().__init__()
        self.events = events
        self.also = also

    def keep(self, event: MutableMapping[str, Any], line: bytes) -> None:
        """Keep the event in memory only (a tap on an activated Instrumentation's emitter)."""
        super().submit(event, line)

    def submit(self, event: MutableMapping[str, Any], line: bytes) -> None:
        super().submit(event, line)
        if self.also is not None:
            try:  # the app's sink failing is the app's: the capture has the event (19c)
                self.also.submit(event, line)
            except Exception:
                pass

    def flush(self, timeout: float = 2.0) -> bool:
        if self.also is not None:
            try:
                self.also.flush(timeout)
            except Exception:
                pass
        return True  # (everything captured is in memory)


# -- analysis ------------------------------------------------------------------------------


def load_events(events: Events) -> pl.LazyFrame:
    """Turn any :data:`Events` into an event table."""
    return _load(events)[0]


def _load(events: Events) -> tuple[pl.LazyFrame, dict[str, Any] | None]:
    """:func:`load_events`, and the collectors' account of the files where it read some (the
    report's ``inputs``: what was read, and what could not be)."""
    import polars as pl

    from tracekit.table import events_frame

    if isinstance(events, pl.LazyFrame):
        return events, None
    if isinstance(events, pl.DataFrame):
        return events.lazy(), None
    if isinstance(events, str | os.PathLike):
        events = [events]
    items = list(events)  # type: ignore[arg-type]
    paths = [str(i) for i in items if isinstance(i, str | os.PathLike)]
    dicts = [i for i in items if isinstance(i, Mapping)]
    if len(paths) + len(dicts) < len(items):  # (skipped, they were checked as nothing)
        odd = next(i for i in items if not isinstance(i, str | os.PathLike | Mapping))
        raise TypeError(
            "events: event dicts, log file or directory paths, or an event table; got an item "
            f"of type {type(odd).__name__}"
        )
    if isinstance(events, CapturedEvents):
        dicts = _from_one(dicts)
    frames = [events_frame(_canonical(e) for e in dicts).lazy()] if dicts or not paths else []
    if not paths:
        return frames[0], None
    from tracekit.collectors import collect

    # logs and captured events together (review 19b: the paths were left out, unread)
    collected = collect(paths)
    frames.insert(0, collected.events)
    both = pl.concat(frames, how="diagonal_relaxed") if len(frames) > 1 else frames[0]
    return both, collected.inputs.to_dict()


def _from_one(events: list[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """A capture's events numbered from 1 per source, as a log of their own: a block's seq
    goes on from an earlier block's where the app's log gets the events too, and from the
    instance's where it taps an activated one, and a log that begins above 1 lost its
    beginning (a ``log_gap`` that left the block's drops undecided). The block holds every
    event it emitted; an event the emitter lost in it is still a gap: it took a seq, which
    its TRACEKIT.dropped line names (``lost_seq``: the block's first event lost counts
    from its seq)."""
    first: dict[Any, int] = {}
    for e in events:
        for key in ("seq", "lost_seq") if e.get("stage") == META_STAGE else ("seq",):
            seq = e.get(key)
            if isinstance(seq, int) and not isinstance(seq, bool):
                src = e.get("source")
                first[src] = min(seq, first.get(src, seq))
    if all(q <= 1 for q in first.values()):
        return events
    return [
        {**e, "seq": e["seq"] - first[e.get("source")] + 1}
        if isinstance(e.get("seq"), int) and not isinstance(e.get("seq"), bool)
        else e
        for e in events
    ]


def unreadable(inputs: Mapping[str, Any] | None) -> list[str]:
    """What a reading of log files lost (its ``inputs``), one phrase each: lines that could
    not be read, a compressed log cut short or corrupt. A file that is no log at all (the
    app's database next to its logs) loses nothing: skipped, as ``tracekit analyze`` does.
    Empty when nothing was lost."""
    if not inputs:
        return []
    said = []
    malformed = int(inputs.get("malformed") or 0)
    if malformed:
        examples = "; ".join(str(e) for e in (inputs.get("examples") or [])[:5])
        said.append(f"{malformed} line(s) that could not be read: {examples}")
    # (a compressed log cut short lost its end without a malformed line to show; said by
    # the collectors as "NAME: truncated gzip stream...", "NAME: corrupt zstd data...": the
    # words in a path are no loss, review 18c)
    broken = [str(w) for w in inputs.get("warnings") or [] if _CUT_SHORT.search(str(w))]
    return said + broken[:3]


_CUT_SHORT: Final = re.compile(r": (?:truncated|corrupt) (?:gzip|bz2|zstd) ")


def _complete_logs(inputs: Mapping[str, Any] | None) -> None:
    """An assertion over log files fails where their reading lost lines: a lost line may hold
    the missing hop, so a pass would say nothing (as the pytest plugin's ``tracekit_logs``)."""
    __tracebackhide__ = True
    lost = unreadable(inputs)
    if lost:
        raise AssertionError(
            "the logs hold what could not be read (a lost line may hold the missing hop): "
            + "; ".join(lost)
        )


def _model(pipeline: Pipeline | str | os.PathLike[str] | None) -> Pipeline | None:
    """A pipeline given as a TOML file's path, loaded; a :class:`Pipeline` or None as is."""
    if isinstance(pipeline, str | os.PathLike):
        from tracekit.analyzers import load_pipeline

        return load_pipeline(Path(pipeline))
    return pipeline


def _canonical(event: Mapping[str, Any]) -> Mapping[str, Any]:
    """The event with its trace id in the form the log readers give it (a UUID or upper-case
    hex is 32 lower-case hex), so dicts and files of the same events analyze alike."""
    from tracekit.errors import SchemaError
    from tracekit.schema import normalize_trace_id

    tid = event.get("trace_id")
    if tid is None or (type(tid) is str and len(tid) == 32 and tid.islower()):
        return event
    try:
        return {**event, "trace_id": normalize_trace_id(tid)}
    except SchemaError:
        return event


def analyze_events(
    events: Events,
    *,
    pipeline: Pipeline | str | os.PathLike[str] | None = None,
    grace: timedelta | str = timedelta(0),
    slo: Mapping[str, timedelta | str] | None = None,
) -> Report:
    """Analyze events. ``grace`` defaults to zero: when a test is over, whatever has not
    arrived is missing, not in flight."""
    from tracekit.analyzers import analyze

    table, inputs = _load(events)
    return analyze(
        table,
        pipeline=_model(pipeline),
        grace=_td(grace),
        slo={k: _td(v) for k, v in slo.items()} if slo else None,
        inputs=inputs,
    )


def _td(value: timedelta | str) -> timedelta:
    if isinstance(value, timedelta):
        return value
    if not isinstance(value, str):  # (5: seconds? milliseconds? said, not guessed)
        raise TypeError(
            f"a duration: a datetime.timedelta or text such as '500ms' or '2s', got "
            f"{type(value).__name__}"
        )
    from tracekit.cli._units import parse_duration

    return parse_duration(value)


#: What a reached hop's line adds, by its timeline status.
_REACHED_NOTE: Final = {
    "duplicate": " (duplicate)",
    "removed": " (took it off: dropped)",
    "in_flight": " (in flight)",
}
#: How a hop not reached is marked, by its timeline status.
_UNREACHED: Final = {
    "dropped": ("✗", "missing"),
    "failed": ("✗", "tried and failed: its line is at an error level"),
    "in_flight": ("…", "in flight"),
    "undecided": ("?", "undecided: lines naming no recipient may hold it"),
    "in_log_gap": ("?", "undecided: its log lost events here, see log_gap"),
    "not_reached": ("·", "not reached"),
}


def format_timeline(
    events: Events,
    trace_id: str,
    pipeline: Pipeline | str | os.PathLike[str] | None = None,
    *,
    grace: timedelta | str = timedelta(0),
) -> str:
    """One message's path as text: a line per hop per recipient; a hop not reached is marked
    ✗ (missing: a drop; or tried and failed, its line at an error level), … (in flight: the
    logs end inside the grace window), ? (undecided) or · (not reached, after one of those); a
    duplicate's count says so. ``grace`` as for
    :func:`analyze_events` (zero: the test is over)."""
    from dataclasses import replace

    from tracekit.analyzers import default_pipeline, timeline

    model = replace(_model(pipeline) or default_pipeline(), grace=_td(grace))
    frame = timeline(load_events(events), trace_id, pipeline=model)
    lines = [f"message {trace_id}:"]
    if frame.is_empty():  # (review 19b: a header alone read as a message with no hop)
        lines.append("  no event of this trace in the events given")
    current: object = ()
    for row in frame.iter_rows(named=True):
        if row["recipient"] != current:
            current = row["recipient"]
            lines.append(f"  recipient {current}:" if current else "  message hops:")
        if row["reached"]:
            ts = row["timestamp"].strftime("%H:%M:%S.%f") if row["timestamp"] else "?"
            lat = f"+{row['latency_ms']:.1f} ms" if row["latency_ms"] is not None else ""
            where = f"{row['file']}:{row['line']}" if row.get("file") else ""
            extra = f" x{row['count']}" if row["count"] > 1 else ""
            extra += _REACHED_NOTE.get(row["status"], "")
            lines.append(
                f"    ✓ {row['stage_action']:<22} {row['source'] or '':<18} {ts} {lat:>11}"
                f"{extra}  {where}".rstrip()
            )
        else:
            mark, why = _UNREACHED.get(row["status"], ("✗", "missing"))
            # (a hop tried and failed: where its failing line is)
            where = f"  {row['file']}:{row['line']}" if row.get("file") else ""
            lines.append(f"    {mark} {row['stage_action']:<22} ({why}){where}")
    return _printed(lines)


def _read(events: Events) -> pl.DataFrame:
    """The events as one table, read once: a generator (or stdin) cannot be read again for the
    explanation or the trace ids. Log files that lost lines fail (:func:`_complete_logs`)."""
    __tracebackhide__ = True
    table, inputs = _load(events)
    _complete_logs(inputs)
    return table.collect()


def _kinds(kinds: str | Iterable[str] | None) -> set[str] | None:
    """``kinds`` as a set of finding kinds: a string is one kind (not its letters); a kind
    that no finding has would make the check pass without checking anything: a ValueError."""
    if kinds is None:
        return None
    from tracekit.cli._gates import FINDING_KINDS

    wanted = {kinds} if isinstance(kinds, str) else set(kinds)
    unknown = sorted(str(k) for k in wanted - set(FINDING_KINDS))
    if unknown or not wanted:
        what = f"unknown finding kind(s) {', '.join(map(repr, unknown))}" if unknown else "no kind"
        raise ValueError(f"{what}: use one or more of {', '.join(FINDING_KINDS)}")
    return wanted


def _traces(traces: str | Iterable[str] | None) -> set[str] | None:
    """Trace ids in the events' form (32 lower-case hex): a UUID maps to its hex."""
    if traces is None:
        return None
    from tracekit.schema import normalize_trace_id

    return {normalize_trace_id(t) for t in ([traces] if isinstance(traces, str) else traces)}


def _explain(
    events: Events,
    findings: Sequence[Mapping[str, Any]],
    pipeline: Pipeline | None,
    limit: int,
    grace: timedelta | str = timedelta(0),
) -> str:
    table = load_events(events).collect().lazy()
    lines = []
    for f in findings[:limit]:
        where = ", ".join(
            f"{k}={f[k]}" for k in ("recipient", "stage", "last_seen", "source") if f.get(k)
        )
        lines.append(f"- {f['kind']} {f.get('trace_id') or ''} ({where}): {f.get('detail', '')}")
    shown: list[str] = []
    for f in findings:
        tid = f.get("trace_id")
        if tid and tid not in shown and len(shown) < limit:
            shown.append(tid)
    parts = [
        _printed(lines),
        "",
        *(format_timeline(table, tid, pipeline, grace=grace) for tid in shown),
    ]
    if len(findings) > limit:
        parts.append(f"... and {len(findings) - limit} more findings")
    return "\n".join(parts)


def _printed(lines: Iterable[str]) -> str:
    """Lines holding log text, made safe for a terminal (pytest prints them) and joined."""
    from tracekit.cli._safe import printable

    return "\n".join(printable(line) for line in lines)


def assert_no_findings(
    events: Events,
    kinds: str | Iterable[str] | None = None,
    *,
    pipeline: Pipeline | str | os.PathLike[str] | None = None,
    grace: timedelta | str = timedelta(0),
    limit: int = 5,
    allow_empty: bool = False,
) -> None:
    """Fail if the analysis finds anything of ``kinds`` (default: every kind; a string is one
    kind), or if the events hold no message at all (nothing was checked) unless
    ``allow_empty=True``. An unknown kind is a ValueError (it would check nothing)."""
    __tracebackhide__ = True  # (pytest shows the assertion, not our frames)
    wanted = _kinds(kinds)
    table = _read(events)
    model = _model(pipeline)  # (loaded once: the explanation uses it too)
    report = analyze_events(table, pipeline=model, grace=grace).to_dict()
    _require_messages(report, allow_empty, table)
    found = [f for f in report["findings"] if wanted is None or f["kind"] in wanted]
    if found:
        raise AssertionError(
            f"tracekit found {len(found)} problem(s):\n"
            + _explain(table, found, model, limit, grace)
        )


def assert_complete(
    events: Events,
    *,
    traces: str | Iterable[str] | None = None,
    within: timedelta | str | None = None,
    pipeline: Pipeline | str | os.PathLike[str] | None = None,
    limit: int = 5,
    allow_empty: bool = False,
) -> None:
    """Every message (or those of ``traces``) reached every expected recipient's final hop,
    exactly once, in order, and (with ``within``) end to end within that time.

    Events holding no message at all fail (a check of nothing must not pass) unless
    ``allow_empty=True``. ``traces`` are trace ids (32 hex, or the client's message UUID)."""
    __tracebackhide__ = True
    wanted = _traces(traces)
    limit_td = _td(within) if within is not None else None
    slo = {"end_to_end": limit_td} if limit_td is not None else None
    table = _read(events)
    model = _model(pipeline)  # (loaded once: the explanation uses it too)
    report = analyze_events(table, pipeline=model, slo=slo).to_dict()
    kinds = {"drop", "in_flight", "duplicate", "unexpected", "reorder", "log_gap"}
    if within is not None:
        kinds.add("slo_breach")
    found = [
        f
        for f in report["findings"]
        if f["kind"] in kinds
        and (wanted is None or f.get("trace_id") in wanted or f.get("trace_id") is None)
    ]
    if wanted is not None:
        seen = _trace_ids(table)
        missing = sorted(wanted - seen)
        if missing:
            raise AssertionError(f"no events at all for trace(s): {', '.join(missing)}")
    _require_messages(report, allow_empty, table)
    if found:
        summary = report["summary"]
        late = limit_td is not None and all(f["kind"] == "slo_breach" for f in found)
        # the counts are the whole analysis': said only where it is what was asked about
        # (review 19b: "every message was delivered (3/4 deliveries)" of two given traces)
        counts = (
            f" ({summary['delivered']}/{summary['deliveries_expected']} deliveries)"
            if wanted is None
            else f" (of the {len(wanted)} trace(s) given)"
        )
        head = (
            f"every message was delivered{counts}, not every one within "
            f"{limit_td.total_seconds() * 1e3:g} ms"
            if late and limit_td is not None
            else _head(found, summary, counts, wanted is None)
        )
        raise AssertionError(f"{head}:\n" + _explain(table, found, model, limit))
    # a time limit over no delivery checks nothing: fail, as a latency gate without samples
    # does (README)
    samples = report["latency"]["end_to_end"]["count"]
    if limit_td is not None and report["summary"]["messages"] and not samples:
        raise AssertionError(
            "no end-to-end latency samples to check within="
            f"{limit_td.total_seconds() * 1e3:g} ms: no delivery reached its final hop "
            "(no expected recipient?)"
        )


#: What a finding of a kind says of messages that were all delivered (``_head``).
_DELIVERED_BUT: Final = {
    "duplicate": "some more than once",
    "log_gap": "and the logs lost events (a lost line may hold a missing hop)",
    "reorder": "not every one in the order it was persisted",
    "slo_breach": "not every one within its SLO",
    "unexpected": "and events no message's path expects (see the unexpected findings)",
}


def _head(found: list[dict[str, Any]], summary: Mapping[str, Any], counts: str, whole: bool) -> str:
    """The first line of a failed ``assert_complete``: every delivery made, and what else was
    found, where that is so (review 25d: "not every message was delivered completely (2/2
    deliveries)" of a reorder or a log gap)."""
    kinds = {f["kind"] for f in found}
    if (
        whole
        and summary["delivered"] == summary["deliveries_expected"]
        and kinds <= _DELIVERED_BUT.keys()
    ):
        said = ", ".join(_DELIVERED_BUT[k] for k in sorted(kinds))
        return f"every message was delivered{counts}, {said}"
    return f"not every message was delivered completely{counts}"


def _require_messages(
    report: Mapping[str, Any], allow_empty: bool, table: pl.DataFrame | None = None
) -> None:
    __tracebackhide__ = True
    if allow_empty or report["summary"]["messages"]:
        return
    traced = 0
    if table is not None:  # events of a message, of no hop of the pipeline: another model's
        import polars as pl

        traced = table.filter(
            pl.col("trace_id").is_not_null() & (pl.col("stage") != META_STAGE)
        ).height
    if traced:
        raise AssertionError(
            f"no messages to check: {traced} event(s) carry a trace id, but none is a hop that "
            "makes a message of the pipeline (its send hop): do the events follow another "
            "pipeline? Pass its model (pipeline=...)"
        )
    raise AssertionError(
        "no messages to check: the events hold no message event (is tracekit configured where "
        "the messages are sent, and do its events reach what was passed here?); pass "
        "allow_empty=True if no messages is a valid outcome"
    )


def _trace_ids(events: Events) -> set[str]:
    """The events' trace ids, each in its canonical form where it has one (as the analysis
    reads them: an upper-case or UUID spelling is the same message)."""
    import polars as pl

    from tracekit.table import canonical_trace_ids

    ids = pl.col("trace_id").cast(pl.String)
    frame = load_events(events).select(
        pl.coalesce(canonical_trace_ids(ids), ids).drop_nulls().unique().alias("trace_id")
    )
    return set(frame.collect()["trace_id"].to_list())


def assert_latency(
    events: Events,
    hop: str = "end_to_end",
    *,
    p50: timedelta | str | None = None,
    p95: timedelta | str | None = None,
    p99: timedelta | str | None = None,
    max: timedelta | str | None = None,
    pipeline: Pipeline | str | os.PathLike[str] | None = None,
) -> None:
    """Fail if a latency percentile of ``hop`` (``end_to_end`` or ``FROM->TO``) is over its
    limit, or if there are no samples to check; the message names the slowest messages,
    each with its path as a timeline. At least one limit must be given."""
    __tracebackhide__ = True
    limits = {"p50": p50, "p95": p95, "p99": p99, "max": max}
    if all(v is None for v in limits.values()):
        raise ValueError(
            "assert_latency checks nothing without a limit: give p50=, p95=, p99= or max="
        )
    model = _model(pipeline)
    # a misspelt hop has no samples ever: said as what it is, as `tracekit check` says it
    from tracekit.analyzers import default_pipeline
    from tracekit.cli._gates import Gate, check_hops

    check_hops(
        [Gate("max_latency", hop, 0, given_in="assert_latency")],
        model or default_pipeline(),
    )
    table = _read(events)
    latency = analyze_events(table, pipeline=model).to_dict()["latency"]
    if hop == "end_to_end":
        row = latency["end_to_end"]
    else:
        source, _, dest = hop.partition("->")
        row = next((r for r in latency["hops"] if (r["from"], r["to"]) == (source, dest)), None)
    if not row or not row.get("count"):
        raise AssertionError(f"no latency samples for {hop}")
    over, broken = [], []
    for name, limit in limits.items():
        if limit is None:
            continue
        limit_ms = _td(limit).total_seconds() * 1000
        value = row[f"{name}_ms"]
        if value is not None and value > limit_ms:
            over.append(f"{name} {value:.1f} ms > {limit_ms:g} ms")
            broken.append(_td(limit))
    if over:
        # the messages over the lowest limit broken: those that made the percentile
        slow = analyze_events(table, pipeline=model, slo={hop: min(broken)}).to_dict()
        head = "end to end" if hop == "end_to_end" else hop
        found = [
            f
            for f in slow["findings"]
            if f["kind"] == "slo_breach" and str(f["detail"]).startswith(head)
        ]
        raise AssertionError(
            f"latency of {hop} over {row['count']} samples: "
            + "; ".join(over)
            + (":\n" + _explain(table, found, model, 5) if found else "")
        )
