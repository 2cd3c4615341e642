"""WebSocket fan-out: one ``WS-BROADCAST.deliver`` event (and span) per recipient socket write.

Works with any async ``send(payload)`` callable (Starlette/FastAPI ``WebSocket.send_json``, a
``websockets`` connection wrapped in :func:`json_sender`, a queue's ``put``...). Each recipient
gets its own copy of the payload with the trace context in its ``_trace`` envelope, injected
inside the deliver stage so the recipient's spans hang under that delivery.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import tracekit
from tracekit.propagation import (
    CONV_HEADER,
    ENVELOPE_KEY,
    MSG_HEADER,
    TRACE_HEADER,
    TRACEPARENT,
)

if TYPE_CHECKING:
    from starlette.websockets import WebSocket

__all__ = ["Send", "fanout", "json_sender", "starlette_sender"]

#: What fan-out writes through: takes one JSON-able payload dict.
Send = Callable[[dict[str, Any]], Awaitable[object]]


def starlette_sender(websocket: WebSocket) -> Send:
    """``send(payload)`` for a Starlette/FastAPI WebSocket (JSON text frames)."""

    async def send(payload: dict[str, Any]) -> None:
        await websocket.send_text(json.dumps(payload, separators=(",", ":")))

    return send


def json_sender(send_text: Callable[[str], Awaitable[object]]) -> Send:
    """``send(payload)`` around any ``send(text)`` coroutine (e.g. ``websockets``' ``send``)."""

    async def send(payload: dict[str, Any]) -> None:
        await send_text(json.dumps(payload, separators=(",", ":")))

    return send


async def deliver(peer: str, send: Send, payload: Mapping[str, Any]) -> BaseException | None:
    """Write ``payload`` to one recipient inside a ``WS-BROADCAST.deliver`` stage.

    Returns the send's exception instead of raising it: one broken socket must not stop the
    others (the stage records it as ``status: error``).
    """
    try:
        with tracekit.stage("WS-BROADCAST", "deliver", peer=peer):
            await send(_with_envelope(payload))
    except Exception as exc:
        return exc
    return None


_KEYS = (TRACEPARENT, TRACE_HEADER, CONV_HEADER, MSG_HEADER)


def _with_envelope(payload: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``payload`` whose ``_trace`` envelope is its own (the payload's may be shared:
    a received frame re-broadcast, or one already injected) and carries the current message's
    context: the trace keys of the payload's envelope are replaced, its other keys kept."""
    copy = dict(payload)
    envelope = copy.get(ENVELOPE_KEY)
    if isinstance(envelope, Mapping):
        if tracekit.current() is None:
            copy[ENVELOPE_KEY] = dict(envelope)
            return copy
        copy[ENVELOPE_KEY] = {k: v for k, v in envelope.items() if k not in _KEYS}
    tracekit.inject(copy, tracekit.envelope_setter)
    return copy


async def fanout(
    payload: Mapping[str, Any],
    targets: Iterable[tuple[str, Send]] | Mapping[str, Send],
    *,
    recipients: Sequence[str] | None = None,
    start: bool = True,
    concurrent: bool = True,
) -> dict[str, BaseException | None]:
    """Deliver ``payload`` to every ``(peer, send)`` target of the current message.

    ``recipients`` is who is expected to get the message (default: the targets' peers); it is
    written on the ``WS-BROADCAST.start`` event (unless ``start=False``), so a recipient with no
    open socket shows up as a missing delivery rather than vanishing from the record. Returns
    each peer's send error (None when sent). Never raises the sends' errors.
    """
    pairs = list(targets.items()) if isinstance(targets, Mapping) else list(targets)
    if start:
        expected = list(recipients) if recipients is not None else [p for p, _ in pairs]
        tracekit.emit("WS-BROADCAST", "start", recipients=expected)
    results: dict[str, BaseException | None] = {}
    if concurrent and len(pairs) > 1:
        outcomes = await asyncio.gather(*(deliver(peer, send, payload) for peer, send in pairs))
        for (peer, _), outcome in zip(pairs, outcomes, strict=True):
            results[peer] = outcome if results.get(peer) is None else results[peer]
    else:
        for peer, send in pairs:
            outcome = await deliver(peer, send, payload)
            results[peer] = outcome if results.get(peer) is None else results[peer]
    return results
