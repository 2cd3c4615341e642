"""Clock offsets, corrected latencies, outliers and SLO breaches."""

from __future__ import annotations

import math
import random
from dataclasses import replace
from datetime import timedelta

import polars as pl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

from tracekit.analyzers import (
    analyze,
    default_pipeline,
    find_clock_skew,
    find_latency_outliers,
    find_slo_breaches,
    load_pipeline,
)
from tracekit.analyzers._clock import solve_offsets
from tracekit.analyzers._latency import _log_ms, edge_stats
from tracekit.errors import PipelineError


def _shift(history, trace, hop, actor, ms):
    for r in history.rows:
        if r["trace_id"] == trace and f"{r['stage']}.{r['action']}" == hop and r["actor"] == actor:
            r["timestamp"] += timedelta(milliseconds=ms)


def test_latency_statistics_per_hop_and_end_to_end(history):
    for n in range(4):
        history.message(n, "u1", ["u2", "u3"], t=n * 1000)
    history.tail()
    lat = analyze(history.frame()).latency
    hops = {(h["from"], h["to"]): h for h in lat["hops"]}
    assert list(hops) == [
        ("CTRL.send", "REST.request"),
        ("REST.request", "REST.persist"),
        ("REST.persist", "REST.response"),
        ("REST.persist", "WS-BROADCAST.start"),
        ("WS-BROADCAST.start", "WS-BROADCAST.deliver"),
        ("WS-BROADCAST.deliver", "WS-RECV.receive"),
        ("WS-RECV.receive", "REPO.add"),
        ("REPO.add", "CTRL.add"),
    ]
    assert hops[("REST.persist", "REST.response")] == {
        "from": "REST.persist",
        "to": "REST.response",
        "count": 4,
        "p50_ms": 5.0,
        "p95_ms": 5.0,
        "p99_ms": 5.0,
        "max_ms": 5.0,
    }
    assert hops[("WS-BROADCAST.start", "WS-BROADCAST.deliver")]["count"] == 8
    assert hops[("WS-BROADCAST.start", "WS-BROADCAST.deliver")]["max_ms"] == 5.5
    # end to end: send -> CTRL.add = 40 ms (u2) and 40.5 ms (u3)
    assert lat["end_to_end"] == {
        "count": 8,
        "p50_ms": 40.25,
        "p95_ms": 40.5,
        "p99_ms": 40.5,
        "max_ms": 40.5,
    }


def test_offsets_are_estimated_and_latencies_corrected(history):
    off = {"client-u1": 300.0, "client-u2": -200.0}
    for n in range(5):
        history.message(n, "u1", ["u2"], t=n * 1000, offsets=off)
    history.tail()
    report = analyze(history.frame())
    clock = {c["source"]: c for c in report.clock}
    assert clock["server-1"] == {
        "source": "server-1",
        "offset_ms": 0.0,
        "uncertainty_ms": 0.0,
        "reference": True,
        "samples": 15,
        "against": "server-1",
    }
    assert clock["client-u1"]["against"] == clock["client-u2"]["against"] == "server-1"
    # NTP bounds: request 5 ms before persist, response 5 ms after: 300 +- 5
    assert clock["client-u1"]["offset_ms"] == 300.0
    assert clock["client-u1"]["uncertainty_ms"] == 5.0
    # a client that only receives has an upper bound only: deliver -> receive >= 0
    assert clock["client-u2"]["offset_ms"] == -195.0
    assert clock["client-u2"]["uncertainty_ms"] is None
    kinds = history.kinds(report.findings)
    assert kinds == [("clock_skew", None, None, None, None)] * 2
    assert list(report.findings["source"]) == ["client-u1", "client-u2"]
    assert report.findings["detail"][0].startswith(
        "client-u1 runs 300.0 ms ahead of server-1 (uncertainty 5.0 ms"
    )
    # it read "(uncertainty unbounded ms, ...)"
    assert report.findings["detail"][1] == (
        "client-u2 runs 195.0 ms behind server-1 (uncertainty unbounded: its 10 causal "
        "pair(s) bound the offset on one side only); cross-host latencies are corrected for it"
    )
    hops = {(h["from"], h["to"]): h for h in report.latency["hops"]}
    assert hops[("REST.request", "REST.persist")]["p50_ms"] == 5.0
    # u2's offset is only bounded: its receive lands on the deliver (0 ms instead of 5 ms)
    assert hops[("WS-BROADCAST.deliver", "WS-RECV.receive")]["p50_ms"] == 0.0
    assert report.latency["end_to_end"]["p50_ms"] == 35.0


def test_small_offsets_are_no_finding(history):
    for n in range(5):
        history.message(n, "u1", ["u2"], t=n * 1000, offsets={"client-u1": 30.0})
    history.tail()
    assert find_clock_skew(history.frame()).collect().is_empty()


def test_receive_before_send_whatever_the_offset_is_a_clock_finding(history):
    for n in range(3):
        history.message(n, "u1", ["u1", "u2"], t=n * 1000)
    # u1's receive of message 1 is logged 100 ms before the server delivered it, although
    # its requests pin its clock to the server's within 10 ms.
    _shift(history, history.tid(1), "WS-RECV.receive", "u1", -100)
    history.tail()
    report = analyze(history.frame())
    skew = report.findings.filter(report.findings["kind"] == "clock_skew")
    assert list(skew["source"]) == ["client-u1"]
    early = history.tid(1)
    assert skew["detail"][0] == (
        "clock of client-u1 contradicts causality: an event is logged 95.0 ms before its cause"
        " on server-1 at the offsets every other pair allows; estimated +0.0 ms against server-1"
        f"; the worst: WS-BROADCAST.deliver->WS-RECV.receive of trace {early}, -95.0 ms"
    )
    # (review 20b: no trace and no line said which event)
    lines = {
        (r["trace_id"], r["event"], r.get("peer") or r["actor"]): r["line"] for r in history.rows
    }
    assert skew["trace_id"][0] == early
    assert skew["evidence"][0].to_list() == [
        {"file": "server-1.jsonl", "line": lines[(early, "WS-BROADCAST.deliver", "u1")]},
        {"file": "client-u1.jsonl", "line": lines[(early, "WS-RECV.receive", "u1")]},
    ]
    assert report.summary["latency_outlier"] == 0


def _many(history, n=25, **kw):
    return [history.message(i, "u1", ["u2"], t=i * 1000, **kw) for i in range(1, n + 1)]


