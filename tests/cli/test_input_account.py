"""The table and Markdown output say what the reading skipped or guessed: the input warnings
and the first malformed lines, as the JSON report does (review B, D3; DESIGN.md section 8)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracekit.cli._app import app
from tracekit.cli._render import render_markdown

runner = CliRunner()
T = "3f2b8c1e5d4a4e8f9a7b1c2d3e4f5a6b"


def _inputs(logs: Path) -> Path:
    logs.mkdir()
    (logs / "bin.jsonl").write_bytes(b"\x01\xff\xfe garbage\n\x89PNG\r\n")
    event = {
        "timestamp": "2026-11-25T10:00:00",
        "stage": "CTRL",
        "action": "send",
        "event": "e",
        "trace_id": T,
        "actor": "u1",
        "source": "c",
        "seq": 1,
    }
    (logs / "naive.jsonl").write_text(json.dumps(event) + "\nnot json\n")
    return logs


WARNINGS = [
    "warning: logs/bin.jsonl: binary data, not a log; skipped (18 bytes, 2 lines)",
    "warning: logs/naive.jsonl: 1 timestamps have no time zone and were read as UTC; pass "
    "timezone=... (e.g. 'Europe/Berlin') if they are local times",
    "malformed: logs/naive.jsonl:2: invalid JSON at character 0",
]


def test_the_table_lists_input_warnings_and_malformed_examples(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _inputs(Path("logs"))
    result = runner.invoke(app, ["analyze", "logs"], env={"COLUMNS": "250"})
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("╰"))
    assert lines[start + 1 : start + 4] == WARNINGS


def test_markdown_has_an_inputs_section(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    _inputs(Path("logs"))
    result = runner.invoke(app, ["analyze", "logs", "-f", "markdown"])
    assert result.exit_code == 0
    out = result.stdout
    section = out[out.index("## Inputs") :].split("\n\n")[1].splitlines()
    assert section == [
        "- 1 events from 2 file(s), 4 line(s), 1 malformed line(s)",
        *(f"- {w}" for w in WARNINGS),
    ]


def test_many_notes_are_cut_with_a_count() -> None:
    report = {
        "summary": {},
        "inputs": {
            "events": 0,
            "files": 9,
            "lines": 9,
            "malformed": 12,
            "warnings": [f"f{i}: empty, no events" for i in range(7)],
            "examples": [f"g:{i}: invalid JSON" for i in range(6)],
        },
    }
    lines = render_markdown(report).split("## Inputs\n\n")[1].splitlines()
    assert lines == [
        "- 0 events from 9 file(s), 9 line(s), 12 malformed line(s)",
        *(f"- warning: f{i}: empty, no events" for i in range(5)),
        "- ... and 2 more warning(s) (use --format json for all)",
        *(f"- malformed: g:{i}: invalid JSON" for i in range(5)),
        "- ... 7 more malformed line(s) not shown",
    ]


def test_events_read_without_a_required_key_or_a_message_are_said() -> None:
    # review 18a: a log with no actor made every delivery on it look missing, and said nothing
    report = {
        "summary": {},
        "inputs": {
            "events": 40,
            "files": 3,
            "lines": 47,
            "malformed": 0,
            "unlinked": 2,
            "unlinked_examples": ["u2.log:9: no message id on the line: WS-RECV.receive"],
            "missing": {"actor": 28, "seq": 40, "source": 1},
        },
    }
    lines = render_markdown(report).split("## Inputs\n\n")[1].splitlines()
    assert lines == [
        "- 40 events from 3 file(s), 47 line(s), 0 malformed line(s)",
        "- warning: 28 event(s) have no actor; whose they are is unknown, and a recipient's "
        "hop among them on no recipient's path",
        "- warning: 1 event(s) have no source; each was given its file's name as its source",
        "- warning: 2 event(s) tied to no message, so on no message's path; first: u2.log:9: "
        "no message id on the line: WS-RECV.receive",
    ]
    # a seq missing from some events only is said: gaps cannot be seen there
    report["inputs"]["missing"] = {"seq": 39}  # type: ignore[index]
    assert "- warning: 39 event(s) have no seq; a gap in their logs cannot be seen" in (
        render_markdown(report)
    )


def test_the_events_a_time_window_leaves_out_are_counted_and_said() -> None:
    # review 18a: "27 events ... no findings" over a window that held none of them
    samples = Path(__file__).resolve().parents[2] / "sample_logs" / "jsonl"
    window = ["--since", "2026-11-25T10:00:02Z", "--grace", "0s"]
    result = runner.invoke(app, ["analyze", str(samples), *window, "-f", "json"])
    assert result.exit_code == 0
    inputs = json.loads(result.stdout)["inputs"]
    assert (inputs["events"], inputs["outside_window"]) == (27, 13)
    assert inputs["warnings"] == [
        "13 of the 27 events read are outside --since/--until; not analyzed"
    ]
    result = runner.invoke(
        app, ["analyze", str(samples), "--since", "2030-01-01T00:00:00Z"], env={"COLUMNS": "200"}
    )
    assert "warning: 27 of the 27 events read are outside --since/--until; not analyzed" in (
        result.stdout.splitlines()
    )


def test_the_evidence_keeps_its_line_numbers_in_a_narrow_table() -> None:
    # review 18a: a path is one word; cut to the column, "client-u1.jsonl:…" lost the line
    import io

    from rich.console import Console

    from tracekit.cli._render import render_table

    long = "logs/2026-11-25/run-4711/chat-app/devices/client-u1.jsonl"
    finding = {
        "kind": "drop",
        "trace_id": T,
        "recipient": "u1",
        "stage": "CTRL.add",
        "last_seen": "REPO.add",
        "detail": "recipient u1: reached REPO.add, never reached CTRL.add",
        "evidence": [{"file": long, "line": 4321}, {"file": long, "line": 4322}],
    }
    out = io.StringIO()
    render_table({"findings": [finding]}, Console(file=out, width=80, emoji=False))
    text = out.getvalue()
    rows = [line for line in text[text.index("Findings") :].splitlines() if line.startswith("│")]
    cells = [row.split("│")[-2].strip() for row in rows]
    assert "…" not in text
    assert "".join(cells) == f"{long}:4321{long}:4322"


def test_a_clock_bounded_on_one_side_only_is_said_not_left_out() -> None:
    # review 18a: the line left out every source at 0.0 ms, one whose pairs bound its clock
    # on one side only (no estimate) among them, under a table titled clock-corrected
    import io

    from rich.console import Console

    from tracekit.cli._render import render_table

    clock = [
        {"source": "srv", "offset_ms": 0.0, "uncertainty_ms": 0.0, "reference": True},
        {"source": "c1", "offset_ms": -3.0, "uncertainty_ms": 6.0, "reference": False},
        {"source": "c2", "offset_ms": 0.0, "uncertainty_ms": None, "reference": False},
        {"source": "c3", "offset_ms": 0.0, "uncertainty_ms": 1.0, "reference": False},
        # (a one-sided bound that forces an offset: the offset applied, said)
        {"source": "c4", "offset_ms": -295.0, "uncertainty_ms": None, "reference": False},
    ]
    out = io.StringIO()
    render_table({"clock": clock}, Console(file=out, width=200, emoji=False))
    assert out.getvalue().splitlines()[-1] == (
        "clock offsets: c1 -3.0 ms (±6.0), c4 -295.0 ms (bounded on one side only); not "
        "measured (no pair bounds them on both sides): c2"
    )
    # many receive-only clients: named, a few, the rest counted
    many = clock + [
        {"source": f"r{i}", "offset_ms": 0.0, "uncertainty_ms": None, "samples": 0}
        for i in range(6)
    ]
    out = io.StringIO()
    render_table({"clock": many}, Console(file=out, width=200, emoji=False))
    assert (
        out.getvalue()
        .splitlines()[-1]
        .endswith("not measured (no pair bounds them on both sides): c2, r0, r1, r2, r3 and 2 more")
    )
