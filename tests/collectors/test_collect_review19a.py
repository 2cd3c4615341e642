"""Review 19a (bad and awkward input, as a user): what the reading cannot reach is said."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

SAMPLES = Path(__file__).parents[2] / "sample_logs" / "jsonl"


def _tracekit(*args: str, **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tracekit", *args], capture_output=True, text=True, **kw
    )


def test_a_closed_stdin_is_unreadable_input() -> None:
    done = _tracekit("analyze", "-", stdin=None, preexec_fn=lambda: os.close(0))
    assert (done.returncode, done.stderr) == (
        2,
        "tracekit: error: <stdin>: cannot read: standard input is closed\n",
    )


@pytest.mark.skipif(
    os.geteuid() == 0 and shutil.which("capsh") is None, reason="root reads any directory"
)
def test_a_directory_that_cannot_be_listed_stops_the_reading(tmp_path: Path) -> None:
    # u2's client logs in a directory nobody may list: skipped unsaid, every delivery to u2
    # read as a drop (exit 1); a file that cannot be read stops the reading (exit 2): so does it
    logs = tmp_path / "logs"
    shutil.copytree(SAMPLES, logs, ignore=shutil.ignore_patterns("README*"))
    hidden = logs / "clients"
    hidden.mkdir()
    for log in logs.glob("client-u2*"):
        log.rename(hidden / log.name)
    hidden.chmod(0)
    command = [sys.executable, "-m", "tracekit", "check", str(logs), "--max", "drop=0"]
    if os.geteuid() == 0:  # (root lists it anyway: without the capabilities that let it)
        command = [
            "capsh",
            "--drop=cap_dac_override,cap_dac_read_search",
            "--",
            "-c",
            " ".join(f"'{c}'" for c in command),
        ]
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    finally:
        hidden.chmod(0o755)
    assert (done.returncode, done.stderr) == (
        2,
        f"tracekit: error: {hidden}: cannot read: Permission denied\n",
    )


def test_a_negative_seq_is_left_empty_and_said(tmp_path: Path) -> None:
    from tracekit.collectors import collect

    log = tmp_path / "client-u2.jsonl"
    log.write_text(
        "".join(
            f'{{"timestamp": "2026-01-01T00:00:0{i}Z", "stage": "CTRL", "action": "add", '
            f'"trace_id": "{i + 1:032x}", "actor": "u2", "source": "c", "seq": {seq}}}\n'
            for i, seq in enumerate([1, -2, 3])
        )
    )
    got = collect([log])
    assert got.events.collect().get_column("seq").to_list() == [1, None, 3]
    assert got.inputs.warnings == [f"{log}: 1 events have a negative seq; it was left empty"]
