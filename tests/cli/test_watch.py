"""`tracekit watch` against logs that a thread appends to (and rotates) while it runs."""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import pytest
from chatflow import send_message
from cli_logs import T_LOST, T_OK
from typer.testing import CliRunner

import tracekit
from tracekit.cli._app import app

T_AFTER = "7" * 32


def _writer(logs: Path, stop: threading.Event) -> None:
    first = tracekit.Instrumentation(service="chat", source="chat-1", sink=logs / "chat.jsonl")
    with first.activate():
        send_message(T_OK, recipients=["u2"])
        send_message(T_LOST, msg_id="m2", recipients=["u2"], stop_before={"u2": "CTRL.add"})
    first.close()
    time.sleep(0.5)
    # rotate, as a log shipper would, and go on in a fresh file (a restarted process)
    (logs / "chat.jsonl").rename(logs / "chat.jsonl.1")
    second = tracekit.Instrumentation(service="chat", source="chat-2", sink=logs / "chat.jsonl")
    n = 0
    while not stop.is_set():  # keep the logs going, past the grace window
        with second.activate():
            send_message(f"{n + 1:032x}", msg_id=f"k{n}", recipients=["u2"])
        second.flush()
        n += 1
        time.sleep(0.1)
    with second.activate():
        send_message(T_AFTER, msg_id="late", recipients=["u2"], stop_before={"u2": "REPO.add"})
    second.close()


def _watch(logs: Path, *args: str, columns: int = 200) -> Any:
    """``tracekit watch LOGS --interval 100ms ARGS`` through typer's runner."""
    command = ["watch", str(logs), "--interval", "100ms", *args]
    return CliRunner().invoke(app, command, env={"COLUMNS": str(columns)})