def test_outlier_with_zero_spread_uses_the_floor(history):
    traces = _many(history)
    _shift(history, traces[7], "CTRL.add", "u2", 100)
    history.tail(60_000)
    got = find_latency_outliers(history.frame()).collect()
    assert history.kinds(got) == [("latency_outlier", traces[7], "u2", "CTRL.add", "REPO.add")]
    assert got["detail"][0] == (
        "REPO.add->CTRL.add took 105.0 ms for recipient u2 (median 5.0 ms, modified z-score inf)"
    )
    # both ends of the edge, each looked up by its row
    line = {
        r["event"]: r["line"]
        for r in history.rows
        if r["trace_id"] == traces[7] and r["source"] == "client-u2"
    }
    assert got["evidence"][0].to_list() == [
        {"file": "client-u2.jsonl", "line": line["REPO.add"]},
        {"file": "client-u2.jsonl", "line": line["CTRL.add"]},
    ]


def test_a_spike_on_a_hop_that_takes_0_or_5_ms_is_an_outlier(history):
    # The plain log of 0 ms (clipped) and 5 ms lay so far apart that the spread hid a 1000 ms
    # spike (z 1.3); both are fast, and log(latency + floor) says so.
    traces = _many(history, n=27)
    for i, trace in enumerate(traces):
        _shift(history, trace, "CTRL.add", "u2", -5 if i % 2 else 0)
    _shift(history, traces[6], "CTRL.add", "u2", 995)
    history.tail(60_000)
    got = find_latency_outliers(history.frame()).collect()
    assert history.kinds(got) == [("latency_outlier", traces[6], "u2", "CTRL.add", "REPO.add")]
    assert got["detail"][0].startswith("REPO.add->CTRL.add took 1000.0 ms for recipient u2")


