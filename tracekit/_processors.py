"""The event pipeline: plain structlog-style processors behind one alias, then the renderer.

A processor is ``(logger, method_name, event_dict) -> event_dict``, exactly structlog's
contract, so any structlog processor can be put in ``configure(processors=[...])``; raising
``structlog.DropEvent`` filters an event out (before it takes a ``seq``, so no false gap).
"""

from __future__ import annotations

import array
import dataclasses
import enum
import types
from collections import UserString, deque
from collections.abc import (
    Callable,
    ItemsView,
    Iterable,
    Mapping,
    MutableMapping,
    Sequence,
    ValuesView,
)
from collections.abc import Set as AbstractSet
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


#: A subtree past this depth is not walked: it is written as REDACTED whole when it may hold a
#: text key (its line spells one, or it cannot be rendered natively: a cycle...), else as it is.
_REDACT_DEPTH = 32


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


def _dataclass_view(value: Any) -> tuple[dict[str, Any], dict[Any, Any]]:
    """A dataclass instance as orjson writes it: its ``__dict__`` when it has one (attributes
    beyond the fields too, e.g. set in ``__post_init__``), else its fields (``__slots__``); in
    both, names starting with ``_`` left out (returned apart: the slow path's repr of the
    instance shows such fields). A field(init=False) never set is not written."""
    attrs = getattr(value, "__dict__", None)
    if not isinstance(attrs, dict):
        missing = object()
        got = ((f.name, getattr(value, f.name, missing)) for f in dataclasses.fields(value))
        attrs = {name: v for name, v in got if v is not missing}
    shown: dict[str, Any] = {}
    hidden: dict[Any, Any] = {}
    for k, v in attrs.items():
        if type(k) is str and not k.startswith("_"):
            shown[k] = v
        else:
            hidden[k] = v
    return shown, hidden


def _attributes(value: Any) -> dict[str, Any] | None:
    """The attributes of an object its own repr may spell (``SimpleNamespace``, an attrs or
    pydantic class): its ``__dict__``, or its ``__slots__`` set; None when it has neither."""
    attrs = getattr(value, "__dict__", None)
    if isinstance(attrs, dict):
        return attrs
    names: list[str] = []
    for cls in type(value).__mro__:
        slots = cls.__dict__.get("__slots__", ())
        for name in (slots,) if isinstance(slots, str) else slots:
            if name not in ("__dict__", "__weakref__"):
                names.append(name)
    if not names:
        return None
    missing = object()
    got = ((name, getattr(value, name, missing)) for name in names)
    return {name: v for name, v in got if v is not missing}


# What a value is to the walk, by its type (see _kind).
_LEAF = 0  # holds no key that is written (a str, a number, a date, a function...)
_DICT = 1
_TUPLE = 2  # a namedtuple is written as an object of its fields
_LIST = 3
_DATACLASS = 4
_ENUM = 5  # written as its value
_MAPPING = 6  # another mapping (MappingProxyType, ChainMap, UserDict), an items view: its repr
_ITERABLE = 7  # a set, a frozenset, a deque, another sequence: its repr
_OBJECT = 8  # a repr of its own, which may spell its attributes (SimpleNamespace...)

#: Written as their text or repr, never walked (a range or an array is not iterated).
_NOT_WALKED = (
    str,
    UserString,
    bytes,
    bytearray,
    memoryview,
    int,
    float,
    complex,
    range,
    array.array,
    type,
    types.ModuleType,
    types.FunctionType,
    types.BuiltinFunctionType,
    types.MethodType,
)
_KINDS: dict[type, int] = {dict: _DICT, list: _LIST, tuple: _TUPLE}


def _kind_of(cls: type) -> int:
    if issubclass(cls, dict):  # orjson writes a dict subclass as a dict
        return _DICT
    if issubclass(cls, list):
        return _LIST
    if issubclass(cls, tuple):
        return _TUPLE
    if issubclass(cls, _NOT_WALKED):
        return _LEAF
    if hasattr(cls, "__dataclass_fields__"):
        return _DATACLASS
    if issubclass(cls, enum.Enum):
        return _ENUM
    if issubclass(cls, Mapping | ItemsView):
        return _MAPPING
    if issubclass(cls, AbstractSet | deque | Sequence | ValuesView):
        return _ITERABLE
    if cls.__repr__ is object.__repr__:  # "<X object at 0x...>": shows nothing inside
        return _LEAF
    return _OBJECT