def test_watch_prints_each_decided_finding_once(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    stop = threading.Event()
    writer = threading.Thread(target=_writer, args=(logs, stop))
    writer.start()
    try:
        timer = threading.Timer(2.5, stop.set)
        timer.start()
        result = _watch(logs, "--grace", "300ms", "--duration", "4s")
    finally:
        stop.set()
        writer.join()
    assert result.exit_code == 0, result.output
    drops = [line for line in result.stdout.splitlines() if line.startswith("drop")]
    # T_LOST decided once, despite many rounds and the rotation; T_AFTER came in the last
    # moment, the logs do not go on past its grace window: still in flight, so not printed.
    assert len(drops) == 1
    assert drops[0].startswith(f"drop {T_LOST} recipient u2 at CTRL.add (last seen REPO.add): ")
    assert T_AFTER not in result.stdout
    assert "messages," in result.stderr and "delivered" in result.stderr


def test_watch_names_a_delivery_still_in_flight_once_the_logs_go_quiet(tmp_path: Path) -> None:
    # The logs stop right after T_LOST's REPO.add: nothing ever goes on past its grace window,
    # so it is never a drop; once no file has changed for that window, it is named, once.
    logs = tmp_path / "logs"
    logs.mkdir()
    inst = tracekit.Instrumentation(service="chat", source="chat-1", sink=logs / "chat.jsonl")
    with inst.activate():
        send_message(T_OK, recipients=["u2"])
        send_message(T_LOST, msg_id="m2", recipients=["u2"], stop_before={"u2": "CTRL.add"})
    inst.close()
    result = CliRunner().invoke(
        app,
        ["watch", str(logs), "--grace", "300ms", "--interval", "100ms", "--duration", "1500ms"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert not [line for line in result.stdout.splitlines() if line.startswith("drop")]
    stuck = [line for line in result.stderr.splitlines() if line.startswith("still in flight")]
    assert len(stuck) == 1
    assert stuck[0].startswith(
        f"still in flight: {T_LOST} recipient u2 at CTRL.add (last seen REPO.add): "
        "no log has changed for "
    )
    assert stuck[0].endswith(" s; undecided until the logs go on")
    assert T_OK not in result.stderr


def test_watch_does_not_call_a_message_sent_before_the_logs_began_in_flight(
    tmp_path: Path,
) -> None:
    # The logs begin with T_EARLY's persist (its send came before them): an in_flight finding
    # at CTRL.send that the logs going on can never decide. It reached u2; nothing is stuck.
    logs = tmp_path / "logs"
    logs.mkdir()
    inst = tracekit.Instrumentation(service="chat", source="chat-1", sink=logs / "chat.jsonl")
    with inst.activate():
        with tracekit.message(T_AFTER, conv_id="c1"), tracekit.message(msg_id="m0"):
            with tracekit.bind(actor="server"):
                tracekit.emit("REST", "persist")
                tracekit.emit("WS-BROADCAST", "start", recipients=["u2"])
                tracekit.emit("WS-BROADCAST", "deliver", peer="u2")
            with tracekit.bind(actor="u1"):
                tracekit.emit("REST", "response")
            with tracekit.bind(actor="u2"):
                for stage, action in (("WS-RECV", "receive"), ("REPO", "add"), ("CTRL", "add")):
                    tracekit.emit(stage, action)
        send_message(T_OK, recipients=["u2"])
    inst.close()
    result = CliRunner().invoke(
        app,
        ["watch", str(logs), "--grace", "300ms", "--interval", "100ms", "--duration", "1s"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert "1 in flight" in result.stderr  # the analysis' own account: undecided at its send
    assert "still in flight" not in result.stderr


def test_watch_reads_again_after_a_round_it_could_not_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A file rotated away between listing and reading fails a round: the next round reads
    # again (the logs may never change after it) and the error is said once, not each round.
    import tracekit.cli._watch as watch_module
    from tracekit.errors import InputError

    logs = tmp_path / "logs"
    logs.mkdir()
    inst = tracekit.Instrumentation(service="chat", source="chat-1", sink=logs / "chat.jsonl")
    with inst.activate():
        send_message(T_LOST, msg_id="m2", recipients=["u2"], stop_before={"u2": "CTRL.add"})
        send_message(T_OK, recipients=["u2"])
    inst.close()
    real, failures = watch_module.collect, [3]

    def flaky(*args: Any, **kwargs: Any) -> Any:
        if failures[0]:
            failures[0] -= 1
            raise InputError("logs/chat.jsonl: no such file (rotated)")
        return real(*args, **kwargs)

    monkeypatch.setattr(watch_module, "collect", flaky)
    result = CliRunner().invoke(
        app,
        ["watch", str(logs), "--grace", "0s", "--interval", "50ms", "--duration", "1s"],
        env={"COLUMNS": "200"},
    )
    assert result.exit_code == 0, result.output
    assert result.stderr.count("skipped a round: ") == 1
    drops = [line for line in result.stdout.splitlines() if line.startswith("drop")]
    assert len(drops) == 1
    assert drops[0].startswith(f"drop {T_LOST} recipient u2 at CTRL.add (last seen REPO.add): ")


def test_watch_stops_reading_files_it_cannot_read_until_they_change(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A read that always fails is tried again a few rounds running, then not until the files
    # change: not every interval for as long as watch runs (each try costs a full read).
    import tracekit.cli._watch as watch_module
    from tracekit.errors import InputError

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "chat.jsonl").write_text("{}\n")
    calls: list[float] = []

    def broken(*args: Any, **kwargs: Any) -> Any:
        calls.append(time.monotonic())
        raise InputError("logs/chat.jsonl: permission denied")

    def touch() -> None:
        time.sleep(0.6)
        (logs / "chat.jsonl").chmod(0o644)  # a chmod changes no size or mtime, only ctime

    monkeypatch.setattr(watch_module, "collect", broken)
    toucher = threading.Thread(target=touch)
    toucher.start()
    result = CliRunner().invoke(
        app,
        ["watch", str(logs), "--interval", "20ms", "--duration", "1.2s"],
        env={"COLUMNS": "200"},
    )
    toucher.join()
    assert result.exit_code == 0, result.output
    # 1 + 3 tries for the files as they were, 1 + 3 once the chmod changed them
    assert len(calls) == 2 * (1 + watch_module._RETRIES)
    assert result.stderr.count("skipped a round: logs/chat.jsonl: permission denied") == 1
    assert result.stderr.count("read 4 times in vain: waiting for the files to change") == 2


@pytest.mark.parametrize(("grace", "said"), [("0s", True), ("1s", False)])
def test_watch_with_no_grace_says_what_it_does_to_live_logs(
    tmp_path: Path, grace: str, said: bool
) -> None:
    # review 16f: a model's grace_ms = 0 now applies to watch too
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "chat.jsonl").write_text("")
    result = CliRunner().invoke(
        app,
        ["watch", str(logs), "--grace", grace, "--interval", "100ms", "--duration", "200ms"],
        env={"COLUMNS": "300"},
    )
    assert result.exit_code == 0, result.output
    note = (
        "note: a zero grace window decides every delivery whose next hop is not logged yet "
        "as a drop; on logs still being written, give --grace (e.g. 2s)"
    )
    assert (note in result.stderr) == said


def test_watch_sees_a_log_under_a_linked_directory_change(tmp_path: Path) -> None:
    from tracekit.cli._watch import _identity

    logs, elsewhere = tmp_path / "logs", tmp_path / "elsewhere"
    logs.mkdir()
    elsewhere.mkdir()
    (logs / "server.jsonl").write_text("{}\n")
    (logs / "clients").symlink_to(elsewhere, target_is_directory=True)
    client = elsewhere / "client-u2.jsonl"
    client.write_text("{}\n")
    before = _identity([logs])
    assert [Path(f[0]).name for f in before] == ["server.jsonl", "client-u2.jsonl"]
    with client.open("a") as fh:  # the reading follows the link: so does the watch (19a)
        fh.write("{}\n")
    assert _identity([logs]) != before


def test_watch_takes_back_a_finding_a_late_log_disproves_and_says_what_it_skipped(
    tmp_path: Path,
) -> None:
    import shutil

    samples = Path(__file__).parents[2] / "sample_logs" / "jsonl"
    logs = tmp_path / "logs"
    logs.mkdir()
    for name in ("chat-server-1.jsonl", "client-u1.jsonl"):
        shutil.copy(samples / name, logs / name)
    (logs / "notes.jsonl").write_text('{"stage": "CTRL", "act\n')
    # u2's client ships its log late: until then, both deliveries to u2 read as dropped
    late = threading.Timer(1.5, shutil.copy, (samples / "client-u2.jsonl", logs / "u2.jsonl"))
    late.start()
    try:
        result = _watch(logs, "--grace", "0s", "--duration", "3.5s", columns=300)
    finally:
        late.join()
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    said = [line.split(":")[0] for line in lines if line.startswith(("drop", "withdrawn"))]
    assert said == [
        "drop 3f2b8c1e5d4a4e8f9a7b1c2d3e4f5a6b recipient u2 at WS-RECV.receive (last seen "
        "WS-BROADCAST.deliver)",
        "drop 9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d recipient u2 at WS-RECV.receive (last seen "
        "WS-BROADCAST.deliver)",
        "drop 9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d recipient u2 at REPO.add (last seen "
        "WS-RECV.receive)",  # where it broke, once the log came
        "withdrawn",
        "withdrawn",
    ]
    assert "withdrawn: drop 3f2b8c1e5d4a4e8f9a7b1c2d3e4f5a6b recipient u2 at WS-RECV.receive" in (
        result.output
    )
    assert sum(line.startswith("malformed: ") and "notes.jsonl:1" in line for line in lines) == 1
