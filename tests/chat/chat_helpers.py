"""Helpers of the chat tests: a running chat (server + clients with in-memory logs)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tracekit
from tracekit.chat.client import Behaviour, ChatClient
from tracekit.chat.server import ServerOptions
from tracekit.chat.serving import ServerThread


@dataclass
class Chat:
    server: ServerThread
    options: ServerOptions
    server_sink: tracekit.MemorySink
    db_path: Path
    sinks: dict[str, tracekit.MemorySink] = field(default_factory=dict)
    clients: list[ChatClient] = field(default_factory=list)

    @property
    def server_events(self) -> list[dict[str, Any]]:
        return self.server_sink.events

    def events(self, user: str) -> list[dict[str, Any]]:
        return self.sinks[user].events

    async def client(
        self, user: str, behaviour: Behaviour = "fixed", conversations: list[str] | None = None
    ) -> ChatClient:
        sink = self.sinks.setdefault(user, tracekit.MemorySink())
        inst = tracekit.Instrumentation(
            service="client", source=f"client-{user}", actor=user, sink=sink
        )
        client = ChatClient(
            self.server.base_url, self.server.ws_url, user, behaviour=behaviour, inst=inst
        )
        self.clients.append(client)
        await client.start(conversations)
        return client


def hops(events: list[dict[str, Any]], trace_id: str) -> list[str]:
    """``STAGE.action`` of one message's events, in log order."""
    return [f"{e['stage']}.{e['action']}" for e in events if e.get("trace_id") == trace_id]


async def until(check: Callable[[], bool], timeout: float = 3.0) -> None:
    """Wait for ``check()`` (the system is asynchronous end to end)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not check():
        if loop.time() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.01)
