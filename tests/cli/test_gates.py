"""Gate parsing and evaluation over a report dict, without the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import pytest

from tracekit.cli._gates import (
    Gate,
    evaluate,
    gates_from_config,
    github_annotations,
    junit_xml,
    merge,
    parse_latency_gate,
    parse_max_gate,
)
from tracekit.cli._units import parse_duration, parse_percent

REPORT: dict[str, Any] = {
    "summary": {"messages": 10, "deliveries_expected": 20, "delivered": 19, "drop": 1},
    "findings": [
        {
            "kind": "drop",
            "trace_id": "t1",
            "recipient": "u2",
            "stage": "CTRL.add",
            "last_seen": "REPO.add",
            "evidence": [{"file": "client-u2.jsonl", "line": 14}],
        }
    ],
    "latency": {
        "hops": [
            {"from": "WS-BROADCAST.deliver", "to": "WS-RECV.receive", "count": 19, "p99_ms": 80.0}
        ],
        "end_to_end": {"count": 19, "p50_ms": 40.0, "p99_ms": 620.0, "max_ms": 700.0},
    },
}


@pytest.mark.parametrize(
    ("text", "seconds"), [("500ms", 0.5), ("2s", 2), ("1m", 60), ("250", 0.25), ("1.5s", 1.5)]
)
def test_durations(text: str, seconds: float) -> None:
    assert parse_duration(text).total_seconds() == seconds


def test_bad_values_say_how_to_fix_them() -> None:
    with pytest.raises(ValueError, match=r"use e.g. 500ms, 2s, 1m"):
        parse_duration("fast")
    with pytest.raises(ValueError, match=r"use e.g. 99.9%"):
        parse_percent("most")
    with pytest.raises(ValueError, match="KIND one of drop"):
        parse_max_gate("drops=0")
    with pytest.raises(ValueError, match="whole number"):
        parse_max_gate("drop=x")
    with pytest.raises(ValueError, match="FROM->TO"):
        parse_latency_gate("p99", "CTRL.add=5ms")
    assert parse_percent("99.9%") == 99.9


def test_a_bare_fraction_is_refused_as_a_percentage() -> None:
    # min_delivered = 0.999 meant 99.9%, and gated at 0.999%: a gate that passed on almost
    # nothing, without a word
    with pytest.raises(ValueError, match=r"'0.999' is a percent, not a fraction: write 99.9%"):
        parse_percent("0.999")
    with pytest.raises(ValueError, match=r"write 100% for a fraction of 1, or 1% if you mean"):
        parse_percent("1")
    assert (parse_percent("0.999%"), parse_percent("0"), parse_percent("99.9")) == (
        0.999,
        0.0,
        99.9,
    )


def test_evaluate_names_failures_with_examples() -> None:
    gates = [
        parse_max_gate("drop=0"),
        parse_max_gate("duplicate=0"),
        parse_latency_gate("p99", "end_to_end=500ms"),
        parse_latency_gate("p99", "WS-BROADCAST.deliver->WS-RECV.receive=100ms"),
        Gate("min_delivered", "delivered", 99.9),
    ]
    results = evaluate(REPORT, gates)
    assert [(r.gate.name, r.ok) for r in results] == [
        ("drop <= 0", False),
        ("duplicate <= 0", True),
        ("p99 end_to_end <= 500 ms", False),
        ("p99 WS-BROADCAST.deliver->WS-RECV.receive <= 100 ms", True),
        ("delivered >= 99.9%", False),
    ]
    assert results[0].examples == (
        "t1 recipient u2 at CTRL.add (last seen REPO.add) [client-u2.jsonl:14]",
    )
    assert results[2].detail == "p99 end_to_end = 620.0 ms over 19 samples"
    assert results[4].detail == "19/20 delivered = 95.000%, required 99.9%"


def test_a_latency_gate_shows_the_findings_of_its_own_edge() -> None:
    # Review 24b: a hop's gate showed the end-to-end breaches that ended at its hop (matched
    # on the stage alone); end to end showed every hop's outliers too.
    def slow(kind: str, trace: str, last_seen: str, stage: str) -> dict[str, Any]:
        return {"kind": kind, "trace_id": trace, "recipient": "u3", "stage": stage,
                "last_seen": last_seen}  # fmt: skip

    report = {
        **REPORT,
        "findings": [
            slow("slo_breach", "e2e", "CTRL.send", "CTRL.add"),
            slow("latency_outlier", "hop", "REPO.add", "CTRL.add"),
            slow("latency_outlier", "ws", "WS-BROADCAST.deliver", "WS-RECV.receive"),
        ],
        "latency": {
            "hops": [
                {"from": "WS-BROADCAST.deliver", "to": "WS-RECV.receive", "count": 19,
                 "p99_ms": 80.0},
                {"from": "REPO.add", "to": "CTRL.add", "count": 19, "p99_ms": 40.0},
            ],
            "end_to_end": {"count": 19, "p99_ms": 620.0},
        },
    }  # fmt: skip
    hop, e2e = evaluate(
        report,
        [
            parse_latency_gate("p99", "REPO.add->CTRL.add=1ms"),
            parse_latency_gate("p99", "end_to_end=500ms"),
        ],
    )
    assert hop.examples == ("hop recipient u3 at CTRL.add (last seen REPO.add)",)
    assert e2e.examples == ("e2e recipient u3 at CTRL.add (last seen CTRL.send)",)
    assert e2e.detail == "p99 end_to_end = 620.0 ms over 19 samples"
    # a breach the clock bounds leave in doubt: the failed gate says so
    report["findings"][0]["detail"] = "... above the 500.0 ms SLO; not certain: at least 9.0 ms"
    (e2e,) = evaluate(report, [parse_latency_gate("p99", "end_to_end=500ms")])
    assert e2e.detail == (
        "p99 end_to_end = 620.0 ms over 19 samples; 1 of its SLO breaches may be clock error, "
        "not latency (their details say 'not certain')"
    )


@pytest.mark.parametrize(
    ("limit", "ok", "shown"),
    [
        ("620.02ms", False, "620.049"),  # (620.0 would read under the limit it failed)
        ("620ms", False, "620.049"),  # (620.0 would read as the limit)
        ("620.06ms", True, "620.0"),
        ("16.73ms", False, "620.0"),
    ],
)
def test_a_latency_gates_value_never_reads_as_its_limit_or_across_it(
    limit: str, ok: bool, shown: str
) -> None:
    # review 24b: "PASS max ... <= 16.773 ms: ... = 16.8 ms"
    report = {**REPORT, "latency": {"hops": [], "end_to_end": {"count": 19, "p99_ms": 620.049}}}
    (result,) = evaluate(report, [parse_latency_gate("p99", f"end_to_end={limit}")])
    assert (result.ok, result.detail) == (ok, f"p99 end_to_end = {shown} ms over 19 samples")


def test_missing_latency_samples_fail_the_gate() -> None:
    (result,) = evaluate(REPORT, [parse_latency_gate("p99", "REST.persist->REST.response=1s")])
    assert (result.ok, result.detail) == (
        False,
        "no latency samples for REST.persist->REST.response",
    )


def test_gates_from_pyproject_and_cli_override(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(
        "[tool.tracekit.gates]\n"
        "max = {drop = 0, duplicate = 2}\n"
        'p99 = {end_to_end = "500ms"}\n'
        'min_delivered = "99%"\n'
    )
    configured = gates_from_config(pyproject)
    assert configured == [
        Gate("max", "drop", 0),
        Gate("max", "duplicate", 2),
        Gate("p99", "end_to_end", 500.0),
        Gate("min_delivered", "delivered", 99.0),
    ]
    merged = merge(configured, [parse_max_gate("duplicate=0")])
    assert Gate("max", "duplicate", 0) in merged and Gate("max", "duplicate", 2) not in merged
    assert gates_from_config(tmp_path / "absent.toml") == []
    pyproject.write_text("[tool.tracekit.gates]\nslow = 3\n")
    with pytest.raises(ValueError, match="unknown or malformed gate"):
        gates_from_config(pyproject)


def test_junit_and_github_annotations() -> None:
    results = evaluate(REPORT, [parse_max_gate("drop=0"), parse_max_gate("race=0")])
    suite = ElementTree.fromstring(junit_xml(results)).find("testsuite")
    assert suite is not None
    assert (suite.get("tests"), suite.get("failures")) == ("2", "1")
    cases = {c.get("name"): c.find("failure") for c in suite.iter("testcase")}
    assert cases["race <= 0"] is None
    failure = cases["drop <= 0"]
    assert failure is not None and "t1 recipient u2 at CTRL.add" in (failure.text or "")
    assert github_annotations(results) == [
        "::error title=tracekit gate drop <= 0::1 drop finding(s), allowed 0%0A"
        "t1 recipient u2 at CTRL.add (last seen REPO.add) [client-u2.jsonl:14]"
    ]


def test_github_annotation_title_escapes_what_ends_a_property() -> None:
    # a hop id may hold ':' and ',': in the title they ended it early (GitHub cuts a property
    # at ',' and the properties at '::')
    report = {"summary": {"messages": 1}, "findings": [], "latency": {
        "hops": [{"from": "grpc::Chat.send", "to": "Chat,Room.add", "count": 3, "p99_ms": 20.0}],
        "end_to_end": {"count": 0},
    }}  # fmt: skip
    (line,) = github_annotations(
        evaluate(report, [Gate("p99", "grpc::Chat.send->Chat,Room.add", 10.0)])
    )
    title, _, message = line.removeprefix("::error title=").partition("::")
    assert title == "tracekit gate p99 grpc%3A%3AChat.send->Chat%2CRoom.add <= 10 ms"
    assert message.startswith("p99 grpc::Chat.send->Chat,Room.add = 20.0 ms over 3 samples")


def test_delivery_gate_without_expected_deliveries_fails() -> None:
    """0/0 is not 100%: a delivery gate that has nothing to check must not pass silently."""
    empty: dict[str, Any] = {"summary": {"messages": 0}, "findings": []}
    (result,) = evaluate(empty, [Gate("min_delivered", "delivered", 99.9)])
    assert (result.ok, result.actual) == (False, None)
    assert result.detail == (
        "no deliveries to check: the logs hold no messages (empty, unreadable or not "
        "tracekit events?)"
    )
    stuck: dict[str, Any] = {
        "summary": {"messages": 5, "deliveries_expected": 0, "delivered": 0, "drop": 5},
        "findings": [
            {"kind": "drop", "trace_id": f"t{i}", "stage": "REST.persist"} for i in range(5)
        ],
    }
    (result,) = evaluate(stuck, [Gate("min_delivered", "delivered", 0.0)])
    assert (result.ok, result.actual) == (False, None)
    assert result.detail == (
        "no deliveries to check: 5 message(s) but no expected recipient "
        "(no broadcast recipients list, no other member of the conversation seen)"
    )
    assert result.examples == ("t0 at REST.persist", "t1 at REST.persist", "t2 at REST.persist")
