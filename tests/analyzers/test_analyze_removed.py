"""The seed bug's other half: a message that reached ``CTRL.add`` and was then taken off the
store again (a history page that replaces the store instead of merging), seen through the
pipeline's ``remove`` role (``CTRL.remove`` by default)."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest

from tracekit.analyzers import Pipeline, analyze, find_races, load_pipeline, timeline
from tracekit.errors import PipelineError


def _overwrite(history, *, device: str = "client-u2", before_removal=()) -> str:
    """u2 has c1 open and reloads it: m2 reaches CTRL.add during the fetch, then the page
    (read before m2 was persisted) replaces the store and takes m2 off it."""
    history.message(1, "u1", ["u1", "u2"], t=0)
    history.ev(1000, "REST.fetch_start", device, "u2", conv_id="c1")
    t2 = history.message(2, "u1", ["u1", "u2"], t=1005)
    for t, hop in before_removal:
        history.ev(t, hop, device, "u2", conv_id="c1")
    history.ev(1100.5, "CTRL.remove", device, "u2", trace=history.tid(2), conv_id="c1")
    history.ev(1101, "REST.fetch_end", device, "u2", conv_id="c1")
    return t2


def test_a_message_removed_after_ctrl_add_is_a_drop_at_ctrl_add(history) -> None:
    t2 = _overwrite(history)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "CTRL.add", "CTRL.add"),
        ("race", t2, "u2", "WS-RECV.receive", "CTRL.add"),
    ]
    drop, race = report.findings.rows(named=True)
    assert drop["source"] == "client-u2"
    assert drop["conv_id"] == "c1"
    assert drop["detail"] == (
        "recipient u2 on client-u2: reached CTRL.add, then CTRL.remove took the message off "
        "the store 55.0 ms later and nothing added it again"
    )
    # the CTRL.add, then the CTRL.remove that undid it (client-u2's lines)
    assert [(e["file"], e["line"]) for e in drop["evidence"]] == [
        ("client-u2.jsonl", 7),
        ("client-u2.jsonl", 8),
    ]
    assert race["detail"] == (
        "WS-RECV.receive for conversation c1 arrived on client-u2 while a REST history fetch "
        "of it was in flight; the message then went missing: reached CTRL.add, then "
        "CTRL.remove took it off the store"
    )
    # 2 messages x 2 recipients expected; m2 is not on u2's screen
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (4, 3)
    assert report.summary["drop"] == 1


def test_a_message_added_again_after_its_removal_is_delivered(history) -> None:
    t2 = _overwrite(history)
    # a second frame of m2 (say, after a reconnect) puts it back
    history.ev(2000, "CTRL.add", "client-u2", "u2", trace=t2, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert [k for k in history.kinds(report.findings) if k[0] == "drop"] == []
    assert report.summary["delivered"] == 4


def test_a_removal_on_one_device_is_that_devices_drop_only(history) -> None:
    # u2's tablet also got m2 and kept it: the phone's loss is reported for the phone, and
    # the recipient still has the message (delivered)
    t2 = _overwrite(history, device="client-u2")
    for hop in ("WS-RECV.receive", "REPO.add", "CTRL.add"):
        history.ev(1040, hop, "client-u2-tablet", "u2", trace=t2, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    drops = report.findings.filter(pl.col("kind") == "drop")
    assert history.kinds(drops) == [("drop", t2, "u2", "CTRL.add", "CTRL.add")]
    assert drops["source"].to_list() == ["client-u2"]
    assert report.summary["delivered"] == 4


def test_a_removal_on_one_device_allows_that_device_alone_to_add_again(history) -> None:
    # The phone's removal allows the phone a second CTRL.add of m2, not the tablet: the
    # tablet showing m2 twice is a duplicate there, whatever the phone did.
    t2 = _overwrite(history, device="client-u2")
    for hop in ("WS-RECV.receive", "REPO.add", "CTRL.add", "CTRL.add"):
        history.ev(1040, hop, "client-u2-tablet", "u2", trace=t2, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    found = report.findings.filter(pl.col("kind").is_in(["drop", "duplicate"]))
    assert history.kinds(found) == [
        ("drop", t2, "u2", "CTRL.add", "CTRL.add"),
        ("duplicate", t2, "u2", "CTRL.add", None),
    ]
    assert found["source"].to_list() == ["client-u2", "client-u2-tablet"]
    assert found.row(1, named=True)["detail"] == (
        "CTRL.add happened 3 times for recipient u2 (1 on client-u2, 2 on client-u2-tablet)"
    )
    # the phone adding m2 again after its removal: neither a duplicate nor a drop
    history.rows.clear()
    history.seq.clear()
    t2 = _overwrite(history, device="client-u2")
    for hop in ("WS-RECV.receive", "REPO.add", "CTRL.add"):
        history.ev(1040, hop, "client-u2-tablet", "u2", trace=t2, conv_id="c1")
    history.ev(2000, "CTRL.add", "client-u2", "u2", trace=t2, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert report.findings.filter(pl.col("kind").is_in(["drop", "duplicate"])).is_empty()


def test_a_message_shown_twice_before_its_removal_is_a_duplicate(history) -> None:
    # add, add, remove on one device: shown twice before anything took it off the store (the
    # removal allows an add after it, not one before it)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(100, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    history.ev(200, "CTRL.remove", "client-u2", "u2", trace=t1, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t1, "u2", "CTRL.add", "CTRL.add"),
        ("duplicate", t1, "u2", "CTRL.add", None),
    ]
    assert report.findings["detail"][1] == "CTRL.add happened 2 times for recipient u2"


def test_a_removal_without_ctrl_add_on_that_device_is_not_judged(history) -> None:
    # the sender's own message wiped from its screen, or one shown from an earlier page: no
    # CTRL.add of it on that device to undo, so nothing to say about a delivery
    history.message(1, "u1", ["u2"], t=0)
    history.ev(50, "CTRL.remove", "client-u1", "u1", trace=history.tid(1), conv_id="c1")
    history.ev(60, "CTRL.remove", "client-u2-tablet", "u2", trace=history.tid(1), conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert report.findings.is_empty()
    assert report.summary["delivered"] == 1


def test_a_removal_before_the_add_does_not_undo_it(history) -> None:
    history.ev(0, "CTRL.remove", "client-u2", "u2", trace=history.tid(1), conv_id="c1")
    history.message(1, "u1", ["u2"], t=5)
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def test_race_says_the_message_went_missing_when_it_was_removed(history) -> None:
    t2 = _overwrite(history)
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t2, "u2", "WS-RECV.receive", "CTRL.add")]
    assert got["detail"][0].endswith(
        "the message then went missing: reached CTRL.add, then CTRL.remove took it off the store"
    )


_MODEL = """
[roles]
send = "A.send"
final = "B.show"
{remove}

