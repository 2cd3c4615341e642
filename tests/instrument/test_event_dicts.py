"""Event dicts given to the analysis (``tracekit.testing``, ``tracekit.table.events_frame``)
are checked as the table needs them: a value it cannot hold is a clear error naming the
event and the key, not a polars error or a names list read letter by letter (review 25d)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

import pytest

from tracekit.errors import SchemaError
from tracekit.table import events_frame
from tracekit.testing import analyze_events

T1 = "4bf92f3577b34da6a3ce929d0e0e4736"


def _sent(**over: Any) -> list[dict[str, Any]]:
    """One message's CTRL.send and REST.request, the second with ``over``."""
    base = {"trace_id": T1, "conv_id": "c1", "actor": "u1", "source": "c-u1"}
    return [
        {**base, "timestamp": "2026-11-25T10:00:00Z", "stage": "CTRL", "action": "send", "seq": 1},
        {
            **base,
            "timestamp": "2026-11-25T10:00:00.005Z",
            "stage": "REST",
            "action": "request",
            "seq": 2,
            **over,
        },
    ]


@pytest.mark.parametrize(
    ("over", "said"),
    [
        # structlog's capture_logs() gives events without one
        ({"timestamp": None}, "event 1 has no timestamp: a hop is placed by its time*"),
        ({"timestamp": "yesterday"}, "event 1: timestamp 'yesterday' reads as no time"),
        ({"seq": "2"}, "event 1: seq '2' is not an integer"),
        ({"seq": True}, "event 1: seq True is not an integer"),
        ({"recipients": "u2"}, "event 1: recipients 'u2' are not a list of names"),
        ({"recipients": ["u2", 3]}, "event 1: recipients ['u2', 3] are not a list of names"),
    ],
)
def test_a_value_the_table_cannot_hold_is_said(over: dict[str, Any], said: str) -> None:
    pattern = ".*".join(re.escape(part) for part in said.split("*"))
    with pytest.raises(SchemaError, match=f"^{pattern}$") as caught:
        analyze_events(_sent(**over))
    assert caught.value.key == next(iter(over))


def test_datetimes_and_text_read_alike_in_one_table() -> None:
    # a mix raised polars' TypeError; a naive datetime is UTC, as a zoneless text is
    mixed = _sent(timestamp=datetime(2026, 11, 25, 10, 0, 0, 5000))
    aware = _sent(timestamp=datetime(2026, 11, 25, 10, 0, 0, 5000, tzinfo=UTC))
    text = _sent()
    frames = [events_frame(e).get_column("timestamp").to_list() for e in (mixed, aware, text)]
    assert frames[0] == frames[1] == frames[2]


def test_a_numpy_integer_is_a_seq() -> None:
    # (review 25e: refused once seqs were checked; a table's rows give them)
    np = pytest.importorskip("numpy")  # (no dependency of tracekit's: where it is installed)

    assert events_frame(_sent(seq=np.int64(2))).get_column("seq").to_list() == [1, 2]
