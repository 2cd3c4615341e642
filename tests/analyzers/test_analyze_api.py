"""The public API: every per-kind function is LazyFrame -> LazyFrame in the findings schema."""

from __future__ import annotations

import uuid
from datetime import timedelta
from itertools import pairwise

import polars as pl
import pytest
from polars.testing import assert_frame_equal

import tracekit.analyzers as analyzers
from tracekit.analyzers import FINDING_SCHEMA, KINDS, analyze, timeline
from tracekit.errors import PipelineError, SchemaError

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


def _drop_history(history) -> pl.DataFrame:
    history.message(1, "u1", ["u2"], t=0)
    history.message(2, "u1", ["u2"], t=100, stop={"u2": "REPO.add"})
    history.tail()
    return history.frame().collect()


@pytest.mark.parametrize(
    "change",
    [
        # milliseconds read as nanoseconds put every hop within the grace window: in flight
        pl.col("timestamp").cast(pl.Datetime("ms", "UTC")),
        pl.col("timestamp").dt.replace_time_zone(None),  # naive: UTC
        pl.col("timestamp").dt.convert_time_zone("Asia/Kolkata"),
        pl.col("seq").cast(pl.Int32),
        pl.col("line").cast(pl.UInt32),
        pl.col("duration_ms").cast(pl.Int64),
        pl.col("source").cast(pl.String),
        pl.lit(None).alias("duration_ms"),
        pl.col("recipients").cast(pl.List(pl.Categorical())),
    ],
    ids=str,
)
def test_an_applications_own_table_is_read_in_the_analysis_types(history, change):
    table = _drop_history(history)
    expected = analyze(table.lazy())
    assert history.kinds(expected.findings) == [
        ("drop", history.tid(2), "u2", "REPO.add", "WS-RECV.receive")
    ]
    got = analyze(table.with_columns(change).lazy())
    assert_frame_equal(got.findings, expected.findings)


def _spelled(ids: pl.Expr, how: str) -> pl.Expr:
    """Trace ids (canonical) as a UUID with dashes, or as upper-case hex."""
    if how == "upper":
        return ids.str.to_uppercase()
    cut = [(0, 8), (8, 4), (12, 4), (16, 4), (20, 12)]
    return pl.concat_str([ids.str.slice(a, n) for a, n in cut], separator="-")


def test_one_message_logged_under_several_spellings_of_its_id_is_one_trace(history):
    # an application's own table: its server logs a message's id as a UUID, one client as
    # upper-case hex, the other as tracekit writes it (the collectors read all three as one)
    lettered = {history.tid(n): f"{n:02d}" + "c0ffee" * 5 for n in (1, 2)}
    tid = pl.col("trace_id").cast(pl.String)
    table = _drop_history(history).with_columns(tid.replace(lettered).cast(pl.Categorical))
    expected = analyze(table.lazy())
    mixed = table.with_columns(
        pl.when(pl.col("source") == "server-1")
        .then(_spelled(tid, "uuid"))
        .when(pl.col("actor") == "u2")
        .then(_spelled(tid, "upper"))
        .otherwise(tid)
        .cast(pl.Categorical)
        .alias("trace_id")
    )
    assert mixed.get_column("trace_id").n_unique() == 3 * 2 + 1  # (+ the heartbeats' null)
    got = analyze(mixed.lazy())
    assert_frame_equal(got.findings, expected.findings)
    assert got.summary == expected.summary
    t2 = lettered[history.tid(2)]
    assert history.kinds(got.findings) == [("drop", t2, "u2", "REPO.add", "WS-RECV.receive")]
    assert_frame_equal(
        timeline(mixed, str(uuid.UUID(t2)).upper()),
        timeline(table, t2),
    )


def test_a_removal_logged_under_another_spelling_of_its_id_is_the_messages(history):
    # review 18c: the store's remover logs the id as an upper-case UUID, the hops as hex
    t1 = history.message(1, "u1", ["u2"])
    history.ev(200, "CTRL.remove", "client-u2", "u2", trace=str(uuid.UUID(t1)).upper())
    history.tail()
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("drop", t1, "u2", "CTRL.add", "CTRL.add")]


def test_a_timeline_reads_an_id_by_the_tables_rule(history):
    # review 18c: a braced UUID has no canonical form in a table (kept as given): asked by it,
    # the timeline found nothing where a laxer rule made it hex
    table = _drop_history(history)
    braced = "{" + str(uuid.UUID(history.tid(2))) + "}"
    table = table.with_columns(
        pl.col("trace_id").cast(pl.String).replace({history.tid(2): braced}).cast(pl.Categorical)
    )
    rows = timeline(table, braced)
    assert rows.height == 9 and rows.filter(pl.col("reached")).height == 7


def test_ids_of_no_trace_id_form_are_taken_as_given(history):
    # a table of the application's own may key its messages by any text: kept as it is (not
    # made null) while another message's id is made canonical
    table = _drop_history(history)
    names = {history.tid(1): "AB" * 16, history.tid(2): "MSG-2"}
    renamed = table.with_columns(
        pl.col("trace_id").cast(pl.String).replace(names).cast(pl.Categorical)
    )
    found = analyze(renamed.lazy()).findings
    assert history.kinds(found) == [("drop", "MSG-2", "u2", "REPO.add", "WS-RECV.receive")]


