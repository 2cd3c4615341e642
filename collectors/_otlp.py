"""OTLP (spans and log records) -> schema v1 events.

Reads OTLP/JSON as the OpenTelemetry file exporter and the collector's ``file`` exporter write it
(one ``ExportTraceServiceRequest``/``ExportLogsServiceRequest`` per line, or one pretty-printed
document), and the dicts the receiver builds from protobuf bodies. Span mapping (what tracekit's
instrumentation emits): name ``"{stage} {action}"``, attributes ``tracekit.stage``,
``tracekit.action``, ``tracekit.actor``, ``tracekit.peer``, ``tracekit.source``, ``tracekit.seq``,
``tracekit.recipients``, ``messaging.message.id`` (msg_id),
``messaging.message.conversation_id`` (conv_id); the span's trace id is the message trace id and
its start time the event's timestamp. A span's events (``span.add_event``) with a stage and an
action are events too, at their own time, with the span's trace and span id. Log records map the
same attributes (with or without the ``tracekit.`` prefix) or a body that is itself a JSON
event. Spans, span events and records without a stage (foreign instrumentation, exceptions)
are counted as ignored. Each span, span event and record is read on its own: one that cannot
be read is counted as malformed with its reason and costs nothing else. An attribute without a
key is skipped (its item kept) and counted in a warning.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Final

import orjson

from tracekit.collectors._stats import InputStats
from tracekit.schema import EVENT_KEYS

if TYPE_CHECKING:  # polars loads only when a file is read: the receiver stays light
    import polars as pl

#: The schema keys a tracekit event may carry (tracekit.collectors._normalize.RAW_COLUMNS).
_RAW_KEYS: Final = (*EVENT_KEYS, "duration_ms", "dropped")

__all__ = ["OTLPItems", "ns_iso", "otlp_events", "raw_text", "read_otlp_json"]

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


class _Bad(ValueError):
    """One span or log record that cannot be read; its text is the reason given for it."""


def _value(v: Any, out: OTLPItems | None = None, where: str = "") -> Any:
    if not isinstance(v, dict):
        return None
    for kind in ("stringValue", "boolValue", "doubleValue"):
        if kind in v:
            return v[kind]
    if "intValue" in v:
        # int64 as a JSON string (or number); anything else is kept as written, so a bad
        # tracekit.seq is reported the way a JSON log's bad "seq" is (left empty, counted)
        # instead of costing the span
        try:
            return int(v["intValue"])
        except (TypeError, ValueError):
            return None if v["intValue"] is None else str(v["intValue"])
    if "arrayValue" in v:
        values = v["arrayValue"].get("values") if isinstance(v["arrayValue"], dict) else None
        return [_value(x, out, where) for x in values] if isinstance(values, list) else []
    if "kvlistValue" in v:
        kvs = v["kvlistValue"].get("values") if isinstance(v["kvlistValue"], dict) else None
        return _attrs(kvs if isinstance(kvs, list) else None, out, where)
    if "bytesValue" in v:
        return v["bytesValue"]
    return None


def _attrs(items: Any, out: OTLPItems | None = None, where: str = "") -> dict[str, Any]:
    """An OTLP attribute list as a dict. An entry without a string ``key`` names nothing
    tracekit could map: it alone is skipped, not the span or record it belongs to, and counted
    in ``out`` (``where``: the item it belongs to) for the input's warnings."""
    if items is None:
        return {}
    if not isinstance(items, list):
        raise _Bad(f"attributes are not a list ({type(items).__name__})")
    attrs: dict[str, Any] = {}
    for a in items:
        if isinstance(a, dict) and isinstance(a.get("key"), str):
            attrs[a["key"]] = _value(a.get("value"), out, where)
        elif out is not None:
            out.keyless += 1
            out.keyless_at = out.keyless_at or where
    return attrs


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


def _trace_id(value: Any) -> str | None:
    """A span's or record's trace id as hex; one that is neither hex nor base64 of 16 bytes
    kept as given, so the reading says it is invalid (review 19a: dropped unsaid, the span
    became no message's event)."""
    hexed = _hex_id(value, 16)
    if hexed is not None:
        return hexed if hexed.strip("0") else None  # (all zeros: OTLP's "no trace", 19c)
    if isinstance(value, str) and value and not _ZEROS.fullmatch(value):
        return value
    return None


#: An all-zero id as hex or base64: OTLP's "not set".
_ZEROS: Final = re.compile(r"0{32}|A{22}==")


_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MAX: Final = (1 << 63) - 1


def ns_iso(value: Any, what: str) -> str | None:
    """An OTLP time (nanoseconds since 1970, a uint64 as a JSON string or number) as tracekit's
    ISO-8601 text with nanoseconds; None when absent. A value that is no such time (not an
    integer, negative, or past what int64 nanoseconds hold, i.e. 2262) makes its item bad."""
    if value is None:
        return None
    try:
        if isinstance(value, bool | float):
            raise ValueError
        ns = int(value)
    except (TypeError, ValueError):
        ns = -1
    if not 0 <= ns <= _INT64_MAX:
        shown = str(value)
        shown = shown if len(shown) <= 40 else shown[:37] + "..."
        raise _Bad(f"{what} {shown!r} is not a time (nanoseconds since 1970)")
    secs, frac = divmod(ns, 1_000_000_000)
    base = (_EPOCH + timedelta(seconds=secs)).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{base}.{frac:09d}Z"


