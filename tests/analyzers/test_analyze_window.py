"""A reading's time window (``analyze(..., left_out=)``, the CLI's ``--since``/``--until``):
the events it left out are no loss of the logs (session 23: every source read from
``--since`` was a lost beginning, and ``check --max log_gap=0`` failed on clean logs)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import polars as pl
import pytest
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


def _until(history: Any, until_ms: float) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The history's events before ``until_ms``, and those left out."""
    table = history.frame().collect()
    inside = pl.col("timestamp") < _t0(history) + timedelta(milliseconds=until_ms)
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


def _numbered_from_one(history: Any, *sources: str) -> None:
    for source in sources:
        history.seq[source] = 1


def test_a_drop_in_a_quiet_stretch_after_the_windows_start_is_found(history):
    # review 23: u2 logs nothing from the window's start (5 s) until after m3 (10 s), which
    # it never received. Its beginning, all left out, held every path up to its first line
    # in the window, and no finding said so: the drop went unsaid
    _numbered_from_one(history, "client-u1", "client-u2", "client-u3", "server-1")
    history.message(1, "u1", ["u2", "u3"], t=0)
    history.message(2, "u3", ["u1"], t=9000)
    t3 = history.message(3, "u1", ["u2", "u3"], t=10_000, stop={"u2": "WS-RECV.receive"})
    history.message(4, "u1", ["u2", "u3"], t=30_000)
    history.tail()
    inside, outside = _window(history, 5000)
    found = analyze(inside, left_out=outside).findings
    assert history.kinds(found) == [("drop", t3, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")]
    # (u2's app ran before: no "its log begins after it" said of the drop)
    assert found["detail"][0] == (
        "recipient u2: reached WS-BROADCAST.deliver, never reached WS-RECV.receive (the logs go "
        "on 49975.0 ms after it)"
    )


def test_a_send_never_logged_inside_the_window_stays_unexpected(history):
    # review 23: u1's beginning, all left out, read as a lost beginning holding m3's send,
    # sent 10 s into the window: "in flight, sent before client-u1's log began"
    _numbered_from_one(history, "client-u1", "client-u2", "server-1")
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u2", ["u1"], t=6000)
    history.ev(10_500, "TRACEKIT.heartbeat", "server-1", "server")  # the window's first line
    t3 = history.message(3, "u1", ["u2"], t=20_000, skip_message=["CTRL.send"])
    history.message(4, "u2", ["u1"], t=40_000)
    history.tail()
    inside, outside = _window(history, 10_000)
    found = analyze(inside, left_out=outside).findings
    assert history.kinds(found) == [("unexpected", t3, None, "REST.request", None)]


def test_a_loss_ending_at_the_windows_first_line_is_a_gap(history):
    # review 23: a marker on the window's first line of u2 (the emitter lost events) was
    # folded into the left-out beginning, then gone with it; since session 25 the loss is
    # the seq jump that ends there (every lost event takes a seq), not the marker
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.seq["client-u2"] += 2  # two events its sink dropped
    history.ev(1900, "TRACEKIT.dropped", "client-u2", "u2")
    history.message(3, "u1", ["u2"], t=2000)
    history.tail()
    inside, outside = _window(history, 1800)
    found = analyze(inside, left_out=outside).findings
    assert found.select("kind", "source", "detail").rows() == [
        (
            "log_gap",
            "client-u2",
            "the log read begins at seq 8: 2 earlier event(s) are not in these logs (a log "
            "begun mid-traffic: rotated, cut or started late); 6 more are outside the time "
            "window read",
        )
    ]


def test_a_numbered_marker_between_numbered_lines_is_no_gap(history):
    # review 24a: the JSON lines and the spans of one process read together: the spans hold
    # the events the JSON sink dropped, so the seqs run on past its TRACEKIT.dropped line,
    # which held m2's path back (a real drop unsaid: "the emitter reported dropping events")
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "REPO.add"})
    history.ev(1100, "TRACEKIT.dropped", "client-u2", "u2")  # after m2's receive, seq 4
    history.tail()
    found = analyze(history.frame(), grace=timedelta(0)).findings
    assert history.kinds(found) == [("drop", t2, "u2", "REPO.add", "WS-RECV.receive")]


