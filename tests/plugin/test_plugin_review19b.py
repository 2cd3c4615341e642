"""Review 19b (the instrumentation, tracekit.testing and the plugin, as a user): an app's own
configuration kept by capture(), the session's pipeline, marker mistakes said as bad usage
when collected, what tracekit_logs lost in the session report, --collect-only, mixed inputs,
carriers of (name, value) pairs, message(trace_id=...), a FIFO sink without a reader."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import polars
import pytest

import tracekit
import tracekit.analyzers
import tracekit.collectors
import tracekit.table
from tracekit.errors import ConfigError
from tracekit.testing import assert_complete, capture, format_timeline

# shared with in-process pytester runs (see test_pytest_plugin.py)
_SHARED_MODULES = (polars, tracekit.analyzers, tracekit.collectors, tracekit.table)

ROOT = Path(__file__).parents[1]
T1 = "4bf92f3577b34da6a3ce929d0e0e4736"
T2 = "0b9e6f4c1d2a4e8b9c3f5a6b7c8d9e0f"

MINI = """
[pipeline]
name = "mini"

[roles]
send = "API.send"
persist = "API.store"
broadcast = "API.fanout"
final = "UI.show"

[[hops]]
id = "API.send"
scope = "message"
emitter = "sender"

[[hops]]
id = "API.store"
after = ["API.send"]
scope = "message"
emitter = "server"

[[hops]]
id = "API.fanout"
after = ["API.store"]
scope = "message"
emitter = "server"

[[hops]]
id = "UI.show"
after = ["API.fanout"]
scope = "recipient"
recipient = "actor"
emitter = "recipient"
"""


def _client_u2(trace_id: str) -> None:
    """The u2 client's hops, naming no actor: its configuration does."""
    with tracekit.message(trace_id, conv_id="c1", msg_id="m1"):
        for stage, action in (("WS-RECV", "receive"), ("REPO", "add"), ("CTRL", "add")):
            tracekit.emit(stage, action)


# -- capture() keeps the app's configuration --------------------------------------------------


def test_capture_keeps_the_apps_configuration_and_sink(tmp_path: Path) -> None:
    log = tmp_path / "app.jsonl"
    tracekit.configure(service="client", actor="u2", source="client-u2", sink=log, redact=False)
    with capture() as events:
        _client_u2(T1)
        with tracekit.message(T1):
            tracekit.emit("CTRL", "note", text="hello")  # redact=False: the text stays
    assert [e["actor"] for e in events] == ["u2"] * 4
    assert {e["source"] for e in events} == {"test-1"}  # a run of its own, seq from 1
    assert [e["seq"] for e in events] == [1, 2, 3, 4]
    assert events[-1]["text"] == "hello"
    # the app's sink still got every event, as captured
    tracekit.flush()
    written = [json.loads(line) for line in log.read_text().splitlines()]
    assert [(e["stage"], e["action"], e["seq"]) for e in written if e["source"] == "test-1"] == [
        (e["stage"], e["action"], e["seq"]) for e in events
    ]
    # what is given overrides the app's; after the block, the app's emitter again
    with capture(actor="u9", redact=True) as events:
        with tracekit.message(T1):
            tracekit.emit("CTRL", "note", text="hello")
    assert events[0]["actor"] == "u9" and events[0]["text"] != "hello"
    with tracekit.message(T1):
        tracekit.emit("CTRL", "after")
    tracekit.flush()
    last = json.loads(log.read_text().splitlines()[-1])
    assert (last["action"], last["source"], last["actor"]) == ("after", "client-u2", "u2")


def test_capture_without_a_configuration_takes_the_defaults() -> None:
    with capture() as events:
        _client_u2(T1)
    assert {(e["actor"], e["source"]) for e in events} == {("test", "test-1")}


