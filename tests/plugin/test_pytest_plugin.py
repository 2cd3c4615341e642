"""The pytest plugin, driven with pytester: passing and failing tests, failure text, options."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import polars
import pytest

import tracekit.analyzers
import tracekit.collectors
import tracekit.table

# Loaded here so that in-process pytester runs share these modules with this process: pytester
# drops modules first imported inside a run, and a second polars does not match the first (its
# dtypes compare unequal). Run alone, this file failed without them; named so no linter fix
# removes them again.
_SHARED_MODULES = (polars, tracekit.analyzers, tracekit.collectors, tracekit.table)

CHATFLOW = (Path(__file__).parents[1] / "chatflow.py").read_text()
T1 = "4bf92f3577b34da6a3ce929d0e0e4736"
T2 = "0b9e6f4c1d2a4e8b9c3f5a6b7c8d9e0f"
T3, T4, T5 = ("3" * 32, "4" * 32, "5" * 32)

TESTS = f'''
import pytest
from chatflow import send_message

T1, T2, T3, T4, T5 = "{T1}", "{T2}", "{T3}", "{T4}", "{T5}"


@pytest.mark.tracekit(complete=True)
def test_delivered():
    send_message(T1, recipients=["u2", "u3"])


@pytest.mark.tracekit(complete=True)
def test_lost_at_controller():
    send_message(T3, msg_id="m3", recipients=["u2", "u3"])
    send_message(T2, msg_id="m2", recipients=["u2", "u3"], stop_before={{"u2": "CTRL.add"}})


@pytest.mark.tracekit(complete=False, no_findings=["duplicate"])
def test_shown_twice():
    send_message(T4, msg_id="m4", recipients=["u2"], twice={{"u2": "CTRL.add"}})


def test_fixture_sees_events(tracekit_events):
    send_message(T5, msg_id="m5", recipients=["u2"])
    assert tracekit_events.hops()[:3] == ["CTRL.send", "REST.request", "REST.persist"]
    assert len(tracekit_events.filter(stage="CTRL", action="add")) == 1
'''


@pytest.fixture
def chat_tests(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(chatflow=CHATFLOW, test_chat=TESTS)
    pytester.syspathinsert()
    return pytester


def test_marker_passes_and_fails_with_the_path_shown(chat_tests: pytest.Pytester) -> None:
    result = chat_tests.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=2, failed=2)
    text = result.stdout.str()
    assert "test_lost_at_controller" in text and "test_shown_twice" in text
    result.stdout.fnmatch_lines(
        [
            "*not every message was delivered completely (3/4 deliveries):*",
            f"*- drop {T2} (recipient=u2, stage=CTRL.add, last_seen=REPO.add*",
            f"*message {T2}:*",
            "*recipient u2:*",
            "*REPO.add*",
            "*✗ CTRL.add*(missing)*",
        ]
    )
    result.stdout.fnmatch_lines(
        ["*tracekit found 1 problem(s):*", f"*- duplicate {T4}*u2*CTRL.add*"]
    )
    # the complete message of the failing test is not blamed
    assert f"- drop {T3}" not in text


def test_report_option_writes_the_session_report(chat_tests: pytest.Pytester) -> None:
    out = chat_tests.path / "report.json"
    chat_tests.runpytest("-p", "no:cacheprovider", f"--tracekit-report={out}")
    report = json.loads(out.read_text())
    assert report["schema"] == "tracekit.report/1"
    drops = [
        (f["trace_id"], f["recipient"], f["stage"])
        for f in report["findings"]
        if f["kind"] == "drop"
    ]
    assert drops == [(T2, "u2", "CTRL.add")]


def test_an_unwritable_report_path_is_one_failing_line(chat_tests: pytest.Pytester) -> None:
    out = chat_tests.path / "missing-dir" / "report.json"
    result = chat_tests.runpytest(
        "-p", "no:cacheprovider", "-k", "delivered", f"--tracekit-report={out}"
    )
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    result.stdout.fnmatch_lines(["*FAIL cannot write --tracekit-report *report.json*"])
    assert result.ret == pytest.ExitCode.TESTS_FAILED


def test_gates_option_fails_the_run(chat_tests: pytest.Pytester) -> None:
    result = chat_tests.runpytest(
        "-p",
        "no:cacheprovider",
        "-k",
        "delivered or fixture",
        "--tracekit-gates=drop=0,duplicate=0",
    )
    result.assert_outcomes(passed=2)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*= tracekit =*", "PASS drop <= 0*", "PASS duplicate <= 0*"])

    result = chat_tests.runpytest("-p", "no:cacheprovider", "--tracekit-gates=drop=0")
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(
        ["FAIL drop <= 0: 1 drop finding(s), allowed 0", f"    {T2} recipient u2 at CTRL.add*"]
    )


def test_bad_gate_is_a_usage_error(chat_tests: pytest.Pytester) -> None:
    result = chat_tests.runpytest("-p", "no:cacheprovider", "--tracekit-gates=drops=0")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--tracekit-gates: bad --max gate 'drops=0'*"])


def test_marker_with_unknown_option_is_a_usage_error(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        """
        import pytest

        @pytest.mark.tracekit(completely=True)
        def test_x():
            pass
        """
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["ERROR: *::test_x: *unknown option(s) completely*"])


def test_logs_fixture_files_are_checked(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(chatflow=CHATFLOW)
    pytester.syspathinsert()
    pytester.makepyfile(
        f'''
        import pytest
        import tracekit
        from chatflow import send_message

        @pytest.mark.tracekit(complete=True)
        def test_server_log(tracekit_logs):
            # a "server" writing its own log file, as a subprocess would
            inst = tracekit.Instrumentation(service="server", source="srv-1",
                                            sink=tracekit_logs / "server.jsonl")
            with inst.activate():
                send_message("{T2}", recipients=["u2"], stop_before={{"u2": "WS-RECV.receive"}})
            inst.close()
        '''
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines([f"*- drop {T2} (recipient=u2, stage=WS-RECV.receive*"])


@pytest.mark.skipif(shutil.which("true") is None, reason="needs a POSIX shell")
def test_xdist_workers_report_to_the_controller(chat_tests: pytest.Pytester) -> None:
    out = chat_tests.path / "report.json"
    result = chat_tests.runpytest_subprocess(
        "-p", "no:cacheprovider", "-n", "2", f"--tracekit-report={out}", "--tracekit-gates=drop=0"
    )
    result.assert_outcomes(passed=2, failed=2)
    report = json.loads(out.read_text())
    assert report["summary"]["drop"] == 1
    assert report["summary"]["duplicate"] == 1
    result.stdout.fnmatch_lines(["FAIL drop <= 0*"])


def test_marker_flushes_queued_log_events_before_reading(pytester: pytest.Pytester) -> None:
    """A log sink's events still queued when the test ends are written before the marker reads
    ``tracekit_logs``: the duplicate is seen with or without the test flushing it."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(
        f'''
        import pytest
        import tracekit

        def scenario(tracekit_logs, flush):
            server = tracekit.Instrumentation(service="chat-server", source="srv",
                                              sink=tracekit_logs / "server.jsonl")
            with tracekit.message("{T1}", conv_id="c1", actor="u1"):
                tracekit.emit("CTRL", "send")
                tracekit.emit("REST", "request")
                with server.activate():
                    tracekit.emit("REST", "persist", actor="server", msg_id="m1")
                    tracekit.emit("WS-BROADCAST", "start", recipients=["u2"], actor="server")
                    tracekit.emit("WS-BROADCAST", "deliver", peer="u2", actor="server")
                    tracekit.emit("WS-BROADCAST", "deliver", peer="u2", actor="server")
                tracekit.emit("REST", "response")
                for stage, action in [("WS-RECV", "receive"), ("REPO", "add"), ("CTRL", "add")]:
                    tracekit.emit(stage, action, actor="u2")
            if flush:
                server.flush()

        @pytest.mark.tracekit(no_findings=["duplicate"])
        def test_no_flush(tracekit_logs):
            scenario(tracekit_logs, flush=False)

        @pytest.mark.tracekit(no_findings=["duplicate"])
        def test_flushed(tracekit_logs):
            scenario(tracekit_logs, flush=True)
        '''
    )
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(failed=2)
    duplicate = f"*- duplicate {T1} (recipient=u2, stage=WS-BROADCAST.deliver, source=srv)*"
    result.stdout.fnmatch_lines(["*_ test_no_flush _*", duplicate, "*_ test_flushed _*", duplicate])


