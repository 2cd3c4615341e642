"""The reference chat client, modelled on a typical mobile chat app, instrumented at every hop.

- :class:`RestClient`: REST calls (``REST.request`` for sends, ``REST.fetch_start`` for history);
- :class:`SocketClient`: the WebSocket; each ``message:created`` frame is ``WS-RECV.receive``;
- :class:`Repository`: the socket's message store (``REPO.add``), deduplicated by message id;
- :class:`Controller`: what the UI shows (``CTRL.send``, ``CTRL.add``, ``CTRL.remove``,
  ``REST.response``, ``REST.fetch_end``), with two behaviours:

  ``fixed``: socket messages are always added; a history load merges, never overwrites;
  duplicates are removed by id; the optimistic copy is replaced by the canonical message.

  ``race-bug``: a socket message for a conversation that is not loaded (its history load
  still in flight) is dropped, silently, and the history result overwrites the store: the
  message appears only after the next refresh. The overwrite is logged (``CTRL.remove`` of
  each message it takes off the screen), the drop is not: two ways the analysis must see.

:class:`ChatClient` ties them together for one user, all emitting through its own
:class:`tracekit.Instrumentation` when given one.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import websockets
from websockets.asyncio.client import ClientConnection

import tracekit
from tracekit.integrations.httpx import traced_client
from tracekit.integrations.websockets import iter_received
from tracekit.schema import trace_id_from_uuid

__all__ = [
    "Behaviour",
    "ChatClient",
    "ChatMessage",
    "Controller",
    "Repository",
    "RestClient",
    "SocketClient",
]

Behaviour = Literal["fixed", "race-bug"]
BEHAVIOURS: tuple[Behaviour, ...] = ("fixed", "race-bug")


@dataclass(frozen=True, slots=True)
class ChatMessage:
    client_msg_id: str
    conv_id: str
    sender: str
    text: str
    #: canonical server id and per-conversation sequence number; None while optimistic
    id: str | None = None
    seq: int | None = None

    @property
    def pending(self) -> bool:
        return self.id is None

    @property
    def trace_id(self) -> str:
        return trace_id_from_uuid(self.client_msg_id)

    @classmethod
    def from_wire(cls, data: dict[str, Any]) -> ChatMessage:
        return cls(
            client_msg_id=str(data["client_msg_id"]),
            conv_id=str(data["conv_id"]),
            sender=str(data["sender"]),
            text=str(data["text"]),
            id=str(data["id"]),
            seq=int(data["seq"]),
        )


class RestClient:
    """REST calls of one user. Sends carry the message context in their headers."""

    def __init__(
        self,
        base_url: str,
        user: str,
        *,
        retries: int = 2,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.user = user
        self.retries = retries
        self._http = traced_client(base_url=base_url, timeout=10.0, transport=transport)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def create_conversation(
        self, members: list[str], *, conv_id: str | None = None, title: str = ""
    ) -> dict[str, Any]:
        body = {"id": conv_id, "title": title, "members": members}
        r = await self._http.post("/conversations", json=body)
        r.raise_for_status()
        return dict(r.json())

    async def conversations(self) -> list[dict[str, Any]]:
        r = await self._http.get("/conversations", params={"user": self.user})
        r.raise_for_status()
        return list(r.json())

    async def post_message(self, conv_id: str, client_msg_id: str, text: str) -> ChatMessage:
        """POST inside ``REST.request``, retried on transport errors and 5xx with the same
        client message id: the server answers a retry with the message the first made."""
        body = {"client_msg_id": client_msg_id, "sender": self.user, "text": text}
        with tracekit.stage("REST", "request") as request:
            for attempt in range(1, self.retries + 2):
                request.set(attempts=attempt)
                try:
                    r = await self._http.post(f"/conversations/{conv_id}/messages", json=body)
                    if r.status_code < 500 or attempt > self.retries:
                        break
                except httpx.TransportError:
                    if attempt > self.retries:
                        raise
                await asyncio.sleep(0.02 * attempt)
            r.raise_for_status()
            msg = ChatMessage.from_wire(r.json()["message"])
            request.set(msg_id=msg.id)
        return msg

    async def history(self, conv_id: str, *, limit: int = 200) -> list[ChatMessage]:
        r = await self._http.get(f"/conversations/{conv_id}/messages", params={"limit": limit})
        r.raise_for_status()
        return [ChatMessage.from_wire(m) for m in r.json()["messages"]]


class Repository:
    """Messages that came over the socket, by conversation, deduplicated by id.

    History pages do not pass through here: a message already shown from a history page is
    still a new socket event (and reaches the controller, which replaces it in place).
    """

    def __init__(self, on_message: Callable[[ChatMessage], None]) -> None:
        self._on_message = on_message
        self._seen: dict[str, dict[str, ChatMessage]] = {}
        self.duplicates: list[ChatMessage] = []

    def on_socket_message(self, msg: ChatMessage) -> None:
        seen = self._seen.setdefault(msg.conv_id, {})
        if msg.id is None or msg.id in seen:
            self.duplicates.append(msg)  # a frame delivered twice: shown once
            return
        with tracekit.stage("REPO", "add"):
            seen[msg.id] = msg
        self._on_message(msg)

    def ids(self, conv_id: str) -> set[str]:
        return set(self._seen.get(conv_id, {}))


def _wiped(shown: Iterable[ChatMessage], page: list[ChatMessage]) -> list[ChatMessage]:
    """What replacing ``shown`` with a history ``page`` takes off the screen: the messages
    the page lacks, except those older than its oldest (paged out, not lost: scrolling up
    loads them again)."""
    ids = {m.client_msg_id for m in page} | {m.id for m in page if m.id}
    oldest = min((m.seq for m in page if m.seq is not None), default=None)
    return [
        m
        for m in shown
        if m.client_msg_id not in ids
        and m.id not in ids
        and (oldest is None or m.seq is None or m.seq >= oldest)
    ]


class Controller:
    """What the UI shows: each conversation's messages in order, optimistic ones last."""

    def __init__(self, user: str, rest: RestClient, behaviour: Behaviour = "fixed") -> None:
        if behaviour not in BEHAVIOURS:
            raise ValueError(f"behaviour must be one of {BEHAVIOURS}, got {behaviour!r}")
        self.user = user
        self.rest = rest
        self.behaviour = behaviour
        self._store: dict[str, list[ChatMessage]] = {}
        self._loading: dict[str, int] = {}
        self._outbox: dict[str, asyncio.Lock] = {}
        #: socket messages the race-bug controller threw away (ground truth, never logged)
        self.dropped: list[ChatMessage] = []
        #: socket messages shown (``CTRL.add``), then taken off by a race-bug history page and
        #: not added again (ground truth; logged as ``CTRL.remove``)
        self.overwritten: list[ChatMessage] = []
        self._from_socket: set[str] = set()
        #: called with (conversation, its messages) on every change: what a UI would redraw
        self.listeners: list[Callable[[str, list[ChatMessage]], None]] = []

    def messages(self, conv_id: str) -> list[ChatMessage]:
        return list(self._store.get(conv_id, ()))

    def loading(self, conv_id: str) -> bool:
        return self._loading.get(conv_id, 0) > 0

    def _changed(self, conv_id: str) -> None:
        snapshot = self.messages(conv_id)
        for listener in self.listeners:
            try:
                listener(conv_id, snapshot)
            except Exception:
                pass

    def _upsert(self, msg: ChatMessage) -> None:
        """Put ``msg`` in its conversation: replaces the entry with its id or its client
        message id (the optimistic copy), so nothing is shown twice."""
        items = self._store.setdefault(msg.conv_id, [])
        for i, old in enumerate(items):
            if old.client_msg_id == msg.client_msg_id or (msg.id and old.id == msg.id):
                if not (old.id is not None and msg.id is None):  # never canonical -> optimistic
                    items[i] = msg
                break
        else:
            items.append(msg)
        items.sort(key=lambda m: (m.seq is None, m.seq or 0))

    def on_socket_message(self, msg: ChatMessage) -> None:
        """A ``message:created`` the repository accepted."""
        if self.behaviour == "race-bug" and msg.conv_id not in self._store:
            self.dropped.append(msg)  # the bug: not loaded (yet), so not shown
            return
        with tracekit.stage("CTRL", "add"):
            if self.behaviour == "race-bug":
                self._store[msg.conv_id].append(msg)
            else:
                self._upsert(msg)
        self._from_socket.add(msg.client_msg_id)
        self.overwritten = [m for m in self.overwritten if m.client_msg_id != msg.client_msg_id]
        self._changed(msg.conv_id)

    def _removed(self, msg: ChatMessage) -> None:
        """The store lost ``msg``: the guard a team adds once it suspects the store (the seed
        report's third fix), as a ``CTRL.remove`` of that message for this user."""
        with tracekit.message(
            msg.client_msg_id, conv_id=msg.conv_id, msg_id=msg.id, actor=self.user
        ):
            tracekit.emit("CTRL", "remove", reason="history page replaced the store")

    async def load(self, conv_id: str) -> list[ChatMessage]:
        """Open (or reload) a conversation: fetch its history and apply it."""
        if self.behaviour == "race-bug":
            # leaving and re-entering the screen forgets the conversation until the page lands
            self._store.pop(conv_id, None)
        self._loading[conv_id] = self._loading.get(conv_id, 0) + 1
        try:
            with tracekit.bind(actor=self.user, conv_id=conv_id):
                # point events: the window must enclose, in time and in log order, the
                # socket events that arrive while the page is in flight
                tracekit.emit("REST", "fetch_start")
                page = await self.rest.history(conv_id)
                if self.behaviour == "race-bug":
                    wiped = _wiped(self._store.get(conv_id, ()), page)
                    self._store[conv_id] = list(page)  # the bug: overwrites socket messages
                    added = len(page)
                    for msg in wiped:
                        self._removed(msg)
                        if msg.client_msg_id in self._from_socket:
                            self.overwritten.append(msg)
                else:
                    before = len(self._store.get(conv_id, ()))
                    self._store.setdefault(conv_id, [])
                    for msg in page:
                        self._upsert(msg)
                    added = len(self._store[conv_id]) - before
                tracekit.emit("REST", "fetch_end", count=len(page), added=added)
        finally:
            self._loading[conv_id] -= 1
        self._changed(conv_id)
        return self.messages(conv_id)

    async def send(
        self, conv_id: str, text: str, *, client_msg_id: str | None = None
    ) -> ChatMessage:
        """Show the message at once (optimistic), POST it, then show the canonical one."""
        cmid = client_msg_id or str(uuid.uuid4())
        # Sibling stages, not nested: a stage's event is written when it ends, and the log
        # should read in pipeline order (CTRL.send, REST.request, REST.response).
        with tracekit.message(cmid, conv_id=conv_id, actor=self.user):
            with tracekit.stage("CTRL", "send"):
                self._upsert(ChatMessage(cmid, conv_id, self.user, text))
            self._changed(conv_id)
            # an outbox per conversation: sends fired faster than the server answers still
            # reach it (and get their seq) in the order the user wrote them
            async with self._outbox.setdefault(conv_id, asyncio.Lock()):
                canonical = await self.rest.post_message(conv_id, cmid, text)
            with tracekit.message(msg_id=canonical.id), tracekit.stage("REST", "response"):
                self._upsert(canonical)
            self._changed(conv_id)
        return canonical


