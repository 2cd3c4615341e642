from __future__ import annotations

from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracekit

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    """Every test leaves tracekit unconfigured (at teardown only: the plugin's capture for
    ``tracekit_events`` is already active when this runs)."""
    yield
    tracekit.shutdown()


@pytest.fixture
def spans() -> tuple[TracerProvider, InMemorySpanExporter]:
    """A real SDK tracer provider whose finished spans are kept in memory."""
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return provider, exporter
