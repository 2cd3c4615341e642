"""The tracekit CLI through typer's CliRunner, and exit codes through real subprocesses."""

from __future__ import annotations

import json
import shlex
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any
from xml.etree import ElementTree

import jsonschema
import polars as pl
import pytest
from cli_logs import T_LOST, write_logs
from typer.testing import CliRunner

import tracekit
from tracekit.analyzers import INPUT_COLUMNS
from tracekit.cli._app import app

ROOT = Path(__file__).resolve().parents[2]
runner = CliRunner()


def run(*args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200", **(env or {})})
    return result.exit_code, result.stdout, result.stderr


def test_version() -> None:
    assert run("--version")[:2] == (0, "tracekit 0.1.0\n")


@pytest.mark.parametrize(
    "command", ["analyze", "check", "trace", "watch", "collect", "demo", "report"]
)
def test_every_command_has_help_with_an_example(command: str) -> None:
    code, out, _ = run(command, "--help")
    assert code == 0
    assert "Example:" in out and f"tracekit {command}" in out


def test_analyze_table(logs: Path) -> None:
    code, out, _ = run("analyze", str(logs), "--grace", "0s")
    assert code == 0
    assert "2 messages · 3/4 deliveries (75.0%)" in out
    assert "drop=1" in out
    assert "Delivery funnel" in out and "Latency (ms, clock-corrected)" in out
    finding = next(line for line in out.splitlines() if "│ drop " in line)
    assert T_LOST[:12] in finding and "for u2 at CTRL.add (last seen REPO.add)" in finding


def test_analyze_json_follows_the_documented_schema(logs: Path) -> None:
    code, out, _ = run("analyze", str(logs), "--format", "json", "--grace", "0s")
    assert code == 0
    report = json.loads(out)
    schema = json.loads((ROOT / "docs" / "report.schema.json").read_text())
    jsonschema.validate(report, schema)
    assert report["summary"]["drop"] == 1
    (drop,) = [f for f in report["findings"] if f["kind"] == "drop"]
    assert (drop["trace_id"], drop["recipient"], drop["stage"], drop["last_seen"]) == (
        T_LOST,
        "u2",
        "CTRL.add",
        "REPO.add",
    )
    assert drop["evidence"][0]["file"].endswith("chat.jsonl")
    funnel = {row["hop"]: (row["reached"], row["expected"]) for row in report["funnel"]}
    assert funnel["CTRL.send"] == (2, 2) and funnel["CTRL.add"] == (3, 4)


def test_inside_grace_it_is_in_flight_not_a_drop(logs: Path) -> None:
    report = json.loads(run("analyze", str(logs), "-f", "json", "--grace", "1m")[1])
    assert (report["summary"]["drop"], report["summary"]["in_flight"]) == (0, 1)


def test_check_says_how_many_are_in_flight_and_can_gate_on_them(logs: Path) -> None:
    """Inside the grace window a lost delivery is in_flight, not a drop: --max drop=0 passes,
    but check says so, and --max in_flight=0 gates on it."""
    code, out, _ = run("check", str(logs), "--max", "drop=0", "--grace", "1m")
    assert code == 0
    assert out.splitlines()[-2:] == [
        "note: 1 in_flight finding (undecided: its next hop may still come within the 60 s "
        "grace window at the end of the logs), not counted as a drop: gate it with "
        "--max in_flight=0, or decide it with --grace 0s",
        "1 passed, 0 failed",
    ]
    code, out, _ = run("check", str(logs), "--max", "in_flight=0", "--grace", "1m")
    assert code == 1
    assert "FAIL  in_flight <= 0: 1 in_flight finding(s), allowed 0" in out
    assert f"      {T_LOST} recipient u2 at CTRL.add (last seen REPO.add)" in out
    # decided (grace 0s): a drop, and no note
    code, out, _ = run("check", str(logs), "--max", "drop=0", "--grace", "0s")
    assert code == 1 and "in_flight finding" not in out


def test_markdown_and_output_file(logs: Path, tmp_path: Path) -> None:
    target = tmp_path / "out" / "report.md"
    code, out, _ = run("analyze", str(logs), "-f", "markdown", "-o", str(target), "--grace", "0")
    assert (code, out) == (0, "")
    text = target.read_text()
    assert text.startswith("# tracekit report")
    assert f"| drop | `{T_LOST}` | for u2 at CTRL.add (last seen REPO.add) |" in text


def test_since_until_filter(logs: Path) -> None:
    report = json.loads(
        run("analyze", str(logs), "-f", "json", "--until", "2000-01-01T00:00:00Z")[1]
    )
    assert report["summary"]["messages"] == 0


def test_check_passes_and_fails_with_examples(logs: Path, tmp_path: Path) -> None:
    code, out, _ = run("check", str(logs), "--max", "duplicate=0", "--grace", "0s")
    assert code == 0
    assert "PASS  duplicate <= 0" in out and "1 passed, 0 failed" in out

    junit = tmp_path / "junit.xml"
    code, out, _ = run(
        "check",
        str(logs),
        "--max",
        "drop=0",
        "--min-delivered",
        "99%",
        "--grace",
        "0s",
        "--junit",
        str(junit),
        env={"GITHUB_ACTIONS": "true"},
    )
    assert code == 1
    assert "FAIL  drop <= 0: 1 drop finding(s), allowed 0" in out
    assert f"      {T_LOST} recipient u2 at CTRL.add (last seen REPO.add)" in out
    assert "FAIL  delivered >= 99%: 3/4 delivered = 75.000%" in out
    assert "::error title=tracekit gate drop <= 0::" in out
    suite = ElementTree.parse(junit).getroot().find("testsuite")
    assert suite is not None and (suite.get("tests"), suite.get("failures")) == ("2", "2")


def _stuck_logs(logs: Path) -> Path:
    """Five messages that stop at REST.request: no persist, no broadcast, no recipient."""
    logs.mkdir(parents=True, exist_ok=True)
    inst = tracekit.Instrumentation(service="chat", source="client-u1", sink=logs / "u1.jsonl")
    with inst.activate():
        for i in range(5):
            with tracekit.message(f"{i + 1:032x}", conv_id="c1"), tracekit.bind(actor="u1"):
                tracekit.emit("CTRL", "send")
                tracekit.emit("REST", "request")
    inst.close()
    return logs


def test_check_min_delivered_without_deliveries_fails(tmp_path: Path) -> None:
    # (no events at all, an empty directory or a binary file, is exit 2: test_check_gates_cli)
    target = _stuck_logs(tmp_path / "stuck")
    reason = "5 message(s) but no expected recipient"
    code, out, _ = run("check", str(target), "--min-delivered", "99.9%", "--grace", "0s")
    assert code == 1
    assert f"FAIL  delivered >= 99.9%: no deliveries to check: {reason}" in out
    assert "100.000%" not in out and "0 passed, 1 failed" in out


def test_check_reads_gates_from_pyproject(logs: Path, tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.tracekit.gates]\nmax = {drop = 0}\np99 = {end_to_end = "10s"}\n')
    code, out, _ = run("check", str(logs), "--config", str(pyproject), "--grace", "0s")
    assert code == 1
    assert "FAIL  drop <= 0" in out and "PASS  p99 end_to_end <= 10000 ms" in out
    # the command line overrides the file's gate of the same kind
    code, out, _ = run(
        "check", str(logs), "--config", str(pyproject), "--max", "drop=1", "--grace", "0s"
    )
    assert code == 0 and "PASS  drop <= 1" in out


def test_trace_shows_the_missing_hop(logs: Path) -> None:
    code, out, _ = run("trace", T_LOST, str(logs), "--grace", "0s")
    assert code == 0
    lines = out.splitlines()
    missing = [line for line in lines if "(missing)" in line]  # not the tmp path's test name
    assert len(missing) == 1 and "u2" in missing[0] and "✗ CTRL.add (missing)" in missing[0]
    # the logs end right after it: within the default 5 s grace window it is not yet a drop
    code, out, _ = run("trace", T_LOST, str(logs))
    (pending,) = [line for line in out.splitlines() if "(in flight)" in line]
    assert code == 0 and "u2" in pending and "… CTRL.add (in flight)" in pending
    assert "(missing)" not in out
    # accepts the client message id UUID form too
    assert run("trace", "0b9e6f4c-1d2a-4e8b-9c3f-5a6b7c8d9e0f", str(logs))[0] == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "nope/"], "no such file or directory: nope"),
        (["analyze", "{logs}", "--grace", "soon"], "--grace: not a duration: 'soon'"),
        (["analyze", "{logs}", "--pipeline", "missing.toml"], "pipeline file not found"),
        (["analyze", "{logs}", "--since", "yesterday"], "is not an ISO time"),
        (["check", "{logs}", "--max", "drops=0"], "bad --max gate 'drops=0'"),
        (["check", "{logs}"], "no gates"),
        (["trace", "xyz", "{logs}"], "not a trace id"),
        (["trace", "1" * 32, "{logs}"], "does not occur in the given logs"),
    ],
)
def test_bad_usage_exits_2_with_one_line(logs: Path, args: list[str], message: str) -> None:
    code, _out, err = run(*(a.replace("{logs}", str(logs)) for a in args))
    assert code == 2
    assert err.startswith("tracekit: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


@pytest.mark.parametrize(
    "args",
    [
        ["check", "{logs}", "--max", "drop=9", "--grace", "0s", "--junit", "{out}"],
        ["analyze", "{logs}", "-o", "{out}"],
        ["analyze", "{logs}", "-f", "json", "-o", "{out}"],
        ["analyze", "{logs}", "-f", "markdown", "-o", "{out}"],
        ["analyze", "{logs}", "-f", "html", "-o", "{out}"],
        ["report", "{logs}", "-o", "{out}"],
    ],
    ids=[
        "check-junit",
        "analyze-table",
        "analyze-json",
        "analyze-markdown",
        "analyze-html",
        "report",
    ],
)
@pytest.mark.parametrize("where", ["under a file", "a directory"])
def test_unwritable_output_exits_2_with_one_line(
    logs: Path, tmp_path: Path, args: list[str], where: str
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory\n")
    out = blocker / "out.txt" if where == "under a file" else tmp_path
    option = "--junit" if "--junit" in args else "-o"
    code, _out, err = run(
        *(a.replace("{logs}", str(logs)).replace("{out}", str(out)) for a in args)
    )
    assert code == 2
    assert err.startswith(f"tracekit: error: cannot write {option} {out}: ")
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


@pytest.mark.parametrize("port", ["70000", "0", "-1"])
def test_collect_rejects_a_port_out_of_range(tmp_path: Path, port: str) -> None:
    out = tmp_path / "otlp.jsonl"
    code, _out, err = run("collect", f"--port={port}", "--out", str(out))
    assert code == 2
    assert err == f"tracekit: error: --port {port}: use a port from 1 to 65535\n"
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze", "{logs}", "--grace", "99999999999999999999999s"], "--grace: too long: "),
        (["check", "{logs}", "--p99", "end_to_end=99999999999999999999999s"], "too long: "),
        (["watch", "{logs}", "--interval", "99999999999999999999999h"], "--interval: too long"),
        (["check", "{logs}", "--max", "drop=0", "--config", "{tmp}/absent.toml"], "--config "),
    ],
)
def test_out_of_range_values_exit_2_with_one_line(
    logs: Path, tmp_path: Path, args: list[str], message: str
) -> None:
    code, _out, err = run(
        *(a.replace("{logs}", str(logs)).replace("{tmp}", str(tmp_path)) for a in args)
    )
    assert code == 2
    assert err.startswith("tracekit: error: ") and message in err
    assert len(err.strip().splitlines()) == 1


