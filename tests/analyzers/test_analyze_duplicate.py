"""Duplicates and unexpected events."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tracekit.analyzers import analyze, find_duplicates, find_in_flight, find_unexpected


def test_hop_seen_twice_for_one_recipient(history):
    t1 = history.message(1, "u1", ["u2", "u3"], t=0)
    history.ev(40, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("duplicate", t1, "u2", "CTRL.add", None)]
    row = report.findings.row(0, named=True)
    assert row["detail"] == "CTRL.add happened 2 times for recipient u2"
    assert row["evidence"] == [
        {"file": "client-u2.jsonl", "line": 3},
        {"file": "client-u2.jsonl", "line": 4},
    ]


def test_retried_request_is_not_a_duplicate(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(2, "REST.request", "client-u1", "u1", trace=t1, conv_id="c1")
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


@pytest.mark.parametrize("render_first", [False, True])
def test_two_canonical_msg_ids_for_one_trace(history, render_first):
    if render_first:  # an event that is no hop logged the second id first: not its evidence
        history.ev(-5, "UI.render", "client-u1", "u1", trace=history.tid(1), msg_id="m1-again")
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(11, "REST.persist", "server-1", "u1", trace=t1, conv_id="c1", msg_id="m1-again")
    history.tail()
    got = find_duplicates(history.frame()).collect()
    assert history.kinds(got) == [("duplicate", t1, None, "REST.persist", None)]
    assert got["detail"][0] == "one trace id got two canonical msg_ids: m1 and m1-again"
    # every persist line is evidence, the one that assigned the second id too
    assert got["evidence"][0].to_list() == [
        {"file": "server-1.jsonl", "line": 1},
        {"file": "server-1.jsonl", "line": 4},
    ]


def test_one_msg_id_for_two_traces_is_one_message_traced_twice(history):
    # the client re-sent m1 under a new trace id; the server's idempotency gave it m1 again
    # and broadcast it again: u2 shows one message twice, under two traces
    t1 = history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    for row in history.rows:
        if row["trace_id"] == t2 and row.get("msg_id"):
            row["msg_id"] = "m1"
    # the same id from another server (a test run of its own) or in another conversation is
    # another message
    history.message(3, "u1", ["u2"], t=2000, server="server-9")
    history.message(4, "u1", ["u2"], t=3000, conv="c2")
    for row in history.rows:
        if row["trace_id"] in (history.tid(3), history.tid(4)) and row.get("msg_id"):
            row["msg_id"] = "m1"
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("duplicate", t2, None, "REST.persist", None)]
    dup = report.findings.row(0, named=True)
    assert dup["detail"] == (
        f"msg_id m1 was persisted for trace {t1} before: one message traced twice, which its "
        "recipients may show twice"
    )
    assert dup["source"] == "server-1" and dup["conv_id"] == "c1"
    assert dup["evidence"] == [
        {"file": "server-1.jsonl", "line": 1},
        {"file": "server-1.jsonl", "line": 4},  # its persist, the first's on line 1
    ]


def test_one_msg_id_for_two_traces_is_found_where_no_conversation_is_logged(history):
    # review 25c: a server that never logs conv_id lost the check (every key had to be named)
    t1 = history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    for row in history.rows:
        row.pop("conv_id", None)
        if row["trace_id"] == t2 and row.get("msg_id"):
            row["msg_id"] = "m1"
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("duplicate", t2, None, "REST.persist", None)]
    assert found["detail"][0].startswith(f"msg_id m1 was persisted for trace {t1} before")


def test_three_canonical_msg_ids_for_one_trace(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    for k, again in enumerate(("m1-b", "m1-c")):
        history.ev(11 + k, "REST.persist", "server-1", "u1", trace=t1, conv_id="c1", msg_id=again)
    got = find_duplicates(history.frame()).collect()
    assert history.kinds(got) == [("duplicate", t1, None, "REST.persist", None)]
    assert got["detail"][0] == "one trace id got 3 canonical msg_ids, from m1 to m1-c"
    assert [e["line"] for e in got["evidence"][0]] == [1, 4, 5]


def test_a_second_msg_id_on_another_hop_is_cited(history):
    # the response carries an id the server never persisted: its line is the evidence
    t1 = history.message(1, "u1", ["u2"], t=0)
    for r in history.rows:
        if r["action"] == "response":
            r["msg_id"] = "m1-other"
    history.tail()
    got = find_duplicates(history.frame()).collect()
    assert got["detail"].to_list() == ["one trace id got two canonical msg_ids: m1 and m1-other"]
    assert got["evidence"][0].to_list() == [
        {"file": "client-u1.jsonl", "line": 3},
        {"file": "server-1.jsonl", "line": 1},
    ]
    assert history.kinds(got) == [("duplicate", t1, None, "REST.persist", None)]


def test_broadcast_twice_is_a_duplicate(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(21, "WS-BROADCAST.start", "server-1", "u1", trace=t1, recipients=["u2"])
    history.tail()
    assert history.kinds(analyze(history.frame()).findings) == [
        ("duplicate", t1, None, "WS-BROADCAST.start", None)
    ]


def test_events_without_a_send(history):
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=["CTRL.send"])
    history.tail()
    got = find_unexpected(history.frame()).collect()
    assert history.kinds(got) == [("unexpected", t2, None, "REST.request", None)]
    assert got["detail"][0].startswith("8 event(s) for a message whose CTRL.send was never seen")


@pytest.mark.parametrize("grace", [None, timedelta(0)])
def test_message_begun_before_the_logs_is_in_flight(history, grace):
    # `--grace 0s` too (review 16e: it was unexpected): the logs being final does not make
    # a send take no time
    t1 = history.message(1, "u1", ["u2"], t=0, skip_message=["CTRL.send", "REST.request"])
    history.tail()
    report = analyze(history.frame(), grace=grace)
    assert history.kinds(report.findings) == [("in_flight", t1, None, "CTRL.send", "REST.persist")]
    assert report.findings["detail"][0] == (
        "CTRL.send not seen: the message's first event (REST.persist) comes 0.0 ms after the "
        "logs begin, within the 5000 ms a hop may take, so it was probably sent before them"
    )
    assert history.kinds(find_in_flight(history.frame(), grace=grace).collect()) == (
        history.kinds(report.findings)
    )


@pytest.mark.parametrize("server_first", [False, True])
def test_a_message_without_a_send_points_at_its_first_hop(history, server_first):
    # the send is lost; the first hop seen is the client's REST.request, whichever file is read
    # first (the server's persist comes later in the pipeline and in time)
    history.message(1, "u1", ["u2"], t=0)
    t2, at = history.tid(2), {"trace": history.tid(2), "conv_id": "c1"}
    history.ev(10_000, "REST.request", "client-u1", "u1", **at)
    history.ev(10_005, "REST.persist", "server-1", "u1", msg_id="m2", **at)
    history.ev(10_010, "REST.response", "client-u1", "u1", msg_id="m2", **at)
    history.tail()
    if server_first:
        history.rows.sort(key=lambda r: r["source"] != "server-1")
    found = find_unexpected(history.frame()).collect()
    assert history.kinds(found) == [("unexpected", t2, None, "REST.request", None)]
    row = found.row(0, named=True)
    assert (row["source"], row["evidence"]) == (
        "client-u1",
        [{"file": "client-u1.jsonl", "line": 4}],
    )
    assert (
        row["detail"]
        == "3 event(s) for a message whose CTRL.send was never seen (first: REST.request)"
    )


def test_delivery_to_someone_the_broadcast_did_not_name(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    stray = history.ev(25, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u9")
    history.ev(30, "WS-RECV.receive", "client-u9", "u9", trace=t1)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("unexpected", t1, "u9", "WS-BROADCAST.deliver", None)
    ]
    assert report.summary["unexpected"] == 1
    # the evidence is the first hop the stray delivery reached, looked up by its row
    assert report.findings.row(0, named=True)["evidence"] == [
        {"file": "server-1.jsonl", "line": stray["line"]}
    ]


def test_history_load_of_an_unnamed_user_is_not_unexpected(history):
    # u3 was offline at broadcast time (not named) and got the message from a history load.
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(200, "REST.fetch_start", "client-u3", "u3", conv_id="c1")
    history.ev(220, "REST.fetch_end", "client-u3", "u3", conv_id="c1")
    history.ev(221, "REPO.add", "client-u3", "u3", trace=t1, conv_id="c1")
    history.ev(222, "CTRL.add", "client-u3", "u3", trace=t1, conv_id="c1")
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def test_two_devices_of_one_recipient_are_not_duplicates(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    # u2's second device (its own log) got it too, through a second socket write
    history.ev(26, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u2")
    history.shown(31, "client-u2-tablet", "u2", trace=t1)
    history.tail()
    assert analyze(history.frame()).findings.is_empty()
    # a third write to the same two devices is one too many
    history.ev(27, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u2")
    assert history.kinds(analyze(history.frame()).findings) == [
        ("duplicate", t1, "u2", "WS-BROADCAST.deliver", None)
    ]


@pytest.mark.parametrize("tablet_first", [False, True])
def test_a_duplicate_on_one_of_two_devices_names_that_device(history, tablet_first):
    # the phone shows the message twice, the tablet once: the phone is the source, whichever
    # log is read first
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(26, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u2")
    history.ev(40, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    history.shown(31, "client-u2-tablet", "u2", trace=t1)
    history.tail()
    if tablet_first:
        history.rows.sort(key=lambda r: r["source"] != "client-u2-tablet")
    found = find_duplicates(history.frame()).collect()
    assert history.kinds(found) == [("duplicate", t1, "u2", "CTRL.add", None)]
    assert found["source"][0] == "client-u2"
    assert found["detail"][0] == (
        "CTRL.add happened 3 times for recipient u2 (2 on client-u2, 1 on client-u2-tablet)"
    )


def _tablet_gets(history, trace, t):
    history.ev(t, "WS-BROADCAST.deliver", "server-1", "server", trace=trace, peer="u2")
    history.shown(t + 5, "client-u2-tablet", "u2", trace=trace)


def test_one_write_per_known_device_is_no_duplicate_when_a_device_logs_nothing(history):
    # u2 has two devices (both got message 1). Message 2 is written to both sockets, and
    # only the tablet logs it (the phone is offline): two writes for two devices.
    t1 = history.message(1, "u1", ["u2"], t=0)
    _tablet_gets(history, t1, 26)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    _tablet_gets(history, t2, 1026)
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def test_one_write_per_known_device_is_no_duplicate_when_no_device_logs_it(history):
    # the same two writes for message 2, and neither device logs it: a loss, not a duplicate
    t1 = history.message(1, "u1", ["u2"], t=0)
    _tablet_gets(history, t1, 26)
    t2 = history.message(2, "u1", ["u2"], t=1000, stop={"u2": "WS-RECV.receive"})
    history.ev(1026, "WS-BROADCAST.deliver", "server-1", "server", trace=t2, peer="u2")
    history.tail()
    assert find_duplicates(history.frame()).collect().is_empty()


def test_a_device_known_only_by_its_history_loads_counts(history):
    # the tablet never logged a message hop, only a history load: still a device of u2
    history.ev(0, "REST.fetch_start", "client-u2-tablet", "u2", conv_id="c1")
    history.ev(1, "REST.fetch_end", "client-u2-tablet", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=10)
    history.ev(36, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u2")
    assert find_duplicates(history.frame()).collect().is_empty()
    # a third write is one more than u2's two devices
    history.ev(37, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u2")
    got = find_duplicates(history.frame()).collect()
    assert history.kinds(got) == [("duplicate", t1, "u2", "WS-BROADCAST.deliver", None)]
    assert got.row(0, named=True)["source"] == "server-1"
    assert got["detail"][0] == (
        "WS-BROADCAST.deliver happened 3 times for recipient u2; processes of u2's apps "
        "logging then: 2 (the server writes once to each connected device: is a device's "
        "log missing from the inputs?)"
    )
    assert [e["line"] for e in got["evidence"][0]] == [3, 4, 5]


def test_a_send_lost_in_the_senders_log_gap_is_marked_indeterminate(history):
    # client-u1's seq jumps over message 2's CTRL.send, just before its REST.request: the
    # send may have been logged and lost, so "never seen" is indeterminate. Still reported
    # (nothing else names the message), marked, with the gap's last line as evidence.
    history.message(1, "u1", ["u2"], t=0)
    history.seq["client-u1"] += 1
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=["CTRL.send"])
    history.tail()
    got = find_unexpected(history.frame()).collect()
    assert history.kinds(got) == [("unexpected", t2, None, "REST.request", None)]
    row = got.row(0, named=True)
    assert row["source"] == "client-u1"
    assert row["detail"] == (
        "8 event(s) for a message whose CTRL.send was never seen (first: REST.request); "
        "indeterminate: the sender's log client-u1 lost events around it"
    )
    assert row["evidence"] == [
        {"file": "client-u1.jsonl", "line": 3},
        {"file": "client-u1.jsonl", "line": 5},
    ]


def test_a_gap_in_the_senders_log_long_before_the_message_leaves_it_unexpected(history):
    history.message(1, "u1", ["u2"], t=0)
    history.seq["client-u1"] += 1  # lost between message 1 and a heartbeat at 100 ms
    history.ev(100, "TRACEKIT.heartbeat", "client-u1", "u1")
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=["CTRL.send"])
    history.tail()
    got = find_unexpected(history.frame()).collect()
    assert history.kinds(got) == [("unexpected", t2, None, "REST.request", None)]
    assert got["detail"][0].endswith("was never seen (first: REST.request)")


def test_a_send_lost_before_a_long_stage_of_the_senders_log_is_indeterminate(history):
    # The same gap, but the line after it is a stage stamped at 100 ms that ended at 9.1 s:
    # the lines lost before it were written by then, so the send may be among them.
    history.message(1, "u1", ["u2"], t=0)
    history.seq["client-u1"] += 1
    history.ev(100, "CTRL.sync", "client-u1", "u1", duration_ms=9000.0)
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=["CTRL.send"])
    history.tail()
    got = find_unexpected(history.frame()).collect()
    assert history.kinds(got) == [("unexpected", t2, None, "REST.request", None)]
    assert got["detail"][0].endswith(
        "was never seen (first: REST.request); "
        "indeterminate: the sender's log client-u1 lost events around it"
    )


@pytest.mark.parametrize("send_took", [16.0, None])
def test_a_send_lost_after_the_request_it_wraps(history, send_took):
    # tracekit writes CTRL.send when the send ends, after the REST.request and REST.response
    # lines it wraps: u1's log kept message 2's request and response, then lost its send.
    # The gap begins after the message's first line; the send, stamped before it, may be in
    # it if a send lasts as long as u1's sends do (16 ms for message 1's: review 16a). A log
    # whose lines carry no lengths was written as stamped: no line after the response is
    # stamped before the request.
    t1 = history.message(1, "u1", ["u2"], t=0)
    send = next(r for r in history.rows if r["trace_id"] == t1 and r["stage"] == "CTRL")
    send["duration_ms"] = send_took
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=["CTRL.send"])
    history.seq["client-u1"] += 1
    history.tail()
    got = find_unexpected(history.frame()).collect()
    assert history.kinds(got) == [("unexpected", t2, None, "REST.request", None)]
    said = "; indeterminate: the sender's log client-u1 lost events around it"
    assert got["detail"][0] == (
        "8 event(s) for a message whose CTRL.send was never seen (first: REST.request)"
        + (said if send_took else "")
    )
    # the same with `--grace 0s` (the logs are final): a send still takes time
    final = find_unexpected(history.frame(), grace=timedelta(0)).collect()
    assert final["detail"].to_list() == got["detail"].to_list()


def test_a_gap_in_another_users_log_leaves_it_unexpected(history):
    history.message(1, "u1", ["u2"], t=0)
    history.seq["client-u2"] += 1  # the recipient's log, not the sender's
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=["CTRL.send"])
    history.tail()
    got = find_unexpected(history.frame()).collect()
    assert history.kinds(got) == [("unexpected", t2, None, "REST.request", None)]
    assert got["detail"][0].endswith("was never seen (first: REST.request)")


def test_a_send_lost_in_a_gap_of_the_senders_log_when_none_of_its_lines_survived(history):
    # message 2 lost every sender line (send, request, response) in one gap of client-u1:
    # the sender (u1, the actor of the server's persist) has a gap there
    history.message(1, "u1", ["u2"], t=0)
    history.seq["client-u1"] += 3
    history.message(3, "u1", ["u2"], t=20_000)
    sender_lines = ["CTRL.send", "REST.request", "REST.response"]
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=sender_lines)
    history.tail()
    got = find_unexpected(history.frame()).collect()
    assert history.kinds(got) == [("unexpected", t2, None, "REST.persist", None)]
    assert got["detail"][0].endswith(
        "; indeterminate: the sender's log client-u1 lost events around it"
    )
    assert got["evidence"][0].to_list() == [
        {"file": "client-u1.jsonl", "line": 3},
        {"file": "server-1.jsonl", "line": 7},
    ]


def test_a_restarted_client_is_not_a_second_device_for_writes_before_it_started(history):
    # u2's app restarted (a new process, a new source) long after message 1: two writes to u2
    # at message 1's time are one too many, though the logs show u2 with two sources
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(26, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u2")
    history.ev(20_000, "REST.fetch_start", "client-u2-restarted", "u2", conv_id="c1")
    history.ev(20_010, "REST.fetch_end", "client-u2-restarted", "u2", conv_id="c1")
    history.tail()
    got = find_duplicates(history.frame()).collect()
    assert history.kinds(got) == [("duplicate", t1, "u2", "WS-BROADCAST.deliver", None)]
    assert got["detail"][0] == (
        "WS-BROADCAST.deliver happened 2 times for recipient u2; processes of u2's apps "
        "logging then: 1 (the server writes once to each connected device: is a device's "
        "log missing from the inputs?)"
    )


def test_a_message_known_only_by_an_event_naming_no_recipient_is_named_by_that_event(history):
    # a deliver without its peer counts for no recipient's path: the finding names the event
    # itself as the first one seen (it read "first: null", with no stage, before)
    t1 = history.message(1, "u1", ["u2"], t=0)
    t2 = history.tid(2)
    history.ev(10_000, "WS-BROADCAST.deliver", "server-1", "server", trace=t2, conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("unexpected", t2, None, "WS-BROADCAST.deliver", None)
    ]
    assert report.findings.row(0, named=True)["detail"] == (
        "1 event(s) for a message whose CTRL.send was never seen (first: WS-BROADCAST.deliver)"
    )
    assert t1 not in report.findings["trace_id"].to_list()


def test_a_repeated_hop_is_first_in_its_logs_order_not_the_order_read(history):
    # u2 showed m1 at +40 ms and again 3 s later; its log was read newest part first (two
    # directories given the other way round): the first occurrence is the one with the lower
    # seq. Taken from the row read first, end to end was 3 s and an SLO breach.
    t1 = history.message(1, "u1", ["u2"], t=0)
    again = history.ev(3000, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    history.tail()
    history.rows.remove(again)
    history.rows.insert(0, again)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("duplicate", t1, "u2", "CTRL.add", None)]
    assert report.latency["end_to_end"]["max_ms"] == 40.0


def _to_two_devices(history, n: int, t: float, devices: list[str]) -> str:
    """Message ``n`` from u1 to u2, written by the server once to each of u2's ``devices``,
    each of which shows it."""
    trace = history.tid(n)
    history.ev(t, "CTRL.send", "client-u1", "u1", trace=trace, conv_id="c1")
    history.ev(t + 5, "REST.request", "client-u1", "u1", trace=trace, conv_id="c1")
    history.ev(t + 10, "REST.persist", "server-1", "u1", trace=trace, conv_id="c1", msg_id=f"m{n}")
    history.ev(t + 15, "REST.response", "client-u1", "u1", trace=trace, conv_id="c1")
    history.ev(t + 20, "WS-BROADCAST.start", "server-1", "u1", trace=trace, conv_id="c1",
               recipients=["u2"])  # fmt: skip
    for k, _ in enumerate(devices):
        history.ev(t + 25 + k * 0.5, "WS-BROADCAST.deliver", "server-1", "server", trace=trace,
                   conv_id="c1", peer="u2")  # fmt: skip
    for device in devices:
        history.shown(t + 30, device, "u2", trace=trace)
    return trace


@pytest.mark.parametrize("grace", [None, timedelta(0), timedelta(milliseconds=3)])
@pytest.mark.parametrize("layout", ["phone gone before", "tablet begins at its receive"])
def test_one_write_to_each_device_is_no_duplicate_whatever_the_grace(history, grace, layout):
    # A device counts for a server write when its log runs then, within the time a hop may
    # take: the phone's app gone 2 ms before the server wrote m2 to both sockets, the
    # tablet's log beginning with its own receive of m2 5 ms after. With `--grace 0s` they
    # did not count (review 16e), and the second write read as a duplicate.
    if layout == "phone gone before":
        _to_two_devices(history, 1, 0, ["client-u2", "client-u2-tablet"])
        history.ev(1023, "TRACEKIT.heartbeat", "client-u2", "u2")  # the phone's last line
        t2 = _to_two_devices(history, 2, 1000, ["client-u2-tablet"])
        history.tail(sources=["client-u1", "client-u2-tablet", "server-1"])
    else:
        history.ev(-100, "TRACEKIT.heartbeat", "client-u2", "u2")
        _to_two_devices(history, 1, 0, ["client-u2"])
        t2 = _to_two_devices(history, 2, 1000, ["client-u2", "client-u2-tablet"])
        history.tail()
    assert analyze(history.frame(), grace=grace).findings.is_empty()
    # three writes to the two devices that ran then (the phone's log ended within the time a
    # hop may take) are one duplicate, of m2 for u2
    for k in range(2 if layout == "phone gone before" else 1):
        history.ev(1027 + k, "WS-BROADCAST.deliver", "server-1", "server", trace=t2,
                   conv_id="c1", peer="u2")  # fmt: skip
    assert history.kinds(analyze(history.frame(), grace=grace).findings) == [
        ("duplicate", t2, "u2", "WS-BROADCAST.deliver", None)
    ]


@pytest.mark.parametrize("how", ["redelivered", "history load", "shown twice"])
def test_a_client_restarted_under_its_name_is_a_process_of_its_own(history, how):
    # review 25c: the new process of an app that names itself showed m1 again (redelivered
    # after it reconnected, or by its history load): four duplicates, and none where the new
    # process had a name of its own. A process that shows it twice still does.
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(1000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] = 0  # restarted
    if how == "redelivered":
        history.ev(3000, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u2")
    hops = ["WS-RECV.receive", "REPO.add", "CTRL.add"] if how == "redelivered" else ["CTRL.add"]
    if how == "history load":
        history.ev(2990, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
        history.ev(2999, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    for k, hop in enumerate(hops * (2 if how == "shown twice" else 1)):
        history.ev(3005 + k, hop, "client-u2", "u2", trace=t1, conv_id="c1")
    restart = history.rows[0]["timestamp"] + timedelta(seconds=2)
    for r in history.rows:  # (the new run's lines follow the old run's in its file)
        if r["source"] == "client-u2" and r["timestamp"] > restart:
            r["line"] += 100
    history.tail()
    report = analyze(history.frame())
    assert [r["source"] for r in report.summary["restarts"]] == ["client-u2"]
    want = [("duplicate", t1, "u2", "CTRL.add", None)] if how == "shown twice" else []
    assert history.kinds(report.findings) == want


def test_a_double_write_to_a_client_just_before_it_restarted_is_a_duplicate(history):
    # session 27's fuzzing: the server wrote m1 twice to u2's app, which logged one receive
    # and, 2 s later, restarted under its name; both runs' logs ran within the time a hop
    # may take of the writes, so two "devices" allowed two writes. The new run began after
    # the old one's last line, so it took neither: a duplicate. (One write to each run is
    # none: the test above, "redelivered".)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(25.3, "WS-BROADCAST.deliver", "server-1", "server", trace=t1, peer="u2")
    history.ev(1000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] = 0  # restarted
    history.ev(3000, "TRACEKIT.configured", "client-u2", "u2")
    history.tail()
    report = analyze(history.frame())
    assert [r["source"] for r in report.summary["restarts"]] == ["client-u2"]
    assert history.kinds(report.findings) == [("duplicate", t1, "u2", "WS-BROADCAST.deliver", None)]


def test_a_message_put_back_then_shown_by_a_restarted_client_is_shown_once_a_run(history):
    # review 25c: removals count per process too: add, remove, add in the old run, add in
    # the new one read as "add, add" (shown twice)
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(100, "CTRL.remove", "client-u2", "u2", trace=t1, conv_id="c1")
    history.ev(200, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    history.ev(1000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.seq["client-u2"] = 0  # restarted
    history.ev(2990, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(2999, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.ev(3005, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    for r in history.rows[-3:]:
        r["line"] += 100
    t2 = history.message(2, "u1", ["u3"], t=5000, stop={"u3": "CTRL.add"})  # (one drop)
    history.tail()
    report = analyze(history.frame())
    assert [r["source"] for r in report.summary["restarts"]] == ["client-u2"]
    assert history.kinds(report.findings) == [("drop", t2, "u3", "CTRL.add", "REPO.add")]


def test_a_message_begun_near_the_logs_end_is_judged_at_every_offset_the_pairs_allow(history):
    # review 26a: u2's phone only receives and runs 3 s ahead: taken as in sync, the logs
    # read as ending 3 s later, and a message whose send is not logged yet, broadcast 3 s
    # before their true end, was `unexpected` while its delivery to u2 was in flight
    ahead = {"client-u2": 3000.0}
    history.message(1, "u1", ["u2"], t=0, offsets=ahead)
    unsent = ["CTRL.send", "REST.request", "REST.persist", "REST.response"]
    t2 = history.message(
        2, "u1", ["u2"], t=16_975, skip_message=unsent, stop={"u2": "WS-RECV.receive"}
    )
    for src in sorted({r["source"] for r in history.rows}):
        user = src.removeprefix("client-") if src.startswith("client-") else "server"
        history.ev(20_000 + ahead.get(src, 0.0), "TRACEKIT.heartbeat", src, user)
    found = analyze(history.frame()).findings
    found = found.filter(found["trace_id"] == t2)
    assert history.kinds(found) == [
        ("in_flight", t2, None, "CTRL.send", "WS-BROADCAST.start"),
        ("in_flight", t2, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver"),
    ]