def test_a_client_whose_clock_is_bounded_on_one_side_is_judged_on_its_shortest_latency(history):
    # u3 only receives, 40 ms ahead: its receives bound its clock from above only, so its
    # offset is taken as 0 and its deliver->receive reads 45 ms against everyone else's 5 ms.
    # That is the clock, not 30 outliers; a 1000 ms spike is an outlier whatever the offset.
    members = ["u2", "u4", "u5", "u6", "u3"]
    traces = [
        history.message(i, "u1", members, t=i * 1000, offsets={"client-u3": 40})
        for i in range(1, 31)
    ]
    for hop in ("WS-RECV.receive", "REPO.add", "CTRL.add"):
        _shift(history, traces[6], hop, "u3", 1000)
    history.tail(60_000)
    got = find_latency_outliers(history.frame()).collect()
    assert history.kinds(got) == [
        ("latency_outlier", traces[6], "u3", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert got["detail"][0] == (
        "WS-BROADCAST.deliver->WS-RECV.receive took 1045.0 ms for recipient u3, at least 1000.0"
        " ms within the clock bounds (median 5.0 ms, modified z-score inf)"
    )


def _jittered(history, seed: int, n: int = 200) -> list[str]:
    """``n`` messages to u2 whose deliver -> receive takes a lognormal time (median 50 ms,
    sigma 0.5: a network hop as measured), seeded."""
    rng = random.Random(seed)
    traces = _many(history, n=n)
    for trace in traces:
        took = rng.lognormvariate(math.log(50), 0.5)
        for hop in ("WS-RECV.receive", "REPO.add", "CTRL.add"):
            _shift(history, trace, hop, "u2", took)
    return traces


def test_a_lognormal_hop_has_no_outlier_and_a_spike_on_it_is_one(history):
    # Session 25: at z 3.5, 0.18% of a lognormal hop's samples were outliers (29% of
    # 200-sample runs flagged one; this seed's run flags one): a `--max latency_outlier=0`
    # gate failed on plain jitter. At 5.0, 0.004% (1% of runs; docs/decisions.md).
    traces = _jittered(history, seed=5)
    history.tail(60_000)
    assert find_latency_outliers(history.frame()).collect().is_empty()
    at_35 = replace(default_pipeline(), outlier_z=3.5)
    assert find_latency_outliers(history.frame(), pipeline=at_35).collect().height == 1
    # a 600 ms hop on it is far outside its distribution: found
    for hop in ("WS-RECV.receive", "REPO.add", "CTRL.add"):
        _shift(history, traces[100], hop, "u2", 600)
    got = find_latency_outliers(history.frame()).collect()
    assert history.kinds(got) == [
        ("latency_outlier", traces[100], "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]


def test_small_deviation_or_few_samples_is_no_outlier(history):
    traces = _many(history)
    _shift(history, traces[7], "CTRL.add", "u2", 15)  # below the 20 ms floor
    history.tail(60_000)
    assert find_latency_outliers(history.frame()).collect().is_empty()


def test_too_few_samples_for_outliers(history):
    traces = _many(history, n=10)
    _shift(history, traces[3], "CTRL.add", "u2", 300)
    history.tail(60_000)
    assert find_latency_outliers(history.frame()).collect().is_empty()


def test_end_to_end_slo(history):
    traces = _many(history, n=5)
    _shift(history, traces[2], "CTRL.add", "u2", 600)
    history.tail(60_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("slo_breach", traces[2], "u2", "CTRL.add", "CTRL.send")
    ]
    assert report.findings["detail"][0] == (
        "end to end: CTRL.send -> CTRL.add took 640.0 ms for recipient u2, above the 500.0 ms SLO"
    )
    relaxed = analyze(history.frame(), slo={"end_to_end": timedelta(seconds=1)})
    assert relaxed.findings.is_empty()
    # a breach that reads as its SLO at 0.1 ms is said to the microsecond (review 24b: "took
    # 500.0 ms, above the 500.0 ms SLO")
    close = analyze(history.frame(), slo={"end_to_end": timedelta(milliseconds=639.99)})
    assert close.findings["detail"][0] == (
        "end to end: CTRL.send -> CTRL.add took 640.000 ms for recipient u2, above the "
        "639.990 ms SLO; not certain: at least 630.0 ms within the clock bounds (client-u2's "
        "clock is bounded on one side only)"
    )


def test_a_breach_the_clock_bounds_leave_in_doubt_says_so(history):
    # u2 only receives, its clock 2 s ahead: every receive bounds it from above only (at most
    # 2005 ms ahead), so its offset is taken as 0 and every message reads 2 s late. Each
    # breach stays (the SLO is judged on the corrected latency) and says it is not certain.
    # u3, on time, only receives too: its one slow message is a breach at every offset its
    # other receives allow, and is said plainly.
    traces = [
        history.message(i, "u1", ["u2", "u3"], t=i * 1000, offsets={"client-u2": 2000})
        for i in range(1, 5)
    ]
    _shift(history, traces[1], "CTRL.add", "u3", 600)
    history.tail(60_000)
    report = analyze(history.frame())
    # (in time order: u2's receives read 2 s late)
    assert history.kinds(report.findings) == [
        ("slo_breach", traces[1], "u3", "CTRL.add", "CTRL.send")
    ] + [("slo_breach", t, "u2", "CTRL.add", "CTRL.send") for t in traces]
    details = report.findings["detail"].to_list()
    assert details[0] == (
        "end to end: CTRL.send -> CTRL.add took 640.5 ms for recipient u3, above the 500.0 ms SLO"
    )
    assert set(details[1:]) == {
        "end to end: CTRL.send -> CTRL.add took 2040.0 ms for recipient u2, above the 500.0 ms"
        " SLO; not certain: at least 30.0 ms within the clock bounds"
        " (client-u2's clock is bounded on one side only)"
    }


def test_a_breach_in_doubt_names_the_clock_the_doubt_comes_from(history):
    # u1's responses are logged 1200 ms late, so its clock is known only to within 605 ms;
    # u2, in sync, only receives: its missing bound is worth 5 ms. The doubt is u1's.
    traces = [history.message(i, "u1", ["u2"], t=i * 2000) for i in range(1, 5)]
    for r in history.rows:
        if r["event"] == "REST.response":
            r["timestamp"] += timedelta(milliseconds=1200)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("slo_breach", t, "u2", "CTRL.add", "CTRL.send") for t in traces
    ]
    assert set(report.findings["detail"]) == {
        "end to end: CTRL.send -> CTRL.add took 640.0 ms for recipient u2, above the 500.0 ms"
        " SLO; not certain: at least 30.0 ms within the clock bounds"
        " (client-u1's clock is known to within 605.0 ms)"
    }


def test_a_breach_on_a_clock_only_its_own_pairs_bound_says_so(history):
    # the server logs no delivery: u2, 700 ms ahead, shares no pair with any other source
    # but these messages' end to end ones (each bounds the others' latency at 0 ms)
    traces = [
        history.message(i, "u1", ["u2"], t=i * 2000, offsets={"client-u2": 700})
        for i in range(1, 4)
    ]
    history.rows[:] = [r for r in history.rows if r["event"] != "WS-BROADCAST.deliver"]
    history.tail()
    found = analyze(history.frame()).findings.filter(pl.col("kind") == "slo_breach")
    assert history.kinds(found) == [
        ("slo_breach", t, "u2", "CTRL.add", "CTRL.send") for t in traces
    ]
    assert set(found["detail"]) == {
        "end to end: CTRL.send -> CTRL.add took 740.0 ms for recipient u2, above the 500.0 ms"
        " SLO; not certain: within the SLO at some clock offsets the logs allow"
    }


def test_hop_slo(history):
    traces = _many(history, n=3)
    history.tail(60_000)
    got = find_slo_breaches(
        history.frame(), slo={"WS-BROADCAST.deliver->WS-RECV.receive": timedelta(milliseconds=4)}
    ).collect()
    assert history.kinds(got) == [
        ("slo_breach", t, "u2", "WS-RECV.receive", "WS-BROADCAST.deliver") for t in traces
    ]


def test_unknown_slo_is_refused(history):
    history.message(1, "u1", ["u2"])
    with pytest.raises(PipelineError, match=r"unknown SLO 'CTRL\.send->CTRL\.add'"):
        analyze(history.frame(), slo={"CTRL.send->CTRL.add": timedelta(seconds=1)})


def _retried_message(history, *, lost: str):
    """One message whose REST request is retried 400 ms later; every clock is in sync.

    ``lost="response"``: attempt 1 reached the server, its response was lost (true end to end
    432 ms). ``lost="request"``: attempt 1 never reached the server (true end to end 632 ms).
    """
    tr, u1, u2 = history.tid(1), history.client("u1"), history.client("u2")
    server = "server-1"
    at = {"trace": tr, "conv_id": "c1"}
    history.ev(0, "CTRL.send", u1, "u1", **at)
    history.ev(5, "REST.request", u1, "u1", **at)
    if lost == "response":
        history.ev(10, "REST.persist", server, "u1", msg_id="m1", **at)
        base = 400
    else:
        base = 600
    history.ev(base + 5, "REST.request", u1, "u1", **at)
    history.ev(base + 10, "REST.persist", server, "u1", msg_id="m1", **at)
    history.ev(base + 15, "REST.response", u1, "u1", msg_id="m1", **at)
    history.ev(base + 20, "WS-BROADCAST.start", server, "u1", recipients=["u2"], **at)
    history.ev(base + 25, "WS-BROADCAST.deliver", server, "server", peer="u2", **at)
    history.ev(base + 30, "WS-RECV.receive", u2, "u2", **at)
    history.ev(base + 31, "REPO.add", u2, "u2", **at)
    history.ev(base + 32, "CTRL.add", u2, "u2", **at)
    history.tail()
    return tr


@pytest.mark.parametrize(("lost", "e2e_ms"), [("response", 432.0), ("request", 632.0)])
def test_a_retried_request_does_not_shift_the_senders_clock(history, lost, e2e_ms):
    # The first request pairs with the retry's response: a valid but 400 ms wide bound whose
    # middle used to move client-u1's clock by +-200 ms (a false SLO breach at 432 ms, a
    # missed one at 632 ms).
    tr = _retried_message(history, lost=lost)
    report = analyze(history.frame())
    clock = {c["source"]: c["offset_ms"] for c in report.clock}
    assert clock == {"client-u1": 0.0, "client-u2": 0.0, "server-1": 0.0}
    assert report.latency["end_to_end"]["max_ms"] == e2e_ms
    breaches = [(tr, "u2", "CTRL.add")] if e2e_ms > 500 else []
    got = report.findings.filter(pl.col("kind") == "slo_breach")
    assert got.select("trace_id", "recipient", "stage").rows() == breaches
    assert report.findings.filter(pl.col("kind") != "slo_breach").is_empty()


@pytest.mark.parametrize(
    ("phone_ms", "same_device_samples", "e2e_max"),
    # at 27 ms the phone's receive bounds its clock: at most 2 ms ahead, at least 5 ms behind
    # (its own requests), so -1.5 ms, and its messages' end to end is 38.5 ms
    [(900, 4, 40.0), (27, 3, 38.5)],
)
def test_hops_of_two_devices_are_no_latency_and_no_clock_pair(
    history, phone_ms, same_device_samples, e2e_max
):
    # u2's phone shows the seed bug (no CTRL.add); the tablet has all of it at +30 ms. The
    # phone's log is read first. A hop two devices logged is represented by the earliest
    # device's occurrence: the tablet's everywhere when the phone got it late (900 ms), so its
    # REPO.add -> CTRL.add is a sample; the phone's REPO.add when it got it first (27 ms),
    # and the phone's REPO.add and the tablet's CTRL.add are no causal pair: no sample.
    for n in range(2, 5):  # the phone's own messages pin its clock to the server's
        history.message(n, "u2", ["u1"], t=n * 1000 + 5000)
    tr, u1, phone, tablet = (
        history.tid(1),
        history.client("u1"),
        history.client("u2"),
        "client-u2-tablet",
    )
    at = {"trace": tr, "conv_id": "c1"}
    history.ev(0, "CTRL.send", u1, "u1", **at)
    history.ev(5, "REST.request", u1, "u1", **at)
    history.ev(10, "REST.persist", "server-1", "u1", msg_id="m1", **at)
    history.ev(15, "REST.response", u1, "u1", msg_id="m1", **at)
    history.ev(20, "WS-BROADCAST.start", "server-1", "u1", recipients=["u2"], **at)
    history.ev(25, "WS-BROADCAST.deliver", "server-1", "server", peer="u2", **at)
    history.ev(26, "WS-BROADCAST.deliver", "server-1", "server", peer="u2", **at)
    history.ev(phone_ms, "WS-RECV.receive", phone, "u2", **at)
    history.ev(phone_ms + 1, "REPO.add", phone, "u2", **at)
    history.ev(30, "WS-RECV.receive", tablet, "u2", **at)
    history.ev(31, "REPO.add", tablet, "u2", **at)
    history.ev(32, "CTRL.add", tablet, "u2", **at)
    history.tail()
    report = analyze(history.frame())
    assert {c["source"]: c["offset_ms"] for c in report.clock}["client-u2-tablet"] == 0.0
    hops = {(h["from"], h["to"]): h for h in report.latency["hops"]}
    # the three clean messages' REPO.add -> CTRL.add, and message 1's on one device only
    assert hops[("REPO.add", "CTRL.add")]["count"] == same_device_samples
    assert hops[("REPO.add", "CTRL.add")]["max_ms"] == 5.0
    assert report.latency["end_to_end"]["max_ms"] == e2e_max
    # the phone's own broken path is the only finding (not a clock skew, not a breach)
    assert history.kinds(report.findings) == [("drop", tr, "u2", "CTRL.add", "REPO.add")]
    assert report.findings.get_column("source").to_list() == ["client-u2"]


def test_persist_order_across_two_servers_is_read_on_corrected_time(history):
    # m1 persisted by server-2 (clock 500 ms ahead, estimated from its exchanges), m2 and m3
    # by server-1 100 ms and 3 s later; u2 stores them in that true order: no reorder. On raw
    # timestamps server-2's m1 looked persisted after m2.
    history.message(1, "u1", ["u2"], t=0, server="server-2", offsets={"server-2": 500.0})
    history.message(2, "u1", ["u2"], t=100)
    history.message(3, "u1", ["u2"], t=3000)
    history.tail()
    report = analyze(history.frame())
    assert {c["source"]: c["offset_ms"] for c in report.clock}["server-2"] == 500.0
    assert history.kinds(report.findings) == [("clock_skew", None, None, None, None)]


def test_a_reorder_across_two_servers_is_found_on_corrected_time(history):
    # The same two messages, but u2 stores m2 first (its events come first in u2's log): m1
    # was truly persisted first, so m1 is stored out of order. Raw timestamps put server-2's
    # m1 after m2 and saw nothing wrong.
    history.message(2, "u1", ["u2"], t=100)
    history.message(1, "u1", ["u2"], t=0, server="server-2", offsets={"server-2": 500.0})
    history.tail()
    found = analyze(history.frame()).findings.filter(pl.col("kind") == "reorder")
    assert found.select("trace_id", "recipient", "stage", "source").rows() == [
        (history.tid(1), "u2", "CTRL.add", "client-u2")
    ]


@pytest.mark.parametrize("tablet_first", [False, True])
def test_every_device_of_a_recipient_gets_its_clock_whichever_log_is_read_first(
    history, tablet_first
):
    # u2's phone is in sync, its tablet's clock 800 ms behind. Only the pair's first
    # occurrence of a hop used to pair with the server's deliver: the tablet's clock was
    # estimated only when its log was read first.
    phone, tablet = history.client("u2"), "client-u2-tablet"
    devices: dict[str, list[dict]] = {phone: [], tablet: []}
    for n in range(1, 6):
        t, at = n * 1000, {"trace": history.tid(n), "conv_id": "c1"}
        history.message(n, "u1", [], t=t - 20)  # send .. broadcast start (to nobody listed)
        history.rows[-1]["recipients"] = ["u2"]
        for _ in range(2):  # one socket write per device
            history.ev(t + 5, "WS-BROADCAST.deliver", "server-1", "server", peer="u2", **at)
        for src, dt in ((phone, 0), (tablet, -800)):
            for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
                devices[src].append(history.ev(t + 10 + k + dt, hop, src, "u2", **at))
    history.tail()
    rest = [r for r in history.rows if r["source"] not in devices]
    first, second = (tablet, phone) if tablet_first else (phone, tablet)
    history.rows = rest + devices[first] + devices[second]
    report = analyze(history.frame())
    clock = {c["source"]: (c["offset_ms"], c["samples"]) for c in report.clock}
    # receive-only: bounded from above by its earliest receive (5 ms after the deliver);
    # its pairs: five deliver -> receive and five end to end
    assert clock[tablet] == (-795.0, 10)
    assert clock[phone] == (0.0, 10)
    assert [f["source"] for f in report.to_dict()["findings"]] == [tablet]


def test_one_receive_logged_early_is_set_aside_and_the_other_clocks_keep_their_bounds(history):
    # server-1 persists (the reference); ws-2 delivers, its clock 800 ms ahead; u1 and u2 are
    # in sync. ws-2's lower bound comes through u1 (deliver -> u1's receive -> u1's request).
    # u1 logs one receive 100 ms early: that pair contradicts the rest. It used to empty the
    # bounds through every source: ws-2 fell to 0 and u2's receives all read "reversed".
    for n in range(1, 6):
        t, at = n * 1000, {"trace": history.tid(n), "conv_id": "c1"}
        history.ev(t, "CTRL.send", "client-u1", "u1", **at)
        history.ev(t + 5, "REST.request", "client-u1", "u1", **at)
        history.ev(t + 10, "REST.persist", "server-1", "u1", msg_id=f"m{n}", **at)
        history.ev(t + 15, "REST.response", "client-u1", "u1", msg_id=f"m{n}", **at)
        history.ev(t + 20, "WS-BROADCAST.start", "server-1", "u1", recipients=["u2", "u1"], **at)
        for r in ("u2", "u1"):
            history.ev(t + 825, "WS-BROADCAST.deliver", "ws-2", "server", peer=r, **at)
            rt = t + 30 - (100 if (n == 3 and r == "u1") else 0)
            for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
                history.ev(rt + k, hop, f"client-{r}", r, **at)
    history.tail()
    report = analyze(history.frame())
    clock = {c["source"]: (c["offset_ms"], c["uncertainty_ms"]) for c in report.clock}
    assert clock["ws-2"] == (797.5, 7.5)
    assert clock["client-u1"] == (0.0, 5.0)
    skew = report.findings.filter(pl.col("kind") == "clock_skew")
    assert skew.get_column("source").to_list() == ["client-u1", "ws-2"]
    assert skew["detail"][0] == (
        "clock of client-u1 contradicts causality: an event is logged 97.5 ms before its cause"
        " on ws-2 at the offsets every other pair allows; estimated +0.0 ms against server-1"
        "; the worst: WS-BROADCAST.deliver->WS-RECV.receive of trace "
        f"{history.tid(3)}, -97.5 ms"
    )
    hops = {(h["from"], h["to"]): h for h in report.latency["hops"]}
    # the nine receives that are not reversed, at 2.5 ms on corrected time
    assert hops[("WS-BROADCAST.deliver", "WS-RECV.receive")]["count"] == 9
    assert hops[("WS-BROADCAST.deliver", "WS-RECV.receive")]["p50_ms"] == 2.5


def test_a_spike_between_two_hosts_neither_the_reference_is_an_outlier(history):
    # The WebSocket node is not the server that persists: its clock, and u2's, are bounded
    # from above only. Their own pairs still bound their difference: a receive 1000 ms late
    # is at least ~1000 ms whatever the offsets.
    traces = []
    for n in range(40):
        t, at = n * 1000.0, {"trace": history.tid(n + 1), "conv_id": "c1"}
        traces.append(at["trace"])
        history.ev(t, "CTRL.send", "client-u1", "u1", **at)
        history.ev(t + 5 + n % 3 * 0.5, "REST.request", "client-u1", "u1", **at)
        history.ev(t + 10, "REST.persist", "server-rest", "u1", msg_id=f"m{n}", **at)
        history.ev(t + 15, "REST.response", "client-u1", "u1", **at)
        history.ev(t + 20, "WS-BROADCAST.start", "server-ws", "u1", recipients=["u2"], **at)
        history.ev(t + 25, "WS-BROADCAST.deliver", "server-ws", "server", peer="u2", **at)
        late = 1000.0 if n == 30 else n % 4 * 0.5
        for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
            history.ev(t + 30 + late + k, hop, "client-u2", "u2", **at)
    history.tail()
    got = find_latency_outliers(history.frame()).collect()
    assert history.kinds(got) == [
        ("latency_outlier", traces[30], "u2", "WS-RECV.receive", "WS-BROADCAST.deliver")
    ]
    assert got["detail"][0].startswith(
        "WS-BROADCAST.deliver->WS-RECV.receive took 1005.0 ms for recipient u2, at least 1000.0"
        " ms within the clock bounds"
    )


@pytest.mark.parametrize("early", [2, 9, 19])
def test_a_burst_of_early_receives_is_set_aside_not_the_pairs_that_agree(history, early):
    # u1's clock is right (its requests and receives: -3.0 .. +6.0 ms against the server), but
    # a burst of its receives is logged ~55 ms early, 0.1 ms apart. Those clash with all 20
    # requests: the side with the fewest clashing pairs (the burst, up to 19) is set aside, not
    # the requests one by one. (From 21 early receives on, they are the majority and win.)
    def message(n, sender, recipient, t, persist_after, recv_shift=0.0):
        at = {"trace": history.tid(n), "conv_id": "c1"}
        history.ev(t, "CTRL.send", f"client-{sender}", sender, **at)
        history.ev(t + 1, "REST.request", f"client-{sender}", sender, **at)
        p = t + 1 + persist_after
        history.ev(p, "REST.persist", "server-1", sender, msg_id=f"m{n}", **at)
        history.ev(p + 6, "REST.response", f"client-{sender}", sender, **at)
        history.ev(p + 1, "WS-BROADCAST.start", "server-1", sender, recipients=[recipient], **at)
        history.ev(p + 2, "WS-BROADCAST.deliver", "server-1", "server", peer=recipient, **at)
        for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
            history.ev(p + 8 + recv_shift + k, hop, f"client-{recipient}", recipient, **at)

    t = 0.0
    for k in range(20):  # u1's requests reach the server 3.0, 3.5, ... ms later
        t += 200
        message(k + 1, "u1", "u2", t, 3.0 + 0.5 * k)
    for k in range(40):
        t += 200
        shift = -55.0 + 0.1 * (k - 5) if 5 <= k < 5 + early else 0.0
        message(k + 21, "u2", "u1", t, 4.0, recv_shift=shift)
    history.tail()
    report = analyze(history.frame())
    u1 = next(c for c in report.clock if c["source"] == "client-u1")
    assert (u1["offset_ms"], u1["uncertainty_ms"]) == (1.5, 4.5)  # [-3.0, +6.0]
    # the finding names the earliest receive of the burst (message 26's, 55.0 ms early)
    assert history.kinds(report.findings) == [("clock_skew", history.tid(26), None, None, None)]
    assert report.findings["source"].to_list() == ["client-u1"]
    assert report.findings["detail"][0].startswith("clock of client-u1 contradicts causality")
    assert (
        " before its cause on server-1 at the offsets every other pair allows;"
        " estimated +1.5 ms against server-1; the worst: " in report.findings["detail"][0]
    )


def test_logs_of_two_separate_systems_each_have_their_own_reference(history):
    # Two runs (e.g. two tests), each with its own server; no pair ties them together. The
    # second run's clocks used to stay unbounded (offset 0): u3's 200 ms skew uncorrected.
    for n in range(5):
        history.message(n, "u1", ["u2"], t=n * 1000, offsets={"client-u1": 300.0})
    for n in range(5, 10):
        history.message(n, "u3", ["u4"], t=n * 1000, offsets={"client-u3": -200.0}, server="srv-b")
    history.tail()
    report = analyze(history.frame())
    clock = {c["source"]: c for c in report.clock}
    assert (clock["srv-b"]["reference"], clock["srv-b"]["against"]) == (True, "srv-b")
    assert (clock["server-1"]["reference"], clock["server-1"]["against"]) == (True, "server-1")
    u3 = clock["client-u3"]
    assert (u3["offset_ms"], u3["uncertainty_ms"], u3["against"]) == (-200.0, 5.0, "srv-b")
    assert clock["client-u1"]["against"] == "server-1"
    assert list(report.findings["source"]) == ["client-u1", "client-u3"]
    assert report.findings["detail"][1].startswith(
        "client-u3 runs 200.0 ms behind srv-b (uncertainty 5.0 ms"
    )
    hops = {(h["from"], h["to"]): h for h in report.latency["hops"]}
    assert hops[("REST.request", "REST.persist")]["max_ms"] == 5.0  # both runs corrected


_MINI = """
[pipeline]
name = "mini"
[roles]
send = "CTRL.send"
persist = "REST.persist"
[[hops]]
id = "CTRL.send"
[[hops]]
id = "REST.persist"
after = ["CTRL.send"]
emitter = "server"
[[hops]]
id = "WS-BROADCAST.deliver"
after = ["REST.persist"]
scope = "recipient"
recipient = "peer"
emitter = "server"
[outliers]
min_samples = 3
floor_ms = 1
"""


def test_outliers_on_message_and_recipient_edges_of_a_custom_pipeline(history, tmp_path):
    """Review 8d: the samples that become findings, gathered by row from the messages and the
    pairs frames, once made a frame polars' streaming engine panicked on."""
    from tracekit.analyzers import load_pipeline

    path = tmp_path / "mini.toml"
    path.write_text(_MINI)
    traces = [history.message(i, "u1", ["u2", "u3"], t=i * 1000) for i in range(1, 26)]
    _shift(history, traces[3], "REST.persist", "u1", 100)  # +100 ms into persist, and out
    _shift(history, traces[3], "WS-BROADCAST.deliver", "server", 100)
    _shift(history, traces[9], "WS-BROADCAST.deliver", "server", 100)  # its two deliveries
    history.tail(60_000)
    report = analyze(history.frame(), pipeline=load_pipeline(path))
    found = report.findings.filter(pl.col("kind") == "latency_outlier")
    assert history.kinds(found) == sorted(
        [
            ("latency_outlier", traces[3], None, "REST.persist", "CTRL.send"),
            ("latency_outlier", traces[9], "u2", "WS-BROADCAST.deliver", "REST.persist"),
            ("latency_outlier", traces[9], "u3", "WS-BROADCAST.deliver", "REST.persist"),
        ],
        key=repr,
    )


def test_outliers_of_a_custom_pipeline_on_a_generated_history_do_not_crash(tmp_path):
    """Review 8d's case: polars' streaming engine panicked filtering the scored samples."""
    from tracekit import synth
    from tracekit.analyzers import load_pipeline

    path = tmp_path / "mini.toml"
    path.write_text(_MINI + "z = 1\n")
    pipeline = load_pipeline(path)
    events = synth.generate(0, messages=80, users=4, conversations=1).frame().lazy()
    found = analyze(events, pipeline=pipeline).findings
    assert found.group_by("kind", "stage").len().rows() == [
        ("latency_outlier", "WS-BROADCAST.deliver", 14)
    ]
    alone = find_latency_outliers(events, pipeline=pipeline).collect()
    keys = ["trace_id", "recipient"]
    assert alone.select(keys).sort(keys).equals(found.select(keys).sort(keys))


def test_a_one_hop_pipeline_has_no_latency_and_does_not_crash(history, tmp_path):
    """Review 8e: no edge, no sample (the samples' concat had no part at all)."""
    from tracekit.analyzers import find_slo_breaches, load_pipeline

    path = tmp_path / "one.toml"
    path.write_text(
        '[pipeline]\nname = "one"\n[roles]\nsend = "CTRL.send"\n[[hops]]\nid = "CTRL.send"\n'
    )
    pipeline = load_pipeline(path)
    for n in range(3):
        history.message(n, "u1", ["u2"], t=n * 1000)
    history.tail()
    report = analyze(history.frame(), pipeline=pipeline)
    assert report.findings.is_empty()
    assert report.summary["messages"] == 3
    assert report.latency["hops"] == []
    for find in (find_latency_outliers, find_slo_breaches, find_clock_skew):
        assert find(history.frame(), pipeline=pipeline).collect().is_empty()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.integers(0, 3),
            # huge ones: the edge and latency no longer fit one sort key (the group-by's way)
            st.one_of(
                st.integers(0, 5), st.integers(-10, 2_000_000_000), st.integers(2**58, 2**62)
            ),
        ),
        max_size=60,
    )
)
def test_edge_stats_are_polars_own_quantiles_and_medians(rows: list[tuple[int, int]]) -> None:
    """Read off each edge's sorted latencies, the statistics are polars' linear quantiles and
    medians of the same samples (to the last bits of a float: dividing a column by 1e6
    multiplies by the reciprocal, dividing one value does not)."""
    floor_ms = default_pipeline().outlier_floor.total_seconds() * 1e3
    samples = pl.LazyFrame(
        {"eid": [e for e, _ in rows], "row": list(range(len(rows))), "lat": [x for _, x in rows]},
        schema={"eid": pl.UInt8, "row": pl.UInt32, "lat": pl.Int64},
    ).with_columns(cross=pl.lit(False))
    got = edge_stats(samples, default_pipeline()).sort("eid")
    lat = pl.col("lat") / 1e6
    log = _log_ms(pl.col("lat"), floor_ms)
    want = (
        samples.filter(pl.col("lat") >= 0)
        .group_by("eid")
        .agg(
            lat.count().alias("count"),
            lat.quantile(0.5, "linear").alias("p50_ms"),
            lat.quantile(0.95, "linear").alias("p95_ms"),
            lat.quantile(0.99, "linear").alias("p99_ms"),
            lat.max().alias("max_ms"),
            log.median().alias("med_log"),
            (log - log.median()).abs().median().alias("mad"),
        )
        .sort("eid")
        .collect()
    )
    assert_frame_equal(got, want, check_exact=False, rel_tol=1e-12, abs_tol=1e-12)


