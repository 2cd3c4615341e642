"""A recipient's app's hop events that name no recipient (its lines without their actor;
review 18a). They are on no recipient's path: said as `unexpected`, one finding per message
and log, and a path they may complete is not judged (as one a log gap may hold is not).
Before, they counted for nothing: a log without actors read as every delivery on it dropped,
and said nothing. A server's deliver without its peer completes no path (review 18c)."""

from __future__ import annotations

import pytest

from tracekit.analyzers import analyze


def _said(n: int, source: str, key: str, hops: str) -> str:
    return (
        f"{n} event(s) of this message on {source} name no recipient (no {key} on their "
        f"lines: {hops}), so they are on no recipient's path; a recipient's path they may "
        "complete is not judged"
    )


def test_a_recipients_lines_without_their_actor_are_unexpected_not_a_drop(history):
    t1 = history.message(1, "u1", ["u2", "u3"], stop={"u2": "WS-RECV.receive", "u3": "REPO.add"})
    # u2's app logged the message's receive, store and show, but not whose they are
    for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
        history.ev(30 + k, hop, history.client("u2"), None, trace=t1, conv_id="c1")
    history.tail()  # (u2's app logs a heartbeat as u2: the log is u2's)
    found = analyze(history.frame()).findings
    # u3's drop stands: the lines are in u2's log, not u3's
    assert history.kinds(found) == [
        ("drop", t1, "u3", "REPO.add", "WS-RECV.receive"),
        ("unexpected", t1, None, "WS-RECV.receive", None),
    ]
    unexpected = found.filter(kind="unexpected").row(0, named=True)
    assert unexpected["source"] == "client-u2"
    assert unexpected["detail"] == _said(
        3, "client-u2", "actor", "WS-RECV.receive, REPO.add, CTRL.add"
    )
    assert unexpected["evidence"] == [{"file": "client-u2.jsonl", "line": 1}]


@pytest.mark.parametrize("short", [["u2"], ["u2", "u3"]])
def test_lines_in_a_log_of_nobody_known_may_be_anyones_but_one_path(history, short):
    # a log none of whose lines names its user (a legacy log named web.log) shows the message
    # whole: its lines may be u2's, whose path is then not judged. One app's lines are one
    # path: where u2's and u3's both stop short, at least one is a drop, so both stand
    # (review 18d)
    t1 = history.message(1, "u1", ["u2", "u3"], stop=dict.fromkeys(short, "WS-RECV.receive"))
    for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
        history.ev(30 + k, hop, "web", None, trace=t1, conv_id="c1")
    history.tail(sources=["server-1", "client-u1", "client-u3"])
    history.ev(60_000, "TRACEKIT.heartbeat", "web", None)
    found = analyze(history.frame()).findings
    drops = [("drop", t1, u, "WS-RECV.receive", "WS-BROADCAST.deliver") for u in short[1:]]
    assert history.kinds(found) == [
        *([("drop", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")] if drops else []),
        *drops,
        ("unexpected", t1, None, "WS-RECV.receive", None),
    ]
    assert found.filter(kind="unexpected").get_column("detail").to_list() == [
        _said(3, "web", "actor", "WS-RECV.receive, REPO.add, CTRL.add")
    ]


@pytest.mark.parametrize("owner", ["u2", None])
def test_lines_short_of_the_paths_end_move_where_it_broke_not_whether(history, owner):
    # review 18c: u2's app took the message to its store, logged without the actor, and
    # never showed it: whoever the store line is, nobody's show exists, so u2's drop stands
    # (u2's log names its user, or nobody's does)
    t1 = history.message(1, "u1", ["u2"], stop={"u2": "REPO.add"})
    history.ev(36, "REPO.add", history.client("u2"), None, trace=t1, conv_id="c1")
    history.tail(sources=["server-1", "client-u1"])
    history.ev(60_000, "TRACEKIT.heartbeat", history.client("u2"), owner)
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t1, "u2", "REPO.add", "WS-RECV.receive"),
        ("unexpected", t1, None, "REPO.add", None),
    ]


def test_another_devices_line_is_not_on_this_devices_path(history):
    # review 18c: u2's phone stops at its store; the tablet shows the message, its show line
    # without the actor (its other lines name u2): the phone's own drop stands
    t1 = history.message(1, "u1", ["u2"], stop={"u2": "CTRL.add"})
    tablet = "client-u2-tablet"
    history.ev(29, "WS-RECV.receive", tablet, "u2", trace=t1, conv_id="c1")
    history.ev(30, "REPO.add", tablet, "u2", trace=t1, conv_id="c1")
    history.ev(31, "CTRL.add", tablet, None, trace=t1, conv_id="c1")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t1, "u2", "CTRL.add", "REPO.add"),
        ("unexpected", t1, None, "CTRL.add", None),
    ]
    # (judged for u2: the tablet's show is not known to be u2's, so not "another device did")
    assert found.get_column("detail")[0].startswith("recipient u2: reached REPO.add, never")


