"""End to end on loopback: real uvicorn server, SQLite file, WebSocket and REST clients."""

from __future__ import annotations

import asyncio
import sqlite3
import uuid

import httpx
from chat_helpers import Chat, hops, until

import tracekit
from tracekit.chat.client import ChatMessage
from tracekit.schema import trace_id_from_uuid
from tracekit.testing import capture


def _ids(messages: list[ChatMessage]) -> list[str | None]:
    return [m.id for m in messages]


async def test_optimistic_message_appears_at_once_then_the_canonical_replaces_it(
    chat: Chat,
) -> None:
    u1 = await chat.client("u1")
    shown: list[list[ChatMessage]] = []
    u1.controller.listeners.append(lambda conv, msgs: shown.append(msgs))
    cmid = str(uuid.uuid4())

    sent = await u1.send("c1", "hello", client_msg_id=cmid)

    # first redraw: the optimistic copy, before any server answer
    assert [(m.client_msg_id, m.id, m.pending) for m in shown[0]] == [(cmid, None, True)]
    # last: the canonical message in its place, not next to it
    assert [(m.client_msg_id, m.id, m.seq, m.pending) for m in shown[-1]] == [
        (cmid, "m1", 1, False)
    ]
    assert sent.id == "m1" and u1.messages("c1") == shown[-1]
    tid = trace_id_from_uuid(cmid)
    assert hops(chat.events("u1"), tid) == ["CTRL.send", "REST.request", "REST.response"]
    response = [e for e in chat.events("u1") if e["action"] == "response"]
    assert [(e["msg_id"], e["conv_id"], e["actor"]) for e in response] == [("m1", "c1", "u1")]


async def test_recipient_gets_the_message_over_the_websocket_without_a_refresh(
    chat: Chat,
) -> None:
    u1, u2, u3 = [await chat.client(u) for u in ("u1", "u2", "u3")]
    fetches_before = sum(e["action"] == "fetch_start" for e in chat.events("u2"))
    sent = await u1.send("c1", "hi all")
    tid = sent.trace_id

    await until(lambda: sent.id in _ids(u2.messages("c1")) and sent.id in _ids(u3.messages("c1")))

    assert sum(e["action"] == "fetch_start" for e in chat.events("u2")) == fetches_before
    for user in ("u2", "u3"):
        assert hops(chat.events(user), tid) == ["WS-RECV.receive", "REPO.add", "CTRL.add"]
        assert {
            (e["actor"], e["msg_id"], e["conv_id"])
            for e in chat.events(user)
            if e.get("trace_id") == tid
        } == {(user, "m1", "c1")}
    server = [e for e in chat.server_events if e.get("trace_id") == tid]
    assert [(e["stage"], e["action"], e.get("peer")) for e in server] == [
        ("REST", "persist", None),
        ("WS-BROADCAST", "start", None),
        ("WS-BROADCAST", "deliver", "u2"),
        ("WS-BROADCAST", "deliver", "u3"),
    ] or [(e["stage"], e["action"], e.get("peer")) for e in server] == [
        ("REST", "persist", None),
        ("WS-BROADCAST", "start", None),
        ("WS-BROADCAST", "deliver", "u3"),
        ("WS-BROADCAST", "deliver", "u2"),
    ]
    # the sender is not a recipient of its own broadcast
    assert server[1]["recipients"] == ["u2", "u3"]
    assert {e["actor"] for e in server} == {"server"}
    assert hops(chat.events("u1"), tid) == ["CTRL.send", "REST.request", "REST.response"]


