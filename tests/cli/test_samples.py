"""The sample logs hold what the README says: each `tracekit analyze sample_logs/...` line of
the README, run as written, gives the findings its comment names."""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tracekit.cli._app import app

ROOT = Path(__file__).resolve().parents[2]
RACE = "9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d"  # msg-1002, lost for u2 by the seed race

#: sample -> (messages, deliveries expected, delivered, findings as (kind, trace, recipient))
EXPECTED: dict[str, tuple[int, int, int, set[tuple[str, Any, Any]]]] = {
    "jsonl": (2, 4, 3, {("drop", RACE, "u2"), ("race", RACE, "u2"), ("log_gap", None, None)}),
    "legacy": (3, 6, 5, {("drop", RACE, "u2"), ("race", RACE, "u2")}),
    "otlp": (1, 2, 2, set()),
    "restart": (4, 4, 3, {("drop", "5a1c0e2f7b3d4c6e8f9a0b1c2d3e4f52", "u2")}),
}


def readme_commands() -> dict[str, list[str]]:
    commands = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        if line.startswith("tracekit analyze sample_logs/"):
            args = shlex.split(line.partition("#")[0])[1:]
            sample = args[1].removeprefix("sample_logs/").strip("/")
            if sample in EXPECTED:
                commands[sample] = args
    return commands


def test_the_readme_shows_every_sample() -> None:
    assert sorted(readme_commands()) == sorted(EXPECTED)


@pytest.mark.parametrize("sample", sorted(EXPECTED))
def test_each_sample_holds_what_the_readme_says(
    sample: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    args = readme_commands()[sample]
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, [*args, "-f", "json"])
    assert result.exit_code == 0, result.stderr
    report = json.loads(result.stdout)
    summary = report["summary"]
    messages, expected, delivered, findings = EXPECTED[sample]
    assert (summary["messages"], summary["deliveries_expected"], summary["delivered"]) == (
        messages,
        expected,
        delivered,
    )
    assert {(f["kind"], f["trace_id"], f["recipient"]) for f in report["findings"]} == findings
    assert report["inputs"]["warnings"] == []


def test_the_restart_sample_reads_its_runs_in_order_and_says_the_crash(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(app, ["analyze", "sample_logs/restart/", "-f", "json"])
    report = json.loads(result.stdout)
    where = "sample_logs/restart/client-u2.jsonl"
    assert report["summary"]["restarts"] == [
        {"source": "client-u2", "file": where, "line": 7, "mended": True}
    ]
    (drop,) = report["findings"]
    assert drop["detail"] == (
        "recipient u2: reached WS-RECV.receive, never reached REPO.add (the logs go on 9984.0 "
        f"ms after it); client-u2 restarted 832.0 ms after it (a new run of its log begins at "
        f"{where}:7)"
    )
    assert drop["evidence"] == [{"file": where, "line": 6}, {"file": where, "line": 7}]
