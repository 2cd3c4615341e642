"""``websockets`` (or any frame source): extract the message context on receive.

``async for received in iter_received(connection)`` yields each frame decoded, with the
context from its ``_trace`` envelope. Then either ``with receiving(received, actor="u2"):``
(binds the message and runs the block as the ``WS-RECV.receive`` stage: later stages nest
under its span) or ``with bound(received, actor="u2"):`` (binds only; mark the receive
yourself, e.g. a short stage, so the log's order is the pipeline's: a stage's event is
written when it ends).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterable, AsyncIterator, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from typing import Any

import tracekit
from tracekit._context import MessageContext

__all__ = ["Received", "bound", "decode", "iter_received", "receiving"]


@dataclass(frozen=True, slots=True)
class Received:
    """One frame: ``payload`` (the decoded JSON, None if not JSON) and its message context."""

    raw: str | bytes
    payload: Any
    context: MessageContext | None


def decode(raw: str | bytes) -> Received:
    """Decode a JSON frame and extract its envelope; never raises.

    A frame that is not JSON, or too deeply nested for the decoder (``RecursionError``: a
    hostile peer's ``[[[[...``), has ``payload`` None and no context; ``raw`` is as received.
    """
    try:
        payload = json.loads(raw)
    except Exception:
        return Received(raw, None, None)
    ctx = tracekit.extract(payload, tracekit.envelope_getter) if isinstance(payload, dict) else None
    return Received(raw, payload, ctx)


async def iter_received(frames: AsyncIterable[str | bytes]) -> AsyncIterator[Received]:
    """Each frame of ``frames`` (e.g. a ``websockets`` connection) as :class:`Received`."""
    async for raw in frames:
        yield decode(raw)


@contextmanager
def bound(
    received: Received,
    *,
    actor: str | None = None,
    conv_id: str | None = None,
    msg_id: str | None = None,
) -> Iterator[MessageContext | None]:
    """Bind the frame's message for the block (nothing when the frame carries none)."""
    if received.context is None:
        yield None
        return
    with tracekit.message(received.context, conv_id=conv_id, msg_id=msg_id, actor=actor) as ctx:
        yield ctx


@contextmanager
def receiving(
    received: Received,
    *,
    actor: str | None = None,
    conv_id: str | None = None,
    msg_id: str | None = None,
    **fields: Any,
) -> Iterator[None]:
    """Bind the frame's message (when it carries one) and run the block as ``WS-RECV.receive``.

    Frames without a trace context are handled without a stage: they are not message hops.
    """
    with ExitStack() as stack:
        if received.context is not None:
            stack.enter_context(
                tracekit.message(received.context, conv_id=conv_id, msg_id=msg_id, actor=actor)
            )
            stack.enter_context(tracekit.stage("WS-RECV", "receive", **fields))
        yield
