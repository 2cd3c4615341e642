"""How each timeline status reads: the terminal (`tracekit trace`), the HTML rows and the text
of a failing test (`tracekit.testing.format_timeline`)."""

from __future__ import annotations

import io
import re
from datetime import UTC, datetime

import polars as pl
from rich.console import Console

from tracekit.cli._html import _timeline_table
from tracekit.cli._render import render_timeline
from tracekit.testing import format_timeline

ROWS = [
    # recipient, hop, reached, status, count
    ("u2", "REPO.add", True, "duplicate", 2),
    ("u2", "CTRL.add", True, "reached", 1),
    ("u2", "CTRL.remove", True, "removed", 1),
    ("u3", "REPO.add", False, "dropped", 0),
    ("u3", "CTRL.add", False, "not_reached", 0),
    ("u4", "REPO.add", False, "in_flight", 0),
    ("u5", "CTRL.remove", True, "in_flight", 1),  # a removal inside the grace window
    ("u6", "REPO.add", False, "undecided", 0),  # lines naming no recipient may hold it
    ("u7", "REPO.add", False, "in_log_gap", 0),  # a log gap may hold it
    ("u8", "CTRL.add", False, "failed", 0),  # its line says it was tried and failed
]


def _dicts() -> list[dict[str, object]]:
    return [
        {
            "recipient": r,
            "hop": h,
            "reached": ok,
            "status": st,
            "count": n,
            "source": "client" if ok else None,
            "timestamp": "2026-01-01T00:00:00.000000Z" if ok else None,
            "latency_ms": 1.0 if ok else None,
            "file": "c.jsonl" if ok or st == "failed" else None,
            "line": 1 if ok else 9 if st == "failed" else None,
        }
        for r, h, ok, st, n in ROWS
    ]


def test_the_terminal_marks_each_status() -> None:
    out = io.StringIO()
    render_timeline("t", _dicts(), Console(file=out, width=200, color_system=None))
    hops = [line.split("│")[2].strip() for line in out.getvalue().splitlines() if "│ u" in line]
    assert hops == [
        "REPO.add (duplicate)",  # (in words: no colour in a pipe, review 21b)
        "CTRL.add",
        "✗ CTRL.remove (took it off)",
        "✗ REPO.add (missing)",
        "· CTRL.add (not reached)",
        "… REPO.add (in flight)",
        "… CTRL.remove (in flight)",
        "? REPO.add (undecided: lines naming no recipient may hold it)",
        "? REPO.add (undecided: its log lost events here, see log_gap)",
        "✗ CTRL.add (tried and failed)",
    ]
    # where a hop was logged: a failed one's failing line, no other hop not reached
    logged = [line.split("│")[7].strip() for line in out.getvalue().splitlines() if "│ u" in line]
    assert logged == ["c.jsonl:1"] * 3 + [""] * 3 + ["c.jsonl:1"] + [""] * 2 + ["c.jsonl:9"]


def test_the_html_rows_say_each_status() -> None:
    page = _timeline_table(_dicts())
    statuses = [cell.split("<")[0] for cell in page.split('<td class="status">')[1:]]
    assert statuses == [
        "duplicate",
        "reached",
        "✗ took it off",
        "✗ missing",
        "not reached",
        "in flight",
        "in flight",
        "undecided",
        "undecided (log gap)",
        "✗ tried and failed",
    ]
    assert page.count('title="c.jsonl:9"') == 1  # the failing line, in the failed hop's row
    # only the duplicate's count is marked: a count of 2 alone is no duplicate
    assert page.count("count dup") == 1
    assert [c.split('"')[0] for c in page.split('<tr class="')[1:]] == [
        "reached",
        "reached",
        "missing",
        "missing",
        "after",
        "pending",
        "pending",
        "pending",
        "pending",
        "missing",
    ]  # (the removal's row in the drop's colour too)


def test_a_failing_tests_timeline_says_each_status(monkeypatch) -> None:
    frame = pl.DataFrame(
        [
            {
                "recipient": r,
                "stage_action": h,
                "reached": ok,
                "status": st,
                "count": n,
                "source": "client" if ok else None,
                "timestamp": datetime(2026, 1, 1, tzinfo=UTC) if ok else None,
                "latency_ms": 1.0 if ok else None,
                "file": "c.jsonl" if ok or st == "failed" else None,
                "line": 1 if ok else 9 if st == "failed" else None,
            }
            for r, h, ok, st, n in ROWS
        ]
    )
    monkeypatch.setattr("tracekit.analyzers.timeline", lambda *a, **k: frame)
    lines = format_timeline([], "t").splitlines()
    assert [line.split()[0:2] for line in lines if line.startswith("    ")] == [
        ["✓", "REPO.add"],
        ["✓", "CTRL.add"],
        ["✓", "CTRL.remove"],
        ["✗", "REPO.add"],
        ["·", "CTRL.add"],
        ["…", "REPO.add"],
        ["✓", "CTRL.remove"],
        ["?", "REPO.add"],
        ["?", "REPO.add"],
        ["✗", "CTRL.add"],
    ]
    text = "\n".join(lines)
    assert "x2 (duplicate)" in text and "(took it off: dropped)" in text
    assert "REPO.add               (missing)" in text and "(not reached)" in text
    assert "(in flight)" in text and "+1.0 ms (in flight)" in text
    assert (
        "CTRL.add               (tried and failed: its line is at an error level)  c.jsonl:9"
        in (text)
    )


def test_the_html_picture_draws_an_undecided_hop_as_pending() -> None:
    from tracekit.cli._html import _timeline_svg

    svg = _timeline_svg(_dicts(), {}, set(), {})
    # (review 19d: drawn "missing", in red, as a drop, beside its table row's "undecided")
    first = re.findall(
        r'<g class="node missing first-missing([^"]*)"[^>]*data-recipient="(u\d)"', svg
    )
    assert dict((lane, cls) for cls, lane in first) == {
        "u3": "",
        "u4": "",  # (in flight by its findings, which this picture is given none of)
        "u6": " pending",
        "u7": " pending",
        "u8": "",  # (tried and failed: a drop, its tip says where)
    }
    assert "CTRL.add · TRIED AND FAILED at c.jsonl:9</title>" in svg
    assert svg.count(">undecided<") == 2