@pytest.mark.parametrize("phone_ahead_ms", [-10_000, 0, 10_000])
def test_a_recipients_device_stands_for_them_by_corrected_time(history, phone_ahead_ms):
    # u2's tablet shows m1 40 ms after the send, the phone 1.5 s after. The phone's clock
    # (known from its own sends) is all that differs between the runs: the tablet stands for
    # u2 in each, as the earliest on corrected time. Chosen on raw time, the phone behind by
    # 10 s stood for u2: end to end 1.5 s and an SLO breach that the clock made.
    phone, tablet = "client-u2", "client-u2-tablet"
    for n in range(5):
        history.message(10 + n, "u2", ["u1"], t=200 * n, offsets={phone: phone_ahead_ms})
    t1 = history.message(1, "u1", ["u2"], t=2000, stop={"u2": "WS-RECV.receive"})
    for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
        history.ev(2030 + 5 * k, hop, tablet, "u2", trace=t1, conv_id="c1")
        history.ev(3490 + 5 * k + phone_ahead_ms, hop, phone, "u2", trace=t1, conv_id="c1")
    history.tail(90_000)
    report = analyze(history.frame())
    (phone_clock,) = [c for c in report.clock if c["source"] == phone]
    assert phone_clock["offset_ms"] == phone_ahead_ms
    assert report.findings.filter(pl.col("kind") != "clock_skew").is_empty()
    end_to_end = report.latency["end_to_end"]
    assert (end_to_end["count"], end_to_end["max_ms"]) == (6, 40.0)


