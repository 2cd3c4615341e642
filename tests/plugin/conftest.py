"""Fixtures of the plugin's tests."""

from __future__ import annotations

from pathlib import Path

import pytest

CHATFLOW = (Path(__file__).parents[1] / "chatflow.py").read_text()


@pytest.fixture
def project(pytester: pytest.Pytester) -> pytest.Pytester:
    """A pytester project that can ``from chatflow import send_message``."""
    pytester.makeini("[pytest]\nasyncio_default_fixture_loop_scope = function\n")
    pytester.makepyfile(chatflow=CHATFLOW)
    pytester.syspathinsert()
    return pytester
