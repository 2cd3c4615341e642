"""The CLI tests' logs (a module of its own: test modules importing ``conftest`` by name
found another directory's conftest when both were collected)."""

from __future__ import annotations

from pathlib import Path

from chatflow import send_message

import tracekit

T_OK = "4bf92f3577b34da6a3ce929d0e0e4736"
T_LOST = "0b9e6f4c1d2a4e8b9c3f5a6b7c8d9e0f"


def write_logs(logs: Path) -> Path:
    """A server log and two client logs with one seed-bug drop: T_LOST never reaches u2's
    CTRL.add (it stops after REPO.add)."""
    logs.mkdir(parents=True, exist_ok=True)
    inst = tracekit.Instrumentation(service="chat", source="chat-1", sink=logs / "chat.jsonl")
    with inst.activate():
        send_message(T_OK, recipients=["u2", "u3"])
        send_message(T_LOST, msg_id="m2", recipients=["u2", "u3"], stop_before={"u2": "CTRL.add"})
    inst.close()
    return logs