class SocketClient:
    """The user's WebSocket: hands each ``message:created`` to the repository inside
    ``WS-RECV.receive`` (bound to the sender's trace from the frame's envelope)."""

    def __init__(
        self,
        ws_url: str,
        user: str,
        repository: Repository,
        *,
        loading: Callable[[str], bool] | None = None,
    ) -> None:
        self.url = f"{ws_url}/ws?user={user}"
        self.user = user
        self.repository = repository
        self._loading = loading
        #: (trace id, conversation) of frames that arrived while that conversation's history
        #: load was in flight: the REST/WebSocket race, whether or not it lost anything
        self.races: list[tuple[str, str]] = []
        self._ws: ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        #: trace ids of every message frame received, in order (duplicates included)
        self.received: list[str] = []

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def connect(self) -> None:
        self._ws = await websockets.connect(self.url, ping_interval=None, open_timeout=10)
        self._reader = asyncio.create_task(self._read(self._ws), name=f"ws-{self.user}")

    async def close(self) -> None:
        ws, reader, self._ws, self._reader = self._ws, self._reader, None, None
        if ws is not None:
            await ws.close()
        if reader is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await reader

    async def _read(self, ws: ClientConnection) -> None:
        try:
            async for frame in iter_received(ws):
                payload = frame.payload
                if not isinstance(payload, dict) or payload.get("type") != "message:created":
                    continue
                try:
                    msg = ChatMessage.from_wire(payload["message"])
                except (KeyError, TypeError, ValueError):
                    continue
                self.received.append(msg.trace_id)
                if self._loading is not None and self._loading(msg.conv_id):
                    self.races.append((msg.trace_id, msg.conv_id))
                # the envelope's context (remote parent span); the client message id otherwise
                ctx = frame.context or msg.client_msg_id
                with tracekit.message(ctx, actor=self.user, conv_id=msg.conv_id, msg_id=msg.id):
                    with tracekit.stage("WS-RECV", "receive"):
                        pass  # the receipt itself; the store's stages follow, in log order
                    try:
                        self.repository.on_socket_message(msg)
                    except Exception:
                        pass  # a bad frame must not stop the reader
        except websockets.ConnectionClosed:
            pass


