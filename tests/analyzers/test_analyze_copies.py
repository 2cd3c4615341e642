"""Events read twice (one logged line in two copies of a log, or exports that overlap, or a
shipper that sent a line again): counted once, and said."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tracekit.analyzers import analyze

SCHEMA = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"


def _copied(history, source: str, *, folder: str = "copy/") -> None:
    """Every line of ``source`` read a second time from another file."""
    again = [{**r, "file": folder + r["file"]} for r in list(history.rows) if r["source"] == source]
    history.rows.extend(again)


def test_a_log_read_twice_gives_no_duplicate_and_says_where(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "CTRL.add"})
    history.tail()
    alone = analyze(history.frame())
    _copied(history, "client-u2")
    report = analyze(history.frame())
    # the same report as from one copy: the drop, no duplicate of any of u2's hops
    assert history.kinds(report.findings) == [("drop", t2, "u2", "CTRL.add", "REPO.add")]
    assert report.findings["detail"].to_list() == alone.findings["detail"].to_list()
    assert report.findings["evidence"].to_list() == alone.findings["evidence"].to_list()
    assert report.summary["copies"] == [
        {
            "source": "client-u2",
            "events": 6,  # every line of u2's: 3 hops of m1, 2 of m2, the heartbeat
            "file": "copy/client-u2.jsonl",
            "line": 1,
            "kept_file": "client-u2.jsonl",
            "kept_line": 1,
        }
    ]
    assert report.summary["delivered"] == alone.summary["delivered"]
    assert alone.summary["copies"] == []


def test_an_event_logged_twice_is_still_a_duplicate_beside_a_copy(history):
    # u2's app logged CTRL.add of m1 twice (two seqs: shown twice), and its log was read
    # twice: one duplicate, of the app's, with the first reading's lines as evidence
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(41, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    history.tail()
    _copied(history, "client-u2")
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("duplicate", t1, "u2", "CTRL.add", None)]
    assert report.findings["evidence"].to_list() == [
        [{"file": "client-u2.jsonl", "line": 3}, {"file": "client-u2.jsonl", "line": 4}]
    ]
    assert report.summary["copies"][0]["events"] == 5


def test_a_line_sent_twice_in_one_file_is_counted_once(history):
    # a shipper that sent each of u2's lines again right after it (at-least-once delivery):
    # no seq goes back between two lines, the per-source counts show it
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    rows = []
    for r in history.rows:
        rows.append(r)
        if r["source"] == "client-u2":
            rows.append({**r, "line": r["line"] + 1000})
    history.rows[:] = rows
    report = analyze(history.frame())
    assert report.findings.is_empty(), report.findings.to_dicts()
    assert report.summary["copies"] == [
        {
            "source": "client-u2",
            "events": 7,
            "file": "client-u2.jsonl",
            "line": 1001,
            "kept_file": "client-u2.jsonl",
            "kept_line": 1,
        }
    ]


@pytest.mark.parametrize("cut", ["round", "truncate", "both"])
def test_a_copy_whose_times_an_export_rounded_or_cut_to_the_millisecond_is_a_copy(history, cut):
    # fuzzing 18b: times to the millisecond (truncated) put a rounded copy of a line at .5 ms
    # or later in the next millisecond: a false duplicate for each such line
    from datetime import timedelta

    t1 = history.message(1, "u1", ["u2"], t=0.7)
    history.tail()
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    if cut == "both":  # two exports and no original: one cut, one rounded, 1 ms apart
        history.rows[:] = [r for r in history.rows if r["source"] != "client-u2"]
    for way in ("truncate", "round") if cut == "both" else (cut,):
        for r in u2:
            ms = r["timestamp"].replace(microsecond=r["timestamp"].microsecond // 1000 * 1000)
            late = way == "round" and r["timestamp"].microsecond % 1000 >= 500
            at = ms + timedelta(milliseconds=1) if late else ms
            history.rows.append({**r, "timestamp": at, "file": f"export-{way}.jsonl"})
    report = analyze(history.frame())
    assert report.findings.is_empty(), report.findings.to_dicts()
    (said,) = report.summary["copies"]
    copy = "export-round.jsonl" if cut == "both" else f"export-{cut}.jsonl"
    assert (said["source"], said["events"], said["file"]) == ("client-u2", 4, copy)
    assert t1 not in report.findings.get_column("trace_id").to_list()


@pytest.mark.parametrize("field", ["timestamp", "seq"])
def test_lines_that_differ_in_time_or_seq_are_two_events(history, field):
    # the same hop again with another time (logged twice, by a retry) or another seq: no copy
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.tail()
    add = next(r for r in history.rows if r["event"] == "CTRL.add")
    again = dict(add, file="copy/client-u2.jsonl")
    if field == "seq":
        again["seq"] = 99
    else:
        from datetime import timedelta

        again["timestamp"] = add["timestamp"] + timedelta(milliseconds=2)
    history.rows.append(again)
    report = analyze(history.frame())
    assert history.kinds(report.findings)[0] == ("duplicate", t1, "u2", "CTRL.add", None)
    assert report.summary["copies"] == []


def test_a_restarted_log_read_twice_is_read_run_by_run_once(history):
    # u2's app restarted under its name (seq from 0 again), and its log was read twice: one
    # restart, no false reorder or duplicate
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.seq["client-u2"] = 0
    history.ev(1500, "TRACEKIT.configured", "client-u2", "u2")
    history.message(3, "u1", ["u2"], t=2000)
    history.tail()
    for r in history.rows:  # the second run's lines follow the first's in one file
        if r["source"] == "client-u2" and r["timestamp"].second >= 1 and r["line"] < 100:
            r["line"] += 100
    _copied(history, "client-u2")
    report = analyze(history.frame())
    assert report.findings.is_empty(), report.findings.to_dicts()
    assert [(r["source"], r["mended"]) for r in report.summary["restarts"]] == [("client-u2", True)]
    assert report.summary["copies"][0]["events"] == 11  # 3 + 3 hops, 1 + 3, the heartbeat


def test_the_report_with_copies_validates_against_the_published_schema(history):
    jsonschema = pytest.importorskip("jsonschema")
    history.message(1, "u1", ["u2"], t=0)
    history.tail()
    _copied(history, "server-1")
    doc = analyze(history.frame()).to_dict()
    jsonschema.validate(doc, json.loads(SCHEMA.read_text()))
    assert doc["summary"]["copies"][0]["source"] == "server-1"


def test_copies_are_found_in_a_log_whose_seqs_jump(history):
    # u2's log lost 50 lines (a log gap), then its last lines were read again: its seqs span
    # more than it holds lines, but a seq still repeats (review 15c)
    history.message(1, "u1", ["u2"], t=0)
    history.seq["client-u2"] += 50
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    alone = analyze(history.frame())
    last = [r for r in history.rows if r["source"] == "client-u2"][-4:]
    history.rows.extend({**r, "file": "export2/client-u2.jsonl"} for r in last)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == history.kinds(alone.findings)
    assert [k[0] for k in history.kinds(report.findings)] == ["log_gap"]
    assert report.summary["copies"][0]["events"] == 4


def test_a_partial_copy_read_first_keeps_the_lines_in_their_log(history):
    # u2's app restarted under its name; a backup holding the new run's first 3 lines is read
    # before the log. The log holds every line of u2's: its readings are kept, so the new run
    # still begins in it and comes after the first (review 15c: a reorder, the restart lost)
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.seq["client-u2"] = 0
    history.ev(1500, "TRACEKIT.configured", "client-u2", "u2")
    history.message(3, "u1", ["u2"], t=2000)
    history.message(4, "u1", ["u2"], t=3000)
    history.tail()
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    for k, r in enumerate(u2):
        r["line"] = k + 1
    alone = analyze(history.frame())
    restart = next(r for r in u2 if r["event"] == "TRACEKIT.configured")
    backup = [{**r, "file": "a-backup/client-u2.jsonl"} for r in u2[u2.index(restart) :][:3]]
    history.rows[:0] = backup
    report = analyze(history.frame())
    assert report.findings.is_empty(), report.findings.to_dicts()
    assert (
        report.summary["restarts"]
        == alone.summary["restarts"]
        == [
            {
                "source": "client-u2",
                "file": "client-u2.jsonl",
                "line": restart["line"],
                "mended": True,
            }
        ]
    )
    assert report.summary["copies"] == [
        {
            "source": "client-u2",
            "events": 3,
            "file": "a-backup/client-u2.jsonl",
            "line": restart["line"],
            "kept_file": "client-u2.jsonl",
            "kept_line": restart["line"],
        }
    ]


def test_a_copy_with_a_finer_time_is_a_copy(history):
    # the same emit as an OTLP span (nanoseconds) and as a JSON line (the same time cut to
    # microseconds), off any millisecond boundary: compared to the millisecond (review 15c)
    import polars as pl

    history.message(1, "u1", ["u2"], t=0.25)
    history.tail()
    frame = history.frame().collect()
    add = frame.filter(pl.col("event") == "CTRL.add")
    assert add["timestamp"].dt.nanosecond().item() % 1_000_000 == 250_000  # (0.25 ms past)
    span = add.with_columns(
        pl.col("timestamp") + pl.duration(nanoseconds=417),
        pl.lit("traces.otlp.json").cast(frame.schema["file"]).alias("file"),
    )
    report = analyze(pl.concat([span, frame]).lazy())  # the span read first
    assert report.findings.is_empty(), report.findings.to_dicts()
    assert report.summary["copies"] == [
        {
            "source": "client-u2",
            "events": 1,
            "file": "traces.otlp.json",
            "line": add["line"].item(),
            "kept_file": "client-u2.jsonl",
            "kept_line": add["line"].item(),
        }
    ]


def test_the_reading_kept_takes_what_only_a_copy_carries(history):
    # The server's log was read twice: its own file (kept: it holds every line) from an
    # export that left out the broadcast's recipient list and the stages' lengths, and a copy
    # of the broadcast line that has them. The list decides who should have had m1: u3,
    # whose app logged nothing, is a drop (taken from membership, u3 would be unknown).
    t1 = history.message(1, "u1", ["u2", "u3"], t=0, stop={"u3": "WS-BROADCAST.deliver"})
    history.tail()
    start = next(r for r in history.rows if r["stage"] == "WS-BROADCAST")
    start["duration_ms"] = 2.5
    history.rows.append({**start, "file": "copy/server-1.jsonl"})
    start.pop("recipients")
    start.pop("duration_ms")
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t1, "u3", "WS-BROADCAST.deliver", "WS-BROADCAST.start")
    ]
    assert report.summary["recipients_from"] == {"broadcast": 1, "membership": 0}
    assert [c["kept_file"] for c in report.summary["copies"]] == ["server-1.jsonl"]


def test_the_reading_kept_takes_a_stage_length_only_a_copy_carries(history):
    # u2's log lost m2's three lines before u2's own send of m3, stamped at 1005 and written
    # at 1065. Only a copy of the send's line (an OTLP span: its end) says how long it took:
    # the gap then covers the deliver at 1015, and m2 for u2 is indeterminate, not a drop.
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=990, stop={"u2": "WS-RECV.receive"})
    history.seq["client-u2"] += 3
    t3 = history.message(3, "u2", ["u1"], t=1005)
    history.tail()
    send = next(r for r in history.rows if r["trace_id"] == t3 and r["stage"] == "CTRL")
    history.rows.append({**send, "file": "traces.otlp.json", "duration_ms": 60.0})
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    assert f"not reported as drops: {t2} (u2 at WS-RECV.receive)" in report.findings["detail"][0]
