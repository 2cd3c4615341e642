"""The report as a whole: JSON shape, summary, recipients, edge cases, timeline."""

from __future__ import annotations

import json
import threading
import time
from datetime import timedelta

import polars as pl
import pytest

import tracekit.analyzers._report as report_module
from tracekit.analyzers import FINDING_SCHEMA, analyze, timeline
from tracekit.analyzers._paths import build_paths
from tracekit.table import empty_events


def test_json_report_has_exactly_the_design_keys(history):
    history.message(1, "u1", ["u2"], t=0, stop={"u2": "CTRL.add"})
    history.tail()
    inputs = {"files": 3, "lines": 20, "events": 19, "malformed": 1}
    doc = analyze(history.frame(), inputs=inputs).to_dict()
    json.dumps(doc)  # serialisable as is
    assert list(doc) == ["schema", "inputs", "summary", "findings", "latency", "clock"]
    assert doc["schema"] == "tracekit.report/1"
    assert doc["inputs"] == inputs
    assert set(doc["summary"]) >= {
        "messages",
        "deliveries_expected",
        "delivered",
        "drop",
        "in_flight",
        "duplicate",
        "unexpected",
        "reorder",
        "latency_outlier",
        "slo_breach",
        "race",
        "log_gap",
    }
    (finding,) = doc["findings"]
    assert list(finding)[:9] == [
        "kind",
        "trace_id",
        "recipient",
        "stage",
        "last_seen",
        "conv_id",
        "source",
        "detail",
        "evidence",
    ]
    assert finding["evidence"] == [{"file": "client-u2.jsonl", "line": 2}]
    assert finding["at"] == "2026-02-09T12:00:00.035000Z"
    assert set(doc["latency"]) == {"hops", "end_to_end"}
    assert set(doc["latency"]["end_to_end"]) == {"count", "p50_ms", "p95_ms", "p99_ms", "max_ms"}
    assert {c["source"] for c in doc["clock"]} == {"client-u1", "client-u2", "server-1"}
    assert set(doc["clock"][0]) >= {"source", "offset_ms", "uncertainty_ms"}


def test_inputs_default_to_zeros_and_empty_input_is_a_clean_report():
    report = analyze(empty_events())
    doc = report.to_dict()
    assert doc["inputs"] == {"files": 0, "lines": 0, "events": 0, "malformed": 0}
    assert doc["findings"] == [] and doc["clock"] == []
    assert doc["summary"]["messages"] == 0
    assert doc["latency"]["end_to_end"]["count"] == 0
    assert report.findings.schema == FINDING_SCHEMA


def test_recipients_from_membership_when_the_broadcast_names_none(history):
    history.message(1, "u1", ["u2", "u3"], t=0)  # u1, u2, u3 are seen in c1
    t2 = history.message(2, "u2", None, t=1000)  # legacy broadcast: no recipients list
    # the server still delivered it to u1 (fine) and u3 (who never got it into the UI)
    history.ev(1025, "WS-BROADCAST.deliver", "server-1", "server", trace=t2, peer="u1")
    history.ev(1030, "WS-RECV.receive", "client-u1", "u1", trace=t2)
    history.ev(1031, "REPO.add", "client-u1", "u1", trace=t2)
    history.ev(1032, "CTRL.add", "client-u1", "u1", trace=t2)
    history.ev(1025, "WS-BROADCAST.deliver", "server-1", "server", trace=t2, peer="u3")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u3", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.findings["detail"][0].endswith(
        "; expected from conversation membership, no broadcast in the logs listed the recipients"
    )
    assert report.summary["recipients_from"] == {"broadcast": 1, "membership": 1}
    assert report.summary["deliveries_expected"] == 4
    # near the end of the logs, the same delivery is in flight, and says so too
    report = analyze(history.frame(), grace=timedelta(minutes=5))
    assert history.kinds(report.findings) == [
        ("in_flight", t2, "u3", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.findings["detail"][0].endswith(
        "inside the 300000 ms grace window; expected from conversation membership, no "
        "broadcast in the logs listed the recipients"
    )


def test_sender_who_is_also_a_recipient(history):
    t1 = history.message(1, "u1", ["u1", "u2"], t=0, stop={"u1": "REPO.add"})
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t1, "u1", "REPO.add", "WS-RECV.receive")]
    assert report.summary["deliveries_expected"] == 2


def test_conversation_with_one_member(history):
    history.message(1, "u1", ["u1"], conv="solo", t=0)
    history.message(2, "u1", [], conv="solo", t=1000)  # a server that does not echo
    history.tail()
    report = analyze(history.frame())
    assert report.findings.is_empty()
    assert report.summary["deliveries_expected"] == 1
    assert report.summary["delivered"] == 1


