"""httpx: put the current message's trace context on every outgoing request.

``traced_client()`` builds an ``httpx.AsyncClient`` with the hook; :func:`instrument_client`
adds it to an existing client. Event hooks run in the caller's task, so the message bound
there (``tracekit.message``) is the one injected.
"""

from __future__ import annotations

from typing import Any

import httpx

import tracekit

__all__ = ["inject_request", "inject_request_sync", "instrument_client", "traced_client"]


async def inject_request(request: httpx.Request) -> None:
    """Async request hook: ``traceparent`` + ``tracekit-*`` headers of the current message."""
    tracekit.inject(request.headers)


def inject_request_sync(request: httpx.Request) -> None:
    """The same hook for ``httpx.Client``."""
    tracekit.inject(request.headers)


def instrument_client(client: httpx.AsyncClient | httpx.Client) -> None:
    """Add the injecting hook to ``client`` (idempotent)."""
    hook: Any = inject_request if isinstance(client, httpx.AsyncClient) else inject_request_sync
    hooks = client.event_hooks
    if hook not in hooks["request"]:
        hooks["request"] = [*hooks["request"], hook]
        client.event_hooks = hooks


def traced_client(**kwargs: Any) -> httpx.AsyncClient:
    """An ``httpx.AsyncClient(**kwargs)`` that injects the message context on each request."""
    client = httpx.AsyncClient(**kwargs)
    instrument_client(client)
    return client
