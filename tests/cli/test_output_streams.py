"""stdout that is closed or whose reader went away, and demo's output formats (review B:
D12, D13)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from tracekit.cli._app import app

SAMPLES = Path(__file__).resolve().parents[2] / "sample_logs"


def _with_broken_stdout(*args: str) -> subprocess.CompletedProcess[str]:
    """Run tracekit with a stdout pipe whose reader is already gone (as after `| head -1`)."""
    read, write = os.pipe()
    os.close(read)
    try:
        return subprocess.run(
            [sys.executable, "-m", "tracekit", *args],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            timeout=120,
        )
    finally:
        os.close(write)


@pytest.mark.parametrize("fmt", ["table", "json", "markdown"])
def test_a_reader_that_went_away_is_a_quiet_exit_0(fmt: str) -> None:
    done = _with_broken_stdout("analyze", str(SAMPLES / "jsonl"), "-f", fmt)
    assert (done.returncode, done.stderr) == (0, "")


@pytest.mark.parametrize(("gate", "code"), [("drop=0", 1), ("drop=5", 0)])
def test_check_with_a_broken_stdout_still_exits_with_its_gates(gate: str, code: int) -> None:
    done = _with_broken_stdout("check", str(SAMPLES / "jsonl"), "--max", gate, "--grace", "0s")
    assert (done.returncode, done.stderr) == (code, "")


@pytest.mark.parametrize(
    "args",
    [
        ("analyze", "-f", "json"),
        ("analyze", "-f", "table"),
        ("trace", "3f2b8c1e5d4a4e8f9a7b1c2d3e4f5a6b"),
    ],
    ids=["json", "table", "trace"],
)
def test_a_closed_stdout_is_exit_2_with_one_line(args: tuple[str, ...]) -> None:
    # the table and trace printed to a closed stdout and exited 0: the report was lost
    command, *rest = args
    if command == "trace":
        argv = ["trace", rest[0], str(SAMPLES / "jsonl")]
    else:
        argv = ["analyze", str(SAMPLES / "jsonl"), *rest]
    done = subprocess.run(
        [sys.executable, "-m", "tracekit", *argv],
        stdout=None,
        stderr=subprocess.PIPE,
        text=True,
        timeout=120,
        preexec_fn=lambda: os.close(1),
    )
    assert (done.returncode, done.stderr) == (
        2,
        "tracekit: error: cannot write the output: stdout is closed (give -o FILE)\n",
    )


def test_a_broken_pipe_that_is_not_stdouts_is_a_crash_not_a_quiet_exit(tmp_path: Path) -> None:
    # a socket of the demo's own chat system failing with EPIPE was taken for `| head`: exit 0,
    # nothing said, stdout sent to /dev/null
    script = (
        "import sys, tracekit.chat.demo as demo\n"
        "def boom(**kw):\n"
        "    raise BrokenPipeError(32, 'Broken pipe')\n"
        "demo.run_demo = boom\n"
        "from tracekit.cli import main\n"
        f"sys.argv = ['tracekit', 'demo', '--out', {str(tmp_path / 'out')!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 3
    assert done.stderr.splitlines()[-1].startswith(
        "tracekit: internal error: RuntimeError: broken pipe, not stdout's"
    )


@pytest.mark.parametrize(("fmt", "start"), [("markdown", "# tracekit report\n"), ("html", "<!")])
def test_demo_honours_markdown_and_html(tmp_path: Path, fmt: str, start: str) -> None:
    result = CliRunner().invoke(
        app,
        [
            "demo",
            "--scenario",
            "fixed",
            "--users",
            "2",
            "--messages",
            "2",
            "-f",
            fmt,
            "--out",
            str(tmp_path / "demo"),
        ],
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(start)
    assert "╭" not in result.stdout  # not the terminal table
