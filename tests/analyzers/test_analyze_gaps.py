"""Log gaps from seq jumps; legacy logs without seq."""

from __future__ import annotations

import polars as pl

from tracekit.analyzers import analyze, find_log_gaps


def test_seq_jump_is_a_log_gap(history):
    history.message(1, "u1", ["u2"], t=0)
    history.seq["server-1"] += 5
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    got = find_log_gaps(history.frame()).collect()
    assert list(got["source"]) == ["server-1"]
    assert got["detail"][0] == "seq jumps from 2 to 8: 5 event(s) lost by the logging"
    assert got["evidence"][0].to_list() == [
        {"file": "server-1.jsonl", "line": 3},
        {"file": "server-1.jsonl", "line": 9},
    ]


def test_meta_events_take_seq_numbers_and_close_no_gap(history):
    history.message(1, "u1", ["u2"], t=0)
    history.ev(100, "TRACEKIT.configured", "client-u2", "u2")
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def test_dropped_marker_without_seq_hides_the_drop(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.ev(1100, "TRACEKIT.dropped", "client-u2", "u2")
    history.message(3, "u1", ["u2"], t=2000)
    for r in history.rows:
        if r["source"] == "client-u2":
            r["seq"] = None  # a legacy emitter: no seq, only its own drop report
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    detail = report.findings["detail"][0]
    assert detail.startswith("the emitter reported dropping events (TRACEKIT.dropped)")
    assert f"{t2} (u2 at WS-RECV.receive)" in detail


def test_dropped_marker_after_a_seq_jump_is_one_gap(history):
    history.message(1, "u1", ["u2"], t=0)
    history.seq["client-u2"] += 2
    history.ev(100, "TRACEKIT.dropped", "client-u2", "u2")
    history.tail()
    report = analyze(history.frame())
    assert list(report.findings["kind"]) == ["log_gap"]
    assert report.findings["detail"][0] == "seq jumps from 2 to 5: 2 event(s) lost by the logging"


def test_a_marker_without_seq_after_a_jump_is_a_gap_of_its_own(history):
    # u2 lost m2's REPO.add (seq 5), then logged a seq-less TRACEKIT.dropped after m2's
    # CTRL.add (seq 6, where the jump ends): the marker sits at seq 6's position, but no jump
    # ends at it; both are said (review 14: the marker was taken for the jump's end)
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    history.rows.remove(u2[5])
    marker = dict(u2[6], stage="TRACEKIT", action="dropped", trace_id=None, conv_id=None)
    history.rows.insert(history.rows.index(u2[6]) + 1, dict(marker, seq=None, line=100))
    report = analyze(history.frame())
    assert list(report.findings["detail"]) == [
        "seq jumps from 4 to 6: 1 event(s) lost by the logging; 1 message path(s) "
        f"indeterminate, not reported as drops: {t2} (u2 at CTRL.add)",
        "the emitter reported dropping events (TRACEKIT.dropped)",
    ]


def test_each_marker_of_a_log_without_seq_names_only_the_paths_it_holds(history):
    # two drop reports of a legacy emitter: m1's missing REPO.add is at the first only (the
    # list of undecided paths was on every marker of the log, all keyed seq -1, before
    # session 14)
    history.ev(0, "TRACEKIT.heartbeat", "client-u2", "u2")
    t1 = history.message(1, "u1", ["u2"], t=10, stop={"u2": "REPO.add"})
    history.ev(60, "TRACEKIT.dropped", "client-u2", "u2")
    history.ev(20_000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.ev(20_001, "TRACEKIT.dropped", "client-u2", "u2")
    history.tail()
    for r in history.rows:
        if r["source"] == "client-u2":
            r["seq"] = None
    report = analyze(history.frame())
    assert list(report.findings["detail"]) == [
        "the emitter reported dropping events (TRACEKIT.dropped); 1 message path(s) "
        f"indeterminate, not reported as drops: {t1} (u2 at REPO.add)",
        "the emitter reported dropping events (TRACEKIT.dropped)",
    ]


def test_legacy_logs_without_seq_have_no_gap_analysis(history):
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000, stop={"u2": "CTRL.add"})
    for r in history.rows:
        if r["source"] == "client-u2":
            r["seq"] = None
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", history.tid(2), "u2", "CTRL.add", "REPO.add")
    ]


