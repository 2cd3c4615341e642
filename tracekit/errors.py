"""One exception hierarchy for tracekit; foreign errors are translated at the edge."""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "InputError",
    "PipelineError",
    "SchemaError",
    "TracekitError",
]


class TracekitError(Exception):
    """Base class of every error tracekit raises on purpose."""


class SchemaError(TracekitError, ValueError):
    """An event or a trace id does not follow schema v1.

    ``key`` names the offending key when there is one, so callers can say exactly what is wrong.
    """

    def __init__(self, message: str, *, key: str | None = None) -> None:
        super().__init__(message)
        self.key = key


class ConfigError(TracekitError, ValueError):
    """``tracekit.configure`` was given something it cannot use."""


class InputError(TracekitError):
    """An input (file, directory, stream) cannot be read at all.

    Malformed *lines* are never an error: they are counted and reported.
    """


class PipelineError(TracekitError, ValueError):
    """A pipeline model (TOML) is invalid; the message names the problem."""
