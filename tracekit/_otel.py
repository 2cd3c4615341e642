"""OpenTelemetry spans for stages. Imported only when ``configure(otel=...)`` turns spans on,
so unconfigured and span-less processes never pay for the OpenTelemetry API.
"""

from __future__ import annotations

import random
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
    TracerProvider,
)

from tracekit._processors import exception_text
from tracekit._processors import safe_text as _text

__all__ = ["SpanFactory", "current_span_id", "span_attributes"]

# Set next to every attach of a stage's span: resetting it tells whether the detach happens in
# the context that attached (an async generator left early is finalised in another task's copy
# of the context). There, OpenTelemetry's detach fails and logs an ERROR with a traceback; the
# probe fails the same way, quietly, and the detach is skipped. The span then stays current in
# the context that attached it although it has ended: it is recorded as stranded, and nothing
# nests under it. (An ended span is otherwise a fine parent: a framework's server span, ended
# when the response went out, still parents the work of a background task.)
_PROBE: ContextVar[None] = ContextVar("tracekit_span_probe", default=None)
_STRANDED: dict[int, None] = {}  # span ids, oldest first
_STRANDED_MAX = 1024
_Tokens = tuple[object, Token[None], Span]


def _attach(span: Span) -> _Tokens:
    return otel_context.attach(trace.set_span_in_context(span)), _PROBE.set(None), span


def _detach(tokens: object) -> None:
    if not isinstance(tokens, tuple):
        return
    token, probe, span = tokens
    try:
        _PROBE.reset(probe)
    except ValueError:  # another context: the span was never current here
        _STRANDED[span.get_span_context().span_id] = None
        if len(_STRANDED) > _STRANDED_MAX:
            try:  # another thread may trim it at the same time
                del _STRANDED[next(iter(_STRANDED))]
            except (KeyError, RuntimeError, StopIteration):
                pass
        return
    otel_context.detach(token)


def _stranded(span: Span) -> bool:
    return bool(_STRANDED) and span.get_span_context().span_id in _STRANDED


# messaging.operation.type per action (OpenTelemetry messaging semantic conventions).
_OPERATION = {
    "send": "send",
    "request": "send",
    "deliver": "send",
    "start": "send",
    "persist": "process",
    "add": "process",
    "receive": "receive",
    "response": "receive",
    "fetch_start": "receive",
    "fetch_end": "receive",
}
_KIND = {
    ("REST", "request"): SpanKind.CLIENT,
    ("REST", "fetch_start"): SpanKind.CLIENT,
    ("REST", "persist"): SpanKind.SERVER,
    ("WS-BROADCAST", "deliver"): SpanKind.PRODUCER,
    ("WS-RECV", "receive"): SpanKind.CONSUMER,
}
_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_OPTIONAL = (
    ("msg_id", "messaging.message.id"),
    ("conv_id", "messaging.message.conversation_id"),
    ("peer", "tracekit.peer"),
)


def _phantom_parent_id(trace_id: str) -> int:
    # A message's spans that have no parent in their process hang under one shared, derived
    # parent id, so every process of the trace agrees on it without talking to each other.
    return int(trace_id[16:], 16) or 1


def _untraced_parent() -> otel_context.Context:
    """A sampled remote parent in a new trace, for a span of an event of no message."""
    remote = SpanContext(
        random.getrandbits(128) or 1,
        random.getrandbits(64) or 1,
        is_remote=True,
        trace_flags=_SAMPLED,
    )
    return trace.set_span_in_context(NonRecordingSpan(remote))


def _names(value: object) -> tuple[str, ...] | None:
    """A recipients list as a span attribute (a sequence of strings); None for anything
    else (the event's own check words it: no span attribute guesses at it)."""
    if isinstance(value, list | tuple) and all(type(v) is str for v in value):
        return tuple(value)
    return None


def span_attributes(fields: dict[str, Any]) -> dict[str, str | tuple[str, ...]]:
    """The span attributes for event fields learnt after the span started."""
    out: dict[str, str | tuple[str, ...]] = {
        attr: _text(fields[key]) for key, attr in _OPTIONAL if fields.get(key) is not None
    }
    if fields.get("actor") is not None:
        out["tracekit.actor"] = _text(fields["actor"])
    if (names := _names(fields.get("recipients"))) is not None:
        out["tracekit.recipients"] = names
    return out


