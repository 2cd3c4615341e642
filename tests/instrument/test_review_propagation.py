"""Review D: carrying a message's context (inject/extract, the integrations, message/bind ids).

Each test fails on the code before its fix; the integration tests use real parts (uvicorn on
127.0.0.1, httpx, the OpenTelemetry SDK).
"""

from __future__ import annotations

import asyncio
import gc
import json
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI, Request
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracekit
from tracekit.chat.serving import ServerThread
from tracekit.integrations.fanout import fanout
from tracekit.integrations.fastapi import MessageContextMiddleware, message_context
from tracekit.integrations.httpx import traced_client
from tracekit.integrations.websockets import Received, decode
from tracekit.propagation import ENVELOPE_KEY, MAX_ID_LENGTH
from tracekit.schema import derived_trace_id
from tracekit.testing import capture

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
UID = "4bf92f35-77b3-4da6-a3ce-929d0e0e4736"
SENDER_SPAN = "00f067aa0ba902b7"
TP = f"00-{TID}-{SENDER_SPAN}-01"


# --- inject: ids that are no valid header value are encoded, and read back exactly ---------

HOSTILE_IDS = ["c1\nX-Evil: 1", "c\x00", "c1 ", " c1", "café-🙂", "m-ü", "50%", "a b\tc", "%41"]


@pytest.mark.parametrize(
    ("given", "carried"),
    [
        ("c1", "c1"),
        ("tmp-1_x.y~z", "tmp-1_x.y~z"),
        (UID, UID),
        ("c1\nX-Evil: 1", "c1%0AX-Evil%3A%201"),
        ("c\x00", "c%00"),
        ("c1 ", "c1%20"),
        ("café-🙂", "caf%C3%A9-%F0%9F%99%82"),
        ("50%", "50%25"),
    ],
)
def test_inject_percent_encodes_ids_outside_the_token_characters(given: str, carried: str) -> None:
    headers: dict[str, str] = {}
    with tracekit.message(TID, conv_id=given, msg_id=given):
        tracekit.inject(headers)
    assert headers["tracekit-conv-id"] == carried
    assert headers["tracekit-msg-id"] == carried
    ctx = tracekit.extract(headers)
    assert ctx is not None and (ctx.conv_id, ctx.msg_id) == (given, given)


