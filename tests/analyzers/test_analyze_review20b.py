"""Review 20b (the analysis' edge cases, as a user): clocks placed together, not one by one."""

from __future__ import annotations

import pytest

from tracekit.analyzers import analyze


def test_two_sources_unbounded_against_the_reference_keep_their_own_pairs(history):
    # server-2 runs 300 ms behind; client-u3 talks to server-2 only, so both are bounded on
    # one side at most against server-1. Each placed nearest zero alone, both read 0: u3's
    # requests "persisted 295 ms before they were sent" (a clock finding), every persist ->
    # response and deliver -> receive through server-2 300 ms long.
    behind = {"server-2": -300.0}
    for n in range(1, 4):
        history.message(n, "u1", ["u2"], t=n * 100)
    for n in range(11, 14):
        history.message(n, "u3", ["u2"], t=n * 100, server="server-2", offsets=behind)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("clock_skew", None, None, None, None)]
    assert report.findings.row(0, named=True)["detail"].startswith(
        "server-2 runs 295.0 ms behind server-1 (uncertainty unbounded"
    )
    clock = {c["source"]: (c["offset_ms"], c["uncertainty_ms"]) for c in report.clock}
    assert clock["server-2"] == (-295.0, None)
    assert clock["client-u3"] == (0.0, None)
    hops = {(h["from"], h["to"]): h["max_ms"] for h in report.latency["hops"]}
    assert hops[("REST.persist", "REST.response")] == 10.0
    assert hops[("WS-BROADCAST.deliver", "WS-RECV.receive")] == 10.0


def test_membership_expects_only_the_members_seen_by_the_message(history):
    # No broadcast lists its recipients (a legacy server): membership decides. u4 is first
    # seen in c1 29 s after message 2: it was "expected" there, and its drop reported.
    history.message(1, "u1", None, t=0)
    history.shown(30, "client-u2", "u2", trace=history.tid(1))
    t2 = history.message(2, "u1", None, t=1000)  # u2 drops it; u4 not a member yet
    history.message(3, "u4", None, t=30_000)
    history.shown(30_030, "client-u2", "u2", trace=history.tid(3))
    history.shown(30_040, "client-u1", "u1", trace=history.tid(3))
    history.tail(90_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-BROADCAST.deliver", "WS-BROADCAST.start")
    ]
    assert report.summary["recipients_from"] == {"broadcast": 0, "membership": 3}
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (4, 3)


@pytest.mark.parametrize("broadcast", [True, False])
def test_a_resend_under_a_new_trace_that_the_server_did_not_broadcast_again(history, broadcast):
    # trace 1: persisted, broadcast and shown to u2; its response lost. The client re-sends
    # under trace 2 (its request alone); the server answers from its idempotency (m1 again)
    # and does not broadcast it again. Trace 2's missing broadcast read as a plain drop
    # (review 20b), then as a drop saying it was a re-send: the message reached everyone
    # under its first trace, yet `--max drop=0` failed and one delivery in two was counted
    # (review 26a). Where the first trace did not broadcast it either, the drop stands.
    stop = {} if broadcast else {"": "WS-BROADCAST.start"}
    t1 = history.message(1, "u1", ["u2"], t=0, skip_message=["REST.response"], stop=stop)
    t2 = history.resend(2, 10_000)
    history.tail()
    report = analyze(history.frame())
    found = report.findings
    lost = [("drop", t1, None, "WS-BROADCAST.start", "REST.persist")] if not broadcast else []
    again = [("drop", t2, None, "WS-BROADCAST.start", "REST.persist")] if not broadcast else []
    assert history.kinds(found) == [
        ("drop", t1, None, "REST.response", "REST.persist"),
        *lost,
        *again,
        ("duplicate", t2, None, "REST.persist", None),
    ]
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (
        (2, 2) if broadcast else (0, 0)  # (no list, and no member of c1 in the logs)
    )
    # (the first trace's lost response: the re-send got one, session 27)
    assert found.row(0, named=True)["detail"].endswith(
        f"; its re-send, trace {t2}, got past REST.response (see the duplicate)"
    )
    if not broadcast:
        assert found.row(2, named=True)["detail"].endswith(
            f"; a re-send: trace {t1} persisted its msg_id m1 before (see the duplicate)"
        )


def test_a_resend_of_a_message_taken_off_the_screen_is_not_delivered(history):
    # review 26b: the first trace reached u2's store, then a history page took it off (a
    # drop at CTRL.add); its re-send, not broadcast again, counted u2 as delivered
    t1 = history.message(1, "u1", ["u2"], t=0, skip_message=["REST.response"])
    history.ev(200, "CTRL.remove", "client-u2", "u2", trace=t1, conv_id="c1")
    t2 = history.resend(2, 10_000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t1, None, "REST.response", "REST.persist"),
        ("drop", t1, "u2", "CTRL.add", "CTRL.add"),
        ("duplicate", t2, None, "REST.persist", None),
    ]
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (2, 0)


@pytest.mark.parametrize(
    ("stop", "recipient", "missing", "last_seen"),
    [
        ({"": "WS-BROADCAST.start"}, None, "WS-BROADCAST.start", "REST.persist"),
        ({"u2": "WS-RECV.receive"}, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
    ],
)
def test_a_first_trace_whose_resend_delivered_it_keeps_its_drop_and_says_so(
    history, stop, recipient, missing, last_seen
):
    # review 26b's doubt: trace 1 was persisted, then lost (never broadcast, or its frame to
    # u2 lost); the user re-sent it under trace 2, which the server broadcast again and u2
    # got. A hop that should have happened did not: still a drop, now saying the re-send got
    # past it, and u2, who has the message, counts as delivered
    history.message(3, "u2", ["u1"], t=0)  # (u2 a member of c1 by then, broadcast or not)
    t1 = history.message(1, "u1", ["u2"], t=1000, stop=stop)
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=["CTRL.send"])
    for row in history.rows:
        if row["trace_id"] == t2 and row["event"] == "REST.persist":
            row["msg_id"] = "m1"
    history.tail()
    report = analyze(history.frame())
    found = report.findings
    assert history.kinds(found) == [
        ("drop", t1, recipient, missing, last_seen),
        ("duplicate", t2, None, "REST.persist", None),
    ]
    assert found["detail"][0].endswith(
        f"; its re-send, trace {t2}, got past {missing}"
        + (f" for {recipient}" if recipient else "")
        + " (see the duplicate)"
    )
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (3, 3)
