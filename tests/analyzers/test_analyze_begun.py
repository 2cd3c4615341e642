"""Logs that begin mid-traffic (rotated, cut, started late): a source whose first ``seq`` is
above 1 lost its beginning, a gap with no line before it (review 21d: 40% of the head cuts of
a clean history read as false drops)."""

from __future__ import annotations

import polars as pl
import pytest

from tracekit.analyzers import analyze, timeline
from tracekit.collectors import collect

_BEGUN = (
    "earlier event(s) are not in these logs (a log begun mid-traffic: rotated, cut or started late)"
)


def _from_one(history):
    """Every log counts from 1, as tracekit's emitter does (the helper counts from 0)."""
    for src in ("client-u1", "client-u2", "server-1"):
        history.seq[src] = 1


def _cut(history, source, n):
    """``source``'s log without its first ``n`` lines."""
    mine = [r for r in history.rows if r["source"] == source]
    for r in mine[:n]:
        history.rows.remove(r)
    return mine[n]


def test_a_path_whose_hop_the_lost_beginning_may_hold_is_undecided_not_a_drop(history):
    _from_one(history)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    # u2's log begins at m2's receive: m1's three lines (seqs 1-3) are not in it
    first = _cut(history, "client-u2", 3)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    gap = report.findings.row(0, named=True)
    assert gap["source"] == "client-u2"
    assert gap["detail"] == (
        f"the log begins at seq 4: 3 {_BEGUN}; 1 message path(s) indeterminate, not reported "
        f"as drops: {t1} (u2 at WS-RECV.receive)"
    )
    assert gap["evidence"] == [{"file": "client-u2.jsonl", "line": first["line"]}]
    # the timeline marks the path as a gap's, not as lost
    rows = timeline(history.frame(), t1).filter(pl.col("recipient") == "u2")
    assert rows.select("stage_action", "status").rows() == [
        ("WS-BROADCAST.deliver", "reached"),
        ("WS-RECV.receive", "in_log_gap"),
        ("REPO.add", "not_reached"),
        ("CTRL.add", "not_reached"),
    ]


def test_a_drop_after_the_log_began_is_still_a_drop(history):
    _from_one(history)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    t3 = history.message(3, "u1", ["u2"], t=5000, stop={"u2": "REPO.add"})
    history.tail()
    _cut(history, "client-u2", 3)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t3, "u2", "REPO.add", "WS-RECV.receive"),
        ("log_gap", None, None, None, None),
    ]
    assert report.findings["detail"][1].endswith(f"drops: {t1} (u2 at WS-RECV.receive)")


def test_a_log_from_seq_0_or_1_lost_nothing(history):
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "WS-RECV.receive"})
    history.tail()
    for start in (0, 1):  # (the helper counts from 0; tracekit from 1)
        for r in history.rows:
            r["seq"] += start
        assert history.kinds(analyze(history.frame()).findings) == [
            ("drop", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
        ]


def test_a_restarted_processes_later_run_is_no_lost_beginning(history):
    # u2's first run lost its beginning (from seq 200); its second begins at seq 3 (its first
    # two lines lost as the process started): one gap, the first run's; the message sent
    # while the process was down is a drop, not undecided
    _from_one(history)
    history.seq["client-u2"] = 200
    history.message(1, "u1", ["u2"], t=0)
    history.ev(1000, "TRACEKIT.heartbeat", "client-u2", "u2")
    t2 = history.message(2, "u1", ["u2"], t=2000, stop={"u2": "WS-RECV.receive"})
    history.seq["client-u2"] = 3
    history.ev(3000, "TRACEKIT.configured", "client-u2", "u2")
    history.message(3, "u1", ["u2"], t=4000)
    history.tail()
    report = analyze(history.frame())
    assert [r["source"] for r in report.summary["restarts"]] == ["client-u2"]
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("log_gap", None, None, None, None),
    ]
    assert report.findings["detail"][1] == f"the log begins at seq 200: 199 {_BEGUN}"


