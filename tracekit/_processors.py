"""The event pipeline: plain structlog-style processors behind one alias, then the renderer.

A processor is ``(logger, method_name, event_dict) -> event_dict``, exactly structlog's
contract, so any structlog processor can be put in ``configure(processors=[...])``; raising
``structlog.DropEvent`` filters an event out (before it takes a ``seq``, so no false gap).
"""

from __future__ import annotations

import dataclasses
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
    "namedtuple_fields",
    "render_json",
    "safe_text",
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


#: Folded key spellings (see :func:`_folded`) cached per RedactText, at most this many: an
#: app with endless distinct keys still gets them checked, only not cached.
_KEY_CACHE = 4096
_KELVIN = "\u212a".encode()  # the one non-ASCII character str.lower() makes ASCII ("k")


def _is_dataclass_instance(value: object) -> bool:
    return hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type)


def _dataclass_fields(value: Any) -> dict[str, Any]:
    """A dataclass instance as orjson writes it: its ``__dict__`` when it has one (attributes
    beyond the fields too, e.g. set in ``__post_init__``), else its fields (``__slots__``); in
    both, names starting with ``_`` left out. A field(init=False) never set is not written."""
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return {k: v for k, v in attrs.items() if not (type(k) is str and k.startswith("_"))}
    missing = object()
    got = ((f.name, getattr(value, f.name, missing)) for f in dataclasses.fields(value))
    return {name: v for name, v in got if v is not missing and not name.startswith("_")}


_SCALAR_KEY_TEXT: dict[object, str] = {True: "true", False: "false", None: "null"}


def key_text(key: object) -> str:
    """A non-str dict key as it is written: as orjson (``OPT_NON_STR_KEYS``) writes it (an
    enum as its value, a date in ISO form, ``True`` as ``true``...), or as its repr (what the
    slow path writes for a key orjson rejects: a tuple, a frozenset, an int past 64 bits)."""
    if type(key) is int:
        return str(key)
    if type(key) is bool or key is None:
        return _SCALAR_KEY_TEXT[key]
    try:
        written: dict[str, None] = orjson.loads(
            orjson.dumps({key: None}, option=orjson.OPT_NON_STR_KEYS)
        )
        return next(iter(written))
    except Exception:
        pass
    try:
        text = repr(key)
    except Exception:
        return ""
    return text if isinstance(text, str) else ""


def namedtuple_fields(value: tuple[Any, ...]) -> dict[Any, Any] | None:
    """A namedtuple's fields as a dict (how tracekit writes a namedtuple: a JSON object of its
    fields, whatever it holds), or None for a plain tuple."""
    names = getattr(type(value), "_fields", None)
    if not isinstance(names, tuple) or len(names) != len(value):
        return None
    return dict(zip(names, value, strict=True))


