"""What the report says of sources whose ``seq`` started over (``summary.restarts``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["restarts_note"]


def restarts_note(summary: Mapping[str, Any]) -> str | None:
    """What the report says of the sources whose counter started over (a process restarted
    under the same name), and where; ``None`` when no source did. A restart the analysis read
    run by run (``mended``) is said as such; one it could not (or a report from before it
    could) is said with what it may have made false. A report read back from a file may hold
    anything: what is not a restart is skipped."""
    restarts = summary.get("restarts")
    if not isinstance(restarts, list):
        return None
    said: dict[bool, list[str]] = {True: [], False: []}
    for r in restarts:
        if not isinstance(r, Mapping) or not r.get("source"):
            continue
        where = f" at {r['file']}:{r['line']}" if r.get("file") else ""
        said[r.get("mended") is True].append(f"{r['source']}'s seq started over{where}")
    sentences = []
    if said[True]:
        sentences.append(
            "; ".join(said[True]) + ": read as a process restarted under the same source name, "
            "its runs compared in the order they were logged."
        )
    if said[False]:
        sentences.append(
            "; ".join(said[False]) + ": a process restarted under the same source name? Order "
            "is compared within a source's log, so its reorders, races and log gaps may be "
            "false: give each run its own source name."
        )
    return " ".join(sentences) or None
