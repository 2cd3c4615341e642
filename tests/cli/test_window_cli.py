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


def test_a_drop_just_after_since_fails_the_gate(tmp_path: Path) -> None:
    # review 26c: the lines --since left out filled each log's "lost beginning" whole; the
    # gap held every path for 5 s after them and, losing nothing, named none: the first
    # store after SINCE not made, `check --max drop=0` passed with no finding at all
    path = _history(tmp_path)
    lines = path.read_bytes().splitlines(keepends=True)
    events = [orjson.loads(line) for line in lines]
    at = next(
        i
        for i, e in enumerate(events)
        if (e["stage"], e["action"]) == ("CTRL", "add") and e["timestamp"] > SINCE
    )
    ignored = {**events[at], "action": "ignored", "event": "CTRL ignored"}  # (seq kept)
    lines[at] = orjson.dumps(ignored) + b"\n"
    path.write_bytes(b"".join(lines))
    result = runner.invoke(
        app, ["check", str(path), "--since", SINCE, "--max", "drop=0"], env={"COLUMNS": "200"}
    )
    assert result.exit_code == 1, result.stdout
    trace, user = events[at]["trace_id"], events[at]["actor"]
    stored = next(  # (the evidence: the store's line, the last hop reached)
        i + 1
        for i, e in enumerate(events)
        if (e.get("trace_id"), e.get("actor"), e["stage"]) == (trace, user, "REPO")
    )
    assert result.stdout.splitlines()[:2] == [
        "FAIL  drop <= 0: 1 drop finding(s), allowed 0",
        f"      {trace} recipient {user} at CTRL.add (last seen REPO.add) [{path}:{stored}]",
    ]


def test_check_says_how_many_paths_the_window_cut(tmp_path: Path) -> None:
    # review 26e: the note on in-flight paths said their next hop "may still come within the
    # grace window at the end of the logs" of paths whose next hop --until left out
    path = _history(tmp_path)
    window = ["--until", SINCE, "--grace", "0s"]
    found = json.loads(runner.invoke(app, ["analyze", str(path), *window, "-f", "json"]).stdout)[
        "findings"
    ]
    cut = [f for f in found if f["kind"] == "in_flight"]
    assert cut and all("outside the time window read" in f["detail"] for f in cut)
    result = runner.invoke(app, ["check", str(path), *window, "--max", "drop=0"])
    assert result.exit_code == 0, result.stdout
    notes = [line for line in result.stdout.splitlines() if line.startswith("note:")]
    assert notes == [
        f"note: {len(cut)} in_flight finding{'s' if len(cut) > 1 else ''} cut by "
        "--since/--until (the next hop is outside the time window read), not counted as "
        "drops: gate them with --max in_flight=0"
    ]
