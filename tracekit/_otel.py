"""OpenTelemetry spans for stages. Imported only when ``configure(otel=...)`` turns spans on,
so unconfigured and span-less processes never pay for the OpenTelemetry API.
"""

from __future__ import annotations

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

__all__ = ["SpanFactory", "current_span_id", "span_attributes"]

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


def span_attributes(fields: dict[str, Any]) -> dict[str, str]:
    """The span attributes for event fields learnt after the span started."""
    out = {attr: str(fields[key]) for key, attr in _OPTIONAL if fields.get(key) is not None}
    if fields.get("actor") is not None:
        out["tracekit.actor"] = str(fields["actor"])
    return out


class SpanFactory:
    """Starts stage spans in the message's trace."""

    def __init__(self, provider: TracerProvider | None = None) -> None:
        from tracekit import __version__

        source = provider if provider is not None else trace.get_tracer_provider()
        self._tracer = source.get_tracer("tracekit", __version__)
        # The remote parent of the last message seen: consecutive stages of one message reuse it.
        # One tuple, replaced whole, so threads never see a key with another key's context.
        self._parent: tuple[tuple[int, int], otel_context.Context] | None = None
        self._names: dict[tuple[str, str], str] = {}

    def start(
        self,
        stage: str,
        action: str,
        fields: dict[str, Any],
        source: str,
        actor: str,
        parent_span_id: str | None,
        start_ns: int,
    ) -> tuple[Span, object]:
        trace_id = fields.get("trace_id")
        parent: otel_context.Context | None = None
        if isinstance(trace_id, str) and len(trace_id) == 32:
            tid = int(trace_id, 16)
            current = trace.get_current_span().get_span_context()
            if not (current.is_valid and current.trace_id == tid):
                sid = int(parent_span_id, 16) if parent_span_id else _phantom_parent_id(trace_id)
                cached = self._parent
                if cached is not None and cached[0] == (tid, sid):
                    parent = cached[1]
                else:
                    remote = SpanContext(tid, sid, is_remote=True, trace_flags=_SAMPLED)
                    parent = trace.set_span_in_context(NonRecordingSpan(remote))
                    self._parent = ((tid, sid), parent)
        # Few attributes on purpose: the SDK validates each one (about 1 us apiece).
        attributes: dict[str, Any] = {
            "messaging.operation.type": _OPERATION.get(action, "process"),
            "tracekit.stage": stage,
            "tracekit.action": action,
            "tracekit.actor": str(fields.get("actor") or actor),
            "tracekit.source": source,
        }
        for key, attr in _OPTIONAL:
            value = fields.get(key)
            if value is not None:
                attributes[attr] = str(value)
        name = self._names.get((stage, action))
        if name is None:
            name = self._names[(stage, action)] = f"{stage} {action}"
        span = self._tracer.start_span(
            name,
            context=parent,
            kind=_KIND.get((stage, action), SpanKind.INTERNAL),
            attributes=attributes,
            start_time=start_ns,
        )
        token = otel_context.attach(trace.set_span_in_context(span))
        return span, token

    @staticmethod
    def finish(
        span: Span, token: object, end_ns: int, exc: BaseException | None, seq: int | None
    ) -> None:
        try:
            otel_context.detach(token)  # type: ignore[arg-type]
        except Exception:
            pass
        if seq is not None:
            span.set_attribute("tracekit.seq", seq)
        if exc is not None:
            span.record_exception(exc)
            span.set_status(Status(StatusCode.ERROR, f"{type(exc).__name__}: {exc}"))
        span.end(end_time=end_ns)

    @staticmethod
    def span_id(span: Span) -> str:
        return f"{span.get_span_context().span_id:016x}"


def current_span_id(trace_id: str) -> str | None:
    """The current span's id if it belongs to ``trace_id`` (for ``inject``)."""
    ctx = trace.get_current_span().get_span_context()
    if ctx.is_valid and f"{ctx.trace_id:032x}" == trace_id:
        return f"{ctx.span_id:016x}"
    return None
