"""FastAPI: ``instrument_app(app)`` gives HTTP spans and the sender's message context.

- opentelemetry-instrumentation-fastapi makes one server span per request, child of the
  caller's span through the W3C ``traceparent`` header;
- :class:`MessageContextMiddleware` reads tracekit's headers (``tracekit.extract``) and binds
  the message for the request, so ``tracekit.stage("REST", "persist")`` in a handler carries the
  sender's trace id, conversation and message ids, and its span joins the sender's trace.

Handlers can read the context with the :func:`message_context` dependency.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import tracekit
from tracekit._context import MessageContext
from tracekit.propagation import CONV_HEADER, MSG_HEADER, TRACE_HEADER, TRACEPARENT

if TYPE_CHECKING:
    from fastapi import FastAPI
    from opentelemetry.trace import TracerProvider
    from starlette.requests import HTTPConnection
    from starlette.types import ASGIApp, Receive, Scope, Send

__all__ = ["SCOPE_KEY", "MessageContextMiddleware", "instrument_app", "message_context"]

#: Where the middleware leaves the extracted context in the ASGI scope.
SCOPE_KEY = "tracekit.message"


class MessageContextMiddleware:
    """Pure ASGI middleware (not ``BaseHTTPMiddleware``: its handler runs in another task, so
    a contextvar set here would not reach the endpoint)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        ctx = _extract(scope)
        if ctx is None:
            await self.app(scope, receive, send)
            return
        scope[SCOPE_KEY] = ctx
        with tracekit.message(ctx):
            await self.app(scope, receive, send)


_NAMES = frozenset(name.encode() for name in (TRACEPARENT, TRACE_HEADER, CONV_HEADER, MSG_HEADER))


def _extract(scope: Scope) -> MessageContext | None:
    """The request's message context from its raw headers: only tracekit's are decoded (as
    UTF-8, or latin-1 when they are not: what ``inject`` writes is ASCII either way)."""
    try:
        headers: dict[str, Any] = {}
        for k, v in scope.get("headers", ()):
            name = bytes(k).lower()
            if name in _NAMES:
                headers.setdefault(name.decode(), bytes(v))  # the first of a repeated header
    except Exception:  # malformed headers are the app's business, never ours to raise
        return None
    return tracekit.extract(headers) if headers else None


def message_context(connection: HTTPConnection) -> MessageContext | None:
    """FastAPI dependency: the message context the request carried, if any."""
    ctx = connection.scope.get(SCOPE_KEY)
    return ctx if isinstance(ctx, MessageContext) else None


def instrument_app(
    app: FastAPI,
    *,
    tracer_provider: TracerProvider | None = None,
    http_spans: bool = True,
    excluded_urls: str | None = None,
) -> FastAPI:
    """Instrument ``app`` in one call (before it starts serving). Returns ``app``.

    ``tracer_provider`` defaults to the global one (give the same provider to
    ``tracekit.configure(otel=...)`` so both kinds of span land together). The per-message ASGI
    ``send``/``receive`` spans are left out: on a WebSocket they would be one span per frame.
    """
    app.add_middleware(MessageContextMiddleware)
    if http_spans:
        from opentelemetry.instrumentation.fastapi import FastAPIInstrumentor

        FastAPIInstrumentor.instrument_app(
            app,
            tracer_provider=tracer_provider,
            excluded_urls=excluded_urls,
            exclude_spans=["receive", "send"],
        )
    return app
