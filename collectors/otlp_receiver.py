"""A small OTLP/HTTP receiver: ``/v1/traces`` and ``/v1/logs``, protobuf or JSON bodies.

Each span or log record that is a tracekit event is appended to ``out`` as one schema v1 JSON
line, so ``collect([out])`` reads it like any other log. Bound to 127.0.0.1 by default.
Built on the standard library's threading HTTP server: no event loop, trivially started in a
thread by tests (port 0 picks a free port) and stopped with :meth:`OTLPReceiver.stop`.

    with OTLPReceiver(out=Path("events.jsonl"), port=0) as rx:
        exporter = OTLPSpanExporter(endpoint=f"{rx.url}/v1/traces")
"""

from __future__ import annotations

import logging
import os
import threading
import zlib
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import TracebackType
from typing import IO, Any, Final

import orjson

from tracekit.collectors._otlp import otlp_events, raw_text
from tracekit.collectors._stats import MAX_EXAMPLES
from tracekit.schema import EVENT_KEYS

__all__ = ["MAX_BODY", "OTLPReceiver", "event_line", "serve"]

#: Request bodies above this size are refused (413) rather than buffered.
MAX_BODY: Final = 64 << 20
#: What a line written for a span or record keeps: schema v1's keys and a span's length.
_KEYS: Final = (*EVENT_KEYS, "duration_ms")
_INT64: Final = 1 << 63
_log = logging.getLogger(__name__)


def _written(key: str, val: Any) -> Any:
    if key == "timestamp":
        # OTLP's own times are ISO text already (ns_iso); one from a JSON body (ISO, epoch
        # s/ms/us/ns, an offset) is kept as the very text the OTLP file reader normalises, so
        # reading this file parses it the same way.
        return raw_text(val)
    if key == "seq":
        fits = isinstance(val, int) and not isinstance(val, bool) and -_INT64 <= val < _INT64
        return val if fits else raw_text(val)  # a bad seq is left to the reader, as in a file
    if key == "recipients" and isinstance(val, str):
        return [v.strip() for v in val.split(",") if v.strip()]
    return val


def event_line(ev: dict[str, Any]) -> bytes:
    """One event as a schema v1 JSON line: the values the OTLP file reader would normalise for
    the same span or record (:func:`tracekit.collectors._otlp.otlp_events`)."""
    out = {key: _written(key, ev[key]) for key in _KEYS if ev.get(key) is not None}
    try:
        return orjson.dumps(out) + b"\n"
    except orjson.JSONEncodeError:  # e.g. an integer past 64 bits: as text, like the reader
        return (
            orjson.dumps({k: v if isinstance(v, str) else raw_text(v) for k, v in out.items()})
            + b"\n"
        )


class _TooLarge(Exception):
    """A body past MAX_BODY once decompressed."""


#: gRPC status codes (google.rpc.Code) for the Status of an error reply.
_INVALID_ARGUMENT: Final = 3
_UNIMPLEMENTED: Final = 12
_INTERNAL: Final = 13


def _status(code: int, message: str, content_type: str) -> tuple[bytes, str]:
    """An error reply's body (OTLP/HTTP: a ``google.rpc.Status``, protobuf-encoded, or
    JSON-encoded when the request was JSON). The message is two fields, encoded by hand:
    ``code`` (int32, field 1) and ``message`` (string, field 2)."""
    if content_type.startswith("application/json"):
        return orjson.dumps({"code": code, "message": message}), "application/json"
    text = message.encode()
    return (
        b"\x08" + _varint(code) + b"\x12" + _varint(len(text)) + text,
        "application/x-protobuf",
    )


def _varint(n: int) -> bytes:
    out = bytearray()
    while True:
        low, n = n & 0x7F, n >> 7
        out.append(low | (0x80 if n else 0))
        if not n:
            return bytes(out)


def _inflate(body: bytes, encoding: str) -> bytes:
    """``body`` decompressed (gzip, possibly several members, or deflate), never past
    MAX_BODY: a small body can inflate a thousandfold, so the limit is on the output."""
    if encoding in ("", "identity"):
        return body
    if encoding not in ("gzip", "x-gzip", "deflate"):
        raise ValueError(f"unsupported Content-Encoding {encoding!r} (use gzip or deflate)")
    gz = encoding != "deflate"
    out: list[bytes] = []
    total = 0
    rest = body
    while rest:
        d = zlib.decompressobj(wbits=31 if gz else 15)
        chunk = d.decompress(rest, MAX_BODY - total + 1)
        total += len(chunk)
        if total > MAX_BODY or d.unconsumed_tail:
            raise _TooLarge
        out.append(chunk)
        if not d.eof:
            raise ValueError(f"truncated {encoding} body")
        # NUL padding after the last member (tape-style writers) is no member: gzip.decompress
        # and the file readers (_sources) skip it too
        rest = d.unused_data.lstrip(b"\x00") if gz else b""
    return b"".join(out)