def test_a_clock_finding_names_the_findings_from_its_source(history):
    # DESIGN.md section 5: clock_skew says "which findings it affects": those from the
    # skewed source, the first three by kind, trace and recipient (in report order), the
    # rest counted.
    ahead = {"client-u1": 300.0}
    for n in range(5):
        history.message(n, "u1", ["u2"], t=n * 1000, offsets=ahead)
    lost = [
        history.message(n, "u2", ["u1"], t=n * 1000, stop={"u1": "CTRL.add"}, offsets=ahead)
        for n in range(10, 14)
    ]
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        *[("drop", t, "u1", "CTRL.add", "REPO.add") for t in lost],
        ("clock_skew", None, None, None, None),
    ]
    skew = report.findings.row(4, named=True)
    assert skew["source"] == "client-u1"
    assert skew["detail"].endswith(
        "cross-host latencies are corrected for it; it affects 4 other finding(s) from this "
        f"source: drop {lost[0]} for u1, drop {lost[1]} for u1, drop {lost[2]} for u1 and 1 more"
    )


def test_the_offset_comes_from_the_fastest_exchanges_not_an_average(history):
    # NTP-style: each direction's tightest sample bounds the offset. Two exchanges whose
    # request took 400 ms and 250 ms to persist (a slow network, a busy server) would pull an
    # average of the request/response offsets by ~40 ms; they do not move the estimate.
    ahead = {"client-u1": 300.0}
    for n in range(5):
        history.message(n, "u1", ["u2"], t=n * 1000, offsets=ahead)
    for n, slow in ((5, 400.0), (6, 250.0)):
        t = history.message(n, "u1", ["u2"], t=n * 1000, offsets=ahead)
        _shift(history, t, "CTRL.send", "u1", -slow)
        _shift(history, t, "REST.request", "u1", -slow)
    history.tail()
    report = analyze(history.frame())
    (clock,) = [c for c in report.clock if c["source"] == "client-u1"]
    assert (clock["offset_ms"], clock["uncertainty_ms"]) == (300.0, 5.0)
    hops = {(h["from"], h["to"]): h for h in report.latency["hops"]}
    assert hops[("REST.request", "REST.persist")]["max_ms"] == 405.0