async def test_no_duplicates_even_when_a_frame_arrives_twice(chat: Chat) -> None:
    u1, u2 = await chat.client("u1"), await chat.client("u2")
    cmids = [str(uuid.uuid4()) for _ in range(4)]
    twice = trace_id_from_uuid(cmids[1])
    chat.options.faults.duplicate.add((twice, "u2"))

    for i, cmid in enumerate(cmids):
        await u1.send("c2", f"m{i}", client_msg_id=cmid)
    await until(lambda: len(u2.socket.received) == 5)

    assert [m.client_msg_id for m in u2.messages("c2")] == cmids
    assert [m.client_msg_id for m in u1.messages("c2")] == cmids
    assert hops(chat.events("u2"), twice) == [
        "WS-RECV.receive",
        "REPO.add",
        "CTRL.add",
        "WS-RECV.receive",
    ]
    assert [m.client_msg_id for m in u2.repository.duplicates] == [cmids[1]]


async def test_rapid_messages_keep_their_order(chat: Chat) -> None:
    u1, u2, u3 = [await chat.client(u) for u in ("u1", "u2", "u3")]
    # two senders firing without waiting for answers: the outbox keeps each one's order,
    # the server's per-conversation seq is the order everyone sees
    sends = [u.send("c1", f"{u.user}-{i}") for i in range(8) for u in (u1, u2)]
    await asyncio.gather(*sends)
    await until(lambda: len(u3.messages("c1")) == 16)

    seqs = [m.seq for m in u3.messages("c1")]
    assert seqs == list(range(1, 17))
    # each sender's messages in the order it sent them
    for sender in ("u1", "u2"):
        texts = [m.text for m in u3.messages("c1") if m.sender == sender]
        assert texts == [f"{sender}-{i}" for i in range(8)]
    # the recipient's store received them in seq order (CTRL.add log order)
    by_trace = {m.trace_id: m.seq for m in u3.messages("c1")}
    added = [
        by_trace[e["trace_id"]]
        for e in chat.events("u3")
        if e["action"] == "add" and e["stage"] == "CTRL"
    ]
    assert added == list(range(1, 17))
    assert [m.seq for m in u1.messages("c1")] == list(range(1, 17))


async def test_messages_survive_a_history_reload(chat: Chat) -> None:
    u1, u2 = await chat.client("u1"), await chat.client("u2")
    for i in range(3):
        await u1.send("c2", f"m{i}")
    await until(lambda: len(u2.messages("c2")) == 3)
    before = u2.messages("c2")

    after = await u2.open("c2")

    assert after == before and _ids(after) == ["m1", "m2", "m3"]
    fetch = [e for e in chat.events("u2") if e["stage"] == "REST"][-2:]
    assert [(e["action"], e["conv_id"], e["actor"]) for e in fetch] == [
        ("fetch_start", "c2", "u2"),
        ("fetch_end", "c2", "u2"),
    ]
    assert (fetch[1]["count"], fetch[1]["added"]) == (3, 0)
    # and a client that starts afresh (another device) gets the same from the database
    fresh = await chat.client("u2", conversations=["c2"])
    assert _ids(fresh.messages("c2")) == ["m1", "m2", "m3"]
    rows = sqlite3.connect(chat.db_path).execute("SELECT id, seq FROM messages ORDER BY seq")
    assert list(rows) == [("m1", 1), ("m2", 2), ("m3", 3)]


async def _race(chat: Chat, behaviour: str) -> tuple[list[str], list[str]]:
    """u2 reloads c1 (page takes 0.4 s); u1 sends two messages meanwhile, then one after."""
    u1, u2 = await chat.client("u1"), await chat.client("u2", behaviour)  # type: ignore[arg-type]
    await u1.send("c1", "before")
    await until(lambda: len(u2.messages("c1")) == 1)
    chat.options.history_latency = 0.4
    reads = chat.options.history_reads
    reload = asyncio.create_task(u2.open("c1"))
    await until(lambda: chat.options.history_reads > reads)  # the page is on its way
    during = [(await u1.send("c1", f"during {i}")).trace_id for i in range(2)]
    await until(lambda: len(u2.socket.received) == 3)
    await reload
    chat.options.history_latency = 0.0
    after = (await u1.send("c1", "after")).trace_id
    await until(lambda: len(u2.socket.received) == 4)
    return during, [after]


