"""Review 20c (a reading of session 20's fixes): failed hops per device and in flight, the
worst reversed pair named whole, a part of the logs with no reference, an app's numeric
levels, two files written by turns, a removal that failed."""

from __future__ import annotations

import json

import polars as pl

from tracekit.analyzers import analyze, timeline


def _fail(history, trace, hop, who, level="error"):
    for r in history.rows:
        if r["trace_id"] == trace and r["event"] == hop and who in (r["actor"], r.get("peer")):
            r["level"] = level


def test_a_failed_add_marks_its_own_device_not_the_other(history):
    history.message(1, "u1", ["u2"], t=0)
    history.shown(40, "client-u2-tablet", "u2", trace=history.tid(1))
    t2 = history.message(2, "u1", ["u2"], t=1000)
    _fail(history, t2, "CTRL.add", "u2")  # the phone raised; the tablet never tried
    history.ev(1040, "WS-RECV.receive", "client-u2-tablet", "u2", trace=t2, conv_id="c1")
    history.ev(1041, "REPO.add", "client-u2-tablet", "u2", trace=t2, conv_id="c1")
    history.tail()
    rows = timeline(history.frame(), t2).filter(pl.col("stage_action") == "CTRL.add")
    assert rows.select("recipient", "status", "file", "line").rows() == [
        ("u2 on client-u2", "failed", "client-u2.jsonl", 6),
        ("u2 on client-u2-tablet", "dropped", None, None),  # (it showed the phone's line)
    ]


def test_a_failed_hop_inside_the_grace_window_says_so_and_rows_not_reached_say_no_place(
    history,
):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    _fail(history, t2, "CTRL.add", "u2")
    history.ev(1060, "CTRL.add", "client-u2", "u2", trace=t2, conv_id="c1", level="Error")
    history.tail(2000)  # the logs end 1 s later: inside the grace window
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("in_flight", t2, "u2", "CTRL.add", "REPO.add")]
    # (it said "CTRL.add not seen yet", no word of the two tries)
    assert found.row(0, named=True)["detail"].endswith(
        "; CTRL.add was tried and failed (2 line(s) of it logged at an error level, the first "
        "at client-u2.jsonl:6)"
    )
    row = timeline(history.frame(), t2).filter(pl.col("stage_action") == "CTRL.add")
    assert row.select("status", "file", "line").rows() == [("in_flight", None, None)]


def test_a_tie_between_reversed_pairs_names_one_pair_whole(history):
    for n in range(1, 6):  # u2 sends: its clock is bounded on both sides, near 0
        history.message(n, "u2", ["u1"], t=n * 100)
    # two receives logged 40 ms before their deliver, message 20's logged before 10's
    history.message(20, "u1", ["u2"], t=1000, offsets={"client-u2": -45.0})
    history.message(10, "u1", ["u2"], t=2000, offsets={"client-u2": -45.0})
    history.tail()
    skew = (
        analyze(history.frame()).findings.filter(pl.col("kind") == "clock_skew").row(0, named=True)
    )
    lines = {(r["trace_id"], r["event"]): (r["file"], r["line"]) for r in history.rows}
    pair = [lines[(skew["trace_id"], h)] for h in ("WS-BROADCAST.deliver", "WS-RECV.receive")]
    # (its trace was one pair's, its lines the other's)
    assert [(e["file"], e["line"]) for e in skew["evidence"]] == pair
    # (-37.5 ms at the estimates: u2's sends to u1 and u1's to it bound the two 2.5 ms apart)
    assert f"of trace {skew['trace_id']}, -37.5 ms" in skew["detail"]