def test_a_line_without_seq_in_a_log_with_seq_is_no_gap_and_no_reorder(history):
    # u2's CTRL.add of m3 lost its seq key (the collector keeps the event): it sits after the
    # line read before it, not at its rank among every seq-less line of the table (another
    # scale: a false reorder of m1 and m2), and the seq number it left out is not a lost event
    for n in range(1, 4):
        history.message(n, "u1", ["u2"], t=n * 1000)
    history.tail()
    (row,) = [
        r
        for r in history.rows
        if r["source"] == "client-u2" and r["trace_id"] == history.tid(3) and r["stage"] == "CTRL"
    ]
    row["seq"] = None
    assert analyze(history.frame()).findings.is_empty()
    # two numbers missing after it, one of them the unnumbered line: one event lost
    history.seq["client-u2"] += 1
    history.ev(9000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail(60_000)
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("log_gap", None, None, None, None)]
    assert "1 event(s) lost by the logging" in found["detail"][0]


def test_a_gap_that_holds_more_paths_than_it_lost_events_says_some_are_drops(history):
    # review 23b: u2's log lost 1 event between two heartbeats, while three messages reached
    # its socket and none its app. Each path's receive may be the lost line, but one line
    # completes one path at most: at least two are drops (which, unknown: all stay undecided)
    history.ev(-50, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 1  # the lost event
    traces = [
        history.message(n, "u1", ["u2"], t=100 * n, stop={"u2": "WS-RECV.receive"})
        for n in (1, 2, 3)
    ]
    history.ev(400, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(4, "u1", ["u2"], t=1000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    held = ", ".join(f"{t} (u2 at WS-RECV.receive)" for t in traces)
    assert report.findings["detail"][0] == (
        "seq jumps from 0 to 2: 1 event(s) lost by the logging; 3 message path(s) "
        f"indeterminate, not reported as drops: {held} (their hops need 3 line(s) in it, "
        "which may hold 1: at least 2 of them are drops)"
    )


def test_a_gap_that_lost_as_many_events_as_it_holds_paths_says_nothing_more(history):
    history.ev(-50, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 2
    traces = [
        history.message(n, "u1", ["u2"], t=100 * n, stop={"u2": "WS-RECV.receive"}) for n in (1, 2)
    ]
    history.ev(400, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail()
    detail = analyze(history.frame()).findings["detail"][0]
    assert detail.endswith(f"{traces[1]} (u2 at WS-RECV.receive)")


def test_paths_that_lines_naming_no_recipient_may_complete_need_no_line_in_the_gap(history):
    # review 23c: u2's app logged receive, store and show of each message, without its
    # actor: those lines may be the whole of the three paths, so none needs the lost line,
    # and "at least 2 of them are drops" was false
    history.ev(-50, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 1
    traces = [
        history.message(n, "u1", ["u2"], t=100 * n, stop={"u2": "WS-RECV.receive"})
        for n in (1, 2, 3)
    ]
    history.ev(400, "TRACEKIT.heartbeat", "client-u2", "u2")
    for n, trace in enumerate(traces, 1):
        for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
            history.ev(500 + 10 * n + k, hop, "client-u2", None, trace=trace, conv_id="c1")
    history.tail()
    gaps = analyze(history.frame()).findings.filter(pl.col("kind") == "log_gap")
    assert gaps["detail"].to_list() == [
        "seq jumps from 0 to 2: 1 event(s) lost by the logging; 3 message path(s) "
        "indeterminate, not reported as drops: "
        + ", ".join(f"{t} (u2 at WS-RECV.receive)" for t in traces)
    ]
