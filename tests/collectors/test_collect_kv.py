"""logfmt and structlog's KeyValueRenderer, written by structlog itself."""

from __future__ import annotations

from typing import Any

import structlog
from collectors_helpers import T1, event, jl, ts

from tracekit.collectors import MemorySource, collect, detect_format


def render(renderer: Any, ev: dict[str, Any]) -> str:
    return str(renderer(None, "info", dict(ev)))


def test_keyvalue_renderer_reprs() -> None:
    kv = structlog.processors.KeyValueRenderer(key_order=["timestamp", "event"])
    lines = [
        render(
            kv,
            jl(
                stage="WS-BROADCAST",
                action="start",
                event="WS-BROADCAST start",
                recipients=["u1", "u2"],
                actor="server",
                source="chat-server-1",
                seq=17,
                msg_id="m1",
                peer=None,
            ),
        ),
        render(kv, jl(event='it\'s "quoted"', seq=18, timestamp="2026-11-25T10:00:00.5Z")),
    ]
    assert detect_format("\n".join(lines).encode()) == "kv"
    got = collect([MemorySource(lines, name="app.log")])
    assert got.events.collect().to_dicts() == [
        event(
            timestamp=ts("10:00:00"),
            stage="WS-BROADCAST",
            action="start",
            event="WS-BROADCAST start",
            trace_id=T1,
            msg_id="m1",
            actor="server",
            source="chat-server-1",
            seq=17,
            recipients=["u1", "u2"],
            file="app.log",
            line=1,
        ),
        event(
            timestamp=ts("10:00:00.5"),
            stage="CTRL",
            action="send",
            event='it\'s "quoted"',
            trace_id=T1,
            actor="u1",
            source="client-u1",
            seq=18,
            file="app.log",
            line=2,
        ),
    ]
    assert got.inputs.formats == {"kv": 1}


def test_logfmt() -> None:
    lf = structlog.processors.LogfmtRenderer(key_order=["timestamp", "event"])
    lines = [
        render(lf, jl(event="CTRL send hello world", seq=1)),
        "this line is not logfmt",
        render(lf, jl(stage="REST", action="request", event="REST request", seq=2, level="info")),
    ]
    got = collect([MemorySource(lines, name="lf.log", format="kv")])
    frame = got.events.collect()
    assert frame.select("stage", "action", "event", "seq", "level", "line").rows() == [
        ("CTRL", "send", "CTRL send hello world", 1, None, 1),
        ("REST", "request", "REST request", 2, "info", 3),
    ]
    assert got.inputs.examples == ["lf.log:2: not key=value text"]
