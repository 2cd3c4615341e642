"""Schema v1 of the trace event (DESIGN.md section 3): keys, stage vocabulary, validation, ids.

This module is the single owner of the event's shape; collectors, analyzers and the
instrumentation all take their names from here. It imports nothing heavy.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Mapping
from typing import Any, Final

from tracekit.errors import SchemaError

__all__ = [
    "ACTIONS",
    "EVENT_KEYS",
    "META_STAGE",
    "OPTIONAL_KEYS",
    "REQUIRED_KEYS",
    "SCHEMA_VERSION",
    "STAGES",
    "TEXT_KEYS",
    "derived_trace_id",
    "is_trace_id",
    "new_trace_id",
    "normalize_trace_id",
    "trace_id_from_uuid",
    "trace_id_to_uuid",
    "validate_event",
]

SCHEMA_VERSION: Final = 1

#: Keys every event must carry. ``trace_id`` is required only for message events.
REQUIRED_KEYS: Final = ("timestamp", "stage", "action", "event", "actor", "source", "seq")
#: Keys with a defined meaning that may be absent.
OPTIONAL_KEYS: Final = ("trace_id", "msg_id", "conv_id", "peer", "span_id", "level", "recipients")

#: Every key with a defined meaning, in the order events are written and tables are laid out.
EVENT_KEYS: Final = (
    "timestamp",
    "stage",
    "action",
    "event",
    "trace_id",
    "msg_id",
    "conv_id",
    "actor",
    "peer",
    "source",
    "seq",
    "span_id",
    "recipients",
    "level",
)

#: The default stage vocabulary; a pipeline model may add more.
STAGES: Final = frozenset({"CTRL", "REST", "REPO", "WS-BROADCAST", "WS-RECV"})
#: Actions of the default chat pipeline (DESIGN.md section 4) and of history loads.
ACTIONS: Final = frozenset(
    {
        "send",
        "request",
        "persist",
        "response",
        "start",
        "deliver",
        "receive",
        "add",
        "fetch_start",
        "fetch_end",
    }
)
#: Stage of tracekit's own bookkeeping events (sink drops, reconfiguration). Never a message hop.
META_STAGE: Final = "TRACEKIT"

#: Keys that hold message text; redacted unless the application opts in.
TEXT_KEYS: Final = frozenset({"text", "content", "body", "message", "message_text", "msg_text"})

_HEX32 = re.compile(r"[0-9a-f]{32}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ZERO_ID = "0" * 32


def derived_trace_id(seed: str) -> str:
    """The trace id of a message known only by an id that is no trace id (a server id, or
    ``actor + "\x1f" + temp id``): ``sha256("tracekit-derived:" + seed)[:32]``. The collectors
    (logs without trace ids) and ``message(bad_id)`` use this one recipe, so they agree."""
    return hashlib.sha256(b"tracekit-derived:" + seed.encode()).hexdigest()[:32]


def new_trace_id() -> str:
    """A fresh, valid (non-zero) trace id: 32 lowercase hex characters."""
    while True:
        tid = os.urandom(16).hex()
        if tid != _ZERO_ID:
            return tid


def is_trace_id(value: object) -> bool:
    """True for a canonical trace id (32 lowercase hex, not all zero)."""
    return isinstance(value, str) and value != _ZERO_ID and _HEX32.fullmatch(value) is not None


def trace_id_from_uuid(value: str | uuid.UUID) -> str:
    """Map a client message id UUID (with dashes) to its trace id (its 32 hex digits)."""
    if isinstance(value, uuid.UUID):
        return _checked(value.hex, str(value))
    if not isinstance(value, str) or _UUID.fullmatch(value) is None:
        raise SchemaError(
            f"not a UUID: {value!r} (expected 8-4-4-4-12 hex digits with dashes)", key="trace_id"
        )
    return _checked(value.replace("-", "").lower(), value)


def trace_id_to_uuid(trace_id: str) -> str:
    """The dashed UUID form of a trace id, e.g. to use it as a client message id."""
    if not is_trace_id(trace_id):
        raise SchemaError(
            f"not a trace id: {trace_id!r} (expected 32 lowercase hex digits, not all zero)",
            key="trace_id",
        )
    return str(uuid.UUID(hex=trace_id))


def normalize_trace_id(value: object) -> str:
    """Accept a trace id as 32 hex (any case) or as a dashed UUID; return the canonical form."""
    if isinstance(value, uuid.UUID):
        return trace_id_from_uuid(value)
    if isinstance(value, str):
        if len(value) == 32 and _HEX32.fullmatch(value.lower()):
            return _checked(value.lower(), value)
        if len(value) == 36:
            return trace_id_from_uuid(value)
    raise SchemaError(
        f"not a trace id: {value!r} (expected 32 hex digits or a UUID with dashes)",
        key="trace_id",
    )


def _checked(hex32: str, original: str) -> str:
    if hex32 == _ZERO_ID:
        raise SchemaError(f"the all-zero trace id is invalid: {original!r}", key="trace_id")
    return hex32


_STR_KEYS = ("timestamp", "stage", "action", "event", "actor", "source")


def validate_event(event: Mapping[str, Any], *, stages: frozenset[str] | None = None) -> None:
    """Raise :class:`SchemaError` naming the first missing or malformed key of ``event``.

    ``stages`` widens the vocabulary for custom pipeline models; by default the chat stages
    and tracekit's own ``TRACEKIT`` stage are accepted. ``timestamp`` may be an ISO string or
    an epoch number; its full parsing belongs to the collectors.
    """
    for key in REQUIRED_KEYS:
        if key not in event or event[key] is None:
            raise SchemaError(f"missing required key {key!r}", key=key)
    for key in _STR_KEYS:
        value = event[key]
        if key == "timestamp" and isinstance(value, int | float) and not isinstance(value, bool):
            continue
        if not isinstance(value, str) or not value:
            raise SchemaError(f"key {key!r} must be a non-empty string, got {value!r}", key=key)
    seq = event["seq"]
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 0:
        raise SchemaError(f"key 'seq' must be a non-negative integer, got {seq!r}", key="seq")
    allowed = (stages or STAGES) | {META_STAGE}
    if event["stage"] not in allowed:
        raise SchemaError(
            f"unknown stage {event['stage']!r} (known: {', '.join(sorted(allowed))})", key="stage"
        )
    trace_id = event.get("trace_id")
    if trace_id is not None and not is_trace_id(trace_id):
        raise SchemaError(
            f"key 'trace_id' must be 32 lowercase hex digits, got {trace_id!r}", key="trace_id"
        )
    recipients = event.get("recipients")
    if recipients is not None and not (
        isinstance(recipients, list) and all(isinstance(r, str) for r in recipients)
    ):
        raise SchemaError(
            f"key 'recipients' must be a list of strings, got {recipients!r}", key="recipients"
        )