def test_lines_without_seq_above_the_first_are_not_counted_lost(history):
    _from_one(history)
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    for r in u2[:2]:  # two events that lost their seq, then seq 3: only seq 1 and 2 unread
        r["seq"] = None
    assert analyze(history.frame()).findings.is_empty()
    u2[0]["seq"] = 1  # ... and one more line: none missing
    u2[1]["seq"] = 2
    history.rows.remove(u2[0])  # seq 1 lost, the line after it seq-less: 1 missing
    u2[1]["seq"] = None
    found = analyze(history.frame()).findings
    assert found.select("kind", "source").rows() == [("log_gap", "client-u2")]
    assert found["detail"][0].startswith(f"the log begins at seq 3: 1 {_BEGUN}")


def test_malformed_lines_above_the_first_event_may_be_the_lost_beginning(history, tmp_path):
    _from_one(history)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    logs, _ = history.write(tmp_path)
    u2 = logs / "client-u2.jsonl"
    lines = u2.read_text().splitlines(keepends=True)
    # the log's first two lines unreadable (written half), the third cut away
    u2.write_text('{"timestamp": "2026-02-09T12:\n' + "garbage\n" + "".join(lines[3:]))
    read = collect([logs])
    found = analyze(read.events, inputs=read.inputs.to_dict()).findings
    assert found.select("kind", "source").rows() == [("log_gap", "client-u2")]
    assert found["detail"][0] == (
        f"the log begins at seq 4: 3 earlier event(s) missing; 2 line(s) above it could not be "
        f"read ({u2}: line 1, 2, malformed): 2 may be among them, the other 1 not in these "
        f"logs; 1 message path(s) indeterminate, not reported as drops: {t1} (u2 at "
        "WS-RECV.receive)"
    )


def test_a_log_that_begins_with_a_dropped_marker_is_one_gap(history):
    # the emitter lost events 1-4 and says so on its first line (TRACEKIT.dropped at seq 5):
    # one loss, said once with its count (session 22's review: a second log_gap for the marker)
    history.seq["client-u2"] = 5
    history.ev(100, "TRACEKIT.dropped", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=200)
    history.tail()
    report = analyze(history.frame())
    assert report.findings.select("kind", "source", "detail").rows() == [
        ("log_gap", "client-u2", f"the log begins at seq 5: 4 {_BEGUN}")
    ]


def test_a_restart_after_a_lost_beginning_is_read_as_one(history):
    # u2's log begins at seq 4 (m1's lines lost), then its app restarts: seq back to 1, which
    # no line repeats (the first run's 1-3 are the lost ones) and only 5 below the line before
    # it. Read as one run, m3 and m4 were stored "before" m2 (false reorders) and no restart
    _from_one(history)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.seq["client-u2"] = 1  # restarted
    t3 = history.message(3, "u1", ["u2"], t=10_000)
    history.message(4, "u1", ["u2"], t=11_000)
    history.tail()
    first = _cut(history, "client-u2", 3)
    report = analyze(history.frame())
    assert report.findings.select("kind", "source", "detail").rows() == [
        (
            "log_gap",
            "client-u2",
            f"the log begins at seq 4: 3 {_BEGUN}; 1 message path(s) indeterminate, not "
            f"reported as drops: {t1} (u2 at WS-RECV.receive)",
        )
    ]
    again = next(r for r in history.rows if r["trace_id"] == t3 and r["source"] == "client-u2")
    assert (first["seq"], again["seq"]) == (4, 1)
    assert report.summary["restarts"] == [
        {"source": "client-u2", "file": "client-u2.jsonl", "line": again["line"], "mended": True}
    ]


def test_a_second_device_whose_log_lost_its_beginning_ran_before_it(history):
    # the server delivered m1 to both of u2's devices; the tablet's log begins later, at
    # seq 5, 20 s on (its first four lines, m1's among them, lost). Its log running only from its
    # first line, m1's second delivery had one device to go to: a false duplicate
    _from_one(history)
    tablet = "client-u2-tablet"
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(26, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, conv_id="c1", peer="u2")
    t2 = history.message(2, "u1", ["u2"], t=20_000)
    history.ev(
        20_026, "WS-BROADCAST.deliver", "server-1", "server", trace=t2, conv_id="c1", peer="u2"
    )
    history.seq[tablet] = 5
    history.shown(20_030, tablet, "u2", trace=t2)
    history.tail()
    report = analyze(history.frame())
    assert report.findings.select("kind", "source", "detail").rows() == [
        ("log_gap", tablet, f"the log begins at seq 5: 4 {_BEGUN}")
    ]


