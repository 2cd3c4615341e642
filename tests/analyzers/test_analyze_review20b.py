"""Review 20b (the analysis' edge cases, as a user): clocks placed together, not one by one."""

from __future__ import annotations

from tracekit.analyzers import analyze


def test_two_sources_unbounded_against_the_reference_keep_their_own_pairs(history):
    # server-2 runs 300 ms behind; client-u3 talks to server-2 only, so both are bounded on
    # one side at most against server-1. Each placed nearest zero alone, both read 0: u3's
    # requests "persisted 295 ms before they were sent" (a clock finding), every persist ->
    # response and deliver -> receive through server-2 300 ms long.
    behind = {"server-2": -300.0}
    for n in range(1, 4):
        history.message(n, "u1", ["u2"], t=n * 100)
    for n in range(11, 14):
        history.message(n, "u3", ["u2"], t=n * 100, server="server-2", offsets=behind)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("clock_skew", None, None, None, None)]
    assert report.findings.row(0, named=True)["detail"].startswith(
        "server-2 runs 295.0 ms behind server-1 (uncertainty unbounded"
    )
    clock = {c["source"]: (c["offset_ms"], c["uncertainty_ms"]) for c in report.clock}
    assert clock["server-2"] == (-295.0, None)
    assert clock["client-u3"] == (0.0, None)
    hops = {(h["from"], h["to"]): h["max_ms"] for h in report.latency["hops"]}
    assert hops[("REST.persist", "REST.response")] == 10.0
    assert hops[("WS-BROADCAST.deliver", "WS-RECV.receive")] == 10.0
