"""Carry a message's trace across processes: HTTP headers, WebSocket payloads, any dict.

``inject`` writes the W3C ``traceparent`` (so OpenTelemetry spans form one trace) plus the
message's own keys; ``extract`` reads them back into a :class:`MessageContext`. Carriers are
reached through small getter/setter seams, like the OpenTelemetry propagators API.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, MutableMapping
from typing import Any, Final

from tracekit import _core
from tracekit._context import MessageContext, canonical_trace_id, current

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

# W3C trace context: version, trace id, parent id, flags. A version above 00 may append fields
# after a dash: its first four are read as version 00's (version ff is invalid).
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})")
_ZERO_SPAN = "0" * 16

# conv_id / msg_id are carried percent-encoded (UTF-8) outside of the HTTP token characters
# (RFC 9110 tchar, less "%"): a header value then never holds a control character, a space or
# a non-ASCII byte, so no client refuses the request and no server reads it as latin-1.
_TOKEN = frozenset("!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")
_PLAIN = re.compile(r"[!#$&'*+\-.^_`|~0-9A-Za-z]*")
_ESCAPED = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
#: Longest encoded conv_id / msg_id carried: a longer one is left out (a few KB of headers
#: already make servers answer 431; an id is short).
MAX_ID_LENGTH: Final = 512


def _encode(value: object) -> str | None:
    """``value`` as a header-safe string, or None when it cannot be carried."""
    text = value if isinstance(value, str) else str(value)
    if len(text) <= MAX_ID_LENGTH and (
        (text.isascii() and text.isalnum()) or _PLAIN.fullmatch(text)
    ):
        return text
    out = "".join(
        c if c in _TOKEN else "".join(f"%{b:02X}" for b in c.encode("utf-8")) for c in text
    )  # UnicodeEncodeError (a lone surrogate): not carried
    return out if len(out) <= MAX_ID_LENGTH else None


def _decode(value: str | None) -> str | None:
    """The id :func:`_encode` wrote. A value that is no valid encoding is kept as received."""
    if value is None or "%" not in value:
        return value
    try:
        return _ESCAPED.sub(lambda m: bytes.fromhex(m.group().replace("%", "")).decode(), value)
    except ValueError:  # not UTF-8: not ours (an older or foreign sender)
        return value


def dict_setter(carrier: MutableMapping[str, str], key: str, value: str) -> None:
    """Set a key on a dict or a headers mapping (httpx/starlette headers included)."""
    carrier[key] = value


def dict_getter(carrier: Mapping[str, Any] | Iterable[tuple[Any, Any]], key: str) -> str | None:
    """Read a key, case-insensitively for plain dicts (HTTP header names are).

    The carrier is a mapping or anything with ``get`` (a dict; httpx, starlette or werkzeug
    headers; ``http.client.HTTPMessage``) or a list of (name, value)
    pairs: raw ASGI headers (``scope["headers"]``, bytes names and values) or Kafka's (str
    names, bytes values); a name may be bytes. A bytes value is decoded; a list or tuple of
    values (a multi-valued header, OpenTelemetry's getter convention) gives its first value."""
    if isinstance(carrier, list | tuple):
        value = _by_name(carrier, key)
    elif callable(get := getattr(carrier, "get", None)):  # a mapping, or headers that are
        # none (werkzeug's, http.client's HTTPMessage: review 19c, extract() went blind)
        value = get(key)
        if value is None and isinstance(carrier, dict):
            value = _by_name(carrier.items(), key)
    else:
        return None
    if isinstance(value, str):
        return value
    if isinstance(value, list | tuple) and value:
        value = value[0]
        if isinstance(value, str):
            return value
    if isinstance(value, bytes | bytearray):
        return _text(bytes(value))
    return None


def _by_name(pairs: Iterable[Any], key: str) -> Any:
    """The value of the first (name, value) pair named ``key`` in any case, str or bytes."""
    lowered = key.lower()
    for pair in pairs:
        if not isinstance(pair, tuple | list) or len(pair) != 2:
            continue
        name = pair[0]
        if isinstance(name, bytes | bytearray):
            name = bytes(name).decode("latin-1")
        if isinstance(name, str) and name.lower() == lowered:
            return pair[1]
    return None


def _text(raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        return raw.decode("latin-1")


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
    message, so the receiving process's spans become its children. ``conv_id`` and ``msg_id``
    are percent-encoded (UTF-8) outside of the HTTP token characters, so any id is a valid header
    value; one longer than :data:`MAX_ID_LENGTH` encoded is left out. Never raises.
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
        for key, value in ((CONV_HEADER, msg.conv_id), (MSG_HEADER, msg.msg_id)):
            if value is not None:
                try:
                    encoded = _encode(value)
                except Exception:
                    encoded = None
                if encoded is not None:
                    setter(carrier, key, encoded)
    except Exception:
        if emitter is not None:
            emitter.internal_errors += 1


def extract(carrier: Any, getter: Getter = dict_getter) -> MessageContext | None:
    """Read a message's trace context from ``carrier``; None when absent or malformed.

    ``tracekit-trace-id`` names the message (32 hex or the client's message UUID); ``traceparent``
    gives the remote parent span when it is of the same trace. Either alone is enough: a
    ``tracekit-trace-id`` that is no trace id is ignored in favour of a valid ``traceparent``.
    Never raises, whatever the carrier or the getter does.
    """
    try:
        trace_id = canonical_trace_id(_get(carrier, getter, TRACE_HEADER))
        remote = _traceparent(_get(carrier, getter, TRACEPARENT))
        if trace_id is None:
            if remote is None:
                return None
            trace_id = remote[0]
        return MessageContext(
            trace_id=trace_id,
            conv_id=_decode(_get(carrier, getter, CONV_HEADER)),
            msg_id=_decode(_get(carrier, getter, MSG_HEADER)),
            parent_span_id=remote[1] if remote is not None and remote[0] == trace_id else None,
        )
    except Exception:
        return None


def _get(carrier: Any, getter: Getter, key: str) -> str | None:
    """The getter's value when it is a string (a custom getter may return anything)."""
    try:
        value = getter(carrier, key)
    except Exception:
        return None
    return value if isinstance(value, str) else None


def _traceparent(value: str | None) -> tuple[str, str | None] | None:
    """(trace id, parent span id or None) of a W3C ``traceparent``; None when it is invalid."""
    if not value:
        return None
    value = value.strip().lower()
    match = _TRACEPARENT.match(value)
    if match is None:
        return None
    version, trace_id, span_id, _ = match.groups()
    if version == "ff" or (len(value) != 55 and (version == "00" or value[55] != "-")):
        return None
    if canonical_trace_id(trace_id) is None or span_id == _ZERO_SPAN:
        return None  # (W3C: an all-zero parent id makes the whole header invalid)
    return trace_id, span_id
