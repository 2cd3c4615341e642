"""Drops, in-flight messages and the grace window, on hand-written histories."""

from __future__ import annotations

from datetime import timedelta

import polars as pl
import pytest
from polars.testing import assert_frame_equal

from tracekit.analyzers import analyze, find_drops, find_in_flight
from tracekit.table import events_frame


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


def test_a_retry_inside_the_grace_window_is_in_flight(history):
    # The first request (t=1 s) got no answer; the client retried at 58 s and the logs end at
    # 60 s: the retry may still get through. Judged from the first attempt it was a drop.
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"": "REST.persist"})
    history.ev(58_000, "REST.request", history.client("u1"), "u1", trace=t2, conv_id="c1")
    history.tail(60_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, None, "REST.persist", "REST.request")
    ]
    row = report.findings.row(0, named=True)
    assert row["evidence"] == [{"file": "client-u1.jsonl", "line": 6}]  # the retry's line
    assert "the logs end 2000.0 ms later" in row["detail"]


def test_a_retry_that_never_got_through_is_a_drop_at_its_last_attempt(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"": "REST.persist"})
    history.ev(3000, "REST.request", history.client("u1"), "u1", trace=t2, conv_id="c1")
    history.tail(60_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t2, None, "REST.persist", "REST.request")]
    row = report.findings.row(0, named=True)
    assert row["evidence"] == [{"file": "client-u1.jsonl", "line": 6}]
    assert row["detail"] == (
        "reached REST.request, never reached REST.persist (the logs go on 57000.0 ms after it)"
    )


@pytest.mark.parametrize(
    ("after", "kind", "said"),
    [
        (4999.999, "in_flight", "the logs end 4999.999 ms later, inside the 5000 ms grace window"),
        (4999.9, "in_flight", "the logs end 4999.9 ms later, inside the 5000 ms grace window"),
        (5000.001, "drop", "(the logs go on 5000.001 ms after it)"),
    ],
)
def test_the_logs_end_at_the_grace_window_s_edge_to_the_microsecond(history, after, kind, said):
    # review 26b's doubt: 1 us inside the window read "5000.0 ms later, inside the 5000 ms
    # grace window"; to the microsecond where the 0.1 ms reads as the window itself
    t1 = history.message(1, "u1", ["u2"], t=1000, stop={"u2": "CTRL.add"})
    history.tail(1035 + after)  # (u2's REPO.add at 1035 ms)
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [(kind, t1, "u2", "CTRL.add", "REPO.add")]
    assert found["detail"][0].endswith(said)


def test_a_request_retried_after_its_persist_is_judged_from_the_retry(history):
    # Attempt 1 was persisted (t=1 s) and its response lost; the client retried the request
    # at 58 s and the logs end at 60 s: the retry may still be answered. Judged from the
    # persist 59 s before, it was a drop. With the logs going on, a drop after the retry.
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, skip_message=["REST.response"])
    history.ev(58_000, "REST.request", history.client("u1"), "u1", trace=t2, conv_id="c1")
    history.tail(60_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, None, "REST.response", "REST.persist")
    ]
    assert report.findings["detail"][0] == (
        "reached REST.persist, REST.response not seen yet, and its sender retried REST.request "
        "since; the logs end 2000.0 ms later, inside the 5000 ms grace window"
    )
    history.tail(70_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t2, None, "REST.response", "REST.persist")]
    assert report.findings["detail"][0] == (
        "reached REST.persist, never reached REST.response (its sender retried REST.request "
        "later; the logs go on 12000.0 ms after that)"
    )
    assert report.findings["evidence"][0].to_list() == [{"file": "server-1.jsonl", "line": 4}]


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


def _lost_before_a_long_stage(history, took_ms: float | None) -> str:
    """u2's log loses message 2's three lines; the line after them is u2's own send of
    message 3, stamped (at its start) before message 2 reached u2's socket and written when
    it ended, ``took_ms`` later."""
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=990, stop={"u2": "WS-RECV.receive"})  # deliver 1015
    history.seq["client-u2"] += 3
    t3 = history.message(3, "u2", ["u1"], t=1005)  # its CTRL.send is stamped 1005
    send = next(r for r in history.rows if r["trace_id"] == t3 and r["stage"] == "CTRL")
    assert send["seq"] == 6 and send["source"] == "client-u2"
    send["duration_ms"] = took_ms
    history.tail()
    return t2


def test_a_drop_lost_before_a_long_stage_line_is_in_the_gap(history):
    # The lost lines were written before the send's line, which was written at 1065: they
    # may be stamped up to then, so the gap covers the deliver at 1015 (review 15b: the
    # gap's window ended at the send's stamp, 1005, and the lost receive read as a drop).
    t2 = _lost_before_a_long_stage(history, took_ms=60.0)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert report.findings.row(0, named=True)["detail"] == (
        "seq jumps from 2 to 6: 3 event(s) lost by the logging; 1 message path(s) "
        f"indeterminate, not reported as drops: {t2} (u2 at WS-RECV.receive)"
    )


@pytest.mark.parametrize(
    ("took_ms", "dropped"),
    [(1e13, False), (float("inf"), False), (float("nan"), True), (-5.0, True)],
)
def test_a_length_past_any_stage_or_no_number_is_read_not_raised(history, took_ms, dropped):
    # A table built in memory may hold any float (review 16a: 1e13 ms overflowed int64 and
    # the analysis stopped): past a day a length is read as a day, NaN and negative ones as 0.
    t2 = _lost_before_a_long_stage(history, took_ms=took_ms)
    report = analyze(history.frame())
    gap = [("log_gap", None, None, None, None)]
    drop = [("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")]
    assert history.kinds(report.findings) == (drop + gap if dropped else gap)


def test_a_table_without_stage_lengths_is_read_as_written_when_stamped(history):
    # a table made before the column existed (a saved frame, an application's own)
    t2 = _lost_before_a_long_stage(history, took_ms=None)
    frame = history.frame().drop("duration_ms")
    assert history.kinds(analyze(frame).findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("log_gap", None, None, None, None),
    ]


def test_a_line_written_when_stamped_ends_the_gap_at_its_stamp(history):
    # The same log where the send's line carries no duration (written when it was stamped,
    # at 1005): the lines lost before it were all stamped by 1005, before the deliver.
    t2 = _lost_before_a_long_stage(history, took_ms=None)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("log_gap", None, None, None, None),
    ]


@pytest.mark.parametrize("receive_took", [200.0, None])
def test_a_drop_lost_after_a_line_stamped_later_is_in_the_gap(history, receive_took):
    # m2 reached u2's socket at 1015 (grace 5 s: its receive is looked for up to 6015). u2's
    # log has a heartbeat at 6050, then lost 3 lines, then goes on. A lost line was written
    # after the heartbeat, but a stage stamped at its start may have begun before it: as
    # early as 6050 less the longest stage u2's log shows (m1's receive, 200 ms: 5850), in
    # the window (review 16a). A log without lengths was written as stamped: no lost line
    # is stamped before 6050, and m2 for u2 is a drop.
    t1 = history.message(1, "u1", ["u2"], t=0)
    receive = next(r for r in history.rows if r["trace_id"] == t1 and r["stage"] == "WS-RECV")
    receive["duration_ms"] = receive_took
    t2 = history.message(2, "u1", ["u2"], t=990, stop={"u2": "WS-RECV.receive"})
    history.ev(6050, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 3
    history.tail()
    report = analyze(history.frame())
    gap = [("log_gap", None, None, None, None)]
    assert history.kinds(report.findings) == (
        gap
        if receive_took
        else [("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"), *gap]
    )


def test_a_long_stage_of_the_apps_own_does_not_widen_a_gap(history):
    # u2's app logs its socket's connection as one stage of ten minutes (no pipeline hop):
    # how long it was open says nothing of how long a receive takes, and the gap after the
    # heartbeat at 6050 does not reach back to m2's deliver at 1015
    history.ev(0, "WS-RECV.connection", "client-u2", "u2", duration_ms=600_000.0)
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=990, stop={"u2": "WS-RECV.receive"})
    history.ev(6050, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 3
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("log_gap", None, None, None, None),
    ]