@pytest.mark.parametrize("server_actor", [False, True], ids=["acts_for_sender", "names_itself"])
def test_a_message_sent_before_its_senders_log_began_is_in_flight(history, server_actor):
    # u1's log lost its beginning, m2's send, request and response among it; the other logs
    # began 20 s earlier. Sent before u1's log began, not "never sent": in flight, as a
    # message sent before all the logs is (session 22's review: unexpected, "indeterminate").
    # A server that names itself on its lines (tracekit's chat server: actor "server") names
    # no sender: any client log that began after the message may hold its send (review 23b)
    _from_one(history)
    history.seq["client-u3"] = 1
    history.message(1, "u3", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=20_000)
    history.ev(20_100, "TRACEKIT.heartbeat", "client-u1", "u1")
    history.message(3, "u3", ["u1"], t=25_000)  # (u1's log shows it in c1 after the cut)
    history.tail()
    if server_actor:
        for r in history.rows:
            if r["source"] == "server-1":
                r["actor"] = "server"
    first = _cut(history, "client-u1", 3)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, None, "CTRL.send", "REST.persist"),
        ("log_gap", None, None, None, None),
    ]
    persist = next(r for r in history.rows if r["event"] == "REST.persist" and r["trace_id"] == t2)
    assert report.findings.row(0, named=True)["detail"] == (
        "CTRL.send not seen: the message's first event (REST.persist) comes 90.0 ms before "
        "client-u1's log begins at seq 4 (its beginning lost), so it was probably sent before it"
    )
    assert [(e["file"], e["line"]) for e in report.findings["evidence"][0]] == [
        ("server-1.jsonl", persist["line"]),
        ("client-u1.jsonl", first["line"]),
    ]


def test_a_message_whose_persist_the_servers_lost_beginning_holds_is_in_flight(history):
    # u1's log is not among the inputs; the server's begins at m2's broadcast (m1's lines
    # and m2's persist lost). Nothing of m2's sender to look at: the server's lost beginning
    # holds its persist, so it was sent before that log began (session 22's review: an
    # unexpected message with no word of the gap)
    _from_one(history)
    history.seq["client-u3"] = 1
    history.message(1, "u3", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=20_000)
    history.tail()
    history.rows = [r for r in history.rows if r["source"] != "client-u1"]
    first = _cut(history, "server-1", 4)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, None, "CTRL.send", "WS-BROADCAST.start"),
        ("log_gap", None, None, None, None),
    ]
    assert report.findings.row(0, named=True)["detail"] == (
        "CTRL.send not seen: the message's first event (WS-BROADCAST.start) comes 0.0 ms "
        "before server-1's log begins at seq 5 (its beginning lost), so it was probably sent "
        "before it"
    )
    assert first["event"] == "WS-BROADCAST.start"


def test_a_sender_known_only_by_the_servers_lines_is_no_recipient_of_their_message(history):
    # m2 (u2's, a legacy broadcast with no recipients list) was sent before u2's log began:
    # its send, request and response are in u2's lost beginning. The server's persist names
    # u2 (the server acts for the sender); read as sender unknown, conversation membership
    # expected u2 among m2's recipients: a false drop to its own sender
    _from_one(history)
    for user in ("u3",):
        history.seq[f"client-{user}"] = 1
    history.message(1, "u1", ["u2", "u3"], t=0)
    t2 = history.message(2, "u2", None, t=20_000)
    for k, user in enumerate(("u1", "u3")):
        history.ev(20_025 + k, "WS-BROADCAST.deliver", "server-1", "server", trace=t2, peer=user)
        history.shown(20_030 + k * 5, f"client-{user}", user, trace=t2)
    history.tail()
    mine = [r for r in history.rows if r["source"] == "client-u2"]
    history.rows = [r for r in history.rows if r not in mine[:6]]  # m1's 3 lines, m2's 3
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("in_flight", t2, None, "CTRL.send", "REST.persist"),
        ("log_gap", None, None, None, None),
    ]
    assert report.summary["recipients_from"] == {"broadcast": 1, "membership": 1}


