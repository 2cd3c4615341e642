"""A message's whole path through the default chat pipeline, emitted with tracekit's API."""

from __future__ import annotations

from collections.abc import Sequence

import tracekit


def send_message(
    trace_id: str,
    *,
    sender: str = "u1",
    recipients: Sequence[str] = ("u2",),
    conv_id: str = "c1",
    msg_id: str = "m1",
    stop_before: dict[str, str] | None = None,
    twice: dict[str, str] | None = None,
) -> None:
    """Emit every hop; ``stop_before={"u2": "CTRL.add"}`` makes u2's path stop there,
    ``twice={"u2": "CTRL.add"}`` repeats that hop for u2."""
    stop_before = stop_before or {}
    twice = twice or {}
    with tracekit.message(trace_id, conv_id=conv_id):
        with tracekit.bind(actor=sender):
            tracekit.emit("CTRL", "send")
            tracekit.emit("REST", "request")
        with tracekit.bind(actor="server"), tracekit.message(msg_id=msg_id):
            tracekit.emit("REST", "persist")
            tracekit.emit("WS-BROADCAST", "start", recipients=list(recipients))
            for user in recipients:
                tracekit.emit("WS-BROADCAST", "deliver", peer=user)
        with tracekit.bind(actor=sender), tracekit.message(msg_id=msg_id):
            tracekit.emit("REST", "response")
        for user in recipients:
            with tracekit.bind(actor=user), tracekit.message(msg_id=msg_id):
                for stage, action in (("WS-RECV", "receive"), ("REPO", "add"), ("CTRL", "add")):
                    hop = f"{stage}.{action}"
                    if stop_before.get(user) == hop:
                        break
                    tracekit.emit(stage, action)
                    if twice.get(user) == hop:
                        tracekit.emit(stage, action)
