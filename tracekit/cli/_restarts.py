"""What the report says of sources whose ``seq`` started over (``summary.restarts``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["restarts_note"]


def restarts_note(summary: Mapping[str, Any]) -> str | None:
    """One sentence naming the sources whose counter started over (a process restarted under
    the same name) and where; ``None`` when no source did. A report read back from a file may
    hold anything: what is not a restart is skipped."""
    restarts = summary.get("restarts")
    if not isinstance(restarts, list):
        return None
    said = []
    for r in restarts:
        if not isinstance(r, Mapping) or not r.get("source"):
            continue
        where = f" at {r['file']}:{r['line']}" if r.get("file") else ""
        said.append(f"{r['source']}'s seq started over{where}")
    if not said:
        return None
    return (
        "; ".join(said)
        + ": a process restarted under the same source name? Order is compared within a "
        "source's log, so its reorders, races and log gaps may be false: give each run its "
        "own source name."
    )
