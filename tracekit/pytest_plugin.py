"""pytest plugin, registered through the ``pytest11`` entry point: a thin layer over
:mod:`tracekit.testing`.

- fixture ``tracekit_events``: the events this test emitted (captured in memory);
- fixture ``tracekit_logs``: a directory for the logs of servers and subprocesses the test
  starts; the marker's checks read it too, every file in it, as ``tracekit analyze`` would
  (any name, gzip...); a line that cannot be read fails the check;
- marker ``@pytest.mark.tracekit(complete=True, max_latency="500ms", no_findings=[...],
  pipeline=None, allow_empty=False)``: fails the test when its messages were not delivered,
  and when no message event was captured at all (nothing to check) unless ``allow_empty=True``.
  ``no_findings=True`` is every kind. Its options are checked when the tests are collected: a
  mistake is bad usage (exit 4; under xdist, its test fails at setup). Before reading
  ``tracekit_logs`` it flushes every open tracekit sink of the process (``configure``'s and
  every ``Instrumentation``'s), so events still queued are seen;
- ``--tracekit-report FILE``: the JSON report over every captured event of the session (written
  even when there is none, so no stale report survives; not with ``--collect-only``);
- ``--tracekit-gates drop=0,duplicate=0,p99:end_to_end=500ms,max_latency:end_to_end=2s,
  min_delivered=99.9%``: session gates over the same events; a failing gate fails the run;
  what the tests' ``tracekit_logs`` could not be read is said under them;
- ``--tracekit-pipeline MODEL.toml``: the pipeline of the session report and gates, and of
  the markers that name none (default: the built-in chat pipeline).

The events are captured with :func:`tracekit.testing.capture`: an app's own configuration
(actor, redaction, processors...) stays, and its sink still gets every event.

The session report and gates analyze the events of every test with the marker,
``tracekit_events`` or ``tracekit_logs`` together but keep the tests apart: each test is its own
run, so a trace id (or conversation, or log source) reused by two tests is two messages, not a
duplicate. Each finding names its ``test``. A test run again under its node id (a rerun) counts
as its last attempt.

Works under pytest-xdist: workers send their events to the controller, which reports once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Iterator, Mapping
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

import pytest

from tracekit.schema import META_STAGE
from tracekit.testing import (
    CapturedEvents,
    _from_one,
    _kinds,
    assert_complete,
    assert_latency,
    assert_no_findings,
    capture,
    unreadable,
)

if TYPE_CHECKING:
    from tracekit.analyzers import Pipeline

__all__ = ["tracekit_events", "tracekit_logs"]

_EVENTS = pytest.StashKey[CapturedEvents]()
_OPTIONS = pytest.StashKey["_MarkerOptions"]()
#: Under xdist, a marker's mistake (said when its test sets up: a worker cannot stop the run).
_MISUSED = pytest.StashKey[str]()
#: The session's pipeline (``--tracekit-pipeline``), where one was given.
_MODEL = pytest.StashKey["Pipeline"]()
_LOGS = pytest.StashKey[Path]()
#: The session's events, one entry per test: {"test": nodeid, "events": [...]}.
_SESSION = pytest.StashKey[list[dict[str, Any]]]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("tracekit", "trace completeness (tracekit)")
    group.addoption(
        "--tracekit-report",
        metavar="FILE",
        default=None,
        help="write the tracekit JSON report of all events captured in this session",
    )
    group.addoption(
        "--tracekit-gates",
        metavar="GATES",
        default=None,
        help="comma-separated session gates, e.g. drop=0,duplicate=0,p99:end_to_end=500ms,"
        "min_delivered=99.9%%",
    )
    group.addoption(
        "--tracekit-pipeline",
        metavar="MODEL",
        default=None,
        help="pipeline model (TOML) of the session report and gates, and of the markers "
        "that name none (default: the built-in chat pipeline)",
    )


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "tracekit(complete=True, max_latency=None, no_findings=None, pipeline=None, "
        "allow_empty=False): fail the test unless every message it sent reached every "
        "recipient; a test that sent no message fails unless allow_empty=True",
    )
    config.stash[_SESSION] = []
    model = config.getoption("--tracekit-pipeline", None)
    if model is not None:
        config.stash[_MODEL] = _pipeline(model, "--tracekit-pipeline")
    spec = config.getoption("--tracekit-gates", None)
    if spec is not None:
        try:
            config.stash[_GATES] = _parse_gates(spec, config.stash.get(_MODEL, None))
        except ValueError as exc:
            raise pytest.UsageError(f"--tracekit-gates: {exc}") from None


def pytest_collection_finish(session: pytest.Session) -> None:
    """The markers of the tests to run checked once they are known (deselected ones not): a
    mistake in one is bad usage (exit 4, before any test runs), not a failure of its test
    after the test ran (review 19b)."""
    model = session.config.stash.get(_MODEL, None)
    for item in session.items:
        marker = item.get_closest_marker("tracekit")
        if marker is not None:
            try:
                item.stash[_OPTIONS] = _marker_options(marker, model)
            except pytest.UsageError as exc:
                if hasattr(session.config, "workerinput"):
                    # an xdist worker cannot stop the run (its controller crashes): the test
                    # fails at setup instead, before its body runs
                    item.stash[_MISUSED] = str(exc)
                    continue
                raise pytest.UsageError(f"{item.nodeid}: {exc}") from None


def _wants_capture(item: pytest.Item) -> bool:
    """A test whose events go to the session report: it has the marker, or uses
    ``tracekit_events`` or ``tracekit_logs`` (a test checking its logs itself, or nothing)."""
    names = getattr(item, "fixturenames", ())
    return item.get_closest_marker("tracekit") is not None or any(
        name in names for name in ("tracekit_events", "tracekit_logs")
    )


@pytest.fixture(autouse=True)
def _tracekit_capture(request: pytest.FixtureRequest) -> Iterator[None]:
    item = request.node
    if (misused := item.stash.get(_MISUSED, None)) is not None:
        pytest.fail(f"usage: {misused}", pytrace=False)
    if not _wants_capture(item):
        yield
        return
    # One source per test: seq restarts for each test without looking like a log gap.
    with capture(source=f"pytest:{item.nodeid}") as events:
        item.stash[_EVENTS] = events
        yield
    captured, inputs = _test_events(item)
    entry: dict[str, Any] = {"test": item.nodeid, "events": captured}
    if inputs is not None:  # the reading of tracekit_logs: what it lost is the report's too
        entry["inputs"] = inputs
    request.config.stash[_SESSION].append(entry)


def _flush_sinks(timeout: float = 5.0) -> None:
    """Write out what every tracekit sink of this process still has queued: the current
    emitter's (``tracekit.flush``) and every open file or stream sink's, including those of
    ``Instrumentation`` instances the test made but did not close (nothing else knows them)."""
    import time

    import tracekit
    from tracekit import _sinks

    deadline = time.monotonic() + timeout
    tracekit.flush(timeout)
    for sink in list(_sinks._live):
        try:
            sink.flush(max(0.05, deadline - time.monotonic()))
        except Exception:
            pass  # a failing sink shows as missing events or a log gap, never as a crash here


def _test_events(item: pytest.Item) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The test's captured events plus those of every file under ``tracekit_logs``, read by the
    collectors (any format or name they read, gzip...); and the reading's account (the
    report's ``inputs``: what it read and what it could not), None without ``tracekit_logs``."""
    # the capture as a log of its own, numbered from 1 (review 25d: a rerun's capture goes
    # on from the first run's seqs where the app's log gets them too: a false lost beginning)
    events: list[dict[str, Any]] = [dict(e) for e in _from_one(list(item.stash.get(_EVENTS, [])))]
    logs = item.stash.get(_LOGS, None)
    if logs is None:
        return events, None
    _flush_sinks()
    import polars as pl

    from tracekit.collectors import collect

    collected = collect([logs])
    table = collected.events.with_columns(
        pl.col("timestamp").dt.to_string("%Y-%m-%dT%H:%M:%S%.9fZ")
    ).collect()
    events += [{k: v for k, v in row.items() if v is not None} for row in table.to_dicts()]
    return events, collected.inputs.to_dict()