def test_the_plugin_keeps_the_apps_actor(project: pytest.Pytester) -> None:
    log = project.path / "app.jsonl"
    project.makeconftest(
        f"""
        import tracekit
        tracekit.configure(service="client", actor="u2", source="client-u2", sink={str(log)!r})
        """
    )
    project.makepyfile(
        f"""
        import pytest, tracekit
        from chatflow import send_message

        @pytest.mark.tracekit
        def test_delivery():
            send_message("{T1}", recipients=["u2"], stop_before={{"u2": "WS-RECV.receive"}})
            with tracekit.message("{T1}", conv_id="c1", msg_id="m1"):
                for stage, action in (("WS-RECV", "receive"), ("REPO", "add"), ("CTRL", "add")):
                    tracekit.emit(stage, action)  # no actor: the app's, u2
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)  # it read as a drop for u2 and an unexpected "test"
    written = [json.loads(line) for line in log.read_text().splitlines()]
    assert {(e["stage"], e["actor"]) for e in written if e["action"] == "add"} == {
        ("REPO", "u2"),
        ("CTRL", "u2"),
    }


# -- the session's pipeline -------------------------------------------------------------------

MINI_TESTS = f"""
import pytest, tracekit

def mini(trace_id, drop=False):
    with tracekit.message(trace_id, actor="u1"):
        tracekit.emit("API", "send")
        tracekit.emit("API", "store", actor="srv")
        tracekit.emit("API", "fanout", actor="srv", recipients=["u2", "u3"])
        tracekit.emit("UI", "show", actor="u2")
        if not drop:
            tracekit.emit("UI", "show", actor="u3")

@pytest.mark.tracekit
def test_ok():
    mini("{T1}")

@pytest.mark.tracekit(complete=False, no_findings=["duplicate"])
def test_lost():
    mini("{T2}", drop=True)
"""


def test_session_pipeline_option(project: pytest.Pytester) -> None:
    project.makefile(".toml", mini=MINI)
    project.makepyfile(test_mini=MINI_TESTS)
    gates = "--tracekit-gates=drop=0,min_delivered=50%,p99:API.send->API.store=10s"
    result = project.runpytest("-p", "no:cacheprovider", "--tracekit-pipeline=mini.toml", gates)
    result.assert_outcomes(passed=2)  # the markers naming no model take the session's
    result.stdout.fnmatch_lines(
        [
            "FAIL drop <= 0: 1 drop finding(s), allowed 0",
            f"    {T2} recipient u3 at UI.show (last seen API.fanout) in test_mini.py::test_lost",
            "PASS delivered >= 50%: 3/4 delivered = 75.000%, required 50%",
            "PASS p99 API.send->API.store <= 10000 ms: * over 2 samples",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    # without it, the chat pipeline: its hops are not these
    result = project.runpytest("-p", "no:cacheprovider", gates)
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tracekit-gates: *API.send->API.store*"])
    result = project.runpytest("-p", "no:cacheprovider", "--tracekit-pipeline=nope.toml")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: --tracekit-pipeline: *nope.toml*"])


# -- marker mistakes: bad usage when collected ------------------------------------------------

BAD_MARKERS = """
import pytest

ran = []

@pytest.mark.tracekit(max_latency=5)
def test_unitless():
    ran.append(1)

@pytest.mark.tracekit(allow_empty="no")
def test_not_a_flag():
    ran.append(1)

@pytest.mark.tracekit(pipeline="missing.toml")
def test_no_model():
    ran.append(1)

def test_body_never_runs():
    assert not ran
"""


@pytest.mark.parametrize(
    ("name", "said"),
    [
        ("unitless", "(max_latency=...): a duration: a datetime.timedelta or text such as*"),
        ("not_a_flag", "(allow_empty=...): True or False, not 'no'"),
        ("no_model", "(pipeline=...): *missing.toml*"),
    ],
)
def test_a_marker_mistake_is_bad_usage(project: pytest.Pytester, name: str, said: str) -> None:
    project.makepyfile(test_bad=BAD_MARKERS)
    result = project.runpytest("-p", "no:cacheprovider", "-k", f"test_{name} or body")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.assert_outcomes()  # no test ran
    result.stderr.fnmatch_lines([f"ERROR: test_bad.py::test_{name}: @pytest.mark.tracekit{said}"])


def test_a_marker_mistake_under_xdist_fails_its_test_at_setup(project: pytest.Pytester) -> None:
    project.makepyfile(test_bad=BAD_MARKERS)
    result = project.runpytest("-p", "no:cacheprovider", "-n", "2")
    result.assert_outcomes(passed=1, errors=3)  # (the bodies did not run)
    result.stdout.fnmatch_lines(
        ["*ERROR at setup of test_unitless*", "usage: @pytest.mark.tracekit(max_latency=...): *"]
    )


def test_no_findings_true_is_every_kind(project: pytest.Pytester) -> None:
    project.makepyfile(
        f"""
        import pytest
        from chatflow import send_message

        @pytest.mark.tracekit(complete=False, no_findings=True)
        def test_twice():
            send_message("{T1}", recipients=["u2"], twice={{"u2": "CTRL.add"}})
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["tracekit found 1 problem(s):", f"- duplicate {T1} *u2*CTRL.add*"])
    # the assertion alone, not the plugin's and tracekit.testing's frames
    assert "pytest_plugin.py" not in result.stdout.str()
    assert "testing.py" not in result.stdout.str()