class ChatClient:
    """One user's app: REST client, socket, repository and controller."""

    def __init__(
        self,
        base_url: str,
        ws_url: str,
        user: str,
        *,
        behaviour: Behaviour = "fixed",
        inst: tracekit.Instrumentation | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.user = user
        self.inst = inst
        self.rest = RestClient(base_url, user, transport=transport)
        self.controller = Controller(user, self.rest, behaviour)
        self.repository = Repository(self.controller.on_socket_message)
        self.socket = SocketClient(ws_url, user, self.repository, loading=self.controller.loading)
        self.opened: list[str] = []

    @contextlib.contextmanager
    def _active(self) -> Iterator[None]:
        if self.inst is None:
            yield
        else:
            with self.inst.activate():
                yield

    async def start(self, conversations: list[str] | None = None) -> None:
        """Connect the socket, then open the conversations (default: all of the user's)."""
        with self._active():
            await self.socket.connect()
            if conversations is None:
                conversations = [c["id"] for c in await self.rest.conversations()]
            for conv_id in conversations:
                await self.open(conv_id)

    async def open(self, conv_id: str) -> list[ChatMessage]:
        with self._active():
            if conv_id not in self.opened:
                self.opened.append(conv_id)
            return await self.controller.load(conv_id)

    async def send(
        self, conv_id: str, text: str, *, client_msg_id: str | None = None
    ) -> ChatMessage:
        with self._active():
            return await self.controller.send(conv_id, text, client_msg_id=client_msg_id)

    async def disconnect(self) -> None:
        with self._active():
            await self.socket.close()

    async def reconnect(self) -> None:
        """Reconnect, then reload the open conversations: what was sent meanwhile is only
        on the server."""
        with self._active():
            await self.socket.connect()
            for conv_id in self.opened:
                await self.controller.load(conv_id)

    def messages(self, conv_id: str) -> list[ChatMessage]:
        return self.controller.messages(conv_id)

    async def close(self) -> None:
        with self._active():
            await self.socket.close()
            await self.rest.aclose()
        if self.inst is not None:
            self.inst.flush()