def test_a_restart_after_a_beginning_that_lost_one_line_is_found(history):
    # review 23: a log beginning at seq 2 (a combined file's head cut took each source's
    # first line) restarts at seq 1, only 1 below its least: read as lines out of order at
    # the log's start, no restart, and false reorders. Past the log's first lines it is one
    _from_one(history)
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.seq["client-u2"] = 1  # restarted
    t3 = history.message(3, "u1", ["u2"], t=10_000)
    history.message(4, "u1", ["u2"], t=11_000)
    history.tail()
    _cut(history, "client-u2", 1)
    report = analyze(history.frame())
    assert report.findings.select("kind", "source", "detail").rows() == [
        ("log_gap", "client-u2", f"the log begins at seq 2: 1 {_BEGUN}")
    ]
    again = next(r for r in history.rows if r["trace_id"] == t3 and r["source"] == "client-u2")
    assert report.summary["restarts"] == [
        {"source": "client-u2", "file": "client-u2.jsonl", "line": again["line"], "mended": True}
    ]


def test_a_send_no_line_names_the_sender_of_is_not_put_in_another_conversations_log(history):
    # the server names itself on its lines; m2 (c1) has no client line at all, and u1's log
    # lost nothing. u9's log lost its beginning after m2, but u9 talks in c9 only: m2's send
    # is not guessed into it (a never-sent message stays unexpected)
    _from_one(history)
    history.seq["client-u9"] = 1
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(
        2, "u1", ["u2"], t=20_000, skip_message=("CTRL.send", "REST.request", "REST.response")
    )
    history.message(3, "u8", ["u9"], t=21_000, conv="c9")
    history.tail()
    for r in history.rows:
        if r["source"] == "server-1":
            r["actor"] = "server"
    for r in [r for r in history.rows if r["source"] == "client-u9"]:
        r["seq"] += 5  # (its first 5 lost)
    report = analyze(history.frame())
    assert [k for k in history.kinds(report.findings) if k[0] != "log_gap"] == [
        ("unexpected", t2, None, "REST.persist", None)
    ]


def test_a_message_whose_sender_is_not_logged_expects_none_but_the_members_seen_with_it(history):
    # review 26a: m1 begun before the logs (only its delivery to u2 logged, no list, no
    # sender line): membership expected every member of c1, its unknown sender u1 among
    # them, a delivery counted as missing with no finding to say so
    for src, who in (("server-1", "server"), ("client-u1", "u1"), ("client-u2", "u2")):
        history.ev(0, "TRACEKIT.heartbeat", src, who)
    t1 = history.tid(1)
    history.ev(50, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, conv_id="c1", peer="u2")
    history.message(2, "u1", ["u2"], t=1000)  # (u1 and u2, members of c1)
    history.message(3, "u2", ["u1"], t=2000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t1, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
        ("in_flight", t1, None, "CTRL.send", "WS-BROADCAST.deliver"),
    ]
    summary = report.summary  # m1 to u2 (not made), m2 to u2, m3 to u1
    assert (summary["deliveries_expected"], summary["delivered"]) == (3, 2)


def test_a_send_logged_naming_no_one_is_the_user_its_client_logs_for(history):
    # review 26b: m4's client lines name no actor (a legacy log), the server names itself:
    # no sender. Membership expected none (a real drop to u3 unsaid), before that every
    # member, u1 too (a false drop to its own sender). u1's client logs for u1 alone.
    history.message(1, "u1", None, t=0)
    history.shown(30, "client-u2", "u2", trace=history.tid(1))
    history.shown(30, "client-u3", "u3", trace=history.tid(1))
    history.message(2, "u2", None, t=100)
    history.shown(130, "client-u1", "u1", trace=history.tid(2))
    history.shown(130, "client-u3", "u3", trace=history.tid(2))
    t4 = history.tid(4)
    at = {"trace": t4, "conv_id": "c1"}
    history.ev(1000, "CTRL.send", "client-u1", None, **at)
    history.ev(1005, "REST.request", "client-u1", None, **at)
    history.ev(1010, "REST.persist", "server-1", "server", msg_id="m4", **at)
    history.ev(1015, "REST.response", "client-u1", None, msg_id="m4", **at)
    history.ev(1020, "WS-BROADCAST.start", "server-1", "server", **at)
    history.ev(1025, "WS-BROADCAST.deliver", "server-1", "server", peer="u2", **at)
    history.shown(1030, "client-u2", "u2", trace=t4)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t4, "u3", "WS-BROADCAST.deliver", "WS-BROADCAST.start")
    ]
    assert (report.summary["deliveries_expected"], report.summary["delivered"]) == (6, 5)
