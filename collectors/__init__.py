"""Read every log a chat system leaves behind into one event table.

``collect(paths)`` returns a :class:`Collected`: ``events`` (a polars LazyFrame with exactly
``tracekit.table.EVENT_SCHEMA``) and ``inputs`` (an :class:`InputStats` account of what was read).
Names load lazily so importing this package does not import polars.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from tracekit.collectors._collect import Collected as Collected
    from tracekit.collectors._collect import collect as collect
    from tracekit.collectors._collect import detect_format as detect_format
    from tracekit.collectors._formats import TextFormat as TextFormat
    from tracekit.collectors._formats import load_format as load_format
    from tracekit.collectors._sources import FileSource as FileSource
    from tracekit.collectors._sources import MemorySource as MemorySource
    from tracekit.collectors._sources import Source as Source
    from tracekit.collectors._sources import StdinSource as StdinSource
    from tracekit.collectors._stats import InputStats as InputStats

__all__ = [
    "Collected",
    "FileSource",
    "InputStats",
    "MemorySource",
    "Source",
    "StdinSource",
    "TextFormat",
    "collect",
    "detect_format",
    "load_format",
]

_WHERE = {
    "Collected": "_collect",
    "collect": "_collect",
    "detect_format": "_collect",
    "TextFormat": "_formats",
    "load_format": "_formats",
    "FileSource": "_sources",
    "MemorySource": "_sources",
    "Source": "_sources",
    "StdinSource": "_sources",
    "InputStats": "_stats",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'tracekit.collectors' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"tracekit.collectors.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(list(globals()) + __all__)