def test_bad_outputs_in_a_real_subprocess_give_no_traceback(logs: Path, tmp_path: Path) -> None:
    """The reviewer's repro: exit 2 and one line, not a traceback and exit 1."""
    blocker = tmp_path / "a-file"
    blocker.write_text("")

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, timeout=120
        )

    junit = cli(
        "check",
        str(logs),
        "--max",
        "drop=9",
        "--grace",
        "0s",
        "--junit",
        str(blocker / "report.xml"),
    )
    port = cli("collect", "--port", "70000", "--out", str(tmp_path / "o.jsonl"))
    assert (junit.returncode, port.returncode) == (2, 2)
    assert junit.stderr.startswith(f"tracekit: error: cannot write --junit {blocker}/report.xml")
    assert port.stderr == "tracekit: error: --port 70000: use a port from 1 to 65535\n"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["analyze"], "Missing argument 'paths'. (see 'tracekit analyze --help')"),
        (["analyze", "x", "--format", "pdf"], "Invalid value for '--format' / '-f': "),
        (["demo", "--users", "1"], "Invalid value for '--users': "),
        (["check", "x", "--nope"], "No such option: --nope"),
        (["frobnicate"], "No such command 'frobnicate'."),
    ],
)
def test_usage_errors_are_one_line_too(args: list[str], message: str) -> None:
    """Errors found while parsing the command line: exit 2 and one line, like our own."""
    code, out, err = run(*args)
    assert code == 2 and out == ""
    assert err.startswith("tracekit: error: ") and message in err
    assert len(err.strip().splitlines()) == 1 and "Usage:" not in err


