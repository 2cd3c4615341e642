"""The plugin and tracekit.testing: kinds given as a string or misspelt, logs of any name,
generators, UUID trace ids, the session report and gates (review B: D1, D2, D7-D10, D14)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import polars
import pytest
from chatflow import send_message

import tracekit.analyzers
import tracekit.collectors
import tracekit.table
from tracekit.testing import assert_complete, assert_no_findings, capture

# shared with in-process pytester runs (see test_pytest_plugin.py)
_SHARED_MODULES = (polars, tracekit.analyzers, tracekit.collectors, tracekit.table)

ROOT = Path(__file__).parents[1]
T1 = "4bf92f3577b34da6a3ce929d0e0e4736"


def _send(**kw: object) -> None:
    import sys

    sys.path.insert(0, str(ROOT))
    try:
        from chatflow import send_message
    finally:
        sys.path.remove(str(ROOT))
    send_message(T1, **{"recipients": ["u2"], **kw})  # type: ignore[arg-type]


# -- D2: kinds -------------------------------------------------------------------------------


def test_a_string_kind_is_one_kind() -> None:
    with capture() as ev:
        _send(twice={"u2": "CTRL.add"})
    with pytest.raises(AssertionError, match=r"^tracekit found 1 problem\(s\):\n- duplicate "):
        assert_no_findings(ev, "duplicate")
    assert_no_findings(ev, "drop")


@pytest.mark.parametrize("kinds", ["duplicates", ["drop", "drops"], []])
def test_an_unknown_or_empty_kind_is_an_error_not_a_pass(kinds: object) -> None:
    with capture() as ev:
        _send()
    with pytest.raises(
        ValueError, match=r"(unknown finding kind|no kind).*: use one or more of drop"
    ):
        assert_no_findings(ev, kinds)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("grace", "error", "message"),
    [
        (5, TypeError, "a duration: a datetime.timedelta or text such as '500ms' or '2s', got int"),
        ("-5s", ValueError, "not a duration: '-5s'"),
    ],
)
def test_a_grace_that_is_no_duration_is_refused_saying_what_one_is(
    grace: object, error: type[Exception], message: str
) -> None:
    # an int was read by a regex ("expected string or bytes-like object")
    with capture() as ev:
        _send()
    with pytest.raises(error, match=message):
        assert_no_findings(ev, grace=grace)  # type: ignore[arg-type]


def test_marker_no_findings_string_and_typo(project: pytest.Pytester) -> None:
    project.makepyfile(
        f'''
        import pytest
        from chatflow import send_message

        @pytest.mark.tracekit(complete=False, no_findings="duplicate")
        def test_string():
            send_message("{T1}", recipients=["u2"], twice={{"u2": "CTRL.add"}})

        @pytest.mark.tracekit(complete=False, no_findings=["duplicates"])
        def test_typo():
            send_message("{T1}", recipients=["u2"])
        '''
    )
    result = project.runpytest("-p", "no:cacheprovider", "-k", "test_string")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*_ test_string _*", f"*- duplicate {T1}*"])
    # the typo is bad usage when collected, before any test runs (review 19b)
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes()
    result.stderr.fnmatch_lines(
        [
            "ERROR: *::test_typo: @pytest.mark.tracekit(no_findings=...): unknown finding "
            "kind(s) 'duplicates': use*"
        ]
    )


# -- D8: generators and UUIDs ------------------------------------------------------------------


def test_a_generator_of_events_is_read_once() -> None:
    with capture() as ev:
        _send()
    assert_complete((e for e in ev), traces=[T1])
    with capture() as lost:
        _send(stop_before={"u2": "REPO.add"})
    with pytest.raises(AssertionError) as info:
        assert_no_findings(e for e in lost)
    assert "✓ CTRL.send" in str(info.value)  # the timeline of the explanation is not empty


def test_the_explanation_shows_control_characters_from_the_logs_as_escapes() -> None:
    # pytest prints the assertion message to the terminal: a recipient id holding an escape
    # sequence must not clear the screen or retitle the window there
    hostile = "u2\x1b]0;pwned\x07\x1b[2J"
    with capture() as lost:
        _send(recipients=[hostile], stop_before={hostile: "CTRL.add"})
    with pytest.raises(AssertionError) as info:
        assert_no_findings(lost)
    text = str(info.value)
    assert "\x1b" not in text and "\x07" not in text
    assert "recipient=u2\\x1b]0;pwned\\x07\\x1b[2J" in text  # shown, escaped, in the finding
    assert "recipient u2\\x1b]0;pwned\\x07\\x1b[2J:" in text  # and in the timeline


def test_traces_take_the_uuid_form() -> None:
    with capture() as ev:
        _send()
    assert_complete(ev, traces=[str(uuid.UUID(T1))])
    assert_complete(ev, traces=T1.upper())


# -- D7: tracekit_logs through the collectors ---------------------------------------------------

LOG_TESTS = f'''
import gzip
import pytest
import tracekit
from chatflow import send_message


def lost(path):
    inst = tracekit.Instrumentation(service="server", source="srv-1", sink=path)
    with inst.activate():
        send_message("{T1}", recipients=["u2"], stop_before={{"u2": "WS-RECV.receive"}})
    inst.close()


@pytest.mark.tracekit(complete=True)
def test_dot_log(tracekit_logs):
    lost(tracekit_logs / "server.log")


@pytest.mark.tracekit(complete=True)
def test_gzip(tracekit_logs, tmp_path):
    lost(tmp_path / "plain.jsonl")
    (tracekit_logs / "server.jsonl.gz").write_bytes(gzip.compress((tmp_path / "plain.jsonl").read_bytes()))


@pytest.mark.tracekit(complete=True)
def test_truncated_gzip(tracekit_logs, tmp_path):
    send_message("{T1}", recipients=["u2"])
    whole = gzip.compress(b'{{"timestamp": "2026-01-01T00:00:00Z"}}\\n' * 50)
    (tracekit_logs / "client.jsonl.gz").write_bytes(whole[: len(whole) // 2])


@pytest.mark.tracekit(complete=True)
def test_malformed_line(tracekit_logs):
    send_message("{T1}", recipients=["u2"])
    (tracekit_logs / "server.jsonl").write_text('{{"timestamp": "2026-01-01T00:00:0\\n')
'''


def test_logs_of_any_name_are_read_and_malformed_lines_fail(project: pytest.Pytester) -> None:
    project.makepyfile(test_logs=LOG_TESTS)
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=4)
    result.stdout.fnmatch_lines(
        [
            "*_ test_dot_log _*",
            f"*- drop {T1} (recipient=u2, stage=WS-RECV.receive*",
            "*_ test_gzip _*",
            f"*- drop {T1} (recipient=u2, stage=WS-RECV.receive*",
            # a compressed log cut short loses its end with no malformed line (it passed)
            "*_ test_truncated_gzip _*",
            "tracekit_logs holds what could not be read (a lost line may hold the missing "
            "hop): *client.jsonl.gz: truncated gzip stream*",
            "*_ test_malformed_line _*",
            "tracekit_logs holds what could not be read (a lost line may hold the missing "
            "hop): 1 line(s) that could not be read: *server.jsonl:1: *",
        ]
    )


# -- D1, D9, D10: session report and gates -----------------------------------------------------

REUSE_TESTS = f'''
import pytest
from chatflow import send_message


@pytest.mark.tracekit
def test_a():
    send_message("{T1}", recipients=["u2"])


@pytest.mark.tracekit
def test_b():
    send_message("{T1}", recipients=["u2"])


@pytest.mark.tracekit(complete=False)
def test_c():
    send_message("{T1}", recipients=["u2"], stop_before={{"u2": "CTRL.add"}})
'''


def test_session_gates_keep_the_tests_apart(project: pytest.Pytester) -> None:
    project.makepyfile(test_reuse=REUSE_TESTS)
    out = project.path / "report.json"
    result = project.runpytest(
        "-p", "no:cacheprovider", "--tracekit-gates=duplicate=0,drop=0", f"--tracekit-report={out}"
    )
    result.assert_outcomes(passed=3)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        [
            "PASS duplicate <= 0: 0 duplicate finding(s), allowed 0",
            "FAIL drop <= 0: 1 drop finding(s), allowed 0",
            # (the example names its test: review 19b)
            f"    {T1} recipient u2 at CTRL.add (last seen REPO.add) in test_reuse.py::test_c",
        ]
    )
    assert "None:None" not in result.stdout.str()
    report = json.loads(out.read_text())
    assert report["summary"]["messages"] == 3
    assert [(f["kind"], f["trace_id"], f["test"], f["conv_id"]) for f in report["findings"]] == [
        ("drop", T1, "test_reuse.py::test_c", "c1")
    ]


def test_max_latency_session_gate(project: pytest.Pytester) -> None:
    project.makepyfile(test_reuse=REUSE_TESTS)
    for spec in ("max:end_to_end=0.001ms", "max_latency:end_to_end=0.001ms"):
        result = project.runpytest(
            "-p", "no:cacheprovider", "-k", "test_a", f"--tracekit-gates={spec}"
        )
        assert result.ret == pytest.ExitCode.TESTS_FAILED
        result.stdout.fnmatch_lines(
            ["FAIL max end_to_end <= 0.001 ms: max end_to_end = * ms over 1 samples"]
        )


def test_report_is_written_when_no_event_was_captured(project: pytest.Pytester) -> None:
    project.makepyfile(test_none="def test_nothing():\n    pass\n")
    out = project.path / "report.json"
    out.write_text("stale")
    result = project.runpytest("-p", "no:cacheprovider", f"--tracekit-report={out}")
    assert result.ret == 0
    result.stdout.fnmatch_lines([f"wrote --tracekit-report {out}: 0 event(s) from 0 test(s)"])
    report = json.loads(out.read_text())
    assert (report["summary"]["messages"], report["findings"]) == (0, [])


# -- D14: pipeline objects ---------------------------------------------------------------------


def test_marker_takes_a_pipeline_object(project: pytest.Pytester) -> None:
    project.makepyfile(
        f'''
        import pytest
        from chatflow import send_message
        from tracekit.analyzers import default_pipeline

        @pytest.mark.tracekit(pipeline=default_pipeline())
        def test_object():
            send_message("{T1}", recipients=["u2"])

        @pytest.mark.tracekit(pipeline=42)
        def test_number():
            send_message("{T1}", recipients=["u2"])
        '''
    )
    result = project.runpytest("-p", "no:cacheprovider", "-k", "test_object")
    result.assert_outcomes(passed=1)
    result = project.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        [
            "*::test_number: @pytest.mark.tracekit(pipeline=...): expected a path to a pipeline "
            "TOML file or a tracekit.analyzers.Pipeline, not int*"
        ]
    )


# -- second reading: the session report keeps a shared server one source -----------------------


def _shared_server_lines(traces: list[str], conv: str = "c1") -> dict[str, list[dict[str, object]]]:
    """Messages sent at once through one server and one client pair: their seqs interleave."""
    import datetime as dt

    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    hops = [
        ("CTRL", "send", "client-u1", "u1", None),
        ("REST", "request", "client-u1", "u1", None),
        ("REST", "persist", "srv", "server", None),
        ("WS-BROADCAST", "start", "srv", "server", None),
        ("WS-BROADCAST", "deliver", "srv", "server", "u2"),
        ("REST", "response", "client-u1", "u1", None),
        ("WS-RECV", "receive", "client-u2", "u2", None),
        ("REPO", "add", "client-u2", "u2", None),
        ("CTRL", "add", "client-u2", "u2", None),
    ]
    seq: dict[str, int] = {}
    out: dict[str, list[dict[str, object]]] = {t: [] for t in traces}
    for h, (stage, action, src, actor, peer) in enumerate(hops):
        for i, t in enumerate(traces):
            seq[src] = seq.get(src, 0) + 1
            ts = base + dt.timedelta(milliseconds=10 * h + i)
            event: dict[str, object] = {
                "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
                "stage": stage,
                "action": action,
                "event": f"{stage}.{action}",
                "trace_id": t,
                "conv_id": conv,
                "actor": actor,
                "source": src,
                "seq": seq[src],
            }
            if h >= 2:
                event["msg_id"] = f"m{i}"
            if action == "start":
                event["recipients"] = ["u2"]
            if peer:
                event["peer"] = peer
            out[t].append(event)
    return out


def test_a_server_shared_by_the_tests_stays_one_source() -> None:
    # Split per test, its seqs had holes in every test's share: 18 false log_gap findings,
    # which also make real drops indeterminate; and its clock reference served one test only.
    from tracekit.pytest_plugin import _session_report

    traces = ["a" * 32, "b" * 32, "c" * 32]
    lines = _shared_server_lines(traces)
    report = _session_report([{"test": f"t.py::test[{t[0]}]", "events": lines[t]} for t in traces])
    assert report["findings"] == []
    assert sorted(c["source"] for c in report["clock"]) == ["client-u1", "client-u2", "srv"]


def test_a_test_that_restarts_the_server_has_sources_of_its_own() -> None:
    # each test's server counts from seq 1: the same (source, seq) in two tests are two runs
    from tracekit.pytest_plugin import _session_report

    a, b = "a" * 32, "b" * 32
    tests = [
        {"test": f"t.py::test[{t[0]}]", "events": _shared_server_lines([t])[t]} for t in (a, b)
    ]
    report = _session_report(tests)
    assert report["findings"] == []
    assert sorted(c["source"] for c in report["clock"] if c["reference"]) == [
        "srv @ t.py::test[a]",
        "srv @ t.py::test[b]",
    ]


def test_findings_come_back_in_the_tests_own_terms() -> None:
    # a duplicate's msg_ids and a conversation named with " @ " were shown with the test's
    # scoping (" @ t.py::test_x"), or cut at the first " @ "
    from tracekit.pytest_plugin import _session_report

    a = "a" * 32
    events = _shared_server_lines([a], conv="support @ acme")[a]
    again = dict(next(e for e in events if e["action"] == "persist"), msg_id="m9", seq=4)
    report = _session_report([{"test": "t.py::test_x", "events": [*events, again]}])
    (dup,) = report["findings"]
    assert (dup["kind"], dup["trace_id"], dup["conv_id"], dup["source"], dup["test"]) == (
        "duplicate",
        a,
        "support @ acme",
        "srv",
        "t.py::test_x",
    )
    assert dup["detail"] == "one trace id got two canonical msg_ids: m0 and m9"


def test_dict_events_with_uuid_trace_ids_read_like_the_files() -> None:
    # the log readers turn a client's UUID into 32 hex; dicts kept it, so traces=[uuid]
    # found "no events at all" for a message that was delivered
    a = "a" * 32
    events = [dict(e, trace_id=str(uuid.UUID(a))) for e in _shared_server_lines([a])[a]]
    assert_complete(events, traces=[str(uuid.UUID(a))])
    assert_no_findings(events)


def test_a_session_count_gate_over_no_message_fails(project: pytest.Pytester) -> None:
    # the tests logged history loads and no message: "0 drops" is no evidence (it passed)
    project.makepyfile(
        test_history="""