def test_a_hop_stage_that_hung_does_not_widen_a_gap_past_the_grace_window(history):
    # m2 for u2 is lost at 1 s; 37 messages later (20 min in) u2's log loses 3 lines, and at
    # 25 min u2 sends a message whose send hung 30 min. A lost hop is not taken to have
    # lasted more than the grace window (5 s): the gap says nothing of the 20 minutes of
    # intact log before it (review 16c: it covered them all, and the drop read as a gap)
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=990, stop={"u2": "WS-RECV.receive"})
    for n in range(3, 40):
        history.message(n, "u1", ["u2"], t=n * 30_000.0)
    history.ev(1_200_000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 3
    history.ev(1_201_000, "TRACEKIT.heartbeat", "client-u2", "u2")
    t99 = history.message(99, "u2", ["u1"], t=1_500_000)
    send = next(r for r in history.rows if r["trace_id"] == t99 and r["stage"] == "CTRL")
    send["duration_ms"] = 1_800_000.0
    history.tail(4_000_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("log_gap", None, None, None, None),
    ]


@pytest.mark.parametrize("first", [True, False])
def test_a_dropped_marker_first_in_its_log_covers_what_came_before(history, first):
    # u2's emitter says it lost events (TRACEKIT.dropped) since its previous line; where the
    # marker is the first line read of its log, since the log began (review 16c: the gap had
    # no start and covered nothing, and m1's lost receive read as a drop)
    if not first:
        history.ev(-100, "TRACEKIT.configured", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    history.ev(2000, "TRACEKIT.dropped", "client-u2", "u2")
    history.message(2, "u1", ["u2"], t=3000)
    history.tail()
    for r in history.rows:  # a log without seq: the marker is what says lines were lost
        r["seq"] = None
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]


@pytest.mark.parametrize("grace", [None, timedelta(0), timedelta(milliseconds=3)])
def test_a_gap_just_after_the_last_hop_covers_it_whatever_the_grace(history, grace):
    # m2 reached u2's socket at 1025; u2 logged a heartbeat at 1026, then lost 3 lines. With
    # `--grace 0s` (the logs are final: nothing is in flight) the gap still covers a receive
    # 2 ms after its deliver: the window a hop is looked for in a gap is the pipeline's
    # grace (5 s) at least (it was the 0 ms asked for, and the lost receive read as a drop)
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.ev(1026, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 3
    history.message(3, "u1", ["u2"], t=2000)
    history.tail()
    report = analyze(history.frame(), grace=grace)
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert f"not reported as drops: {t2} (u2 at WS-RECV.receive)" in report.findings["detail"][0]


@pytest.mark.parametrize(("grace_ms", "hop_window_ms", "dropped"), [(0, None, False), (0, 0, True)])
def test_a_model_that_waits_for_nothing_still_gives_hops_time(
    history, grace_ms, hop_window_ms, dropped
):
    # a model with `grace_ms = 0` (review 16e: it had the `--grace 0s` bug still): a hop
    # may take the model's hop window (5 s unless `hop_window_ms` says otherwise) whatever
    # the wait at the end of the logs; a model that says hops take no time has the receive
    # lost 15 ms after its deliver out of the gap's reach again (u2's clock may be 5 ms
    # ahead: the pairs bound it from above only, review 26a)
    import tomllib
    from dataclasses import replace
    from importlib import resources

    from tracekit.analyzers._pipeline import parse_pipeline

    text = resources.files("tracekit.analyzers").joinpath("default_pipeline.toml").read_text()
    model = tomllib.loads(text)
    model["pipeline"] = {**model["pipeline"], "grace_ms": grace_ms}
    if hop_window_ms is not None:
        model["pipeline"]["hop_window_ms"] = hop_window_ms
    pipeline = parse_pipeline(model)
    assert pipeline.grace == timedelta(0)
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.ev(1040, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 3
    history.message(3, "u1", ["u2"], t=2000)
    history.tail()
    gap = [("log_gap", None, None, None, None)]
    drop = [("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")]
    assert history.kinds(analyze(history.frame(), pipeline=pipeline).findings) == (
        drop + gap if dropped else gap
    )
    # a model whose grace is replaced in place (`tracekit trace --grace`,
    # `tracekit.testing.format_timeline`) keeps its hop window
    kept = replace(pipeline, grace=timedelta(0))
    assert history.kinds(analyze(history.frame(), pipeline=kept).findings) == (
        drop + gap if dropped else gap
    )


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


def _lost_client_lines(history, n: int, t: float, lose: set[str]) -> str:
    """Message ``n`` from u1 to u2, with u1's log losing the lines ``lose`` (seq jumps)."""
    trace, u1 = history.tid(n), history.client("u1")
    for k, hop in enumerate(("CTRL.send", "REST.request", "REST.persist", "REST.response")):
        if hop in lose:
            history.seq[u1] += 1
            continue
        if hop == "REST.persist":
            history.ev(t + 5 * k, hop, "server-1", "u1", trace=trace, conv_id="c1", msg_id=f"m{n}")
        else:
            history.ev(t + 5 * k, hop, u1, "u1", trace=trace, conv_id="c1")
    history.ev(t + 20, "WS-BROADCAST.start", "server-1", "u1", trace=trace, conv_id="c1",
               recipients=["u2"])  # fmt: skip
    history.ev(t + 25, "WS-BROADCAST.deliver", "server-1", "server", trace=trace, conv_id="c1",
               peer="u2")  # fmt: skip
    history.shown(t + 30, "client-u2", "u2", trace=trace)
    return trace


def test_missing_hop_of_an_unknown_sender_inside_its_log_gap_is_indeterminate(history):
    # u1's log loses message 2's CTRL.send (so no hop names the sender) and its REST.response:
    # the sender's log is still known, as the source of its REST.request.
    history.message(1, "u1", ["u2"], t=0)
    t2 = _lost_client_lines(history, 2, 10_000, {"CTRL.send", "REST.response"})
    history.message(3, "u1", ["u2"], t=20_000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("unexpected", t2, None, "REST.request", None),
        ("log_gap", None, None, None, None),
        ("log_gap", None, None, None, None),
    ]
    assert report.findings["detail"][2] == (
        "seq jumps from 4 to 6: 1 event(s) lost by the logging; 1 message path(s) "
        f"indeterminate, not reported as drops: {t2} (at REST.response)"
    )


def test_missing_hop_of_a_sender_whose_every_line_is_lost_is_indeterminate(history):
    # No line of u1 names message 2: which client should have logged REST.response is not
    # known, so a seq gap of any client at that time leaves it undecided.
    history.message(1, "u1", ["u2"], t=0)
    t2 = _lost_client_lines(history, 2, 10_000, {"CTRL.send", "REST.request", "REST.response"})
    history.message(3, "u1", ["u2"], t=20_000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("unexpected", t2, None, "REST.persist", None),
        ("log_gap", None, None, None, None),
    ]
    assert report.findings["detail"][1].endswith(f"not reported as drops: {t2} (at REST.response)")


def test_gap_in_a_log_with_no_surviving_hop_hides_the_drop(history):
    # u2's client logged no pipeline hop that survived (its seq jumps 0 -> 4): its other
    # events still say whose log it is.
    history.ev(-10, "TRACEKIT.configured", "client-u2", "u2")
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    history.seq["client-u2"] += 3
    history.ev(40, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert report.findings["detail"][0] == (
        "seq jumps from 0 to 4: 3 event(s) lost by the logging; 1 message path(s) "
        f"indeterminate, not reported as drops: {t1} (u2 at WS-RECV.receive)"
    )


def test_a_server_event_on_behalf_of_a_user_does_not_make_it_their_log(history):
    history.ev(-10, "AUTH.login", "server-1", "u2")  # the server acts for u2: not u2's client
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.seq["server-1"] += 2  # an unrelated gap in the server's log
    history.message(3, "u1", ["u2"], t=2000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("log_gap", None, None, None, None),
    ]


def _delivered_by(history, n: int, t: float, server: str, *, lost: bool = False) -> str:
    """Message ``n`` from u1 to u2, persisted by server-1; ``server`` writes to u2's socket."""
    trace = history.message(n, "u1", ["u2"], t=t, stop={"u2": "WS-BROADCAST.deliver"})
    if not lost:
        history.ev(t + 25, "WS-BROADCAST.deliver", server, "server", trace=trace, conv_id="c1",
                   peer="u2")  # fmt: skip
        history.shown(t + 30, "client-u2", "u2", trace=trace)
    return trace


def test_gap_on_a_server_that_did_not_handle_the_message_does_not_hide_its_drop(history):
    # server-1 persists and broadcasts message 2 and never writes to u2's socket; server-2,
    # which handles other messages, has an unrelated gap at that time.
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-BROADCAST.deliver"})
    history.ev(900, "TRACEKIT.configured", "server-2", "server")
    history.seq["server-2"] += 4
    history.ev(1100, "TRACEKIT.heartbeat", "server-2", "server")
    t3 = history.tid(3)
    history.ev(3000, "CTRL.send", "client-u3", "u3", trace=t3, conv_id="c2")
    history.ev(3005, "REST.request", "client-u3", "u3", trace=t3, conv_id="c2")
    history.ev(3010, "REST.persist", "server-2", "u3", trace=t3, conv_id="c2", msg_id="m3")
    history.ev(3015, "REST.response", "client-u3", "u3", trace=t3, conv_id="c2")
    history.ev(3020, "WS-BROADCAST.start", "server-2", "u3", trace=t3, conv_id="c2", recipients=[])
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-BROADCAST.deliver", "WS-BROADCAST.start"),
        ("log_gap", None, None, None, None),
    ]


def test_gap_on_the_server_holding_the_recipients_socket_hides_the_drop(history):
    # server-1 persists and broadcasts, server-2 writes to u2's socket: its gap counts.
    _delivered_by(history, 1, 0, "server-2")
    t2 = _delivered_by(history, 2, 1000, "server-2", lost=True)
    history.seq["server-2"] += 2
    _delivered_by(history, 3, 2000, "server-2")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert report.findings["source"][0] == "server-2"
    assert report.findings["detail"][0].endswith(f"{t2} (u2 at WS-BROADCAST.deliver)")


def test_gap_on_any_server_hides_a_drop_no_server_line_places(history):
    # No server line of message 2 survived: which server should have persisted it is unknown.
    _delivered_by(history, 1, 0, "server-2")
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"": "REST.persist"})
    history.seq["server-2"] += 2
    _delivered_by(history, 3, 2000, "server-2")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert report.findings["source"][0] == "server-2"
    assert report.findings["detail"][0].endswith(f"{t2} (at REST.persist)")


def test_lost_broadcast_line_does_not_hide_a_recipients_drop(history):
    # WS-BROADCAST.start of message 2 is not logged, but u2's delivery proves it happened; u3,
    # a member of c1, gets nothing: a drop at u3's deliver, after the last hop seen (persist).
    history.message(1, "u1", ["u2", "u3"], t=0)
    t2 = history.message(
        2,
        "u1",
        ["u2", "u3"],
        t=1000,
        skip_message=["WS-BROADCAST.start"],
        stop={"u3": "WS-BROADCAST.deliver"},
    )
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u3", "WS-BROADCAST.deliver", "REST.persist")
    ]
    row = report.findings.row(0, named=True)
    assert row["source"] == "server-1"
    assert row["evidence"] == [{"file": "server-1.jsonl", "line": 5}]  # message 2's persist
    assert row["detail"].endswith("no broadcast in the logs listed the recipients")
    assert report.summary["drop"] == 1


