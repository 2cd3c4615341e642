"""Where a report's expected recipients came from, said in every human rendering (the JSON
has ``summary.recipients_from``): the broadcast's list, or, where no broadcast in the logs
lists them (none logged, or one without a list), the conversation's members as the logs show
them. Light: no rich, no polars."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = ["recipients_note"]


def recipients_note(summary: Mapping[str, Any]) -> str | None:
    """One sentence when some message's recipients were taken from membership; ``None`` when
    every broadcast named its recipients (the contract's first source, nothing to say)."""
    counts = summary.get("recipients_from")
    if not isinstance(counts, Mapping):
        return None
    membership, broadcast = (count_of(counts.get(k)) for k in ("membership", "broadcast"))
    if not membership:
        return None
    total = membership + broadcast
    which = "every message" if membership == total else f"{membership} of {total} messages"
    return (
        f"Expected recipients of {which} taken from conversation membership: no broadcast "
        "in the logs listed them."
    )


def count_of(value: object) -> int:
    """A count from a report (one read back from a file may hold anything): else 0."""
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0