def test_a_part_of_the_logs_with_no_persisting_server_is_placed_against_its_own(history):
    for n in range(1, 4):
        history.message(n, "u1", ["u2"], t=n * 1000)
    # another system whose persisting server's log is not given: ws-2 broadcasts, u9's
    # clock 300 ms behind; nothing ties them to server-1
    sends = ("CTRL.send", "REST.request", "REST.persist", "REST.response")
    for n in range(10, 13):
        history.message(
            n, "u8", ["u9"], t=n * 1000, server="ws-2", skip_message=sends,
            offsets={"client-u9": -300.0},
        )  # fmt: skip
    history.tail()
    skew = analyze(history.frame()).findings.filter(pl.col("kind") == "clock_skew")
    # (it said "client-u9 runs 295.0 ms behind server-1", no pair of theirs is server-1's;
    # then, session 21, both were left at 0 and their pairs read as reversed: a pair of a
    # part left at 0 below the limit was a false clock finding, review 21d)
    assert skew.select("source", "trace_id").rows() == [("client-u9", None)]
    assert skew.row(0, named=True)["detail"] == (
        "client-u9 runs 295.0 ms behind ws-2 (uncertainty unbounded: its 3 causal pair(s) "
        "bound the offset on one side only); cross-host latencies are corrected for it"
    )
    clock = {c["source"]: c["against"] for c in analyze(history.frame()).clock}
    assert (clock["ws-2"], clock["client-u9"], clock["client-u2"]) == ("ws-2", "ws-2", "server-1")


def test_an_apps_numeric_levels_are_no_failures_and_no_error(history):
    history.message(1, "u1", ["u2"], t=0)
    history.tail()
    for r in history.rows:
        r["level"] = 50  # (a pino-style number: SchemaError "level is Int64, not text")
    report = analyze(pl.DataFrame(history.rows).lazy().drop("event"))
    assert history.kinds(report.findings) == []
    assert report.summary["delivered"] == 1


def test_a_removal_that_failed_takes_nothing_off(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    history.ev(1100, "CTRL.remove", "client-u2", "u2", trace=t2, conv_id="c1", level="error")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == []
    assert report.summary["delivered"] == 2


def test_two_files_a_source_writes_by_turns_are_no_rotation(tmp_path):
    from tracekit.collectors import collect

    def line(second, seq):
        return json.dumps(
            {"timestamp": f"2026-11-25T10:00:{second:02d}.000Z", "stage": "TRACEKIT",
             "action": "heartbeat", "event": "beat", "actor": "x", "source": "app-1", "seq": seq}
        )  # fmt: skip

    # seq 5 to 8 lost; a.jsonl's unreadable lines come after seq 12, far from the gap
    a = [line(0, 0), line(2, 2), line(4, 4), line(10, 10), line(12, 12), "{broken", "{broken"]
    b = [line(1, 1), line(3, 3), line(9, 9), line(11, 11), line(13, 13)]
    (tmp_path / "a.jsonl").write_text("\n".join(a) + "\n")
    (tmp_path / "b.jsonl").write_text("\n".join(b) + "\n")
    read = collect([tmp_path])
    found = analyze(read.events, inputs=read.inputs.to_dict()).findings
    # (it counted them: "2 may be among them, the other 2 lost by the logging")
    assert found.select("kind", "detail").rows() == [
        ("log_gap", "seq jumps from 4 to 9: 4 event(s) lost by the logging")
    ]


def test_a_removal_after_a_failed_try_and_a_good_one_says_no_failure(history):
    # (review 20d) CTRL.add failed once, went through, then CTRL.remove took the message
    # off: the removal's finding said CTRL.add "was tried and failed", though it was reached
    for end, kind in ((60_000, "drop"), (2_000, "in_flight")):
        history.rows.clear()
        history.seq.clear()
        history.message(1, "u1", ["u2"], t=0)
        t2 = history.message(2, "u1", ["u2"], t=1000)
        history.ev(1030, "CTRL.add", "client-u2", "u2", trace=t2, conv_id="c1", level="error")
        history.ev(1500, "CTRL.remove", "client-u2", "u2", trace=t2, conv_id="c1")
        history.tail(end)
        found = analyze(history.frame()).findings
        assert history.kinds(found) == [(kind, t2, "u2", "CTRL.add", "CTRL.add")]
        assert "tried and failed" not in found.row(0, named=True)["detail"]