class SpanFactory:
    """Starts stage spans in the message's trace."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        from tracekit import __version__

        source = provider if provider is not None else trace.get_tracer_provider()
        self._tracer = source.get_tracer("tracekit", __version__)
        # The remote parent of the last message seen, as (trace id, parent span id, int trace
        # id, context): consecutive stages of one message reuse it. One tuple, replaced whole,
        # so threads never see a key with another key's context.
        self._parent: tuple[str, str | None, int, otel_context.Context] | None = None
        # (span name, kind, messaging.operation.type) per (stage, action).
        self._kinds: dict[tuple[str, str], tuple[str, SpanKind, str]] = {}

    def _remote_parent(
        self, trace_id: str, parent_span_id: str | None
    ) -> tuple[int, otel_context.Context] | None:
        cached = self._parent
        if cached is not None and cached[0] == trace_id and cached[1] == parent_span_id:
            return cached[2], cached[3]
        try:
            tid = int(trace_id, 16)
            sid = int(parent_span_id, 16) if parent_span_id else _phantom_parent_id(trace_id)
        except ValueError:
            return None
        remote = SpanContext(tid, sid, is_remote=True, trace_flags=_SAMPLED)
        context = trace.set_span_in_context(NonRecordingSpan(remote))
        self._parent = (trace_id, parent_span_id, tid, context)
        return tid, context

    def start(
        self,
        stage: str,
        action: str,
        fields: dict[str, Any],
        source: str,
        actor: str,
        parent_span_id: str | None,
        start_ns: int,
    ) -> tuple[Span, object, str]:
        """Start the stage's span and make it current; returns it, the context token to
        give back to :meth:`finish`, and its span id as 16 hex digits."""
        trace_id = fields.get("trace_id")
        parent: otel_context.Context | None = None
        span_now = trace.get_current_span()
        if isinstance(trace_id, str) and len(trace_id) == 32:
            remote = self._remote_parent(trace_id, parent_span_id)
            if remote is not None:
                # Under a current span of the same trace (e.g. the web framework's server
                # span, or an enclosing stage), nest in it; otherwise join the remote parent.
                current = span_now.get_span_context()
                if not (
                    current.is_valid and current.trace_id == remote[0] and not _stranded(span_now)
                ):
                    parent = remote[1]
        elif trace_id is None and not span_now.get_span_context().is_valid:
            # An event of no message (a history load's fetch) starts a trace of its own:
            # sampled, as a message's spans are (a ratio sampler dropped some of a log's
            # fetches from the spans alone: races and drops unsaid, false ones)
            parent = _untraced_parent()
        if parent is None and _stranded(span_now):
            # a span left current by a stage finished in another context: its parent
            above = getattr(span_now, "parent", None)
            parent = (
                trace.set_span_in_context(NonRecordingSpan(above))
                if above is not None
                else otel_context.Context()
            )
        kind = self._kinds.get((stage, action))
        if kind is None:
            kind = self._kinds[(stage, action)] = (
                f"{stage} {action}",
                _KIND.get((stage, action), SpanKind.INTERNAL),
                _OPERATION.get(action, "process"),
            )
        # Few attributes on purpose: the SDK validates each one (about 1 us apiece).
        attributes: dict[str, Any] = {
            "messaging.operation.type": kind[2],
            "tracekit.stage": stage,
            "tracekit.action": action,
            "tracekit.actor": actor,
            "tracekit.source": source,
        }
        value = fields.get("actor")
        if type(value) is str:
            if value:
                attributes["tracekit.actor"] = value
        elif value is not None:  # an odd value (raising __bool__/__str__) must not cost the span
            attributes["tracekit.actor"] = _text(value)
        for key, attr in _OPTIONAL:
            value = fields.get(key)
            if value is not None:
                attributes[attr] = value if type(value) is str else _text(value)
        if trace_id is None:  # the span's trace id is no trace id of the event's
            attributes["tracekit.untraced"] = True
        # The broadcast's recipients: read from spans alone, the expected deliveries (without
        # them a span-only analysis guessed them from membership: drops to the wrong people)
        if "recipients" in fields and (names := _names(fields["recipients"])) is not None:
            attributes["tracekit.recipients"] = names
        span = self._tracer.start_span(
            kind[0], context=parent, kind=kind[1], attributes=attributes, start_time=start_ns
        )
        span_id = "%016x" % span.get_span_context().span_id  # noqa: UP031 (faster than f"")
        # Last: nothing after the attach can fail and leave the context attached.
        return span, _attach(span), span_id

    @staticmethod
    def attach(span: Span) -> object:
        """Make ``span`` current (a generator stage, for each step of its body)."""
        return _attach(span)

    @staticmethod
    def detach(token: object) -> None:
        _detach(token)

    @staticmethod
    def finish(
        span: Span, token: object, end_ns: int, exc: BaseException | None, seq: int | None
    ) -> None:
        """Detach the span's context and end it. Only an ``Exception`` is an error (as in
        OpenTelemetry's ``use_span``): GeneratorExit, CancelledError, KeyboardInterrupt end the
        span with its status unset. The span is ended whatever else fails."""
        if token is not None:
            try:
                _detach(token)
            except Exception:
                pass
        try:
            if seq is not None:
                span.set_attribute("tracekit.seq", seq)
            if isinstance(exc, Exception):
                text = exception_text(exc)
                try:
                    span.record_exception(exc)
                except Exception:  # the SDK calls str(exc), which may raise
                    span.add_event(
                        "exception",
                        {"exception.type": type(exc).__qualname__, "exception.message": text},
                    )
                span.set_status(Status(StatusCode.ERROR, text))
        finally:
            span.end(end_time=end_ns)


def current_span_id(trace_id: str) -> str | None:
    """The current span's id if it belongs to ``trace_id`` (for ``inject``)."""
    span = trace.get_current_span()
    ctx = getattr(span, "parent", None) if _stranded(span) else span.get_span_context()
    if ctx is not None and ctx.is_valid and f"{ctx.trace_id:032x}" == trace_id:
        return f"{ctx.span_id:016x}"
    return None
