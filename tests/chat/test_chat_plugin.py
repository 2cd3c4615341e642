"""The reference chat system checked the way a user of tracekit would: the pytest plugin's
marker over log files, and ``tracekit.testing`` assertions over in-memory events."""

from __future__ import annotations

import asyncio
from pathlib import Path

import httpx
import pytest
from chat_helpers import Chat, until

import tracekit
from tracekit.chat.client import ChatClient
from tracekit.chat.server import ServerOptions, create_app
from tracekit.chat.serving import ServerThread
from tracekit.testing import assert_complete, assert_latency


@pytest.mark.tracekit(complete=True, max_latency="500ms")
async def test_every_message_reaches_every_member_once_in_order(tracekit_logs: Path) -> None:
    """Server and clients write JSON lines under ``tracekit_logs``; the marker then checks
    that every message reached every recipient's UI within 500 ms."""
    server_inst = tracekit.Instrumentation(
        service="chat-server",
        source="chat-server-1",
        actor="server",
        sink=tracekit_logs / "server.jsonl",
    )
    with ServerThread(create_app(tracekit_logs / "chat.db", inst=server_inst)) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as http:
            r = await http.post("/conversations", json={"id": "c1", "members": ["u1", "u2", "u3"]})
            assert r.status_code == 201
        clients = []
        for user in ("u1", "u2", "u3"):
            inst = tracekit.Instrumentation(
                service="client",
                source=f"client-{user}",
                actor=user,
                sink=tracekit_logs / f"client-{user}.jsonl",
            )
            client = ChatClient(server.base_url, server.ws_url, user, behaviour="fixed", inst=inst)
            await client.start()
            clients.append((client, inst))
        u1, u2, u3 = (c for c, _ in clients)
        for i in range(5):
            await u1.send("c1", f"hello {i}")
        await u2.send("c1", "hi back")
        await until(lambda: len(u3.messages("c1")) == 6 and len(u1.messages("c1")) == 6)
        for client, inst in clients:
            await client.close()
            inst.close()
    server_inst.close()


async def test_race_bug_is_reported_at_ctrl_add_with_its_timeline(tmp_path: Path) -> None:
    options = ServerOptions()
    server_sink = tracekit.MemorySink()
    server_inst = tracekit.Instrumentation(
        service="chat-server", source="chat-server-1", actor="server", sink=server_sink
    )
    with ServerThread(create_app(tmp_path / "chat.db", inst=server_inst, options=options)) as srv:
        chat = Chat(srv, options, server_sink, tmp_path / "chat.db")
        async with httpx.AsyncClient(base_url=srv.base_url) as http:
            await http.post("/conversations", json={"id": "c2", "members": ["u1", "u2"]})
        u1 = await chat.client("u1", conversations=["c2"])
        u2 = await chat.client("u2", "race-bug", conversations=["c2"])
        options.history_latency = 0.4
        reads = options.history_reads
        reload = asyncio.create_task(u2.open("c2"))
        await until(lambda: options.history_reads > reads)
        lost = (await u1.send("c2", "during the reload")).trace_id
        await until(lambda: len(u2.socket.received) == 1)
        await reload
        options.history_latency = 0.0
        kept = (await u1.send("c2", "after")).trace_id
        await until(lambda: len(u2.messages("c2")) == 1)
        for client in chat.clients:
            await client.close()

    events = chat.server_events + chat.events("u1") + chat.events("u2")
    with pytest.raises(AssertionError) as failure:
        assert_complete(events)
    text = str(failure.value)
    assert "not every message was delivered completely (1/2 deliveries)" in text
    assert f"- drop {lost} (recipient=u2, stage=CTRL.add, last_seen=REPO.add" in text
    assert f"message {lost}:" in text and "✗ CTRL.add" in text
    assert f"drop {kept}" not in text
    assert_complete(events, traces=[kept])  # the message after the reload made it
    assert_latency(events, "WS-BROADCAST.deliver->WS-RECV.receive", p99="500ms")
