"""A reading's time window (``analyze(..., left_out=)``, the CLI's ``--since``/``--until``):
the events it left out are no loss of the logs (session 23: every source read from
``--since`` was a lost beginning, and ``check --max log_gap=0`` failed on clean logs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.analyzers import analyze
from tracekit.synth import generate


def _t0(history: Any) -> datetime:
    return min(r["timestamp"] for r in history.rows)


def _window(history: Any, since_ms: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The history's events at or after ``since_ms``, and those left out."""
    table = history.frame().collect()
    inside = pl.col("timestamp") >= _t0(history) + timedelta(milliseconds=since_ms)
    return table.filter(inside), table.filter(~inside)


def _four_messages(history: Any) -> None:
    for n in range(1, 5):
        history.message(n, "u1", ["u2"], t=(n - 1) * 1000)
    history.tail()


def test_logs_read_from_a_time_have_no_lost_beginning(history):
    _four_messages(history)
    inside, outside = _window(history, 1500)
    # (what it guards: read as cut logs, each of the three begins mid-traffic)
    assert analyze(inside).findings.select("kind", "source").sort("source").rows() == [
        ("log_gap", "client-u1"),
        ("log_gap", "client-u2"),
        ("log_gap", "server-1"),
    ]
    report = analyze(inside, left_out=outside)
    assert report.findings.is_empty()
    assert report.summary["messages"] == 2


def test_a_stage_stamped_before_the_window_leaves_no_hole_in_it(history):
    # message 4's send began at 1400 ms and ended at 3000 ms: stamped at its start, written
    # at its end, after message 3's lines. Left out by its stamp, it leaves a hole between
    # lines the window holds; its message is read as sent before the window
    _four_messages(history)
    send = next(
        r for r in history.rows if r["event"] == "CTRL.send" and r["trace_id"] == history.tid(4)
    )
    send["timestamp"], send["duration_ms"] = _t0(history) + timedelta(milliseconds=1400), 1600.0
    inside, outside = _window(history, 1500)
    assert [
        (r["kind"], r["source"], r["detail"])
        for r in analyze(inside).findings.iter_rows(named=True)
        if r["kind"] == "log_gap" and r["source"] == "client-u1"
    ] == [
        (
            "log_gap",
            "client-u1",
            "the log begins at seq 6: 5 earlier event(s) are not in these logs (a log begun "
            "mid-traffic: rotated, cut or started late)",
        ),
        ("log_gap", "client-u1", "seq jumps from 8 to 10: 1 event(s) lost by the logging"),
    ]
    found = analyze(inside, left_out=outside).findings
    assert history.kinds(found) == [
        ("in_flight", history.tid(4), None, "CTRL.send", "REST.request")
    ]


def test_a_log_that_lost_events_before_the_window_says_how_many(history):
    # u2's log lost message 2's lines (3 events) before the window: the window left out 3
    # other lines of u2 (message 1's, seq 0 to 2), and the log_gap counts only the 3 it did
    # not (from seq 0: the events left out show the log counts from there)
    _four_messages(history)
    history.rows = [
        r for r in history.rows
        if not (r["source"] == "client-u2" and r["trace_id"] == history.tid(2))
    ]  # fmt: skip
    inside, outside = _window(history, 1500)
    found = analyze(inside, left_out=outside).findings
    assert found.select("kind", "source", "detail").rows() == [
        (
            "log_gap",
            "client-u2",
            "the log read begins at seq 6: 3 earlier event(s) are not in these logs (a log "
            "begun mid-traffic: rotated, cut or started late); 3 more are outside the time "
            "window read",
        )
    ]


@settings(
    max_examples=10, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), since=st.floats(0.02, 0.6), until=st.floats(0.6, 1.2))
def test_a_clean_history_read_in_any_window_finds_only_messages_in_flight(seed, since, until):
    table = generate(seed, messages=20, users=4, conversations=2, max_members=3).frame()
    stamps = table.get_column("timestamp").sort()
    at = [stamps[min(int(len(stamps) * x), len(stamps) - 1)] for x in (since, until)]
    inside = pl.col("timestamp").is_between(at[0], at[1], closed="left") | (
        (pl.col("timestamp") >= at[0]) & pl.lit(until >= 1.0)
    )
    found = analyze(table.filter(inside), left_out=table.filter(~inside)).findings
    assert set(found.get_column("kind")) <= {"in_flight"}, found.to_dicts()