def test_events_another_run_left_out_do_not_fill_a_gap(history):
    # review 23: u2 restarted; its second run lost seqs 6-8 (m6's lines), inside the window,
    # and the first run's left-out lines, numbered 6-8 too, filled that gap by seq
    for n in (1, 2, 3):
        history.message(n, "u1", ["u2"], t=(n - 1) * 1000)
    history.seq["client-u2"] = 0  # restarted
    for n in (4, 5, 6, 7):
        history.message(n, "u1", ["u2"], t=10_000 + (n - 4) * 1000)
    history.tail()
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    lost = [r for r in u2 if r["trace_id"] == history.tid(6)]
    assert [r["seq"] for r in lost] == [6, 7, 8]
    for k, r in enumerate(u2):  # (one file: its lines numbered on, not by seq)
        r["line"] = k + 1
    history.rows = [r for r in history.rows if r not in lost]
    inside, outside = _window(history, 9000)
    found = analyze(inside, left_out=outside).findings
    assert found.select("kind", "source").rows() == [("log_gap", "client-u2")]
    assert found["detail"][0].startswith(
        "seq jumps from 5 to 9: 3 event(s) lost by the logging; 1 message path(s) indeterminate"
    )


@pytest.mark.parametrize("lost", [1, 2])
def test_a_window_that_left_out_a_behind_clients_receives_holds_their_paths(history, lost):
    # review 23c: u2's clock runs 600 ms behind, and nothing the window kept places it; its
    # receives of m1-m3 are stamped before the window, left out, though they follow the
    # server's delivers inside it. Its log lost its first event (seq 0), or its first two:
    # - 1: the left-out lines fill the rest; held over their raw stamps only, the three read
    #   as drops
    # - 2: a gap of 1 lost event beside the 10 left out, which may hold the three paths'
    #   hops ("at least 2 of them are drops" counted the 1 alone)
    history.seq["client-u2"] += lost
    history.ev(-100, "TRACEKIT.heartbeat", "client-u2", "u2")
    traces = []
    for n in (1, 2, 3):
        t = history.message(n, "u1", ["u2"], t=1000 + 100 * n, stop={"u2": "WS-RECV.receive"})
        for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
            history.ev(530 + 100 * n + k, hop, "client-u2", "u2", trace=t, conv_id="c1")
        traces.append(t)
    history.ev(2000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail()
    inside, outside = _window(history, 1150)
    found = analyze(inside, left_out=outside).findings
    # (review 26c: the left-out lines say which hops they are: the three receives, cut by
    # the window, in flight and said so; held silently by a gap that lost nothing, a
    # --since of a short run had hidden every drop in its first 5 s)
    said = (
        "recipient u2: reached WS-BROADCAST.deliver; WS-RECV.receive is outside the time "
        "window read (--since/--until): not judged"
    )
    gap = (
        "log_gap",
        "client-u2",
        "the log read begins at seq 12: 1 earlier event(s) are not in these logs (a log "
        "begun mid-traffic: rotated, cut or started late); 10 more are outside the time "
        "window read",
    )
    assert found.select("kind", "source", "detail").rows() == [
        ("in_flight", "server-1", said)
    ] * 3 + ([gap] if lost == 2 else [])
    assert found.filter(found["kind"] == "in_flight")["trace_id"].to_list() == traces


@pytest.mark.parametrize("hops_said", [True, False])
def test_drops_just_after_the_window_begins_are_drops(history, hops_said):
    # review 26c: `--since` left out u2's first lines (no hop of any message, no fetch), a gap it
    # filled whole; the gap held every path for 5 s after them and, losing nothing, named
    # none: two real drops unsaid, `check --max drop=0` passed. Where the left-out events
    # say which hops they are, the gap holds none; given only source and seq, it holds them
    # as a lost stretch of the log would (said as such).
    for k in range(3):
        history.ev(k, "TRACEKIT.heartbeat", "client-u2", "u2")
    t1 = history.message(1, "u1", ["u2"], t=100, stop={"u2": "CTRL.add"})
    t2 = history.message(2, "u1", ["u2"], t=600, stop={"u2": "CTRL.add"})
    history.message(3, "u1", ["u2"], t=1100)
    history.tail()
    inside, outside = _window(history, 50)
    if not hops_said:
        outside = outside.select("source", "seq", "file", "line", "timestamp", "duration_ms")
    found = analyze(inside, left_out=outside).findings
    drops = [("drop", t, "u2", "CTRL.add", "REPO.add") for t in (t1, t2)]
    assert history.kinds(found) == (drops if hops_said else [])


def test_paths_the_window_cuts_at_its_end_are_in_flight_not_drops(history):
    # review 26c: `--until` (here with --grace 0s: the logs read are final) cut m2 after its
    # delivery: its receive, left out, read as a drop
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    inside, outside = _until(history, 1027)
    found = analyze(inside, left_out=outside, grace=timedelta(0)).findings
    assert history.kinds(found) == [
        ("in_flight", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert found["detail"][0] == (
        "recipient u2: reached WS-BROADCAST.deliver; WS-RECV.receive is outside the time "
        "window read (--since/--until): not judged"
    )


def test_a_receiver_whose_list_the_window_left_out_is_no_member(history):
    # review 26d: m1's broadcast names u2 only but reached u3 too (unexpected); --since left
    # out that broadcast and kept u3's receive: u3 read as a member of c1, and m2, a legacy
    # broadcast with no list, "expected" u3: a false drop. Still said: m1's send is cut.
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(40, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, conv_id="c1", peer="u3")
    history.shown(60, "client-u3", "u3", trace=t1)
    t2 = history.message(2, "u1", None, t=1000)
    history.shown(1040, "client-u2", "u2", trace=t2)
    history.tail(20_000)
    inside, outside = _window(history, 50)
    report = analyze(inside, left_out=outside)
    assert history.kinds(report.findings) == [
        ("in_flight", t1, None, "CTRL.send", "WS-RECV.receive")
    ]
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (2, 2)


def test_a_device_log_the_window_cut_goes_on(history):
    # review 26d: a page took m1 off u2's store (a drop, judged against u2's own log); the
    # window's end cut u2's log 4 s after it: read as its end, the drop was in flight
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(100, "CTRL.remove", "client-u2", "u2", trace=t1, conv_id="c1")
    history.ev(4100, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail(20_000)
    inside, outside = _until(history, 4500)
    found = analyze(inside, left_out=outside).findings
    assert history.kinds(found) == [("drop", t1, "u2", "CTRL.add", "CTRL.add")]


def test_a_resend_whose_first_trace_the_window_left_out_is_cut_not_dropped(history):
    # review 26d: m1 persisted, broadcast and delivered under trace 1 (its response lost),
    # re-sent under trace 2 and answered from the server's idempotency; a --since between
    # the two made trace 2's missing broadcast a drop
    t1 = history.message(1, "u1", ["u2"], t=0, skip_message=["REST.response"])
    t2 = history.resend(2, 10_000)
    history.message(3, "u2", ["u1"], t=15_000)
    history.tail()
    inside, outside = _window(history, 5000)
    found = analyze(inside, left_out=outside).findings
    assert t1 not in found["trace_id"].to_list()
    assert history.kinds(found) == [
        ("in_flight", t2, None, "CTRL.send", "REST.request"),  # (its send before the logs)
        ("in_flight", t2, None, "WS-BROADCAST.start", "REST.persist"),
    ]
    assert found["detail"][1] == (
        "reached REST.persist; WS-BROADCAST.start is outside the time window read "
        "(--since/--until): not judged"
    )


def test_a_load_begun_before_the_window_races_a_receive_inside_it(history):
    # review 26c: u2's history load of c1 began before --since and ended inside: m1's
    # receive during it was no race in the window (its start left out); m2, after its end,
    # is none
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=100)
    history.ev(300, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    inside, outside = _window(history, 50)
    found = analyze(inside, left_out=outside).findings
    assert history.kinds(found) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]


def test_a_later_trace_of_the_same_msg_id_after_until_is_no_first(history):
    # review 26e: m1 persisted under trace 1 and never broadcast (a drop); trace 2 persisted
    # m1 again 8 s later, after --until: it made trace 1 a "re-send" of it, cut, in flight
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"": "WS-BROADCAST.start"})
    history.tail(6000)
    t2 = history.message(2, "u1", ["u2"], t=8000)
    for row in history.rows:
        if row["trace_id"] == t2 and row.get("msg_id"):
            row["msg_id"] = "m1"
    history.tail(30_000)
    inside, outside = _until(history, 7000)
    found = analyze(inside, left_out=outside).findings
    assert history.kinds(found) == [("drop", t1, None, "WS-BROADCAST.start", "REST.persist")]


@pytest.mark.parametrize(
    "given",
    [("source", "seq", "timestamp"), ("source", "seq", "file", "line", "timestamp")],
)
def test_left_out_events_that_do_not_say_their_hops_hold_paths_as_before(history, given):
    # review 26e: a log's end taken from left-out events that do not say which hops they
    # are cut nothing: the paths --until cut read as drops
    for n in range(1, 4):
        history.message(n, "u1", ["u2"], t=(n - 1) * 1000)
    history.tail(20_000)
    inside, outside = _until(history, 2026)  # (m3's receive left out)
    found = analyze(inside, left_out=outside.select(given)).findings
    assert history.kinds(found) == [
        ("in_flight", history.tid(3), "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]


def test_left_out_uuid_trace_ids_are_read_as_the_paths_read_them(history, monkeypatch):
    # review 26e: an app's own table logging UUIDs (the paths take them to hex): nothing
    # left out matched, m3's receives cut by --until read as drops
    import uuid

    monkeypatch.setattr(history, "tid", lambda n: str(uuid.UUID(int=n)))
    for n in range(1, 4):
        history.message(n, "u1", ["u2"], t=(n - 1) * 1000)
    history.tail(20_000)
    inside, outside = _until(history, 2026)
    found = analyze(inside, left_out=outside).findings
    assert history.kinds(found) == [
        (
            "in_flight",
            "00000000000000000000000000000003",
            "u2",
            "WS-RECV.receive",
            "WS-BROADCAST.deliver",
        )
    ]


def test_left_out_fetch_lines_without_file_or_line_are_read(history):
    # review 26e: a ColumnNotFoundError ("file")
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=100)
    history.ev(300, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    inside, outside = _window(history, 50)
    left = outside.select("source", "seq", "timestamp", "stage", "action", "actor", "conv_id")
    found = analyze(inside, left_out=left).findings
    assert history.kinds(found) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]


def test_left_out_fetch_lines_of_another_run_are_not_read(history):
    # review 26e: client-u2's first run (its fetch never ended) left out by --since, its
    # second run read: seqs of two runs in one series, every receive of c1 a false race
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.seq["client-u2"] = 0  # restarted under its name
    history.ev(500, "TRACEKIT.configured", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=1000)
    # the second run's own load of c1, with m2 received inside it: a race all the same
    history.ev(2000, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t2 = history.message(2, "u1", ["u2"], t=2005)
    history.ev(2100, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    inside, outside = _window(history, 400)
    found = analyze(inside, left_out=outside).findings
    assert history.kinds(found) == [("race", t2, "u2", "WS-RECV.receive", "CTRL.add")]


def test_a_path_whose_later_hop_is_outside_the_window_is_cut(history):
    # session 27's fuzzing: u2's socket dropped as m1 was delivered; u2's app showed m1 from
    # a history load (store and screen, no receive: no finding, DESIGN's path is complete).
    # An --until between the deliver and the store read as a drop at WS-RECV.receive: the
    # receive is never logged, so it is not among the left-out hops; the store is
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    history.loaded(100, "u2", trace=t1)
    history.message(2, "u2", ["u1"], t=20_000)
    history.tail()
    assert analyze(history.frame()).findings.is_empty()
    inside, outside = _until(history, 100)  # (the deliver at 30 ms)
    found = analyze(inside, left_out=outside, grace=timedelta(0)).findings
    assert history.kinds(found) == [
        ("in_flight", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert found["detail"][0] == (
        "recipient u2: reached WS-BROADCAST.deliver, WS-RECV.receive not seen; REPO.add is "
        "outside the time window read (--since/--until): not judged"
    )
