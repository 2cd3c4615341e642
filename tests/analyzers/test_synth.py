"""The synthetic history generator: deterministic, schema-true, writable as JSON lines."""

from __future__ import annotations

import orjson
import polars as pl
from polars.testing import assert_frame_equal

from tracekit.schema import validate_event
from tracekit.synth import FAULT_KINDS, Fault, generate
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
    # the stages' lengths go to the file as tracekit writes them (absent on point events)
    durations = [e.get("duration_ms") for e in events]
    assert durations == frame.get_column("duration_ms").to_list()
    assert None in durations and any(d is not None for d in durations)


def test_nested_stages_are_emitted_after_their_children():
    frame = generate(2, messages=5, include_sender=False).frame()
    recv = frame.filter((pl.col("stage") == "WS-RECV") & (pl.col("action") == "receive")).row(
        0, named=True
    )
    path = frame.filter(
        (pl.col("trace_id") == recv["trace_id"]) & (pl.col("source") == recv["source"])
    ).sort("seq")
    hops = (path["stage"] + "." + path["action"]).to_list()
    # the receive handler wraps the store updates: logged last, stamped first
    assert hops == ["CTRL.add", "REPO.add", "WS-RECV.receive"]
    assert path["timestamp"].to_list() == sorted(path["timestamp"].to_list(), reverse=True)


def test_each_line_is_written_when_its_stage_ends():
    # stamped at the start, duration_ms to the end: in each log the ends follow the order the
    # lines were written (the rows' order; to the microsecond duration_ms is rounded to), as
    # tracekit's own lines do, whatever the fault (review 16a: a reorder wrote lines a second
    # before their stamps)
    for kind in FAULT_KINDS:
        frame = generate(3, messages=60, users=6, faults=[kind]).frame()
        durations = frame.get_column("duration_ms")
        assert durations.null_count() < frame.height
        assert durations.drop_nulls().min() > 0  # type: ignore[operator]
        ends = pl.col("timestamp") + pl.duration(
            microseconds=pl.col("duration_ms").fill_null(0) * 1000
        )
        late = frame.with_columns(end=ends).filter(
            pl.col("end") < pl.col("end").cum_max().over("source") - pl.duration(microseconds=1)
        )
        assert late.is_empty(), (kind, late.head(3).to_dicts())
