"""What the report says of events read twice (``summary.copies``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["copies_note"]

#: Sources named in the note; the rest are counted.
_SHOWN = 3


def copies_note(summary: Mapping[str, Any]) -> str | None:
    """What the report says of the events it read twice (one logged line in two copies of a
    log, or exports that overlap) and counted once; ``None`` when there were none. A report
    read back from a file may hold anything: what is not such an entry is skipped."""
    copies = summary.get("copies")
    if not isinstance(copies, list):
        return None
    said: list[str] = []
    total = 0
    for c in copies:
        if not isinstance(c, Mapping) or not c.get("source"):
            continue
        n = c.get("events")
        total += n if isinstance(n, int) else 0
        if len(said) < _SHOWN:
            said.append(
                f"{c['source']}: {n}, the first at {c.get('file')}:{c.get('line')} "
                f"(a copy of {c.get('kept_file')}:{c.get('kept_line')})"
            )
    if not said:
        return None
    more = len([c for c in copies if isinstance(c, Mapping) and c.get("source")]) - len(said)
    return (
        f"{total} event(s) were read twice, each counted once by the analysis (the same "
        f"source, seq, time, stage, action and names: copies of a log, or exports that "
        f"overlap; the input counts count every reading): "
        + "; ".join(said)
        + (f"; and {more} more source(s)" if more > 0 else "")
        + "."
    )
