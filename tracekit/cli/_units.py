"""Durations (``500ms``, ``2s``, ``1m``) and percentages (``99.9%``) as the CLI accepts them."""

from __future__ import annotations

import re
from datetime import timedelta

__all__ = ["parse_duration", "parse_percent"]

_DURATION = re.compile(r"\s*(\d+(?:\.\d+)?)\s*(us|µs|ms|s|m|h)?\s*")
_UNIT = {"us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_duration(text: str) -> timedelta:
    """``500ms`` -> 0.5 s; a bare number is milliseconds. Raises ValueError with the fix."""
    match = _DURATION.fullmatch(text)
    if match is None:
        raise ValueError(f"not a duration: {text!r} (use e.g. 500ms, 2s, 1m)")
    value, unit = match.groups()
    try:
        return timedelta(seconds=float(value) * _UNIT[unit or "ms"])
    except OverflowError:  # past timedelta's ~2.7 million years (or an infinite float)
        raise ValueError(f"too long: {text!r} (at most 999999999 days)") from None


def parse_percent(text: str) -> float:
    """``99.9%`` or ``99.9`` -> 99.9. Raises ValueError with the fix. A bare number up to 1
    (``0.999``, ``1``) is refused: it reads as a fraction (99.9%) but would be a percent
    (0.999%), a gate that passes on almost nothing; write the ``%``."""
    body = text.strip()
    try:
        value = float(body.removesuffix("%"))
    except ValueError:
        raise ValueError(f"not a percentage: {text!r} (use e.g. 99.9%)") from None
    if not 0.0 <= value <= 100.0:
        raise ValueError(f"percentage out of range: {text!r} (0% to 100%)")
    if not body.endswith("%") and 0.0 < value <= 1.0:
        raise ValueError(
            f"{text!r} is a percent, not a fraction: write {value * 100:g}% for a fraction of "
            f"{text}, or {body}% if you mean {body} percent"
        )
    return value
