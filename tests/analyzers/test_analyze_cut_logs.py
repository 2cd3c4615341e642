"""Clean histories whose logs begin mid-traffic (review 21d): what a rotated or late-started
log, or each round of ``watch``, reads. Nothing went wrong, so the only findings are the lost
beginnings (``log_gap``) and the messages sent before the logs began (``in_flight`` at the
send); the clocks are placed by the pairs the cut left."""

from __future__ import annotations

import orjson
import polars as pl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.analyzers import analyze
from tracekit.collectors import collect
from tracekit.synth import generate

_NOT_REQUEST = ("REST.request", "REST.response")


def test_a_sender_whose_exchanges_were_cut_is_placed_by_its_end_to_end_pair(history):
    # u1 runs 60 ms ahead and its log begins at its send's line (written when the send ends,
    # after its request and response, which the cut took): no exchange bounds its clock,
    # but the send is before u2's receive. u2, which sends too, is known to within 5 ms.
    # Left at 0, u1's send read 20 ms after u2 showed it (a false clock finding); placed at
    # its bound from u2's interval, not from u2's estimate, 5 ms after (the same)
    history.message(1, "u2", ["u3"], t=0)
    history.seq["client-u1"] = 3
    t2 = history.message(
        2, "u1", ["u2"], t=1000, skip_message=_NOT_REQUEST, offsets={"client-u1": 60.0}
    )
    send = next(r for r in history.rows if r["event"] == "CTRL.send" and r["trace_id"] == t2)
    send["duration_ms"] = 20.0
    history.tail()
    report = analyze(history.frame())
    assert report.findings.select("kind", "source").rows() == [("log_gap", "client-u1")]
    assert report.findings["detail"][0].endswith(f"not reported as drops: {t2} (at REST.response)")
    clock = {c["source"]: c for c in report.clock}
    # (true latency 40 ms, logged 20 ms before its send: u1 is at least 20 ms ahead)
    assert (clock["client-u1"]["offset_ms"], clock["client-u1"]["uncertainty_ms"]) == (20.0, None)


def test_two_sources_no_persisting_server_ties_are_placed_against_each_other(history):
    # a second system whose persisting server's log is not given: ws-2 and u9 (35 ms behind)
    # share only their deliveries. Both left at 0, each delivery read as received before it
    # was sent: a clock finding for 35 ms, below the 100 ms a clock may be off
    history.message(1, "u1", ["u2"], t=0)
    sends = ("CTRL.send", *_NOT_REQUEST, "REST.persist")
    for n in range(10, 13):
        history.message(
            n, "u8", ["u9"], t=n * 1000, server="ws-2", skip_message=sends,
            offsets={"client-u9": -40.0},
        )  # fmt: skip
    history.tail()
    report = analyze(history.frame())
    assert set(report.findings["kind"]) == {"unexpected"}  # (the sends not in the logs)
    clock = {c["source"]: (c["offset_ms"], c["against"]) for c in report.clock}
    assert clock["client-u9"] == (-35.0, "ws-2")
    assert clock["ws-2"] == (0.0, "ws-2")


@settings(
    max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), cut=st.floats(0.02, 0.9))
def test_a_clean_history_read_from_mid_traffic_finds_only_what_the_cut_lost(
    tmp_path_factory, seed, cut
):
    synth = generate(seed, messages=20, users=4, conversations=2, max_members=3)
    logs = tmp_path_factory.mktemp("cut")
    synth.write_jsonl(logs / "all.jsonl")
    lines = (logs / "all.jsonl").read_bytes().splitlines(keepends=True)
    (logs / "all.jsonl").write_bytes(b"".join(lines[int(len(lines) * cut) :]))
    found = analyze(collect([str(logs)]).events).findings
    other = found.filter(
        (pl.col("kind") != "log_gap")
        & ~((pl.col("kind") == "in_flight") & pl.col("recipient").is_null())
    )
    assert other.is_empty(), other.to_dicts()
    assert found.filter(pl.col("kind") == "in_flight")["stage"].unique().to_list() in (
        [],
        ["CTRL.send"],
    )
    # every source's lost beginning said, with its count
    first = {}
    for line in lines[int(len(lines) * cut) :]:
        ev = orjson.loads(line)
        first.setdefault(ev["source"], ev["seq"])
    gaps = dict(found.filter(pl.col("kind") == "log_gap").select("source", "detail").rows())
    assert {s for s, q in first.items() if q > 1} == set(gaps)
    for s, detail in gaps.items():
        assert detail.startswith(f"the log begins at seq {first[s]}: {first[s] - 1} earlier")
