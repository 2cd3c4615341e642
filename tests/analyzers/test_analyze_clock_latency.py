"""Clock offsets, corrected latencies, outliers and SLO breaches."""

from __future__ import annotations

from datetime import timedelta

import pytest

from tracekit.analyzers import analyze, find_clock_skew, find_latency_outliers, find_slo_breaches
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
    }
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
        "client-u1 runs +300.0 ms ahead of server-1 (uncertainty 5.0 ms"
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
    assert "contradicts causality" in skew["detail"][0]
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
