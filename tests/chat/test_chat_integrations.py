"""The integrations: fan-out, envelope, httpx and websockets helpers, FastAPI spans."""

from __future__ import annotations

import asyncio
import json
import uuid
from pathlib import Path
from typing import Any

import httpx
import websockets
from fastapi import FastAPI, WebSocket
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind

import tracekit
from tracekit.chat.server import create_app
from tracekit.chat.serving import ServerThread
from tracekit.integrations.fanout import fanout, json_sender, starlette_sender
from tracekit.integrations.httpx import traced_client
from tracekit.integrations.websockets import decode, receiving
from tracekit.propagation import ENVELOPE_KEY
from tracekit.testing import capture

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


async def test_fanout_emits_start_and_one_deliver_per_recipient_with_its_own_envelope() -> None:
    got: dict[str, list[dict[str, Any]]] = {"u2": [], "u3": []}

    def sender(peer: str) -> Any:
        async def send(payload: dict[str, Any]) -> None:
            got[peer].append(payload)

        return send

    async def broken(payload: dict[str, Any]) -> None:
        raise ConnectionResetError("gone")

    payload = {"type": "message:created", "message": {"id": "m1"}}
    with capture(actor="server") as events, tracekit.message(TID, conv_id="c1", msg_id="m1"):
        results = await fanout(
            payload,
            [("u2", sender("u2")), ("u4", broken), ("u3", sender("u3"))],
            recipients=["u2", "u3", "u4", "u5"],
        )

    assert payload == {"type": "message:created", "message": {"id": "m1"}}  # not mutated
    assert results["u2"] is None and results["u3"] is None
    assert isinstance(results["u4"], ConnectionResetError)
    start, *delivers = events
    assert (start["stage"], start["action"], start["recipients"]) == (
        "WS-BROADCAST",
        "start",
        ["u2", "u3", "u4", "u5"],
    )
    assert sorted((e["action"], e["peer"], e["status"]) for e in delivers) == [
        ("deliver", "u2", "ok"),
        ("deliver", "u3", "ok"),
        ("deliver", "u4", "error"),
    ]
    assert all(
        (e["trace_id"], e["conv_id"], e["msg_id"], e["actor"]) == (TID, "c1", "m1", "server")
        for e in events
    )
    for peer in ("u2", "u3"):
        (frame,) = got[peer]
        assert frame["message"] == {"id": "m1"}
        ctx = tracekit.extract(frame, tracekit.envelope_getter)
        assert ctx is not None and (ctx.trace_id, ctx.conv_id, ctx.msg_id) == (TID, "c1", "m1")


async def test_fanout_without_start_and_sequential() -> None:
    sent: list[str] = []

    async def send_text(text: str) -> None:
        sent.append(text)

    with capture() as events, tracekit.message(TID):
        await fanout({"n": 1}, {"u2": json_sender(send_text)}, start=False, concurrent=False)
    assert [(e["action"], e["peer"]) for e in events] == [("deliver", "u2")]
    assert json.loads(sent[0])[ENVELOPE_KEY]["tracekit-trace-id"] == TID


async def test_fanout_through_a_starlette_websocket() -> None:
    app = FastAPI()

    @app.websocket("/ws")
    async def ws(websocket: WebSocket) -> None:
        await websocket.accept()
        with tracekit.message(TID, conv_id="c1"):
            await fanout({"type": "hello"}, [("u2", starlette_sender(websocket))])
        await websocket.receive_text()

    with capture() as events, ServerThread(app) as server:
        async with websockets.connect(f"{server.ws_url}/ws") as sock:
            frame = json.loads(await asyncio.wait_for(sock.recv(), 5))
    assert frame["type"] == "hello"
    assert frame[ENVELOPE_KEY]["tracekit-trace-id"] == TID
    assert [(e["action"], e.get("peer")) for e in events] == [("start", None), ("deliver", "u2")]


def test_websockets_receive_extracts_the_envelope_and_marks_the_stage() -> None:
    with tracekit.message(TID, conv_id="c1", msg_id="m1"):
        payload: dict[str, Any] = {"type": "message:created"}
        tracekit.inject(payload, tracekit.envelope_setter)
    received = decode(json.dumps(payload))
    assert received.context is not None and received.context.trace_id == TID

    with capture() as events:
        with receiving(received, actor="u2"):
            tracekit.emit("REPO", "add")
        with receiving(decode('{"type": "presence"}'), actor="u2"):
            pass  # no envelope: not a message hop
    assert [(e["stage"], e["action"], e["trace_id"], e["actor"], e["msg_id"]) for e in events] == [
        ("REPO", "add", TID, "u2", "m1"),
        ("WS-RECV", "receive", TID, "u2", "m1"),
    ]
    assert decode(b"\xff not json").payload is None


