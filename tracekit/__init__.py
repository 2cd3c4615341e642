"""tracekit: follow every chat message across client, server and recipients.

Instrument a process with :func:`configure`, mark each stage a message passes with
:func:`stage` (or :func:`emit` for a point event), bind the message with :func:`message` and
carry it across processes with :func:`inject` / :func:`extract`. Until ``configure`` runs,
every call is a near-free no-op. ``import tracekit`` loads no polars, typer, fastapi or uvicorn.
"""

from __future__ import annotations

__version__ = "0.1.0"

from tracekit._context import MessageContext, bind, current, message
from tracekit._core import (
    Config,
    Instrumentation,
    configure,
    emit,
    flush,
    is_configured,
    shutdown,
    stage,
    stats,
)
from tracekit._sinks import MemorySink, Sink
from tracekit.errors import (
    ConfigError,
    InputError,
    PipelineError,
    SchemaError,
    TracekitError,
)
from tracekit.propagation import (
    dict_getter,
    dict_setter,
    envelope_getter,
    envelope_setter,
    extract,
    inject,
)
from tracekit.schema import new_trace_id, normalize_trace_id

__all__ = [
    "Config",
    "ConfigError",
    "InputError",
    "Instrumentation",
    "MemorySink",
    "MessageContext",
    "PipelineError",
    "SchemaError",
    "Sink",
    "TracekitError",
    "__version__",
    "bind",
    "configure",
    "current",
    "dict_getter",
    "dict_setter",
    "emit",
    "envelope_getter",
    "envelope_setter",
    "extract",
    "flush",
    "inject",
    "is_configured",
    "message",
    "new_trace_id",
    "normalize_trace_id",
    "shutdown",
    "stage",
    "stats",
]