def _lost(inputs: Mapping[str, Any] | None) -> str:
    """A sentence saying what the reading of ``tracekit_logs`` lost; empty where nothing."""
    lost = unreadable(inputs)
    if not lost:
        return ""
    return (
        "tracekit_logs holds what could not be read (a lost line may hold the missing hop): "
        + "; ".join(lost)
    )


@pytest.fixture
def tracekit_events(request: pytest.FixtureRequest) -> CapturedEvents:
    """The tracekit events emitted by this test, in emission order."""
    events: CapturedEvents = request.node.stash[_EVENTS]
    return events


@pytest.fixture
def tracekit_logs(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """A directory for JSON-lines logs (``sink=tracekit_logs / "server.jsonl"``)."""
    logs = tmp_path / "tracekit-logs"
    logs.mkdir()
    request.node.stash[_LOGS] = logs
    return logs


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item) -> Iterator[None]:
    result = yield
    options = item.stash.get(_OPTIONS, None)
    marker = item.get_closest_marker("tracekit")
    if options is None and marker is not None:  # added while the test ran (a fixture's
        # add_marker): checked now, as it was before (review 19c: passed, checking nothing)
        try:
            options = _marker_options(marker, item.config.stash.get(_MODEL, None))
        except pytest.UsageError as exc:
            pytest.fail(f"usage: {exc}", pytrace=False)
        if _EVENTS not in item.stash:  # (its capture was decided at setup: "captured
            # nothing" blamed the app, review 19d)
            pytest.fail(
                "@pytest.mark.tracekit was added while the test ran, after its events could "
                "be captured: mark the test itself, or have it use tracekit_events",
                pytrace=False,
            )
    if options is not None:
        _check_marker(item, options)
    return result


