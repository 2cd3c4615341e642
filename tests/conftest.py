from __future__ import annotations

import os
from collections.abc import Iterator

import pytest
from hypothesis import settings
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

import tracekit

pytest_plugins = ["pytester"]

# CI (.ci/run) draws the same examples every run: a red CI keeps a change from landing, so it
# must not turn on one rare random draw. Runs elsewhere keep drawing new ones.
settings.register_profile("ci", derandomize=True, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "default"))


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
