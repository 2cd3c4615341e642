"""Helpers for testing code instrumented with tracekit (shipped for users, like structlog's).

``capture()`` swaps in an in-memory sink for the block and restores whatever configuration
was there before, so it nests inside an app that already called ``configure``.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from tracekit import _core
from tracekit._sinks import MemorySink

__all__ = ["CapturedEvents", "capture"]


class CapturedEvents(list[dict[str, Any]]):
    """The events emitted inside :func:`capture`, in emission order."""

    def filter(self, **match: Any) -> list[dict[str, Any]]:
        """Events whose keys equal every given value, e.g. ``filter(stage="REST")``."""
        return [e for e in self if all(e.get(k) == v for k, v in match.items())]

    def hops(self) -> list[str]:
        """``stage.action`` of every message event, in order (meta events left out)."""
        return [f"{e['stage']}.{e['action']}" for e in self if e["stage"] != "TRACEKIT"]


@contextmanager
def capture(
    *, service: str = "test", source: str = "test-1", **options: Any
) -> Iterator[CapturedEvents]:
    """Capture emitted events in memory for the block.

    ``options`` are :func:`tracekit.configure`'s (``otel=``, ``redact=``, ``sample=``...).
    """
    events = CapturedEvents()
    sink = _Capture(events)
    config = _core.Config(
        service=service,
        source=source,
        actor=options.pop("actor", service),
        sink=sink,
        otel=options.pop("otel", False),
        redact=_redact_keys(options.pop("redact", True)),
        sample=options.pop("sample", 1.0),
        processors=tuple(options.pop("processors", ())),
    )
    if options:
        raise TypeError(f"capture() got unexpected options: {', '.join(sorted(options))}")
    previous = _core._swap(_core._Emitter(config, sink))
    try:
        yield events
    finally:
        _core._swap(previous)


def _redact_keys(redact: Any) -> frozenset[str]:
    from tracekit.schema import TEXT_KEYS

    if redact is True:
        return TEXT_KEYS
    if redact is False:
        return frozenset()
    return frozenset(redact)


class _Capture(MemorySink):
    def __init__(self, events: CapturedEvents) -> None:
        super().__init__()
        self.events = events