def test_lost_persist_line_does_not_hide_a_lost_response(history):
    # REST.persist of message 2 is not logged, its broadcast proves it happened; the sender
    # never got the response: a drop after the last hop seen on that path (the request).
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, skip_message=["REST.persist", "REST.response"])
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t2, None, "REST.response", "REST.request")]


def _two_devices(history, phone_hops, tablet_hops, *, t=0.0, delivers=2):
    """Message 1 from u1 to u2, whose phone (client-u2) and tablet log the given hops."""
    tr, u1 = history.tid(1), history.client("u1")
    at = {"trace": tr, "conv_id": "c1"}
    for k, hop in enumerate(("CTRL.send", "REST.request")):
        history.ev(t + k * 5, hop, u1, "u1", **at)
    history.ev(t + 10, "REST.persist", "server-1", "u1", msg_id="m1", **at)
    history.ev(t + 15, "REST.response", u1, "u1", msg_id="m1", **at)
    history.ev(t + 20, "WS-BROADCAST.start", "server-1", "u1", recipients=["u2"], **at)
    for k in range(delivers):
        history.ev(t + 25 + k, "WS-BROADCAST.deliver", "server-1", "server", peer="u2", **at)
    for source, hops in (("client-u2", phone_hops), ("client-u2-tablet", tablet_hops)):
        for k, hop in enumerate(hops):
            history.ev(t + 30 + k, hop, source, "u2", **at)
    return tr


RECIPIENT_HOPS = ("WS-RECV.receive", "REPO.add", "CTRL.add")


def test_seed_bug_on_one_of_two_devices(history):
    # The tablet shows the message; the phone stored it and never showed it. Per recipient
    # the path is complete (the tablet's CTRL.add): only the phone's own path is broken.
    tr = _two_devices(history, RECIPIENT_HOPS[:2], RECIPIENT_HOPS)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", tr, "u2", "CTRL.add", "REPO.add")]
    row = report.findings.row(0, named=True)
    assert row["source"] == "client-u2"
    assert row["evidence"] == [{"file": "client-u2.jsonl", "line": 2}]
    assert row["detail"] == (
        "recipient u2 on client-u2: reached REPO.add, never reached CTRL.add, which another of"
        " their devices did (client-u2's log goes on 59969.0 ms after it)"
    )
    # near the end of the logs the same is in flight
    history.rows.clear()
    history.seq.clear()
    tr = _two_devices(history, RECIPIENT_HOPS[:2], RECIPIENT_HOPS)
    history.tail(1000)
    assert history.kinds(analyze(history.frame()).findings) == [
        ("in_flight", tr, "u2", "CTRL.add", "REPO.add")
    ]