def test_a_broadcast_two_servers_logged_gives_no_causal_pair(history):
    # server-2 (its clock 2 s behind) repeated m1's broadcast 300 ms after server-1 (a
    # failover). Which start caused server-1's deliver is unknown: paired with server-2's
    # (the earliest on raw time), it bounded the clocks falsely and put client-u3, whose
    # clock is right, at +290 ms. Reported: the repeated broadcast, and server-2's clock (a
    # bound only: nothing ties it to server-1 both ways).
    for n in range(20, 27):
        history.message(n, "u1", ["u2"], t=n * 100)
    behind = {"server-2": -2000.0}
    for n in range(10, 15):
        history.message(n, "u3", ["u2"], t=n * 100 + 5000, server="server-2", offsets=behind)
    t1 = history.message(1, "u1", ["u2"], t=8000)
    history.ev(
        8320 - 2000, "WS-BROADCAST.start", "server-2", "u1", trace=t1, conv_id="c1",
        recipients=["u2"],
    )  # fmt: skip
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("duplicate", t1, None, "WS-BROADCAST.start", None),
        ("clock_skew", None, None, None, None),
    ]
    assert report.findings["source"].to_list() == ["server-1", "server-2"]
    clock = {c["source"]: c for c in report.clock}
    assert [clock[s]["offset_ms"] for s in ("client-u1", "client-u2", "client-u3")] == [0.0] * 3
    # (-1690 before session 20: at its bound alone; placed with client-u3, which talks to
    # it only, -1995, 5 ms from its true offset)
    assert (clock["server-2"]["offset_ms"], clock["server-2"]["uncertainty_ms"]) == (-1995.0, None)