def test_a_table_without_optional_columns_is_analysed(history):
    # no seq, evidence, durations, ids or lists (recipients from membership then): what a
    # minimal exporter might give
    table = _drop_history(history).drop(
        "seq", "file", "line", "duration_ms", "msg_id", "peer", "recipients"
    )
    report = analyze(table.lazy())
    assert history.kinds(report.findings) == [
        ("drop", history.tid(2), "u2", "REPO.add", "WS-RECV.receive")
    ]
    assert report.findings["evidence"][0].to_list() == []
    assert report.summary["recipients_from"] == {"broadcast": 0, "membership": 2}


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            pl.col("seq").cast(pl.Float64),
            "the event table's 'seq' column is Float64, not an integer",
        ),
        (pl.col("seq").cast(pl.String), "the event table's 'seq' column is String, not an integer"),
        (
            pl.col("timestamp").cast(pl.String),
            "the event table's 'timestamp' column is String, not a Datetime",
        ),
        (
            pl.lit("5").alias("duration_ms"),
            "the event table's 'duration_ms' column is String, not a number",
        ),
        (pl.lit(3).alias("stage"), "the event table's 'stage' column is Int32, not text"),
        (
            pl.lit("u2").alias("recipients"),
            "the event table's 'recipients' column is String, not a list of text",
        ),
    ],
)
def test_a_table_of_other_types_is_refused_naming_the_column(history, change, message):
    table = _drop_history(history).with_columns(change)
    with pytest.raises(SchemaError) as err:
        analyze(table.lazy())
    assert str(err.value) == message
    assert err.value.key == message.split("'")[2]


@pytest.mark.parametrize("column", ["timestamp", "stage", "action", "trace_id", "source"])
def test_a_table_without_a_column_every_path_needs_is_refused(history, column):
    table = _drop_history(history)
    with pytest.raises(SchemaError, match=f"the event table has no '{column}' column"):
        analyze(table.drop(column).lazy())
    # nor one of no value (a Null column: nothing to place an event by, review 17c)
    with pytest.raises(SchemaError, match=f"the event table's '{column}' column holds no value"):
        analyze(table.with_columns(pl.lit(None).alias(column)).lazy())
    # a finder says so when called, as it does of other arguments
    with pytest.raises(SchemaError):
        analyzers.find_drops(table.drop(column))


@pytest.mark.parametrize(
    "column",
    ["stage", "action", "trace_id", "msg_id", "conv_id", "actor", "peer", "source", "file"],
)
def test_names_in_an_enum_are_read_as_any_names(history, column):
    table = _drop_history(history)
    names = table.get_column(column).cast(pl.String)
    enum = pl.Enum(sorted(names.drop_nulls().unique()))
    got = analyze(table.with_columns(pl.col(column).cast(pl.String).cast(enum)).lazy())
    assert_frame_equal(got.findings, analyze(table.lazy()).findings)


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"grace": 5}, TypeError, "grace: a datetime.timedelta, got int"),
        (
            {"slo": {"end_to_end": 0.5}},
            TypeError,
            r"slo\['end_to_end'\]: a datetime.timedelta, got float",
        ),
        # a negative window decided every path, a negative SLO made every message a breach
        (
            {"grace": timedelta(seconds=-5)},
            PipelineError,
            "grace must be from 0 to a year, got -1 day",
        ),
        (
            {"slo": {"end_to_end": timedelta(seconds=-1)}},
            PipelineError,
            r"slo\['end_to_end'\] must be from 0 to a year",
        ),
        ({"grace": timedelta(days=400)}, PipelineError, "grace must be from 0 to a year"),
    ],
)
def test_a_window_that_is_no_length_of_time_is_refused(history, kwargs, error, message):
    # as a model's milliseconds are (0 to a year), said at the call, not as an AttributeError
    with pytest.raises(error, match=message):
        analyze(history.frame(), **kwargs)
    finder = analyzers.find_slo_breaches if "slo" in kwargs else analyzers.find_drops
    with pytest.raises(error, match=message):
        finder(history.frame(), **kwargs)


def test_a_value_its_type_cannot_take_is_refused_naming_the_column(history):
    # a UInt64 seq is read as Int64: one over 2**63 cannot be (review 17c: a polars error)
    base = _drop_history(history)
    table = base.with_columns(pl.col("seq").cast(pl.UInt64))
    table[0, "seq"] = 2**64 - 1
    with pytest.raises(SchemaError, match=r"cannot be read in its types: .* in column 'seq'") as e:
        analyze(table.lazy())
    assert e.value.key == "seq"
    # a failure of the caller's own plan, in a column the analysis does not read, stays theirs
    with pytest.raises(pl.exceptions.InvalidOperationError):
        analyze(base.lazy().with_columns(x=pl.lit(300).cast(pl.UInt8)))


def test_a_timeline_refuses_a_grace_put_in_a_model_by_hand(history):
    # `tracekit trace --grace` and tracekit.testing's timeline put the caller's grace in the
    # model in place: checked there too, as analyze does (review 17e: 9000h was taken)
    from dataclasses import replace

    trace = history.message(1, "u1", ["u2"], t=0)
    # (since review 21a a model built in Python is checked when built)
    with pytest.raises(PipelineError, match="grace must be from 0 to a year"):
        replace(analyzers.default_pipeline(), grace=timedelta(days=400))
    model = analyzers.default_pipeline()
    object.__setattr__(model := replace(model), "grace", timedelta(days=400))
    with pytest.raises(PipelineError, match="grace must be from 0 to a year"):
        analyzers.timeline(history.frame(), trace, pipeline=model)