async def test_httpx_client_injects_only_inside_a_message() -> None:
    seen: list[httpx.Headers] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers)
        return httpx.Response(204)

    async with traced_client(transport=httpx.MockTransport(handler)) as client:
        with tracekit.message(TID, conv_id="c1"):
            await client.post("http://chat.test/x")
        await client.get("http://chat.test/y")
    assert seen[0]["tracekit-trace-id"] == TID and seen[0]["tracekit-conv-id"] == "c1"
    assert seen[0]["traceparent"].startswith(f"00-{TID}-")
    assert "traceparent" not in seen[1] and "tracekit-trace-id" not in seen[1]


async def test_fastapi_http_and_stage_spans_join_the_senders_trace(
    tmp_path: Path, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    """u1's REST.request -> HTTP server span -> REST.persist, and the broadcast's deliver span
    -> u2's WS-RECV.receive: one trace across three emitters, with the real OTel SDK."""
    provider, exporter = spans

    def inst(service: str, actor: str) -> tracekit.Instrumentation:
        return tracekit.Instrumentation(
            service=service, source=f"{service}-{actor}", actor=actor,
            sink=tracekit.MemorySink(), otel=provider,
        )  # fmt: skip

    server_inst, u1, u2 = inst("chat-server", "server"), inst("client", "u1"), inst("client", "u2")
    app = create_app(
        tmp_path / "chat.db", inst=server_inst, http_spans=True, tracer_provider=provider
    )
    cmid = str(uuid.uuid4())
    tid = int(cmid.replace("-", ""), 16)
    with ServerThread(app) as server:
        async with (
            traced_client(base_url=server.base_url) as http,
            websockets.connect(f"{server.ws_url}/ws?user=u2") as sock,
        ):
            r = await http.post("/conversations", json={"id": "c1", "members": ["u1", "u2"]})
            assert r.status_code == 201
            with (
                u1.activate(),
                tracekit.message(cmid, conv_id="c1", actor="u1"),
                tracekit.stage("REST", "request"),
            ):
                body = {"client_msg_id": cmid, "sender": "u1", "text": "hi"}
                r = await http.post("/conversations/c1/messages", json=body)
                assert r.status_code == 201
            frame = decode(await asyncio.wait_for(sock.recv(), 5))
            with u2.activate(), receiving(frame, actor="u2"):
                pass

    finished = exporter.get_finished_spans()
    by_name = {s.name: s for s in finished if s.context.trace_id == tid}
    request, persist = by_name["REST request"], by_name["REST persist"]
    deliver, receive = by_name["WS-BROADCAST deliver"], by_name["WS-RECV receive"]
    http_span = by_name["POST /conversations/{conv_id}/messages"]
    assert (request.kind, http_span.kind, deliver.kind, receive.kind) == (
        SpanKind.CLIENT,
        SpanKind.SERVER,
        SpanKind.PRODUCER,
        SpanKind.CONSUMER,
    )

    def parent(span: ReadableSpan) -> int | None:
        return span.parent.span_id if span.parent is not None else None

    assert parent(http_span) == request.context.span_id
    assert parent(persist) == http_span.context.span_id
    assert parent(deliver) == http_span.context.span_id
    assert parent(receive) == deliver.context.span_id
    assert persist.attributes is not None and deliver.attributes is not None
    # msg_id is learnt inside REST.persist (stage.set): on its event and its span too
    assert persist.attributes["messaging.message.id"] == "m1"
    assert deliver.attributes["messaging.message.id"] == "m1"
    assert deliver.attributes["tracekit.peer"] == "u2"
    # the setup request and the socket carried no message: their spans are not in its trace
    others = [s for s in finished if s.context.trace_id != tid]
    assert sorted(s.name for s in others if s.kind is SpanKind.SERVER) == [
        "HTTP /ws",
        "POST /conversations",
    ]


def test_integrations_package_is_light_and_the_chat_app_needs_no_polars() -> None:
    import subprocess
    import sys

    code = (
        "import sys, tracekit, tracekit.integrations\n"
        "heavy = ('fastapi', 'uvicorn', 'httpx', 'websockets', 'starlette', 'polars')\n"
        "print(sorted(m for m in heavy if m in sys.modules))\n"
        "import tracekit.chat.demo\n"
        "print('polars' in sys.modules)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    ).stdout.split("\n")
    assert out[:2] == ["[]", "False"]
