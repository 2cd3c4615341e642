"""Shared helpers of the collectors tests (a unique module name: conftest.py is not importable
unambiguously when several test directories have one)."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from tracekit.table import EVENT_SCHEMA

REPO = Path(__file__).resolve().parents[2]
SAMPLES = REPO / "sample_logs"

T1 = "3f2b8c1e5d4a4e8f9a7b1c2d3e4f5a6b"
T2 = "9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d"


def ts(text: str) -> datetime:
    """'10:00:01.5' -> 2026-11-25 10:00:01.5 UTC."""
    hms, _, frac = text.partition(".")
    h, m, s = (int(x) for x in hms.split(":"))
    return datetime(2026, 11, 25, h, m, s, int((frac or "0").ljust(6, "0")[:6]), tzinfo=UTC)


def event(**kw: Any) -> dict[str, Any]:
    """A full table row with nulls where not given (EVENT_SCHEMA order)."""
    row: dict[str, Any] = dict.fromkeys(EVENT_SCHEMA)
    for k, v in kw.items():
        assert k in row, k
        row[k] = v
    return row


def jl(**kw: Any) -> dict[str, Any]:
    """A schema v1 JSON-lines event with sensible defaults."""
    base: dict[str, Any] = {
        "timestamp": "2026-11-25T10:00:00.000000Z",
        "stage": "CTRL",
        "action": "send",
        "event": "CTRL send",
        "trace_id": T1,
        "actor": "u1",
        "source": "client-u1",
        "seq": 1,
    }
    base.update(kw)
    return base


def at(second: int) -> datetime:
    """2026-01-01T10:00:<second>Z, the time the review-7 kv/legacy fixtures write."""
    return datetime(2026, 1, 1, 10, 0, second, tzinfo=UTC)


def counts(got: Any) -> tuple[object, ...]:
    """A collection's account: lines, events, malformed, ignored, formats, warnings."""
    i = got.inputs
    return (i.lines, i.events, i.malformed, i.ignored, i.formats, i.warnings)


# Review 7d's mixed fixtures (reused by review 8's tests): a legacy line, a kv event holding
# JSON text, a JSON event, and the warning about a kv event not read as one.
TA = "a" * 32
G = "2026-01-01T10:00:00Z [REST] Sending message: clientMsgId=c1"
KJ = (
    f"stage=WS action=broadcast trace_id={TA} msg_id=m1 ts=2026-01-01T10:00:01Z "
    'body=\'{"stage": "x"}\''
)
J = f'{{"timestamp":"2026-01-01T10:00:05Z","stage":"WS-RECV","action":"recv","trace_id":"{TA}"}}'
UNREAD_KV = (
    "1 lines look like key=value events but were not read as such (first: line 2); a "
    "key=value event is read in a file read as kv (detected when most of its first lines are "
    "such events, or formats=['kv'])"
)


def write_log(folder: Path, lines: list[str], name: str = "app.log") -> Path:
    """``lines`` written as a log file in ``folder`` (a final line end)."""
    path = folder / name
    path.write_text("\n".join(lines) + "\n")
    return path
