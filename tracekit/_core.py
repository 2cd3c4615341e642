"""configure / stage / emit: the instrumentation API.

Until :func:`configure` runs, ``_emitter`` is None and every call returns after one global
lookup (the OpenTelemetry API's idea: instrumentation costs nothing until someone configures
it). Nothing here raises into the application: internal failures are counted in ``stats()``.
"""

from __future__ import annotations

import atexit
import contextlib
import contextvars
import functools
import inspect
import itertools
import math
import os
import re
import secrets
import sys
import threading
import time
import weakref
from collections.abc import (
    Awaitable,
    Callable,
    Generator,
    Iterable,
    Iterator,
    MutableMapping,
    Sequence,
)
from dataclasses import dataclass, field, fields, replace
from enum import Enum
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar, cast

import orjson

from tracekit._clock import iso_utc, now_ns
from tracekit._context import (
    _bound,
    _current,
    bad_id_text,
    canonical_trace_id,
    derive_trace_id,
)
from tracekit._processors import (
    JSON_OPTIONS,
    Cut,
    Processor,
    RedactText,
    exception_text,
    json_default,
    namedtuple_fields,
)
from tracekit._sinks import Sink, SinkSpec, ThreadedSink, make_sink
from tracekit.errors import ConfigError
from tracekit.schema import (
    META_STAGE,
    TEXT_KEYS,
    is_trace_id,
)

if TYPE_CHECKING:
    from opentelemetry.trace import Span, TracerProvider

    from tracekit._otel import SpanFactory

__all__ = [
    "Config",
    "Instrumentation",
    "configure",
    "emit",
    "flush",
    "is_configured",
    "shutdown",
    "stage",
    "stats",
]

P = ParamSpec("P")
R = TypeVar("R")
#: What a sink's ``submit`` is: one rendered event and its line.
Submit = Callable[[MutableMapping[str, Any], bytes], None]


@dataclass(frozen=True)
class Config:
    """What :func:`configure` was told. ``sink`` is kept as given (path, stream, callable...)."""

    service: str
    source: str
    actor: str
    sink: object = None
    otel: object = False
    redact: frozenset[str] = TEXT_KEYS
    sample: float = 1.0
    processors: tuple[Processor, ...] = ()
    max_queue: int = 100_000
    level: str = "info"
    extra: dict[str, Any] = field(default_factory=dict)


