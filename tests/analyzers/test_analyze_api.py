"""The public API: every per-kind function is LazyFrame -> LazyFrame in the findings schema."""

from __future__ import annotations

from datetime import timedelta
from itertools import pairwise

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import tracekit.analyzers as analyzers
from tracekit.analyzers import FINDING_SCHEMA, KINDS, analyze
from tracekit.errors import PipelineError

FINDERS = [name for name in analyzers.__all__ if name.startswith("find_")]


def test_all_is_sorted_and_complete():
    assert analyzers.__all__ == sorted(analyzers.__all__, key=lambda s: (not s.isupper(), s))
    assert {"analyze", "Report", "Pipeline", "default_pipeline", "load_pipeline"} <= set(
        analyzers.__all__
    )


@pytest.mark.parametrize("name", FINDERS)
def test_finders_are_lazy_and_schema_true(history, name):
    history.message(1, "u1", ["u2"], t=0, stop={"u2": "CTRL.add"})
    history.tail()
    out = getattr(analyzers, name)(history.frame())
    assert isinstance(out, pl.LazyFrame)
    assert out.collect_schema() == FINDING_SCHEMA
    assert set(out.collect()["kind"].to_list()) <= set(KINDS)


@pytest.mark.parametrize("name", FINDERS)
def test_finders_read_nothing_until_collected(history, name):
    # as polars' own frames: the call builds a plan; the events are read (and the paths
    # rebuilt) by each collect, and a plan collected after the events changed sees the change
    history.message(1, "u1", ["u2"], t=0, stop={"u2": "CTRL.add"})
    history.tail()
    reads: list[int] = []
    frame = history.frame().collect()

    def events() -> pl.DataFrame:
        reads.append(1)
        return frame

    out = getattr(analyzers, name)(pl.defer(events, schema=frame.schema))
    assert reads == [] and out.collect_schema() == FINDING_SCHEMA and reads == []
    first = out.collect()
    assert reads == [1]
    if name == "find_drops":
        assert history.kinds(first) == [("drop", history.tid(1), "u2", "CTRL.add", "REPO.add")]
    assert_frame_equal(out.collect(), first)
    assert reads == [1, 1]


def test_a_finder_refuses_an_unknown_slo_when_called(history):
    with pytest.raises(PipelineError, match="unknown SLO 'A->B'"):
        analyzers.find_slo_breaches(history.frame(), slo={"A->B": timedelta(seconds=1)})


@pytest.mark.parametrize("name", FINDERS)
def test_a_finder_takes_a_dataframe_and_refuses_what_is_not_one_when_called(history, name):
    # as analyze does: a DataFrame is taken; anything else, or a pipeline that is not a
    # Pipeline (a path), fails at the call with what it wanted, not as an AttributeError
    # at some later collect
    history.message(1, "u1", ["u2"], t=0, stop={"u2": "CTRL.add"})
    history.tail()
    finder = getattr(analyzers, name)
    frame = history.frame()
    assert_frame_equal(finder(frame.collect()).collect(), finder(frame).collect())
    with pytest.raises(TypeError, match="events: a polars LazyFrame or DataFrame, got dict"):
        finder({"stage": []})
    with pytest.raises(TypeError, match=r"pipeline: a Pipeline \(load_pipeline\(path\)\), got str"):
        finder(frame, pipeline="pipeline.toml")


def test_finders_agree_with_analyze(history):
    history.message(1, "u1", ["u2", "u3"], t=0, stop={"u2": "CTRL.add"})
    history.ev(30, "CTRL.add", "client-u3", "u3", trace=history.tid(1), conv_id="c1")
    history.seq["server-1"] += 2
    history.message(2, "u1", ["u2", "u3"], t=1000)
    history.tail()
    report = analyze(history.frame())
    parts = pl.concat([getattr(analyzers, n)(history.frame()).collect() for n in FINDERS])
    key = ["kind", "trace_id", "recipient", "stage", "source"]
    assert sorted(parts.select(key).rows(), key=repr) == sorted(
        report.findings.select(key).rows(), key=repr
    )
    assert report.summary["drop"] == 1 and report.summary["duplicate"] == 1
    assert report.summary["log_gap"] == 1


@pytest.mark.parametrize("chunks", [18, 40])
def test_a_table_in_many_chunks_is_analysed_as_in_one(history, chunks):
    """The hop events are the table's own columns: read in place from a few chunks (a large
    file's blocks), copied into one beyond 32; the findings are the same either way."""
    t1 = history.message(1, "u1", ["u2", "u3"], t=0, stop={"u3": "CTRL.add"})
    history.ev(40, "CTRL.add", "client-u2", "u2", trace=t1, conv_id="c1")
    for n in range(2, 12):
        history.message(n, "u1", ["u2", "u3"], t=100.0 * n)
    history.tail()
    table = history.frame().collect()
    cuts = [table.height * k // chunks for k in range(chunks + 1)]
    parts = pl.concat([table.slice(a, b - a) for a, b in pairwise(cuts)], rechunk=False)
    assert parts.n_chunks() == chunks
    whole, cut = analyze(table.lazy()), analyze(parts.lazy())
    assert history.kinds(cut.findings) == [
        ("drop", t1, "u3", "CTRL.add", "REPO.add"),
        ("duplicate", t1, "u2", "CTRL.add", None),
    ]
    assert cut.to_dict() == whole.to_dict()


def test_a_trace_seen_only_at_recipient_hops_is_a_message(history):
    # Message hops are grouped over their own rows: these traces have none, and still count.
    t1 = history.message(1, "u1", ["u2"], t=0)
    t9, t8 = history.tid(9), history.tid(8)
    history.ev(30, "WS-RECV.receive", "client-u2", "u2", trace=t9, conv_id="c1")
    history.ev(31, "REPO.add", "client-u2", "u2", trace=t9, conv_id="c1")
    history.ev(32, "WS-RECV.receive", "client-u3", None, trace=t8)  # names no recipient
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [
        ("drop", t9, "u2", "CTRL.add", "REPO.add"),
        # begun before its send could be seen (within the grace window of the logs' start)
        ("in_flight", t9, None, "CTRL.send", "WS-RECV.receive"),
        ("in_flight", t8, None, "CTRL.send", "WS-RECV.receive"),
    ]
    assert (report.summary["messages"], report.summary["delivered"]) == (3, 1)
    assert report.summary["recipients_from"] == {"broadcast": 1, "membership": 2}
    assert t1 not in report.findings["trace_id"].to_list()


def test_a_trace_whose_events_say_nothing_but_a_message_hop_is_a_message(history):
    # no sender, conversation, id, list or recipient: its row comes from its hops alone
    history.message(1, "u1", ["u2"], t=0)
    t9 = history.tid(9)
    history.ev(30, "REST.response", "server-1", "u1", trace=t9)
    history.tail()
    report = analyze(history.frame())
    assert history.kinds(report.findings) == [("in_flight", t9, None, "CTRL.send", "REST.response")]
    assert report.summary["messages"] == 2
