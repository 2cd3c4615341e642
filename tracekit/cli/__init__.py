"""The ``tracekit`` command line. Heavy libraries (polars, fastapi) load inside commands only."""

from __future__ import annotations

__all__ = ["main"]


def main() -> None:
    """Console-script entry point."""
    from tracekit.cli._app import app

    app()