def test_no_arguments_still_shows_the_help() -> None:
    code, out, err = run()
    assert code == 2 and "Usage: tracekit" in out + err and "analyze" in out + err


def test_bad_pipeline_file_exits_2(logs: Path, tmp_path: Path) -> None:
    bad = tmp_path / "p.toml"
    bad.write_text('[[hops]]\nid = "nodot"\n')
    code, _, err = run("analyze", str(logs), "--pipeline", str(bad))
    assert code == 2 and "invalid pipeline model" in err


@pytest.mark.parametrize(("grace", "decided"), [(None, "drop=1"), ("5s", "in_flight=1")])
def test_a_models_grace_applies_unless_grace_is_given(
    logs: Path, tmp_path: Path, grace: str | None, decided: str
) -> None:
    # The logs end right after T_LOST's lost CTRL.add: in flight within a 5 s grace. A model
    # with `grace_ms = 0` decides it (review 16e: the option's default, 5 s, replaced every
    # model's grace); `--grace` still wins over the model.
    from importlib import resources

    text = resources.files("tracekit.analyzers").joinpath("default_pipeline.toml").read_text()
    model = tmp_path / "final.toml"
    model.write_text(text.replace("grace_ms = 5000", "grace_ms = 0"))
    extra = [] if grace is None else ["--grace", grace]
    code, out, _ = run("analyze", str(logs), "--pipeline", str(model), *extra)
    assert code == 0 and decided in out
    code, out, _ = run("check", str(logs), "--pipeline", str(model), "--max", "drop=0", *extra)
    assert code == (1 if grace is None else 0)
    assert ("in_flight finding" in out) == (grace is not None)


