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

__all__ = [
    "JSON_OPTIONS",
    "REDACTED",
    "Processor",
    "RedactText",
    "exception_text",
    "json_default",
    "render_json",
    "safe_text",
    "spellings",
]

EventDict: TypeAlias = MutableMapping[str, Any]
#: structlog's processor signature.
Processor: TypeAlias = Callable[[Any, str, EventDict], EventDict]

REDACTED = "[redacted]"


#: Nesting past this depth under a text-bearing container is written as REDACTED whole
#: (a cycle, or a structure too deep to walk, must not leak text).
_REDACT_DEPTH = 32
_CONTAINERS = (dict, list, tuple)


class Cut(str):
    """Text written in place of a value redaction could not walk (a cycle, nesting past
    ``_REDACT_DEPTH``): the emitter lists its field under ``unserialisable``."""

    __slots__ = ()


def _folded(key: str) -> str:
    """A key as matched: case and ``_``/``-`` separators ignored (``messageText``,
    ``MESSAGE_TEXT`` and ``message-text`` are ``message_text``)."""
    return key.lower().replace("_", "").replace("-", "")


def spellings(keys: Iterable[str]) -> frozenset[str]:
    """The usual spellings of ``keys`` (``text``: ``Text``, ``TEXT``; ``message_text``:
    ``messageText``, ``MessageText``, ``MESSAGE_TEXT``...): what the emitter's one C-level
    check over an event's top-level keys looks for."""
    out: set[str] = set()
    for key in keys:
        parts = key.lower().split("_")
        camel = parts[0] + "".join(p.capitalize() for p in parts[1:])
        for form in (key, key.lower(), key.upper(), key.capitalize(), key.title(), camel):
            out.add(form)
            out.add(form[:1].upper() + form[1:])
    return frozenset(out)


class RedactText:
    """Replace message text (``text``, ``content``, ``body``, ...) unless the app opted in.

    Keys match whatever their case and separators (``Text``, ``CONTENT``, ``messageText``),
    at the top level and inside dict,
    list and tuple values (``payload={"text": ...}``, ``messages=[{"content": ...}]``). The
    top-level event dict is changed in place; a nested value holding text is replaced by a
    redacted copy (the app's own objects are never modified)."""

    __slots__ = ("keys",)

    def __init__(self, keys: Iterable[str] = TEXT_KEYS) -> None:
        self.keys = frozenset(map(_folded, keys))

    def __call__(self, _logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        self.apply(event_dict)
        return event_dict

    def apply(self, event_dict: EventDict) -> bool:
        """Redact in place; True when a value was cut (a cycle, or nesting too deep to walk:
        written as :class:`Cut` text, which the emitter lists under ``unserialisable``)."""
        keys = self.keys
        cut: list[bool] = []
        for key, value in list(event_dict.items()):
            if isinstance(key, str) and _folded(key) in keys:
                if value is not None:
                    event_dict[key] = REDACTED
            elif isinstance(value, _CONTAINERS):
                fixed = self._nested(value, 1, set(), cut)
                if fixed is not value:
                    event_dict[key] = fixed
        return bool(cut)

    def _nested(self, value: Any, depth: int, path: set[int], cut: list[bool]) -> Any:
        """``value`` itself when it holds no text key, else a redacted copy. A cycle is
        written ``"<cycle>"`` (as the renderer writes one), nesting past ``_REDACT_DEPTH`` as
        REDACTED: neither is walked, so neither may leak text."""
        if depth > _REDACT_DEPTH:
            cut.append(True)
            return Cut(REDACTED)
        if id(value) in path:
            cut.append(True)
            return Cut("<cycle>")
        path.add(id(value))
        try:
            if isinstance(value, dict):
                out: dict[Any, Any] | None = None
                for key, item in value.items():
                    if isinstance(key, str) and _folded(key) in self.keys:
                        fixed = REDACTED if item is not None else None
                    elif isinstance(item, _CONTAINERS):
                        fixed = self._nested(item, depth + 1, path, cut)
                    else:
                        continue
                    if fixed is not item:
                        if out is None:
                            out = dict(value)
                        out[key] = fixed
                return value if out is None else out
            items = [
                self._nested(v, depth + 1, path, cut) if isinstance(v, _CONTAINERS) else v
                for v in value
            ]
        finally:
            path.discard(id(value))
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items


def safe_text(value: object) -> str:
    """``str(value)``; a value whose ``__str__`` raises (or returns no string) gets a
    description instead."""
    try:
        text = str(value)
        if isinstance(text, str):
            return text
    except Exception:
        pass
    try:
        name = type(value).__qualname__
    except Exception:
        name = "?"
    return f"<{name} object, str() failed>"


def exception_text(exc: BaseException) -> str:
    """``"{type}: {message}"`` of an exception, even when its ``__str__`` raises."""
    return f"{type(exc).__name__}: {safe_text(exc)}"


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
