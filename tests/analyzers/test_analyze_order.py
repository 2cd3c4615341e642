"""Reorders (store order vs persist order, by seq within one log) and REST/WS races."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.analyzers import analyze, find_races, find_reorders


def _swap_last_two(history, source, hop="CTRL.add"):
    rows = [
        r for r in history.rows if r["source"] == source and f"{r['stage']}.{r['action']}" == hop
    ]
    a, b = rows[-2], rows[-1]
    a["seq"], b["seq"] = b["seq"], a["seq"]
    a["line"], b["line"] = b["line"], a["line"]


def test_store_applies_two_messages_in_the_other_order(history):
    t1 = history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u3", ["u2"], t=1000)
    _swap_last_two(history, "client-u2")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("reorder", t1, "u2", "CTRL.add", None)]
    assert report.findings["detail"][0] == (
        f"recipient u2 stored this message after {t2} although the server persisted it first"
    )


def test_timestamps_across_hosts_do_not_make_a_reorder(history):
    # u2's clock is 900 ms behind: raw timestamps of its adds interleave with the server's
    # persists in another order, but its own log order is the persist order.
    off = {"client-u2": -900.0}
    history.message(1, "u1", ["u2"], t=0, offsets=off)
    history.message(2, "u1", ["u2"], t=100, offsets=off)
    history.message(3, "u1", ["u2"], t=200, offsets=off)
    history.tail()
    assert find_reorders(history.frame()).collect().is_empty()


def test_reorders_are_per_conversation(history):
    history.message(1, "u1", ["u2"], conv="c1", t=0)
    history.message(2, "u1", ["u2"], conv="c2", t=1000)
    _swap_last_two(history, "client-u2")  # different conversations: no order to keep
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def _fetch(history, user, t0, t1, conv="c1"):
    history.ev(t0, "REST.fetch_start", f"client-{user}", user, conv_id=conv)
    history.ev(t1, "REST.fetch_end", f"client-{user}", user, conv_id=conv)


def test_seed_bug_race_then_drop(history):
    history.message(1, "u1", ["u1", "u2"], t=0)
    history.ev(1000, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t2 = history.message(2, "u1", ["u1", "u2"], t=1005, stop={"u2": "CTRL.add"})
    history.ev(1100, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t2, "u2", "CTRL.add", "REPO.add"),
        ("race", t2, "u2", "WS-RECV.receive", "REPO.add"),
    ]
    race = report.findings.row(1, named=True)
    assert race["detail"] == (
        "WS-RECV.receive for conversation c1 arrived on client-u2 while a REST history fetch "
        "of it was in flight; the message then went missing: last reached REPO.add, never "
        "reached CTRL.add"
    )
    assert [e["line"] for e in race["evidence"]] == [4, 5, 7]


def test_a_race_tells_what_became_of_the_message_on_that_device(history):
    # The phone loads c1's history, receives m1 during it and never stores it; the tablet
    # shows m1. The race is the phone's, and so is its outcome: missing after the receive
    # (as the phone's drop says), not "reached CTRL.add" as the tablet did.
    t1 = history.tid(1)
    at = {"trace": t1, "conv_id": "c1"}
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.message(1, "u1", ["u2"], t=5, stop={"u2": "REPO.add"})
    history.ev(100, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
        history.ev(40 + k, hop, "client-u2-tablet", "u2", **at)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t1, "u2", "REPO.add", "WS-RECV.receive"),
        ("race", t1, "u2", "WS-RECV.receive", "WS-RECV.receive"),
    ]
    assert report.findings.get_column("source").to_list() == ["client-u2", "client-u2"]
    assert report.findings.row(1, named=True)["detail"].endswith(
        "the message then went missing: last reached WS-RECV.receive, never reached CTRL.add"
    )


def test_race_where_the_message_still_arrived(history):
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5)
    got = find_races(history.frame()).collect()  # the fetch never ends
    assert history.kinds(got) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    # how long it had been open (the receive came at 35 ms) tells a hung fetch from an end
    # that was not logged
    assert got["detail"][0].endswith(
        "in flight (no end logged; it began 35.0 ms before the receive); the message then "
        "reached CTRL.add"
    )


_RACED = (
    "WS-RECV.receive for conversation c1 arrived on client-u2 while a REST history fetch of it "
    "was in flight; "
)


def test_a_raced_message_shown_only_by_a_later_history_load_went_missing(history):
    # Review 25b: the seed bug, then the user refreshes and the second load stores m1 (its
    # lines logged with the trace): "the message then reached CTRL.add" read as harmless
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5, stop={"u2": "REPO.add"})
    history.ev(100, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.ev(5000, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    for k, hop in enumerate(("REPO.add", "CTRL.add")):
        history.ev(5010 + k, hop, "client-u2", "u2", trace=t1, conv_id="c1")
    history.ev(5020, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    assert got["detail"][0] == _RACED + (
        "the message then went missing until a later history load showed it (it reached "
        "CTRL.add only after that load began)"
    )
    # the fetch it raced (start, end), the receive, and the load that showed it
    assert [e["line"] for e in got["evidence"][0]] == [1, 2, 3, 4]


def test_a_raced_message_whose_own_path_went_on_before_a_later_load_reached_it(history):
    # review 25e: its REPO.add before the second load began, its CTRL.add just after: the
    # socket's own path, not the load's ("went missing until a later history load")
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5, stop={"u2": "CTRL.add"})  # receive 35, add 40
    history.ev(41, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.ev(42, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(43, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    history.ev(80, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    got = find_races(history.frame()).collect()
    assert got["detail"].to_list() == [_RACED + "the message then reached CTRL.add"]


def test_a_redelivery_of_a_message_shown_before_says_so(history):
    # review 25b: stored before the fetch, delivered again during it: "then reached"
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.ev(100, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(105, "WS-RECV.receive", "client-u2", "u2", trace=t1, conv_id="c1")
    history.ev(200, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    got = find_races(history.frame()).collect()
    assert got["detail"].to_list() == [
        _RACED + "the message had reached CTRL.add on that client before this receive"
    ]


@pytest.mark.parametrize("lost", [False, True])
def test_a_race_says_what_the_drop_analysis_says_of_its_path(history, lost):
    # review 25b: the race said "went missing" of a path the drops held in flight (the logs
    # end inside the grace window) or undecided (a log gap where its store would be)
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5, stop={"u2": "REPO.add"})
    history.ev(100, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    if lost:
        history.seq["client-u2"] += 2
        history.ev(150, "TRACEKIT.heartbeat", "client-u2", "u2")
        history.tail()
    found = analyze(history.frame()).findings
    races = found.filter(found["kind"] == "race")
    assert history.kinds(races) == [("race", t1, "u2", "WS-RECV.receive", "WS-RECV.receive")]
    said = (
        "last reached WS-RECV.receive; whether it then reached CTRL.add is not known: events "
        "the log lost may hold it"
        if lost
        else "the message had not reached CTRL.add there when the logs end (last reached "
        "WS-RECV.receive): in flight, not yet a drop"
    )
    assert races["detail"].to_list() == [_RACED + said]
    assert sorted(found["kind"]) == sorted(["race", "log_gap" if lost else "in_flight"])


def _one_process(history, source):
    """Every client line logged by one process (a load generator running every user)."""
    clients = {r["source"] for r in history.rows if r["source"].startswith("client-")}
    for k, r in enumerate(r for r in history.rows if r["source"] in clients | {source}):
        r.update(source=source, file=f"{source}.jsonl", seq=k, line=k + 1)


@pytest.mark.parametrize("fetcher", ["u3", "u2", None, "web"])
def test_in_a_process_logging_several_users_a_fetch_is_its_users(history, fetcher):
    # review 25b: u3's history load of c1 made u2's receive of m1 a race (the fetches were
    # keyed by source and conversation); a fetch line naming no user is the process's, and
    # so is one naming no user of it (25e: "web", the app's service name, tracekit's default
    # actor: its loads were no one's, every race lost)
    history.ev(0, "REST.fetch_start", "client-u2", fetcher, conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5)
    history.ev(100, "REST.fetch_end", "client-u2", fetcher, conv_id="c1")
    history.message(2, "u1", ["u3"], t=1000)  # (u3, a user of the process too)
    # u4, another, only loads history (review 25f: it made the process's loads everyone's)
    history.ev(2000, "REST.fetch_start", "client-u2", "u4", conv_id="c2")
    history.ev(2010, "REST.fetch_end", "client-u2", "u4", conv_id="c2")
    _one_process(history, "loadgen-1")
    history.tail()
    got = find_races(history.frame()).collect()
    raced = [] if fetcher == "u3" else [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    assert history.kinds(got) == raced


def test_a_fetch_end_naming_no_conversation_ends_the_fetch_before_it(history):
    # review 25b: left out, c1's fetch never ended: m2, received long after, was a race
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5)
    history.ev(100, "REST.fetch_end", "client-u2", "u2")
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    assert got["detail"][0] == _RACED + "the message then reached CTRL.add"


@pytest.mark.parametrize("who", ["u2", None])
def test_a_fetch_end_naming_no_conversation_ends_the_oldest_fetch_open(history, who):
    # review 25e: two loads open (c1's, then c2's), an end naming neither took the line
    # before it's conversation (c2): c1's load never ended, m2 (long after) read as a race,
    # and c2's load ended before m3 came in during it. First in, first out: c1's ends.
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(1, "REST.fetch_start", "client-u2", "u2", conv_id="c2")
    history.ev(100, "REST.fetch_end", "client-u2", who)
    history.message(2, "u1", ["u2"], t=1000)
    t3 = history.message(3, "u1", ["u2"], t=1100, conv="c2")
    history.ev(2000, "REST.fetch_end", "client-u2", "u2", conv_id="c2")
    history.tail()
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t3, "u2", "WS-RECV.receive", "CTRL.add")]


def test_a_fetch_end_naming_its_user_and_no_conversation_ends_that_users_oldest(history):
    # one process logging two users' loads: u3's load of c1 is older than u2's of c2, and
    # u2's end naming no conversation ends u2's (c2): m1 of c2, long after, is no race
    history.ev(0, "REST.fetch_start", "client-u2", "u3", conv_id="c1")
    history.ev(1, "REST.fetch_start", "client-u2", "u2", conv_id="c2")
    history.ev(100, "REST.fetch_end", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=1000, conv="c2")
    t2 = history.message(2, "u1", ["u3"], t=1100)  # during u3's load, still open
    history.ev(2000, "REST.fetch_end", "client-u2", "u3", conv_id="c1")
    _one_process(history, "loadgen-1")
    history.tail()
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t2, "u3", "WS-RECV.receive", "CTRL.add")]


def test_a_resend_broadcast_again_is_judged_as_a_message_of_its_own(history):
    # review 26b: a re-send (m1 again, a new trace) the server broadcast again is two copies
    # sent; u2's app let the second go after its receive (in a history load): whether it
    # deduplicated it or lost it, the logs do not say. Judged as its own (a drop, the race
    # saying so), the duplicate naming the two traces; not "resent" (its first trace's
    # delivery excused a second message given the same msg_id, review 26b)
    history.message(1, "u1", ["u2"], t=0)
    history.ev(1000, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t2 = history.message(2, "u1", ["u2"], t=1005, stop={"u2": "REPO.add"})
    for row in history.rows:
        if row["trace_id"] == t2 and row["event"] == "REST.persist":
            row["msg_id"] = "m1"
    history.ev(1100, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [
        ("drop", t2, "u2", "REPO.add", "WS-RECV.receive"),
        ("duplicate", t2, None, "REST.persist", None),
        ("race", t2, "u2", "WS-RECV.receive", "WS-RECV.receive"),
    ]
    assert found["detail"][2] == _RACED + (
        "the message then went missing: last reached WS-RECV.receive, never reached CTRL.add"
    )


def test_a_fetch_end_naming_its_conversation_ends_its_own_users_load(history):
    # review 26b: one process logs u3's and u2's loads of c1; u2's end named c1 and took
    # u3's (the oldest of c1), and u3's end naming none found nothing of u3's open: every
    # later receive of c1 by u3 a race. Only m3, received inside u3's later load, is one.
    history.ev(0, "REST.fetch_start", "client-u2", "u3", conv_id="c1")
    history.ev(1, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(50, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.ev(100, "REST.fetch_end", "client-u2", "u3")
    history.message(1, "u1", ["u2", "u3"], t=1000)
    history.ev(3000, "REST.fetch_start", "client-u2", "u3", conv_id="c1")
    t3 = history.message(3, "u1", ["u3"], t=3005)
    history.ev(3100, "REST.fetch_end", "client-u2", "u3", conv_id="c1")
    _one_process(history, "loadgen-1")
    history.tail()
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t3, "u3", "WS-RECV.receive", "CTRL.add")]


def test_a_fetch_end_naming_a_user_ends_a_load_kept_per_conversation(history):
    # review 26b: the start names no user, so the client's loads are kept per conversation;
    # its end naming u2 and no conversation found no load of u2's open: m1 a false race
    history.ev(0, "REST.fetch_start", "client-u2", None, conv_id="c1")
    history.ev(100, "REST.fetch_end", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=1000)
    history.ev(3000, "REST.fetch_start", "client-u2", None, conv_id="c1")
    t3 = history.message(3, "u1", ["u2"], t=3005)
    history.ev(3100, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t3, "u2", "WS-RECV.receive", "CTRL.add")]


def _persisted(history, n, server, t, *, ahead=0.0, up=5.0, down=5.0):
    """Message ``n`` from u1, persisted by ``server`` at true time ``t`` (its clock ``ahead``
    ms; ``up``/``down``: the request's and the response's way, ms)."""
    tr, at = history.tid(n), {"trace": history.tid(n), "conv_id": "c1"}
    history.ev(t - up, "CTRL.send", "client-u1", "u1", **at)
    history.ev(t - up, "REST.request", "client-u1", "u1", **at)
    history.ev(t + ahead, "REST.persist", server, "u1", msg_id=f"m{n}", **at)
    history.ev(t + down, "REST.response", "client-u1", "u1", **at)
    history.ev(t + 1 + ahead, "WS-BROADCAST.start", server, "u1", recipients=["u2"], **at)
    history.ev(t + 2 + ahead, "WS-BROADCAST.deliver", server, "server", peer="u2", **at)
    return tr


def _stored(history, *stores):
    for trace, t in stores:
        for hop in ("WS-RECV.receive", "REPO.add", "CTRL.add"):
            history.ev(t, hop, "client-u2", "u2", trace=trace, conv_id="c1")


def test_two_servers_persists_closer_than_their_clocks_are_known_are_no_reorder(history):
    # review 25b: m1 persisted on server-1 at 1000 ms, m2 on server-2 at 1002 (its clock
    # 300 ms ahead, estimated 304 +- 10 from an asymmetric exchange): stored m1 then m2, the
    # true order, read as a reorder on the corrected times
    m1 = _persisted(history, 1, "server-1", 1000)
    m2 = _persisted(history, 2, "server-2", 1002, ahead=300, up=9, down=1)
    m3 = _persisted(history, 3, "server-1", 900)  # stored last: a reorder for certain
    _stored(history, (m1, 1010), (m2, 1012), (m3, 1014))
    history.tail()
    got = find_reorders(history.frame()).collect()
    assert history.kinds(got) == [("reorder", m3, "u2", "CTRL.add", None)]
    assert got["detail"][0] == (
        f"recipient u2 stored this message after {m1} although the server persisted it first"
    )


def test_two_servers_persists_far_apart_are_a_reorder_that_names_them(history):
    m1 = _persisted(history, 1, "server-1", 1000)
    m2 = _persisted(history, 2, "server-2", 1100, ahead=300)
    _stored(history, (m2, 1110), (m1, 1120))
    history.tail()
    got = find_reorders(history.frame()).collect()
    assert history.kinds(got) == [("reorder", m1, "u2", "CTRL.add", None)]
    assert got["detail"][0] == (
        f"recipient u2 stored this message after {m2} although server-1 persisted it first, "
        "100.0 ms before server-2 persisted that one (corrected clocks)"
    )


def test_a_late_store_whose_lead_is_uncertain_is_judged_by_a_certain_one(history):
    # x and w persisted by server-2 in that order, z by server-1 1 ms after x (its order
    # against x not known on the clocks): stored w, z, x, x is late after w, not after z
    x = _persisted(history, 1, "server-2", 1049, ahead=300)
    w = _persisted(history, 2, "server-2", 1049.5, ahead=300)
    z = _persisted(history, 3, "server-1", 1050)
    _stored(history, (w, 1060), (z, 1061), (x, 1062))
    history.tail()
    got = find_reorders(history.frame()).collect()
    assert history.kinds(got) == [("reorder", x, "u2", "CTRL.add", None)]
    assert got["detail"][0] == (
        f"recipient u2 stored this message after {w} although the server persisted it first"
    )


def test_one_servers_persists_in_one_millisecond_keep_its_order_beside_another_server(history):
    # review 25b: with m3 persisted by server-2, the conversation was ranked by time: m1 and
    # m2, persisted by server-1 in one millisecond, tied, and m2 stored first went unsaid
    m1 = _persisted(history, 1, "server-1", 1000)
    m2 = _persisted(history, 2, "server-1", 1000)
    m3 = _persisted(history, 3, "server-2", 2000)
    _stored(history, (m2, 1010), (m1, 1011), (m3, 2010))
    history.tail()
    got = find_reorders(history.frame()).collect()
    assert history.kinds(got) == [("reorder", m1, "u2", "CTRL.add", None)]
    assert got["detail"][0] == (
        f"recipient u2 stored this message after {m2} although the server persisted it first"
    )


def test_a_receive_stamped_before_the_fetch_it_raced_reads_at_the_receive(history):
    # u2 logs the fetch's start (stamped 32 ms) before the receive (a stage line, stamped
    # with its start, 30 ms): the race is decided in log order, and the age is not negative
    history.ev(32, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.tail()
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    assert "(no end logged; it began at the receive)" in got["detail"][0]


@pytest.mark.parametrize(
    ("start_ms", "began"), [(34.951, "at the receive"), (34.94, "0.1 ms before the receive")]
)
def test_a_fetch_begun_under_0_05_ms_before_the_receive_began_at_it(history, start_ms, began):
    # the receive is at 35 ms: 49 us after the fetch's start reads 0.0 ms, so "at the
    # receive"; 60 us reads 0.1 ms
    history.ev(start_ms, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.message(1, "u1", ["u2"], t=5)
    history.tail()
    got = find_races(history.frame()).collect()
    assert f"(no end logged; it began {began});" in got["detail"][0]


def test_a_fetch_whose_end_may_be_in_a_log_gap_says_so(history):
    # u2's log lost 2 events between the fetch's start and the receive: its end may be one
    # of them (then no race). The race is still reported, with what the log cannot tell.
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.seq["client-u2"] += 2
    t1 = history.message(1, "u1", ["u2"], t=5)
    history.tail()
    got = find_races(history.frame()).collect()
    assert history.kinds(got) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    assert got["detail"][0] == (
        "WS-RECV.receive for conversation c1 arrived on client-u2 while a REST history fetch "
        "of it was in flight (no end logged; it began 35.0 ms before the receive: it never "
        "finished, or its end is among the 2 event(s) the log lost before the receive, which "
        "would make this no race); the message then reached CTRL.add"
    )
    # a gap after the receive changes nothing: the fetch was open when it arrived
    history.rows.clear()
    history.seq.clear()
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.message(1, "u1", ["u2"], t=5)
    history.seq["client-u2"] += 2
    history.tail()
    got = find_races(history.frame()).collect()
    assert got["detail"][0].endswith(
        "(no end logged; it began 35.0 ms before the receive); the message then reached CTRL.add"
    )


def test_a_race_in_a_pipeline_without_a_final_hop_says_how_far_it_got(history):
    from tracekit.analyzers._pipeline import parse_pipeline

    p = parse_pipeline(
        {
            "roles": {
                "send": "CTRL.send",
                "receive": "WS-RECV.receive",
                "fetch_start": "REST.fetch_start",
                "fetch_end": "REST.fetch_end",
            },
            "hops": [
                {"id": "CTRL.send"},
                {"id": "WS-RECV.receive", "after": ["CTRL.send"], "scope": "recipient",
                 "recipient": "actor"},
                {"id": "REPO.add", "after": ["WS-RECV.receive"], "scope": "recipient",
                 "recipient": "actor"},
            ],
        }
    )  # fmt: skip
    t1, at = history.tid(1), {"conv_id": "c1"}
    history.ev(0, "REST.fetch_start", "client-u2", "u2", **at)
    history.ev(5, "CTRL.send", "client-u1", "u1", trace=t1, **at)
    history.ev(10, "WS-RECV.receive", "client-u2", "u2", trace=t1, **at)
    history.ev(50, "REST.fetch_end", "client-u2", "u2", **at)
    history.tail()
    got = find_races(history.frame(), pipeline=p).collect()
    assert history.kinds(got) == [("race", t1, "u2", "WS-RECV.receive", "WS-RECV.receive")]
    # it read "the message then reached None"
    assert got["detail"][0].endswith("; on that client it then got as far as WS-RECV.receive")


def test_fetch_of_another_conversation_or_client_is_no_race(history):
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c9")
    history.ev(0, "REST.fetch_start", "client-u3", "u3", conv_id="c1")
    history.message(1, "u1", ["u2"], t=5)
    history.ev(200, "REST.fetch_end", "client-u2", "u2", conv_id="c9")
    history.ev(200, "REST.fetch_end", "client-u3", "u3", conv_id="c1")
    history.tail()
    assert analyze(history.frame()).findings.is_empty()


def test_a_race_on_two_devices_is_one_race_per_device_the_same_every_run(history):
    # u2's phone and tablet both start a history load on their log's first line and both
    # receive the message during it: a race on each client (DESIGN.md: "on that client"),
    # in the same order every run. (It was one per message and recipient, on the device
    # first by name; ties in fetch position once picked either device, run by run.)
    for device in ("client-u2-b", "client-u2"):
        history.ev(0, "REST.fetch_start", device, "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5)
    for hop in ("WS-RECV.receive", "REPO.add", "CTRL.add"):
        history.ev(40, hop, "client-u2-b", "u2", trace=t1, conv_id="c1")
    runs = [find_races(history.frame()).collect() for _ in range(8)]
    assert history.kinds(runs[0]) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")] * 2
    assert runs[0]["source"].to_list() == ["client-u2", "client-u2-b"]
    assert all(run.equals(runs[0]) for run in runs)


def test_a_receive_during_the_second_of_two_overlapping_fetches_is_a_race(history):
    # client-u2: fetch_start(A) fetch_start(B) fetch_end receive add add ... fetch_end. The
    # first end closes one fetch; the other is still in flight at the receive. Unlabeled ends
    # pair with starts in order, so the fetch named is B (line 2), closed by the last end.
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(1, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(2, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5)
    history.ev(200, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    race = found.row(0, named=True)
    assert (race["source"], race["conv_id"]) == ("client-u2", "c1")
    assert race["detail"] == (
        "WS-RECV.receive for conversation c1 arrived on client-u2 while a REST history fetch "
        "of it was in flight; the message then reached CTRL.add"
    )
    assert race["evidence"] == [
        {"file": "client-u2.jsonl", "line": 2},
        {"file": "client-u2.jsonl", "line": 4},
        {"file": "client-u2.jsonl", "line": 7},
    ]


def test_an_end_without_its_start_closes_no_later_fetch(history):
    # The first end belongs to a fetch begun before the logs: it must not cancel the fetch
    # started after it, which is in flight at the receive. A fetch that ended before the
    # receive of message 2 makes no race.
    history.ev(0, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.ev(1, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5)
    history.ev(200, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.message(2, "u1", ["u2"], t=1000)
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    assert found["evidence"][0].to_list() == [
        {"file": "client-u2.jsonl", "line": 2},
        {"file": "client-u2.jsonl", "line": 3},
        {"file": "client-u2.jsonl", "line": 6},
    ]


def test_a_reorder_on_a_recipients_second_device(history):
    # u2's phone stores m1 then m2; its tablet (a log read after the phone's) stores m2 then
    # m1: a reorder in the tablet's own log, although the pair's first store is in order.
    t1 = history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=1000)
    for trace, t in ((t1, 26), (t2, 1026)):
        history.ev(t, "WS-BROADCAST.deliver", "server-1", "server", trace=trace, peer="u2")
    for trace in (t2, t1):
        history.shown(1031, "client-u2-tablet", "u2", trace=trace)
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("reorder", t1, "u2", "CTRL.add", None)]
    row = found.row(0, named=True)
    assert (row["source"], row["conv_id"]) == ("client-u2-tablet", "c1")
    assert row["detail"] == (
        f"recipient u2 stored this message after {t2} although the server persisted it first"
    )
    assert row["evidence"] == [
        {"file": "client-u2-tablet.jsonl", "line": 3},
        {"file": "client-u2-tablet.jsonl", "line": 6},
    ]


def test_a_store_repeated_on_one_device_is_a_duplicate_not_a_reorder(history):
    # the device stores m1, m2, then m1 again: only its first store of m1 has a place in order
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    history.ev(1040, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("duplicate", t1, "u2", "CTRL.add", None)]


def _without_seq(history, tie_with: str, trace: str):
    """The history as a legacy log would have it: no seq, and the fetch event named logged in
    the same millisecond as u2's receive of ``trace`` (its line order unchanged)."""
    import polars as pl

    rows = history.frame().collect()
    is_recv = (pl.col("trace_id") == trace) & (pl.col("action") == "receive")
    t_recv = rows.filter(is_recv)["timestamp"][0]
    return rows.with_columns(
        seq=pl.lit(None, dtype=pl.Int64),
        timestamp=pl.when(pl.col("action") == tie_with)
        .then(pl.lit(t_recv, dtype=rows.schema["timestamp"]))
        .otherwise(pl.col("timestamp")),
    ).lazy()