def _fields_from(attrs: dict[str, Any], into: dict[str, Any]) -> None:
    for key, val in attrs.items():
        name = _ATTR_KEYS.get(key)
        if name is None and key in _PLAIN_KEYS:
            name = key
        if name is not None and val is not None and into.get(name) is None:
            into[name] = val


@dataclass
class OTLPItems:
    """What one export request holds: its tracekit events, how many items were foreign
    (``ignored``), and one reason per item that could not be read (``bad``)."""

    events: list[dict[str, Any]] = field(default_factory=list)
    ignored: int = 0
    bad: list[str] = field(default_factory=list)
    #: attributes without a (string) key, skipped (their items kept), and where the first was
    keyless: int = 0
    keyless_at: str | None = None


def _list(value: Any, what: str) -> list[Any]:
    if value is None:
        return []
    if not isinstance(value, list):
        raise _Bad(f"{what} is not a list ({type(value).__name__})")
    return value


def _object(value: Any, what: str = "not an object") -> dict[str, Any]:
    if not isinstance(value, dict):
        raise _Bad(f"{what} ({type(value).__name__})")
    return value


def _walk(
    doc: dict[str, Any], top: str, scopes: tuple[str, str], key: str, out: OTLPItems
) -> Iterator[tuple[str, Any, Any]]:
    """``(where, item, default source)`` for each span or log record of ``doc[top]``; a
    resource or scope that cannot be read is one bad item, the others are still walked."""
    try:
        resources = _list(doc.get(top), top)
    except _Bad as exc:
        out.bad.append(str(exc))
        return
    for i, r in enumerate(resources):
        where = f"{top}[{i}]"
        try:
            r = _object(r)
            res = _attrs(
                _object(r.get("resource") or {}, "resource is not an object").get("attributes"),
                out,
                f"{where}.resource",
            )
            source = res.get("service.instance.id") or res.get("service.name")
            scope_list = _list(r.get(scopes[0]) or r.get(scopes[1]), scopes[0])
        except _Bad as exc:
            out.bad.append(f"{where}: {exc}")
            continue
        for j, s in enumerate(scope_list):
            at = f"{where}.{scopes[0]}[{j}]"
            try:
                items = _list(_object(s).get(key), key)
            except _Bad as exc:
                out.bad.append(f"{at}: {exc}")
                continue
            for k, item in enumerate(items):
                yield f"{at}.{key}[{k}]", item, source


def _guarded(where: str, out: OTLPItems, read: Callable[[], None]) -> None:
    """Run ``read`` for one item: a failure costs that item alone, counted with its reason."""
    try:
        read()
    except _Bad as exc:
        out.bad.append(f"{where}: {exc}")
    except (TypeError, KeyError, AttributeError, ValueError) as exc:
        out.bad.append(f"{where}: unreadable ({type(exc).__name__}: {str(exc)[:60]})")


def _span(where: str, span: Any, default_source: Any, out: OTLPItems) -> None:
    span = _object(span)
    ev: dict[str, Any] = {}
    attrs = _attrs(span.get("attributes"), out, where)
    _fields_from(attrs, ev)
    # tracekit's span of an event of no message is in a trace of its own: not the event's
    # (its JSON line, read beside it, has none; the two are one line read twice)
    untraced = attrs.get("tracekit.untraced") is True
    trace_id = None if untraced else _trace_id(span.get("traceId"))
    span_id = _hex_id(span.get("spanId"), 8)
    span_events = _list(span.get("events"), "events")
    tracekit = ev.get("stage") is not None and ev.get("action") is not None
    if tracekit:
        ev["event"] = ev.get("event") or span.get("name") or ""
        ev["timestamp"] = ns_iso(span.get("startTimeUnixNano"), "startTimeUnixNano")
        if ev["timestamp"] is None:  # (the receiver wrote it, a line no reader could place)
            raise _Bad("no startTimeUnixNano: a span with no time")
        if (took := _span_ms(span)) is not None:  # (else a duration_ms attribute stands)
            ev["duration_ms"] = took
        ev["trace_id"] = trace_id
        ev["span_id"] = span_id
        ev.setdefault("source", default_source)
        code = (_object(span.get("status") or {}, "status is not an object")).get("code")
        if code in (2, "STATUS_CODE_ERROR"):
            ev["level"] = "error"
    # all of the span is read before anything is kept: a bad span is one malformed item
    if tracekit:
        out.events.append(ev)
    else:
        out.ignored += 1
    for n, item in enumerate(span_events):
        at = f"{where}.events[{n}]"
        read = partial(_span_event, at, item, trace_id, span_id, default_source, out)
        _guarded(at, out, read)


