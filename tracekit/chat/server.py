"""The reference chat server: FastAPI over a SQLite file, WebSocket fan-out, instrumented.

REST::

    POST /conversations                      {"id"?, "title"?, "members": [...]}  -> 201
    GET  /conversations?user=u1              conversations u1 is a member of
    POST /conversations/{cid}/messages       {"client_msg_id", "sender", "text"}
                                             -> 201 created, 200 if that client_msg_id exists
    GET  /conversations/{cid}/messages?limit=50&before_seq=N   -> {"messages", "has_more"}
    GET  /presence                           -> {"online": [users with an open socket]}

WebSocket ``/ws?user=u1``: ``{"type": "message:created", "message": {...,"seq": n}, "_trace"}``
for every message of u1's conversations that someone else sent. The sender is not a recipient
of its own broadcast: it gets the canonical message in its POST response.

Stages: ``REST.persist`` (in the sender's trace, through the request headers or the client
message id), ``WS-BROADCAST.start`` (``recipients`` = every member but the sender, connected
or not) and one ``WS-BROADCAST.deliver`` per socket write (``peer``). Broadcasts run after the
response, chained per conversation so recipients get a conversation's messages in ``seq`` order.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastapi import FastAPI, HTTPException, Query, Response, WebSocket, WebSocketDisconnect
from pydantic import BaseModel

import tracekit
from tracekit.chat.faults import DeliveryFaults
from tracekit.chat.store import ChatStore, StoredMessage
from tracekit.errors import SchemaError
from tracekit.integrations.fanout import Send, fanout
from tracekit.schema import trace_id_from_uuid

if TYPE_CHECKING:
    from opentelemetry.trace import TracerProvider
    from starlette.types import ASGIApp, Receive, Scope
    from starlette.types import Send as ASGISend

__all__ = ["ChatService", "ServerOptions", "create_app", "main"]

SERVER_ACTOR = "server"


class NewConversation(BaseModel):
    id: str | None = None
    title: str = ""
    members: list[str]


class NewMessage(BaseModel):
    client_msg_id: str
    sender: str
    text: str


@dataclass
class ServerOptions:
    """Knobs a test or the load generator may turn while the server runs."""

    #: Seconds a history page takes to arrive after the database was read (a slow mobile
    #: link): messages persisted meanwhile are not in it, but their WebSocket events are on
    #: their way, which is the window of the REST/WebSocket race.
    history_latency: float = 0.0
    faults: DeliveryFaults = field(default_factory=DeliveryFaults)
    #: history pages read from the database so far (lets a test or the load generator act
    #: right after the page's snapshot was taken, instead of guessing with a sleep)
    history_reads: int = 0


class _Connection:
    """One open socket of a user; writes are serialised (several broadcasts may share it)."""

    def __init__(self, user: str, websocket: WebSocket) -> None:
        self.user = user
        self.websocket = websocket
        self._lock = asyncio.Lock()

    async def send(self, payload: dict[str, Any]) -> None:
        text = json.dumps(payload, separators=(",", ":"))
        async with self._lock:
            await self.websocket.send_text(text)


class ChatService:
    """State behind the app: the store, open sockets, per-conversation ordering."""

    def __init__(self, store: ChatStore, options: ServerOptions) -> None:
        self.store = store
        self.options = options
        self._sockets: dict[str, list[_Connection]] = {}
        self._locks: dict[str, asyncio.Lock] = {}
        self._tails: dict[str, asyncio.Task[None]] = {}
        self._tasks: set[asyncio.Task[None]] = set()
        self._ids = itertools.count(1)

    def online(self) -> list[str]:
        return sorted(u for u, conns in self._sockets.items() if conns)

    def connect(self, user: str, websocket: WebSocket) -> _Connection:
        conn = _Connection(user, websocket)
        self._sockets.setdefault(user, []).append(conn)
        return conn

    def disconnect(self, conn: _Connection) -> None:
        conns = self._sockets.get(conn.user, [])
        if conn in conns:
            conns.remove(conn)

    def lock(self, conv_id: str) -> asyncio.Lock:
        return self._locks.setdefault(conv_id, asyncio.Lock())

    def new_conv_id(self) -> str:
        return f"c{next(self._ids)}"

    def schedule_broadcast(self, msg: StoredMessage, recipients: list[str]) -> None:
        """Broadcast after the previous broadcast of the conversation (call under its lock).

        The task copies the caller's context: the message binding, the activated
        instrumentation and the current span all follow it.
        """
        prev = self._tails.get(msg.conv_id)
        task = asyncio.create_task(self._broadcast(prev, msg, recipients))
        self._tails[msg.conv_id] = task
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _broadcast(
        self, prev: asyncio.Task[None] | None, msg: StoredMessage, recipients: list[str]
    ) -> None:
        if prev is not None:
            await asyncio.wait([prev])
        payload = {"type": "message:created", "message": msg.as_dict()}
        trace_id = trace_id_from_uuid(msg.client_msg_id)
        targets: list[tuple[str, Send]] = [
            (peer, self.options.faults.wrap(trace_id, peer, conn.send))
            for peer in recipients
            for conn in list(self._sockets.get(peer, ()))
        ]
        await fanout(payload, targets, recipients=recipients)

    async def drain(self) -> None:
        """Wait for the broadcasts in flight."""
        while self._tasks:
            await asyncio.wait(list(self._tasks))


class _Activate:
    """Route every request's events to one :class:`tracekit.Instrumentation` (a server that
    shares its process with clients, as in the demo)."""

    def __init__(self, app: ASGIApp, inst: tracekit.Instrumentation) -> None:
        self.app = app
        self.inst = inst

    async def __call__(self, scope: Scope, receive: Receive, send: ASGISend) -> None:
        with self.inst.activate():
            await self.app(scope, receive, send)


def create_app(
    db_path: Path,
    *,
    inst: tracekit.Instrumentation | None = None,
    options: ServerOptions | None = None,
    http_spans: bool = False,
    tracer_provider: TracerProvider | None = None,
) -> FastAPI:
    """The chat app over the SQLite file ``db_path`` (created if missing).

    ``inst``: emit through this instrumentation (default: the process-wide ``configure``).
    ``http_spans``: also OpenTelemetry HTTP server spans (``instrument_app``).
    """
    from tracekit.integrations.fastapi import instrument_app

    opts = options if options is not None else ServerOptions()

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        await service.drain()
        store.close()

    store = ChatStore(db_path)
    service = ChatService(store, opts)
    app = FastAPI(title="tracekit reference chat", lifespan=lifespan)
    app.state.chat = service
    _routes(app, service)
    instrument_app(app, tracer_provider=tracer_provider, http_spans=http_spans)
    if inst is not None:
        app.add_middleware(_Activate, inst=inst)
    return app


def _routes(app: FastAPI, service: ChatService) -> None:
    store = service.store

    @app.post("/conversations", status_code=201)
    async def create_conversation(body: NewConversation) -> dict[str, Any]:
        conv_id = body.id or service.new_conv_id()
        if not body.members:
            raise HTTPException(422, "a conversation needs members")
        try:
            conv = await asyncio.to_thread(
                store.create_conversation, conv_id, body.title or conv_id, body.members
            )
        except Exception as exc:  # sqlite3.IntegrityError: the id exists
            raise HTTPException(409, f"conversation {conv_id!r} exists") from exc
        return conv.as_dict()

    @app.get("/conversations")
    async def list_conversations(user: str) -> list[dict[str, Any]]:
        return [c.as_dict() for c in await asyncio.to_thread(store.conversations_of, user)]

    @app.post("/conversations/{conv_id}/messages", status_code=201)
    async def post_message(conv_id: str, body: NewMessage, response: Response) -> dict[str, Any]:
        conv = await asyncio.to_thread(store.conversation, conv_id)
        if conv is None:
            raise HTTPException(404, f"no conversation {conv_id!r}")
        if body.sender not in conv.members:
            raise HTTPException(403, f"{body.sender!r} is not a member of {conv_id!r}")
        try:
            trace_id = trace_id_from_uuid(body.client_msg_id)
        except SchemaError as exc:
            raise HTTPException(422, str(exc)) from exc
        # The headers' context (with the sender's parent span) when it is this message's;
        # otherwise the client message id alone names the trace.
        ctx = tracekit.current()
        base = ctx if ctx is not None and ctx.trace_id == trace_id else trace_id
        with tracekit.message(base, conv_id=conv_id, actor=SERVER_ACTOR):
            async with service.lock(conv_id):
                with tracekit.stage("REST", "persist") as persist:
                    msg, created = await asyncio.to_thread(
                        store.add_message, conv_id, body.client_msg_id, body.sender, body.text
                    )
                    # a retry is answered from the row the first attempt wrote
                    persist.set(msg_id=msg.id, conv_seq=msg.seq, created=created)
                if created:
                    with tracekit.message(msg_id=msg.id):
                        recipients = [m for m in conv.members if m != msg.sender]
                        service.schedule_broadcast(msg, recipients)
        if not created:
            response.status_code = 200
        return {"message": msg.as_dict(), "created": created}

    @app.get("/conversations/{conv_id}/messages")
    async def history(
        conv_id: str,
        limit: int = Query(50, ge=1, le=1000),
        before_seq: int | None = None,
    ) -> dict[str, Any]:
        if await asyncio.to_thread(store.conversation, conv_id) is None:
            raise HTTPException(404, f"no conversation {conv_id!r}")
        page, more = await asyncio.to_thread(
            store.history, conv_id, limit=limit, before_seq=before_seq
        )
        service.options.history_reads += 1
        if service.options.history_latency > 0:
            await asyncio.sleep(service.options.history_latency)
        return {"messages": [m.as_dict() for m in page], "has_more": more}

    @app.get("/presence")
    async def presence() -> dict[str, list[str]]:
        return {"online": service.online()}

    @app.websocket("/ws")
    async def socket(websocket: WebSocket, user: str) -> None:
        await websocket.accept()
        conn = service.connect(user, websocket)
        try:
            while True:  # clients only listen; this notices when they leave
                await websocket.receive_text()
        except WebSocketDisconnect:
            pass
        finally:
            service.disconnect(conn)


def main(argv: list[str] | None = None) -> None:
    """``python -m tracekit.chat.server --db chat.db --log logs/server.jsonl --port 8000``."""
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--db", type=Path, default=Path("chat.db"))
    parser.add_argument("--log", default="logs/server.jsonl")
    parser.add_argument("--source", default="chat-server-1")
    parser.add_argument("--port", type=int, default=8000)
    args = parser.parse_args(argv)
    tracekit.configure(service="chat-server", source=args.source, actor="server", sink=args.log)
    uvicorn.run(create_app(args.db), host="127.0.0.1", port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
