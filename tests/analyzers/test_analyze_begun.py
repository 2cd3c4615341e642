"""Logs that begin mid-traffic (rotated, cut, started late): a source whose first ``seq`` is
above 1 lost its beginning, a gap with no line before it (review 21d: 40% of the head cuts of
a clean history read as false drops)."""

from __future__ import annotations

import polars as pl

from tracekit.analyzers import analyze, timeline
from tracekit.collectors import collect

_BEGUN = (
    "earlier event(s) are not in these logs (a log begun mid-traffic: rotated, cut or started late)"
)


def _from_one(history):
    """Every log counts from 1, as tracekit's emitter does (the helper counts from 0)."""
    for src in ("client-u1", "client-u2", "server-1"):
        history.seq[src] = 1


def _cut(history, source, n):
    """``source``'s log without its first ``n`` lines."""
    mine = [r for r in history.rows if r["source"] == source]
    for r in mine[:n]:
        history.rows.remove(r)
    return mine[n]


def test_a_path_whose_hop_the_lost_beginning_may_hold_is_undecided_not_a_drop(history):
    _from_one(history)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    # u2's log begins at m2's receive: m1's three lines (seqs 1-3) are not in it
    first = _cut(history, "client-u2", 3)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    gap = report.findings.row(0, named=True)
    assert gap["source"] == "client-u2"
    assert gap["detail"] == (
        f"the log begins at seq 4: 3 {_BEGUN}; 1 message path(s) indeterminate, not reported "
        f"as drops: {t1} (u2 at WS-RECV.receive)"
    )
    assert gap["evidence"] == [{"file": "client-u2.jsonl", "line": first["line"]}]
    # the timeline marks the path as a gap's, not as lost
    rows = timeline(history.frame(), t1).filter(pl.col("recipient") == "u2")
    assert rows.select("stage_action", "status").rows() == [
        ("WS-BROADCAST.deliver", "reached"),
        ("WS-RECV.receive", "in_log_gap"),
        ("REPO.add", "not_reached"),
        ("CTRL.add", "not_reached"),
    ]


def test_a_drop_after_the_log_began_is_still_a_drop(history):
    _from_one(history)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    t3 = history.message(3, "u1", ["u2"], t=5000, stop={"u2": "REPO.add"})
    history.tail()
    _cut(history, "client-u2", 3)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t3, "u2", "REPO.add", "WS-RECV.receive"),
        ("log_gap", None, None, None, None),
    ]
    assert report.findings["detail"][1].endswith(f"drops: {t1} (u2 at WS-RECV.receive)")


def test_a_log_from_seq_0_or_1_lost_nothing(history):
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    history.tail()
    for start in (0, 1):  # (the helper counts from 0; tracekit from 1)
        for r in history.rows:
            r["seq"] += start
        assert history.kinds(analyze(history.frame()).findings) == [
            ("drop", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
        ]


def test_a_restarted_processes_later_run_is_no_lost_beginning(history):
    # u2's first run lost its beginning (from seq 200); its second begins at seq 3 (its first
    # two lines lost as the process started): one gap, the first run's; the message sent
    # while the process was down is a drop, not undecided
    _from_one(history)
    history.seq["client-u2"] = 200
    history.message(1, "u1", ["u2"], t=0)
    history.ev(1000, "TRACEKIT.heartbeat", "client-u2", "u2")
    t2 = history.message(2, "u1", ["u2"], t=2000, stop={"u2": "WS-RECV.receive"})
    history.seq["client-u2"] = 3
    history.ev(3000, "TRACEKIT.configured", "client-u2", "u2")
    history.message(3, "u1", ["u2"], t=4000)
    history.tail()
    report = analyze(history.frame())
    assert [r["source"] for r in report.summary["restarts"]] == ["client-u2"]
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("log_gap", None, None, None, None),
    ]
    assert report.findings["detail"][1] == f"the log begins at seq 200: 199 {_BEGUN}"


def test_lines_without_seq_above_the_first_are_not_counted_lost(history):
    _from_one(history)
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    for r in u2[:2]:  # two events that lost their seq, then seq 3: only seq 1 and 2 unread
        r["seq"] = None
    assert analyze(history.frame()).findings.is_empty()
    u2[0]["seq"] = 1  # ... and one more line: none missing
    u2[1]["seq"] = 2
    history.rows.remove(u2[0])  # seq 1 lost, the line after it seq-less: 1 missing
    u2[1]["seq"] = None
    found = analyze(history.frame()).findings
    assert found.select("kind", "source").rows() == [("log_gap", "client-u2")]
    assert found["detail"][0].startswith(f"the log begins at seq 3: 1 {_BEGUN}")


def test_malformed_lines_above_the_first_event_may_be_the_lost_beginning(history, tmp_path):
    _from_one(history)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    logs, _ = history.write(tmp_path)
    u2 = logs / "client-u2.jsonl"
    lines = u2.read_text().splitlines(keepends=True)
    # the log's first two lines unreadable (written half), the third cut away
    u2.write_text('{"timestamp": "2026-02-09T12:\n' + "garbage\n" + "".join(lines[3:]))
    read = collect([logs])
    found = analyze(read.events, inputs=read.inputs.to_dict()).findings
    assert found.select("kind", "source").rows() == [("log_gap", "client-u2")]
    assert found["detail"][0] == (
        f"the log begins at seq 4: 3 earlier event(s) missing; 2 line(s) above it could not be "
        f"read ({u2}: line 1, 2, malformed): 2 may be among them, the other 1 not in these "
        f"logs; 1 message path(s) indeterminate, not reported as drops: {t1} (u2 at "
        "WS-RECV.receive)"
    )
