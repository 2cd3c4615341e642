"""The pytest plugin's session report, review 7: tests that only use ``tracekit_logs`` are in
it."""

from __future__ import annotations

import json

import polars
import pytest

import tracekit.analyzers
import tracekit.collectors
import tracekit.table

# Shared with in-process pytester runs (see test_pytest_plugin.py).
_SHARED_MODULES = (polars, tracekit.analyzers, tracekit.collectors, tracekit.table)

TD, TE = "d" * 32, "e" * 32

# -- 9: a test with only tracekit_logs ------------------------------------------------------

LOGS_ONLY = f'''
import json

def _events(tid):
    t = "2026-01-01T10:00:0{{}}Z"
    hops = [("CTRL", "send", "client-u1"), ("REST", "request", "client-u1"),
            ("REST", "persist", "server-1")]
    # (seq counts per source, from 1: a log that began later would hide its drops)
    return [dict(timestamp=t.format(i), stage=s, action=a, source=src,
                 seq=[h[2] for h in hops[:i + 1]].count(src), trace_id=tid,
                 actor="u1", conv_id="c1") for i, (s, a, src) in enumerate(hops)]

def test_dropped_message_in_logs(tracekit_logs):
    with open(tracekit_logs / "server.jsonl", "w") as f:
        for e in _events("{TD}"):  # the message stops at persist: a drop
            f.write(json.dumps(e) + "\\n")

def test_other_with_events(tracekit_events):
    import tracekit
    with tracekit.message("{TE}"):
        tracekit.emit("CTRL", "send")
'''


def test_a_test_with_only_tracekit_logs_is_in_the_session_report_and_gates(
    pytester: pytest.Pytester,
) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(test_logs=LOGS_ONLY)
    out = pytester.path / "report.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--tracekit-report={out}", "--tracekit-gates=drop=0"
    )
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(
        [
            f"wrote --tracekit-report {out}: 4 event(s) from 2 test(s)",
            "FAIL drop <= 0: 3 drop finding(s), allowed 0",
            f"    {TD} at REST.response (last seen REST.persist) [[]*server.jsonl:3] in "
            "test_logs.py::test_dropped_message_in_logs",
            f"    {TD} at WS-BROADCAST.start (last seen REST.persist) [[]*server.jsonl:3] in "
            "test_logs.py::test_dropped_message_in_logs",
            f"    {TE} at REST.request (last seen CTRL.send) in test_logs.py::test_other_with_events",
        ]
    )
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    report = json.loads(out.read_text())
    assert sorted((f["kind"], f["trace_id"], f["test"]) for f in report["findings"]) == [
        ("drop", TD, "test_logs.py::test_dropped_message_in_logs"),
        ("drop", TD, "test_logs.py::test_dropped_message_in_logs"),
        ("drop", TE, "test_logs.py::test_other_with_events"),
    ]
    assert report["summary"]["messages"] == 2