def test_with_two_servers_the_reference_is_the_one_the_other_clocks_agree_with(history):
    # server-2 persists more messages, but its clock runs 2 s behind everyone else's: as the
    # reference, it made server-1 and client-u1 "2 s ahead", and client-u2 (bounded on one
    # side only) read every message 2 s late: 2 clock findings and 10 SLO breaches for one
    # wrong clock. The reference is server-1, whose clock the others agree with.
    behind = {"server-2": -2000.0}
    for n in range(4):
        history.message(n, "u1", ["u2"], t=n * 1000)
    for n in range(10, 16):
        history.message(n, "u1", ["u2"], t=n * 1000, server="server-2", offsets=behind)
    history.tail(90_000)
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("clock_skew", None, None, None, None)]
    assert report.findings["source"].to_list() == ["server-2"]
    clock = {c["source"]: c for c in report.clock}
    assert clock["server-1"]["reference"] is True
    assert (clock["server-2"]["offset_ms"], clock["server-2"]["uncertainty_ms"]) == (-2000.0, 10.0)
    assert report.latency["end_to_end"]["max_ms"] == 40.0
    assert clock["client-u1"]["offset_ms"] == 0.0


def test_a_retried_hop_is_timed_from_the_attempt_that_led_on(history):
    # 28 messages whose request is persisted 5 ms later; one whose first request was lost and
    # sent again 200 ms later. The server took 5 ms for that one too: from the first attempt,
    # 205 ms, it was a latency_outlier on the server. End to end keeps the wait.
    for n in range(28):
        history.message(n, "u1", ["u2"], t=n * 1000)
    at = {"trace": history.tid(99), "conv_id": "c1"}
    u1, u2 = "client-u1", "client-u2"
    history.ev(40_000, "CTRL.send", u1, "u1", **at)
    history.ev(40_005, "REST.request", u1, "u1", **at)  # lost on its way
    history.ev(40_205, "REST.request", u1, "u1", **at)  # sent again 200 ms later
    history.ev(40_210, "REST.persist", "server-1", "u1", msg_id="m99", **at)
    history.ev(40_215, "REST.response", u1, "u1", msg_id="m99", **at)
    history.ev(40_220, "WS-BROADCAST.start", "server-1", "u1", recipients=["u2"], **at)
    history.ev(40_225, "WS-BROADCAST.deliver", "server-1", "server", peer="u2", **at)
    for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
        history.ev(40_230 + 5 * k, hop, u2, "u2", **at)
    history.tail(100_000)
    report = analyze(history.frame())
    assert report.findings.is_empty()
    hops = {(h["from"], h["to"]): h for h in report.latency["hops"]}
    assert hops[("REST.request", "REST.persist")]["max_ms"] == 5.0
    assert report.latency["end_to_end"]["max_ms"] == 240.0