class _MarkerOptions(NamedTuple):
    """A ``@pytest.mark.tracekit`` marker's options, checked (:func:`_marker_options`)."""

    complete: bool
    max_latency: timedelta | None
    no_findings: set[str] | None  # None: not checked; every kind for no_findings=True
    pipeline: Pipeline | None
    allow_empty: bool


def _marker_options(marker: pytest.Mark, session_model: Pipeline | None) -> _MarkerOptions:
    """The marker's options, or a :class:`pytest.UsageError` naming what is wrong."""
    from tracekit.testing import _td

    name = "@pytest.mark.tracekit"
    if marker.args:
        raise pytest.UsageError(f"{name} takes keyword arguments only")
    options = dict(marker.kwargs)
    complete = options.pop("complete", True)
    max_latency = options.pop("max_latency", None)
    no_findings = options.pop("no_findings", None)
    pipeline = options.pop("pipeline", None)
    allow_empty = options.pop("allow_empty", False)
    if options:
        raise pytest.UsageError(f"{name}: unknown option(s) {', '.join(sorted(options))}")
    for key, flag in (("complete", complete), ("allow_empty", allow_empty)):
        if not isinstance(flag, bool):  # ("no" is truthy)
            raise pytest.UsageError(f"{name}({key}=...): True or False, not {flag!r}")
    try:
        limit = _td(max_latency) if max_latency is not None else None
    except (TypeError, ValueError) as exc:
        raise pytest.UsageError(f"{name}(max_latency=...): {exc}") from None
    if no_findings is True:
        from tracekit.cli._gates import FINDING_KINDS

        kinds: set[str] | None = set(FINDING_KINDS)
    else:
        try:
            kinds = _kinds(None if no_findings is False else no_findings)
        except (TypeError, ValueError) as exc:
            raise pytest.UsageError(f"{name}(no_findings=...): {exc}") from None
    model = _pipeline(pipeline, f"{name}(pipeline=...)") if pipeline is not None else None
    return _MarkerOptions(complete, limit, kinds, model or session_model, allow_empty)


