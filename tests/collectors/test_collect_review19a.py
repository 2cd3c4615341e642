"""Review 19a (bad and awkward input, as a user): what the reading cannot reach is said."""

from __future__ import annotations

import os
import shlex
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
def test_a_directory_that_cannot_be_listed_is_said(tmp_path: Path) -> None:
    # u2's client logs in a directory nobody may list: skipped unsaid, every delivery to u2
    # read as a drop (review 19a); stopping the reading stopped it for a lost+found beside
    # the logs too (review 19c): said, and not where the exclude globs leave it out
    logs = tmp_path / "logs"
    shutil.copytree(SAMPLES, logs, ignore=shutil.ignore_patterns("README*"))
    hidden = logs / "clients"
    hidden.mkdir()
    for log in logs.glob("client-u2*"):
        log.rename(hidden / log.name)
    hidden.chmod(0)
    said = f"warning: {hidden}: cannot read the directory: Permission denied; its files, if any,"

    def check(*extra: str, command: list[str] | None = None) -> subprocess.CompletedProcess[str]:
        command = command or [sys.executable, "-m", "tracekit", "check", str(logs), "--grace"]
        command += ["0s", "--max", "drop=0", *extra] if command[-1] == "--grace" else []
        if os.geteuid() == 0:  # (root lists it anyway: without the capabilities that let it)
            drop = "--drop=cap_dac_override,cap_dac_read_search"
            command = ["capsh", drop, "--", "-c", shlex.join(command)]
        return subprocess.run(command, capture_output=True, text=True)

    try:
        done, excluded = check(), check("--exclude", "clients/*")
        logs.chmod(0)  # the directory named, itself: as a named file, fatal (review 19d)
        named = check()
        read = f"from tracekit.collectors import collect\ntry: collect([{str(logs)!r}])\n"
        read += "except Exception as e: print(type(e).__name__, e)"
        library = check(command=[sys.executable, "-c", read])
    finally:
        logs.chmod(0o755)
        hidden.chmod(0o755)
    assert done.returncode == 1 and said in done.stdout + done.stderr
    assert excluded.returncode == 1 and "cannot read the directory" not in excluded.stdout
    assert named.returncode == 2 and f"'{logs}' is not readable" in named.stderr
    assert library.stdout == f"InputError {logs}: cannot read: Permission denied\n"


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


def test_names_that_are_no_names_are_said(tmp_path: Path) -> None:
    from tracekit.collectors import collect

    log = tmp_path / "client-u2.jsonl"
    values = [
        '"stage": ["CTRL"], "action": "add"',  # a list: no stage (a name no line has)
        '"stage": "CTRL", "action": {"a": 1}',
        '"stage": "[CTRL]", "action": "add"',  # DESIGN.md's notation: the stage CTRL
        '"stage": "CTRL", "action": "add", "actor": {"id": "u2"}',  # an object: no name
        '"stage": "WS-BROADCAST", "action": "deliver", "peer": ["u2"]',
        '"stage": "CTRL", "action": "add", "actor": "[bot]"',  # a name in brackets stays
        '"stage": "HTTP", "action": 404, "msg_id": "[42]"',  # numbers stay names (19c)
        '"stage": [], "action": "add"',  # no quote in it, no name either (19d)
        '"stage": "CTRL", "action": "add", "actor": [1, 2]',
        '"stage": "[b]CTRL[/b]", "action": "add"',  # only a word in brackets is a tag
    ]
    log.write_text(
        "".join(
            f'{{"timestamp": "2026-01-01T00:00:0{i}Z", {v}, "trace_id": "{i + 1:032x}", '
            f'"source": "c", "seq": {i + 1}' + (', "actor": "u2"}\n' if "actor" not in v else "}\n")
            for i, v in enumerate(values)
        )
    )
    got = collect([log])
    rows = got.events.collect().select("line", "stage", "action", "actor", "peer", "msg_id")
    assert rows.rows() == [
        (3, "CTRL", "add", "u2", None, None),
        (4, "CTRL", "add", None, None, None),
        (5, "WS-BROADCAST", "deliver", "u2", None, None),
        (6, "CTRL", "add", "[bot]", None, None),
        (7, "HTTP", "404", "u2", None, "[42]"),
        (9, "CTRL", "add", None, None, None),
        (10, "[b]CTRL[/b]", "add", "u2", None, None),
    ]
    assert got.inputs.malformed == 3
    assert got.inputs.examples == [
        f"{log}:1: 'stage' and 'action' must be strings",
        f"{log}:2: 'stage' and 'action' must be strings",
        f"{log}:8: 'stage' and 'action' must be strings",
    ]
    assert got.inputs.warnings == [
        f"{log}: 2 events have a list or an object as their actor; it was left empty",
        f"{log}: 1 events have a list or an object as their peer; it was left empty",
    ]