def test_one_member_whose_own_echo_is_lost_without_a_recipients_list(history):
    # a legacy broadcast (no list) in a one-member conversation: the sender sees their own
    # echo arrive and never shown; membership (no one but the sender) gives no one else
    t1 = history.message(1, "u1", None, conv="solo", t=0)
    history.ev(
        25, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, conv_id="solo", peer="u1"
    )
    history.ev(30, "WS-RECV.receive", "client-u1", "u1", trace=t1, conv_id="solo")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t1, "u1", "REPO.add", "WS-RECV.receive")]
    assert report.findings["detail"][0].endswith(
        "; expected from conversation membership, no broadcast in the logs listed the recipients"
    )
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (1, 0)


def test_recipient_reconnecting_whose_history_load_misses_it(history):
    # the deliver went to a dead socket; the history load after the reconnect does not
    # bring the message (no REPO.add of it): lost where the socket was, for u2
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.ev(1200, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(1230, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.message(3, "u1", ["u2"], t=2000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (3, 2)


def test_recipient_reconnecting_gets_it_from_history(history):
    # deliver went to a dead socket (no receive); after reconnecting, a history load adds it.
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    history.loaded(200, "u2", trace=t1)
    history.tail()
    report = analyze(history.frame())
    assert report.findings.is_empty()
    assert report.summary["delivered"] == 1


def test_meta_events_are_never_hops(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(50, "TRACEKIT.flush", "client-u2", "u2", trace=t1)
    history.ev(51, "TRACEKIT.configured", "client-u2", "u2")
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def test_timeline_of_one_message(history):
    t1 = history.message(1, "u1", ["u2", "u3"], t=0, stop={"u3": "REPO.add"})
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    tl = timeline(history.frame(), t1)
    assert tl.columns == [
        "recipient",
        "hop",
        "stage_action",
        "reached",
        "status",
        "count",
        "source",
        "timestamp",
        "latency_ms",
        "file",
        "line",
    ]
    got = tl.select("recipient", "stage_action", "reached", "latency_ms")
    rows = got.rows()
    assert rows[:5] == [
        (None, "CTRL.send", True, None),
        (None, "REST.request", True, 5.0),
        (None, "REST.persist", True, 5.0),
        (None, "REST.response", True, 5.0),
        (None, "WS-BROADCAST.start", True, 10.0),
    ]
    assert rows[5:9] == [
        ("u2", "WS-BROADCAST.deliver", True, 5.0),
        ("u2", "WS-RECV.receive", True, 5.0),
        ("u2", "REPO.add", True, 5.0),
        ("u2", "CTRL.add", True, 5.0),
    ]
    assert rows[11:] == [("u3", "REPO.add", False, None), ("u3", "CTRL.add", False, None)]
    # the drop's first missing hop, and the one after it that was never reached either
    assert tl.get_column("status").to_list()[9:] == ["reached", "reached", "dropped", "not_reached"]
    assert set(tl.get_column("status")[:9]) == {"reached"}
    assert tl.filter(pl.col("stage_action") == "REST.persist")["source"][0] == "server-1"
    assert timeline(history.frame(), "f" * 32).is_empty()


def test_report_validates_against_the_published_json_schema():
    jsonschema = pytest.importorskip("jsonschema")
    from pathlib import Path

    from tracekit.synth import generate

    schema_path = Path(__file__).resolve().parents[2] / "docs" / "report.schema.json"
    if not schema_path.exists():
        pytest.skip("docs/report.schema.json not present")
    synth = generate(2, messages=80, users=8, faults=["drop", "race_drop", "skew", "seq_gap"])
    doc = analyze(synth.frame()).to_dict()
    jsonschema.validate(doc, json.loads(schema_path.read_text()))
    assert len(doc["findings"]) == len(synth.truth)


_OWN = ("WS-RECV.receive", "REPO.add", "CTRL.add")  # u2's own hops


def _on_devices(history, trace, phone=(), tablet=()):
    """u2's own hops of ``trace`` on two devices, which the server delivers it to once (at 25.5
    ms): the phone's from 30 ms, 1 ms apart; the tablet's from 32 ms, 2 ms apart."""
    at = {"trace": trace, "conv_id": "c1"}
    history.ev(25.5, "WS-BROADCAST.deliver", "server-1", "server", peer="u2", **at)
    for k, hop in enumerate(phone):
        history.ev(30 + k, hop, "client-u2", "u2", **at)
    for k, hop in enumerate(tablet):
        history.ev(32 + 2 * k, hop, "client-u2-tablet", "u2", **at)


def test_timeline_shows_each_device_of_a_recipient_with_its_missing_hop(history):
    # The phone stored m1 and never showed it; the tablet showed it. Per recipient the path
    # looked complete (CTRL.add from the tablet, +ms from the phone's REPO.add), while the
    # analysis reports the phone's drop: each device gets its own rows.
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    _on_devices(history, t1, _OWN[:2], _OWN)
    history.tail()
    rows = (
        timeline(history.frame(), t1)
        .filter(pl.col("recipient").is_not_null())
        .select("recipient", "stage_action", "status", "count", "source", "latency_ms", "line")
        .rows()
    )
    # the deliver written once to each device is logged twice, and is no duplicate
    assert rows == [
        ("u2", "WS-BROADCAST.deliver", "reached", 2, "server-1", 5.0, 3),
        ("u2 on client-u2", "WS-RECV.receive", "reached", 1, "client-u2", 5.0, 1),
        ("u2 on client-u2", "REPO.add", "reached", 1, "client-u2", 1.0, 2),
        ("u2 on client-u2", "CTRL.add", "dropped", 0, None, None, None),
        ("u2 on client-u2-tablet", "WS-RECV.receive", "reached", 1, "client-u2-tablet", 7.0, 1),
        ("u2 on client-u2-tablet", "REPO.add", "reached", 1, "client-u2-tablet", 2.0, 2),
        ("u2 on client-u2-tablet", "CTRL.add", "reached", 1, "client-u2-tablet", 2.0, 3),
    ]


def test_timeline_status_says_duplicate_and_in_flight_as_the_analysis_does(history):
    # m1: u2's client stored it twice (a duplicate); m2: u3's path stops at REPO.add 1 s
    # before the logs end, inside the 5 s grace window (in flight, not dropped)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(40, "REPO.add", "client-u2", "u2", trace=t1, conv_id="c1")
    t2 = history.message(2, "u1", ["u3"], t=1000, stop={"u3": "REPO.add"})
    history.ev(2000, "TRACEKIT.heartbeat", "client-u3", "u3")
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("in_flight", t2, "u3", "REPO.add", "WS-RECV.receive"),
        ("duplicate", t1, "u2", "REPO.add", None),
    ]
    for given in (None, found):  # found here, or the report's
        statuses = {
            t: dict(
                timeline(history.frame(), t, findings=given)
                .select("stage_action", "status")
                .filter(pl.col("status") != "reached")
                .iter_rows()
            )
            for t in (t1, t2)
        }
        assert statuses == {
            t1: {"REPO.add": "duplicate"},
            t2: {"REPO.add": "in_flight", "CTRL.add": "not_reached"},
        }


def test_a_memoised_frame_is_computed_once_by_threads_asking_together(history):
    # analyze runs the finding kinds two at a time on threads; the drops, races and summary
    # all ask for the removals (which ask for the fetch windows): one computation, one frame
    history.message(1, "u1", ["u2"], t=0)
    paths = build_paths(history.frame().lazy())
    calls: list[str] = []

    def inner() -> pl.DataFrame:
        calls.append("inner")
        return pl.DataFrame({"x": [1]})

    def outer() -> pl.DataFrame:
        calls.append("outer")
        time.sleep(0.05)  # the others arrive meanwhile
        return paths.memoised("inner", inner).with_columns(y=pl.lit(2))  # re-entrant

    got: list[pl.DataFrame] = []
    threads = [
        threading.Thread(target=lambda: got.append(paths.memoised("outer", outer)))
        for _ in range(4)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert calls == ["outer", "inner"]
    assert len(got) == 4 and all(g is got[0] for g in got)


def test_a_kind_that_fails_fails_the_analysis(history, monkeypatch):
    # the kinds run on a pool: an error in one is raised by analyze, not lost with its thread
    def broken(paths):
        raise RuntimeError("races broke")

    monkeypatch.setattr(report_module, "races", broken)
    history.message(1, "u1", ["u2"], t=0)
    with pytest.raises(RuntimeError, match="races broke"):
        analyze(history.frame())


def test_a_drop_of_the_recipient_marks_each_device_that_stopped_there(history):
    # both of u2's devices stored m1 and neither showed it: one drop for u2, naming one device
    # as its source; each device's row at CTRL.add is that drop (review 13: only the named
    # device's was)
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    _on_devices(history, t1, _OWN[:2], _OWN[:2])
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t1, "u2", "CTRL.add", "REPO.add")]
    for given in (None, report.findings):
        rows = (
            timeline(history.frame(), t1, findings=given)
            .filter(pl.col("status") != "reached")
            .select("recipient", "stage_action", "status")
            .rows()
        )
        assert rows == [
            ("u2 on client-u2", "CTRL.add", "dropped"),
            ("u2 on client-u2-tablet", "CTRL.add", "dropped"),
        ]


def test_a_removal_that_dropped_the_message_is_marked_on_its_row(history):
    # m2 reached u2's CTRL.add, then a history page took it off the store: the drop's row in
    # the timeline is the removal's (review 13: every row read "reached")
    history.message(1, "u1", ["u1", "u2"], t=0)
    history.ev(1000, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t2 = history.message(2, "u1", ["u1", "u2"], t=1005)
    history.ev(1100.5, "CTRL.remove", "client-u2", "u2", trace=t2, conv_id="c1")
    history.ev(1101, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert ("drop", t2, "u2", "CTRL.add", "CTRL.add") in history.kinds(report.findings)
    rows = (
        timeline(history.frame(), t2, findings=report.findings)
        .filter(pl.col("recipient") == "u2")
        .select("stage_action", "reached", "status")
        .rows()
    )
    assert rows[-2:] == [("CTRL.add", True, "reached"), ("CTRL.remove", True, "removed")]
    assert {s for _, _, s in rows[:-1]} == {"reached"}


def _statuses(history, trace, pick=None):
    report = analyze(history.frame())
    tl = timeline(history.frame(), trace, findings=report.findings)
    pick = pl.col("recipient").is_not_null() if pick is None else pick
    return tl.filter(pick).select("recipient", "stage_action", "status").rows()


def test_each_device_keeps_its_own_drop_and_in_flight_path(history):
    # review 13b: u2's phone stops at REPO.add, the tablet at CTRL.add (a drop each, one hop
    # apart); on a second message the web client's log ends right after REPO.add (in flight)
    # while the tablet's goes on (a drop), and the phone showed it
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    _on_devices(history, t1, _OWN[:1], _OWN[:2])
    history.tail()
    devices = pl.col("recipient").str.contains(" on ")
    assert [r for r in _statuses(history, t1, devices) if r[2] != "reached"] == [
        ("u2 on client-u2", "REPO.add", "dropped"),
        ("u2 on client-u2", "CTRL.add", "not_reached"),
        ("u2 on client-u2-tablet", "CTRL.add", "dropped"),
    ]


def test_a_device_in_flight_is_not_marked_with_another_devices_drop(history):
    t1 = history.message(1, "u1", ["u2"], t=0)  # the phone showed it
    at = {"trace": t1, "conv_id": "c1"}
    for k, dev in enumerate(("client-u2-tablet", "client-u2-web")):
        history.ev(25.5 + k, "WS-BROADCAST.deliver", "server-1", "server", peer="u2", **at)
        history.ev(31 + k, "WS-RECV.receive", dev, "u2", **at)
        history.ev(33 + k, "REPO.add", dev, "u2", **at)
    for src in ("client-u1", "client-u2", "client-u2-tablet", "server-1"):  # not the web's
        history.ev(60_000, "TRACEKIT.heartbeat", src, "x")
    devices = pl.col("recipient").str.contains(" on ")
    assert [r for r in _statuses(history, t1, devices) if r[2] != "reached"] == [
        ("u2 on client-u2-tablet", "CTRL.add", "dropped"),
        ("u2 on client-u2-web", "CTRL.add", "in_flight"),
    ]


def test_a_user_named_like_a_device_label_keeps_their_own_status(history):
    other = "u2 on x"  # a user id that reads like a device of u2
    t1 = history.message(1, "u1", ["u2", other], t=0, stop={"u2": "CTRL.add", other: "REPO.add"})
    history.tail()
    assert [r for r in _statuses(history, t1) if r[2] != "reached"] == [
        ("u2", "CTRL.add", "dropped"),
        (other, "REPO.add", "dropped"),
        (other, "CTRL.add", "not_reached"),
    ]


def test_only_the_removal_that_dropped_the_message_is_marked(history):
    # removed, shown again, removed again: the drop is the second removal's; a removal in the
    # grace window at the end of the logs is undecided
    t1 = history.message(1, "u1", ["u1", "u2"], t=0)
    for t, hop in ((1000, "CTRL.remove"), (1010, "CTRL.add"), (1020, "CTRL.remove")):
        history.ev(t, hop, "client-u2", "u2", trace=t1, conv_id="c1")
    t2 = history.message(2, "u1", ["u1", "u2"], t=58_000)
    history.ev(59_000, "CTRL.remove", "client-u2", "u2", trace=t2, conv_id="c1")
    history.tail()
    removals = pl.col("stage_action") == "CTRL.remove"
    assert _statuses(history, t1, removals) == [
        ("u2", "CTRL.remove", "reached"),
        ("u2", "CTRL.remove", "removed"),
    ]
    assert _statuses(history, t2, removals) == [("u2", "CTRL.remove", "in_flight")]