def _kind(value: object) -> int:
    """What ``value`` is to the walk (cached per type, at most ``_KEY_CACHE`` types)."""
    cls = type(value)
    kind = _KINDS.get(cls)
    if kind is None:
        try:
            kind = _kind_of(cls)
        except Exception:  # a metaclass raising in issubclass: its repr is what is written
            kind = _OBJECT
        if len(_KINDS) < _KEY_CACHE:
            _KINDS[cls] = kind
    return kind


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
    ``message-text``, ``msgtext``), a non-str key as it is written (an enum key as its
    value), at the top level and inside dict, list, tuple, namedtuple and dataclass values
    (``payload={"text": ...}``, ``messages=[{"content": ...}]``) and what the renderer writes
    as its repr (sets, deques, other mappings, ``SimpleNamespace``, keys it cannot write as
    JSON keys). The top-level event dict is changed in place; a nested value holding text is
    replaced by a redacted copy (the app's own objects are never modified): a dict for a
    dict, namedtuple, dataclass (as they are written: JSON objects of their fields), mapping
    or namespace, a list for a list, tuple, set or deque, REDACTED for another object with
    a repr of its own."""

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
            elif _kind(value) != _LEAF:
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
        written ``"<cycle>"`` (as the renderer writes one); a subtree past ``_REDACT_DEPTH``
        that may hold text, or a value that raises when looked at, as REDACTED: neither is
        walked, so neither may leak text."""
        if depth > _REDACT_DEPTH:
            if self._text_free(value):
                return value
            cut.append(True)
            return Cut(REDACTED)
        if id(value) in path:
            cut.append(True)
            return Cut("<cycle>")
        path.add(id(value))
        try:
            return self._walk(value, _kind(value), depth, path, cut)
        except Exception:  # an app object raising in __iter__, __getattr__...: not written
            cut.append(True)
            return Cut(REDACTED)
        finally:
            path.discard(id(value))

    def _text_free(self, value: Any) -> bool:
        """Whether orjson writes ``value`` natively with no text key spelled in it."""
        try:
            line = orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS)
        except Exception:  # a cycle, nesting past orjson's limit, a value it cannot write
            return False
        return not self.may_hold_text(line)

    def _walk(self, value: Any, kind: int, depth: int, path: set[int], cut: list[bool]) -> Any:
        """:meth:`_nested` for a value of ``kind`` (see :func:`_kind`): a redacted copy is a
        dict for what is written as a JSON object or a mapping's (or a SimpleNamespace's)
        repr, a list for what is written as an array or an iterable's repr, an enum's value
        for an enum; another object written as its own repr is written REDACTED whole (a dict
        of its attributes could show what its repr hides)."""
        hidden: dict[Any, Any] | None = None
        mapping: Mapping[Any, Any] | None
        if kind == _DICT:
            mapping = value
        elif kind == _TUPLE:
            mapping = namedtuple_fields(value)
        elif kind in (_LIST, _ITERABLE):
            mapping = None
        elif kind == _DATACLASS:
            mapping, hidden = _dataclass_view(value)
        elif kind == _MAPPING:
            mapping = dict(value)
        elif kind == _ENUM:  # written as its value
            inner = value._value_
            if _kind(inner) == _LEAF:
                return value
            fixed = self._nested(inner, depth + 1, path, cut)
            return value if fixed is inner else fixed
        elif kind == _OBJECT:  # a repr of its own: it may spell its attributes
            attrs = _attributes(value)
            if attrs is None:
                return value
            if isinstance(value, types.SimpleNamespace):  # its repr: all of its __dict__
                mapping = attrs
            else:  # its repr may show less than its attributes: none of them is written
                fixed = self._walk(attrs, _DICT, depth, path, cut)
                return value if fixed is attrs else REDACTED
        else:
            return value
        if mapping is None:  # a list, tuple, set, deque...
            seq = value if kind != _ITERABLE else list(value)
            items: list[Any] | None = None
            for i, v in enumerate(seq):
                if type(v) in _LEAVES or _kind(v) == _LEAF:
                    continue
                fixed = self._nested(v, depth + 1, path, cut)
                if fixed is not v:
                    if items is None:
                        items = list(seq)
                    items[i] = fixed
            return value if items is None else items
        out: dict[Any, Any] | None = None
        for key, item in mapping.items():
            if self.is_text_key(key):
                fixed = REDACTED if item is not None else None
            elif type(item) in _LEAVES or _kind(item) == _LEAF:
                fixed = item
            else:
                fixed = self._nested(item, depth + 1, path, cut)
            if fixed is not item:
                if out is None:
                    out = dict(mapping)
                out[key] = fixed
            if type(key) is not str:
                new_key = self._written_key(key, depth, path, cut)
                if new_key is not key:  # a key written as its repr, holding text
                    if out is None:
                        out = dict(mapping)
                    out[new_key] = out.pop(key)
        if out is None and hidden:
            # a dataclass's _names orjson leaves out: its repr (the slow path's) shows them
            for key, item in hidden.items():
                if (self.is_text_key(key) and item is not None) or (
                    _kind(item) != _LEAF and self._nested(item, depth + 1, path, cut) is not item
                ):
                    out = dict(mapping)
                    break
        return value if out is None else out

    def _written_key(self, key: Any, depth: int, path: set[int], cut: list[bool]) -> Any:
        """``key`` itself, unless it is written as its repr (orjson rejects it as a key) and
        holds text: then the repr of its redacted copy."""
        if isinstance(key, str) or _kind(key) == _LEAF:
            return key
        try:
            orjson.dumps({key: None}, option=orjson.OPT_NON_STR_KEYS)
            return key  # written as orjson's text of it: matched by is_text_key
        except Exception:
            pass
        fixed = self._nested(key, depth + 1, path, cut)
        if fixed is key:
            return key
        try:
            return repr(fixed) if not isinstance(fixed, str) else str(fixed)
        except Exception:
            return REDACTED


#: Types that hold no key: skipped by one set lookup.
_LEAVES = frozenset({str, int, float, bool, type(None), bytes})
_KINDS.update({cls: _LEAF for cls in (str, int, float, bool, type(None), bytes)})


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