def _decode(path: str, content_type: str, body: bytes) -> dict[str, Any]:
    if content_type.startswith("application/json"):
        doc = orjson.loads(body)
        if not isinstance(doc, dict):
            raise ValueError("JSON body is not an object")
        # A protobuf body of the wrong signal does not parse; a JSON one would, and its items
        # would be written and counted under the wrong signal.
        wrong, right = (
            ("resourceLogs", "/v1/logs")
            if path == "/v1/traces"
            else ("resourceSpans", "/v1/traces")
        )
        if wrong in doc:
            raise ValueError(f"{wrong} belong on {right}, not {path}")
        return doc
    from google.protobuf.json_format import MessageToDict  # type: ignore[import-untyped]

    if path == "/v1/traces":
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTraceServiceRequest,
        )

        msg: Any = ExportTraceServiceRequest.FromString(body)
    else:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsServiceRequest,
        )

        msg = ExportLogsServiceRequest.FromString(body)
    result: dict[str, Any] = MessageToDict(msg)
    return result


def _response(path: str, content_type: str, rejected: int, message: str) -> tuple[bytes, str]:
    """The export response; ``rejected`` spans or log records go in its ``partial_success``
    (OTLP's answer for a request that was accepted except for some items), and so does a
    ``message`` alone (OTLP: a warning, with nothing rejected)."""
    traces = path == "/v1/traces"
    if content_type.startswith("application/json"):
        if not (rejected or message):
            return b"{}", "application/json"
        field = "rejectedSpans" if traces else "rejectedLogRecords"
        partial = {field: str(rejected), "errorMessage": message}  # int64 is a string in JSON
        return orjson.dumps({"partialSuccess": partial}), "application/json"
    if traces:
        from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
            ExportTracePartialSuccess,
            ExportTraceServiceResponse,
        )

        resp: Any = ExportTraceServiceResponse()
        if rejected or message:
            resp.partial_success.CopyFrom(
                ExportTracePartialSuccess(rejected_spans=rejected, error_message=message)
            )
    else:
        from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
            ExportLogsPartialSuccess,
            ExportLogsServiceResponse,
        )

        resp = ExportLogsServiceResponse()
        if rejected or message:
            resp.partial_success.CopyFrom(
                ExportLogsPartialSuccess(rejected_log_records=rejected, error_message=message)
            )
    body: bytes = resp.SerializeToString()
    return body, "application/x-protobuf"


def _read_body(req: Any) -> bytes | None:
    """The request body (Content-Length or chunked), None when too big or unreadable."""
    if "chunked" in (req.headers.get("Transfer-Encoding") or "").lower():
        parts: list[bytes] = []
        total = 0
        while True:
            line = req.rfile.readline(1024)
            try:
                size = int(line.split(b";", 1)[0].strip(), 16)
            except ValueError:
                return None
            if size < 0:  # ("-5": a 500 from the read, review 19a)
                return None
            if size == 0:
                while req.rfile.readline(1024).strip():  # trailers, then the blank line
                    pass
                return b"".join(parts)
            total += size
            if total > MAX_BODY:
                return None
            parts.append(req.rfile.read(size))
            req.rfile.readline(8)  # the CRLF after each chunk
    try:
        length = int(req.headers.get("Content-Length", "0"))
    except ValueError:
        return None
    if length < 0 or length > MAX_BODY:
        return None
    data: bytes = req.rfile.read(length)
    return data