async def test_race_bug_client_loses_exactly_the_messages_that_arrive_during_its_reload(
    chat: Chat,
) -> None:
    during, after = await _race(chat, "race-bug")
    u2 = chat.clients[1]

    # ground truth: the controller dropped exactly those, and the UI does not show them
    assert [m.trace_id for m in u2.controller.dropped] == during
    assert [m.text for m in u2.messages("c1")] == ["before", "after"]
    # the events say the same: received and stored, never shown
    events = chat.events("u2")
    for tid in during:
        assert hops(events, tid) == ["WS-RECV.receive", "REPO.add"]
    assert hops(events, after[0]) == ["WS-RECV.receive", "REPO.add", "CTRL.add"]
    # ... inside the history fetch window, in time and in log order
    start, end = [e for e in events if e["stage"] == "REST" and e["conv_id"] == "c1"][-2:]
    assert (start["action"], end["action"]) == ("fetch_start", "fetch_end")
    receives = [e for e in events if e["action"] == "receive" and e["trace_id"] in during]
    for e in receives:
        assert start["timestamp"] < e["timestamp"] < end["timestamp"]
        assert start["seq"] < e["seq"] < end["seq"]
    # "they only appear after a refresh"
    await u2.open("c1")
    assert [m.text for m in u2.messages("c1")] == ["before", "during 0", "during 1", "after"]


async def test_fixed_client_loses_nothing_in_the_same_race(chat: Chat) -> None:
    during, after = await _race(chat, "fixed")
    u2 = chat.clients[1]

    assert u2.controller.dropped == []
    assert [m.text for m in u2.messages("c1")] == ["before", "during 0", "during 1", "after"]
    for tid in [*during, *after]:
        assert hops(chat.events("u2"), tid) == ["WS-RECV.receive", "REPO.add", "CTRL.add"]
    assert [t for t, _ in u2.socket.races] == during


async def test_post_is_idempotent_on_the_client_message_id(chat: Chat) -> None:
    u2 = await chat.client("u2")
    cmid = str(uuid.uuid4())
    body = {"client_msg_id": cmid, "sender": "u1", "text": "once"}
    async with httpx.AsyncClient(base_url=chat.server.base_url) as http:
        first = await http.post("/conversations/c2/messages", json=body)
        retry = await http.post("/conversations/c2/messages", json=body)
        page = (await http.get("/conversations/c2/messages")).json()

    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json()["message"] == retry.json()["message"]
    assert [m["client_msg_id"] for m in page["messages"]] == [cmid]
    await until(lambda: len(u2.socket.received) == 1)
    await asyncio.sleep(0.1)
    assert u2.socket.received == [trace_id_from_uuid(cmid)]  # broadcast once
    persist = [e for e in chat.server_events if e["action"] == "persist"]
    assert [(e["msg_id"], e["created"]) for e in persist] == [("m1", True), ("m1", False)]
    assert sum(e["action"] == "start" for e in chat.server_events) == 1


class _LoseFirstResponse(httpx.AsyncBaseTransport):
    """Delivers the first POST to the server, then loses its response."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.lost = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        if request.method == "POST" and self.lost == 0:
            self.lost += 1
            await response.aread()
            raise httpx.ReadError("connection reset", request=request)
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


async def test_client_retry_after_a_lost_response_makes_one_message(chat: Chat) -> None:
    from tracekit.chat.client import RestClient

    transport = _LoseFirstResponse()
    rest = RestClient(chat.server.base_url, "u1", transport=transport)
    cmid = str(uuid.uuid4())
    try:
        with capture() as events, tracekit.message(cmid, conv_id="c2"):
            msg = await rest.post_message("c2", cmid, "retried")
    finally:
        await rest.aclose()
    assert (transport.lost, msg.id, msg.client_msg_id) == (1, "m1", cmid)
    # one REST.request hop that took two attempts
    assert [(e["action"], e["attempts"], e["msg_id"]) for e in events] == [("request", 2, "m1")]
    rows = sqlite3.connect(chat.db_path).execute("SELECT client_msg_id FROM messages")
    assert list(rows) == [(cmid,)]