def test_a_gap_in_the_other_devices_log_does_not_hide_a_devices_drop(history):
    # The phone's CTRL.add belongs in the phone's log, which lost nothing: the tablet's gap
    # (right after it showed the message) leaves the phone's drop decided. In the phone's
    # own log, the same gap makes it indeterminate.
    tr = _two_devices(history, RECIPIENT_HOPS[:2], RECIPIENT_HOPS)
    history.seq["client-u2-tablet"] += 3
    history.ev(200, "TRACEKIT.heartbeat", "client-u2-tablet", "u2")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", tr, "u2", "CTRL.add", "REPO.add"),
        ("log_gap", None, None, None, None),
    ]
    assert report.findings.get_column("source").to_list() == ["client-u2", "client-u2-tablet"]
    assert "indeterminate" not in report.findings.row(1, named=True)["detail"]
    history.rows.clear()
    history.seq.clear()
    tr = _two_devices(history, RECIPIENT_HOPS[:2], RECIPIENT_HOPS)
    history.seq["client-u2"] += 3
    history.ev(200, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert f"{tr} (u2 at CTRL.add)" in report.findings.row(0, named=True)["detail"]


def test_a_device_that_logged_nothing_is_offline_not_a_drop(history):
    _two_devices(history, (), RECIPIENT_HOPS, delivers=1)
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def test_a_path_no_device_finished_is_one_drop_of_the_recipient(history):
    # Both devices stopped at REPO.add: the recipient's drop, not one more per device.
    tr = _two_devices(history, RECIPIENT_HOPS[:2], RECIPIENT_HOPS[:2])
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", tr, "u2", "CTRL.add", "REPO.add")]
    assert report.findings.get_column("detail").str.starts_with("recipient u2: ").all()


def test_a_devices_repeated_last_hop_is_judged_on_that_device(history):
    # The phone received the message twice (a reconnect) and never stored it; the tablet,
    # whose receive comes later, stored and showed it. The phone's drop points at the phone's
    # last receive, not at the tablet's.
    tr = _two_devices(history, ("WS-RECV.receive", "WS-RECV.receive"), ())
    history.ev(300, "WS-RECV.receive", "client-u2-tablet", "u2", trace=tr, conv_id="c1")
    history.ev(301, "REPO.add", "client-u2-tablet", "u2", trace=tr, conv_id="c1")
    history.ev(302, "CTRL.add", "client-u2-tablet", "u2", trace=tr, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", tr, "u2", "REPO.add", "WS-RECV.receive"),
        ("duplicate", tr, "u2", "WS-RECV.receive", None),  # twice on one device
    ]
    row = report.findings.row(0, named=True)
    assert (row["source"], row["evidence"]) == (
        "client-u2",
        [{"file": "client-u2.jsonl", "line": 2}],
    )


def test_a_device_whose_log_ends_right_after_is_not_judged_a_drop(history):
    # The app stored the message and then its process ended (killed, restarted as a new
    # source that showed it): that process cannot be said to have dropped CTRL.add.
    tr = _two_devices(history, RECIPIENT_HOPS[:2], RECIPIENT_HOPS)
    history.tail()
    history.rows = [
        r for r in history.rows if not (r["source"] == "client-u2" and r["stage"] == "TRACEKIT")
    ]
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("in_flight", tr, "u2", "CTRL.add", "REPO.add")]
    assert report.findings.get_column("source").to_list() == ["client-u2"]


def _crash_after_receive(history, restart_at: float) -> str:
    """u2's app received m2, then its process stopped before storing it and started again
    under the same source name at ``restart_at`` ms."""
    history.ev(0, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=10)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "REPO.add"})
    history.seq["client-u2"] = 0
    history.ev(restart_at, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(3, "u1", ["u2"], t=restart_at + 1000)
    history.tail()
    return t2


def test_a_drop_says_the_process_restarted_with_the_message_under_way(history):
    # still a drop (u2 never saw m2, and the logs go on: the loss tracekit exists to report),
    # told apart from the app's own bugs: its process restarted within the grace window
    t2 = _crash_after_receive(history, restart_at=2_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t2, "u2", "REPO.add", "WS-RECV.receive")]
    drop = report.findings.row(0, named=True)
    assert drop["detail"] == (
        "recipient u2: reached WS-RECV.receive, never reached REPO.add (the logs go on 58970.0 "
        "ms after it); client-u2 restarted 970.0 ms after it (a new run of its log begins at "
        "client-u2.jsonl:1)"
    )
    assert drop["evidence"] == [
        {"file": "client-u2.jsonl", "line": 5},  # m2's receive
        {"file": "client-u2.jsonl", "line": 1},  # the next run's first line
    ]


def test_a_restart_long_after_a_drop_is_not_its_cause(history):
    t2 = _crash_after_receive(history, restart_at=30_000)  # 29 s later: past the 5 s grace
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t2, "u2", "REPO.add", "WS-RECV.receive")]
    assert "restarted" not in report.findings["detail"][0]
    assert len(report.findings["evidence"][0]) == 1


@pytest.mark.parametrize(("hop_window_s", "named"), [(60, True), (5, False)])
def test_a_restart_is_named_within_the_time_a_hop_may_take(history, hop_window_s, named):
    # 29 s after the receive: named where the model gives a hop a minute (review 16f: a
    # fixed 5 s), whatever the grace (0: the logs are final)
    from dataclasses import replace

    from tracekit.analyzers import default_pipeline

    t2 = _crash_after_receive(history, restart_at=30_000)
    model = replace(default_pipeline(), hop_window=timedelta(seconds=hop_window_s))
    report = analyze(history.frame(), pipeline=model, grace=timedelta(0))
    assert history.kinds(report.findings) == [("drop", t2, "u2", "REPO.add", "WS-RECV.receive")]
    assert ("client-u2 restarted 28970.0 ms after it" in report.findings["detail"][0]) == named


def test_a_client_restarted_after_the_server_delivered_is_named(history):
    # the last hop is the server's deliver; the process that should have logged the receive,
    # u2's app, restarted 75 ms later (its new run's first line: the evidence)
    history.ev(0, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=10)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.seq["client-u2"] = 0
    history.ev(1100, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(3, "u1", ["u2"], t=3000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    drop = report.findings.row(0, named=True)
    assert drop["detail"].endswith(
        "; client-u2 restarted 75.0 ms after it (a new run of its log begins at client-u2.jsonl:1)"
    )
    assert drop["evidence"] == [
        {"file": "server-1.jsonl", "line": 6},
        {"file": "client-u2.jsonl", "line": 1},
    ]


@pytest.mark.parametrize("first", ["the_receive", "a_line_of_its_millisecond"])
def test_a_hop_the_new_run_logged_was_not_cut_off_by_the_restart(history, first):
    # m2's receive is the new run's first line, or logged in the millisecond of the new run's
    # first line: the restart came before it, not after (review 14b)
    history.ev(0, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=10)
    history.seq["client-u2"] = 0
    if first == "a_line_of_its_millisecond":
        history.ev(1030, "TRACEKIT.heartbeat", "client-u2", "u2")  # m2's receive: 1030 ms
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "REPO.add"})
    history.message(3, "u1", ["u2"], t=3000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t2, "u2", "REPO.add", "WS-RECV.receive")]
    assert "restarted" not in report.findings["detail"][0]
    assert len(report.summary["restarts"]) == 1


def test_another_devices_restart_is_not_a_device_drops_cause(history):
    # the phone never showed m1; the tablet, which did, restarted 469 ms later: the phone's
    # path is judged by its own log, and nothing restarted there (review 14c)
    history.ev(-100, "TRACEKIT.heartbeat", "client-u2-tablet", "u2")
    tr = _two_devices(history, RECIPIENT_HOPS[:2], RECIPIENT_HOPS)
    history.seq["client-u2-tablet"] = 0
    history.ev(500, "TRACEKIT.heartbeat", "client-u2-tablet", "u2")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", tr, "u2", "CTRL.add", "REPO.add")]
    assert "restarted" not in report.findings["detail"][0]


