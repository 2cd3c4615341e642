"""A capture block is analysed as a log of its own, numbered from 1: its seq goes on from an
earlier block's (the app's log gets both) or from the activated instance it taps, and a log
that begins above seq 1 reads as one that lost its beginning, whose drops are undecided
(session 22: a second block's lost message read as a `log_gap`, not a drop)."""

from __future__ import annotations

from pathlib import Path

import tracekit
from tracekit.testing import analyze_events, capture

T1, T2 = "1" * 32, "2" * 32


def _sent_only(tid: str) -> None:
    """A message sent and never requested: a drop at REST.request."""
    with tracekit.message(tid, conv_id="c1"):
        tracekit.emit("CTRL", "send")


def _found(events: list[dict]) -> list[tuple[str, str | None, str | None]]:
    report = analyze_events(events)
    return report.findings.select("kind", "trace_id", "stage").rows()


def test_a_second_block_teed_to_the_apps_log_finds_its_drop(tmp_path: Path) -> None:
    tracekit.configure(service="app", sink=str(tmp_path / "app.jsonl"))
    with capture() as first:
        _sent_only(T1)
    with capture() as second:
        _sent_only(T2)
    assert [e["seq"] for e in second] == [2]  # (as written: the app's log has no restart)
    assert _found(first) == [("drop", T1, "REST.request")]
    assert _found(second) == [("drop", T2, "REST.request")]
    assert [e["seq"] for e in second] == [2]  # (the capture itself is left as written)


def test_a_block_tapping_an_activated_instance_finds_its_drop(tmp_path: Path) -> None:
    inst = tracekit.Instrumentation(
        service="client", source="c-u1", actor="u1", sink=tmp_path / "u1.jsonl"
    )
    with inst.activate():
        tracekit.emit("CTRL", "start")
        tracekit.emit("CTRL", "ready")
        with capture() as events:
            _sent_only(T1)
    inst.close()
    assert [e["seq"] for e in events] == [3]
    assert _found(events) == [("drop", T1, "REST.request")]


def test_a_block_whose_event_the_emitter_lost_still_has_its_gap() -> None:
    # a block numbered 5, 7 (teed on from earlier blocks; its 6 lost): the jump is kept
    with capture() as events:
        _sent_only(T1)
        _sent_only(T2)
    events[:] = [dict(e, seq=seq) for e, seq in zip(events, (5, 7), strict=True)]
    report = analyze_events(events)
    gaps = report.findings.filter(report.findings["kind"] == "log_gap")
    assert (
        gaps["detail"]
        .to_list()[0]
        .startswith("seq jumps from 1 to 3: 1 event(s) lost by the logging")
    )


def test_a_block_whose_first_event_was_lost_counts_from_its_seq(tmp_path: Path) -> None:
    # the block's first event lost to the app's processor (it took seq 1: the log's jump);
    # numbered from the first line captured (the report's), the loss was no gap at all
    def picky(_l: object, _m: str, ed: dict) -> dict:
        if ed["action"] == "heartbeat":
            raise KeyError("conv")
        return ed

    tracekit.configure(service="app", sink=str(tmp_path / "app.jsonl"), processors=[picky])
    with capture() as events:  # (a source of its own, numbered from 1)
        tracekit.emit("CTRL", "heartbeat")
        _sent_only(T1)
    assert [(e["stage"], e["seq"], e.get("lost_seq")) for e in events] == [
        ("TRACEKIT", 2, 1),
        ("CTRL", 3, None),
    ]
    report = analyze_events(events)
    assert report.findings.select("kind", "trace_id", "detail").rows() == [
        (
            "drop",
            T1,
            "reached CTRL.send, never reached REST.request (the logs go on 0.0 ms after it)",
        ),
        (
            "log_gap",
            None,
            "the log begins at seq 2: 1 earlier event(s) are not in these logs (a log "
            "begun mid-traffic: rotated, cut or started late)",
        ),
    ]


def test_a_configuration_made_inside_a_block_is_captured_too(tmp_path: Path) -> None:
    # review 25d: a server that configures tracekit as it starts, inside a test's capture,
    # took the capture's place: its events and the rest went to its file alone, and the
    # delivered message read as a drop at REST.persist
    def hops(actor: str, *names: str, **fields: object) -> None:
        with tracekit.message(T1, conv_id="c1"), tracekit.bind(actor=actor):
            for name in names:
                tracekit.emit(*name.split("."), **fields)

    with capture() as events:
        hops("u1", "CTRL.send", "REST.request")
        tracekit.configure(service="chat-server", sink=str(tmp_path / "server.jsonl"))
        hops("server", "REST.persist")
        hops("server", "WS-BROADCAST.start", recipients=["u2"])
        hops("server", "WS-BROADCAST.deliver", peer="u2")
        hops("u1", "REST.response")
        hops("u2", "WS-RECV.receive", "REPO.add", "CTRL.add")
    assert not tracekit.is_configured()  # (undone at the block's end)
    assert events.hops() == [
        "CTRL.send", "REST.request", "REST.persist", "WS-BROADCAST.start",
        "WS-BROADCAST.deliver", "REST.response", "WS-RECV.receive", "REPO.add", "CTRL.add",
    ]  # fmt: skip
    assert analyze_events(events).findings.is_empty()
    written = (tmp_path / "server.jsonl").read_text().splitlines()
    assert len([line for line in written if '"TRACEKIT"' not in line]) == 7
