"""Integrations of tracekit with web frameworks and clients.

Each module imports its framework only when imported itself, so ``import tracekit`` and
``import tracekit.integrations`` stay light:

- :mod:`tracekit.integrations.fastapi`: ``instrument_app(app)``, HTTP spans plus the message
  context of each request, so server stages join the sender's trace;
- :mod:`tracekit.integrations.fanout`: per-recipient ``WS-BROADCAST.deliver`` around any async
  ``send(payload)``, with the trace envelope injected into each payload;
- :mod:`tracekit.integrations.httpx`: inject the message context on outgoing requests;
- :mod:`tracekit.integrations.websockets`: extract it from received frames.
"""