def test_a_line_before_the_missing_hop_cannot_be_it(history):
    # u2's store took the message, its show is missing; a receive without its actor cannot be
    # that show: the drop stands, and the line is said
    t1 = history.message(1, "u1", ["u2"], stop={"u2": "CTRL.add"})
    history.ev(31, "WS-RECV.receive", history.client("u2"), None, trace=t1, conv_id="c1")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t1, "u2", "CTRL.add", "REPO.add"),
        ("unexpected", t1, None, "WS-RECV.receive", None),
    ]


def test_a_deliver_without_its_peer_is_on_no_path_and_no_finding(history):
    # review 18c: a server's write that names no socket (a legacy "sent to 2 sockets") says
    # nothing of any recipient's path: both drops stand, and no message of such a log is
    # an unexpected finding for it
    stop = {"u2": "WS-BROADCAST.deliver", "u3": "WS-BROADCAST.deliver"}
    t1 = history.message(1, "u1", ["u2", "u3"], stop=stop)
    history.ev(25, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, conv_id="c1")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t1, "u2", "WS-BROADCAST.deliver", "WS-BROADCAST.start"),
        ("drop", t1, "u3", "WS-BROADCAST.deliver", "WS-BROADCAST.start"),
    ]


def test_a_race_on_a_receive_without_its_actor_says_so(history):
    # the seed race, on a device whose lines lost their actor: still a race, with a detail
    t1 = history.message(1, "u1", ["u2"], stop={"u2": "WS-RECV.receive"})
    history.ev(26, "REST.fetch_start", history.client("u2"), "u2", conv_id="c1")
    history.ev(30, "WS-RECV.receive", history.client("u2"), None, trace=t1, conv_id="c1")
    history.ev(40, "REST.fetch_end", history.client("u2"), "u2", conv_id="c1")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("unexpected", t1, None, "WS-RECV.receive", None),
        ("race", t1, None, "WS-RECV.receive", None),
    ]
    assert found.filter(kind="race").get_column("detail").item() == (
        "WS-RECV.receive for conversation c1 arrived on client-u2 while a REST history fetch "
        "of it was in flight; its line names no recipient (no actor): whose message it was is "
        "unknown"
    )


def test_a_devices_own_unnamed_line_may_complete_the_devices_path(history):
    # review 18d: the phone's store took it (named), its show has no actor; the tablet showed
    # it whole (named). The phone's own line may be its show: no drop on the phone
    t1 = history.message(1, "u1", ["u2"], stop={"u2": "CTRL.add"})
    history.ev(36, "CTRL.add", history.client("u2"), None, trace=t1, conv_id="c1")
    history.shown(31, "client-u2-tablet", "u2", trace=t1)
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("unexpected", t1, None, "CTRL.add", None)]


def test_lines_naming_nobody_do_not_hide_a_message_hops_drop(history):
    # review 18d: the server's broadcast lines are lost, u3's app logged the message without
    # its actor: the message's own break stands (u2's delivery is certainly missing)
    stop = {"u2": "WS-BROADCAST.deliver", "u3": "WS-BROADCAST.deliver"}
    t1 = history.message(1, "u1", ["u2", "u3"], stop=stop, skip_message=["WS-BROADCAST.start"])
    for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
        history.ev(30 + k, hop, history.client("u3"), None, trace=t1, conv_id="c1")
    history.message(2, "u1", ["u2", "u3"], t=1000)
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t1, None, "WS-BROADCAST.start", "REST.persist"),
        ("unexpected", t1, None, "WS-RECV.receive", None),
    ]