@pytest.mark.parametrize("grace", ["0s", "5s"])
def test_check_says_apart_a_message_begun_before_the_logs(tmp_path: Path, grace: str) -> None:
    # The sample chat without its first two lines (msg-1001's send and request): in flight
    # at its send, which `--grace 0s` does not decide (review 16f: the note said it would)
    logs = tmp_path / "early"
    shutil.copytree(ROOT / "sample_logs" / "jsonl", logs)
    client = logs / "client-u1.jsonl"
    client.write_text("".join(client.read_text().splitlines(keepends=True)[2:]))
    code, out, _ = run("check", str(logs), "--max", "duplicate=0", "--grace", grace)
    assert code == 0
    early = (
        "note: 1 in_flight finding for a message begun before the logs (its CTRL.send not "
        "logged, its first event at their start), not counted as unexpected: gate it with "
        "--max in_flight=0"
    )
    assert early in out.splitlines()
    assert ("decide it with --grace 0s" in out) == (grace == "5s")


def test_real_subprocess_exit_codes_and_no_traceback(logs: Path) -> None:
    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, timeout=120
        )

    ok = cli("check", str(logs), "--max", "duplicate=0", "--grace", "0s")
    failed = cli("check", str(logs), "--max", "drop=0", "--grace", "0s")
    bad = cli("analyze", str(logs / "absent.jsonl"))
    assert (ok.returncode, failed.returncode, bad.returncode) == (0, 1, 2)
    assert (
        bad.stderr.strip() == f"tracekit: error: no such file or directory: {logs / 'absent.jsonl'}"
    )
    assert "Traceback" not in bad.stderr + failed.stderr