class _Emitter:
    """Turns (stage, action, fields) into one JSON line in the sink and, optionally, a span."""

    def __init__(self, config: Config, sink: Sink, seq: Iterable[int] | None = None) -> None:
        self.config = config
        self.sink = sink
        #: also handed each line, before the sink (_tap: a capture inside activate())
        self.taps: tuple[Submit, ...] = ()
        self.seq = iter(seq) if seq is not None else itertools.count(1)
        self.source = config.source
        self.actor = config.actor
        #: swapped in for a block by ``tracekit.testing.capture``: its source is the block's,
        #: no configure() in the block goes on with it (review 19d)
        self.transient = False
        self.level = config.level
        # Redaction runs inline: most events carry no text key and no nested value. Their
        # top-level keys are ruled out by one C-level subset test against the keys already
        # known plain (any other key is folded, as RedactText matches); nested values only
        # when the rendered line holds a text key's spelling (RedactText.may_hold_text).
        self.redact = RedactText(config.redact) if config.redact else None
        self.processors = tuple(config.processors)
        # Keep a trace when the rightmost 56 bits of its id fall under the threshold: every
        # process makes the same decision for the same message, so kept traces are whole. Those
        # bits are random in random ids (W3C Trace Context level 2's "random" flag promises
        # them) and in UUIDv4/v7 client message ids, whose hex digit 16 is the fixed variant.
        self.threshold = int(config.sample * 2**56) if config.sample < 1.0 else None
        self.spans: SpanFactory | None = None
        if config.otel:
            from tracekit._otel import SpanFactory

            provider = None if config.otel is True else cast("TracerProvider", config.otel)
            self.spans = SpanFactory(provider)
        self.emitted = 0
        self.sampled_out = 0
        self.filtered = 0
        self.internal_errors = 0
        # message() calls given an id that is not a trace id (a derived or fresh one was used).
        self.bad_trace_ids = 0
        self.good_trace_id = ""  # the last valid trace id check_trace_id saw
        # The last message's fields (MessageContext._event) found to hold no odd value and the
        # message's own trace id: a stage without fields of its own uses them as they are.
        self.plain_event: dict[str, Any] | None = None
        # Events whose line could not be rendered even with their odd values made safe.
        self.unwritable = 0
        self.unwritable_at_flush = 0  # what flush() compares with
        if hasattr(sink, "on_drop"):
            sink.on_drop = self._report_drop
        _live_emitters.add(self)

    def _after_fork_in_child(self) -> None:
        """A forked child is a new process instance: its own source (as a fresh process would
        get it: ``{service}-{12 hex}`` for a default source, ``{source}-{12 hex}`` for one the app
        chose) and a seq from 1, so its events never clash with the parent's; counters from 0."""
        config = self.config
        default = re.fullmatch(rf"{re.escape(config.service)}-[0-9a-f]{{12}}", config.source)
        self.source = _default_source(config.service if default else config.source)
        self.config = replace(config, source=self.source)
        self.seq = itertools.count(1)
        self.emitted = self.sampled_out = self.filtered = 0
        self.internal_errors = self.unwritable = self.bad_trace_ids = 0
        self.unwritable_at_flush = 0

    def keep(self, trace_id: object) -> bool:
        if self.threshold is None or not isinstance(trace_id, str) or len(trace_id) != 32:
            return True
        try:
            return int(trace_id[18:], 16) < self.threshold
        except ValueError:
            return True

    def base_fields(self, fields: dict[str, Any]) -> dict[str, Any]:
        """Context (bound fields, current message) under the call's own fields."""
        bound = _bound.get()
        msg = _current.get()
        if bound is None:
            merged = fields if msg is None else {**msg._event, **fields}
        else:
            merged = dict(bound)
            if msg is not None:
                merged.update(msg._event)
            merged.update(fields)
        # The message's own trace id (checked by message()) is passed on as is: one identity
        # test. Any other (a call's or a bound trace_id=) is checked here.
        if merged.get("trace_id") is not (None if msg is None else msg.trace_id):
            merged = self.check_trace_id(merged, fields, msg)
        return merged

    def check_trace_id(
        self, merged: dict[str, Any], given: dict[str, Any], msg: Any
    ) -> dict[str, Any]:
        """An event's trace id as the spans have it: 32 lowercase hex. Inside a message, a
        ``trace_id`` bound (``bind(trace_id=...)``) gives way to the message's own; one the
        call gives, or one bound outside a message, is normalised (a UUID to its hex, upper to lower case) or, not being a trace id, replaced
        by one derived from it as ``message()`` does (``bad_trace_id`` on the event, counted in
        ``stats()``)."""
        raw = merged.get("trace_id")
        bad = None
        if msg is not None and "trace_id" not in given:
            tid = msg.trace_id
        elif raw is None or raw == self.good_trace_id:
            return merged
        elif is_trace_id(raw):
            self.good_trace_id = raw  # the same id on the next call: one comparison
            return merged
        else:
            tid = canonical_trace_id(raw)  # the one reading of message() and bind()
            if tid is None:
                # Derived as message() derives it (one rule), for the actor the event carries.
                self.bad_trace_ids += 1
                bad = bad_id_text(raw)
                actor = merged.get("actor")
                tid = derive_trace_id(bad, actor if isinstance(actor, str) else self.actor)
        out = dict(merged)
        out["trace_id"] = tid
        if bad is not None:
            out["bad_trace_id"] = bad
        return out

    def lost(self, exc: BaseException) -> int | None:
        """An event lost to an internal failure: counted (``dropped``, ``flush()`` False) and
        reported like the sink's losses, with a ``TRACEKIT.dropped`` event; it takes a seq
        (returned)."""
        self.internal_errors += 1
        return self._lose(f"internal error: {exception_text(exc)}")

    def write(
        self,
        stage: str,
        action: str,
        fields: dict[str, Any],
        ts_ns: int,
        after: dict[str, Any] | None = None,
        odd: bool | None = None,
    ) -> int | None:
        """Render and submit one event; returns its seq, also when the event is lost (every
        loss takes one: its gap in the seqs is how a reader knows; None if a processor
        filtered it, which is no loss). ``fields`` is
        not modified. ``odd``: whether a field value is a dict, list, tuple or float, when the
        caller knows (None: looked at here)."""
        timestamp = iso_utc(ts_ns)
        event: dict[str, Any] = {
            "timestamp": timestamp,
            "stage": stage,
            "action": action,
            "event": f"{stage} {action}",
            **fields,
        }
        if len(event) != len(fields) + 4:  # a field named event, timestamp, stage or action
            fields = dict(fields)
            name = fields.pop("event", None) or f"{stage} {action}"
            for key in _COMPUTED_KEYS:  # the computed value wins; the app's is kept aside
                if key in fields:
                    fields[f"field_{key}"] = fields.pop(key)
            event = {
                "timestamp": timestamp,
                "stage": stage,
                "action": action,
                "event": name,
                **fields,
            }
        if "actor" not in event:
            event["actor"] = self.actor
        if after:
            if not event.keys().isdisjoint(after):  # an app field named status, error, ...
                for key in after.keys() & event.keys():  # the computed value wins, as above
                    event[f"field_{key}"] = event[key]
            event.update(after)
        if "level" not in event:
            event["level"] = self.level
        # Only a field value that is a dict, list, tuple, dataclass or float (nested text to
        # redact, NaN or an infinity) sends the event down the slower paths. A stage of a message
        # without fields of its own knows whether it has one (the message's fields are looked at
        # once).
        if odd is None:  # _is_odd, inlined (measured: cheaper than searching the line)
            odd = False
            for value in fields.values():
                if (
                    type(value) is not str
                    and type(value) not in _PLAIN_TYPES
                    and (isinstance(value, _ODD_CLASSES) or _is_odd_object(value))
                ):
                    odd = True
                    break
        redact = self.redact
        processors = self.processors
        cut = changed = False
        if redact is not None:
            # Top-level keys: the usual event's keys are all known plain (one subset test);
            # any other is folded as RedactText matches it, whatever the other fields are.
            if redact.top_level_hit(fields):
                redact.redact_top(event)
            # the app's processors see nested text redacted (a value orjson rejects, a set or
            # a deque, is written as its repr: looked at too)
            if processors and (odd or _has_object(fields)):
                changed, cut = redact.redact_rendered(event)
        # tracekit's own report of a loss goes out without the processor that failed on it,
        # the others applied (review 19b: one failing on every event lost the report of it
        # too, unsaid; 19c: all were skipped)
        meta = stage == META_STAGE
        for processor in processors:
            odd = True  # what the app's processors wrote is looked at below
            before = dict(event) if meta else None
            try:
                event = processor(None, event["level"], event)  # type: ignore[assignment]
            except BaseException as exc:  # structlog.DropEvent is a BaseException
                if type(exc).__name__ == "DropEvent":  # matched by name: no structlog import
                    if before is not None and action == "dropped":
                        # the account of a loss is not the app's to filter (review 25a: its
                        # span, begun, went out without a seq: a gap in the spans)
                        event = before
                        continue
                    self.filtered += 1
                    return None
                if not isinstance(exc, Exception):  # KeyboardInterrupt and the like
                    raise
                if before is not None:
                    event = before
                    continue
                # The app's processor failed: the event is lost, so it is counted and reported
                # like any other loss (not only as an internal error), and takes its seq.
                name = getattr(processor, "__name__", type(processor).__name__)
                return self._lose(f"processor {name} raised {exception_text(exc)}")
            if not isinstance(event, dict):  # a renderer's text, or None
                if before is not None:
                    event = before
                    continue
                return self._lose(
                    f"a processor returned {type(event).__name__}, not the event dict "
                    "(tracekit renders the line itself: no renderer among processors)"
                )
        seq = next(self.seq)
        try:  # from here a loss names its seq (the gap it leaves is explained)
            if "seq" in event or "source" in event:  # app fields: kept aside, as stage's are
                for key in ("source", "seq"):
                    if key in event:
                        event[f"field_{key}"] = event.pop(key)
            event["source"] = self.source
            event["seq"] = seq
            try:
                # No ``default``: a value orjson cannot write natively goes the slow path, which
                # writes it as text and lists it under ``unserialisable``.
                line: bytes | None = _dumps(event, option=JSON_OPTIONS)
            except Exception:
                line = None
            if (odd or line is None) and redact is not None and not processors:
                # Nested text: the objects are walked only when the line spells a text key, or
                # when orjson rejected a value (a set, a deque, an object: the slow path writes
                # its repr, which may spell one).
                if line is None:
                    changed, cut = redact.apply_walk(event)
                else:
                    changed, cut = redact.redact_line(event, line)
                if changed and line is not None:
                    try:
                        line = _dumps(event, option=JSON_OPTIONS)
                    except Exception:
                        line = None
            # orjson writes NaN and infinities as null: the slow path writes them as text.
            if line is None or cut or (odd and b"null" in line and _has_nonfinite(event)):
                safe = self._render_safe(event, seq)
                if safe is None:
                    return seq  # (lost: reported with its seq)
                event, line = safe
        except Exception as exc:
            self.internal_errors += 1
            self.unwritable += 1
            if stage != META_STAGE:
                try:
                    self._report_drop(1, f"internal error: {exception_text(exc)}", lost_seq=seq)
                except Exception:
                    self.internal_errors += 1
            return seq
        try:
            if self.taps:  # (a test: a submit function swapped in per emitter cost more)
                self._tapped(event, line)
            self.sink.submit(event, line)
        except Exception as exc:  # a Sink of the app's that breaks its contract
            self.unwritable += 1
            if stage != META_STAGE:  # the report goes through the same sink: no loop
                try:
                    self._report_drop(1, f"sink.submit raised {exception_text(exc)}", lost_seq=seq)
                except Exception:
                    self.internal_errors += 1
            return seq
        self.emitted += 1
        return seq

    def _lose(self, reason: str) -> int | None:
        """An event lost before it took its seq: it takes one now (its loss is a seq jump in
        the log, as every loss is: a reader holding its span elsewhere sees no gap), counted
        and reported with it. Returns the seq (None if even that failed)."""
        self.unwritable += 1
        seq = None
        try:
            seq = next(self.seq)
            self._report_drop(1, reason, lost_seq=seq)
        except Exception:
            self.internal_errors += 1
        return seq

    def _tapped(self, event: dict[str, Any], line: bytes) -> None:
        for tap in self.taps:
            try:  # a tap failing is not the sink's loss
                tap(event, line)
            except Exception:
                pass

    def _render_safe(self, event: dict[str, Any], seq: int) -> tuple[dict[str, Any], bytes] | None:
        """The slow path of ``write``: the fields orjson rejected (ints past 64 bits, lone
        surrogates, cycles, deep nesting, non-scalar keys, a raising ``__repr__``...) made safe
        and listed under ``unserialisable``. If even that fails, the event is counted as dropped
        and a ``TRACEKIT.dropped`` event naming its seq is written, so the seq gap is explained.
        """
        try:
            safe: dict[str, Any] = {}
            changed: list[str] = []
            for key, value in event.items():
                fixed = json_safe(value)
                if fixed is not value:
                    changed.append(key if isinstance(key, str) else safe_repr(key))
                safe[key if isinstance(key, str) else safe_repr(key)] = fixed
            safe["unserialisable"] = changed
            return safe, _dumps(safe, default=json_default, option=JSON_OPTIONS)
        except Exception as again:
            self.unwritable += 1
            try:
                self._report_drop(
                    1,
                    f"unserialisable event: {type(again).__name__}: {again}",
                    lost_seq=seq,
                )
            except Exception:
                self.internal_errors += 1
            return None

    def flush(self, timeout: float) -> bool:
        """The sink's flush, and False too when an event could not be rendered since the last
        flush."""
        try:
            written = self.sink.flush(timeout)
        except Exception:
            written = False
        unwritable = self.unwritable
        clean = unwritable == self.unwritable_at_flush
        self.unwritable_at_flush = unwritable
        return written and clean

    @property
    def dropped(self) -> int:
        """Events lost: by the sink (queue full, output failing) or not renderable at all."""
        return self.sink.dropped + self.unwritable

    def _report_drop(self, n: int, reason: str, **extra: Any) -> None:
        fields = {
            "event": f"tracekit dropped {n} events: {reason}",
            "dropped": n,
            "reason": reason,
            **extra,
        }
        ts = now_ns()
        after: dict[str, Any] = {"total_dropped": self.dropped, "level": "warning"}
        spans = self.spans
        span = token = None
        if spans is not None:
            # The report has its span, as every event with a seq has (review 24a: read from
            # the spans alone, its seq was a one-event gap of its own)
            try:
                span, token, after["span_id"] = spans.start(
                    META_STAGE, "dropped", fields, self.source, self.actor, None, ts
                )
            except Exception:
                self.internal_errors += 1
        seq = None
        try:
            seq = self.write(META_STAGE, "dropped", fields, ts, after)
        finally:
            if span is not None and spans is not None:
                try:
                    spans.finish(span, token, ts, None, seq)
                except Exception:
                    self.internal_errors += 1