def test_without_seq_a_fetch_ended_on_the_line_before_a_receive_in_the_same_ms_is_no_race(
    history,
):
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(1, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5)
    history.tail()
    assert find_races(_without_seq(history, "fetch_end", t1)).collect().is_empty()


def test_without_seq_a_fetch_started_on_the_line_before_a_receive_in_the_same_ms_is_a_race(
    history,
):
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=5)
    history.ev(90, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    got = find_races(_without_seq(history, "fetch_start", t1)).collect()
    assert history.kinds(got) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]


def test_a_reorder_logged_in_two_files_cites_the_first_read(history):
    """Review 8e: the same store events read from two copies of a log (ties in position and
    rank) are ordered by the row read first, so the evidence is the same every run. (The run
    to run change showed on 5k-event files read in blocks; this small case states the rule.)"""
    t1 = history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u3", ["u2"], t=1000)
    _swap_last_two(history, "client-u2")
    history.tail()
    copies = [dict(r, file="copy.jsonl") for r in history.rows if r["source"] == "client-u2"]
    history.rows.extend(copies)
    for _ in range(5):
        found = find_reorders(history.frame()).collect()
        assert history.kinds(found) == [("reorder", t1, "u2", "CTRL.add", None)]
        assert [e["file"] for e in found["evidence"][0]] == ["client-u2.jsonl"] * 2, t2


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(ops=st.lists(st.sampled_from(["start", "end", "message"]), max_size=12))
def test_a_receive_is_a_race_exactly_while_a_fetch_of_its_conversation_is_open(history, ops):
    # One client's log: fetch starts and ends (unlabelled: an end closes one open fetch, or
    # nothing) and messages received, in any order. The model: count the open fetches in log
    # order; a receive races while the count is above zero (receives before the first start,
    # after the last end, or with a fetch that never ends included).
    history = type(history)()  # a fresh one each example
    history.ev(0, "TRACEKIT.heartbeat", "client-u2", "u2")  # the log begins before any op
    open_now, want = 0, []
    for k, op in enumerate(ops):
        t = 100.0 * (k + 1)
        if op == "message":
            trace = history.message(k, "u1", ["u2"], t=t)
            if open_now:
                want.append(("race", trace, "u2", "WS-RECV.receive", "CTRL.add"))
        elif op == "start":
            history.ev(t, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
            open_now += 1
        else:
            history.ev(t, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
            open_now = max(0, open_now - 1)
    history.tail()
    assert history.kinds(find_races(history.frame()).collect()) == sorted(want)


def _restarted_u2(history, runs: int = 2) -> list[list[str]]:
    """u2's app logs three messages a run, each run's counter from 0 under the same source
    name (a restarted process), each run opening with a history fetch."""
    traces = []
    for run in range(runs):
        history.seq["client-u2"] = 0
        t0 = 10_000.0 * run
        history.ev(t0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
        history.ev(t0 + 1, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
        traces.append(
            [history.message(10 * run + n, "u1", ["u2"], t=t0 + 100 * n) for n in (1, 2, 3)]
        )
    return traces


def _each_log_apart(history) -> None:
    """The rows as log files read one after another (each source's lines together), not
    interleaved by time: the seq then goes back between two adjacent lines at a restart."""
    history.rows.sort(key=lambda r: r["file"])  # stable: each log keeps its order


def _restart(history, source="client-u2"):
    return {"source": source, "file": f"{source}.jsonl", "line": 1, "mended": True}


@pytest.mark.parametrize("apart", [False, True], ids=["interleaved", "log_by_log"])
def test_a_restarted_process_under_the_same_name_is_read_run_by_run(history, apart):
    # u2's seq starts over at each run: compared as one log, the store order across runs made
    # reorders that are not. The runs stay one source (one clock, one device: a run renamed
    # into a source of its own lost both, review 13); positions hold the run, so each run
    # comes after the one before. Found before the paths are built where two lines of the
    # log are adjacent, else with the per-source stats (the paths then built again).
    _restarted_u2(history, runs=3)
    history.tail()
    if apart:
        _each_log_apart(history)
    report = analyze(history.frame())
    assert report.findings.is_empty()
    # the second and third runs' first lines (History numbers lines by seq)
    assert report.summary["restarts"] == [_restart(history), _restart(history)]
    assert {c["source"] for c in report.clock} == {"client-u1", "client-u2", "server-1"}


def test_a_restart_is_read_run_by_run_beside_a_log_without_seq(history):
    # a legacy text log (no seq) analysed with the JSON ones: the seq-less lines take their
    # time rank, the restarted source its runs (review 14: this crashed on the runs' column)
    _restarted_u2(history, runs=2)
    history.tail()
    history.ev(50, "TRACEKIT.heartbeat", "legacy-x", "x")["seq"] = None
    report = analyze(history.frame())
    assert report.findings.is_empty()
    assert report.summary["restarts"] == [_restart(history)]


def test_runs_in_files_read_out_of_time_order_are_read_in_the_order_logged(history):
    # u2's first run logged to 9.jsonl, its second to 10.jsonl; read by name, 10 comes first
    # (a kubelet's rotated logs): each source's files are taken by the time of their first
    # line, so the restart is where 10.jsonl begins, and the runs compare in that order
    _restarted_u2(history, runs=2)
    history.tail()
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    run2 = u2.index(next(r for r in u2[1:] if r["seq"] == 0))
    for k, r in enumerate(u2):
        r["file"] = "10.jsonl" if k >= run2 else "9.jsonl"
    _each_log_apart(history)  # 10.jsonl, then 9.jsonl, then the others'
    report = analyze(history.frame())
    assert report.findings.is_empty()
    assert report.summary["restarts"] == [
        {"source": "client-u2", "file": "10.jsonl", "line": 1, "mended": True}
    ]


def test_a_restart_whose_new_run_lost_its_first_lines_is_read_run_by_run(history):
    # session 27 (review 26b's doubt): u2's app restarted and its new run's first three lines
    # (m100's receive, store and screen) were lost: it began at seq 3, above the first run's
    # least seq (0), and read as one run, every store of the first run came after the second
    # run's: 38 false reorders. A seq logged before, far below the line before it, with the
    # lines after it going on from there, begins a run; m100, lost while the process
    # started, stays a drop (session 22) naming the restart
    for n in range(40):
        history.message(n + 1, "u1", ["u2"], t=100 * n)
    history.seq["client-u2"] = 0  # restarted
    t100 = history.message(100, "u1", ["u2"], t=20_000)
    for n in range(5):
        history.message(101 + n, "u1", ["u2"], t=21_000 + 100 * n)
    history.tail()
    lost = [r for r in history.rows if r["trace_id"] == t100 and r["source"] == "client-u2"]
    history.rows = [r for r in history.rows if r not in lost]
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t100, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert report.findings["detail"][0].endswith(
        "; client-u2 restarted 1005.0 ms after it (a new run of its log begins at "
        "client-u2.jsonl:4)"
    )
    assert report.summary["restarts"] == [
        {"source": "client-u2", "file": "client-u2.jsonl", "line": 4, "mended": True}
    ]


@pytest.mark.parametrize("burst", [1, 12])
def test_two_processes_logging_under_one_name_at_once_are_no_restarts(history, burst):
    # the other side of the rule above: a second process logging under u2's name from 20 s
    # on, its seqs from 3 between the first's (~120 on), line by line or in bursts (review
    # 27: bursts of more than 10 lines read as 4 restarts and 4 log gaps): each switch goes
    # far back to a seq logged before, but later lines go back up to the first counter
    for n in range(40):
        history.message(n + 1, "u1", ["u2"], t=100 * n)
    other = 3
    for n in range(48 // burst):
        for k in range(2 * burst):
            if k == burst:  # (switch counters)
                history.seq["client-u2"], other = other, history.seq["client-u2"]
            history.ev(20_000 + 100 * n + k, "TRACEKIT.heartbeat", "client-u2", "u2")
        history.seq["client-u2"], other = other, history.seq["client-u2"]
    history.tail()
    report = analyze(history.frame())
    assert report.summary["restarts"] == []
    assert report.findings.is_empty()


def test_a_restarted_source_s_files_written_side_by_side_are_read_as_one_stream(history):
    # session 27's fuzzing: u2's hops in one file and its history loads in another, both
    # written through both runs (OTLP spans and log records, two sinks). Taken one file after
    # the other (as rotated parts are), the first run's hops came after the second run's
    # loads: runs mixed up, false reorders. Files whose times overlap are merged by when each
    # line was written
    _restarted_u2(history, runs=2)
    history.tail()
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    lines = {"client-u2.jsonl": 0, "loads.jsonl": 0}
    for r in u2:
        r["file"] = "client-u2.jsonl" if r["trace_id"] else "loads.jsonl"
        lines[r["file"]] += 1
        r["line"] = lines[r["file"]]
    _each_log_apart(history)  # (client-u2.jsonl read whole, then loads.jsonl)
    report = analyze(history.frame())
    assert report.findings.is_empty()
    second = [r for r in u2 if r["action"] == "fetch_start"][1]  # (the second run's first line)
    assert report.summary["restarts"] == [
        {"source": "client-u2", "file": "loads.jsonl", "line": second["line"], "mended": True}
    ]


def test_a_rotated_file_is_placed_by_when_its_lines_were_written(history):
    # fuzzing 18b: u2's first run rotated into a.jsonl, b.jsonl (one line: a fetch begun at
    # 200 ms) and c.jsonl, whose first line is a stage begun at 190 ms and written at its end
    # (220 ms). By their first stamps c came before b: b's line went to the second run, a
    # false gap in each run that hid what happened there
    u2 = "client-u2"
    history.ev(0, "REST.fetch_start", u2, "u2", conv_id="c1")
    history.ev(1, "REST.fetch_end", u2, "u2", conv_id="c1")
    history.message(1, "u1", ["u2"], t=100)
    history.ev(200, "REST.fetch_start", u2, "u2", conv_id="c1")
    history.ev(190, "UI.render", u2, "u2", duration_ms=30.0)
    history.ev(230, "REST.fetch_end", u2, "u2", conv_id="c1")
    history.message(2, "u1", ["u2"], t=300)
    history.seq[u2] = 0  # restarted
    history.ev(10_000, "REST.fetch_start", u2, "u2", conv_id="c1")
    history.ev(10_001, "REST.fetch_end", u2, "u2", conv_id="c1")
    history.message(3, "u1", ["u2"], t=10_100)
    history.tail()
    mine = [r for r in history.rows if r["source"] == u2]
    b = [k for k, r in enumerate(mine) if r["action"] == "fetch_start"][1]
    again = next(k for k, r in enumerate(mine) if k > b and r["seq"] == 0)
    for k, r in enumerate(mine):
        r["file"] = "a.jsonl" if k < b else "b.jsonl" if k == b else "c.jsonl"
        r["line"] = k + 1 if k < b else 1 if k == b else k - b
    report = analyze(history.frame())
    assert report.findings.is_empty()
    assert report.summary["restarts"] == [
        {"source": u2, "file": "c.jsonl", "line": again - b, "mended": True}
    ]


def test_restarts_are_listed_in_read_order(history):
    # u2's log begins first, u3 restarts first: listed u3, then u2 (each source's lines are
    # taken in time order to find them, which grouped them by source, review 14b)
    history.ev(0, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.ev(5, "TRACEKIT.heartbeat", "client-u3", "u3")
    for src, who, t in (("client-u3", "u3", 1000), ("client-u2", "u2", 2000)):
        history.ev(t - 10, "TRACEKIT.heartbeat", src, who)
        history.seq[src] = 0
        history.ev(t, "TRACEKIT.heartbeat", src, who)
        history.ev(t + 1, "TRACEKIT.heartbeat", src, who)
    history.tail()
    report = analyze(history.frame())
    assert [r["source"] for r in report.summary["restarts"]] == ["client-u3", "client-u2"]


def test_a_new_runs_line_older_than_its_first_stays_in_the_new_run(history):
    # tracekit's stage lines carry the stage's start and are written at its end: the new
    # run's history fetch (started at 10 000 ms) is written after the connect logged inside
    # it (10 010 ms) and m3's receive. Put back in the old run by its time, it made a gap
    # that hid m3's drop (review 14d); the runs are read in log order
    history.seq["client-u2"] = 1
    history.ev(0, "REST.fetch", "client-u2", "u2", conv_id="c1")
    for n in (1, 2):
        history.message(n, "u1", ["u2"], t=100 * n)
    history.seq["client-u2"] = 1
    history.ev(10_010, "WS.connect", "client-u2", "u2")
    t3 = history.message(3, "u1", ["u2"], t=10_020, stop={"u2": "REPO.add"})
    history.ev(10_000, "REST.fetch", "client-u2", "u2", conv_id="c1")
    history.message(4, "u1", ["u2"], t=10_500)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("drop", t3, "u2", "REPO.add", "WS-RECV.receive")]
    assert len(report.summary["restarts"]) == 1


def test_a_reorder_inside_a_later_run_is_still_found(history):
    traces = _restarted_u2(history, runs=2)
    _swap_last_two(history, "client-u2")  # the second run's last two stores
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("reorder", traces[1][1], "u2", "CTRL.add", None)]


def test_a_gap_in_a_first_run_is_found_though_a_later_run_logged_those_seqs(history):
    # u2's first run lost m2's REPO.add and CTRL.add (seq 6, 7); the second run's counter
    # passed 6 and 7 again. Read as one log, the second run filled the hole: no gap, and m2
    # was a drop at REPO.add. Run by run, the gap is there and m2 is undecided.
    traces = _restarted_u2(history, runs=2)
    lost = [r for r in history.rows if r["source"] == "client-u2" and r["seq"] in (6, 7)][:2]
    for r in lost:
        history.rows.remove(r)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("log_gap", None, None, None, None)]
    gap = report.findings.row(0, named=True)
    assert gap["source"] == "client-u2"
    assert gap["detail"] == (
        "seq jumps from 5 to 8: 2 event(s) lost by the logging; 1 message path(s) "
        f"indeterminate, not reported as drops: {traces[0][1]} (u2 at REPO.add)"
    )
    assert [e["line"] for e in gap["evidence"]] == [6, 9]


def test_a_fetch_open_when_the_process_restarted_ended_there(history):
    # u2's app was killed while its history load was in flight; the next run receives m1
    # (no fetch of its own in flight) and then races m2 with its own fetch. Read as one log,
    # the first run's fetch stayed open: m1 raced too, and m2's race paired the second
    # run's end with the first run's start.
    history.ev(0, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.ev(1, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.seq["client-u2"] = 0  # restarted
    history.ev(5_000, "TRACEKIT.heartbeat", "client-u2", "u2")
    history.message(1, "u1", ["u2"], t=6_000)
    history.ev(7_000, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t2 = history.message(2, "u1", ["u2"], t=7_100)
    end = history.ev(7_500, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("race", t2, "u2", "WS-RECV.receive", "CTRL.add")]
    race = report.findings.row(0, named=True)
    assert "(never finished)" not in race["detail"]
    # the second run's fetch: its start (seq 4: heartbeat 0, m1's three hops) and end lines
    assert [e["line"] for e in race["evidence"]] == [5, 6, end["line"]]


def test_a_fetch_in_flight_at_a_restart_never_finished(history):
    history.ev(0, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    t1 = history.message(1, "u1", ["u2"], t=10)
    history.seq["client-u2"] = 0  # killed before the fetch ended
    history.ev(5_000, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(5_010, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.message(2, "u1", ["u2"], t=6_000)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("race", t1, "u2", "WS-RECV.receive", "CTRL.add")]
    race = report.findings.row(0, named=True)
    assert race["detail"] == (
        "WS-RECV.receive for conversation c1 arrived on client-u2 while a REST history fetch "
        "of it was in flight (no end logged; it began 40.0 ms before the receive: client-u2 "
        "restarted, a new run of its log begins at client-u2.jsonl:1); the message then "
        "reached CTRL.add"
    )
    # the fetch's start, the receive, and the next run's first line (no end)
    assert [e["line"] for e in race["evidence"]] == [1, 2, 1]


def test_a_restart_whose_seqs_cannot_be_packed_is_said_not_mended(history):
    # positions hold a run above 40 bits of seq: a log counting from below 0 cannot be read
    # run by run, and the report says so (its reorders may be false) rather than pretend
    _restarted_u2(history, runs=2)
    history.tail()
    for r in history.rows:
        r["seq"] -= 100
    report = analyze(history.frame())
    assert report.summary["restarts"] == [dict(_restart(history), mended=False)]
    assert {k[0] for k in history.kinds(report.findings)} == {"reorder"}


def test_a_restart_is_found_though_its_first_run_lost_lines(history):
    # the first run lost more lines than the second logged, so the source holds fewer seqs
    # than its range: the seq going back still tells (review 13)
    _restarted_u2(history, runs=1)  # seq 0..10
    for r in [r for r in history.rows if r["source"] == "client-u2"][2:10]:
        history.rows.remove(r)  # eight lines lost: 0, 1 and 10 are left
    history.seq["client-u2"] = 0
    history.ev(20_000, "REST.fetch_start", "client-u2", "u2", conv_id="c1")
    history.ev(20_001, "REST.fetch_end", "client-u2", "u2", conv_id="c1")
    history.tail()
    assert analyze(history.frame()).summary["restarts"] == [_restart(history)]


def test_a_restart_is_found_though_the_first_runs_log_lost_its_beginning(history):
    # the first run's log starts at seq 1000 (rotated away before it); the next run counts
    # from 0 and repeats none of its seqs: far below all of them, later than all of them
    _restarted_u2(history, runs=2)
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    for r in u2[: len(u2) // 2]:  # the first run's
        r["seq"] += 1000
        r["line"] = r["seq"] + 1
    history.tail()
    report = analyze(history.frame())
    # no false reorder or gap at the restart; the first run's lost beginning is said
    ((kind, source, detail),) = report.findings.select("kind", "source", "detail").rows()
    assert (kind, source) == ("log_gap", "client-u2")
    assert detail.startswith("the log begins at seq 1000: 999 earlier event(s) are not in")
    assert report.summary["restarts"] == [_restart(history)]


def test_the_first_lines_of_a_log_out_of_order_are_no_restart(history):
    # a log whose first two lines took their seqs in the other order: seq 1, then seq 0
    # logged later (below every seq before it, and later, but only just)
    history.message(1, "u1", ["u2"], t=0)
    u2 = [r for r in history.rows if r["source"] == "client-u2"]
    u2[0]["seq"], u2[1]["seq"] = u2[1]["seq"], u2[0]["seq"]
    history.tail()
    assert analyze(history.frame()).summary["restarts"] == []


def test_lines_out_of_order_a_line_twice_or_a_log_read_twice_are_no_restart(history):
    # seq repeats or goes back in each, but no process started over: one source, as before
    t1 = history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=1000)
    _swap_last_two(history, "client-u2")  # written out of order: a reorder
    first = next(r for r in history.rows if r["source"] == "client-u2")
    history.rows.append(dict(first))  # its first line again, at the end
    history.tail()
    history.rows.extend(dict(r, file="copy.jsonl") for r in list(history.rows))  # read twice
    report = analyze(history.frame())
    assert report.summary["restarts"] == []
    assert {c["source"] for c in report.clock} == {"client-u1", "client-u2", "server-1"}
    assert ("reorder", t1, "u2", "CTRL.add", None) in history.kinds(report.findings)


def test_a_restart_in_an_interleaved_log_whose_first_run_lost_its_beginning_is_found(history):
    # u2's first run kept seqs from 5000 on, its second counts from 0: no seq repeats, its
    # range holds more than its lines, and in one file with the others' lines no two of its
    # lines at the restart are adjacent. Its first seq read is above its least: looked at,
    # found (before: 3 false reorders and a 4989-event log gap)
    history.seq["client-u2"] = 5000
    for n in range(1, 4):
        history.message(n, "u1", ["u2"], t=n * 1000)
    history.ev(3400, "TRACEKIT.heartbeat", "server-1", "server")
    history.seq["client-u2"] = 0
    history.ev(3500, "TRACEKIT.configured", "client-u2", "u2")
    for n in range(4, 7):
        history.message(n, "u1", ["u2"], t=n * 1000)
    history.tail()
    for i, r in enumerate(history.rows):
        r["file"], r["line"] = "all.jsonl", i + 1
    restart = next(r for r in history.rows if r["event"] == "TRACEKIT.configured")
    report = analyze(history.frame())
    ((kind, source, detail),) = report.findings.select("kind", "source", "detail").rows()
    assert (kind, source) == ("log_gap", "client-u2")
    assert detail.startswith("the log begins at seq 5000: 4999 earlier event(s) are not in")
    assert report.summary["restarts"] == [
        {"source": "client-u2", "file": "all.jsonl", "line": restart["line"], "mended": True}
    ]
