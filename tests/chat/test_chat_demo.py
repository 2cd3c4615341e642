"""``run_demo``: each scenario's logs agree with its ground truth, hop by hop."""

from __future__ import annotations

import copy
import io
import json
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest
from chat_helpers import Chat
from rich.console import Console

from tracekit.analyzers import analyze, default_pipeline
from tracekit.chat.demo import DemoRun, run_demo
from tracekit.chat.load import (
    AwaitReloads,
    LoadDriver,
    LoadPlan,
    PlannedMessage,
    Reload,
    Send,
    ground_truth,
    plan_load,
)
from tracekit.cli._app import _explain_demo
from tracekit.collectors import collect
from tracekit.table import events_frame


def _events(run: DemoRun) -> dict[str, list[dict[str, Any]]]:
    """source -> its events, in log order."""
    out: dict[str, list[dict[str, Any]]] = {}
    for path in run.logs:
        events = [json.loads(line) for line in path.read_text().splitlines()]
        assert events, f"{path} is empty"
        out[events[0]["source"]] = events
    return out


def _hops(events: list[dict[str, Any]], trace_id: str) -> Counter[str]:
    return Counter(f"{e['stage']}.{e['action']}" for e in events if e.get("trace_id") == trace_id)


def _ts(event: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(event["timestamp"].replace("Z", "+00:00"))


def _check_common(run: DemoRun, tmp_path: Path) -> dict[str, list[dict[str, Any]]]:
    assert run.out == tmp_path and run.server_log == tmp_path / "server.jsonl"
    assert sorted(p.name for p in run.logs) == [
        "client-u1.jsonl",
        "client-u2.jsonl",
        "client-u3.jsonl",
        "server.jsonl",
    ]
    on_disk = json.loads(run.truth_path.read_text())
    assert on_disk == json.loads(json.dumps(run.truth.as_dict()))
    assert on_disk["schema"] == "tracekit.demo-truth/1"
    events = _events(run)
    assert sorted(events) == ["chat-server-1", "client-u1", "client-u2", "client-u3"]
    for source, evs in events.items():
        assert [e["seq"] for e in evs] == list(range(1, len(evs) + 1)), source  # no log gaps
    # every message: sent once, persisted once, broadcast to every member but its sender
    server = events["chat-server-1"]
    for m in run.truth.messages:
        sender = _hops(events[f"client-{m['sender']}"], m["trace_id"])
        # (a race-bug reloader's own message, sent during its reload, is then overwritten)
        assert sender.pop("CTRL.remove", 0) <= (run.truth.behaviour == "race-bug")
        assert sender == Counter({"CTRL.send": 1, "REST.request": 1, "REST.response": 1})
        (start,) = [
            e for e in server if e.get("trace_id") == m["trace_id"] and e["action"] == "start"
        ]
        assert start["recipients"] == m["recipients"] and m["sender"] not in m["recipients"]
    return events


def _report(run: DemoRun) -> dict[str, Any]:
    """tracekit's report of the run's logs (grace below the run's tail, as the demo does)."""
    grace = timedelta(milliseconds=max(run.tail_ms // 2, 100))
    return analyze(collect(run.logs).events, grace=grace).to_dict()


def _reported(run: DemoRun) -> list[dict[str, Any]]:
    return list(_report(run)["findings"])


def _explained(run: DemoRun, data: dict[str, Any]) -> str:
    """What ``tracekit demo`` prints after its table: the truth against ``data``'s findings."""
    out = io.StringIO()
    _explain_demo(run, data, Console(file=out, width=300, no_color=True))
    return out.getvalue()


def _delivered(events: dict[str, list[dict[str, Any]]], trace_id: str, user: str) -> int:
    return _hops(events[f"client-{user}"], trace_id)["CTRL.add"]


def test_race_bug_demo_loses_messages_at_ctrl_add_during_history_loads(tmp_path: Path) -> None:
    run = run_demo("race-bug", users=3, messages=12, out=tmp_path, seed=0, tail=0.3)
    events = _check_common(run, tmp_path)

    assert len(run.lost) >= 4
    lost = {(e.trace_id, e.recipient) for e in run.lost}
    # both halves of the seed bug: dropped before CTRL.add while c1 was not loaded, and
    # overwritten by the page after CTRL.add once the reloader's own message loaded it again
    dropped = {(e.trace_id, e.recipient) for e in run.lost if e.last_seen == "REPO.add"}
    overwritten = {(e.trace_id, e.recipient) for e in run.lost if e.last_seen == "CTRL.add"}
    assert dropped and overwritten and dropped | overwritten == lost
    assert {(e.kind, e.stage) for e in run.lost} == {("drop", "CTRL.add")}
    for m in run.truth.messages:
        for r in m["recipients"]:
            hops = _hops(events[f"client-{r}"], m["trace_id"])
            assert hops["WS-RECV.receive"] == hops["REPO.add"] == 1
            assert hops["CTRL.add"] == (0 if (m["trace_id"], r) in dropped else 1)
            assert hops["CTRL.remove"] == ((m["trace_id"], r) in overwritten)
    # each lost message arrived inside a history fetch of its conversation on that client
    for e in run.lost:
        log = events[f"client-{e.recipient}"]
        (recv,) = [x for x in log if x.get("trace_id") == e.trace_id and x["action"] == "receive"]
        windows = [
            x
            for x in log
            if x["action"] in ("fetch_start", "fetch_end") and x["conv_id"] == e.conv_id
        ]
        before = [w for w in windows if w["seq"] < recv["seq"]][-1]
        after = next(w for w in windows if w["seq"] > recv["seq"])
        assert (before["action"], after["action"]) == ("fetch_start", "fetch_end")
        assert _ts(before) <= _ts(recv) <= _ts(after)
        assert e.shown_after_refresh  # the final refresh brings it back
    assert {(r["trace_id"], r["recipient"]) for r in run.truth.races} >= lost
    assert run.duration_s < 10
    # what `tracekit demo` prints: both halves, counted, and found
    text = _explained(run, _report(run))
    assert (
        f"{len(lost)} deliveries lost by the app ({len(dropped)} dropped by the race-bug "
        f"controller, {len(overwritten)} overwritten by a history page after CTRL.add)"
    ) in text
    assert "tracekit reported exactly" in text


def test_fixed_demo_delivers_everything(tmp_path: Path) -> None:
    run = run_demo("fixed", users=3, messages=12, out=tmp_path, seed=0, tail=0.3)
    events = _check_common(run, tmp_path)

    assert run.lost == [] and run.expected_findings == []
    assert run.truth.races  # the same race happened; the fixed client lost nothing to it
    for m in run.truth.messages:
        for r in m["recipients"]:
            assert _delivered(events, m["trace_id"], r) == 1
    assert run.truth.deliveries_expected == sum(len(m["recipients"]) for m in run.truth.messages)


def test_faults_demo_ground_truth_matches_what_the_logs_show(tmp_path: Path) -> None:
    # 20 messages: enough deliver -> receive samples for the analyzer to score an outlier
    run = run_demo("faults", users=3, messages=20, out=tmp_path, seed=1, tail=0.3)
    events = _check_common(run, tmp_path)
    server = events["chat-server-1"]
    truth = run.truth

    found = Counter((e.kind, e.stage) for e in run.expected_findings)
    assert found == Counter(
        {
            ("drop", "WS-RECV.receive"): 1,
            ("drop", "WS-BROADCAST.deliver"): 2,
            ("duplicate", "WS-RECV.receive"): 1,
            ("latency_outlier", "WS-RECV.receive"): 1,
            ("slo_breach", "CTRL.add"): 1,
        }
    )
    assert Counter(f["kind"] for f in truth.faults_applied) == Counter(
        {"drop": 1, "duplicate": 1, "delay": 1, "disconnect": 2}
    )

    def delivers(trace_id: str, peer: str) -> list[dict[str, Any]]:
        return [
            e for e in server
            if e.get("trace_id") == trace_id and e["action"] == "deliver" and e["peer"] == peer
        ]  # fmt: skip

    for e in run.expected_findings:
        hops = _hops(events[f"client-{e.recipient}"], e.trace_id)
        if e.kind == "drop" and e.stage == "WS-RECV.receive":  # lost on the wire
            assert len(delivers(e.trace_id, e.recipient)) == 1 and hops["WS-RECV.receive"] == 0
        elif e.kind == "drop":  # recipient disconnected: no socket to write to
            assert delivers(e.trace_id, e.recipient) == [] and hops["WS-RECV.receive"] == 0
            assert e.shown_after_refresh  # the reload after reconnecting brought it
        elif e.kind == "duplicate":
            assert hops == Counter({"WS-RECV.receive": 2, "REPO.add": 1, "CTRL.add": 1})
        elif e.kind == "latency_outlier":
            (deliver,) = delivers(e.trace_id, e.recipient)
            log = events[f"client-{e.recipient}"]
            (recv,) = [
                x for x in log if x.get("trace_id") == e.trace_id and x["action"] == "receive"
            ]
            assert deliver["duration_ms"] >= 800
            assert (_ts(recv) - _ts(deliver)).total_seconds() >= 0.8
    # everything else arrived exactly once
    faulty = {(e.trace_id, e.recipient) for e in run.expected_findings if e.kind != "slo_breach"}
    for m in truth.messages:
        for r in m["recipients"]:
            if (m["trace_id"], r) not in faulty:
                assert _hops(events[f"client-{r}"], m["trace_id"]) == Counter(
                    {"WS-RECV.receive": 1, "REPO.add": 1, "CTRL.add": 1}
                )


def test_plans_are_deterministic_per_seed() -> None:
    a, b, c = (plan_load("faults", seed=s) for s in (7, 7, 8))
    assert [m.client_msg_id for m in a.messages] == [m.client_msg_id for m in b.messages]
    assert (a.faults.drop, a.faults.duplicate, a.faults.delay) == (
        b.faults.drop,
        b.faults.duplicate,
        b.faults.delay,
    )
    assert [m.client_msg_id for m in a.messages] != [m.client_msg_id for m in c.messages]
    assert len(plan_load("race-bug", messages=20).messages) == 20


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scenario": "chaos"}, "scenario must be one of"),
        ({"users": 1}, "at least 2 users"),
        ({"messages": 0}, "at least 1"),
    ],
)
def test_run_demo_rejects_bad_arguments(
    tmp_path: Path, kwargs: dict[str, Any], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        run_demo(out=tmp_path, **kwargs)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("users", "messages", "seed"), [(2, 8, 15), (3, 3, 17)])
def test_faults_truth_expects_an_outlier_only_with_enough_samples(
    tmp_path: Path, users: int, messages: int, seed: int
) -> None:
    # too few deliver -> receive samples for an outlier: the truth must not expect one
    run = run_demo("faults", users=users, messages=messages, out=tmp_path, seed=seed, tail=0.3)
    kinds = Counter(e.kind for e in run.expected_findings)
    assert kinds["slo_breach"] == 1 and "latency_outlier" not in kinds
    expected = {(e.kind, e.trace_id, e.recipient, e.stage) for e in run.expected_findings}
    found = {
        (f["kind"], f["trace_id"], f["recipient"], f["stage"])
        for f in _reported(run)
        if f["kind"] in kinds
    }
    assert found == expected
    assert default_pipeline().outlier_min_samples > sum(
        len(m["recipients"]) for m in run.truth.messages
    )


def test_demo_explanation_compares_races_and_every_finding_kind(tmp_path: Path) -> None:
    run = run_demo("race-bug", users=3, messages=4, out=tmp_path, seed=0, tail=0.3)
    data = _report(run)
    assert run.truth.races and run.lost
    n, races = (
        len(run.expected_findings),
        {(r["trace_id"], r["recipient"]) for r in run.truth.races},
    )
    assert f"reported exactly the {n} expected findings and the {len(races)} races" in _explained(
        run, data
    )

    # a stall of this machine (a latency finding the scenario did not cause) is said apart:
    # the scenario's findings still match exactly
    slow = copy.deepcopy(data)
    slow["findings"].append(
        {"kind": "latency_outlier", "trace_id": "cd" * 16, "recipient": "u2", "stage": "REPO.add"}
    )
    text = _explained(run, slow)
    assert f"reported exactly the {n} expected findings and the {len(races)} races" in text
    assert "It also reported 1 latency finding(s) the scenario did not cause" in text
    assert "mismatch" not in text

    no_races = copy.deepcopy(data)
    no_races["findings"] = [f for f in data["findings"] if f["kind"] != "race"]
    no_races["findings"] += slow["findings"][-1:]
    text = _explained(run, no_races)
    assert "mismatch" in text and "exactly" not in text
    assert "1 reported but not expected" in text and "latency_outlier" in text
    assert f"{len(run.truth.races)} expected finding(s) not reported" in text

    extra = copy.deepcopy(data)
    for kind in ("unexpected", "in_flight", "reorder"):
        extra["findings"].append(
            {"kind": kind, "trace_id": "ab" * 16, "recipient": "u1", "stage": "CTRL.add"}
        )
    text = _explained(run, extra)
    assert "mismatch" in text and "3 reported but not expected" in text
    assert "reorder" in text and "in_flight" in text and "unexpected" in text


async def test_truth_counts_a_socket_message_the_race_bug_page_overwrites(chat: Chat) -> None:
    # u2 reloads c1 and sends in it while the page is in flight: its own send puts c1 back in
    # the store, so u1's message reaches CTRL.add, and then the page (read before) wipes it
    chat.options.history_latency = 0.3
    clients = {u: await chat.client(u, "race-bug", ["c1"]) for u in ("u1", "u2", "u3")}
    plan = LoadPlan("race-bug", 0, "race-bug", list(clients), {"c1": list(clients)}, 0.3)
    own = PlannedMessage(0, "c1", "u2", "11111111-1111-4111-8111-111111111111")
    other = PlannedMessage(1, "c1", "u1", "22222222-2222-4222-8222-222222222222")
    plan.steps = [Reload("u2", "c1", wait=False), Send(own), Send(other), AwaitReloads()]
    driver = LoadDriver(plan, clients, chat.server.base_url, chat.options)
    await driver.run(tail=0.05)
    truth = ground_truth(plan, driver)

    assert _hops(chat.events("u2"), other.trace_id)["CTRL.add"] == 1  # logged as shown...
    assert clients["u2"].controller.dropped == []
    (lost,) = truth.lost  # ...yet gone from u2's screen until the refresh
    assert (lost.trace_id, lost.recipient, lost.kind, lost.stage) == (
        other.trace_id, "u2", "drop", "CTRL.add"
    )  # fmt: skip
    assert not lost.shown and lost.shown_after_refresh
    assert {(r["trace_id"], r["recipient"]) for r in truth.races} == {(other.trace_id, "u2")}

    # the store logged what the page took off the screen: u1's message, and u2's own
    removals = [e for e in chat.events("u2") if (e["stage"], e["action"]) == ("CTRL", "remove")]
    assert sorted((e["trace_id"], e["actor"]) for e in removals) == sorted(
        [(own.trace_id, "u2"), (other.trace_id, "u2")]
    )
    # ...so the analysis sees the loss the truth counts: a drop at CTRL.add on u2's client
    logs = [*chat.server_events, *(e for u in clients for e in chat.events(u))]
    report = analyze(events_frame(logs).lazy(), grace=timedelta(milliseconds=20))
    drops = report.findings.filter(pl.col("kind") == "drop")
    assert drops.select("trace_id", "recipient", "stage", "last_seen", "source").rows() == [
        (other.trace_id, "u2", "CTRL.add", "CTRL.add", "client-u2")
    ]
    race = report.findings.filter(pl.col("kind") == "race").row(0, named=True)
    # (the driver's final refresh is that later load)
    assert race["detail"].endswith(
        "the message then went missing: reached CTRL.add, then CTRL.remove took it off the "
        "store until a later history load showed it"
    )