def test_table_and_markdown_say_the_recipients_came_from_membership(logs: Path) -> None:
    # A broadcast without its recipients list: who should get the message is the
    # conversation's members the logs show, and the human reports say so (the JSON counts it).
    chat = logs / "chat.jsonl"
    lines = [json.loads(line) for line in chat.read_text().splitlines()]
    for line in lines:
        if line.get("stage") == "WS-BROADCAST" and line.get("action") == "start":
            line.pop("recipients", None)
    chat.write_text("".join(json.dumps(line) + "\n" for line in lines))
    note = (
        "Expected recipients of every message taken from conversation membership: no "
        "broadcast in the logs listed them."
    )
    code, out, _ = run("analyze", str(logs), "--grace", "0s")
    assert code == 0 and note in " ".join(out.split())  # the panel may wrap it
    code, out, _ = run("analyze", str(logs), "--grace", "0s", "-f", "markdown")
    assert code == 0 and f"\n\n{note}\n\n" in out
    # every broadcast naming its recipients: nothing to say
    code, out, _ = run("analyze", str(write_logs(logs.parent / "named")), "--grace", "0s")
    assert code == 0 and "conversation membership" not in out


def test_report_writes_one_self_contained_html(
    logs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "report.html"
    code, _, err = run("report", str(logs), "-o", str(target), "--grace", "0s")
    assert code == 0 and f"wrote {target}" in err
    page = target.read_text()
    for section in ("summary", "funnel", "latency", "findings", "timelines", "clock", "inputs"):
        assert f'id="{section}"' in page
    assert T_LOST in page and "http://" not in page and "https://" not in page
    # the same through analyze --format html
    code, out, _ = run("analyze", str(logs), "-f", "html", "--grace", "0s")
    assert code == 0 and out.startswith("<!DOCTYPE html>")
    # "-o -" is stdout, not a file named "-" (review 19a)
    monkeypatch.chdir(tmp_path)
    code, out, err = run("report", str(logs), "-o", "-", "--grace", "0s")
    assert code == 0 and out.startswith("<!DOCTYPE html>") and "wrote" not in err
    code, out, _ = run("analyze", str(logs), "-o", "-", "--grace", "0s")  # the table too
    assert code == 0 and "drop=" in out
    assert not (tmp_path / "-").exists()
    # --junit - would mix the XML with the gate lines on stdout (review 19c)
    code, _, err = run("check", str(logs), "--max", "drop=9", "--junit", "-")
    assert (code, err) == (
        2,
        "tracekit: error: --junit -: give a file (stdout holds the command's own lines)\n",
    )


def test_demo_race_bug_finds_exactly_what_the_scenario_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # a relative --out that reads like an option and holds an emoji code and a space: the
    # demo's lines show it as written, and its last line is a command that runs as printed
    monkeypatch.chdir(tmp_path)
    out = Path("-demo :bug:")
    code, stdout, stderr = run(
        "demo", "--scenario", "race-bug", "--users", "3", "--messages", "10", "--out", str(out)
    )
    assert code == 0, stderr
    assert (
        "logs in -demo :bug:/" in stderr and "Ground truth: -demo :bug:/ground_truth.json" in stderr
    )
    truth = json.loads((out / "ground_truth.json").read_text())
    lost = {(e["trace_id"], e["recipient"]) for e in truth["lost"]}
    assert lost, "the race-bug scenario must lose messages"
    assert f"tracekit reported exactly the {len(truth['expected_findings'])} expected" in stderr
    # the command the demo prints last reads its logs again to the same findings
    again = stderr.strip().splitlines()[-1]
    assert again.startswith("Analyze these logs again: tracekit analyze ")
    args = shlex.split(again.removeprefix("Analyze these logs again: tracekit "))
    assert args[-2] == "--grace" and len(args) == 1 + 4 + 2  # the server's log and 3 clients'
    assert all(a.startswith("./-demo :bug:/") for a in args[1:5]), args
    report = json.loads(run(*args, "-f", "json")[1])
    drops = {(f["trace_id"], f["recipient"]) for f in report["findings"] if f["kind"] == "drop"}
    assert drops == lost
    assert {f["stage"] for f in report["findings"] if f["kind"] == "drop"} == {"CTRL.add"}
    races = {(f["trace_id"], f["recipient"]) for f in report["findings"] if f["kind"] == "race"}
    assert lost <= races  # every lost message arrived during a history fetch
    assert "Delivery funnel" in stdout


def test_include_and_exclude_globs(logs: Path) -> None:
    (logs / "notes.txt").write_text("not a log at all\n")

    def inputs(*args: str) -> dict[str, int]:
        return json.loads(run("analyze", str(logs), "-f", "json", *args)[1])["inputs"]  # type: ignore[no-any-return]

    assert inputs()["files"] == 2
    assert inputs("--exclude", "*.txt")["files"] == 1
    assert inputs("--include", "*.jsonl")["files"] == 1


def test_cache_dir_second_run_reads_the_cache_and_reports_the_same(
    logs: Path, tmp_path: Path
) -> None:
    cache = tmp_path / "cache"

    def report(*extra: str, env: dict[str, str] | None = None) -> dict[str, Any]:
        code, out, _ = run("analyze", str(logs), "-f", "json", "--grace", "0s", *extra, env=env)
        assert code == 0
        return json.loads(out)  # type: ignore[no-any-return]

    first = report("--cache-dir", str(cache))
    assert first["inputs"]["cached"] is False
    assert sorted(p.suffix for p in cache.iterdir()) == [".json", ".parquet"]
    # what the analysis reads, no more: event, span_id and level are never kept
    (entry,) = cache.glob("*.parquet")
    assert tuple(pl.read_parquet_schema(entry)) == INPUT_COLUMNS
    second = report("--cache-dir", str(cache))
    assert second["inputs"]["cached"] is True
    assert second["findings"] == first["findings"] and second["summary"] == first["summary"]
    # the environment variable does the same; the table says where the events came from
    assert report(env={"TRACEKIT_CACHE_DIR": str(cache)})["inputs"]["cached"] is True
    code, out, _ = run("analyze", str(logs), "--grace", "0s", "--cache-dir", str(cache))
    assert code == 0 and "(read from the cache)" in out
    # a log that changed is read again, and its new events are analysed
    with (logs / "chat.jsonl").open("a") as fh:
        fh.write("not json\n")
    changed = report("--cache-dir", str(cache))
    assert changed["inputs"]["cached"] is False
    assert changed["inputs"]["malformed"] == 1


def test_without_cache_dir_nothing_is_cached(logs: Path, tmp_path: Path) -> None:
    report = json.loads(run("analyze", str(logs), "-f", "json", "--grace", "0s")[1])
    assert report["inputs"]["cached"] is False
    assert not any(tmp_path.glob("**/*.parquet"))


def test_naive_times_take_the_timezone_in_every_command(logs: Path, tmp_path: Path) -> None:
    from datetime import datetime, timedelta

    path = logs / "chat.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    for row in rows:  # local times without a zone, as many apps write them
        row["timestamp"] = row["timestamp"].removesuffix("Z")
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    first = min(datetime.fromisoformat(row["timestamp"]) for row in rows)
    # Paris is UTC+1 or +2: in UTC these events come 1-2 hours before their digits say.
    until = (first - timedelta(minutes=30)).isoformat() + "Z"
    gate = ["check", str(logs), "--max", "drop=0", "--grace", "0s", "--until", until]
    # read as UTC, every event is after --until: nothing to gate, which is not a pass
    assert run(*gate)[0] == 2
    assert run(*gate, "--timezone", "Europe/Paris")[0] == 1  # in Paris time the drop is in range

    def warnings(*extra: str) -> list[str]:
        out = run("analyze", str(logs), "-f", "json", "--grace", "0s", *extra)[1]
        return json.loads(out)["inputs"]["warnings"]  # type: ignore[no-any-return]

    assert any("no time zone" in w for w in warnings())
    assert not any("no time zone" in w for w in warnings("--timezone", "Europe/Paris"))
    html = tmp_path / "report.html"
    args = ["report", str(logs), "-o", str(html), "--until", until]
    assert run(*args, "--timezone", "Europe/Paris")[0] == 0 and T_LOST in html.read_text()
    assert run(*args)[0] == 0 and T_LOST not in html.read_text()


def test_watch_refuses_an_unknown_timezone_at_once(logs: Path) -> None:
    code, _, err = run("watch", str(logs), "--timezone", "Mars/Base", "--duration", "5s")
    assert code == 2
    assert "unknown timezone 'Mars/Base'" in err


def test_a_crash_is_exit_3_not_a_failed_gate(tmp_path: Path) -> None:
    # Exit 1 means "a gate failed": a bug in tracekit must not read as a finding in CI.
    log = tmp_path / "one.jsonl"
    log.write_text(
        '{"timestamp":"2026-01-01T00:00:00Z","stage":"CTRL","action":"send","event":"x",'
        f'"trace_id":"{1:032x}","actor":"u1","source":"c","seq":1}}\n'
    )
    script = (
        "import sys, tracekit.analyzers as a\n"
        "def boom(*args, **kw): raise RuntimeError('boom')\n"
        "a.analyze = boom\n"
        "import tracekit.analyzers._report as r; r.analyze = boom\n"
        f"sys.argv = ['tracekit', 'check', {str(log)!r}, '--max', 'drop=0']\n"
        "from tracekit.cli import main; main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3, done.stderr
    assert "Traceback" in done.stderr
    assert (
        done.stderr.strip()
        .splitlines()[-1]
        .startswith("tracekit: internal error: RuntimeError: boom (a bug in tracekit")
    )


def test_a_restarted_process_is_said(tmp_path: Path) -> None:
    # the chat process logs one message, restarts (its seq from 0 again) appending to the same
    # file under the same source name, and loses the second message's CTRL.add for u2
    from chatflow import send_message

    logs = tmp_path / "logs"
    logs.mkdir()
    for trace, msg, stop in (("a" * 32, "m1", None), (T_LOST, "m2", {"u2": "CTRL.add"})):
        inst = tracekit.Instrumentation(service="chat", source="chat-1", sink=logs / "chat.jsonl")
        with inst.activate():
            send_message(trace, msg_id=msg, recipients=["u2"], stop_before=stop)
        inst.close()
    lines = (logs / "chat.jsonl").read_text().splitlines()
    first_of_run_2 = 1 + next(i for i, line in enumerate(lines) if T_LOST in line)
    code, out, _ = run("analyze", str(logs), "--grace", "0s", "-f", "json")
    report = json.loads(out)
    jsonschema.validate(report, json.loads((ROOT / "docs" / "report.schema.json").read_text()))
    assert report["summary"]["restarts"] == [
        {
            "source": "chat-1",
            "file": str(logs / "chat.jsonl"),
            "line": first_of_run_2,
            "mended": True,
        }
    ]
    assert [(f["kind"], f["trace_id"], f["source"]) for f in report["findings"]] == [
        ("drop", T_LOST, "chat-1")
    ]
    code, out, _ = run("check", str(logs), "--max", "drop=0", "--grace", "0s")
    assert code == 1
    assert (
        f"note: chat-1's seq started over at {logs / 'chat.jsonl'}:{first_of_run_2}: read as a "
        "process restarted under the same source name, its runs compared in the order they were "
        "logged."
    ) in out
    code, out, _ = run("analyze", str(logs), "--grace", "0s")
    assert "chat-1's seq started over" in out
    code, _, _ = run("report", str(logs), "--grace", "0s", "-o", str(tmp_path / "r.html"))
    assert code == 0
    assert "chat-1&#x27;s seq started over at" in (tmp_path / "r.html").read_text()
