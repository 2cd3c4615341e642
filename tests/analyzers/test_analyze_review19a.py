"""Review 19a (bad and awkward input, as a user): a seq logged twice does not hide a gap."""

from __future__ import annotations

import polars as pl
import pytest

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


def test_a_gap_across_a_line_the_reading_skipped_says_so(history, tmp_path):
    from tracekit.collectors import collect

    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    # u2's CTRL.add of message 2: its time unreadable, the line is skipped (malformed)
    logs, at = history.write(tmp_path, (t2, "CTRL.add", "u2"))
    u2 = logs / "client-u2.jsonl"
    read = collect([logs])
    report = analyze(read.events, inputs=read.inputs.to_dict())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert report.findings.row(0, named=True)["detail"] == (
        f"seq jumps from {at - 1} to {at + 1}: 1 event(s) missing; 1 line(s) between them "
        f"could not be read ({u2}: line {at + 1}, malformed): the events may be among them, "
        f"not lost by the logging; 1 message path(s) indeterminate, not reported as drops: "
        f"{t2} (u2 at CTRL.add)"
    )
    assert "malformed_lines" not in report.inputs and report.inputs["malformed"] == 1


def test_a_timeline_marks_a_path_a_log_gap_may_hold(history):
    from tracekit.analyzers import timeline
    from tracekit.testing import format_timeline

    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "REPO.add"})
    history.seq["client-u2"] += 2  # u2's log lost two lines
    history.message(3, "u1", ["u2"], t=2000)
    history.tail()
    rows = timeline(history.frame(), t2).filter(pl.col("recipient") == "u2")
    # (review 19a: "not reached", as after a drop, with no word of the gap)
    assert rows.select("stage_action", "status").rows() == [
        ("WS-BROADCAST.deliver", "reached"),
        ("WS-RECV.receive", "reached"),
        ("REPO.add", "in_log_gap"),
        ("CTRL.add", "not_reached"),
    ]
    said = format_timeline(history.frame(), t2)
    assert "? REPO.add               (undecided: its log lost events here, see log_gap)" in said


def test_a_gap_wider_than_its_skipped_lines_says_the_rest_was_lost(history, tmp_path):
    from tracekit.collectors import collect

    history.message(1, "u1", ["u2"], t=0)
    history.seq["client-u2"] += 2  # two events the logging lost, then one line unreadable
    t2 = history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    logs, _ = history.write(tmp_path, (t2, "WS-RECV.receive", "u2"))
    read = collect([logs])
    found = analyze(read.events, inputs=read.inputs.to_dict()).findings
    detail = found.row(0, named=True)["detail"]
    u2 = logs / "client-u2.jsonl"
    assert detail.startswith(
        f"seq jumps from 2 to 6: 3 event(s) missing; 1 line(s) between them could not be read "
        f"({u2}: line 4, malformed): 1 may be among them, the other 2 lost by the logging"
    )


@pytest.mark.parametrize("ends_older", [True, False])
def test_a_gap_from_one_rotated_file_to_the_next_counts_the_lines_skipped_in_both(
    history, tmp_path, ends_older
):
    from tracekit.collectors import collect

    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    logs, at = history.write(tmp_path, (t2, "CTRL.add", "u2"))
    # u2's log rotated just after or just before the unreadable line: the gap's two ends are
    # in two files, the line at the end of the older or the start of the newer
    lines = (logs / "client-u2.jsonl").read_text().splitlines(keepends=True)
    (logs / "client-u2.jsonl").unlink()
    older, newer = logs / "client-u2.1.jsonl", logs / "client-u2.2.jsonl"
    cut = at + 1 if ends_older else at
    older.write_text("".join(lines[:cut]))
    newer.write_text("".join(lines[cut:]))
    where = f"{older}: line {at + 1}" if ends_older else f"{newer}: line 1"
    read = collect([logs])
    found = analyze(read.events, inputs=read.inputs.to_dict()).findings
    # (it said "1 event(s) lost by the logging": the skipped line was in the other file)
    assert found.row(0, named=True)["detail"].startswith(
        f"seq jumps from {at - 1} to {at + 1}: 1 event(s) missing; 1 line(s) between them "
        f"could not be read ({where}, malformed): the events may be among "
        "them, not lost by the logging"
    )