def test_an_id_that_cannot_be_carried_is_left_out() -> None:
    headers: dict[str, str] = {}
    with tracekit.message(TID, conv_id="x" * (MAX_ID_LENGTH + 1), msg_id="bad\udc80"):
        tracekit.inject(headers)
    assert headers == {"traceparent": f"00-{TID}-{TID[16:]}-01", "tracekit-trace-id": TID}
    headers = {}
    with tracekit.message(TID, conv_id="é" * (MAX_ID_LENGTH // 6 + 1), msg_id="x" * MAX_ID_LENGTH):
        tracekit.inject(headers)
    assert "tracekit-conv-id" not in headers  # 6 characters encoded per é: too long
    assert headers["tracekit-msg-id"] == "x" * MAX_ID_LENGTH


def test_extract_keeps_a_value_that_is_no_valid_encoding_as_received() -> None:
    ctx = tracekit.extract(
        {"tracekit-trace-id": TID, "tracekit-conv-id": "a%FFb%zz", "tracekit-msg-id": "%"}
    )
    assert ctx is not None and (ctx.conv_id, ctx.msg_id) == ("a%FFb%zz", "%")


def _echo_app() -> FastAPI:
    app = FastAPI()
    app.add_middleware(MessageContextMiddleware)

    @app.get("/ctx")
    async def ctx(request: Request) -> dict[str, Any]:
        got = message_context(request)
        current = tracekit.current()
        return {
            "trace_id": got.trace_id if got else None,
            "conv_id": got.conv_id if got else None,
            "msg_id": got.msg_id if got else None,
            "parent": got.parent_span_id if got else None,
            "bound": current.conv_id if current else None,
        }

    return app


async def test_any_id_goes_through_real_httpx_and_fastapi_unchanged() -> None:
    """The app's own request never fails because of tracekit's headers (h11 refused a newline,
    NUL or trailing space), and non-ASCII ids are not read back as latin-1 mojibake."""
    with ServerThread(_echo_app()) as server:
        async with traced_client(base_url=server.base_url) as client:
            for conv in HOSTILE_IDS:
                with tracekit.message(TID, conv_id=conv, msg_id=f"m-{conv}"):
                    r = await client.get("/ctx")
                assert r.status_code == 200
                assert r.json() == {
                    "trace_id": TID,
                    "conv_id": conv,
                    "msg_id": f"m-{conv}",
                    "parent": TID[16:],
                    "bound": conv,
                }


async def test_fastapi_reads_raw_utf8_ids_of_another_sender() -> None:
    # A sender that writes UTF-8 header bytes itself (no tracekit inject): read as UTF-8.
    headers = {"tracekit-trace-id": TID, "tracekit-conv-id": "café".encode()}
    with ServerThread(_echo_app()) as server:
        async with httpx.AsyncClient(base_url=server.base_url) as client:
            r = await client.get("/ctx", headers=headers)
    assert r.json()["conv_id"] == "café"


# --- dict_getter: bytes and multi-valued headers ---------------------------------------------


def test_dict_getter_reads_bytes_and_lists() -> None:
    carrier: dict[str, Any] = {
        "traceparent": [TP, "00-" + "1" * 32 + "-" + "2" * 16 + "-01"],
        "tracekit-trace-id": TID.encode(),
        "tracekit-conv-id": ("c1",),
        "tracekit-msg-id": "m-ü".encode(),
    }
    ctx = tracekit.extract(carrier)
    assert ctx is not None
    assert (ctx.trace_id, ctx.parent_span_id, ctx.conv_id, ctx.msg_id) == (
        TID,
        SENDER_SPAN,
        "c1",
        "m-ü",
    )
    assert tracekit.dict_getter({"k": b"caf\xe9"}, "k") == "café"  # latin-1 when not UTF-8
    assert tracekit.dict_getter({"k": []}, "k") is None
    assert tracekit.dict_getter({"k": [1]}, "k") is None


# --- extract: a valid traceparent is not discarded; W3C future versions -----------------------


@pytest.mark.parametrize(
    ("carrier", "expected"),
    [
        ({"tracekit-trace-id": "4bf92f35??", "traceparent": TP}, (TID, SENDER_SPAN)),
        ({"tracekit-trace-id": UID, "traceparent": TP}, (TID, SENDER_SPAN)),
        ({"tracekit-trace-id": UID.upper()}, (TID, None)),
        ({"tracekit-trace-id": f" {{{UID}}} "}, (TID, None)),
        ({"tracekit-trace-id": 42, "traceparent": TP}, (TID, SENDER_SPAN)),
        ({"traceparent": f"01-{TID}-{SENDER_SPAN}-01"}, (TID, SENDER_SPAN)),
        ({"traceparent": f"cc-{TID}-{SENDER_SPAN}-01-what-the-future-adds"}, (TID, SENDER_SPAN)),
        ({"traceparent": f"ff-{TID}-{SENDER_SPAN}-01"}, None),  # version ff is invalid
        ({"traceparent": f"00-{TID}-{SENDER_SPAN}-01-00"}, None),  # 00 has exactly 4 fields
        ({"traceparent": f"01-{TID}-{SENDER_SPAN}-01x"}, None),
        ({"tracekit-trace-id": "4bf92f35??"}, None),
    ],
)
def test_extract_uses_what_is_valid(
    carrier: dict[str, Any], expected: tuple[str, str | None] | None
) -> None:
    ctx = tracekit.extract(carrier)
    assert (ctx and (ctx.trace_id, ctx.parent_span_id)) == expected


def test_extract_survives_a_getter_that_raises_for_one_key() -> None:
    def getter(carrier: Any, key: str) -> str | None:
        if key == "tracekit-conv-id":
            raise KeyError(key)
        return tracekit.dict_getter(carrier, key)

    ctx = tracekit.extract({"traceparent": TP, "tracekit-msg-id": "m1"}, getter)
    assert ctx is not None and (ctx.trace_id, ctx.conv_id, ctx.msg_id) == (TID, None, "m1")


# --- websockets.decode: a too-deep frame ------------------------------------------------------


@pytest.mark.parametrize(
    "raw",
    ["[" * 100_000 + "]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000],
    ids=["str-arrays", "bytes-objects"],
)
def test_decode_of_a_too_deeply_nested_frame_is_no_json_and_no_context(raw: str | bytes) -> None:
    assert decode(raw) == Received(raw, None, None)


# --- fanout: each recipient its own envelope --------------------------------------------------


async def test_fanout_gives_each_recipient_its_own_envelope_and_leaves_the_payload_alone(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, _ = spans
    with capture(otel=provider) as events, tracekit.message(TID, conv_id="c1"):
        payload: dict[str, Any] = {"type": "message:created", ENVELOPE_KEY: {"app": "kept"}}
        tracekit.inject(payload, tracekit.envelope_setter)
        before = json.loads(json.dumps(payload))
        queues: dict[str, asyncio.Queue[dict[str, Any]]] = {
            u: asyncio.Queue() for u in ("u1", "u2", "u3")
        }
        await fanout(payload, {u: q.put for u, q in queues.items()})
    assert payload == before
    deliver_span = {e["peer"]: e["span_id"] for e in events if e["action"] == "deliver"}
    for peer, queue in queues.items():
        envelope = queue.get_nowait()[ENVELOPE_KEY]
        assert envelope == {
            "app": "kept",
            "traceparent": f"00-{TID}-{deliver_span[peer]}-01",
            "tracekit-trace-id": TID,
            "tracekit-conv-id": "c1",
        }


async def test_fanout_replaces_a_rebroadcast_frames_stale_trace_keys() -> None:
    other = "1" * 32
    received = {"n": 1, ENVELOPE_KEY: {"tracekit-trace-id": other, "tracekit-msg-id": "old"}}
    got: list[dict[str, Any]] = []

    async def send(payload: dict[str, Any]) -> None:
        got.append(payload)

    with capture(), tracekit.message(TID):
        await fanout(received, {"u2": send})
    (envelope,) = (p[ENVELOPE_KEY] for p in got)
    assert envelope == {"traceparent": f"00-{TID}-{TID[16:]}-01", "tracekit-trace-id": TID}
    assert received[ENVELOPE_KEY] == {"tracekit-trace-id": other, "tracekit-msg-id": "old"}


# --- message(): the remote parent survives a nested message() of the same trace --------------


def test_nested_message_of_the_same_trace_keeps_the_remote_parent(
    spans: tuple[TracerProvider, InMemorySpanExporter],
) -> None:
    provider, exporter = spans
    carrier = {"traceparent": TP, "tracekit-trace-id": TID}
    headers: dict[str, str] = {}
    with capture(otel=provider):
        with tracekit.message(tracekit.extract(carrier)):  # the middleware
            with tracekit.message(UID, conv_id="c1") as inner:  # the handler, same message
                with tracekit.stage("REST", "persist"):
                    pass
                tracekit.inject(headers)
    assert inner.parent_span_id == SENDER_SPAN
    (persist,) = exporter.get_finished_spans()
    assert persist.parent is not None and f"{persist.parent.span_id:016x}" == SENDER_SPAN
    assert headers["traceparent"] == TP


def test_a_nested_message_with_its_own_remote_parent_keeps_it() -> None:
    with tracekit.message(tracekit.extract({"traceparent": TP})):
        other = f"00-{TID}-{'a' * 16}-01"
        with tracekit.message(tracekit.extract({"traceparent": other})) as inner:
            assert inner.parent_span_id == "a" * 16


# --- trace ids: normalised the same way everywhere -------------------------------------------


@pytest.mark.parametrize(
    "given",
    [
        UID,
        UID.upper(),
        TID.upper(),
        f" {UID}\n",
        f"{{{UID}}}",
        f"urn:uuid:{UID}",
        UID.encode(),
        uuid.UUID(UID),
    ],
)
def test_message_normalises_near_valid_ids(given: Any) -> None:
    with capture() as events:
        with tracekit.message(given):
            tracekit.emit("CTRL", "send")
        stats = tracekit.stats()
    assert (events[0]["trace_id"], events[0].get("bad_trace_id")) == (TID, None)
    assert stats["bad_trace_ids"] == 0


@pytest.mark.parametrize("given", [UID, TID.upper(), f"{{{UID}}}", uuid.UUID(UID)])
def test_message_context_and_bind_normalise_trace_ids(
    given: Any, spans: tuple[TracerProvider, InMemorySpanExporter]
) -> None:
    provider, exporter = spans
    assert tracekit.MessageContext(trace_id=given).trace_id == TID
    headers: dict[str, str] = {}
    with capture(otel=provider) as events:
        with tracekit.message(tracekit.MessageContext(trace_id=given)):
            tracekit.emit("CTRL", "send")
            tracekit.inject(headers)
        with tracekit.bind(trace_id=given):
            tracekit.emit("CTRL", "add")
    assert [e["trace_id"] for e in events] == [TID, TID]
    assert [f"{s.context.trace_id:032x}" for s in exporter.get_finished_spans()] == [TID, TID]
    assert headers["tracekit-trace-id"] == TID


def test_message_context_and_bind_flag_an_id_that_is_no_trace_id() -> None:
    ctx = tracekit.MessageContext(trace_id="tmp-1")
    assert (ctx.trace_id, ctx.fields) == (derived_trace_id("tmp-1"), {"bad_trace_id": "tmp-1"})
    ctx = tracekit.MessageContext(trace_id="tmp-1", actor="u1")
    assert ctx.trace_id == derived_trace_id("u1\x1ftmp-1")
    with capture() as events:
        with tracekit.message(tracekit.MessageContext(trace_id="tmp-1", actor="u1")):
            tracekit.emit("CTRL", "send")
        with tracekit.bind(trace_id="tmp-2", actor="u2"):
            tracekit.emit("CTRL", "add")
        stats = tracekit.stats()
    assert [(e["trace_id"], e["bad_trace_id"]) for e in events] == [
        (derived_trace_id("u1\x1ftmp-1"), "tmp-1"),
        (derived_trace_id("u2\x1ftmp-2"), "tmp-2"),
    ]
    assert stats["bad_trace_ids"] == 2  # the two inside capture, counted once each


# --- message()/bind() exited in another context ----------------------------------------------


async def test_message_and_bind_exited_in_another_context_do_not_raise() -> None:
    """An async generator left by ``break`` is finalised by asyncio in a new task: the
    contextvar tokens of its message()/bind() cannot be reset there (ValueError before)."""
    errors: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    loop.set_exception_handler(lambda _loop, context: errors.append(context))

    async def frames() -> AsyncIterator[int]:
        with tracekit.message(TID, conv_id="c9"), tracekit.bind(actor="u9"):
            for i in range(3):
                yield i

    try:
        async for _ in frames():
            break
        gc.collect()
        await asyncio.sleep(0.05)
    finally:
        loop.set_exception_handler(None)
    assert errors == []


async def test_a_stage_span_finished_in_another_context_is_no_parent_and_logs_nothing(
    spans: tuple[TracerProvider, InMemorySpanExporter], caplog: pytest.LogCaptureFixture
) -> None:
    """The same with a stage: OpenTelemetry's detach failed there ("Failed to detach context",
    an ERROR with a traceback), and the ended span stayed current in the consumer's context,
    so its next stage nested under a finished span."""
    provider, exporter = spans

    async def frames() -> AsyncIterator[int]:
        async with tracekit.stage("WS-RECV", "receive"):
            for i in range(3):
                yield i

    with capture(otel=provider), tracekit.message(TID, conv_id="c9"):
        async for _ in frames():
            break
        gc.collect()
        await asyncio.sleep(0.05)
        with tracekit.stage("CTRL", "add"):
            pass
    got = {s.name: s for s in exporter.get_finished_spans()}
    receive, add = got["WS-RECV receive"], got["CTRL add"]
    assert add.parent is not None
    assert add.parent.span_id != receive.context.span_id
    assert f"{add.parent.span_id:016x}" == TID[16:]  # the message's own (phantom) parent
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == []


def test_message_and_bind_reset_normally_in_their_own_context() -> None:
    with tracekit.message(TID, conv_id="c1"), tracekit.bind(actor="u1"):
        with tracekit.message(conv_id="c2"), tracekit.bind(actor="u2"):
            current = tracekit.current()
            assert current is not None and current.conv_id == "c2"
        current = tracekit.current()
        assert current is not None and current.conv_id == "c1"
    assert tracekit.current() is None


@pytest.mark.parametrize("carrier", [None, 42, "traceparent", [TP], {("traceparent",): TP}])
def test_extract_of_a_carrier_that_is_no_mapping_is_none(carrier: Any) -> None:
    assert tracekit.extract(carrier) is None
    assert tracekit.extract(carrier, tracekit.envelope_getter) is None