def _span_ms(span: dict[str, Any]) -> float | None:
    """A span's length in ms (its event is stamped with its start): None where its end is
    absent or before its start; its start alone decides whether the span can be read."""
    try:
        start, end = int(span["startTimeUnixNano"]), int(span["endTimeUnixNano"])
    except (KeyError, TypeError, ValueError):
        return None
    return (end - start) / 1e6 if end >= start > 0 else None


def _span_event(
    where: str,
    item: Any,
    trace_id: str | None,
    span_id: str | None,
    default_source: Any,
    out: OTLPItems,
) -> None:
    """A span event (``span.add_event``) that carries tracekit's stage and action is an event
    of its own: its own time and attributes, its span's trace and span id. Others (exceptions,
    foreign annotations) are ignored."""
    item = _object(item)
    ev: dict[str, Any] = {}
    _fields_from(_attrs(item.get("attributes"), out, where), ev)
    if ev.get("stage") is None or ev.get("action") is None:
        out.ignored += 1
        return
    ev["event"] = ev.get("event") or item.get("name") or f"{ev['stage']} {ev['action']}"
    ev["timestamp"] = ns_iso(item.get("timeUnixNano"), "timeUnixNano")
    ev["trace_id"] = trace_id
    ev["span_id"] = span_id
    ev.setdefault("source", default_source)
    out.events.append(ev)


def _log_record(where: str, rec: Any, default_source: Any, out: OTLPItems) -> None:
    rec = _object(rec)
    ev: dict[str, Any] = {}
    body = _value(rec.get("body"), out, where)
    if isinstance(body, str) and body.startswith("{"):
        try:
            parsed = orjson.loads(body)
        except orjson.JSONDecodeError:
            parsed = None
        if isinstance(parsed, dict):
            _fields_from(parsed, ev)
    elif isinstance(body, dict):
        _fields_from(body, ev)
    _fields_from(_attrs(rec.get("attributes"), out, where), ev)
    if ev.get("stage") is None or ev.get("action") is None:
        out.ignored += 1
        return
    if ev.get("event") is None:
        # a plain text body is the message; a structured one gets the span-style name
        plain = isinstance(body, str) and not body.startswith("{")
        ev["event"] = body if plain else f"{ev['stage']} {ev['action']}"
    if ev.get("timestamp") is None:
        what = "timeUnixNano"
        if rec.get(what) in (None, "0", 0):  # 0 is OTLP's "unknown": the collector's time then
            what = "observedTimeUnixNano"
        ev["timestamp"] = ns_iso(rec.get(what), what)
        if ev["timestamp"] is None:
            raise _Bad("no timeUnixNano nor observedTimeUnixNano: a record with no time")
    ev["trace_id"] = ev.get("trace_id") or _trace_id(rec.get("traceId"))
    ev["span_id"] = ev.get("span_id") or _hex_id(rec.get("spanId"), 8)
    ev.setdefault("source", default_source)
    if ev.get("level") is None and rec.get("severityText"):
        ev["level"] = str(rec["severityText"]).lower()
    out.events.append(ev)


def otlp_events(doc: dict[str, Any]) -> OTLPItems:
    """Events from one OTLP/JSON export request. Each span and log record is read on its own:
    one that cannot be read is counted in ``bad`` with its reason and costs nothing else."""
    out = OTLPItems()
    spans = _walk(doc, "resourceSpans", ("scopeSpans", "instrumentationLibrarySpans"), "spans", out)
    for where, span, source in spans:
        _guarded(where, out, partial(_span, where, span, source, out))
    logs = _walk(
        doc, "resourceLogs", ("scopeLogs", "instrumentationLibraryLogs"), "logRecords", out
    )
    for where, rec, source in logs:
        _guarded(where, out, partial(_log_record, where, rec, source, out))
    return out


def raw_text(v: Any) -> str | None:
    """A value as the text the reader normalises (the receiver writes the same text)."""
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

    cols: dict[str, list[Any]] = {c: [raw_text(e.get(c)) for e in events] for c in RAW_COLUMNS}
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
    keyless, keyless_at = 0, ""
    for i, doc in docs:
        if not isinstance(doc, dict) or not ("resourceSpans" in doc or "resourceLogs" in doc):
            stats.malformed_line(file, i, "not an OTLP export (no resourceSpans/resourceLogs)")
            continue
        items = otlp_events(doc)
        for reason in items.bad:  # each bad span or record; the rest of the export is read
            stats.malformed_line(file, i, reason)
        stats.ignored += items.ignored
        if items.keyless and not keyless:
            keyless_at = f"line {i}, {items.keyless_at}"
        keyless += items.keyless
        events.extend(items.events)
        lines.extend([i] * len(items.events))
    if keyless:
        stats.warn(
            f"{file}: {keyless} OTLP attributes without a key were skipped; their spans and "
            f"records were kept (first: {keyless_at})"
        )
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