# -- the session report says what tracekit_logs lost ------------------------------------------


def test_the_session_report_keeps_what_the_logs_lost(project: pytest.Pytester) -> None:
    project.makepyfile(
        f"""
        import tracekit
        from chatflow import send_message

        def test_logs(tracekit_logs):
            inst = tracekit.Instrumentation(service="srv", sink=tracekit_logs / "srv.jsonl")
            with inst.activate():
                send_message("{T1}", recipients=["u2"], stop_before={{"u2": "CTRL.add"}})
            inst.flush()
            (tracekit_logs / "u2.jsonl").write_text('{{"stage": "CTRL", "act\\n')
        """
    )
    out = project.path / "report.json"
    result = project.runpytest(
        "-p", "no:cacheprovider", "--tracekit-gates=drop=0", f"--tracekit-report={out}"
    )
    result.stdout.fnmatch_lines(
        ["FAIL drop <= 0: *", "malformed: test_*.py::test_logs: *u2.jsonl:1: *"]
    )
    inputs = json.loads(out.read_text())["inputs"]
    assert (inputs["files"], inputs["lines"], inputs["malformed"]) == (2, 9, 1)
    assert inputs["examples"][0].startswith("test_the_session_report_keeps_what_the_logs_lost.py")


def test_collect_only_writes_no_report_and_fails_no_gate(project: pytest.Pytester) -> None:
    project.makepyfile("import pytest\n@pytest.mark.tracekit\ndef test_a():\n    pass\n")
    out = project.path / "report.json"
    result = project.runpytest(
        "-p",
        "no:cacheprovider",
        "--collect-only",
        "--tracekit-gates=drop=0",
        f"--tracekit-report={out}",
    )
    assert result.ret == pytest.ExitCode.OK
    assert "tracekit gates" not in result.stdout.str() and not out.exists()


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        (",", "*--tracekit-gates: no gate in ','*"),
        ("p42:end_to_end=1s", "*--tracekit-gates: unknown latency gate 'p42': use p50, p95*"),
    ],
)
def test_gates_that_gate_nothing_are_bad_usage(
    project: pytest.Pytester, spec: str, said: str
) -> None:
    result = project.runpytest("-p", "no:cacheprovider", f"--tracekit-gates={spec}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines([said])


# -- tracekit.testing -------------------------------------------------------------------------


def test_logs_and_captured_events_are_read_together(tmp_path: Path) -> None:
    from tests.chatflow import send_message

    with capture(actor="u2") as client:
        _client_u2(T2)
    log = tmp_path / "server.jsonl"
    inst = tracekit.Instrumentation(service="srv", sink=log)
    with inst.activate():
        send_message(T2, recipients=["u2"], stop_before={"u2": "WS-RECV.receive"})
        send_message(T1, recipients=["u2"], stop_before={"u2": "CTRL.add"})
    inst.close()
    # the file's drop was not seen: its path was left out, unread
    with pytest.raises(AssertionError, match=f"- drop {T1} \\(recipient=u2, stage=CTRL.add"):
        assert_complete([log, *client])
    assert_complete([log, *client], traces=[T2])  # T2's hops are half in each
    with pytest.raises(TypeError, match="got an item of type int"):
        assert_complete([log, 5])


def test_assertion_counts_are_those_of_the_traces_asked_about() -> None:
    from tests.chatflow import send_message

    with capture() as events:
        send_message(T1, recipients=["u2"])
        send_message(T2, msg_id="m2", recipients=["u2"], stop_before={"u2": "CTRL.add"})
    with pytest.raises(AssertionError) as caught:
        assert_complete(events, traces=[T1], within="0ms")
    head = str(caught.value).splitlines()[0]
    assert head == (
        "every message was delivered (of the 1 trace(s) given), not every one within 0 ms:"
    )


def test_events_of_another_pipeline_are_said_so() -> None:
    with capture() as events, tracekit.message(T1, actor="u1"):
        tracekit.emit("API", "send")
        tracekit.emit("UI", "show", actor="u2")
    with pytest.raises(AssertionError, match=r"2 event\(s\) carry a trace id, but none is a hop"):
        assert_complete(events)


def test_a_timeline_of_an_unknown_trace_says_so() -> None:
    with capture() as events:
        _client_u2(T1)
    assert format_timeline(events, T2) == (
        f"message {T2}:\n  no event of this trace in the events given"
    )


# -- instrumentation --------------------------------------------------------------------------


def test_message_takes_its_trace_id_by_name() -> None:
    with capture() as events:
        with tracekit.message(trace_id=T1.upper(), conv_id="c1"):
            tracekit.emit("CTRL", "send")
        with tracekit.message(T2, trace_id=T1):  # the id given first wins: one id
            tracekit.emit("CTRL", "send")
    assert [e["trace_id"] for e in events] == [T1, T2]
    assert not any("bad_trace_id" in e for e in events)


@pytest.mark.parametrize(
    "carrier",
    [
        [(b"traceparent", f"00-{T1}-a3ce929d0e0e4736-01".encode()), (b"x", b"y")],  # raw ASGI
        [("TraceParent", f"00-{T1}-a3ce929d0e0e4736-01".encode())],  # Kafka
        {b"traceparent": f"00-{T1}-a3ce929d0e0e4736-01".encode()},  # bytes keys
    ],
)
def test_extract_reads_name_value_pairs(carrier: object) -> None:
    ctx = tracekit.extract(carrier)
    assert ctx is not None and (ctx.trace_id, ctx.parent_span_id) == (T1, "a3ce929d0e0e4736")


def test_extract_reads_headers_that_are_no_mapping() -> None:
    import http.client
    import io

    raw = f"TraceParent: 00-{T1}-a3ce929d0e0e4736-01\r\n\r\n".encode()
    headers = http.client.parse_headers(io.BytesIO(raw))  # what http.server and urllib give
    ctx = tracekit.extract(headers)  # (review 19c: None, once only mappings were read)
    assert ctx is not None and (ctx.trace_id, ctx.parent_span_id) == (T1, "a3ce929d0e0e4736")


def test_extract_refuses_an_all_zero_parent_id() -> None:
    assert tracekit.extract({"traceparent": f"00-{T1}-{'0' * 16}-01"}) is None


@pytest.mark.timeout(20)  # (before the fix, configure() waited for a reader for ever)
def test_a_fifo_sink_waits_for_its_reader_on_the_writer_thread(tmp_path: Path) -> None:
    fifo = tmp_path / "events"
    os.mkfifo(fifo)
    started = time.monotonic()
    tracekit.configure(service="s", sink=fifo)  # no reader yet: it returns at once
    assert time.monotonic() - started < 1.0
    try:
        with tracekit.message(T1):
            tracekit.emit("CTRL", "send")  # queued until a reader comes
        got = bytearray()
        with fifo.open("rb") as reader:  # (the writer thread's open goes through now)
            assert tracekit.flush(5)
            while b"\n" not in got and (chunk := reader.read1(65536)):
                got.extend(chunk)
    finally:
        tracekit.shutdown()
    lines = [json.loads(line) for line in bytes(got).splitlines()]
    assert [(e["stage"], e["action"]) for e in lines if e["stage"] == "CTRL"] == [("CTRL", "send")]


def test_a_processor_failing_on_every_event_still_gets_its_losses_reported() -> None:
    def named(_logger: object, _level: str, event: dict[str, object]) -> dict[str, object]:
        raise AttributeError("'NoneType' object has no attribute 'name'")  # as stdlib's do

    def renderer(_logger: object, _level: str, event: dict[str, object]) -> str:
        return json.dumps(event)

    for processor, reason in (
        (named, "processor named raised AttributeError: 'NoneType' object has no attribute 'name'"),
        (
            renderer,
            "a processor returned str, not the event dict (tracekit renders the line "
            "itself: no renderer among processors)",
        ),
    ):
        with capture(processors=[processor]) as events, tracekit.message(T1):
            tracekit.emit("REST", "persist")
        # the report of the loss runs without the processor that failed on it
        assert [(e["stage"], e["action"], e["reason"]) for e in events] == [
            ("TRACEKIT", "dropped", reason)
        ]

    def tagged(_logger: object, _level: str, event: dict[str, object]) -> dict[str, object]:
        return {**event, "host": "h1"}

    with capture(processors=[tagged, named]) as events, tracekit.message(T1):
        tracekit.emit("REST", "persist")
    assert [(e["action"], e.get("host")) for e in events] == [("dropped", "h1")]  # (19c)


def test_a_stream_sink_that_cannot_be_written_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    path.write_text("")
    closed = path.open("a")
    closed.close()
    with path.open() as reading:
        for stream, why in ((reading, "not open for writing"), (closed, "closed")):
            with pytest.raises(ConfigError, match=f"the stream is {why}"):
                tracekit.configure(service="s", sink=stream)

    class Tee(io.TextIOBase):  # an app's own stream: write(), and writable() says False
        def __init__(self) -> None:
            self.lines: list[str] = []

        def write(self, text: str) -> int:
            self.lines.append(text)
            return len(text)

    tee = Tee()
    tracekit.configure(service="s", sink=tee)  # (review 19c: refused, by writable())
    tracekit.emit("CTRL", "send")
    tracekit.flush()
    assert [json.loads(line)["action"] for line in "".join(tee.lines).splitlines()] == ["send"]


def test_the_session_report_keeps_the_analysis_warnings(project: pytest.Pytester) -> None:
    project.makepyfile(
        f"""
        import tracekit
        from chatflow import send_message

        def test_typo(tracekit_events):
            send_message("{T1}", recipients=["u2"], stop_before={{"u2": "WS-RECV.receive"}})
            with tracekit.message("{T1}", actor="u2"):
                tracekit.emit("WS_RECV", "receive")
        """
    )
    out = project.path / "report.json"
    project.runpytest("-p", "no:cacheprovider", f"--tracekit-report={out}")
    warnings = json.loads(out.read_text())["inputs"]["warnings"]  # (review 19c: replaced)
    assert warnings == [
        "1 event(s) of messages are named almost as a hop of the pipeline 'chat' is: "
        "WS_RECV.receive (1) for WS-RECV.receive; read as no hop, on no message's path"
    ]


def test_capture_in_a_configured_app_keeps_what_a_test_needs(tmp_path: Path) -> None:
    class Failing:  # an app's sink that fails: the app's, not the capture's loss
        dropped = 0

        def submit(self, event: object, line: bytes) -> None:
            raise OSError("disk full")

        def flush(self, timeout: float = 2.0) -> bool:
            return False

        def close(self, timeout: float = 2.0) -> None:
            pass

    tracekit.configure(service="server", sink=Failing(), sample=0.0)  # the app samples all out
    with capture(service="client") as first:  # (review 19c: its actor was the app's)
        with tracekit.message(T1):
            tracekit.emit("CTRL", "send")
        assert tracekit.flush()
    with capture() as second:
        tracekit.emit("CTRL", "send")
    # every message kept, the service's actor, and one numbering of the source the app's
    # log got twice (each block from 1 read there as a restart)
    assert [(e["actor"], e["source"], e["seq"]) for e in [*first, *second]] == [
        ("client", "test-1", 1),
        ("server", "test-1", 2),
    ]
    assert tracekit.stats()["dropped"] == 0


def test_a_marker_added_while_the_test_runs_is_checked(project: pytest.Pytester) -> None:
    project.makepyfile(
        f"""
        import pytest
        from chatflow import send_message

        @pytest.fixture
        def marked(request):
            request.node.add_marker(pytest.mark.tracekit(max_latency=5))

        def test_dynamic(marked):
            send_message("{T1}", recipients=["u2"])
        """
    )
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)  # (review 19c: passed, nothing checked)
    result.stdout.fnmatch_lines(["usage: @pytest.mark.tracekit(max_latency=...): a duration*"])
    # a valid one: its events were not captured, which is said (not "captured nothing")
    project.makepyfile(
        test_marked=f"""
        import pytest
        from chatflow import send_message

        @pytest.fixture
        def marked(request):
            request.node.add_marker(pytest.mark.tracekit())

        def test_dynamic(marked):
            send_message("{T1}", recipients=["u2"])
        """
    )
    result = project.runpytest("-p", "no:cacheprovider", "test_marked.py")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["@pytest.mark.tracekit was added while the test ran, *"])


