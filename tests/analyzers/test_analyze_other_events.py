"""Events of a trace that are no hop of the pipeline (a UI render, a stage of the app's own).

The analysis keeps every event with its hop (null for these) as one frame, the table's own
columns rather than a copy of its hop events; these events must still count for nothing but
the log positions they take: no conversation, id, evidence or path of a message comes from
them. Each history is analysed twice, with and without their trace ids: the reports are equal.
(A second msg_id logged first by such an event: test_analyze_duplicate.py.)
"""

from __future__ import annotations

from typing import Any

from tracekit.analyzers import analyze


def _without_their_trace_ids(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        {**r, "trace_id": None, "conv_id": None, "msg_id": None} if r["stage"] == "UI" else r
        for r in rows
    ]


def test_a_conversation_comes_from_the_message_s_hops_only(history):
    """The first event naming a conversation is a render of a draft in another one."""
    history.ev(-5, "UI.render", "client-u1", "u1", trace=history.tid(1), conv_id="c-draft")
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "CTRL.add"})
    # a message whose own hops name no conversation: a recipient hop's is taken
    history.ev(995, "UI.render", "client-u2", "u2", trace=history.tid(2), conv_id="c-draft")
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "CTRL.add"})
    message_hops = {"CTRL.send", "REST.request", "REST.persist", "REST.response"}
    for r in history.rows:
        if r["trace_id"] == t2 and (
            r["event"] in message_hops or r["event"] == "WS-BROADCAST.start"
        ):
            r["conv_id"] = None
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t1, "u2", "CTRL.add", "REPO.add"),
        ("drop", t2, "u2", "CTRL.add", "REPO.add"),
    ]
    assert report.findings["conv_id"].to_list() == ["c1", "c1"]
    history.rows = _without_their_trace_ids(history.rows)
    assert analyze(history.frame()).to_dict() == report.to_dict()


def test_an_id_on_an_event_that_is_no_hop_is_no_canonical_msg_id(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(30, "UI.render", "client-u1", "u1", trace=t1, conv_id="c1", msg_id="m1-draft")
    history.tail()
    report = analyze(history.frame())
    assert report.findings.is_empty()
    history.rows = _without_their_trace_ids(history.rows)
    assert analyze(history.frame()).to_dict() == report.to_dict()
