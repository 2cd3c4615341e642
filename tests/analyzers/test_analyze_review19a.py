"""Review 19a (bad and awkward input, as a user): a seq logged twice does not hide a gap."""

from __future__ import annotations

from tracekit.analyzers import analyze


def test_a_repeated_seq_does_not_cancel_a_gap_out(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.seq["client-u2"] += 1  # the logging of u2's client lost one event
    history.message(3, "u1", ["u2"], t=2000)
    # ... and its last line repeats the seq of the line before it (two processes under one
    # name): as many lines as the range holds seqs, though one seq of it has none
    before, last = [r for r in history.rows if r["source"] == "client-u2"][-2:]
    last["seq"] = before["seq"]
    history.tail(sources=["server-1", "client-u1"])
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    detail = report.findings.row(0, named=True)["detail"]
    assert "seq jumps from 2 to 4: 1 event(s) lost" in detail
    assert f"not reported as drops: {t2} (u2 at WS-RECV.receive)" in detail


def test_events_of_no_hop_of_the_pipeline_are_said(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.ev(1100, "WS_RECV.receive", "client-u2", "u2", trace=t2, conv_id="c1")
    history.ev(1200, "rest.FETCH_START", "client-u2", "u2", trace=t2, conv_id="c1")
    history.ev(1300, "UI.render", "client-u2", "u2", trace=t2)  # the app's own: nothing said
    history.tail()
    report = analyze(history.frame(), inputs={"warnings": ["a reading's warning"]})
    # the misspelt receive is on no path: u2's path reads as lost there (the events say so)
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.inputs["warnings"] == [
        "a reading's warning",
        "2 event(s) of messages are named almost as a hop of the pipeline 'chat' is: "
        "WS_RECV.receive (1) for WS-RECV.receive, rest.FETCH_START (1) for REST.fetch_start; "
        "read as no hop, on no message's path",
    ]