def test_a_logfmt_number_is_a_name(tmp_path: Path) -> None:
    from tracekit.collectors import collect

    log = tmp_path / "web.log"
    log.write_text(
        "timestamp=2026-01-01T00:00:01Z stage=HTTP action=404 source=w seq=1\n"
        "timestamp=2026-01-01T00:00:02Z stage=HTTP action=200 source=w seq=2 recipients=\n"
        "timestamp=2026-01-01T00:00:03Z stage=HTTP action=201 source=w seq=3 recipients=null\n"
    )
    got = collect([log])  # (review 19c: malformed, and a false log_gap where they were)
    table = got.events.collect()
    assert table.get_column("action").to_list() == ["404", "200", "201"]
    assert table.get_column("recipients").to_list() == [None, None, None]  # (19d: [""])
    # an empty recipients= lists none: no warning (19c)
    assert (got.inputs.malformed, got.inputs.warnings) == (0, [])


def test_recipients_that_name_nobody_are_left_empty_and_said(tmp_path: Path) -> None:
    from tracekit.collectors import collect

    log = tmp_path / "server.jsonl"
    values = ["true", '{"u1": 1}', "[1, null]", '["u1", ""]', '"u2, u3"', "[5]", '["u1", "u2"]']
    log.write_text(
        "".join(
            f'{{"timestamp": "2026-01-01T00:00:0{i}Z", "stage": "WS-BROADCAST", '
            f'"action": "start", "trace_id": "{i + 1:032x}", "actor": "server", "source": "s", '
            f'"seq": {i + 1}, "recipients": {v}}}\n'
            for i, v in enumerate(values)
        )
    )
    got = collect([log])
    assert got.events.collect().get_column("recipients").to_list() == [
        None,
        None,
        None,
        None,
        ["u2", "u3"],  # (text formats' comma-separated names)
        ["5"],  # a number is an id
        ["u1", "u2"],
    ]
    assert got.inputs.warnings == [
        f"{log}: 4 events have 'recipients' that are not lists of strings; left empty"
    ]


def test_a_link_loop_is_said_as_one(tmp_path: Path) -> None:
    from tracekit.collectors import collect

    logs = tmp_path / "logs"
    logs.mkdir()
    shutil.copy(SAMPLES / "client-u1.jsonl", logs)
    (logs / "a.jsonl").symlink_to("b.jsonl")
    (logs / "b.jsonl").symlink_to("a.jsonl")
    (logs / "gone.jsonl").symlink_to("nowhere.jsonl")
    # (a loop read as "a link to a missing file", review 19a)
    assert collect([logs]).inputs.warnings == [
        f"{logs / 'a.jsonl'}: a link loop; skipped",
        f"{logs / 'b.jsonl'}: a link loop; skipped",
        f"{logs / 'gone.jsonl'}: a link to a missing file; skipped",
    ]
    done = _tracekit("analyze", str(logs / "a.jsonl"))
    assert (done.returncode, done.stderr) == (
        2,
        f"tracekit: error: {logs / 'a.jsonl'}: a link loop\n",
    )


def test_lines_ending_in_a_bare_cr_are_said(tmp_path: Path) -> None:
    from tracekit.collectors import collect

    log = tmp_path / "client-u1.jsonl"
    log.write_bytes((SAMPLES / "client-u1.jsonl").read_bytes().replace(b"\n", b"\r"))
    got = collect([log])  # one line, malformed: said as what it looks like (review 19a)
    assert got.inputs.malformed == 1
    assert got.inputs.examples[0].endswith(
        "; it holds lines ending in a bare CR (\\r): convert them with tr '\\r' '\\n'"
    )


@pytest.mark.timeout(20)  # (it read /dev/zero "to its end": gigabytes, then killed)
def test_a_device_given_as_a_log_is_refused() -> None:
    from tracekit.collectors import collect
    from tracekit.errors import InputError

    with pytest.raises(InputError, match=r"^/dev/zero: a device, not a log \(give - for"):
        collect(["/dev/zero"])