import pytest, tracekit

@pytest.mark.tracekit(allow_empty=True)
def test_history_only():
    with tracekit.bind(actor="u1", conv_id="c1"):
        tracekit.emit("REST", "fetch_start")
        tracekit.emit("REST", "fetch_end")
"""
    )
    result = project.runpytest("-p", "no:cacheprovider", "--tracekit-gates=drop=0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["FAIL drop <= 0: no messages to check for drop: the logs hold no message *"]
    )


# -- review 18a: tracekit.testing over log files, a model's path, a misspelt hop ---------------

SAMPLES = ROOT.parent / "sample_logs" / "jsonl"


def _copy_of_samples(to: Path, broken: bool) -> Path:
    to.mkdir()
    for log in SAMPLES.glob("*.jsonl"):
        (to / log.name).write_bytes(log.read_bytes())
    if broken:
        with (to / "client-u1.jsonl").open("ab") as fh:
            fh.write(b'{"timestamp": "2026-11-25T10:00:09Z", "stage": \n')
    return to


def test_the_report_of_log_files_keeps_their_account(tmp_path: Path) -> None:
    from tracekit.testing import analyze_events

    logs = _copy_of_samples(tmp_path / "logs", broken=True)
    inputs = analyze_events(logs).to_dict()["inputs"]
    assert {k: inputs[k] for k in ("files", "lines", "events", "malformed")} == {
        "files": 3,
        "lines": 28,
        "events": 27,
        "malformed": 1,
    }
    # events given as dicts or a table have no reading: the events are counted still
    with capture() as ev:
        _send()
    assert analyze_events(ev).to_dict()["inputs"]["events"] == len(ev)


def test_an_assertion_over_log_files_that_lost_lines_fails(tmp_path: Path) -> None:
    # a lost line may hold the missing hop: passing over it says nothing (as tracekit_logs)
    logs = _copy_of_samples(tmp_path / "logs", broken=True)
    with pytest.raises(AssertionError) as info:
        assert_no_findings(logs, kinds="duplicate")
    assert str(info.value) == (
        "the logs hold what could not be read (a lost line may hold the missing hop): 1 line(s) "
        f"that could not be read: {logs / 'client-u1.jsonl'}:13: invalid JSON at character 45"
    )
    assert_no_findings(_copy_of_samples(tmp_path / "whole", broken=False), kinds="duplicate")


def test_the_assertions_take_a_model_by_its_path_when_they_fail() -> None:
    # the failure path built a timeline with the path as a model: a TypeError hid it
    from tracekit.testing import assert_latency

    model = ROOT.parent / "analyzers" / "default_pipeline.toml"
    with pytest.raises(AssertionError, match="not every message was delivered completely"):
        assert_complete(SAMPLES, pipeline=model)
    with pytest.raises(AssertionError, match=r"(?s)tracekit found .* ✗ REPO\.add"):
        assert_no_findings(SAMPLES, kinds="drop", pipeline=str(model))
    with pytest.raises(AssertionError, match="latency of end_to_end over 3 samples: p99"):
        assert_latency(SAMPLES, p99="1ms", pipeline=model)


def test_a_latency_assertion_on_a_hop_the_pipeline_lacks_is_a_usage_error() -> None:
    from tracekit.testing import assert_latency

    with pytest.raises(
        ValueError, match=r"^assert_latency CTRL.send->CTRL.add: not a hop of the pipeline \(use"
    ):
        assert_latency(SAMPLES, "CTRL.send->CTRL.add", p99="1s")


def test_a_session_gate_on_a_hop_the_pipeline_lacks_is_a_usage_error(
    project: pytest.Pytester,
) -> None:
    project.makepyfile(test_reuse=REUSE_TESTS)
    result = project.runpytest(
        "-p", "no:cacheprovider", "--tracekit-gates=p99:CTRL.send->CTRL.add=5ms"
    )
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(
        ["*--tracekit-gates: p99:CTRL.send->CTRL.add=5ms: not a hop of the pipeline*"]
    )


def test_traces_are_found_in_a_table_that_spells_them_in_upper_case() -> None:
    # review 18c: the "no events at all for trace(s)" check compared canonical ids with the
    # table's own spelling: an upper-case table's message was said to have no events
    import polars as pl

    with capture() as ev:
        _send()
    table = tracekit.table.events_frame(ev).with_columns(
        pl.col("trace_id").cast(pl.String).str.to_uppercase().cast(pl.Categorical)
    )
    assert table.get_column("trace_id").drop_nulls().unique().to_list() == [T1.upper()]
    assert_complete(table, traces=T1.upper())


def test_a_path_that_says_corrupt_is_no_lost_line(tmp_path: Path) -> None:
    # review 18c: "truncated"/"corrupt" anywhere in a warning, a path's words included, failed
    # the assertion over logs that lost nothing (a hidden entry's warning names the path)
    logs = _copy_of_samples(tmp_path / "truncated-corrupt", broken=False)
    (logs / ".env").write_text("KEY=1\n")
    assert_no_findings(logs, kinds="duplicate")


def test_a_complete_check_that_fails_on_a_reorder_says_every_message_was_delivered() -> None:
    # review 25d: "not every message was delivered completely (2/2 deliveries)" of a reorder
    t1, t2 = "1" * 32, "2" * 32

    def stored(tid: str, msg_id: str) -> None:
        with tracekit.message(tid, conv_id="c1", msg_id=msg_id), tracekit.bind(actor="u2"):
            for stage, action in (("WS-RECV", "receive"), ("REPO", "add"), ("CTRL", "add")):
                tracekit.emit(stage, action)

    with capture() as events:
        send_message(t1, msg_id="m1", stop_before={"u2": "WS-RECV.receive"})
        send_message(t2, msg_id="m2", stop_before={"u2": "WS-RECV.receive"})
        stored(t2, "m2")
        stored(t1, "m1")
    with pytest.raises(AssertionError) as info:
        assert_complete(events)
    assert str(info.value).splitlines()[0] == (
        "every message was delivered (2/2 deliveries), not every one in the order it was persisted:"
    )


def test_a_complete_check_that_fails_on_an_unexpected_delivery_says_all_were_delivered() -> None:
    # review 25e: "not every message was delivered completely (1/1 deliveries)"
    t1 = "1" * 32
    with capture() as events:
        send_message(t1)
        with tracekit.message(t1, conv_id="c1", msg_id="m1"), tracekit.bind(actor="server"):
            tracekit.emit("WS-BROADCAST", "deliver", peer="u3")  # u3, not named, gets it too
    with pytest.raises(AssertionError) as info:
        assert_complete(events)
    assert str(info.value).splitlines()[0] == (
        "every message was delivered (1/1 deliveries), and events no message's path expects "
        "(see the unexpected findings):"
    )
