"""Faults the server can inject into its WebSocket deliveries, keyed by (trace id, recipient).

The load generator chooses them before the run (message ids are known in advance: they are
the client message ids it will send), the server applies them inside ``WS-BROADCAST.deliver``,
and ``applied`` records what really happened for the ground truth:

- ``drop``: the frame is "lost on the wire": the deliver event is written, the socket write
  is skipped, so the recipient never emits ``WS-RECV.receive``;
- ``duplicate``: the frame is written twice (``WS-RECV.receive`` twice);
- ``delay``: the write waits that many seconds (the deliver -> receive hop is that slow).
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass, field
from typing import Any

from tracekit.integrations.fanout import Send

__all__ = ["DeliveryFaults"]


@dataclass
class DeliveryFaults:
    drop: set[tuple[str, str]] = field(default_factory=set)
    duplicate: set[tuple[str, str]] = field(default_factory=set)
    delay: dict[tuple[str, str], float] = field(default_factory=dict)
    applied: list[dict[str, Any]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def __bool__(self) -> bool:
        return bool(self.drop or self.duplicate or self.delay)

    def wrap(self, trace_id: str, peer: str, send: Send) -> Send:
        """``send`` with this (message, recipient)'s fault applied, if it has one."""
        key = (trace_id, peer)
        if key in self.drop:

            async def dropped(payload: dict[str, Any]) -> None:
                self._note("drop", trace_id, peer)

            return dropped
        if key in self.duplicate:

            async def twice(payload: dict[str, Any]) -> None:
                await send(payload)
                await send(payload)
                self._note("duplicate", trace_id, peer)

            return twice
        if key in self.delay:
            seconds = self.delay[key]

            async def late(payload: dict[str, Any]) -> None:
                await asyncio.sleep(seconds)
                await send(payload)
                self._note("delay", trace_id, peer, delay_s=seconds)

            return late
        return send

    def _note(self, kind: str, trace_id: str, peer: str, **extra: Any) -> None:
        with self._lock:
            self.applied.append({"kind": kind, "trace_id": trace_id, "recipient": peer, **extra})