class RedactText:
    """Replace message text (``text``, ``content``, ``body``, ...) unless the app opted in.

    Keys match whatever their case and separators (``Text``, ``CONTENT``, ``messageText``,
    ``message-text``, ``msgtext``), at the top level and inside dict, list, tuple, namedtuple
    and dataclass values (``payload={"text": ...}``, ``messages=[{"content": ...}]``). The
    top-level event dict is changed in place; a nested value holding text is replaced by a
    redacted copy (the app's own objects are never modified): a dict for a dict, namedtuple
    or dataclass (as they are written: JSON objects of their fields), a list for a list or
    tuple."""

    __slots__ = ("_plain", "_seen", "keys", "patterns")

    def __init__(self, keys: Iterable[str] = TEXT_KEYS) -> None:
        self.keys = frozenset(map(_folded, keys))
        # str key -> whether it is a text key (what _folded(key) in keys says), and the str
        # keys known plain (most events' top-level keys are all in it: one C-level subset
        # test); at most _KEY_CACHE of each.
        self._seen: dict[str, bool] = {}
        self._plain: set[str] = set()
        # What a text key looks like in a rendered line once lowered and stripped of "_" and
        # "-" (see may_hold_text); None if some key cannot be found that way (it needs JSON
        # escapes or is not ASCII): then every nested value is walked.
        patterns: list[bytes] | None = []
        for key in self.keys:
            if not key or not key.isascii() or not key.isprintable() or '"' in key or "\\" in key:
                patterns = None
                break
            patterns.append(f'"{key}":'.encode())  # type: ignore[union-attr]
        self.patterns: tuple[bytes, ...] | None = None if patterns is None else tuple(patterns)

    def __call__(self, _logger: Any, _method: str, event_dict: EventDict) -> EventDict:
        self.apply(event_dict)
        return event_dict

    def is_text_key(self, key: object) -> bool:
        """``key`` folded (case, ``_``/``-`` ignored) is a text key; remembered for str keys."""
        if type(key) is str:
            hit = self._seen.get(key)
            if hit is None:
                hit = _folded(key) in self.keys
                if len(self._seen) < _KEY_CACHE:
                    self._seen[key] = hit
                    if not hit:
                        self._plain.add(key)
            return hit
        if isinstance(key, str):
            return _folded(key) in self.keys
        return _folded(key_text(key)) in self.keys

    def top_level_hit(self, fields: EventDict) -> bool:
        """Whether a key of ``fields`` is a text key, as :meth:`apply` matches them, whatever
        the other fields are. Cheap for the usual event: its keys all known plain, one C-level
        subset test."""
        keys = fields.keys()
        if keys <= self._plain:
            return False
        hit = False
        for key in keys:
            if self.is_text_key(key):
                hit = True
        return hit

    def redact_top(self, event_dict: EventDict) -> None:
        """Redact the top-level text keys of ``event_dict`` in place (not nested values)."""
        for key, value in list(event_dict.items()):
            if value is not None and self.is_text_key(key):
                event_dict[key] = REDACTED

    def may_hold_text(self, line: bytes) -> bool:
        """Whether the rendered line ``line`` may hold a text key anywhere (never False when it
        does; may be True when it does not): a key ``k`` is written ``"k":``, and lowered, with
        ``_``/``-`` removed, that is ``"{folded k}":``. A few C-level passes over the line."""
        patterns = self.patterns
        if patterns is None:
            return True
        folded = line.lower()
        if _KELVIN in folded:
            folded = folded.replace(_KELVIN, b"k")
        folded = folded.replace(b"_", b"").replace(b"-", b"")
        return any(pattern in folded for pattern in patterns)

    def apply(self, event_dict: EventDict) -> bool:
        """Redact in place; True when a value was cut (a cycle, or nesting too deep to walk:
        written as :class:`Cut` text, which the emitter lists under ``unserialisable``)."""
        return self.apply_walk(event_dict)[1]

    def apply_walk(self, event_dict: EventDict) -> tuple[bool, bool]:
        """:meth:`apply`, returning (whether a nested value was replaced, whether one was cut)."""
        cut: list[bool] = []
        changed = False
        for key, value in list(event_dict.items()):
            if self.is_text_key(key):
                if value is not None:
                    event_dict[key] = REDACTED
            elif type(value) in _LEAVES:
                continue
            elif isinstance(value, _CONTAINERS) or _is_dataclass_instance(value):
                fixed = self._nested(value, 1, set(), cut)
                if fixed is not value:
                    event_dict[key] = fixed
                    changed = True
        return changed, bool(cut)

    def redact_rendered(self, event_dict: EventDict) -> tuple[bool, bool]:
        """Redact the nested values of ``event_dict`` (its top-level keys already done): when
        orjson can write it, its line says whether any text key is spelled in it at all
        (:meth:`redact_line`); else the objects are walked. Returns (changed, cut) as
        :meth:`apply_walk`."""
        try:
            line = orjson.dumps(event_dict, option=JSON_OPTIONS)
        except Exception:  # a cycle, a namedtuple, an odd value: walk the objects themselves
            return self.apply_walk(event_dict)
        return self.redact_line(event_dict, line)

    def redact_line(self, event_dict: EventDict, line: bytes) -> tuple[bool, bool]:
        """:meth:`redact_rendered` for an event already rendered as ``line``: the line only
        says whether to look (no text key spelled in it: nothing to do); the objects are
        walked, never the line read back, which loses what JSON cannot tell apart (a key
        ``1`` and a key ``"1"``, a NaN and a null, a ``str`` subclass key)."""
        if not self.may_hold_text(line):
            return False, False
        return self.apply_walk(event_dict)

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
                mapping: dict[Any, Any] | None = value
            elif isinstance(value, tuple):
                mapping = namedtuple_fields(value)
            elif isinstance(value, list):
                mapping = None
            else:  # a dataclass instance
                mapping = _dataclass_fields(value)
            if mapping is not None:
                out: dict[Any, Any] | None = None
                for key, item in mapping.items():
                    if self.is_text_key(key):
                        fixed = REDACTED if item is not None else None
                    elif type(item) in _LEAVES:
                        continue
                    elif isinstance(item, _CONTAINERS) or _is_dataclass_instance(item):
                        fixed = self._nested(item, depth + 1, path, cut)
                    else:
                        continue
                    if fixed is not item:
                        if out is None:
                            out = dict(mapping)
                        out[key] = fixed
                return value if out is None else out
            items = [
                v
                if type(v) in _LEAVES
                or not (isinstance(v, _CONTAINERS) or _is_dataclass_instance(v))
                else self._nested(v, depth + 1, path, cut)
                for v in value
            ]
        finally:
            path.discard(id(value))
        if all(a is b for a, b in zip(items, value, strict=True)):
            return value
        return items


#: Types that hold no key: skipped by one set lookup.
_LEAVES = frozenset({str, int, float, bool, type(None), bytes})


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


def json_default(value: object) -> Any:
    """orjson's ``default``: a namedtuple is written as a JSON object of its fields; any other
    odd field value as its repr (better than a lost event)."""
    if isinstance(value, tuple):
        fields = namedtuple_fields(value)
        if fields is not None:
            return fields
    return repr(value)


#: orjson options of an event line (``orjson.dumps(event, default=json_default,
#: option=JSON_OPTIONS)``, which the emitter calls inline).
JSON_OPTIONS = orjson.OPT_APPEND_NEWLINE | orjson.OPT_NON_STR_KEYS


def render_json(event_dict: EventDict) -> bytes:
    """One JSON line, as structlog's JSONRenderer with orjson would write it."""
    return orjson.dumps(event_dict, default=json_default, option=JSON_OPTIONS)