def test_a_log_of_no_hop_is_nobodys_client(history):
    # server-2 logs no hop, and its first line acts for u2: its restart is not u2's app's
    history.ev(0, "TRACEKIT.heartbeat", "server-2", "u2")
    history.ev(1, "TRACEKIT.heartbeat", "server-2", "u2")
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.seq["server-2"] = 0
    history.ev(1100, "TRACEKIT.heartbeat", "server-2", "u2")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.summary["restarts"][0]["source"] == "server-2"
    assert "restarted" not in report.findings["detail"][0]


def test_a_restart_is_named_though_the_path_is_judged_with_no_grace(history):
    # the testing helpers judge with grace 0: a crash 970 ms after the receive is still said
    t2 = _crash_after_receive(history, restart_at=2_000)
    report = analyze(history.frame(), grace=timedelta(0))
    assert history.kinds(report.findings) == [("drop", t2, "u2", "REPO.add", "WS-RECV.receive")]
    assert report.findings["detail"][0].endswith(
        "; client-u2 restarted 970.0 ms after it (a new run of its log begins at client-u2.jsonl:1)"
    )


def test_a_drop_says_the_log_of_the_server_that_had_it_ends_soon_after(history):
    # server-a persisted m4 and logged nothing after 50 ms more (killed); server-b, a process
    # of another name, took over and the logs go on: still a drop, said to follow that end
    for n in range(1, 4):
        history.message(n, "u1", ["u2"], t=n * 1000, server="server-a")
    t4 = history.message(
        4, "u1", ["u2"], t=4000, server="server-a", stop={"": "WS-BROADCAST.start"}
    )
    history.ev(4060, "TRACEKIT.heartbeat", "server-a", "server")
    for n in range(5, 8):
        history.message(n, "u1", ["u2"], t=n * 1000 + 2000, server="server-b")
    history.tail(sources=["server-b", "client-u1", "client-u2"])  # not server-a's
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t4, None, "WS-BROADCAST.start", "REST.persist")
    ]
    assert report.findings["detail"][0] == (
        "reached REST.persist, never reached WS-BROADCAST.start (the logs go on 55990.0 ms "
        "after it); server-a's log ends 50.0 ms after it"
    )


def test_a_drop_says_the_log_of_the_app_that_should_have_received_it_ends(history):
    # the server wrote m2 to u2's socket; u2's app logged nothing after (closed, not restarted)
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.ev(1200, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(3, "u1", [], t=9000)  # the others go on
    history.tail(sources=["client-u1", "server-1"])
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.findings["detail"][0].endswith(
        "(the logs go on 58975.0 ms after it); client-u2's log ends 175.0 ms after it"
    )


@pytest.mark.parametrize("second_app", [False, True])
def test_a_drop_says_the_app_that_should_have_received_it_logs_only_from_later(history, second_app):
    # fuzzing 18b: u2's log lost its beginning (an older rotated file not given): m1 reached
    # u2's socket before any line of it; said on the drop, not a silent flood of drops.
    # Not said where another log of u2's app was going then (the phone's own drop)
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    if second_app:
        history.ev(-10, "TRACEKIT.heartbeat", "client-u2-phone", "u2")
    history.ev(5000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(2, "u1", ["u2"], t=6000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    said = (
        ""
        if second_app
        else "; client-u2's log begins 4970.0 ms after it: none of u2's app logs from then is "
        "among the inputs (an older rotated file?)"
    )
    assert report.findings["detail"][0] == (
        "recipient u2: reached WS-BROADCAST.deliver, never reached WS-RECV.receive (the logs go "
        f"on 59975.0 ms after it){said}"
    )


@pytest.mark.parametrize("case", ["goes_on", "ends_with_the_rest", "two_clients", "a_second_app"])
def test_a_log_end_is_said_only_of_a_log_that_stops_while_the_others_go_on(history, case):
    # u2's log goes on 6 s after the drop (past the 5 s window); or it ends 150 ms after, but
    # the other logs end 1 s later (all stopped: no telling); or u2 has two apps, so which
    # should have received it is not known
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    end = 7000 if case == "goes_on" else 1200
    history.ev(end, "TRACEKIT.heartbeat", "client-u2", "u2")
    if case == "two_clients":  # the tablet showed m1, and its log ends with the phone's
        history.shown(31, "client-u2-tablet", "u2", trace=history.tid(1))
        history.ev(end, "TRACEKIT.heartbeat", "client-u2-tablet", "u2")
    if case == "a_second_app":  # a tablet that only loaded the history, going on (review 15d)
        history.ev(500, "REST.fetch_start", "client-u2-tablet", "u2", conv_id="c1")
        history.ev(510, "REST.fetch_end", "client-u2-tablet", "u2", conv_id="c1")
        history.tail(sources=["client-u2-tablet"])
    history.tail(2200 if case == "ends_with_the_rest" else 60_000, ["client-u1", "server-1"])
    report = analyze(history.frame(), grace=timedelta(0))
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    after = "1175.0" if case == "ends_with_the_rest" else "58975.0"
    assert report.findings["detail"][0] == (
        "recipient u2: reached WS-BROADCAST.deliver, never reached WS-RECV.receive (the logs go"
        f" on {after} ms after it)"
    )


def test_a_drop_on_one_device_says_its_log_end_once(history):
    # the phone received m2 and stored nothing; the tablet showed it. The phone's path is
    # judged by its own log's end, which its detail says already (review 15c)
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "REPO.add"})
    for n, t in ((1, 0), (2, 1000)):
        history.shown(t + 30, "client-u2-tablet", "u2", trace=history.tid(n))
    history.ev(2000, "TRACEKIT.heartbeat", "client-u2", "u2")  # 970 ms after m2's receive
    history.tail(sources=["client-u1", "server-1", "client-u2-tablet"])
    report = analyze(history.frame(), grace=timedelta(0))
    assert history.kinds(report.findings) == [("drop", t2, "u2", "REPO.add", "WS-RECV.receive")]
    assert report.findings["detail"][0] == (
        "recipient u2 on client-u2: reached WS-RECV.receive, never reached REPO.add, which "
        "another of their devices did (client-u2's log goes on 970.0 ms after it)"
    )


def test_the_app_going_at_the_last_hop_is_named_though_it_restarted_under_a_new_name(history):
    # u2's app closed with m2 on its socket and started again as client-u2-b: the log that
    # was going when the server wrote m2 is the one that ends
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.ev(1200, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(3, "u1", [], t=9000)
    t4 = history.message(4, "u1", ["u2"], t=10_000)
    moved = [r for r in history.rows if r["trace_id"] == t4 and r["source"] == "client-u2"]
    for k, r in enumerate(moved):  # the new run got m4 (its own log, seq from 0)
        r.update(source="client-u2-b", file="client-u2-b.jsonl", seq=k, line=k + 1)
    history.seq["client-u2"] -= len(moved)
    history.seq["client-u2-b"] = len(moved)
    history.tail(sources=["client-u1", "server-1", "client-u2-b"])
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.findings["detail"][0].endswith("; client-u2's log ends 175.0 ms after it")


def test_a_drop_says_the_app_was_gone_when_the_server_wrote_to_it(history):
    # u2's log ended 125 ms before the server wrote m2 to its socket (the app was closed)
    history.message(1, "u1", ["u2"], t=0)
    history.ev(900, "TRACEKIT.heartbeat", "client-u2", "u2")
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.message(3, "u1", [], t=9000)
    history.tail(sources=["client-u1", "server-1"])
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.findings["detail"][0].endswith("; client-u2's log ended 125.0 ms before it")


@pytest.mark.parametrize("case", ["one_server", "and_the_client", "two_going", "two_ending"])
def test_a_request_no_server_logged_names_the_one_server_whose_log_ended(history, case):
    # u1 sent m3 through server-a, which logged nothing after 35 ms (killed before persisting
    # it); server-c took over for u2's messages to u3. The server is named first, though u1's
    # app stopped too (5 ms after). With server-b going as well (on, or ending then too),
    # which server had the request is not known: nothing said.
    if case in ("two_going", "two_ending"):
        history.ev(500, "TRACEKIT.heartbeat", "server-b", "server")
        history.message(9, "u2", ["u3"], t=600, server="server-b")
    for n in range(1, 3):
        history.message(n, "u1", ["u2"], t=n * 1000, server="server-a")
    t3 = history.message(3, "u1", ["u2"], t=3000, server="server-a", stop={"": "REST.persist"})
    if case == "and_the_client":
        history.ev(3010, "TRACEKIT.heartbeat", "client-u1", "u1")
    history.ev(3035, "TRACEKIT.heartbeat", "server-a", "server")
    if case == "two_ending":
        history.ev(3040, "TRACEKIT.heartbeat", "server-b", "server")
    for n in range(4, 6):
        history.message(n, "u2", ["u3"], t=n * 1000 + 3000, server="server-c")
    going = ["server-c", "client-u2", "client-u3"] + (["server-b"] if case == "two_going" else [])
    if case != "and_the_client":
        going.append("client-u1")
    history.tail(sources=going)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t3, None, "REST.persist", "REST.request")]
    # (where server-a was the last server going, the logs' end is the clients', each as
    # early as its clock may be: u3 only receives, bounded from above by 5 ms)
    said = f"(the logs go on {56990.0 if case == 'and_the_client' else 56995.0} ms after it)"
    named = (
        "; server-a's log ends 30.0 ms after it" if case in ("one_server", "and_the_client") else ""
    )
    assert report.findings["detail"][0] == (
        f"reached REST.request, never reached REST.persist {said}{named}"
    )


