"""``tracekit watch``: follow growing logs and print findings once they are decided.

Each round re-reads the inputs (so rotation is just "the files changed") and analyzes them;
a finding is printed once, the first round it appears. ``in_flight`` is never printed: it is a
drop that is not decided yet, and becomes a ``drop`` once the logs go on past its grace window.
On a system gone quiet they never do: once no file has changed for the grace window, each
delivery still in flight is named once on the status stream, as undecided (a lost message and
a system with nothing more to log look alike from the logs).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.text import Text

from tracekit.analyzers import INPUT_COLUMNS, Pipeline, analyze
from tracekit.cli._safe import printable
from tracekit.collectors import collect
from tracekit.errors import InputError

__all__ = ["watch_paths"]


def _key(f: dict[str, Any]) -> tuple[Any, ...]:
    """What makes a finding the same one in a later round.

    Most findings are one per (trace, recipient, stage, source); their detail is not part of
    it, since it changes from round to round (how long the logs go on, a median, an offset).
    A source has a ``log_gap`` per jump in its ``seq``, so a gap is also told apart by the
    jump, the part of its detail before "; " (after it come the message paths the gap makes
    indeterminate, a list that grows), and by the line numbers of its evidence (the emitter's
    own TRACEKIT.dropped reports have no seq range); not by the file names, which rotation
    changes."""
    key: tuple[Any, ...] = (
        f["kind"],
        f.get("trace_id"),
        f.get("recipient"),
        f.get("stage"),
        f.get("source"),
    )
    if f["kind"] == "log_gap":
        lines = tuple(e.get("line") for e in f.get("evidence") or () if isinstance(e, dict))
        key += (str(f.get("detail") or "").partition("; ")[0], lines)
    return key


# A round that could not read its files is read again this many rounds running, for what
# settles by itself (a file rotated away between listing and reading); then not until the
# files change, so a read that always fails is not repeated (and paid for) every interval.
_RETRIES = 3

_Identity = tuple[tuple[str, int, int, int, int], ...]


def _identity(paths: Sequence[Path]) -> _Identity:
    """What tells the files changed: each one's size, mtime, ctime (which a chmod that makes
    an unreadable file readable moves too) and inode (a file replaced under its name)."""
    from tracekit.collectors._sources import FileSource, expand_paths

    files = []
    for path in paths:
        # the files the reading reads (links to directories followed: rglob did not, so
        # a log under a linked directory never showed its changes, review 19a)
        try:
            found = [s.path for s in expand_paths([path]) if isinstance(s, FileSource)]
        except InputError:  # (not there yet)
            continue
        for f in found:
            try:
                st = f.stat()
            except OSError:
                continue
            files.append((str(f), st.st_size, st.st_mtime_ns, st.st_ctime_ns, st.st_ino))
    return tuple(files)


def watch_paths(
    paths: Sequence[Path],
    pipeline: Pipeline,
    *,
    grace: timedelta,
    interval: float,
    stop_after: float | None,
    out: Console,
    status: Console,
    timezone: str | None = None,
) -> None:
    if not grace:  # (a model's grace_ms = 0, or --grace 0s: fine for logs that are final)
        status.print(
            Text(
                "note: a zero grace window decides every delivery whose next hop is not "
                "logged yet as a drop; on logs still being written, give --grace (e.g. 2s)",
                style="dim",
            )
        )
    from tracekit.cli._render import input_notes

    seen: dict[tuple[Any, ...], dict[str, Any]] = {}  # the findings said, and standing
    noted: set[str] = set()  # the reading's notes said
    began = changed = time.monotonic()
    looked: _Identity | None = None  # the files as the last round found them
    read: _Identity | None = None  # ... and as the last successful read found them
    failed = 0  # reads of `looked` that failed
    in_flight: list[dict[str, Any]] = []  # the last round's undecided deliveries
    named: set[tuple[Any, ...]] = set()  # those said to be stuck while the logs were quiet
    skipped = ""  # the last read's error, said once
    while True:
        identity = _identity(paths)
        if identity != looked:
            looked, failed, changed = identity, 0, time.monotonic()
        if identity and identity != read and failed <= _RETRIES:
            try:
                collected = collect(
                    [str(p) for p in paths], timezone=timezone, columns=INPUT_COLUMNS
                )
            except InputError as exc:  # e.g. a file rotated away between listing and reading
                # claim nothing meanwhile: the last round's deliveries in flight may be
                # decided by what could not be read
                # and the next read, even of files as they were at the last good one, says
                # what is in flight again
                failed, in_flight, read = failed + 1, [], None
                if str(exc) != skipped:
                    skipped = str(exc)
                    status.print(Text(printable(f"skipped a round: {exc}"), style="dim"))
                if failed > _RETRIES:
                    status.print(
                        Text(
                            f"read {failed} times in vain: waiting for the files to change",
                            style="dim",
                        )
                    )
            else:
                read, skipped = identity, ""
                report = analyze(
                    collected.events,
                    pipeline=pipeline,
                    grace=grace,
                    inputs=collected.inputs.to_dict(),
                ).to_dict()
                # deliveries under way, not messages sent before the logs began (in flight at
                # the send: where the logs start decides them, not whether they go on)
                send = pipeline.roles.get("send")
                in_flight = [
                    f
                    for f in report["findings"]
                    if f["kind"] == "in_flight" and f.get("stage") != send
                ]
                now = {_key(f): f for f in report["findings"] if f["kind"] != "in_flight"}
                for key, f in now.items():
                    if key in seen:
                        continue
                    seen[key] = f
                    out.print(
                        Text.assemble(
                            (printable(f["kind"]), "bold"),
                            printable(f" {_where(f)}: {f.get('detail', '')}"),
                        )
                    )
                # a finding the logs no longer hold (a late log showed the hop) is taken back:
                # said once, it stood for good (review 19a)
                for key in [k for k in seen if k not in now]:
                    f = seen.pop(key)
                    out.print(
                        Text(
                            printable(
                                f"withdrawn: {f['kind']} {_where(f)}: the logs read so far no "
                                "longer show it"
                            ),
                            style="dim",
                        )
                    )
                for note, style in input_notes(report.get("inputs", {})):
                    if note not in noted:  # what the reading skipped, said once
                        noted.add(note)
                        status.print(Text(printable(note), style=style or "dim"))
                s = report["summary"]
                status.print(
                    Text(
                        f"{s['messages']} messages, {s['delivered']}/"
                        f"{s['deliveries_expected']} delivered, {s['drop']} dropped, "
                        f"{s['in_flight']} in flight",
                        style="dim",
                    )
                )
        quiet = time.monotonic() - changed
        if quiet >= grace.total_seconds():
            for f in in_flight:
                if _key(f) not in named:
                    named.add(_key(f))
                    status.print(
                        Text(
                            printable(
                                f"still in flight: {_where(f)}: no log has changed for "
                                f"{quiet:.1f} s; undecided until the logs go on"
                            ),
                            style="yellow",
                        )
                    )
        if stop_after is not None and time.monotonic() - began >= stop_after:
            return
        time.sleep(interval)


def _where(f: dict[str, Any]) -> str:
    return " ".join(
        str(x)
        for x in (
            f.get("trace_id"),
            f.get("recipient") and f"recipient {f['recipient']}",
            f.get("stage") and f"at {f['stage']}",
            f.get("last_seen") and f"(last seen {f['last_seen']})",
            # a finding of a whole source (log_gap, clock_skew) names it
            f.get("source") and not f.get("recipient") and f"in {f['source']}",
        )
        if x
    )
