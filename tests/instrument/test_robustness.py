"""Defects found in review: each test states exactly what must land in the sink and the stats."""

from __future__ import annotations

import io
import json
from typing import Any

import tracekit

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def lines_of(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


# 1. Decorators applied before configure() keep their own stage/action.


def test_unconfigured_decorators_keep_their_own_arguments() -> None:
    assert not tracekit.is_configured()

    @tracekit.stage("REPO", "add", peer="u2")
    @tracekit.stage("CTRL", "add", peer="u1")
    def stacked() -> int:
        return 1

    kept = tracekit.stage("REPO", "persist", conv_id="c9")
    with tracekit.stage("CTRL", "send") as s:  # another call in between
        s.set(msg_id="m1")

    @kept
    def persisted() -> int:
        return 2

    async def coro() -> int:
        return 3

    acoro = tracekit.stage("WS-SEND", "deliver")(coro)
    assert (stacked(), persisted()) == (1, 2)  # unconfigured: plain calls

    out = io.StringIO()
    tracekit.configure(service="svc", source="s", sink=out)
    assert (stacked(), persisted()) == (1, 2)
    import asyncio

    assert asyncio.run(acoro()) == 3
    assert tracekit.flush()
    got = [
        (e["stage"], e["action"], e.get("peer"), e.get("conv_id"), e["seq"]) for e in lines_of(out)
    ]
    assert got == [
        ("CTRL", "add", "u1", None, 1),
        ("REPO", "add", "u2", None, 2),
        ("REPO", "persist", None, "c9", 3),
        ("WS-SEND", "deliver", None, None, 4),
    ]


def test_unconfigured_stage_objects_are_independent_across_threads() -> None:
    import threading

    made: dict[str, Any] = {}

    def other() -> None:
        made["t"] = tracekit.stage("OTHER", "thread")

    mine = tracekit.stage("MINE", "main")
    t = threading.Thread(target=other)
    t.start()
    t.join()

    def fn() -> None:
        return None

    wrapped = mine(fn)
    out = io.StringIO()
    tracekit.configure(service="svc", source="s", sink=out)
    wrapped()
    made["t"](fn)()
    assert tracekit.flush()
    assert [(e["stage"], e["action"]) for e in lines_of(out)] == [
        ("MINE", "main"),
        ("OTHER", "thread"),
    ]