class OTLPReceiver:
    """The receiver as an object: ``start()`` serves in a thread, ``stop()`` shuts it down."""

    def __init__(
        self,
        out: str | os.PathLike[str] | IO[bytes],
        *,
        host: str = "127.0.0.1",
        port: int = 4318,
        on_events: Callable[[list[dict[str, Any]]], None] | None = None,
    ) -> None:
        self._own = isinstance(out, str | os.PathLike)
        self._lock = threading.Lock()
        self._on_events = on_events
        self.events = 0
        self.ignored = 0
        self.requests = 0
        self.rejected = 0
        #: spans and log records that could not be read (the rest of their request was kept)
        self.malformed = 0
        #: the first few reasons for them
        self.examples: list[str] = []
        #: attributes without a key, skipped (their spans and records were kept)
        self.keyless = 0
        #: requests whose ``on_events`` raised (their events were written and answered)
        self.callback_errors = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass  # quiet: the exporter retries are not worth a line each

            replied = False

            def _reply(self, code: int, body: bytes, ctype: str) -> None:
                self.replied = True
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_POST(self) -> None:
                self.replied = False
                receiver._handle(self)

        self._server = ThreadingHTTPServer((host, port), Handler)
        self._server.daemon_threads = True
        # The output is opened once the port is bound: a port in use leaves no file behind.
        self._out: IO[bytes]
        if isinstance(out, str | os.PathLike):
            try:
                self._out = open(Path(out), "ab")  # noqa: SIM115  (closed in stop())
            except OSError:
                self._server.server_close()
                raise
        else:
            self._out = out
        self._thread: threading.Thread | None = None

    @property
    def port(self) -> int:
        return int(self._server.server_address[1])

    @property
    def url(self) -> str:
        host = str(self._server.server_address[0])
        return f"http://{host}:{self.port}"

    def _fail(self, req: Any, http: int, code: int, message: str, ctype: str) -> None:
        """An error reply: the request's type for the Status, protobuf unless it was JSON."""
        body, rtype = _status(code, message, ctype)
        req._reply(http, body, rtype)

    def _handle(self, req: Any) -> None:
        ctype = (req.headers.get("Content-Type") or "application/x-protobuf").lower()
        try:
            self._serve(req, ctype)
        except Exception as exc:  # e.g. the output cannot be written: 500, and the client retries
            if req.replied:  # the answer is out (the client went away): nothing more to say
                raise
            req.close_connection = True
            message = f"the receiver failed: {type(exc).__name__}: {exc}"[:300]
            self._fail(req, 500, _INTERNAL, message, ctype)

    def _reject(self, req: Any, http: int, message: str, ctype: str) -> bool:
        with self._lock:
            self.rejected += 1
        self._fail(req, http, _INVALID_ARGUMENT, message, ctype)
        return True

    def _serve(self, req: Any, ctype: str) -> bool:
        """Answer one request (True: answered)."""
        # Read the body before any reply so a keep-alive connection stays in step.
        body = _read_body(req)
        if body is None:
            req.close_connection = True  # the unread body must not be taken for a request
            return self._reject(
                req, 413, f"body too large (over {MAX_BODY} bytes) or its length unreadable", ctype
            )
        path = req.path.split("?", 1)[0]
        if path not in ("/v1/traces", "/v1/logs"):
            self._fail(req, 404, _UNIMPLEMENTED, "only /v1/traces and /v1/logs", ctype)
            return True
        if not ctype.startswith(("application/json", "application/x-protobuf")):
            return self._reject(req, 415, "use application/x-protobuf or application/json", ctype)
        encoding = (req.headers.get("Content-Encoding") or "").strip().lower()
        try:
            body = _inflate(body, encoding)
        except _TooLarge:
            return self._reject(
                req, 413, f"body too large once decompressed (over {MAX_BODY} bytes)", ctype
            )
        except (ValueError, zlib.error) as exc:
            return self._reject(req, 400, f"cannot decompress the body: {exc}"[:300], ctype)
        try:
            doc = _decode(path, ctype, body)
        except Exception as exc:  # a bad body is the client's problem: 400, never a crash
            message = f"cannot decode the OTLP body: {type(exc).__name__}: {exc}"[:300]
            return self._reject(req, 400, message, ctype)
        # Each span and log record is read on its own: a bad one is counted and reported in
        # the response's partial_success, the request's good events are still written.
        items = otlp_events(doc)
        events = items.events
        bad = list(items.bad)
        lines: list[bytes] = []
        written: list[dict[str, Any]] = []
        for ev in events:
            try:
                lines.append(event_line(ev))
            except Exception as exc:  # one event that cannot be written costs only itself
                bad.append(f"{ev.get('stage')} {ev.get('action')}: not writable ({exc})"[:200])
                continue
            written.append(ev)
        events = written
        payload = b"".join(lines)
        with self._lock:
            if payload:
                self._out.write(payload)
                self._out.flush()
            self.requests += 1
            self.events += len(events)
            self.ignored += items.ignored
            self.malformed += len(bad)
            self.keyless += items.keyless
            self.examples.extend(bad[: max(0, MAX_EXAMPLES - len(self.examples))])
        # The events are written: whatever on_events does, the client gets its answer (without
        # one it would send them again, and they would be written twice).
        if self._on_events is not None and events:
            try:
                self._on_events(events)
            except Exception:
                _log.exception("OTLPReceiver: on_events raised; the events were written")
                with self._lock:
                    self.callback_errors += 1
        notes = bad[:3] + [f"and {len(bad) - 3} more"] * (len(bad) > 3)
        if items.keyless:  # kept, so not rejected: said as OTLP's warning
            notes.append(
                f"{items.keyless} attribute(s) without a key skipped (first: {items.keyless_at})"
            )
        message = "; ".join(notes)
        resp, rtype = _response(path, ctype, len(bad), message)
        req._reply(200, resp, rtype)
        return True

    def serve_forever(self) -> None:
        try:
            self._server.serve_forever(poll_interval=0.2)
        finally:
            self._close()

    def start(self) -> OTLPReceiver:
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread is not None:
            self._server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self._close()

    def _close(self) -> None:
        self._server.server_close()
        with self._lock:
            if self._own and not self._out.closed:
                self._out.close()
            elif not self._own:
                self._out.flush()

    def __enter__(self) -> OTLPReceiver:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()


def serve(
    host: str = "127.0.0.1",
    port: int = 4318,
    out: str | os.PathLike[str] = "events.jsonl",
    on_ready: Callable[[OTLPReceiver], None] | None = None,
    on_stop: Callable[[OTLPReceiver], None] | None = None,
) -> None:
    """Receive OTLP/HTTP on ``host:port`` and append events to ``out``; blocks until interrupted.
    ``on_ready`` is called once the port is bound (to announce the address), ``on_stop`` once
    it is interrupted (to account for what it received)."""
    receiver = OTLPReceiver(out, host=host, port=port)
    if on_ready is not None:
        on_ready(receiver)
    try:
        receiver.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        if on_stop is not None:
            on_stop(receiver)