EMPTY_TESTS = """
import pytest
import tracekit


@pytest.mark.tracekit(complete=True)
def test_instrumentation_elsewhere(tmp_path):
    u1 = tracekit.Instrumentation(service="client", source="c-u1", actor="u1",
                                  sink=tmp_path / "u1.jsonl")
    with u1.activate(), tracekit.message(tracekit.new_trace_id(), conv_id="c1"):
        tracekit.emit("CTRL", "send")
        tracekit.emit("REST", "request")
    u1.close()


@pytest.mark.tracekit(complete=True)
def test_nothing_instrumented():
    pass


@pytest.mark.tracekit(complete=False, no_findings=["duplicate"])
def test_no_findings_of_nothing(tracekit_logs):
    pass


@pytest.mark.tracekit(allow_empty=True)
def test_empty_is_fine_when_asked():
    pass
"""


def test_marker_without_any_event_fails_and_says_why(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_empty=EMPTY_TESTS)
    result = pytester.runpytest("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1, failed=3)
    lines = []
    for name in ("instrumentation_elsewhere", "nothing_instrumented", "no_findings_of_nothing"):
        lines += [
            f"*_ test_{name} _*",
            "tracekit captured no message events in this test: nothing to check*"
            "likely causes: tracekit is not configured*"
            'Instrumentation instances write elsewhere*sink=tracekit_logs / "NAME.jsonl"*'
            "@pytest.mark.tracekit(allow_empty=True)*",
        ]
    result.stdout.fnmatch_lines(lines)
    assert "test_empty_is_fine_when_asked FAILED" not in result.stdout.str()


def test_testing_assertions_fail_on_no_messages() -> None:
    from tracekit.testing import assert_complete, assert_no_findings

    with pytest.raises(AssertionError, match=r"^no messages to check: "):
        assert_complete([])
    with pytest.raises(AssertionError, match=r"^no messages to check: .*allow_empty=True"):
        assert_no_findings([], kinds=["duplicate"])
    assert_complete([], allow_empty=True)
    assert_no_findings([], allow_empty=True)


def _chat(late_ms: float = 0.0, recipients: tuple[str, ...] = ("u2",)) -> list[dict[str, object]]:
    """Ten messages u1 -> recipients as event dicts, 5 ms a hop; the fourth shown late_ms later."""
    from datetime import UTC, datetime, timedelta

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    out: list[dict[str, object]] = []
    seq: dict[str, int] = {}

    def ev(ms: float, source: str, hop: str, actor: str, trace: str, **extra: object) -> None:
        stage, action = hop.split(".")
        seq[source] = seq.get(source, 0) + 1
        out.append(
            {"timestamp": t0 + timedelta(milliseconds=ms), "stage": stage, "action": action,
             "event": hop, "trace_id": trace, "conv_id": "c1", "actor": actor,
             "source": source, "seq": seq[source], **extra}
        )  # fmt: skip

    for n in range(10):
        trace, t = f"{n + 1:032x}", n * 1000.0
        ev(t, "client-u1", "CTRL.send", "u1", trace)
        ev(t + 5, "client-u1", "REST.request", "u1", trace)
        ev(t + 10, "server", "REST.persist", "u1", trace, msg_id=f"m{n}")
        ev(t + 15, "client-u1", "REST.response", "u1", trace, msg_id=f"m{n}")
        ev(t + 20, "server", "WS-BROADCAST.start", "u1", trace, recipients=list(recipients))
        for r in recipients:
            ev(t + 25, "server", "WS-BROADCAST.deliver", "server", trace, peer=r)
            for k, hop in enumerate(("WS-RECV.receive", "REPO.add", "CTRL.add")):
                extra = late_ms if n == 3 and hop == "CTRL.add" else 0.0
                ev(t + 30 + 5 * k + extra, f"client-{r}", hop, r, trace)
    return out


def test_assert_complete_within_says_late_and_fails_on_no_samples() -> None:
    from tracekit.testing import assert_complete

    assert_complete(_chat(), within="500ms")
    # only late: delivered, not in time (it read "not every message was delivered completely")
    with pytest.raises(AssertionError, match=r"^every message was delivered \(10/10 deliveries"
                       r"\), not every one within 500 ms:"):  # fmt: skip
        assert_complete(_chat(late_ms=700), within="500ms")
    # a time limit over no delivery (a broadcast to no one) checks nothing: it passed
    with pytest.raises(AssertionError, match=r"^no end-to-end latency samples to check "
                       r"within=500 ms: no delivery reached its final hop"):  # fmt: skip
        assert_complete(_chat(recipients=()), within="500ms")
    assert_complete(_chat(recipients=()))  # complete, vacuously: 0/0 deliveries


def test_assert_latency_names_the_slow_messages_and_wants_a_limit() -> None:
    from tracekit.testing import assert_latency

    assert_latency(_chat(), max="500ms")
    with pytest.raises(AssertionError) as failed:
        assert_latency(_chat(late_ms=700), max="500ms")
    text = str(failed.value)
    assert text.startswith("latency of end_to_end over 10 samples: max 740.0 ms > 500 ms:\n")
    # the late message (the fourth), for its recipient and at its hop, the only one named
    assert text.splitlines()[1] == (
        f"- slo_breach {4:032x} (recipient=u2, stage=CTRL.add, last_seen=CTRL.send, "
        "source=client-u2): end to end: CTRL.send -> CTRL.add took 740.0 ms for recipient u2, "
        "above the 500.0 ms SLO"
    )
    assert text.count("- slo_breach ") == 1
    with pytest.raises(ValueError, match="checks nothing without a limit"):
        assert_latency(_chat())
