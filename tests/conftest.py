from __future__ import annotations

from collections.abc import Iterator

import pytest

import tracekit


@pytest.fixture(autouse=True)
def _unconfigured() -> Iterator[None]:
    """Every test starts and ends with tracekit unconfigured."""
    tracekit.shutdown()
    yield
    tracekit.shutdown()