DIRECT = """
[pipeline]
name = "direct"
[roles]
send = "APP.send"
persist = "API.store"
final = "APP.show"
[[hops]]
id = "APP.send"
[[hops]]
id = "API.store"
after = ["APP.send"]
emitter = "server"
[[hops]]
id = "APP.show"
after = ["APP.send"]
scope = "recipient"
recipient = "actor"
[slo]
end_to_end_ms = 100
"""


def test_a_breach_in_doubt_by_the_two_clients_own_pairs_names_no_one_clock(history, tmp_path):
    # u1's send goes straight to u2's screen: the two clients' own pairs bound their offsets
    # against each other (at most 20 ms apart), tighter than either against the server. The
    # doubt is theirs together, not one clock's.
    path = tmp_path / "direct.toml"
    path.write_text(DIRECT)
    for n in range(1, 5):
        at = {"trace": history.tid(n), "conv_id": "c1"}
        history.ev(n * 1000, "APP.send", "client-u1", "u1", **at)
        history.ev(n * 1000 + 5, "API.store", "server-1", "u1", **at)
        history.ev(n * 1000 + (110 if n == 2 else 20), "APP.show", "client-u2", "u2", **at)
    history.tail(5000)
    report = analyze(history.frame(), pipeline=load_pipeline(path))
    assert history.kinds(report.findings) == [
        ("slo_breach", history.tid(2), "u2", "APP.show", "APP.send")
    ]
    assert report.findings["detail"][0] == (
        "end to end: APP.send -> APP.show took 110.0 ms for recipient u2, above the 100.0 ms"
        " SLO; not certain: at least 90.0 ms within the clock bounds"
    )


def test_a_sample_stamped_backwards_on_one_host_is_said_not_dropped_unsaid(history):
    # Review 24b: u2's REPO.add stamped 6 ms before its WS-RECV.receive (one client, one
    # clock): no latency, no clock finding; the statistics left it out without a word.
    traces = _many(history, n=4)
    _shift(history, traces[1], "REPO.add", "u2", -6)
    history.tail(60_000)
    report = analyze(history.frame())
    hops = {(h["from"], h["to"]): h["count"] for h in report.latency["hops"]}
    assert hops[("WS-RECV.receive", "REPO.add")] == 3
    assert report.inputs["warnings"] == [
        "1 latency sample(s) ran backwards within one log (the later hop stamped before the "
        "earlier one, on one host: no clock explains it); left out of the latency statistics"
    ]
    assert "clock_skew" not in set(report.findings["kind"])


@st.composite
def _offset_constraints(draw):
    """Sources ``s0``.. and per source pair its tightest ``(a, b, w, n)``: from true offsets
    (``w`` their difference plus a latency: consistent) or of any ``w`` (contradictions); the
    preferred and fallback references."""
    n = draw(st.integers(1, 7))
    names = [f"s{i}" for i in range(n)]
    truth = {s: draw(st.integers(-50, 50)) for s in names}
    consistent = draw(st.booleans())
    # pairs within groups only: parts of their own, some with no reference
    group = {s: draw(st.integers(0, 2)) for s in names}
    pairs = [(a, b) for a in names for b in names if a != b and group[a] == group[b]]
    w = st.integers(0, 30) if consistent else st.integers(-40, 40)
    drawn = draw(st.dictionaries(st.sampled_from(pairs), w, max_size=3 * n)) if pairs else {}
    constraints = [
        (a, b, truth[b] - truth[a] + x if consistent else x, draw(st.integers(1, 3)))
        for (a, b), x in drawn.items()
    ]
    preferred = draw(st.lists(st.sampled_from(names), max_size=2, unique=True))
    fallback = draw(st.none() | st.permutations(names))
    return names, constraints, truth if consistent else None, preferred, fallback


@settings(max_examples=300, deadline=None)
@given(_offset_constraints())
def test_each_interval_is_what_the_pairs_kept_allow_and_they_leave_no_negative_cycle(
    drawn,
) -> None:
    """Against its part's reference, every source's interval is the shortest paths to and from
    it over the pairs kept (Floyd-Warshall's), which leave no negative cycle, and its offset
    lies in it; between two sources bounded on both sides (each at its middle) a kept pair
    holds, to rounding. From true offsets: nothing set aside, the truth in every interval."""
    names, constraints, truth, preferred, fallback = drawn
    out, tightest = solve_offsets(
        "s0",
        names,
        constraints,
        preferred=preferred,
        fallback=None if fallback is None else (lambda: fallback),
    )
    assert list(out) == sorted(names)
    drawn_w = {(a, b): w for a, b, w, _ in constraints}
    # no ladders: a source pair set aside goes whole, the others keep their tightest
    assert all(drawn_w[pair] == w for pair, w in tightest.items())
    if truth is not None:
        assert tightest == drawn_w
    dist = {(a, b): 0 if a == b else tightest.get((a, b), math.inf) for a in names for b in names}
    for k in names:
        for a in names:
            for b in names:
                dist[a, b] = min(dist[a, b], dist[a, k] + dist[k, b])
    assert all(dist[s, s] == 0 for s in names)
    # a part's reference: s0, else its first preferred source, else its first fallback one
    # where it has pairs (setting pairs aside splits no part: the rest of a cycle joins it)
    part = {s: {s} for s in names}
    for a, b, _, _ in constraints:
        for s in (joined := part[a] | part[b]):
            part[s] = joined
    for s in names:
        candidates = ["s0", *preferred, *(fallback if fallback and len(part[s]) > 1 else [])]
        ref = next((r for r in candidates if r in part[s]), None)
        c = out[s]
        assert c.against == ref
        lo, hi = (-dist[s, ref], dist[ref, s]) if ref is not None else (-math.inf, math.inf)
        assert (c.lo_ns, c.hi_ns) == (lo, hi)
        assert lo <= c.offset_ns <= hi
        if math.isfinite(lo) and math.isfinite(hi):  # the middle, give or take half the width
            assert (c.offset_ns, c.uncertainty_ns) == (round((lo + hi) / 2), round((hi - lo) / 2))
        else:
            assert c.uncertainty_ns is None
        if truth is not None:
            assert c.consistent and c.contradiction_ns is None
            assert ref is None or lo <= truth[s] - truth[ref] <= hi
    for (a, b), w in tightest.items():
        if out[a].uncertainty_ns is not None and out[b].uncertainty_ns is not None:
            assert out[b].offset_ns - out[a].offset_ns <= w + 1