def test_a_request_no_server_logged_names_the_server_restarted_in_place(history):
    # server-a, the one server, was killed before persisting m3 and started again under its
    # name 80 ms after u1's request (review 15f): its restart is named, with its first line
    for n in range(1, 3):
        history.message(n, "u1", ["u2"], t=n * 1000, server="server-a")
    t3 = history.message(3, "u1", ["u2"], t=3000, server="server-a", stop={"": "REST.persist"})
    history.ev(3035, "TRACEKIT.heartbeat", "server-a", "server")
    history.seq["server-a"] = 0
    restart = history.ev(3085, "TRACEKIT.configured", "server-a", "server")
    restart["line"] = 100  # (its own line in the file, after the first run's)
    for n in range(4, 6):
        history.message(n, "u1", ["u2"], t=n * 1000 + 3000, server="server-a")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t3, None, "REST.persist", "REST.request")]
    assert report.findings["detail"][0] == (
        "reached REST.request, never reached REST.persist (the logs go on 56995.0 ms after it);"
        " server-a restarted 80.0 ms after it (a new run of its log begins at server-a.jsonl:100)"
    )


def _long_persist(history, n: int, t: float, **stop: object) -> str:
    """Message ``n`` at ``t`` ms whose persist took 6 s (its line written then)."""
    trace = history.message(n, "u1", ["u2"], t=t, **stop)
    persist = next(r for r in history.rows if r["trace_id"] == trace and r["action"] == "persist")
    persist["duration_ms"] = 6000.0
    return trace


def test_the_grace_window_counts_from_when_the_last_hop_ended(history):
    # server-1's persist of m2 began at 10 010 ms and took 6 s: its line, written when it
    # ended, is m2's last; the broadcast (and the response) could not come before that. The
    # logs end 7 s after its stamp (past a 5 s window from there), 1 s after it ended
    history.message(1, "u1", ["u2"], t=0)
    t2 = _long_persist(
        history, 2, 10_000, stop={"": "WS-BROADCAST.start"}, skip_message=["REST.response"]
    )
    history.tail(17_010)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, None, "REST.response", "REST.persist"),
        ("in_flight", t2, None, "WS-BROADCAST.start", "REST.persist"),
    ]
    assert report.findings["detail"][0] == (
        "reached REST.persist, REST.response not seen yet; the logs end 1000.0 ms after it "
        "ended, inside the 5000 ms grace window"
    )
    # once the logs go on past the window from its end, a drop, said from there
    history.tail(22_010)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, None, "REST.response", "REST.persist"),
        ("drop", t2, None, "WS-BROADCAST.start", "REST.persist"),
    ]
    assert report.findings["detail"][0] == (
        "reached REST.persist, never reached REST.response (the logs go on 6000.0 ms after it "
        "ended)"
    )


def test_with_no_grace_a_path_whose_line_was_written_last_is_a_drop(history):
    # the logs' stamps end (12 s) before m2's persist line was written (16 s): that line ends
    # them, and with no grace they are final there too (fuzzing 17b: in flight)
    history.message(1, "u1", ["u2"], t=0)
    t2 = _long_persist(
        history, 2, 10_000, stop={"": "WS-BROADCAST.start"}, skip_message=["REST.response"]
    )
    history.tail(12_000)
    report = analyze(history.frame(), grace=timedelta(0))
    assert history.kinds(report.findings) == [
        ("drop", t2, None, "REST.response", "REST.persist"),
        ("drop", t2, None, "WS-BROADCAST.start", "REST.persist"),
    ]
    assert report.findings["detail"][0].endswith("(the logs go on 0.0 ms after it ended)")
    # with a grace window, in flight: nothing was logged after its line was written
    report = analyze(history.frame())
    assert report.summary["in_flight"] == 2 and report.summary["drop"] == 0


def test_a_devices_grace_counts_from_when_its_last_hop_ended(history):
    # the tablet's receive of m2 lasted 7 s (its line written at 8 027 ms, after the tablet's
    # heartbeat stamped 7 500 ms): judged by its own log, which ends inside the window from
    # that end, m2's store on the tablet is not yet late
    history.message(1, "u1", ["u2"], t=0)
    history.shown(31, "client-u2-tablet", "u2", trace=history.tid(1))
    t2 = history.message(2, "u1", ["u2"], t=1000)
    history.ev(7500, "TRACEKIT.heartbeat", "client-u2-tablet", "u2")
    history.ev(
        1027, "WS-RECV.receive", "client-u2-tablet", "u2", trace=t2, conv_id="c1",
        duration_ms=7000.0,
    )  # fmt: skip
    history.tail(sources=["client-u1", "client-u2", "server-1"])
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, "u2", "REPO.add", "WS-RECV.receive")
    ]
    assert report.findings["detail"][0] == (
        "recipient u2 on client-u2-tablet: reached WS-RECV.receive, REPO.add not seen yet, "
        "which another of their devices did; client-u2-tablet's log ends 0.0 ms after it "
        "ended, inside the 5000 ms grace window"
    )


