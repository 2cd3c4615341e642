"""pytest plugin (registered through the ``pytest11`` entry point): a thin layer over
:mod:`tracekit.testing`.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tracekit.testing import CapturedEvents, capture

__all__ = ["tracekit_events"]


@pytest.fixture
def tracekit_events() -> Iterator[CapturedEvents]:
    """The tracekit events emitted by this test, captured in memory."""
    with capture() as events:
        yield events