def _check_marker(item: pytest.Item, options: _MarkerOptions) -> None:
    events, inputs = _test_events(item)
    # the assertion's message alone: tracekit's frames say nothing about the user's test
    if lost := _lost(inputs):
        pytest.fail(lost, pytrace=False)
    lost_here = _losses(events)
    if not any(e.get("trace_id") and e.get("stage") != META_STAGE for e in events):
        if options.allow_empty:
            return
        pytest.fail(
            f"tracekit captured no message events in this test: it {lost_here}"
            if lost_here
            else _NOTHING_CAPTURED,
            pytrace=False,
        )
    model, empty = options.pipeline, options.allow_empty
    try:
        if options.complete:
            assert_complete(events, within=options.max_latency, pipeline=model, allow_empty=empty)
        elif options.max_latency is not None:
            assert_latency(events, max=options.max_latency, pipeline=model)
        if options.no_findings is not None:
            assert_no_findings(events, kinds=options.no_findings, pipeline=model, allow_empty=empty)
    except AssertionError as exc:
        failed = str(exc)
    else:
        return
    if lost_here:  # (first: the likeliest cause of what follows)
        failed = f"tracekit {lost_here}\n{failed}"
    pytest.fail(failed, pytrace=False)  # (outside the except: no "during handling" chain)


def _losses(events: list[dict[str, Any]]) -> str:
    """What tracekit said it lost among ``events`` (its ``TRACEKIT.dropped`` reports: a
    processor of the app's that raised, a sink that failed), the count per reason; empty
    where nothing (review 25d: a test failed on "a log_gap" or "nothing captured", the
    reason in the captured reports unsaid)."""
    lost: dict[str, int] = {}
    for e in events:
        if e.get("stage") == META_STAGE and e.get("action") == "dropped":
            n = e.get("dropped")
            reason = str(e.get("reason") or "no reason given")
            lost[reason] = lost.get(reason, 0) + (n if isinstance(n, int) and n > 0 else 1)
    if not lost:
        return ""
    said = "; ".join(f"{n} by {reason}" for reason, n in lost.items())
    return (
        f"lost {sum(lost.values())} event(s) of this test before they were written ({said}): "
        "a lost event may be a missing hop"
    )


def _pipeline(value: object, given: str) -> Pipeline:
    """A pipeline ``given`` (an option's name) as a TOML file's path or a Pipeline; a
    :class:`pytest.UsageError` where it is neither, or its file is missing or invalid."""
    from tracekit.analyzers import Pipeline, load_pipeline
    from tracekit.errors import TracekitError

    if isinstance(value, Pipeline):
        return value
    if isinstance(value, str | os.PathLike):
        try:
            return load_pipeline(Path(value))
        except (TracekitError, OSError) as exc:
            raise pytest.UsageError(f"{given}: {exc}") from None
    raise pytest.UsageError(
        f"{given}: expected a path to a pipeline TOML file or a tracekit.analyzers.Pipeline, "
        f"not {type(value).__name__}"
    )


_NOTHING_CAPTURED = (
    "tracekit captured no message events in this test: nothing to check (a marker that checks "
    "nothing must not pass). The likely causes: tracekit is not configured where the messages "
    "are sent; the events go to another sink (a file outside tracekit_logs, a subprocess's own "
    "log); tracekit.Instrumentation instances write elsewhere (their events are not captured "
    'in memory: give them sink=tracekit_logs / "NAME.jsonl"). If sending no message is a valid '
    "outcome of this test, use @pytest.mark.tracekit(allow_empty=True)."
)


# -- session report and gates (xdist: workers ship events, the controller reports) ----------


def pytest_testnodedown(node: Any, error: Any) -> None:
    """On the xdist controller: collect a finished worker's events."""
    tests = getattr(node, "workeroutput", {}).get("tracekit_events")
    if tests:
        node.config.stash[_SESSION].extend(json.loads(tests))


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    tests = config.stash[_SESSION]
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the events over
        workeroutput["tracekit_events"] = json.dumps(tests, default=str)
        return
    report_path = config.getoption("--tracekit-report")
    gates = config.stash.get(_GATES, None)
    if (report_path is None and gates is None) or config.option.collectonly:
        return  # (--collect-only ran no test: no report to write, no gate to fail, 19b)
    tests = _last_attempts(tests)
    data = _session_report(tests, config.stash.get(_MODEL, None))
    events = sum(len(t["events"]) for t in tests)
    lines: list[str] = []
    if report_path is not None:
        try:
            Path(report_path).write_text(json.dumps(data, indent=2, default=str), encoding="utf-8")
        except OSError as exc:  # one line in the summary, not an INTERNALERROR traceback
            lines.append(f"FAIL cannot write --tracekit-report {report_path}: {exc.strerror}")
        else:
            lines.append(
                f"wrote --tracekit-report {report_path}: {events} event(s) from "
                f"{len(tests)} test(s)"
            )
    if gates is not None:
        lines += _evaluate_gates(gates, data if events else None)
        from tracekit.cli._render import input_notes

        # what the reading of tracekit_logs lost, as `tracekit check` says it
        lines += [line for line, _style in input_notes(data.get("inputs", {}))]
    config.stash[_GATE_LINES] = lines
    if any(line.startswith("FAIL") for line in lines) and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED


_GATE_LINES = pytest.StashKey[list[str]]()
_GATES = pytest.StashKey[list[Any]]()


def _scoped_id(test: str, trace_id: str) -> str:
    """A trace id of its own for each (test, trace id): 32 hex, as the analyzers expect."""
    return hashlib.blake2b(f"{test}\0{trace_id}".encode(), digest_size=16).hexdigest()


def _last_attempts(tests: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per test: a test run again under its node id (pytest-rerunfailures, flaky)
    is its last attempt, which replaces the earlier ones (merged, the attempts' messages would
    be duplicates of each other). In the order the tests first ran."""
    last: dict[str, dict[str, Any]] = {}
    for entry in tests:
        last[str(entry["test"])] = entry
    return list(last.values())


def _session_report(tests: list[dict[str, Any]], model: Pipeline | None = None) -> dict[str, Any]:
    """One analysis of every test's events, the tests kept apart: each test's trace ids,
    conversations and message ids are its own (a test is a run of its own: two tests sending
    the same trace id constant send two messages). A log source stays one source (a server
    shared by the tests has one clock and one ``seq``: split, it would show gaps and lose its
    clock), unless two tests hold the same ``seq`` of it (each read the same log): then each
    test's copy is a source of its own. Findings come back in the tests' own terms, plus the
    ``test`` they are in. A test recorded more than once (a rerun) is its last attempt."""
    from tracekit.testing import analyze_events

    tests = _last_attempts(tests)

    tests_of: dict[tuple[str, object], set[str]] = {}
    for entry in tests:
        for event in entry["events"]:
            if event.get("source") is not None and event.get("seq") is not None:
                at = (str(event["source"]), event["seq"])
                tests_of.setdefault(at, set()).add(str(entry["test"]))
    shared = {source for (source, _), where in tests_of.items() if len(where) > 1}
    events: list[dict[str, Any]] = []
    traces: dict[str, tuple[str, str]] = {}  # scoped id -> (trace id, test)
    for entry in tests:
        test = str(entry["test"])
        for event in entry["events"]:
            scoped = dict(event)
            tid = scoped.get("trace_id")
            if tid:
                scoped["trace_id"] = _scoped_id(test, str(tid))
                traces[scoped["trace_id"]] = (str(tid), test)
            for key in ("conv_id", "msg_id"):
                if scoped.get(key) is not None:
                    scoped[key] = f"{scoped[key]} @ {test}"
            if str(scoped.get("source")) in shared:
                scoped["source"] = f"{scoped['source']} @ {test}"
            events.append(scoped)
    data = analyze_events(events, pipeline=model).to_dict()
    unscope = _Unscope(traces, {str(t["test"]) for t in tests})
    for finding in data["findings"]:
        unscope(finding)
    read = _inputs(tests)  # (the analysis' own warnings kept after the readings', 19c)
    warnings = [*read.get("warnings", []), *data["inputs"].get("warnings", [])]
    data["inputs"] = read | {"events": len(events)} | ({"warnings": warnings} if warnings else {})
    return data


def _inputs(tests: list[dict[str, Any]]) -> dict[str, Any]:
    """The readings of the tests' ``tracekit_logs`` as one account (counts added, examples and
    warnings named by their test): a line one test's logs lost is the session's loss too
    (review 19b: the report said ``malformed: 0`` over a test's unreadable line)."""
    out: dict[str, Any] = {"files": 0, "lines": 0, "events": 0, "malformed": 0}
    for entry in tests:
        inputs = entry.get("inputs") or {}
        for key, value in inputs.items():
            if isinstance(value, int) and not isinstance(value, bool):
                out[key] = out.get(key, 0) + value
            elif isinstance(value, list) and key in ("examples", "warnings"):
                out.setdefault(key, []).extend(f"{entry['test']}: {v}" for v in value)
    return out


class _Unscope:
    """A finding of :func:`_session_report` in the tests' own terms: every scoped trace id in
    it back to the test's own, every `` @ test`` suffix gone, and the ``test`` it is in."""

    def __init__(self, traces: Mapping[str, tuple[str, str]], tests: set[str]) -> None:
        import re

        self.traces = traces
        self.scoped = re.compile(r"\b[0-9a-f]{32}\b")
        # the longest test ids first: one may end like another
        names = sorted(tests, key=len, reverse=True)
        self.suffix = (
            re.compile(" @ (?:" + "|".join(map(re.escape, names)) + ")") if names else None
        )
        self.tests = names

    def _test_of(self, text: str) -> str | None:
        return next((t for t in self.tests if text.endswith(f" @ {t}")), None)

    def _plain(self, text: str) -> str:
        text = self.scoped.sub(lambda m: self.traces.get(m.group(), (m.group(),))[0], text)
        return self.suffix.sub("", text) if self.suffix is not None else text

    def __call__(self, finding: dict[str, Any]) -> None:
        test = None
        scoped = finding.get("trace_id")
        if isinstance(scoped, str) and scoped in self.traces:
            finding["trace_id"], test = self.traces[scoped]
        for key in ("conv_id", "source"):
            value = finding.get(key)
            if isinstance(value, str):
                if test is None:
                    test = self._test_of(value)
                    if test is None and key == "source" and value.startswith("pytest:"):
                        test = value.removeprefix("pytest:")
                finding[key] = self._plain(value)
        if isinstance(finding.get("detail"), str):
            finding["detail"] = self._plain(finding["detail"])
        finding["test"] = test


def _parse_gates(spec: str, model: Pipeline | None = None) -> list[Any]:
    from tracekit.cli import _gates
    from tracekit.cli._units import parse_percent

    gates = []
    for part in (p.strip() for p in spec.split(",") if p.strip()):
        kind, colon, rest = part.partition(":")
        # (a latency gate's hop is checked against the model below: named as written there,
        # not as the CLI's --p99, review 21c)
        if colon and kind in ("max", "max_latency"):  # max:HOP=... is the latency maximum
            gate = _gates.parse_latency_gate("max_latency", rest)
            gates.append(dataclasses.replace(gate, given_in=part))
        elif colon and "=" not in kind:  # p99:HOP=... (p42 is no latency gate: said so)
            gates.append(dataclasses.replace(_gates.parse_latency_gate(kind, rest), given_in=part))
        elif part.startswith("min_delivered="):
            gates.append(
                _gates.Gate(
                    "min_delivered",
                    "delivered",
                    parse_percent(part.split("=", 1)[1]),
                    given_in=part,  # (named as written: review 21c)
                )
            )
        else:
            gates.append(_gates.parse_max_gate(part))
    if not gates:  # ("," or "": a run gated by nothing must not pass as gated)
        raise ValueError(f"no gate in {spec!r}: give e.g. drop=0,p99:end_to_end=500ms")
    # a misspelt hop is bad usage, as `tracekit check` says it (not "no latency samples")
    # (and a delivery or end-to-end gate in a model without a 'final' role)
    if model is not None or any(
        g.kind in _gates.LATENCY_GATES and g.target != "end_to_end" for g in gates
    ):
        from tracekit.analyzers import default_pipeline

        _gates.check_hops(gates, model or default_pipeline())
    return gates


def _evaluate_gates(gates: list[Any], data: Mapping[str, Any] | None) -> list[str]:
    from tracekit.cli import _gates

    if data is None:
        return ["FAIL tracekit gates: no events were captured in this session"]
    return [
        f"{'PASS' if r.ok else 'FAIL'} {r.gate.name}: {r.detail}"
        + "".join(f"\n    {e}" for e in r.examples)
        for r in _gates.evaluate(data, gates)
    ]


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    lines = config.stash.get(_GATE_LINES, None)
    if not lines:
        return
    terminalreporter.section("tracekit")
    for line in lines:
        terminalreporter.write_line(line)
