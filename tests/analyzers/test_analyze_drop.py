"""Drops, in-flight messages and the grace window, on hand-written histories."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
from polars.testing import assert_frame_equal

from tracekit.analyzers import analyze, find_drops, find_in_flight


def test_seed_bug_reads_reached_repo_add_never_ctrl_add(history):
    history.message(1, "u1", ["u1", "u2"], t=0)
    t2 = history.message(2, "u1", ["u1", "u2"], t=1000, stop={"u2": "CTRL.add"})
    history.message(3, "u2", ["u1", "u2"], t=2000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t2, "u2", "CTRL.add", "REPO.add")]
    row = report.findings.row(0, named=True)
    assert row["conv_id"] == "c1"
    assert row["source"] == "client-u2"
    assert row["detail"].startswith("recipient u2: reached REPO.add, never reached CTRL.add")
    assert row["evidence"] == [
        {"file": "client-u2.jsonl", "line": 5}
    ]  # u2: 3 events for message 1, then receive, add
    assert report.summary["drop"] == 1
    assert report.summary["deliveries_expected"] == 6
    assert report.summary["delivered"] == 5


def test_drop_at_each_recipient_hop_is_located(history):
    hops = ["WS-BROADCAST.deliver", "WS-RECV.receive", "REPO.add", "CTRL.add"]
    pred = ["WS-BROADCAST.start", "WS-BROADCAST.deliver", "WS-RECV.receive", "REPO.add"]
    traces = [
        history.message(n, "u1", ["u2", "u3"], t=n * 1000, stop={"u3": hop})
        for n, hop in enumerate(hops, 1)
    ]
    history.tail()
    got = find_drops(history.frame()).collect()
    expected = pl.DataFrame(
        {
            "kind": ["drop"] * 4,
            "trace_id": traces,
            "recipient": ["u3"] * 4,
            "stage": hops,
            "last_seen": pred,
        }
    )
    assert_frame_equal(got.select(expected.columns).sort("trace_id"), expected.sort("trace_id"))


def test_message_level_drops(history):
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"": "WS-BROADCAST.start"})
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"": "REST.response"})
    t3 = history.message(3, "u1", ["u2"], t=2000, stop={"": "REST.persist"})
    history.tail()
    report = analyze(history.frame())
    assert sorted(history.kinds(report.findings)) == sorted(
        [
            ("drop", t1, None, "WS-BROADCAST.start", "REST.persist"),
            ("drop", t2, None, "REST.response", "REST.persist"),
            ("drop", t3, None, "REST.persist", "REST.request"),
        ]
    )


def test_missing_evidence_of_a_hop_that_was_passed_is_not_a_drop(history):
    # REPO.add not logged, but CTRL.add was: the message reached the UI.
    history.message(1, "u1", ["u2"], t=0, stop={"u2": "REPO.add"})
    history.ev(30, "CTRL.add", "client-u2", "u2", trace=history.tid(1), conv_id="c1")
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def test_in_flight_inside_grace_window(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=10_000, stop={"u2": "WS-RECV.receive"})
    history.tail(10_100)  # the logs end 80 ms after the deliver
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.summary["in_flight"] == 1 and report.summary["drop"] == 0
    # The same history with a shorter grace window: a drop.
    short = find_drops(history.frame(), grace=timedelta(milliseconds=50)).collect()
    assert history.kinds(short) == [("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")]
    assert find_in_flight(history.frame(), grace=timedelta(milliseconds=50)).collect().is_empty()


def test_drop_inside_a_log_gap_is_indeterminate(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.seq["client-u2"] += 3  # the logging of u2's client lost 3 events
    history.message(3, "u1", ["u2"], t=2000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    gap = report.findings.row(0, named=True)
    assert gap["source"] == "client-u2"
    assert "seq jumps from 2 to 6: 3 event(s) lost" in gap["detail"]
    assert (
        f"1 message path(s) indeterminate, not reported as drops: {t2} (u2 at WS-RECV.receive)"
        in gap["detail"]
    )
    assert report.summary["drop"] == 0 and report.summary["log_gap"] == 1


def test_gap_elsewhere_does_not_hide_a_drop(history):
    history.message(1, "u1", ["u2", "u3"], t=0)
    t2 = history.message(2, "u1", ["u2", "u3"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.seq["client-u3"] += 2  # u3's logs have a gap, u2's do not
    history.message(3, "u1", ["u2", "u3"], t=2000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("log_gap", None, None, None, None),
    ]
