"""kv reading, review 7: a ``time=`` pair that is no timestamp."""

from __future__ import annotations

from collectors_helpers import at, counts

from tracekit.collectors import MemorySource, collect

TF = "f" * 32


# -- 8: a time= pair that is no timestamp ---------------------------------------------------


def test_a_time_pair_that_is_no_timestamp_falls_back_to_the_prefix_time() -> None:
    lines = [
        f"2026-01-01T10:00:0{i}Z INFO app: stage=REST action=request trace_id={TF} time=15ms"
        for i in range(3)
    ]
    lines += [
        # a timestamp pair that does not parse, a ts pair that does
        f"timestamp=soon ts=2026-01-01T10:00:03Z stage=REST action=request trace_id={TF}",
        # nothing that parses: malformed, the pair named
        f"stage=REST action=request trace_id={TF} time=15ms",
    ]
    got = collect([MemorySource(lines, name="server-1.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action", "trace_id", "timestamp").rows() == [
        (i + 1, "REST", "request", TF, at(i)) for i in range(4)
    ]
    assert counts(got) == (5, 4, 1, 0, {"kv": 1}, [])
    assert got.inputs.examples == ["server-1.log:5: unparseable timestamp 15ms"]