def test_message_as_a_decorator_binds_per_call_and_nests() -> None:
    @tracekit.message(T1, conv_id="c1")
    def handle(depth: int) -> list[tuple[str, str | None, str | None]]:
        ctx = tracekit.current()
        assert ctx is not None
        seen = [(ctx.trace_id, ctx.conv_id, ctx.msg_id)]
        if depth:  # a call inside a call: a scope each (one object shared would mix tokens)
            with tracekit.message(msg_id="m1"):
                seen += handle(depth - 1)
        return seen

    assert handle(1) == [(T1, "c1", None), (T1, "c1", "m1")]
    assert tracekit.current() is None
    scope = tracekit.message(T2)  # made on entering: what is bound then is the outer message
    with tracekit.message(T1, conv_id="c7"), scope as inner:
        assert (inner.trace_id, inner.conv_id) == (T2, None)
    assert tracekit.current() is None


LOSING_APP = """
import pytest
import tracekit
from chatflow import send_message

def picky(_logger, _level, event):
    if (event["stage"], event["action"], event.get("actor")) == ("REPO", "add", "u3"):
        raise KeyError("user_id")
    return event

def every(_logger, _level, event):
    raise KeyError("user_id")

@pytest.fixture
def app(request, tmp_path):
    tracekit.configure(service="chat", sink=str(tmp_path / "app.jsonl"), processors=[request.param])
    yield
    tracekit.shutdown()

@pytest.mark.tracekit
@pytest.mark.parametrize("app", [picky], indirect=True)
def test_one_lost(app):
    send_message("{T1}", recipients=["u2", "u3"])

@pytest.mark.tracekit
@pytest.mark.parametrize("app", [every], indirect=True)
def test_all_lost(app):
    send_message("{T1}", recipients=["u2", "u3"])
"""


def test_a_test_whose_events_the_app_lost_says_why_first(project: pytest.Pytester) -> None:
    # review 25d: the failure said "a log_gap: lost by the logging", or "tracekit is not
    # configured", the captured TRACEKIT.dropped reports naming the app's processor unsaid
    project.makepyfile(test_app=LOSING_APP.replace("{T1}", T1))
    result = project.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    result.stdout.fnmatch_lines(
        [
            "tracekit lost 1 event(s) of this test before they were written (1 by processor "
            "picky raised KeyError: 'user_id'): a lost event may be a missing hop",
            "every message was delivered (2/2 deliveries), and the logs lost events (a lost "
            "line may hold a missing hop):",
            "tracekit captured no message events in this test: it lost 13 event(s) of this "
            "test before they were written (13 by processor every raised KeyError: "
            "'user_id'): a lost event may be a missing hop",
        ]
    )
