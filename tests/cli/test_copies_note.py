"""The sentence the reports print for events read twice (``summary.copies``), and the CLI
end to end on a log and its copy."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from cli_logs import T_LOST, write_logs
from typer.testing import CliRunner

from tracekit.cli._app import app
from tracekit.cli._copies import copies_note

runner = CliRunner()


def test_each_source_read_twice_is_named_with_its_first_copy() -> None:
    summary = {
        "copies": [
            {"source": "chat-1", "events": 9, "file": "b/chat.jsonl", "line": 1,
             "kept_file": "a/chat.jsonl", "kept_line": 1},
            {"source": "client-u2", "events": 3, "file": "u2.jsonl", "line": 41,
             "kept_file": "u2.jsonl", "kept_line": 40},
        ]
    }  # fmt: skip
    assert copies_note(summary) == (
        "12 event(s) were read twice, each counted once by the analysis (the same source, "
        "seq, time, stage, action and names: copies of a log, or exports that overlap; the "
        "input counts count every reading): chat-1: 9, the first at b/chat.jsonl:1 (a copy of "
        "a/chat.jsonl:1); client-u2: 3, the first at u2.jsonl:41 (a copy of u2.jsonl:40)."
    )


def test_past_three_sources_the_rest_are_counted() -> None:
    entry = {"events": 1, "file": "f", "line": 2, "kept_file": "f", "kept_line": 1}
    summary = {"copies": [{"source": f"s{i}", **entry} for i in range(5)]}
    note = copies_note(summary)
    assert note is not None
    assert note.startswith("5 event(s) were read twice")
    assert "s2: 1" in note and "s3" not in note
    assert note.endswith("; and 2 more source(s).")


def test_nothing_to_say_without_copies_or_with_a_report_that_holds_none() -> None:
    for summary in ({}, {"copies": []}, {"copies": "x"}, {"copies": [1, {}, {"events": 3}]}):
        assert copies_note(summary) is None


def test_a_log_and_its_copy_read_as_one(tmp_path: Path) -> None:
    logs = write_logs(tmp_path / "logs")
    shutil.copytree(logs, logs / "backup")
    result = runner.invoke(app, ["analyze", str(logs), "--grace", "0s", "-f", "json"])
    report = json.loads(result.stdout)
    # the seed-bug drop and nothing else: no duplicate of any hop read twice
    assert [(f["kind"], f["trace_id"]) for f in report["findings"]] == [("drop", T_LOST)]
    (copies,) = report["summary"]["copies"]
    assert copies["source"] == "chat-1"
    assert copies["file"] == str(logs / "backup" / "chat.jsonl")
    assert (copies["kept_file"], copies["line"], copies["kept_line"]) == (
        str(logs / "chat.jsonl"), 1, 1,
    )  # fmt: skip
    for fmt in ("table", "markdown"):
        out = runner.invoke(
            app, ["analyze", str(logs), "--grace", "0s", "-f", fmt], env={"COLUMNS": "400"}
        ).stdout
        assert f"{copies['events']} event(s) were read twice, each counted once by" in out
    page = tmp_path / "report.html"
    runner.invoke(app, ["report", str(logs), "--grace", "0s", "-o", str(page)])
    assert f"{copies['events']} event(s) were read twice, each counted once by" in page.read_text()
    check = runner.invoke(app, ["check", str(logs), "--grace", "0s", "--max", "duplicate=0"])
    assert check.exit_code == 0
    said = check.stdout + check.stderr
    assert f"note: {copies['events']} event(s) were read twice, each counted once by" in said
