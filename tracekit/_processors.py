"""The event pipeline: plain structlog-style processors behind one alias, then the renderer.

A processor is ``(logger, method_name, event_dict) -> event_dict``, exactly structlog's
contract, so any structlog processor can be put in ``configure(processors=[...])``; raising
``structlog.DropEvent`` filters an event out (before it takes a ``seq``, so no false gap).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, MutableMapping
from typing import Any, TypeAlias

import orjson

from tracekit.schema import TEXT_KEYS

__all__ = ["JSON_OPTIONS", "REDACTED", "Processor", "RedactText", "json_default", "render_json"]

EventDict: TypeAlias = MutableMapping[str, Any]
#: structlog's processor signature.
Processor: TypeAlias = Callable[[Any, str, EventDict], EventDict]

REDACTED = "[redacted]"


class RedactText:
    """Replace message text (``text``, ``content``, ``body``, ...) unless the app opted in."""

    __slots__ = ("keys",)

    def __init__(self, keys: Iterable[str] = TEXT_KEYS) -> None:
        self.keys = frozenset(keys)

    def __call__(self, _logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        # The usual event has no text key: one C-level check over our few keys, no set built.
        if event_dict.keys().isdisjoint(self.keys):
            return event_dict
        for key in self.keys.intersection(event_dict):
            if event_dict[key] is not None:
                event_dict[key] = REDACTED
        return event_dict


def json_default(value: object) -> str:
    """orjson's ``default``: never fail on an odd field value, its repr is better than a lost
    event."""
    return repr(value)


#: orjson options of an event line (``orjson.dumps(event, default=json_default,
#: option=JSON_OPTIONS)``, which the emitter calls inline).
JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def render_json(event_dict: EventDict) -> bytes:
    """One JSON line, as structlog's JSONRenderer with orjson would write it."""
    return orjson.dumps(event_dict, default=json_default, option=JSON_OPTIONS)
