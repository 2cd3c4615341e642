"""The pytest plugin's session report, review 7: a rerun test (one node id run twice) is its
last attempt, not two runs merged."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import polars
import pytest

import tracekit.analyzers
import tracekit.collectors
import tracekit.table
from tracekit.pytest_plugin import _session_report
from tracekit.testing import capture

# Shared with in-process pytester runs (see test_pytest_plugin.py).
_SHARED_MODULES = (polars, tracekit.analyzers, tracekit.collectors, tracekit.table)

sys.path.insert(0, str(Path(__file__).parents[1]))
from chatflow import send_message  # noqa: E402

CHATFLOW = (Path(__file__).parents[1] / "chatflow.py").read_text()
TD = "d" * 32

# -- 10: a rerun test -----------------------------------------------------------------------


def _run(**kw: Any) -> list[dict[str, Any]]:
    with capture(source="pytest:t.py::a") as events:
        send_message(TD, recipients=["u2"], **kw)
    return [dict(e) for e in events]


def _findings(report: dict[str, Any]) -> list[tuple[str, str, str | None]]:
    return [(f["kind"], f["trace_id"], f["test"]) for f in report["findings"]]


def test_a_rerun_test_is_its_last_attempt_in_the_session_report() -> None:
    # were: the two attempts merged into one run, every hop a duplicate
    clean = _session_report(
        [{"test": "t.py::a", "events": _run()}, {"test": "t.py::a", "events": _run()}]
    )
    assert _findings(clean) == []
    assert (clean["summary"]["messages"], clean["summary"]["duplicate"]) == (1, 0)

    # a failed attempt (a drop), then a passing rerun: the rerun replaces it
    dropped = _run(stop_before={"u2": "CTRL.add"})
    fixed = _session_report(
        [{"test": "t.py::a", "events": dropped}, {"test": "t.py::a", "events": _run()}]
    )
    assert _findings(fixed) == []

    # the last attempt's drop is reported once, the earlier clean one forgotten
    last = _session_report(
        [{"test": "t.py::a", "events": _run()}, {"test": "t.py::a", "events": dropped}]
    )
    assert _findings(last) == [("drop", TD, "t.py::a")]
    # another test's events stay
    other = _session_report(
        [
            {"test": "t.py::a", "events": dropped},
            {"test": "t.py::b", "events": dropped},
            {"test": "t.py::a", "events": _run()},
        ]
    )
    assert _findings(other) == [("drop", TD, "t.py::b")]
    assert other["summary"]["messages"] == 2


RERUN_CONFTEST = """
import pytest
from _pytest.runner import runtestprotocol

@pytest.hookimpl(tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    # what pytest-rerunfailures does: run a failed test again under the same node id
    item.ihook.pytest_runtest_logstart(nodeid=item.nodeid, location=item.location)
    for attempt in range(2):
        reports = runtestprotocol(item, nextitem=nextitem, log=False)
        if not any(r.failed for r in reports):
            break
        item._initrequest()
    for r in reports:
        item.ihook.pytest_runtest_logreport(report=r)
    item.ihook.pytest_runtest_logfinish(nodeid=item.nodeid, location=item.location)
    return True
"""

FLAKY = f'''
from chatflow import send_message

ATTEMPTS = []

def test_flaky(tracekit_events):
    ATTEMPTS.append(1)
    send_message("{TD}", recipients=["u2"])
    assert len(ATTEMPTS) > 1, "fails the first time"
'''


def test_a_rerun_under_pytester_is_reported_once(pytester: pytest.Pytester) -> None:
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(RERUN_CONFTEST)
    pytester.makepyfile(chatflow=CHATFLOW, test_flaky=FLAKY)
    pytester.syspathinsert()
    out = pytester.path / "report.json"
    result = pytester.runpytest(
        "-p", "no:cacheprovider", f"--tracekit-report={out}", "--tracekit-gates=duplicate=0"
    )
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(
        [f"wrote --tracekit-report {out}: 9 event(s) from 1 test(s)", "PASS duplicate <= 0*"]
    )
    assert result.ret == 0
    report = json.loads(out.read_text())
    assert report["findings"] == []
    assert report["summary"]["messages"] == 1


APP_CONFIGURED = """
import pytest
import tracekit

@pytest.fixture(scope="session", autouse=True)
def app(tmp_path_factory):
    tracekit.configure(service="chat", sink=str(tmp_path_factory.mktemp("app") / "app.jsonl"))
    yield
    tracekit.shutdown()
"""

SENT = """
import uuid
import pytest
from chatflow import send_message

@pytest.mark.tracekit
def test_send():
    send_message(uuid.uuid4().hex, recipients=["u2"])
"""


def test_a_test_run_again_where_the_app_configured_tracekit_has_no_lost_beginning(
    pytester: pytest.Pytester,
) -> None:
    # review 25d: the second run's capture went on from the first's seqs (the app's sink
    # gets the events too), read as a log that lost its beginning: the test failed on a
    # log_gap, and so did the session's gate (a rerun, or a node id given twice)
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makeconftest(APP_CONFIGURED)
    pytester.makepyfile(chatflow=CHATFLOW, test_r=SENT)
    pytester.syspathinsert()
    result = pytester.runpytest(
        "-p", "no:cacheprovider", "--keep-duplicates", "test_r.py", "test_r.py",
        "--tracekit-gates=log_gap=0,drop=0",
    )  # fmt: skip
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["PASS log_gap <= 0*", "PASS drop <= 0*"])