BRANCHED = """
[pipeline]
name = "two ends"
[roles]
send = "A.send"
deliver = "B.deliver"
final = "C.show"
[[hops]]
id = "A.send"
scope = "message"
emitter = "sender"
[[hops]]
id = "B.deliver"
after = ["A.send"]
scope = "recipient"
recipient = "peer"
emitter = "server"
[[hops]]
id = "C.store"
after = ["B.deliver"]
scope = "recipient"
recipient = "actor"
emitter = "recipient"
[[hops]]
id = "C.show"
after = ["C.store"]
scope = "recipient"
recipient = "actor"
emitter = "recipient"
[[hops]]
id = "C.push"
after = ["C.store"]
scope = "recipient"
recipient = "actor"
emitter = "recipient"
"""


@pytest.mark.parametrize("ends", [["C.push"], ["C.push", "C.show"]])
def test_lines_naming_nobody_complete_a_path_only_with_all_its_ends(history, tmp_path, ends):
    # review 18d: a model with two last hops; u2's app logged its store and push without the
    # actor and no show anywhere: whoever they are, nobody showed it, u2's drop stands. With
    # the show too, the lines may be u2's whole path
    from tracekit.analyzers import load_pipeline

    (tmp_path / "model.toml").write_text(BRANCHED)
    model = load_pipeline(tmp_path / "model.toml")
    t1 = history.tid(1)
    history.ev(0, "A.send", "client-u1", "u1", trace=t1)
    history.ev(5, "B.deliver", "server-1", "server", trace=t1, peer="u2")
    for k, hop in enumerate(["C.store", *ends]):
        history.ev(10 + k, hop, history.client("u2"), None, trace=t1)
    history.tail()
    found = analyze(history.frame(), pipeline=model).findings
    drop = [("drop", t1, "u2", "C.store", "B.deliver")] if len(ends) == 1 else []
    assert history.kinds(found) == [*drop, ("unexpected", t1, None, "C.store", None)]


def test_a_timeline_marks_a_path_left_undecided(history):
    # the path u2's unnamed lines may complete is not judged: its first missing hop reads
    # "undecided", not "not reached" (review 18c), in the API and `tracekit trace`'s text
    from tracekit.analyzers import timeline
    from tracekit.testing import format_timeline

    t1 = history.message(1, "u1", ["u2"], stop={"u2": "WS-RECV.receive"})
    for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
        history.ev(30 + k, hop, history.client("u2"), None, trace=t1, conv_id="c1")
    history.tail()
    rows = timeline(history.frame(), t1).filter(recipient="u2")
    assert rows.select("stage_action", "status").rows() == [
        ("WS-BROADCAST.deliver", "reached"),
        ("WS-RECV.receive", "undecided"),
        ("REPO.add", "not_reached"),
        ("CTRL.add", "not_reached"),
    ]
    text = format_timeline(history.frame(), t1)
    assert "    ? WS-RECV.receive        (undecided: lines naming no recipient may hold it)" in (
        text.splitlines()
    )


@pytest.mark.parametrize("logs", [["web", "mobile"], ["web"]])
def test_two_logs_of_nobody_known_may_be_the_two_recipients_paths(history, logs):
    # review 18e: each log could complete either path; two logs may complete both (a log
    # each: none judged), one log only one (at least one is a drop: both stand)
    stop = {"u2": "WS-RECV.receive", "u3": "WS-RECV.receive"}
    t1 = history.message(1, "u1", ["u2", "u3"], stop=stop)
    for log in logs:
        for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
            history.ev(30 + k, hop, log, None, trace=t1, conv_id="c1")
    history.tail(sources=["server-1", "client-u1"])
    report = analyze(history.frame())
    drops = [("drop", t1, u, "WS-RECV.receive", "WS-BROADCAST.deliver") for u in ("u2", "u3")]
    unexpected = [("unexpected", t1, None, "WS-RECV.receive", None)] * len(logs)
    assert history.kinds(report.findings) == (unexpected if len(logs) == 2 else drops + unexpected)
    assert report.summary["unnamed_paths"] == (2 if len(logs) == 2 else 0)


def test_a_path_left_undecided_twice_is_counted_as_lines_naming_nobody_may_complete(history):
    # review 18e: a path those lines may complete, also in flight at the end of the logs,
    # was not counted in summary.unnamed_paths (its status says in_flight first)
    t1 = history.message(1, "u1", ["u2"], stop={"u2": "WS-RECV.receive"})
    for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
        history.ev(30 + k, hop, history.client("u2"), None, trace=t1, conv_id="c1")
    history.tail(t_ms=1000)  # (the logs end inside the grace window)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("unexpected", t1, None, "WS-RECV.receive", None),
    ]
    assert report.summary["unnamed_paths"] == 1
