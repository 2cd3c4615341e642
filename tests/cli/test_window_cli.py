"""``--since``/``--until`` leave events out on purpose: no log gap of their own (session 23:
every source read from ``--since`` began "mid-traffic", and ``check --max log_gap=0`` failed
on clean logs), while a loss inside the window is still found."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
from typer.testing import CliRunner

from tracekit.cli._app import app
from tracekit.synth import generate

runner = CliRunner()
SINCE = "2026-02-09T12:00:19.653719Z"  # the middle event of seed 7's history


def _history(tmp_path: Path) -> Path:
    path = tmp_path / "all.jsonl"
    generate(7, messages=60, users=4, conversations=2, max_members=3).write_jsonl(path)
    return path


def test_check_from_a_time_passes_a_clean_log(tmp_path: Path) -> None:
    path = _history(tmp_path)
    result = runner.invoke(app, ["check", str(path), "--since", SINCE, "--max", "log_gap=0"])
    assert result.exit_code == 0, result.stdout
    assert "PASS  log_gap <= 0: 0 log_gap finding(s), allowed 0" in result.stdout
    assert "405 of the 811 events read are outside --since/--until" in result.output


def test_a_line_lost_inside_the_window_is_still_a_gap(tmp_path: Path) -> None:
    path = _history(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    # the server's line before its last (a heartbeat after the traffic): a jump between two
    # lines the window holds
    at = [i for i, line in enumerate(lines) if orjson.loads(line)["source"] == "chat-server-1"][-2]
    lost = orjson.loads(lines[at])
    path.write_bytes(b"".join(lines[:at] + lines[at + 1 :]))
    result = runner.invoke(
        app,
        ["analyze", str(path), "--since", SINCE, "--until", "2030-01-01T00:00:00Z", "-f", "json"],
    )
    assert result.exit_code == 0, result.stderr
    gaps = [
        (f["source"], f["detail"])
        for f in json.loads(result.stdout)["findings"]
        if f["kind"] == "log_gap"
    ]
    assert gaps == [
        (
            "chat-server-1",
            f"seq jumps from {lost['seq'] - 1} to {lost['seq'] + 1}: 1 event(s) lost by the "
            "logging",
        )
    ]