#: Nesting past this depth is written as the repr of the rest (orjson stops at 255 levels).
_SAFE_DEPTH = 100
#: Keys write() computes; a field of the same name is written as ``field_{key}`` (so is one
#: named like a key the stage computes: ``span_id``, ``duration_ms``, ``status``, ``error``,
#: ``level`` when it fails).
_COMPUTED_KEYS = ("timestamp", "stage", "action")
#: Field values that may hold nested text or a NaN/infinity (subclasses too: a defaultdict,
#: a namedtuple, numpy's float64); the plain types are ruled out first by one set lookup.
_ODD_CLASSES = (dict, list, tuple, float)
_PLAIN_TYPES = frozenset({int, bool, type(None)})
#: Values with nothing inside to look at: ruled out by one set lookup.
_LEAF_TYPES = frozenset({str, int, bool, type(None), bytes})
_SCALAR_TYPES = frozenset({str, int, bool, type(None), float})


def _is_odd(fields: dict[str, Any]) -> bool:
    """True when a value of ``fields`` is a dict, list, tuple, float (or a subclass) or a
    dataclass instance."""
    for value in fields.values():  # a loop: any() over a generator is slower
        if (
            type(value) is not str
            and type(value) not in _PLAIN_TYPES
            and (isinstance(value, _ODD_CLASSES) or _is_odd_object(value))
        ):
            return True
    return False


def _is_odd_object(value: object) -> bool:
    """A dataclass instance, or an enum member whose value is no scalar (orjson writes both
    natively, and either may hold nested text)."""
    if isinstance(value, Enum):
        return type(value._value_) not in _LEAF_TYPES and not isinstance(value._value_, float)
    return hasattr(type(value), "__dataclass_fields__") and not isinstance(value, type)


def _has_object(fields: dict[str, Any]) -> bool:
    """True when a value of ``fields`` is no str, int, bool, None or float: something orjson
    may reject (a set, a deque, an object), which the slow path writes as its repr."""
    return not _SCALAR_TYPES.issuperset(map(type, fields.values()))


def _has_nonfinite(root: Any) -> bool:
    """True when ``root`` holds a NaN or an infinity (which orjson writes as null) in a dict,
    list or tuple, at most ``_SAFE_DEPTH`` deep. A loop over a stack, no recursion."""
    stack: list[tuple[Any, int]] = [(root, 0)]
    push = stack.append
    pop = stack.pop
    isfinite = math.isfinite
    while stack:
        node, depth = pop()
        values = node.values() if isinstance(node, dict) else node
        for value in values:
            kind = type(value)
            if kind is float or (kind not in _LEAF_TYPES and isinstance(value, float)):
                if not isfinite(value):
                    return True
            elif (
                kind not in _LEAF_TYPES
                and isinstance(value, dict | list | tuple)
                and depth < _SAFE_DEPTH
            ):
                push((value, depth + 1))
    return False


def _float_text(value: float) -> str:
    return "NaN" if value != value else ("Infinity" if value > 0 else "-Infinity")


_INT_MIN, _INT_MAX = -(2**63), 2**64 - 1


def safe_repr(value: object) -> str:
    """``repr(value)``, or a description of the value if its ``__repr__`` raises; always a
    string orjson can write."""
    try:
        text = repr(value)
        if not isinstance(text, str):
            raise TypeError(f"__repr__ returned {type(text).__name__}")
    except Exception as exc:
        try:
            name = type(value).__qualname__
        except Exception:
            name = "?"
        text = f"<{name} object, repr failed: {type(exc).__name__}>"
    return _safe_str(text)


def _safe_str(text: str) -> str:
    try:
        text.encode()
    except UnicodeEncodeError:  # lone surrogates: written as their escapes
        return text.encode("utf-8", "backslashreplace").decode()
    return text


