"""Review 20b: a hop's line at an error level (a stage that raised) is an attempt, not the hop
reached. It was read as reached: a controller that raised on the add read as delivered."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import polars as pl
import pytest

from tracekit.analyzers import analyze, timeline


def _failing(history, trace: str, hop: str, who: str, level: str = "error") -> dict:
    """The line of ``hop`` of ``trace`` for ``who`` (its actor, or peer), now logged failing."""
    (row,) = [
        r
        for r in history.rows
        if r["trace_id"] == trace and r["event"] == hop and who in (r["actor"], r.get("peer"))
    ]
    row["level"] = level
    return row


@pytest.mark.parametrize("level", ["error", "ERROR", "critical", "fatal", "SEVERE", "panic"])
def test_an_add_that_failed_is_a_drop_there_and_says_so(history, level):
    history.message(1, "u1", ["u2", "u3"], t=0)
    t2 = history.message(2, "u1", ["u2", "u3"], t=1000)
    failed = _failing(history, t2, "CTRL.add", "u2", level)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t2, "u2", "CTRL.add", "REPO.add")]
    drop = report.findings.row(0, named=True)
    assert drop["detail"].endswith(
        "; CTRL.add was tried and failed (1 line(s) of it logged at an error level, the first "
        f"at client-u2.jsonl:{failed['line']})"
    )
    assert drop["evidence"] == [
        {"file": "client-u2.jsonl", "line": failed["line"] - 1},  # REPO.add, the last reached
        {"file": "client-u2.jsonl", "line": failed["line"]},
    ]
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (4, 3)


def test_a_failed_attempt_then_a_success_is_no_finding(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    failed = _failing(history, t2, "WS-BROADCAST.deliver", "u2")
    # the server's retry, 5 ms later, goes through
    history.ev(
        failed["timestamp"].timestamp() * 1000
        - history.rows[0]["timestamp"].timestamp() * 1000
        + 5,
        "WS-BROADCAST.deliver",
        failed["source"],
        "server",
        trace=t2,
        conv_id="c1",
        peer="u2",
    )
    history.tail()
    report = analyze(history.frame())
    # (not a duplicate deliver: one of the two did not happen)
    assert history.kinds(report.findings) == []
    assert report.summary["delivered"] == 2


def test_a_failed_socket_write_is_the_drop_not_the_receive(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    _failing(history, t2, "WS-BROADCAST.deliver", "u2")
    history.tail()
    report = analyze(history.frame())
    # (it read "reached WS-BROADCAST.deliver, never reached WS-RECV.receive")
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-BROADCAST.deliver", "WS-BROADCAST.start")
    ]
    rows = timeline(history.frame(), t2).filter(pl.col("recipient") == "u2")
    assert rows.select("stage_action", "status").rows()[0] == ("WS-BROADCAST.deliver", "failed")


def test_a_stage_that_raised_as_tracekit_writes_it_reads_as_failed(tmp_path):
    """The line tracekit's ``stage()`` writes when the app raised (``status``, ``error`` and
    level ``error``), read from its file: the seed bug with a controller that throws."""
    from tracekit.collectors import collect

    t0 = "2026-11-25T10:00:00.{:06d}Z"
    trace = "4bf92f3577b34da6a3ce929d0e0e4736"

    def line(us, stage, action, source, seq, actor, **more):
        return {
            "timestamp": t0.format(us), "stage": stage, "action": action,
            "event": f"{stage} {action}", "trace_id": trace, "conv_id": "c1", "actor": actor,
            "source": source, "seq": seq, "level": "info", **more,
        }  # fmt: skip

    server = [
        line(0, "CTRL", "send", "client-u1", 0, "u1"),
        line(1000, "REST", "request", "client-u1", 1, "u1"),
        line(3000, "REST", "response", "client-u1", 2, "u1"),
    ]
    srv = [
        line(2000, "REST", "persist", "server", 0, "server", msg_id="m1"),
        line(2500, "WS-BROADCAST", "start", "server", 1, "server", recipients=["u2"]),
        line(2600, "WS-BROADCAST", "deliver", "server", 2, "server", peer="u2"),
    ]
    u2 = [
        line(4000, "WS-RECV", "receive", "client-u2", 0, "u2"),
        line(4100, "REPO", "add", "client-u2", 1, "u2"),
        line(4200, "CTRL", "add", "client-u2", 2, "u2", level="error", status="error",
             error="StateError: conversation not loaded", duration_ms=0.2),
    ]  # fmt: skip
    late = "2026-11-25T10:01:00.000000Z"
    for name, lines in (("client-u1", server), ("server", srv), ("client-u2", u2)):
        seq = len(lines)
        beat = {"timestamp": late, "stage": "TRACEKIT", "action": "heartbeat", "event": "beat",
                "actor": "x", "source": name, "seq": seq}  # fmt: skip
        text = "".join(json.dumps(x) + "\n" for x in [*lines, beat])
        (tmp_path / f"{name}.jsonl").write_text(text)
    read = collect([tmp_path])
    found = analyze(read.events, inputs=read.inputs.to_dict()).findings
    assert found.select("kind", "trace_id", "recipient", "stage", "last_seen").rows() == [
        ("drop", trace, "u2", "CTRL.add", "REPO.add")
    ]
    assert f"{tmp_path / 'client-u2.jsonl'}:3)" in found.row(0, named=True)["detail"]


def test_a_failed_hop_of_captured_events_says_so_without_a_place():
    # review 25d: events of no file (a test's capture) lost the whole "was tried and
    # failed" with the line they do not have
    from chatflow import send_message

    import tracekit
    from tracekit.testing import analyze_events, capture

    tid = "4bf92f3577b34da6a3ce929d0e0e4736"
    with capture() as events:
        send_message(tid, stop_before={"u2": "CTRL.add"})
        with tracekit.message(tid, conv_id="c1", msg_id="m1"), tracekit.bind(actor="u2"):
            with pytest.raises(ValueError), tracekit.stage("CTRL", "add"):
                raise ValueError("store is locked")
    found = analyze_events(events, grace=timedelta(0)).findings
    assert found.select("kind", "trace_id", "recipient", "stage", "last_seen").rows() == [
        ("drop", tid, "u2", "CTRL.add", "REPO.add")
    ]
    # (how long the logs go on after it is the time between two emits: not checked)
    assert re.fullmatch(
        r"recipient u2: reached REPO\.add, never reached CTRL\.add \(the logs go on [\d.]+ ms "
        r"after it\); CTRL\.add was tried and failed \(1 line\(s\) of it logged at an error "
        r"level\)",
        found["detail"][0],
    )


def test_a_send_tried_and_failed_whose_message_went_on_is_no_unexpected(history):
    # review 25c: "a message whose CTRL.send was never seen", the send's line in the logs
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=10_000)
    _failing(history, t2, "CTRL.send", "u1")
    t3 = history.message(3, "u1", ["u2"], t=20_000, stop={"u2": "CTRL.add"})  # (one drop)
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("drop", t3, "u2", "CTRL.add", "REPO.add")]
