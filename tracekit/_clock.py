"""Fast ISO-8601 UTC timestamps: the per-second prefix is cached, only microseconds vary."""

from __future__ import annotations

import time

__all__ = ["iso_utc", "now_ns"]

now_ns = time.time_ns

# (second, "YYYY-MM-DDTHH:MM:SS"); replaced as a whole, so concurrent readers see a consistent pair.
_cached: tuple[int, str] = (-1, "")


def iso_utc(ns: int) -> str:
    """Render epoch nanoseconds as ``2026-11-25T10:00:00.123456Z`` (schema v1's format)."""
    global _cached
    second, micros = divmod(ns // 1000, 1_000_000)
    cached_second, prefix = _cached
    if second != cached_second:
        prefix = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second))
        _cached = (second, prefix)
    return f"{prefix}.{micros:06d}Z"
