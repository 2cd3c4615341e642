"""Recipient hop events that name no recipient (a client's line without its actor, a deliver
without its peer; review 18a). They are on no recipient's path: said as `unexpected`, one
finding per message and log, and a drop they may belong to is not claimed (as one a log gap
may hold is not). Before, they counted for nothing: a log without actors read as every
delivery on it dropped, and said nothing."""

from __future__ import annotations

from tracekit.analyzers import analyze


def _said(n: int, source: str, key: str, hops: str) -> str:
    return (
        f"{n} event(s) of this message on {source} name no recipient (no {key} on their "
        f"lines: {hops}), so they are on no recipient's path; a drop of the message they may "
        "belong to is not claimed"
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


def test_lines_in_a_log_of_nobody_known_may_be_anyones(history):
    # a log none of whose lines names its user (a legacy log named web.log): its lines may be
    # any recipient's, so neither path is judged
    stop = {"u2": "WS-RECV.receive", "u3": "WS-RECV.receive"}
    t1 = history.message(1, "u1", ["u2", "u3"], stop=stop)
    history.ev(30, "WS-RECV.receive", "web", None, trace=t1, conv_id="c1")
    history.tail(sources=["server-1", "client-u1", "client-u3"])
    history.ev(60_000, "TRACEKIT.heartbeat", "web", None)
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("unexpected", t1, None, "WS-RECV.receive", None)]
    assert found.get_column("detail").to_list() == [_said(1, "web", "actor", "WS-RECV.receive")]


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


def test_a_deliver_without_its_peer_may_be_any_recipients(history):
    # the server wrote to a socket without saying whose: either recipient's receive may follow
    t1 = history.message(
        1, "u1", ["u2", "u3"], stop={"u2": "WS-BROADCAST.deliver", "u3": "WS-BROADCAST.deliver"}
    )
    history.ev(25, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, conv_id="c1")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("unexpected", t1, None, "WS-BROADCAST.deliver", None)]
    assert found.get_column("detail").to_list() == [
        _said(1, "server-1", "peer", "WS-BROADCAST.deliver")
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
        ("unexpected", t1, None, "WS-RECV.receive", None),
        ("race", t1, None, "WS-RECV.receive", None),
    ]
    assert found.filter(kind="race").get_column("detail").item() == (
        "WS-RECV.receive for conversation c1 arrived on client-u2 while a REST history fetch "
        "of it was in flight; its line names no recipient (no actor): whose message it was is "
        "unknown"
    )
