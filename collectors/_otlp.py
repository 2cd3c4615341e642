"""OTLP (spans and log records) -> schema v1 events.

Reads OTLP/JSON as the OpenTelemetry file exporter and the collector's ``file`` exporter write it
(one ``ExportTraceServiceRequest``/``ExportLogsServiceRequest`` per line, or one pretty-printed
document), and the dicts the receiver builds from protobuf bodies. Span mapping (what tracekit's
instrumentation emits): name ``"{stage} {action}"``, attributes ``tracekit.stage``,
``tracekit.action``, ``tracekit.actor``, ``tracekit.peer``, ``tracekit.source``, ``tracekit.seq``,
``tracekit.recipients``, ``messaging.message.id`` (msg_id),
``messaging.message.conversation_id`` (conv_id); the span's trace id is the message trace id and
its start time the event's timestamp. Log records map the same attributes (with or without the
``tracekit.`` prefix) or a body that is itself a JSON event. Spans and records without a stage
(foreign instrumentation) are counted as ignored.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, Final

import orjson

from tracekit.collectors._stats import InputStats
from tracekit.schema import EVENT_KEYS

if TYPE_CHECKING:  # polars loads only when a file is read: the receiver stays light
    import polars as pl

#: The schema keys a tracekit event may carry (tracekit.collectors._normalize.RAW_COLUMNS).
_RAW_KEYS: Final = (*EVENT_KEYS, "dropped")

__all__ = ["otlp_events", "read_otlp_json"]

_ATTR_KEYS: Final = {
    "tracekit.stage": "stage",
    "tracekit.action": "action",
    "tracekit.actor": "actor",
    "tracekit.peer": "peer",
    "tracekit.source": "source",
    "tracekit.seq": "seq",
    "tracekit.recipients": "recipients",
    "tracekit.conv_id": "conv_id",
    "tracekit.msg_id": "msg_id",
    "tracekit.event": "event",
    "messaging.message.id": "msg_id",
    "messaging.message.conversation_id": "conv_id",
}
_PLAIN_KEYS: Final = frozenset(_RAW_KEYS)


def _value(v: dict[str, Any]) -> Any:
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in v:
            return v[kind]
    if "intValue" in v:
        return int(v["intValue"])
    if "arrayValue" in v:
        return [_value(x) for x in v["arrayValue"].get("values", [])]
    if "kvlistValue" in v:
        return {kv["key"]: _value(kv.get("value", {})) for kv in v["kvlistValue"].get("values", [])}
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {a["key"]: _value(a.get("value", {})) for a in items or ()}


def _hex_id(value: Any, size: int) -> str | None:
    """OTLP/JSON ids are hex; protobuf's JSON mapping (MessageToDict) gives base64."""
    if not isinstance(value, str) or not value:
        return None
    if len(value) == size * 2:
        try:
            int(value, 16)
            return value.lower()
        except ValueError:
            pass
    try:
        raw = base64.b64decode(value, validate=True)
    except (binascii.Error, ValueError):
        return None
    if len(raw) != size or not any(raw):
        return None
    return raw.hex()


def _scopes(resource_item: dict[str, Any], new: str, old: str) -> Iterator[dict[str, Any]]:
    yield from resource_item.get(new) or resource_item.get(old) or ()


def _fields_from(attrs: dict[str, Any], into: dict[str, Any]) -> None:
    for key, val in attrs.items():
        name = _ATTR_KEYS.get(key)
        if name is None and key in _PLAIN_KEYS:
            name = key
        if name is not None and val is not None and into.get(name) is None:
            into[name] = val