def json_safe(value: Any, depth: int = 0, path: set[int] | None = None) -> Any:
    """``value`` if orjson can write it, else a copy with what it rejects replaced by strings.
    Returns ``value`` itself (same object) when nothing needed changing."""
    if value is None or isinstance(value, bool):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else _float_text(value)
    if isinstance(value, int):
        return value if _INT_MIN <= value <= _INT_MAX else safe_repr(int(value))
    if isinstance(value, str):
        return _safe_str(value) if type(value) is not Cut else str(value)
    if depth >= _SAFE_DEPTH:
        return safe_repr(value)
    if isinstance(value, dict | list | tuple):
        if path is None:
            path = set()
        if id(value) in path:
            return "<cycle>"
        path.add(id(value))
        try:
            if isinstance(value, dict):
                out: dict[Any, Any] = {}
                same = True
                for k, v in value.items():
                    key = _safe_key(k)
                    fixed = json_safe(v, depth + 1, path)
                    same = same and key is k and fixed is v
                    out[key] = fixed
                return value if same else out
            items = [json_safe(v, depth + 1, path) for v in value]
            if all(a is b for a, b in zip(items, value, strict=True)):
                return value  # a namedtuple: written by json_default as an object
            if isinstance(value, tuple):
                names = namedtuple_fields(value)
                if names is not None:  # its shape (an object of its fields) kept
                    return dict(zip(names, items, strict=True))
            return items
        finally:
            path.discard(id(value))
    try:  # datetimes, UUIDs, dataclasses, enums...: orjson writes them natively
        _dumps(value, option=JSON_OPTIONS)
    except Exception:  # bytes, sets, Decimal, the app's own classes: written as their text
        return safe_repr(value)
    return value


def _safe_key(key: Any) -> Any:
    if isinstance(key, str):
        return _safe_str(key)
    if isinstance(key, float) and not math.isfinite(key):
        return _float_text(key)
    if key is None or isinstance(key, bool | float):
        return key
    if isinstance(key, int) and _INT_MIN <= key <= _INT_MAX:
        return key
    return safe_repr(key)


_dumps = orjson.dumps

_emitter: _Emitter | None = None
# The stages entered again while active (_Stage._reenter) in this context, oldest first: an
# exit ends the one made last in its own task or thread.
_reentered: contextvars.ContextVar[tuple[_Stage, ...]] = contextvars.ContextVar(
    "tracekit_reentered", default=()
)


def _open_here() -> tuple[_Stage, ...]:
    """This context's re-entered stages still open: an entry ended in another context (a
    generator closed elsewhere) cannot be taken out of this one's, so each write here drops
    those (review 20e: they stayed for the context's life)."""
    return tuple(n for n in _reentered.get() if not n._free)


def _generator_frame() -> int | None:
    """The id of the generator frame running the stage's ``with`` (entered or left), or None
    when plain code runs it. A generator's block can end in another context than it began
    (closed by the collector or a loop's finaliser, resumed by another task), but always in
    its own frame, which lives while the block is open: the frame, not the context, says
    which entry its exit ends (review 21c). Only on the re-entered path: rare."""
    frame: FrameType | None = sys._getframe(1)
    while frame is not None and frame.f_code in _STAGE_CODES:
        frame = frame.f_back  # (the stage's own methods: __enter__, __aexit__, ...)
    if frame is not None and frame.f_code.co_flags & _GENERATOR_FLAGS:
        return id(frame)
    return None


_GENERATOR_FLAGS = inspect.CO_GENERATOR | inspect.CO_ASYNC_GENERATOR
# An Instrumentation activated for a context (one client among several in one process) wins
# over the process-wide configuration.
_scoped: contextvars.ContextVar[_Emitter | None] = contextvars.ContextVar(
    "tracekit_emitter", default=None
)
# True once any Instrumentation has been activated. Until then ``_scoped`` is None everywhere
# and the hot paths skip reading it (a ContextVar.get is a C call; a global read is not).
_any_scoped = False
_config_lock = threading.Lock()
_atexit_registered = False
# Every emitter still referenced: given a new source and seq in a forked child.
_live_emitters: weakref.WeakSet[_Emitter] = weakref.WeakSet()


#: Sinks replaced by ``configure`` that are still closing (writing what they had queued).
_closing: set[threading.Thread] = set()


def _close_in_background(sink: ThreadedSink) -> None:
    for done in [t for t in _closing if t.ident is not None and not t.is_alive()]:
        _closing.discard(done)  # an app reconfiguring often, and never flushing
    thread = threading.Thread(target=sink.close, name="tracekit-close", daemon=True)
    try:
        thread.start()
    except RuntimeError:  # no new threads (interpreter shutdown): close here
        sink.close()
        return
    _closing.add(thread)


def _wait_closing(deadline: float) -> bool:
    """Wait for the replaced sinks to finish closing, until ``deadline``; True if they did."""
    for thread in list(_closing):
        if thread.ident is None:  # not started (a fork in between): nothing to wait for
            _closing.discard(thread)
            continue
        thread.join(max(0.0, deadline - time.monotonic()))
        if thread.is_alive():
            return False
        _closing.discard(thread)
    return True


def _after_fork_in_child() -> None:
    global _config_lock
    _config_lock = threading.Lock()  # another thread may have held it at the fork
    _closing.clear()  # the parent's closing threads do not exist here
    for emitter in list(_live_emitters):
        try:
            emitter._after_fork_in_child()
        except Exception:
            pass


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def _active() -> _Emitter | None:
    return (_scoped.get() or _emitter) if _any_scoped else _emitter


def is_configured() -> bool:
    """True once :func:`configure` has run (and :func:`shutdown` has not), or inside an
    activated :class:`Instrumentation`."""
    return _emitter is not None or _scoped.get() is not None


def _default_source(service: str) -> str:
    # 48 random bits, like a short container id: log gaps and clock offsets are per source, so
    # two processes sharing one would interleave their seqs. With 16 bits, 300 processes in one
    # analysis shared a name about half the time; with 48, 100k do once in ~50,000 analyses.
    return f"{service}-{secrets.token_hex(6)}"


