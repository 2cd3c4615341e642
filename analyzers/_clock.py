"""Clock offsets per source from the causal edges of the pipeline.

Every pipeline edge ``a -> b`` logged by two different sources is a causal pair: ``b`` cannot
truly happen before ``a``. With ``true = ts - offset`` that gives the difference constraint
``offset_b - offset_a <= ts_b - ts_a``. The request/persist/response edges are NTP's samples
(t1 <= t2 <= t4, uncertainty half the round trip, the lowest-delay samples binding) and
deliver -> receive is the causal bound; keeping only the tightest constraint per source pair and
taking shortest paths from the reference (the source that persists messages, offset 0) gives
each source an interval ``[lo, hi]`` of offsets consistent with every pair in the logs. The
estimate is its middle and the uncertainty its half width. An empty interval means some receive
is before its send whatever the offsets: that is reported as a clock finding, not a latency.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["ClockEstimate", "solve_offsets"]


@dataclass(frozen=True)
class ClockEstimate:
    """Offset of one source (ns, how far it runs ahead of the reference)."""

    source: str
    offset_ns: int
    uncertainty_ns: int | None  # None: only a one-sided bound (or nothing) is known
    lo_ns: float
    hi_ns: float
    samples: int
    consistent: bool


def _shortest(
    start: str, adj: dict[str, list[tuple[str, int]]], nodes: Iterable[str]
) -> tuple[dict[str, float], bool]:
    """Bellman-Ford from ``start``; ``False`` when a negative cycle (a contradiction) remains."""
    dist: dict[str, float] = dict.fromkeys(nodes, math.inf)
    dist[start] = 0.0
    for _ in range(len(dist) + 1):
        changed = False
        for a, outs in adj.items():
            da = dist[a]
            if da == math.inf:
                continue
            for b, w in outs:
                if da + w < dist[b]:
                    dist[b] = da + w
                    changed = True
        if not changed:
            return dist, True
    return dist, False


def solve_offsets(
    reference: str | None,
    sources: Iterable[str],
    constraints: Iterable[tuple[str, str, int, int]],
) -> dict[str, ClockEstimate]:
    """``constraints``: ``(a, b, w, n)`` meaning ``offset_b - offset_a <= w`` from ``n`` pairs."""
    nodes = sorted(set(sources))
    fwd: dict[str, list[tuple[str, int]]] = defaultdict(list)
    rev: dict[str, list[tuple[str, int]]] = defaultdict(list)
    count: dict[str, int] = defaultdict(int)
    constraints_list = list(constraints)
    for a, b, w, n in constraints_list:
        fwd[a].append((b, w))
        rev[b].append((a, w))
        count[a] += n
        count[b] += n
    out: dict[str, ClockEstimate] = {}
    if reference is None or reference not in nodes:
        for s in nodes:
            out[s] = ClockEstimate(s, 0, None, -math.inf, math.inf, count[s], True)
        return out
    hi, ok_hi = _shortest(reference, fwd, nodes)  # offset_s <= dist(ref -> s)
    back, ok_lo = _shortest(reference, rev, nodes)  # offset_s >= -dist(s -> ref)
    if not (ok_hi and ok_lo):
        # Some pairs contradict each other: paths through other sources would spread the
        # contradiction to everyone, so each source keeps only its own pairs with the reference.
        direct = {(a, b): w for a, b, w, _ in constraints_list}
        hi = {s: float(direct.get((reference, s), math.inf)) for s in nodes}
        back = {s: float(direct.get((s, reference), math.inf)) for s in nodes}
        hi[reference] = back[reference] = 0.0
    for s in nodes:
        h, lo = hi[s], -back[s]
        if s == reference:
            out[s] = ClockEstimate(s, 0, 0, 0.0, 0.0, count[s], lo <= 0 <= h)
            continue
        consistent = lo <= h
        if math.isfinite(h) and math.isfinite(lo):
            off, unc = (lo + h) / 2, abs(h - lo) / 2
            out[s] = ClockEstimate(s, round(off), round(unc), lo, h, count[s], consistent)
        elif math.isfinite(h):
            # Only "at most h ahead" is known (e.g. a client that only receives): assume no
            # offset unless the bound forces one.
            out[s] = ClockEstimate(s, round(min(0.0, h)), None, lo, h, count[s], True)
        elif math.isfinite(lo):
            out[s] = ClockEstimate(s, round(max(0.0, lo)), None, lo, h, count[s], True)
        else:
            out[s] = ClockEstimate(s, 0, None, lo, h, count[s], True)
    return out
