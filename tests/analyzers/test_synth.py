"""The synthetic history generator: deterministic, schema-true, writable as JSON lines."""

from __future__ import annotations

import orjson
import polars as pl
from polars.testing import assert_frame_equal

from tracekit.schema import validate_event
from tracekit.synth import Fault, generate
from tracekit.table import EVENT_SCHEMA


def test_same_seed_same_history():
    a = generate(5, messages=30, faults=["drop", Fault("delay", hop="REPO.add")])
    b = generate(5, messages=30, faults=["drop", Fault("delay", hop="REPO.add")])
    assert_frame_equal(a.frame(), b.frame())
    assert a.truth == b.truth
    assert not generate(6, messages=30).frame().equals(a.frame())


def test_frame_and_json_lines_agree(tmp_path):
    synth = generate(1, messages=20)
    frame = synth.frame()
    assert frame.schema == EVENT_SCHEMA
    path = tmp_path / "events.jsonl"
    assert synth.write_jsonl(path) == len(synth) == frame.height
    lines = path.read_bytes().splitlines()
    events = [orjson.loads(line) for line in lines]
    for ev in events:
        validate_event(ev)
    assert events[0]["timestamp"].endswith("Z")
    # seq is dense per source and follows the file order
    seqs = pl.DataFrame(
        {"source": [e["source"] for e in events], "seq": [e["seq"] for e in events]}
    )
    per_source = seqs.group_by("source").agg(ok=(pl.col("seq").diff().drop_nulls() == 1).all())
    assert per_source["ok"].all()


def test_nested_stages_are_emitted_after_their_children():
    frame = generate(2, messages=5).frame()
    one = frame.filter(
        pl.col("source").str.starts_with("client-") & pl.col("trace_id").is_not_null()
    )
    first = one.filter(pl.col("trace_id") == one["trace_id"][0])
    recv = first.filter(
        pl.col("recipient").is_null() if "recipient" in first.columns else pl.lit(True)
    )
    order = (
        recv.sort("seq").select(pl.concat_str("stage", pl.lit("."), "action")).to_series().to_list()
    )
    # the receive handler wraps the store updates: it ends (is logged) after them
    if "WS-RECV.receive" in order:
        assert order.index("WS-RECV.receive") > order.index("CTRL.add")
