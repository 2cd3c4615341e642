"""A real chat server (uvicorn on 127.0.0.1, SQLite file) and clients, with in-memory logs."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from chat_helpers import Chat

import tracekit
from tracekit.chat.server import ServerOptions, create_app
from tracekit.chat.serving import ServerThread

ServerFixture = tuple[ServerThread, ServerOptions, tracekit.MemorySink, Path]


@pytest.fixture
def chat_server(
    tmp_path: Path,
) -> Iterator[ServerFixture]:
    sink = tracekit.MemorySink()
    inst = tracekit.Instrumentation(
        service="chat-server", source="chat-server-1", actor="server", sink=sink
    )
    options = ServerOptions()
    db = tmp_path / "chat.db"
    with ServerThread(create_app(db, inst=inst, options=options)) as server:
        yield server, options, sink, db


@pytest.fixture
async def chat(
    chat_server: ServerFixture,
) -> AsyncIterator[Chat]:
    """The server with conversations c1 = u1, u2, u3 and c2 = u1, u2."""
    server, options, sink, db = chat_server
    c = Chat(server, options, sink, db)
    async with httpx.AsyncClient(base_url=server.base_url) as http:
        for conv_id, members in (("c1", ["u1", "u2", "u3"]), ("c2", ["u1", "u2"])):
            r = await http.post("/conversations", json={"id": conv_id, "members": members})
            assert r.status_code == 201
    try:
        yield c
    finally:
        for client in c.clients:
            await client.close()