def otlp_events(doc: dict[str, Any]) -> tuple[list[dict[str, Any]], int]:
    """Events from one OTLP/JSON export request; the second value counts foreign items."""
    events: list[dict[str, Any]] = []
    ignored = 0
    for rs in doc.get("resourceSpans") or ():
        res = _attrs((rs.get("resource") or {}).get("attributes"))
        default_source = res.get("service.instance.id") or res.get("service.name")
        for ss in _scopes(rs, "scopeSpans", "instrumentationLibrarySpans"):
            for span in ss.get("spans") or ():
                ev: dict[str, Any] = {}
                _fields_from(_attrs(span.get("attributes")), ev)
                name = span.get("name") or ""
                if ev.get("stage") is None or ev.get("action") is None:
                    ignored += 1
                    continue
                ev["event"] = ev.get("event") or name
                ev["timestamp"] = span.get("startTimeUnixNano")
                ev["trace_id"] = _hex_id(span.get("traceId"), 16)
                ev["span_id"] = _hex_id(span.get("spanId"), 8)
                ev.setdefault("source", default_source)
                code = (span.get("status") or {}).get("code")
                if code in (2, "STATUS_CODE_ERROR"):
                    ev["level"] = "error"
                events.append(ev)
    for rl in doc.get("resourceLogs") or ():
        res = _attrs((rl.get("resource") or {}).get("attributes"))
        default_source = res.get("service.instance.id") or res.get("service.name")
        for sl in _scopes(rl, "scopeLogs", "instrumentationLibraryLogs"):
            for rec in sl.get("logRecords") or ():
                ev = {}
                body = _value(rec.get("body") or {})
                if isinstance(body, str) and body.startswith("{"):
                    try:
                        parsed = orjson.loads(body)
                    except orjson.JSONDecodeError:
                        parsed = None
                    if isinstance(parsed, dict):
                        _fields_from(parsed, ev)
                elif isinstance(body, dict):
                    _fields_from(body, ev)
                _fields_from(_attrs(rec.get("attributes")), ev)
                if ev.get("stage") is None or ev.get("action") is None:
                    ignored += 1
                    continue
                if ev.get("event") is None:
                    # a plain text body is the message; a structured one gets the span-style name
                    plain = isinstance(body, str) and not body.startswith("{")
                    ev["event"] = body if plain else f"{ev['stage']} {ev['action']}"
                if ev.get("timestamp") is None:
                    ts = rec.get("timeUnixNano")
                    if ts in (None, "0", 0):
                        ts = rec.get("observedTimeUnixNano")
                    ev["timestamp"] = ts
                ev["trace_id"] = ev.get("trace_id") or _hex_id(rec.get("traceId"), 16)
                ev["span_id"] = ev.get("span_id") or _hex_id(rec.get("spanId"), 8)
                ev.setdefault("source", default_source)
                if ev.get("level") is None and rec.get("severityText"):
                    ev["level"] = str(rec["severityText"]).lower()
                events.append(ev)
    return events, ignored


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, str):
        return v
    if isinstance(v, list | dict):
        return orjson.dumps(v).decode()
    return str(v)


def events_raw_frame(events: list[dict[str, Any]], lines: list[int]) -> pl.DataFrame:
    import polars as pl

    from tracekit.collectors._normalize import RAW_COLUMNS, RAW_SCHEMA

    cols: dict[str, list[Any]] = {c: [_text(e.get(c)) for e in events] for c in RAW_COLUMNS}
    return pl.DataFrame({"line": lines, **cols}, schema={"line": pl.Int64, **RAW_SCHEMA})


def read_otlp_json(
    data: bytes, *, file: str, source: str, stats: InputStats, timezone: str | None = None
) -> pl.DataFrame:
    from tracekit.collectors._jsonl import count_lines
    from tracekit.collectors._normalize import empty_table, normalize

    stats.lines += count_lines(data)
    docs: list[tuple[int, Any]]
    try:
        docs = [(1, orjson.loads(data))]
    except orjson.JSONDecodeError:
        docs = []
        for i, line in enumerate(data.split(b"\n"), start=1):
            if not line.strip():
                continue
            try:
                docs.append((i, orjson.loads(line)))
            except orjson.JSONDecodeError as exc:
                stats.malformed_line(file, i, f"invalid JSON ({str(exc)[:60]})")
    events: list[dict[str, Any]] = []
    lines: list[int] = []
    for i, doc in docs:
        if not isinstance(doc, dict) or not ("resourceSpans" in doc or "resourceLogs" in doc):
            stats.malformed_line(file, i, "not an OTLP export (no resourceSpans/resourceLogs)")
            continue
        try:
            evs, ignored = otlp_events(doc)
        except (TypeError, KeyError, AttributeError, ValueError) as exc:
            stats.malformed_line(file, i, f"not a valid OTLP export ({type(exc).__name__})")
            continue
        stats.ignored += ignored
        events.extend(evs)
        lines.extend([i] * len(evs))
    if not events:
        return empty_table()
    return normalize(
        events_raw_frame(events, lines),
        file=file,
        source=source,
        stats=stats,
        timezone=timezone,
        soft_required=("actor", "source", "seq"),
    )
