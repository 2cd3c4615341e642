"""The ``tracekit`` command line. Heavy libraries (polars, fastapi) load inside commands only."""

from __future__ import annotations

__all__ = ["main"]


#: Exit code of a crash: tracekit itself failed. Not 1 (a gate failed: CI would read a bug as a
#: finding) nor 2 (the user's input or usage).
INTERNAL_ERROR = 3


def main() -> None:
    """Console-script entry point."""
    from tracekit.cli._app import app

    try:
        app()
    except Exception as exc:  # a bug: the traceback, then one line saying so, exit 3
        import sys
        import traceback

        traceback.print_exc()
        reason = str(exc).splitlines()[0] if str(exc) else ""
        print(
            f"tracekit: internal error: {type(exc).__name__}: {reason} "
            "(a bug in tracekit; the traceback above helps to report it)",
            file=sys.stderr,
        )
        sys.exit(INTERNAL_ERROR)
