"""``tracekit check``: the latency maximum, misspelt hops, config shapes, inputs with no
events (review B: D1, D6, D11)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracekit.cli._app import app
from tracekit.cli._gates import Gate, evaluate, gates_from_config, parse_latency_gate

runner = CliRunner()
SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs" / "jsonl"


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


# -- D1: --max-latency checks the maximum latency ------------------------------------------


def test_max_latency_fails_when_the_slowest_sample_is_over_the_limit() -> None:
    # the sample's end-to-end latencies are 17, 18 and 19 ms
    code, out, err = run("check", str(SAMPLES), "--max-latency", "end_to_end=1ms", "--grace", "0s")
    assert (code, err) == (1, "")
    assert out == (
        "FAIL  max end_to_end <= 1 ms: max end_to_end = 19.0 ms over 3 samples\n0 passed, 1 failed\n"
    )


def test_max_latency_passes_when_the_slowest_sample_is_under_the_limit() -> None:
    code, out, _ = run("check", str(SAMPLES), "--max-latency", "end_to_end=20ms", "--grace", "0s")
    assert code == 0
    assert out.splitlines()[0] == (
        "PASS  max end_to_end <= 20 ms: max end_to_end = 19.0 ms over 3 samples"
    )


@pytest.mark.parametrize("option", ["--max-latency", "--p50", "--p95", "--p99"])
def test_a_latency_gate_on_an_unknown_hop_is_bad_usage(option: str) -> None:
    code, out, err = run("check", str(SAMPLES), option, "CTRL.send->TYPO.x=1ms", "--grace", "0s")
    assert (code, out) == (2, "")
    assert err.startswith(
        f"tracekit: error: {option} CTRL.send->TYPO.x: not a hop of the pipeline (use end_to_end "
        "or one of: CTRL.send->REST.request, "
    )
    assert len(err.splitlines()) == 1


def test_max_latency_in_pyproject(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text('[tool.tracekit.gates]\nmax_latency = {end_to_end = "1ms"}\n')
    code, out, _ = run("check", str(SAMPLES), "--config", str(pyproject), "--grace", "0s")
    assert code == 1
    assert out.splitlines()[0] == (
        "FAIL  max end_to_end <= 1 ms: max end_to_end = 19.0 ms over 3 samples"
    )
    assert gates_from_config(pyproject) == [Gate("max_latency", "end_to_end", 1.0)]


def test_the_max_latency_gate_is_not_the_count_gate() -> None:
    report = {
        "summary": {"messages": 1},
        "findings": [],
        "latency": {"hops": [], "end_to_end": {"count": 3, "max_ms": 19.0}},
    }
    (result,) = evaluate(report, [parse_latency_gate("max_latency", "end_to_end=1ms")])
    assert (result.ok, result.actual, result.gate.name) == (False, 19.0, "max end_to_end <= 1 ms")


# -- D11: a [tool] or [tool.tracekit] that is not a table -------------------------------------


@pytest.mark.parametrize(
    ("text", "name"),
    [
        ("tool = 1\n", "tool"),
        ('[tool]\ntracekit = "x"\n', "tool.tracekit"),
        ("[tool.tracekit]\ngates = 3\n", "tool.tracekit.gates"),
    ],
)
def test_a_config_level_that_is_not_a_table_exits_2_with_one_line(
    tmp_path: Path, text: str, name: str
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(text)
    code, out, err = run("check", str(SAMPLES), "--max", "drop=0", "--config", str(pyproject))
    assert (code, out) == (2, "")
    assert err == f"tracekit: error: {pyproject}: [{name}] must be a table\n"


def test_a_config_that_is_not_utf8_exits_2_with_one_line(tmp_path: Path) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_bytes(b"[tool.tracekit.gates]\n# \xff\n")
    code, out, err = run("check", str(SAMPLES), "--max", "drop=0", "--config", str(pyproject))
    assert (code, out) == (2, "")
    assert err.startswith(f"tracekit: error: cannot read gates from {pyproject}: ")
    assert len(err.splitlines()) == 1


# -- D6: no events at all is unreadable input, not a pass ----------------------------------


def test_check_over_an_empty_directory_exits_2(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    code, out, err = run("check", str(empty), "--max", "drop=0")
    assert (code, out) == (2, "")
    assert err == (
        f"tracekit: error: no events read from {empty} (0 file(s), 0 line(s), 0 malformed): "
        "nothing to check\n"
    )


def test_check_over_a_binary_file_exits_2_and_says_why(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(bytes(range(256)) * 20)
    code, out, err = run("check", str(garbage), "--max", "drop=0", "--max", "duplicate=0")
    assert (code, out) == (2, "")
    assert err.startswith(f"tracekit: error: no events read from {garbage} (1 file(s), ")
    assert err.endswith(
        f"nothing to check; {garbage}: starts with 1 NUL bytes (a hole left by log rotation, "
        f"e.g. copytruncate); skipped them; {garbage}: binary data, not a log; skipped "
        "(5119 bytes, 21 lines)\n"
    )
    assert len(err.splitlines()) == 1


def test_check_over_empty_stdin_exits_2() -> None:
    result = runner.invoke(app, ["check", "-", "--max", "drop=0"], input="")
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr.startswith("tracekit: error: no events read from - (")


def test_check_with_a_time_window_holding_no_event_exits_2() -> None:
    code, out, err = run(
        "check", str(SAMPLES), "--max", "drop=0", "--since", "2099-01-01T00:00:00Z"
    )
    assert (code, out) == (2, "")
    assert err.startswith("tracekit: error: none of the ")
    assert "events read is inside --since/--until: nothing to check" in err


def test_events_without_messages_still_fail_min_delivered_not_exit_2(tmp_path: Path) -> None:
    log = tmp_path / "server.jsonl"
    log.write_text(
        json.dumps(
            {
                "timestamp": "2026-01-01T00:00:00Z",
                "stage": "TRACEKIT",
                "action": "configured",
                "event": "e",
                "source": "srv",
                "seq": 1,
            }
        )
        + "\n"
    )
    code, out, _ = run("check", str(log), "--min-delivered", "99%", "--grace", "0s")
    assert code == 1
    assert out.startswith(
        "FAIL  delivered >= 99%: no deliveries to check: the logs hold no messages"
    )


def test_a_finding_count_over_no_message_fails_rather_than_passing_on_nothing(
    tmp_path: Path,
) -> None:
    # history loads and nothing else: "0 drops" is no evidence of delivery (it passed, exit 0)
    log = tmp_path / "client-u1.jsonl"
    log.write_text(
        "".join(
            json.dumps(
                {
                    "timestamp": f"2026-01-01T00:00:0{i}Z",
                    "stage": "REST",
                    "action": action,
                    "event": f"REST {action}",
                    "conv_id": "c1",
                    "actor": "u1",
                    "source": "client-u1",
                    "seq": i + 1,
                }
            )
            + "\n"
            for i, action in enumerate(("fetch_start", "fetch_end"))
        )
    )
    code, out, _ = run("check", str(log), "--max", "drop=0", "--grace", "0s")
    assert code == 1
    assert out.splitlines()[0] == (
        "FAIL  drop <= 0: no messages to check for drop: the logs hold no message (empty, "
        "unreadable or not tracekit events?)"
    )
    # a count over its limit fails as it always did
    assert (
        evaluate({"summary": {"messages": 0, "drop": 1}}, [Gate("max", "drop", 0)])[0].ok is False
    )
    assert evaluate({"summary": {"messages": 2, "drop": 0}}, [Gate("max", "drop", 0)])[0].ok is True


def test_a_p99_gate_does_not_change_which_deliveries_breach_the_slo(tmp_path: Path) -> None:
    # one delivery of ten takes 745 ms against the pipeline's 500 ms end-to-end SLO: a
    # looser --p99 gate once became the SLO threshold and made `--max slo_breach=0` pass
    hops = [
        ("client-u1", "CTRL", "send"),
        ("client-u1", "REST", "request"),
        ("server", "REST", "persist"),
        ("client-u1", "REST", "response"),
        ("server", "WS-BROADCAST", "start"),
        ("server", "WS-BROADCAST", "deliver"),
        ("client-u2", "WS-RECV", "receive"),
        ("client-u2", "REPO", "add"),
        ("client-u2", "CTRL", "add"),
    ]
    seq: dict[str, int] = {}
    lines: dict[str, list[str]] = {}
    for n in range(10):
        for k, (source, stage, action) in enumerate(hops):
            ms = n * 1000 + 5 * k + (700 if n == 3 and action == "add" and stage == "CTRL" else 0)
            seq[source] = seq.get(source, 0) + 1
            event = {
                "timestamp": f"2026-01-01T00:00:{ms // 1000:02d}.{ms % 1000:03d}Z",
                "stage": stage,
                "action": action,
                "event": f"{stage} {action}",
                "trace_id": f"{n + 1:032x}",
                "conv_id": "c1",
                "actor": "u2" if source == "client-u2" else "u1",
                "source": source,
                "seq": seq[source],
                **({"recipients": ["u2"]} if action == "start" else {}),
                **({"peer": "u2"} if action == "deliver" else {}),
            }
            lines.setdefault(source, []).append(json.dumps(event) + "\n")
    for source, text in lines.items():
        (tmp_path / f"{source}.jsonl").write_text("".join(text))
    for extra in ((), ("--p99", "end_to_end=10s")):
        code, out, _ = run("check", str(tmp_path), "--max", "slo_breach=0", "--grace", "0s", *extra)
        assert code == 1, extra
        assert out.splitlines()[0] == "FAIL  slo_breach <= 0: 1 slo_breach finding(s), allowed 0"


def test_check_says_a_drop_gate_does_not_count_what_log_gaps_hide() -> None:
    # the sample's server log lost events (its seq jumps, as its TRACEKIT.dropped line
    # says): a log_gap, where a drop would be indeterminate; --max drop=0 cannot see those,
    # and check says so
    code, out, _ = run("check", str(SAMPLES), "--max", "drop=0", "--grace", "0s")
    assert code == 1
    assert out.splitlines()[-2:] == [
        "note: 1 log_gap finding: events are missing from the logs (lost by the logging, or "
        "before a log began), and a drop where they are missing is indeterminate, not counted "
        "as a drop: gate them with --max log_gap=0",
        "0 passed, 1 failed",
    ]
    code, out, _ = run("check", str(SAMPLES), "--max", "drop=5", "--max", "log_gap=0")
    assert code == 1 and "note: 1 log_gap" not in out


# -- review 18a: what check says of its input, and gates given twice --------------------------


def test_check_says_what_the_reading_skipped_where_a_gate_passes(tmp_path: Path) -> None:
    # a gate that passes over half a log must say so: a lost line may hold the missing hop
    import gzip

    lines = (SAMPLES / "client-u1.jsonl").read_bytes().splitlines(keepends=True)
    (tmp_path / "client-u1.jsonl").write_bytes(b"".join(lines[:6]) + b"{not json\n")
    (tmp_path / "client-u1b.jsonl.gz").write_bytes(gzip.compress(b"".join(lines[6:]))[:-12])
    for name in ("chat-server-1.jsonl", "client-u2.jsonl"):
        (tmp_path / name).write_bytes((SAMPLES / name).read_bytes())
    code, out, err = run("check", str(tmp_path), "--max", "duplicate=0", "--grace", "0s")
    assert (code, err) == (0, "")
    said = out.splitlines()
    assert said[0] == "PASS  duplicate <= 0: 0 duplicate finding(s), allowed 0"
    assert said[-1] == "1 passed, 0 failed"
    assert f"malformed: {tmp_path / 'client-u1.jsonl'}:7: invalid JSON at character 1" in said
    assert any(
        s.startswith(f"warning: {tmp_path / 'client-u1b.jsonl.gz'}: truncated gzip stream")
        for s in said
    )


@pytest.mark.parametrize(
    ("gates", "said"),
    [
        (["--max", "drop=0", "--max", "drop=5"], "drop <= 0; drop <= 5"),
        (
            ["--p50", "end_to_end=1ms", "--p50", "end_to_end=1s"],
            "p50 end_to_end <= 1 ms; p50 end_to_end <= 1000 ms",
        ),
        (
            ["--min-delivered", "99.9%", "--min-delivered", "50%"],
            "delivered >= 99.9%; delivered >= 50%",
        ),
    ],
)
def test_a_gate_given_twice_is_bad_usage(gates: list[str], said: str) -> None:
    # keeping the last silently dropped the stricter one: which was meant is not known
    code, out, err = run("check", str(SAMPLES), *gates, "--grace", "0s")
    assert (code, out) == (2, "")
    assert err == f"tracekit: error: two gates on one thing ({said}): give each gate once\n"


def test_a_missing_input_is_said_before_missing_gates(tmp_path: Path) -> None:
    code, out, err = run("check", str(tmp_path / "nope.jsonl"))
    assert (code, out) == (2, "")
    assert err == f"tracekit: error: no such file or directory: {tmp_path / 'nope.jsonl'}\n"


def test_check_says_a_drop_gate_does_not_count_paths_lines_without_actor_may_complete(
    tmp_path: Path,
) -> None:
    # review 18c: u2's app wrote its lines without its actor; msg-1001's whole path there may
    # be u2's (undecided), msg-1002's stops at the receive (the seed drop stands)
    for log in SAMPLES.glob("*.jsonl"):
        lines = log.read_text().splitlines()
        if log.name == "client-u2.jsonl":
            lines = [
                json.dumps({k: v for k, v in json.loads(x).items() if k != "actor"}) for x in lines
            ]
        (tmp_path / log.name).write_text("\n".join(lines) + "\n")
    code, out, _ = run("check", str(tmp_path), "--max", "drop=0", "--grace", "0s")
    assert code == 1
    assert (
        "note: 1 path that lines naming no recipient (no actor) may complete is undecided, not "
        "counted as a drop: gate them with --max unexpected=0"
    ) in out.splitlines()
    assert out.splitlines()[0] == "FAIL  drop <= 0: 1 drop finding(s), allowed 0"
    code, out, _ = run("check", str(tmp_path), "--max", "drop=1", "--max", "unexpected=0")
    assert code == 1 and "naming no recipient" not in out


@pytest.mark.parametrize(
    ("table", "said"),
    [
        ("max = {drops = 0}", "max: bad gate 'drops=0': use KIND=N"),
        ('p99 = {"A.b->C.d" = "5ms"}', "p99 A.b->C.d: not a hop of the pipeline (use end_to_end"),
    ],
)
def test_a_bad_gate_in_pyproject_is_said_of_the_file_not_of_an_option(
    tmp_path: Path, table: str, said: str
) -> None:
    pyproject = tmp_path / "pyproject.toml"
    pyproject.write_text(f"[tool.tracekit.gates]\n{table}\n")
    code, out, err = run("check", str(SAMPLES), "--config", str(pyproject))
    assert (code, out) == (2, "")
    assert err.startswith(f"tracekit: error: {pyproject}: [tool.tracekit.gates] {said}")