def test_a_line_that_says_it_took_a_day_does_not_end_the_logs_later(history):
    # a log's end is its latest stamp, not its latest stamp + duration_ms: one such value
    # (microseconds written as milliseconds) would otherwise make every message still under
    # way at the end a drop. The time a line says it took only ever makes a message wait
    history.ev(100, "REST.fetch_end", "client-u2", "u2", conv_id="c1", duration_ms=123456789.0)
    history.message(1, "u1", ["u2"], t=1000)
    t2 = history.message(2, "u1", ["u2"], t=10_000, stop={"u2": "WS-RECV.receive"})
    history.tail(10_100)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]


@pytest.mark.parametrize(
    ("missing", "last_seen"), [("REST.persist", "REST.request"), ("REST.response", "REST.persist")]
)
def test_a_retry_is_judged_from_when_its_own_line_was_written(history, missing, last_seen):
    # the client sent m2's request again at 52 s, a request that took 6 s (its line written
    # at 58 s): the logs end 2 s after it ended, so m2 is still under way. The retried hop is
    # the last one reached, or one before it (review 17c: judged from the retry's stamp, a drop)
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"": missing})
    history.ev(
        52_000, "REST.request", history.client("u1"), "u1", trace=t2, conv_id="c1",
        duration_ms=6000.0,
    )  # fmt: skip
    history.tail(60_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("in_flight", t2, None, missing, last_seen)]
    assert report.findings["detail"][0].endswith(
        "; the logs end 2000.0 ms after it ended, inside the 5000 ms grace window"
    )


def test_a_hop_lost_in_a_gap_after_a_long_last_hop_ended_is_indeterminate(history):
    # m3's deliver took 6 s (written at ~16 s); u2's log lost a line between 16.2 s and 17 s,
    # within the time a hop may take after the deliver ended: its receive may be that line
    # (review 17c: searched from the deliver's stamp only, a drop)
    for n in range(1, 3):
        history.message(n, "u1", ["u2"], t=n * 1000)
    t3 = history.message(3, "u1", ["u2"], t=10_000, stop={"u2": "WS-RECV.receive"})
    deliver = next(r for r in history.rows if r["trace_id"] == t3 and r["action"] == "deliver")
    deliver["duration_ms"] = 6000.0
    history.ev(16_200, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 1  # the receive's line, lost
    history.ev(17_000, "TRACEKIT.heartbeat", "client-u2", "u2")
    for n in range(4, 6):
        history.message(n, "u1", ["u2"], t=n * 1000 + 20_000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert report.findings["detail"][0].endswith(
        f"1 message path(s) indeterminate, not reported as drops: {t3} (u2 at WS-RECV.receive)"
    )


def test_a_restart_soon_after_a_long_last_hop_ended_is_named(history):
    # server-1 restarted 1 s after m3's 6 s persist ended, 7 s after its stamp (review 17c:
    # looked for within 5 s of the stamp, not named)
    for n in range(1, 3):
        history.message(n, "u1", ["u2"], t=n * 1000)
    t3 = _long_persist(
        history, 3, 10_000, stop={"": "WS-BROADCAST.start"}, skip_message=["REST.response"]
    )
    history.seq["server-1"] = 0
    history.ev(17_010, "TRACEKIT.heartbeat", "server-1", "server")
    for n in range(4, 6):
        history.message(n, "u1", ["u2"], t=n * 1000 + 20_000)
    history.tail()
    report = analyze(history.frame())
    assert ("drop", t3, None, "WS-BROADCAST.start", "REST.persist") in history.kinds(
        report.findings
    )
    detail = report.findings.filter(pl.col("stage") == "WS-BROADCAST.start")["detail"][0]
    assert detail.endswith(
        "; server-1 restarted 1000.0 ms after it ended (a new run of its log begins at "
        "server-1.jsonl:1)"
    )


def test_a_log_end_soon_after_a_long_last_hop_ended_is_named(history):
    # u1's app logged nothing 1 s after m3's 6 s persist ended, and its response never came
    for n in range(1, 3):
        history.message(n, "u1", ["u2"], t=n * 1000)
    t3 = _long_persist(history, 3, 10_000, skip_message=["REST.response"])
    history.ev(17_010, "TRACEKIT.heartbeat", "client-u1", "u1")
    for n in range(4, 6):
        history.message(n, "u3", ["u2"], t=n * 1000 + 20_000)
    history.tail(sources=["server-1", "client-u2", "client-u3"])
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t3, None, "REST.response", "REST.persist")]
    assert report.findings["detail"][0].endswith(
        "(the logs go on 43990.0 ms after it ended); client-u1's log ends 1000.0 ms after it ended"
    )


def _ends(history, true_ms: float, ahead: dict[str, float]) -> None:
    """Every log ends at ``true_ms`` (true time), each stamped by its own clock."""
    for src in sorted({r["source"] for r in history.rows}):
        user = src.removeprefix("client-") if src.startswith("client-") else "server"
        history.ev(true_ms + ahead.get(src, 0.0), "TRACEKIT.heartbeat", src, user)


def test_a_receive_only_clients_clock_ahead_leaves_a_path_in_flight(history):
    # review 26a: u2's phone only receives (the pairs bound its clock from above only) and
    # runs 3 s ahead: taken as in sync, its log's end read 3 s late, and m2, delivered 3 s
    # before every log ends, was a drop. Judged at every offset the pairs allow, in flight.
    ahead = {"client-u2": 3000.0}
    t1 = history.message(1, "u1", ["u2"], t=0, offsets=ahead)
    t2 = history.message(2, "u1", ["u2"], t=16_975, stop={"u2": "WS-RECV.receive"})
    _ends(history, 20_000, ahead)
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("in_flight", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("slo_breach", t1, "u2", "CTRL.add", "CTRL.send"),  # (3 s, "not certain": said)
    ]
    assert found["detail"][0] == (
        "recipient u2: reached WS-BROADCAST.deliver, WS-RECV.receive not seen yet; the logs "
        "end 3000.0 ms later, inside the 5000 ms grace window"
    )


