"""Carry a message's trace across processes: HTTP headers, WebSocket payloads, any dict.

``inject`` writes the W3C ``traceparent`` (so OpenTelemetry spans form one trace) plus the
message's own keys; ``extract`` reads them back into a :class:`MessageContext`. Carriers are
reached through small getter/setter seams, like the OpenTelemetry propagators API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, MutableMapping
from typing import Any, Final

from tracekit import _core
from tracekit._context import MessageContext, current
from tracekit.schema import is_trace_id

__all__ = [
    "CONV_HEADER",
    "ENVELOPE_KEY",
    "MSG_HEADER",
    "TRACEPARENT",
    "TRACE_HEADER",
    "Getter",
    "Setter",
    "dict_getter",
    "dict_setter",
    "envelope_getter",
    "envelope_setter",
    "extract",
    "inject",
]

TRACEPARENT: Final = "traceparent"
TRACE_HEADER: Final = "tracekit-trace-id"
CONV_HEADER: Final = "tracekit-conv-id"
MSG_HEADER: Final = "tracekit-msg-id"
#: Key of the envelope that ``envelope_setter`` adds to a WebSocket payload dict.
ENVELOPE_KEY: Final = "_trace"

Getter = Callable[[Any, str], str | None]
Setter = Callable[[Any, str, str], None]

_TRACEPARENT = re.compile(r"00-([0-9a-f]{32})-([0-9a-f]{16})-[0-9a-f]{2}")


def dict_setter(carrier: MutableMapping[str, str], key: str, value: str) -> None:
    """Set a key on a dict or a headers mapping (httpx/starlette headers included)."""
    carrier[key] = value


def dict_getter(carrier: Mapping[str, Any], key: str) -> str | None:
    """Read a key, case-insensitively for plain dicts (HTTP header names are)."""
    value = carrier.get(key)
    if value is None and isinstance(carrier, dict):
        lowered = key.lower()
        for k, v in carrier.items():
            if isinstance(k, str) and k.lower() == lowered:
                value = v
                break
    return value if isinstance(value, str) else None


def envelope_setter(carrier: MutableMapping[str, Any], key: str, value: str) -> None:
    """Put trace keys in the payload's ``_trace`` envelope, leaving the app's keys alone."""
    envelope = carrier.get(ENVELOPE_KEY)
    if not isinstance(envelope, dict):
        envelope = carrier[ENVELOPE_KEY] = {}
    envelope[key] = value


def envelope_getter(carrier: Mapping[str, Any], key: str) -> str | None:
    envelope = carrier.get(ENVELOPE_KEY) if isinstance(carrier, Mapping) else None
    value = envelope.get(key) if isinstance(envelope, Mapping) else None
    return value if isinstance(value, str) else None


def inject(
    carrier: Any, setter: Setter = dict_setter, *, ctx: MessageContext | None = None
) -> None:
    """Write the current (or given) message's trace context into ``carrier``.

    The ``traceparent`` parent is the current OpenTelemetry span when it belongs to the
    message, so the receiving process's spans become its children. Never raises.
    """
    msg = ctx if ctx is not None else current()
    if msg is None:
        return
    emitter = _core._active()
    try:
        span_id = None
        if emitter is not None and emitter.spans is not None:
            from tracekit._otel import current_span_id

            span_id = current_span_id(msg.trace_id)
        if span_id is None:
            span_id = msg.parent_span_id or f"{int(msg.trace_id[16:], 16) or 1:016x}"
        setter(carrier, TRACEPARENT, f"00-{msg.trace_id}-{span_id}-01")
        setter(carrier, TRACE_HEADER, msg.trace_id)
        if msg.conv_id is not None:
            setter(carrier, CONV_HEADER, str(msg.conv_id))
        if msg.msg_id is not None:
            setter(carrier, MSG_HEADER, str(msg.msg_id))
    except Exception:
        if emitter is not None:
            emitter.internal_errors += 1


def extract(carrier: Any, getter: Getter = dict_getter) -> MessageContext | None:
    """Read a message's trace context from ``carrier``; None when absent or malformed.

    ``tracekit-trace-id`` names the message; ``traceparent`` gives the remote parent span when
    it is of the same trace (a traceparent alone is enough too).
    """
    try:
        trace_id = getter(carrier, TRACE_HEADER)
        parent = getter(carrier, TRACEPARENT)
        match = _TRACEPARENT.fullmatch(parent.strip().lower()) if parent else None
        if trace_id is not None:
            trace_id = trace_id.strip().lower()
            if not is_trace_id(trace_id):
                return None
        elif match is not None and is_trace_id(match.group(1)):
            trace_id = match.group(1)
        else:
            return None
        parent_span_id = None
        if match is not None and match.group(1) == trace_id and match.group(2) != "0" * 16:
            parent_span_id = match.group(2)
        return MessageContext(
            trace_id=trace_id,
            conv_id=getter(carrier, CONV_HEADER),
            msg_id=getter(carrier, MSG_HEADER),
            parent_span_id=parent_span_id,
        )
    except Exception:
        return None