def _make_config(
    *,
    service: str,
    source: str | None,
    actor: str | None,
    sink: object,
    otel: object,
    redact: bool | Iterable[str],
    sample: float,
    processors: Sequence[Processor],
    max_queue: int,
    level: str,
) -> Config:
    if not isinstance(service, str) or not service:
        raise ConfigError("configure(service=...) needs a non-empty name, e.g. 'chat-server'")
    # Checked here, at setup: a value of the wrong type would otherwise fail on the hot path,
    # losing every event instead of raising once where the mistake is.
    if isinstance(sample, bool) or not isinstance(sample, int | float):
        raise ConfigError(f"sample must be a number between 0 and 1, got {sample!r}")
    if not 0.0 <= sample <= 1.0:
        raise ConfigError(f"sample must be between 0 and 1, got {sample!r}")
    if isinstance(max_queue, bool) or not isinstance(max_queue, int) or max_queue < 1:
        raise ConfigError(f"max_queue must be a positive int, got {max_queue!r}")
    if not isinstance(level, str) or not level:
        raise ConfigError(f"level must be a non-empty string, got {level!r}")
    for name, value in (("source", source), ("actor", actor)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{name} must be a string, got {value!r}")
    if redact is True:
        redact_keys = TEXT_KEYS
    elif redact is False:
        redact_keys = frozenset()
    elif isinstance(redact, str) or not isinstance(redact, Iterable):
        raise ConfigError(f"redact must be True, False or an iterable of keys, got {redact!r}")
    else:
        redact_keys = frozenset(redact)
        if not all(isinstance(key, str) for key in redact_keys):
            raise ConfigError(f"redact keys must be strings, got {sorted(map(repr, redact_keys))}")
    if not isinstance(otel, bool) and not callable(getattr(otel, "get_tracer", None)):
        raise ConfigError(f"otel must be True, False or a TracerProvider, got {otel!r}")
    if isinstance(processors, str | bytes) or not isinstance(processors, Iterable):
        raise ConfigError(f"processors must be a sequence of callables, got {processors!r}")
    processors = tuple(processors)
    for processor in processors:
        if not callable(processor):
            raise ConfigError(f"processors must be callables, got {processor!r}")
    return Config(
        service=service,
        source=source or _default_source(service),
        actor=actor or service,
        sink=sink,
        otel=otel,
        redact=redact_keys,
        sample=sample,
        processors=tuple(processors),
        max_queue=max_queue,
        level=level,
    )


def _open_sink(sink: SinkSpec | None, max_queue: int) -> Sink:
    try:
        return make_sink(sink if sink is not None else _stderr(), max_queue=max_queue)
    except (OSError, TypeError) as exc:
        raise ConfigError(f"cannot open sink {sink!r}: {exc}") from exc


def _close_quietly(sink: Sink) -> None:
    try:
        sink.close(0.5)
    except Exception:
        pass


def configure(
    *,
    service: str,
    source: str | None = None,
    actor: str | None = None,
    sink: SinkSpec | None = None,
    otel: bool | TracerProvider = False,
    redact: bool | Iterable[str] = True,
    sample: float = 1.0,
    processors: Sequence[Processor] = (),
    max_queue: int = 100_000,
    level: str = "info",
) -> dict[str, tuple[object, object]]:
    """Turn instrumentation on for the whole process (or change it). Returns what changed:
    ``{name: (old, new)}``.

    - ``service``: the emitting program (``chat-server``, ``client``); ``source`` the process
      instance (default ``{service}-{12 hex}``); ``actor`` the default actor (default: service).
    - ``sink``: a file path (JSON lines, appended), an open stream, a callable taking each
      event dict (parsed from its JSON line: JSON types), or a :class:`~tracekit.Sink`.
      Default: standard error.
    - ``otel``: True for spans through the global tracer provider, or a provider to use.
    - ``redact``: True (message text keys redacted), False (keep text: opt-in), or the keys.
    - ``sample``: fraction of traces kept, decided by trace id (the same in every process).

    Calling it again is safe: the sequence continues when ``source`` is unchanged, the old sink
    is flushed and closed, and a ``TRACEKIT.configured`` event lists what changed. Invalid
    arguments raise :class:`~tracekit.ConfigError` (this is setup, not the app's hot path).
    """
    global _emitter, _atexit_registered
    with _config_lock:
        old = _emitter
        if (
            source is None
            and old is not None
            and old.config.service == service
            and not old.transient
        ):
            source = old.config.source
        config = _make_config(
            service=service,
            source=source,
            actor=actor,
            sink=sink,
            otel=otel,
            redact=redact,
            sample=sample,
            processors=processors,
            max_queue=max_queue,
            level=level,
        )
        same_sink = old is not None and old.config.sink is sink and sink is not None
        out = old.sink if same_sink and old is not None else _open_sink(sink, max_queue)
        keep_seq = old is not None and old.config.source == config.source
        try:
            emitter = _Emitter(config, out, seq=old.seq if keep_seq and old is not None else None)
        except BaseException:
            if not same_sink:  # opened for this call: no writer thread or file left behind
                _close_quietly(out)
            raise
        if old is not None:  # events the old emitter lost since the last flush: its next says so
            emitter.unwritable_at_flush = old.unwritable_at_flush - old.unwritable
            # Inside a capture block (a test's fixture, a server that configures itself as it
            # starts), the capture still takes every event, as the new configuration writes
            # it (review 25d: it got nothing more: a delivered message read as a drop)
            keep = getattr(old.sink, "keep", None) if old.transient else None
            emitter.taps = (*old.taps, keep) if keep is not None else old.taps
        changes = _diff(old.config if old is not None else None, config)
        _emitter = emitter
        carried: tuple[int, str] | None = None
        if old is not None and not same_sink:
            if isinstance(old.sink, ThreadedSink):
                # from now on the old sink's drops (its queue may still fail) are the new one's
                old.sink.successor = out
            if isinstance(old.sink, ThreadedSink):
                # Drops the old sink counted but could not report yet (no write of its
                # succeeded since): the new configuration reports them, below.
                lost, reason, unflushed = old.sink.take_unreported()
                if isinstance(out, ThreadedSink) and (lost or unflushed):
                    out.adopt_drops(lost, unflushed)
                if lost:
                    carried = (lost, f"{reason} (reconfigured)")
                # It takes nothing more from now on (a late event goes to the new sink), and
                # is closed off the caller's thread: on a blocked output close() waits up to its
                # timeout, which must not stall the app (an event loop). flush() and
                # shutdown() wait for it.
                old.sink.stop_accepting()
                _close_in_background(old.sink)
            else:  # the app's own Sink: closed where the app called
                old.sink.close()
        if not _atexit_registered:
            atexit.register(shutdown)
            _atexit_registered = True
    if old is not None and changes:  # on the new emitter, even inside inst.activate()
        _emit_on(
            emitter,
            META_STAGE,
            "configured",
            {"event": "tracekit reconfigured", "changed": sorted(changes), "actor": config.actor},
        )
    if carried is not None:
        # Said by the emitter whose seqs the lost events took: under another source, the new
        # one's report stood in another log than their seq jump (review 25a: none showed,
        # the paths they held read as drops). Its line goes on to the sink in use.
        reporter = emitter if keep_seq or old is None else old
        try:
            reporter._report_drop(*carried)
        except Exception:
            reporter.internal_errors += 1
    return changes


class Instrumentation:
    """An emitter of its own (source, seq, sink) for one part of a process.

    ``configure`` sets up the whole process; an ``Instrumentation`` serves when one process
    hosts several emitters, e.g. several chat clients in one test or demo process: inside
    ``with inst.activate():`` (and in asyncio tasks started there) every stage and event goes
    to this instance. Takes :func:`configure`'s arguments.
    """

    def __init__(
        self,
        *,
        service: str,
        source: str | None = None,
        actor: str | None = None,
        sink: SinkSpec | None = None,
        otel: bool | TracerProvider = False,
        redact: bool | Iterable[str] = True,
        sample: float = 1.0,
        processors: Sequence[Processor] = (),
        max_queue: int = 100_000,
        level: str = "info",
    ) -> None:
        config = _make_config(
            service=service,
            source=source,
            actor=actor,
            sink=sink,
            otel=otel,
            redact=redact,
            sample=sample,
            processors=processors,
            max_queue=max_queue,
            level=level,
        )
        out = _open_sink(sink, max_queue)
        try:
            self._emitter = _Emitter(config, out)
        except BaseException:
            _close_quietly(out)
            raise

    @property
    def source(self) -> str:
        return self._emitter.source

    @contextlib.contextmanager
    def activate(self) -> Iterator[Instrumentation]:
        """Route this context's stages and events (and its tasks') to this instance."""
        global _any_scoped
        _any_scoped = True
        token = _scoped.set(self._emitter)
        try:
            yield self
        finally:
            _scoped.reset(token)

    def flush(self, timeout: float = 2.0) -> bool:
        """As :func:`tracekit.flush`, for this instance."""
        return self._emitter.flush(timeout)

    def close(self, timeout: float = 2.0) -> None:
        self._emitter.sink.close(timeout)

    def stats(self) -> dict[str, int]:
        return _stats(self._emitter)


def _stderr() -> Any:
    import sys

    return sys.stderr


def _diff(old: Config | None, new: Config) -> dict[str, tuple[object, object]]:
    out: dict[str, tuple[object, object]] = {}
    for f in fields(Config):
        before = getattr(old, f.name) if old is not None else None
        after = getattr(new, f.name)
        if before != after:
            out[f.name] = (before, after)
    return out


def flush(timeout: float = 2.0) -> bool:
    """Wait until queued events are written. True when every event emitted since the previous
    ``flush`` was written: the queue emptied in time and none was dropped (see ``stats()``).
    Sinks a ``configure`` replaced are waited for too (their last events)."""
    deadline = time.monotonic() + timeout
    closed = _wait_closing(deadline)
    emitter = _scoped.get() or _emitter
    if emitter is None:
        return closed
    return emitter.flush(max(0.0, deadline - time.monotonic())) and closed


def shutdown(timeout: float = 2.0) -> None:
    """Flush, close the sink and go back to the unconfigured no-op state. Runs at exit."""
    global _emitter
    deadline = time.monotonic() + timeout
    with _config_lock:
        emitter, _emitter = _emitter, None
    _wait_closing(deadline)
    if emitter is not None:
        try:
            emitter.sink.close(max(0.05, deadline - time.monotonic()))
        except Exception:
            pass


def stats() -> dict[str, int]:
    """Counters of the current configuration: emitted, dropped, sampled_out, ..."""
    emitter = _scoped.get() or _emitter
    return {} if emitter is None else _stats(emitter)


def _stats(emitter: _Emitter) -> dict[str, int]:
    return {
        "emitted": emitter.emitted,
        "dropped": emitter.dropped,
        "sampled_out": emitter.sampled_out,
        "filtered": emitter.filtered,
        "internal_errors": emitter.internal_errors,
        "bad_trace_ids": emitter.bad_trace_ids,
    }


def _swap(emitter: _Emitter | None) -> _Emitter | None:
    """Install ``emitter`` without closing the previous one (``tracekit.testing`` uses it)."""
    global _emitter
    with _config_lock:
        previous, _emitter = _emitter, emitter
    return previous


def _restore(previous: _Emitter | None, own: _Emitter) -> None:
    """Put ``previous`` back at the end of a block that swapped ``own`` in (``capture``). A
    configuration made inside the block (``configure()``) is undone with it, and its sink
    closed as ``shutdown()`` closes one, every event written (review 20a: left open, a file
    and a writer thread per block); not a sink ``previous`` still writes to."""
    global _emitter
    with _config_lock:
        current, _emitter = _emitter, previous
    if current is None or current is own or current is previous:
        return
    sink = current.sink
    kept: object = previous.sink if previous is not None else None
    while kept is not None:  # previous's sink, and those it hands lines on to (also=)
        if kept is sink:
            return
        kept = getattr(kept, "also", None)
    try:
        sink.close(2.0)
    except Exception:
        pass


def _tap(emitter: _Emitter, tap: Submit) -> None:
    """Have ``tap`` get every line ``emitter`` writes, before its sink does (``capture``
    opened inside ``Instrumentation.activate()``)."""
    with _config_lock:
        emitter.taps = (*emitter.taps, tap)


def _untap(emitter: _Emitter, tap: Submit) -> None:
    with _config_lock:
        taps = list(emitter.taps)
        if tap in taps:
            taps.remove(tap)
        emitter.taps = tuple(taps)


def emit(stage: str, action: str, /, **fields: Any) -> None:
    """Emit one point event (timestamp = now) for the current message; with OpenTelemetry on,
    also a zero-length span of the message's trace (every event that takes a ``seq`` has its
    span, so a trace read back from OTLP has no hole where a point event was)."""
    emitter = (_scoped.get() or _emitter) if _any_scoped else _emitter
    if emitter is not None:
        _emit_on(emitter, stage, action, fields)


def _emit_on(emitter: _Emitter, stage: str, action: str, fields: dict[str, Any]) -> None:
    try:
        msg = _current.get()
        odd = None
        if _bound.get() is None:  # Emitter.base_fields, inlined
            if msg is None:
                merged = fields
                tid = fields.get("trace_id")
                if tid is not None and tid != emitter.good_trace_id:
                    merged = emitter.check_trace_id(fields, fields, None)
            else:
                event_fields = msg._event
                merged = {**event_fields, **fields}
                if merged.get("trace_id") is not msg.trace_id:
                    merged = emitter.check_trace_id(merged, fields, msg)
                elif event_fields is emitter.plain_event:  # only the call's own values to see
                    odd = _is_odd(fields) if fields else False
        else:
            merged = emitter.base_fields(fields)
        if emitter.threshold is not None and not emitter.keep(merged.get("trace_id")):
            emitter.sampled_out += 1
            return
        ts = now_ns()
        spans = emitter.spans
        if spans is None:
            emitter.write(stage, action, merged, ts, None, odd)
            return
    except Exception as exc:
        emitter.lost(exc)
        return
    span = token = after = None
    try:  # a span that cannot start costs the span, not the event
        parent = msg.parent_span_id if msg is not None else None
        span, token, span_id = spans.start(
            stage, action, merged, emitter.source, emitter.actor, parent, ts
        )
        after = {"span_id": span_id}
    except Exception:
        emitter.internal_errors += 1
    seq = None
    try:
        seq = emitter.write(stage, action, merged, ts, after, odd)
    except Exception as exc:
        seq = emitter.lost(exc)  # (the span holds the event: its seq fills the log's jump)
    if span is not None:
        try:  # ended even when the event failed: its context must not stay attached
            spans.finish(span, token, ts, None, seq)
        except Exception:
            emitter.internal_errors += 1


#: Guards the first re-entry of a stage object (its list of nested entries made once).
_NESTING = threading.Lock()


class _Stage:
    """One stage of a message: context manager (sync and async) and decorator.

    The event is written when the stage ends, stamped with its start time and carrying
    ``duration_ms`` and ``status``: ``ok``; ``error`` (with ``error``, level error) for an
    ``Exception``, which is recorded and re-raised unchanged; ``closed`` for GeneratorExit (a
    generator closed early); ``cancelled`` for the other BaseExceptions (asyncio's
    CancelledError, KeyboardInterrupt...), which, as in OpenTelemetry's ``use_span``, are no
    errors: no ``error``, level unchanged, span status unset.

    Entered again while active (nested, recursion, another task), the object begins one more
    stage, as ``stage()`` called again with its arguments would: each entry writes its own
    event and span, and each exit ends the entry made last in its own context (task,
    thread). ``set()`` goes to that entry too. Used again after its block, it starts afresh.
    """

    __slots__ = (
        "_action",
        "_emitter",
        "_fields",
        "_free",
        "_generator",
        "_late",
        "_marked",
        "_merged",
        "_nested",
        "_odd",
        "_span",
        "_span_id",
        "_stage",
        "_start",
        "_token",
    )
    _generator: int | None  # nested entries only (_reenter): the generator frame's id

    def __init__(self, stage: str, action: str, fields: dict[str, Any]) -> None:
        # _merged, _odd, _span_id, _start and _token are set by __enter__ before anything
        # reads them. _fields stays as given: each entry merges it with its own context.
        self._stage = stage
        self._action = action
        self._fields = fields
        # Empty while an entry is open in these slots: taken and given back by one list call
        # each, atomic under the GIL (review 20c: a test and a set apart let two threads in)
        self._free = [None]
        self._marked = False  # the entry in the slots is in its context's nested entries
        self._nested: list[_Stage] | None = None  # entries made while it was (review 20a)
        self._emitter: _Emitter | None = None
        self._late: dict[str, Any] | None = None
        self._span: Span | None = None

    def __copy__(self) -> _Stage:
        """A stage object of the same arguments, of its own (a copy of the slots would share
        the busy token and the nested entries of this one: review 20d)."""
        return _Stage(self._stage, self._action, self._fields)

    def __deepcopy__(self, memo: dict[int, Any]) -> _Stage:
        import copy

        return _Stage(self._stage, self._action, copy.deepcopy(self._fields, memo))

    def set(self, **fields: Any) -> None:
        """Add fields learnt during the stage (e.g. the ``msg_id`` the server assigned); they
        go on the event and, for the keys spans carry, on the span."""
        if self._nested:
            nested = self._entry_here()
            if nested is not None:
                nested.set(**fields)
                return
        if self._late is None:
            self._late = fields
        else:
            self._late.update(fields)
        if self._span is not None:
            try:
                from tracekit._otel import span_attributes

                self._span.set_attributes(span_attributes(fields))
            except Exception:
                pass

    def __enter__(self) -> _Stage:
        try:
            self._free.pop()
        except IndexError:
            return self._reenter()
        # This context's nested entries of ours, still open, were made before this one: it
        # is the latest here, for set() and the next exit (review 20d: they went to one of
        # those). Marked in the context only then (rarely: the plain path pays one test).
        self._marked = bool(self._nested) and self._nested_here() is not None
        if self._marked:
            _reentered.set((*_open_here(), self))
        emitter = (_scoped.get() or _emitter) if _any_scoped else _emitter
        if emitter is None:
            return self
        try:
            # Emitter.base_fields, inlined: this runs for every stage.
            fields = self._fields
            msg = _current.get()
            bound = _bound.get()
            odd = None
            if bound is None:
                if msg is not None:
                    event_fields = msg._event
                    if not fields and event_fields is emitter.plain_event:
                        # The usual stage: no fields of its own, in a message already seen
                        # (its trace id the message's, no odd value): its fields as they are.
                        fields = event_fields
                        odd = False
                    else:
                        fields = {**event_fields, **fields}
                        if fields.get("trace_id") is not msg.trace_id:
                            fields = emitter.check_trace_id(fields, self._fields, msg)
                        elif not self._fields and not _is_odd(event_fields):
                            emitter.plain_event = event_fields
                            odd = False
                elif "trace_id" in fields:
                    fields = emitter.check_trace_id(fields, fields, None)
            else:
                fields = emitter.base_fields(fields)
            if emitter.threshold is not None and not emitter.keep(fields.get("trace_id")):
                emitter.sampled_out += 1
                return self
            self._merged = fields
            self._odd = odd
            self._start = start = now_ns()
            self._emitter = emitter
        except Exception as exc:
            emitter.lost(exc)
            return self
        spans = emitter.spans
        if spans is not None:
            try:  # a span that cannot start costs the span, not the event
                self._span, self._token, self._span_id = spans.start(
                    self._stage,
                    self._action,
                    fields,
                    emitter.source,
                    emitter.actor,
                    msg.parent_span_id if msg is not None else None,
                    start,
                )
            except Exception:
                emitter.internal_errors += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._nested and self._exit_nested(exc_type, exc, tb):
            return
        # The entry's slots are read before the object is free again: another thread may
        # enter it as soon as it is (review 20c: an event with another thread's trace id)
        emitter, self._emitter = self._emitter, None
        late, self._late = self._late, None  # (the next use of the object starts afresh)
        if self._marked:  # (no longer the latest entry of its context)
            self._marked = False
            _reentered.set(tuple(n for n in _reentered.get() if n is not self))
        if emitter is None:
            if not self._free:  # (an exit too many gives back nothing: one token, one entry)
                self._free.append(None)
            return
        span, self._span = self._span, None
        merged, start, odd = self._merged, self._start, self._odd
        span_id, token = (self._span_id, self._token) if span is not None else (None, None)
        self._free.append(None)
        end = now_ns()
        seq = None
        try:
            fields = merged if late is None else {**merged, **late}
            after: dict[str, Any] = {} if span is None else {"span_id": span_id}
            # Rounded to the microsecond in integers (round(x, 3) on a float costs 0.3 us).
            after["duration_ms"] = (end - start + 500) // 1000 / 1000
            if exc is None:
                after["status"] = "ok"
            elif isinstance(exc, Exception):
                after["status"] = "error"
                after["error"] = exception_text(exc)
                after["level"] = "error"
            else:
                after["status"] = "closed" if isinstance(exc, GeneratorExit) else "cancelled"
            seq = emitter.write(
                self._stage, self._action, fields, start, after, odd if late is None else None
            )
        except Exception as failure:
            seq = emitter.lost(failure)
        if span is not None:
            # Even when the event failed: the span's context must be detached and the span ended.
            try:
                emitter.spans.finish(span, token, end, exc, seq)  # type: ignore[union-attr]
            except Exception:
                emitter.internal_errors += 1

    def _reenter(self) -> _Stage:
        """Entered again while active: one more stage, of its own (review 20a: the entry
        overwrote the open one, whose event was then lost without a word)."""
        nested = _Stage(self._stage, self._action, self._fields)
        nested._generator = _generator_frame()
        nested.__enter__()
        if self._nested is None:
            with _NESTING:  # (two threads making it at once: one's entry lost)
                if self._nested is None:
                    self._nested = []
        self._nested.append(nested)
        _reentered.set((*_open_here(), nested))
        return self

    def _nested_here(self, plain: bool = False) -> _Stage | None:
        """The open entry of ours made last in this context, if one was made here (by plain
        code: not a generator's, which its own frame ends)."""
        # (a copy, made by one call: another thread's entry removed from the list while it
        # was walked made the walk skip ours, review 20c)
        mine = tuple(self._nested or ())
        for nested in reversed(_reentered.get()):
            if nested is self:  # (the entry in the slots is the latest here)
                return None
            if any(nested is m for m in mine) and not (plain and nested._generator is not None):
                return nested
        return None

    def _entry_here(self) -> _Stage | None:
        """The nested entry that ``set()`` and an exit here go to; None: the first entry.

        A generator's block can end in another context than it began (closed by the
        collector or a loop's finaliser, resumed by another task), but always in its own
        frame: a generator's code goes to the entry its frame made, else to the first entry
        while open (review 21c: a context-based choice took another generator's entry, or a
        ``@contextmanager`` helper's). Plain code goes to the entry made last by plain code
        in its context, else to one made elsewhere (:meth:`_made_elsewhere`)."""
        generator = _generator_frame()
        if generator is not None:
            for nested in reversed(tuple(self._nested or ())):
                if nested._generator == generator:
                    return nested
            if not self._free:
                return None
        return self._nested_here(plain=True) or self._made_elsewhere()

    def _exit_nested(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        """End the nested entry this exit belongs to (:meth:`_entry_here`). False: the
        first entry's exit."""
        nested = self._entry_here()
        if nested is None:
            return False
        _reentered.set(tuple(n for n in _open_here() if n is not nested))
        try:
            self._nested.remove(nested)  # type: ignore[union-attr]
        except ValueError:  # ended meanwhile by another context's exit (the fallback)
            return False
        nested.__exit__(exc_type, exc, tb)
        return True

    def _made_elsewhere(self) -> _Stage | None:
        """The entry plain code's exit ends when its context made no nested entry of ours:
        the first entry while it is open, else the newest nested entry plain code made
        (a generator's ends in its own frame), else the newest (every exit ends one)."""
        mine = tuple(self._nested or ())
        if not mine or not self._free:
            return None
        plain = [n for n in mine if n._generator is None]
        return (plain or mine)[-1]

    async def __aenter__(self) -> _Stage:
        return self.__enter__()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.__exit__(exc_type, exc, tb)

    def _hold(self) -> None:
        """Make the stage's span current again (a generator stage, while its body runs)."""
        emitter = self._emitter
        if emitter is not None and self._span is not None and self._token is None:
            try:
                self._token = emitter.spans.attach(self._span)  # type: ignore[union-attr]
            except Exception:
                emitter.internal_errors += 1

    def _release(self) -> None:
        """Detach the stage's span (a generator stage, while its consumer runs)."""
        emitter = self._emitter
        if emitter is not None and self._span is not None and self._token is not None:
            token, self._token = self._token, None
            try:
                emitter.spans.detach(token)  # type: ignore[union-attr]
            except Exception:
                emitter.internal_errors += 1

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        stage, action, static = self._stage, self._action, self._fields
        if inspect.isgeneratorfunction(fn):
            gfn = fn

            @functools.wraps(fn)
            def generator_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                return (
                    yield from _stage_generator(
                        _Stage(stage, action, dict(static)), gfn, args, kwargs
                    )
                )

            return cast("Callable[P, R]", generator_wrapper)
        if inspect.isasyncgenfunction(fn):
            agfn = fn

            @functools.wraps(fn)
            async def async_generator_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                # The stage spans the iteration, as _stage_generator's; written out here
                # because an async generator cannot delegate with ``yield from``.
                st = _Stage(stage, action, dict(static))
                gen = agfn(*args, **kwargs)
                st.__enter__()
                st._release()
                failure: BaseException | None = None
                send: Any = None
                throw: BaseException | None = None
                try:
                    while True:
                        st._hold()
                        try:
                            if throw is None:
                                item = await gen.asend(send)
                            else:
                                item = await gen.athrow(throw)
                        except StopAsyncIteration:
                            return
                        finally:
                            st._release()
                        throw = None
                        try:
                            send = yield item
                        except GeneratorExit:
                            st._hold()
                            try:
                                await gen.aclose()
                            finally:
                                st._release()
                            raise
                        except BaseException as exc:
                            throw = exc
                except BaseException as exc:
                    failure = exc
                    raise
                finally:
                    st.__exit__(None if failure is None else type(failure), failure, None)

            return cast("Callable[P, R]", async_generator_wrapper)
        if inspect.iscoroutinefunction(fn):
            afn = cast("Callable[P, Awaitable[Any]]", fn)

            @functools.wraps(fn)
            async def async_wrapper(*args: P.args, **kwargs: P.kwargs) -> Any:
                with _Stage(stage, action, dict(static)):
                    return await afn(*args, **kwargs)

            return cast("Callable[P, R]", async_wrapper)

        @functools.wraps(fn)
        def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
            with _Stage(stage, action, dict(static)):
                return fn(*args, **kwargs)

        return wrapper


def _stage_generator(
    st: _Stage,
    fn: Callable[..., Generator[Any, Any, Any]],
    args: tuple[Any, ...],
    kwargs: dict[str, Any],
) -> Generator[Any, Any, Any]:
    """Run a generator function's generator as one stage: from its first step to its end
    (exhausted, raised, or closed early: status ``closed``). The stage's span is current only
    while the body runs, never in the consumer between steps."""
    gen = fn(*args, **kwargs)
    st.__enter__()
    st._release()
    failure: BaseException | None = None
    send: Any = None
    throw: BaseException | None = None
    try:
        while True:
            st._hold()
            try:
                item = gen.send(send) if throw is None else gen.throw(throw)
            except StopIteration as stop:
                return stop.value
            finally:
                st._release()
            throw = None
            try:
                send = yield item
            except GeneratorExit:
                st._hold()
                try:
                    gen.close()
                finally:
                    st._release()
                raise
            except BaseException as exc:
                throw = exc
    except BaseException as exc:
        failure = exc
        raise
    finally:
        st.__exit__(None if failure is None else type(failure), failure, None)


_STAGE_CODES = frozenset(
    method.__code__
    for method in (
        _Stage.__enter__,
        _Stage.__aenter__,
        _Stage.__exit__,
        _Stage.__aexit__,
        _Stage._reenter,
        _Stage._exit_nested,
        _Stage._entry_here,
        _Stage.set,
    )
)


class _NoopStage:
    """What an unconfigured ``stage()`` returns: entering and leaving it does nothing, and as a
    decorator it wraps the function in a real stage with *its own* arguments (decorators usually
    run at import, before ``configure()``).

    Built by calling the class without arguments and setting three slots: no ``__init__``, so
    construction is ``object.__new__`` plus three stores, about as cheap as the per-thread
    store of the arguments this replaced (measured in docs/performance.md)."""

    __slots__ = ("_action", "_fields", "_stage")

    _stage: str
    _action: str
    _fields: dict[str, Any]

    def set(self, **fields: Any) -> None:
        return None

    def __enter__(self) -> _NoopStage:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    async def __aenter__(self) -> _NoopStage:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def __call__(self, fn: Callable[P, R]) -> Callable[P, R]:
        return _Stage(self._stage, self._action, self._fields)(fn)


def stage(stage: str, action: str, /, **fields: Any) -> _Stage | _NoopStage:
    """A stage of the current message, e.g. ``with tracekit.stage("REST", "persist"):``.

    Also ``async with`` and a decorator (``@tracekit.stage("REPO", "add")``). Fields given
    here (``peer=``, ``conv_id=``, ``msg_id=``, ``event=``...) go on the event and the span.
    """
    # Unconfigured: two global reads and a three-slot no-op object that remembers the
    # arguments (what a decorator applied now and run after configure() needs).
    if _emitter is None and (not _any_scoped or _scoped.get() is None):
        noop = _NoopStage()
        noop._stage = stage
        noop._action = action
        noop._fields = fields
        return noop
    return _Stage(stage, action, fields)