@pytest.mark.parametrize("lost", [True, False])
def test_a_gap_in_a_clients_log_ahead_of_its_stamps_may_hold_its_missing_hop(history, lost):
    # review 26a: u2's clock 7 s ahead; its log lost the lines of m6 (seq jump): corrected as
    # in sync, the gap read 7 s after m6's delivery, outside the window, and m6 was a drop
    # saying u2's log "begins 4502 ms after it" (it had received m1-m5)
    ahead = {"client-u2": 7000.0}
    for n in range(1, 11):
        if n == 6:
            t6 = history.message(n, "u1", ["u2"], t=n * 500, stop={"u2": "WS-RECV.receive"})
            history.seq["client-u2"] += 3 if lost else 0
        else:
            history.message(n, "u1", ["u2"], t=n * 500, offsets=ahead)
    _ends(history, 30_000, ahead)
    found = analyze(history.frame()).findings
    found = found.filter(pl.col("kind") != "slo_breach")  # (each of u2's 7 s: said elsewhere)
    if lost:
        assert history.kinds(found) == [("log_gap", None, None, None, None)]
        assert found["detail"][0].endswith(
            f"indeterminate, not reported as drops: {t6} (u2 at WS-RECV.receive)"
        )
    else:
        assert history.kinds(found) == [
            ("drop", t6, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
        ]
        assert found["detail"][0] == (
            "recipient u2: reached WS-BROADCAST.deliver, never reached WS-RECV.receive (the "
            "logs go on 26975.0 ms after it)"
        )


def test_a_clients_clock_slack_is_not_applied_to_its_own_lines(history):
    # review 26b: u2 (only receives, 7 s ahead) logged m6's receive, not its store, and its
    # own log went on 7 s (lost 3 lines 9 s) after it: on one clock, whatever its offset,
    # a drop. The logs' end and the gap were read as early as u2's clock may be, as if the
    # receive were on another clock: in flight, then a log_gap holding m6.
    ahead = {"client-u2": 7000.0}
    for n in range(1, 6):
        history.message(n, "u1", ["u2"], t=n * 500, offsets=ahead)
    t6 = history.message(6, "u1", ["u2"], t=3000, offsets=ahead, stop={"u2": "REPO.add"})
    received = 3000 + 30 + 7000  # u2's stamp of m6's receive
    history.ev(received + 9000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] += 3
    history.ev(received + 9500, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail(12_000, sources=["server-1", "client-u1"])  # (2 s after m6's receive)
    found = analyze(history.frame()).findings
    found = found.filter(found["kind"] != "slo_breach")  # (each of u2's 7 s: said elsewhere)
    assert history.kinds(found) == [
        ("drop", t6, "u2", "REPO.add", "WS-RECV.receive"),
        ("log_gap", None, None, None, None),
    ]
    assert found["detail"][0] == (
        "recipient u2: reached WS-RECV.receive, never reached REPO.add (the logs go on "
        "9500.0 ms after it)"
    )


def test_a_drop_to_a_user_no_log_of_whose_app_is_given_says_so(history):
    # review 26c: u3's app log not among the inputs: each message to u3 read as a drop at
    # WS-RECV.receive, as frames lost on the wire would, with not a word of why
    t1 = history.message(1, "u1", ["u2", "u3"], t=0, stop={"u2": "CTRL.add"})
    history.tail()
    history.rows[:] = [r for r in history.rows if r["source"] != "client-u3"]
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t1, "u3", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("drop", t1, "u2", "CTRL.add", "REPO.add"),
    ]
    assert not found["detail"][1].endswith("among the inputs")
    assert found["detail"][0] == (
        "recipient u3: reached WS-BROADCAST.deliver, never reached WS-RECV.receive (the logs "
        "go on 59974.5 ms after it); no log of u3's app is among the inputs"
    )


def test_a_server_log_alone_says_once_that_no_client_hop_is_logged(history):
    # session 27: the server's log alone read as a drop of every message at REST.response and
    # every delivery at WS-RECV.receive; the sender is unknown there (the server acts as
    # "server"), so no drop could say whose app's log is missing: the report says it once
    history.ev(0, "TRACEKIT.heartbeat", "server-1", "server")
    t1 = history.message(1, "u1", ["u2"], t=10_000)  # (not sent before the logs began)
    history.tail()
    history.rows[:] = [r for r in history.rows if r["source"] == "server-1"]
    for row in history.rows:
        row["actor"] = "server"
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t1, None, "REST.response", "REST.persist"),
        ("drop", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("unexpected", t1, None, "REST.persist", None),  # (no send seen: DESIGN.md 5)
    ]
    assert report.inputs["warnings"] == [
        f"no line of the inputs logs a hop of {whose} ({hops}): are those logs among the "
        "inputs? Every path that should pass these hops reads as a drop at them"
        for whose, hops in (
            ("the sender's app", "CTRL.send, REST.request, REST.response"),
            ("the recipients' apps", "WS-RECV.receive, REPO.add, CTRL.add"),
        )
    ]
    # the clients' logs alone: the server's hops are proven by theirs, nothing judged there,
    # nothing to say
    history = type(history)()
    history.message(1, "u1", ["u2"], t=10_000)
    history.tail()
    history.rows[:] = [r for r in history.rows if r["source"] != "server-1"]
    report = analyze(history.frame())
    assert report.findings.is_empty()
    assert "warnings" not in report.inputs


def test_lines_naming_no_recipient_are_lines_of_the_recipients_apps(history):
    # the warning above reads the paths' counts first; one process logs the server's hops and
    # u2's app's, naming no one on the app's lines (on no path, so counted nowhere): no "no
    # line ... logs a hop of the recipients' apps" for u3's app, the one really missing
    history.ev(0, "TRACEKIT.heartbeat", "server-1", "server")
    t1 = history.message(1, "u1", ["u2"], t=10_000)
    t2 = history.message(2, "u1", ["u3"], t=11_000)
    history.tail()
    history.rows[:] = [r for r in history.rows if r["source"] != "client-u3"]
    for row in history.rows:
        if row["source"] == "client-u2":
            row["actor"] = None
        row["source"] = "app-1"
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u3", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("unexpected", t1, None, "WS-RECV.receive", None),
    ]
    assert "warnings" not in report.inputs


def test_a_client_log_given_or_a_window_s_cut_is_no_missing_log(history):
    # review 27: the warning asked whether the recipients' logs were given where u2's app
    # logged no hop at all (offline: its log is given), and whether the server's were where
    # --until cut the path before its first server hop (logged, outside the window)
    history.ev(0, "TRACEKIT.heartbeat", "server-1", "server")
    history.ev(0, "TRACEKIT.configured", "client-u2", "u2")
    t1 = history.message(1, "u1", ["u2"], t=10_000)
    history.tail()
    offline = [r for r in history.rows if r["source"] != "client-u1"]
    offline = [r for r in offline if r["source"] != "client-u2" or r["trace_id"] is None]
    for seq, row in enumerate(r for r in offline if r["source"] == "client-u2"):
        row["seq"] = seq  # (its hops not logged: not lost by the logging)
    report = analyze(events_frame(offline).lazy())
    assert history.kinds(report.findings) == [
        ("drop", t1, None, "REST.response", "REST.persist"),
        ("drop", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("unexpected", t1, None, "REST.persist", None),
    ]
    assert "warnings" not in report.inputs
    table = history.frame().collect()
    # (the send and request inside, from the persist on outside: no server hop in the window)
    inside = pl.col("timestamp") < table.get_column("timestamp").min() + timedelta(seconds=10.007)
    report = analyze(table.filter(inside), left_out=table.filter(~inside))
    assert history.kinds(report.findings) == [
        ("in_flight", t1, None, "REST.persist", "REST.request")
    ]
    assert "warnings" not in report.inputs


def test_a_restart_after_the_run_went_on_with_the_conversation_is_not_named(history):
    # review 26c: server-1 never delivered m1 to u2 (u2's app was down), went on to deliver
    # m2 and m3 of c1 to both, and was restarted 700 ms later: the drop named the restart;
    # m4's broadcast, cut by a second restart 3 ms after it, still names that one
    t1 = history.message(1, "u1", ["u2", "u3"], t=0, stop={"u2": "WS-BROADCAST.deliver"})
    history.message(2, "u1", ["u2", "u3"], t=100)
    history.message(3, "u3", ["u2", "u1"], t=200)
    history.seq["server-1"] = 0
    history.ev(720, "TRACEKIT.configured", "server-1", "server")
    t4 = history.message(4, "u1", ["u2"], t=1000, stop={"": "WS-BROADCAST.start"})
    history.seq["server-1"] = 0
    history.ev(1013, "TRACEKIT.configured", "server-1", "server")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t1, "u2", "WS-BROADCAST.deliver", "WS-BROADCAST.start"),
        ("drop", t4, None, "WS-BROADCAST.start", "REST.persist"),
    ]
    assert found["detail"][0] == (
        "recipient u2: reached WS-BROADCAST.start, never reached WS-BROADCAST.deliver (the "
        "logs go on 59980.0 ms after it)"
    )
    assert "; server-1 restarted 3.0 ms after it" in found["detail"][1]