[[hops]]
id = "A.send"
scope = "message"
emitter = "sender"

[[hops]]
id = "B.show"
after = ["A.send"]
scope = "recipient"
recipient = "actor"
emitter = "recipient"
"""


def _model(tmp_path: Path, remove: str, text: str = _MODEL) -> Pipeline:
    path = tmp_path / "model.toml"
    path.write_text(text.format(remove=remove), encoding="utf-8")
    return load_pipeline(path)


def test_a_pipeline_names_its_own_remove_event(tmp_path: Path) -> None:
    p = _model(tmp_path, 'remove = "B.hide"')
    assert p.role("remove") == "B.hide"
    # not a hop: no path waits for it
    assert "B.hide" not in p.ids


def test_a_pipeline_without_a_remove_role_judges_no_removal(history, tmp_path: Path) -> None:
    p = _model(tmp_path, "")
    assert p.role("remove") is None
    history.ev(0, "A.send", "client-u1", "u1", trace=history.tid(1))
    history.ev(5, "B.show", "client-u2", "u2", trace=history.tid(1))
    history.ev(9, "CTRL.remove", "client-u2", "u2", trace=history.tid(1))
    history.tail()
    assert analyze(history.frame(), pipeline=p).findings.is_empty()


@pytest.mark.parametrize(
    ("remove", "message"),
    [
        ('remove = "B.show"', "[roles] remove: 'B.show' is a hop; a removal undoes one"),
        ('remove = "hide"', "[roles] remove: must be 'STAGE.action', got 'hide'"),
        # review 18a: one event cannot open and close a history load (or remove)
        (
            'remove = "B.hide"\nfetch_start = "R.load"\nfetch_end = "R.load"',
            "[roles]: 'fetch_start' and 'fetch_end' name one event, 'R.load'",
        ),
        (
            'remove = "B.hide"\nfetch_start = "B.hide"\nfetch_end = "R.done"',
            "[roles]: 'fetch_start' and 'remove' name one event, 'B.hide'",
        ),
        (
            'fetch_start = "B.show"\nfetch_end = "R.done"',
            "[roles] fetch_start: 'B.show' is a hop; a history load is none",
        ),
    ],
)
def test_a_bad_remove_role_is_named(tmp_path: Path, remove: str, message: str) -> None:
    with pytest.raises(PipelineError) as err:
        _model(tmp_path, remove)
    assert str(err.value).endswith(message)


def test_remove_needs_a_final_hop(tmp_path: Path) -> None:
    text = _MODEL.replace('final = "B.show"\n', "")
    with pytest.raises(PipelineError) as err:
        _model(tmp_path, 'remove = "B.hide"', text)
    assert str(err.value).endswith("[roles] remove: needs a 'final' role (the hop it undoes)")


def test_a_history_load_begun_after_the_removal_shows_it_again_still_a_drop(history):
    # the page of a fetch that starts after the removal was read after m2 was persisted: it
    # holds m2, which is on the screen again; it left the screen until then (a drop, as a
    # socket message dropped before CTRL.add and shown by the next page is)
    t2 = _overwrite(history)
    history.ev(1500, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(1600, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "CTRL.add", "CTRL.add"),
        ("race", t2, "u2", "WS-RECV.receive", "CTRL.add"),
    ]
    drop, race = report.findings["detail"]
    assert drop.endswith(
        "took the message off the store 55.0 ms later and only a later history load of the "
        "conversation showed it again"
    )
    assert race.endswith(
        "the message then went missing: reached CTRL.add, then CTRL.remove took it off the "
        "store until a later history load showed it"
    )
    assert report.summary["delivered"] == 3


def _still_off_the_screen(history, t2):
    history.tail()
    found = analyze(history.frame()).findings
    drops = found.filter(pl.col("kind") == "drop")
    assert history.kinds(drops) == [("drop", t2, "u2", "CTRL.add", "CTRL.add")]
    assert drops["detail"][0].endswith("later and nothing added it again")


@pytest.mark.parametrize("later_start", [False, True])
def test_a_history_load_begun_before_the_removal_does_not_show_it_again(history, later_start):
    # its page may have been read before m2 was persisted (in log order, its start comes
    # before the removal); ends close fetches in order, so with one more fetch begun after
    # the removal, one end closes the earlier fetch and that one is still in flight
    t2 = _overwrite(history, before_removal=[(1090, "REST.fetch_start")])
    if later_start:
        history.ev(1500, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(1600, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    _still_off_the_screen(history, t2)


@pytest.mark.parametrize(
    ("fetches", "why"),
    [
        # begun after it, never completed
        ([(1500, "REST.fetch_start")], "never ended"),
        # of another conversation
        ([(1500, "REST.fetch_start", "c9"), (1600, "REST.fetch_end", "c9")], "other conv"),
        # on another device of u2
        ([(1500, "REST.fetch_start", "c1", "client-u2-b"), (1600, "REST.fetch_end")], "device"),
    ],
)
def test_a_history_load_that_cannot_hold_the_message_does_not_show_it_again(history, fetches, why):
    t2 = _overwrite(history)
    for t, hop, *rest in fetches:
        conv, device = (*rest, "c1", "client-u2")[:2] if rest else ("c1", "client-u2")
        history.ev(t, hop, device, "u2", conv_id=conv)
    _still_off_the_screen(history, t2)


def test_the_timeline_shows_the_removal_after_the_recipients_hops(history):
    t2 = _overwrite(history)
    got = timeline(history.frame(), t2).filter(pl.col("recipient") == "u2")
    assert got.select("stage_action", "source", "line").rows() == [
        ("WS-BROADCAST.deliver", "server-1", 8),
        ("WS-RECV.receive", "client-u2", 5),
        ("REPO.add", "client-u2", 6),
        ("CTRL.add", "client-u2", 7),
        ("CTRL.remove", "client-u2", 8),
    ]
    assert got["latency_ms"][-1] == pytest.approx(55.0)


def test_without_seq_a_removal_logged_in_the_same_millisecond_still_follows_the_add(history):
    # legacy text logs: no seq, millisecond times; the line order is the log's order
    t2 = _overwrite(history)
    history.tail()
    rows = history.frame().collect()
    is_add = (
        (pl.col("trace_id") == t2)
        & (pl.col("source") == "client-u2")
        & (pl.col("stage") == "CTRL")
        & (pl.col("action") == "add")
    )
    t_add = rows.filter(is_add)["timestamp"][0]
    legacy = rows.with_columns(
        seq=pl.lit(None, dtype=pl.Int64),
        timestamp=pl.when(pl.col("action") == "remove")
        .then(pl.lit(t_add, dtype=rows.schema["timestamp"]))
        .otherwise(pl.col("timestamp")),
    )
    drops = analyze(legacy.lazy()).findings.filter(pl.col("kind") == "drop")
    assert history.kinds(drops) == [("drop", t2, "u2", "CTRL.add", "CTRL.add")]


# Found by a second reading: a removal is judged like any drop (grace, log gaps, expected
# recipients), and the other analyzers know that a removed message may come back.


def test_a_removal_the_logs_end_right_after_is_in_flight(history):
    t2 = _overwrite(history)  # the logs end 0.5 ms after the removal
    found = analyze(history.frame()).findings.filter(pl.col("kind") != "race")
    assert history.kinds(found) == [("in_flight", t2, "u2", "CTRL.add", "CTRL.add")]
    assert found["detail"][0] == (
        "recipient u2 on client-u2: reached CTRL.add, then CTRL.remove took the message off the "
        "store 55.0 ms later; client-u2's log ends 0.5 ms later, inside the 5000 ms grace window"
    )


def test_a_removal_where_the_recipients_log_lost_events_is_indeterminate(history):
    # client-u2 lost 5 events right after the removal: a CTRL.add that put it back may be
    # among them
    t2 = _overwrite(history)
    history.seq["client-u2"] += 5
    history.ev(1200, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found.filter(pl.col("kind") != "race")) == [
        ("log_gap", None, None, None, None)
    ]
    assert (
        "1 message path(s) indeterminate" in found.filter(pl.col("kind") == "log_gap")["detail"][0]
    )
    assert t2 in found["trace_id"].to_list()  # its race


def test_a_removal_by_a_recipient_the_broadcast_did_not_name_is_no_drop(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.shown(40, "client-u3", "u3", trace=t1)
    history.ev(60, "CTRL.remove", "client-u3", "u3", trace=t1, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert [k[:3] for k in history.kinds(report.findings)] == [("unexpected", t1, "u3")]
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (1, 1)


def test_add_remove_add_on_one_device_is_no_duplicate(history):
    t2 = _overwrite(history)
    history.ev(2000, "CTRL.add", "client-u2", "u2", trace=t2, conv_id="c1")
    history.tail()
    assert [k for k in history.kinds(analyze(history.frame()).findings) if k[0] != "race"] == []


def test_the_first_removal_after_the_add_is_the_one_that_took_it_off(history):
    t2 = _overwrite(history)
    history.ev(1300, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(5000, "CTRL.remove", "client-u2", "u2", trace=t2, conv_id="c1")
    history.ev(5001, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    drop = analyze(history.frame()).findings.filter(pl.col("kind") == "drop").row(0, named=True)
    assert "off the store 55.0 ms later" in drop["detail"]
    assert [e["line"] for e in drop["evidence"]] == [7, 8]


def test_conv_id_comes_from_the_message_when_the_recipients_lines_lack_it(history):
    _overwrite(history)
    history.ev(1500, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(1600, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    for row in history.rows:
        if row["source"] == "client-u2" and row["stage"] in ("WS-RECV", "REPO", "CTRL"):
            row["conv_id"] = None
    history.tail()
    drop = analyze(history.frame()).findings.filter(pl.col("kind") == "drop").row(0, named=True)
    assert drop["conv_id"] == "c1"
    assert drop["detail"].endswith("only a later history load of the conversation showed it again")


def test_timeline_measures_a_removal_from_that_devices_last_add(history):
    t2 = _overwrite(history)
    # the tablet's CTRL.add comes first in the table; a re-add and second removal on the phone
    tablet = [
        history.ev(1010 + k, hop, "client-u2-tablet", "u2", trace=t2, conv_id="c1")
        for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add"))
    ]
    history.rows = tablet + [r for r in history.rows if r not in tablet]
    history.ev(2000, "CTRL.add", "client-u2", "u2", trace=t2, conv_id="c1")
    history.ev(2100, "CTRL.remove", "client-u2", "u2", trace=t2, conv_id="c1")
    history.tail()
    got = timeline(history.frame(), t2).filter(pl.col("stage_action") == "CTRL.remove")
    assert got["latency_ms"].to_list() == pytest.approx([55.0, 100.0])


_PEER_MODEL = _MODEL.replace('recipient = "actor"', 'recipient = "peer"')


def test_a_peer_pipeline_takes_a_removal_logged_by_its_actor(history, tmp_path: Path):
    p = _model(tmp_path, 'remove = "B.hide"', _PEER_MODEL)
    t = history.tid(1)
    history.ev(0, "A.send", "client-u1", "u1", trace=t, conv_id="c1")
    history.ev(5, "B.show", "client-u2", "u2", trace=t, conv_id="c1", peer="u2")
    history.ev(9, "B.hide", "client-u2", "u2", trace=t, conv_id="c1")  # no peer on it
    history.tail()
    assert timeline(history.frame(), t, p).filter(pl.col("stage_action") == "B.hide")[
        "recipient"
    ].to_list() == ["u2"]
    found = analyze(history.frame(), pipeline=p).findings
    assert history.kinds(found) == [("drop", t, "u2", "B.show", "B.show")]


def test_a_removal_is_the_apps_own_loss_though_the_client_restarted(history) -> None:
    history.ev(-100, "TRACEKIT.heartbeat", "client-u2", "u2")
    t2 = _overwrite(history)
    history.seq["client-u2"] = 0
    history.ev(1500, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.tail()
    report = analyze(history.frame())
    drop = report.findings.filter(pl.col("kind") == "drop").row(0, named=True)
    assert (drop["trace_id"], drop["stage"]) == (t2, "CTRL.add")
    assert "took the message off the store" in drop["detail"]
    assert "restarted" not in drop["detail"]
