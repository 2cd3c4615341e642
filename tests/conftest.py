from __future__ import annotations

from collections.abc import Iterator

import pytest

import tracekit

pytest_plugins = ["pytester"]


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    """Every test leaves tracekit unconfigured (at teardown only: the plugin's capture for
    ``tracekit_events`` is already active when this runs)."""
    yield
    tracekit.shutdown()
