"""Log gaps from seq jumps; legacy logs without seq."""

from __future__ import annotations

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
    history.ev(100, "TRACEKIT.dropped", "client-u2", "u2")
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


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
