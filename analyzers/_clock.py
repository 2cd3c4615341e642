"""Clock offsets per source from the causal edges of the pipeline.

Every pipeline edge ``a -> b`` logged by two different sources is a causal pair: ``b`` cannot
truly happen before ``a``. With ``true = ts - offset`` that gives the difference constraint
``offset_b - offset_a <= ts_b - ts_a``. The request/persist/response edges are NTP's samples
(t1 <= t2 <= t4, uncertainty half the round trip, the lowest-delay samples binding) and
deliver -> receive is the causal bound; keeping only the tightest constraint per source pair and
taking shortest paths from the reference (the source that persists messages, offset 0) gives
each source an interval ``[lo, hi]`` of offsets consistent with every pair in the logs. The
estimate is its middle and the uncertainty its half width where clean pairs bound the source on
both sides, else the point of the interval nearest zero (see :func:`solve_offsets`). An empty
interval means some receive is before its send whatever the offsets: that is reported as a
clock finding, not a latency.
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


def _bounds(
    reference: str, nodes: list[str], constraints: list[tuple[str, str, int, int]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per source, ``hi`` and ``back`` with ``-back <= offset <= hi`` (``inf``: unbounded)."""
    fwd: dict[str, list[tuple[str, int]]] = defaultdict(list)
    rev: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for a, b, w, _ in constraints:
        fwd[a].append((b, w))
        rev[b].append((a, w))
    hi, ok_hi = _shortest(reference, fwd, nodes)  # offset_s <= dist(ref -> s)
    back, ok_lo = _shortest(reference, rev, nodes)  # offset_s >= -dist(s -> ref)
    if not (ok_hi and ok_lo):
        # Some pairs contradict each other: paths through other sources would spread the
        # contradiction to everyone, so each source keeps only its own pairs with the reference.
        direct = {(a, b): w for a, b, w, _ in constraints}
        hi = {s: float(direct.get((reference, s), math.inf)) for s in nodes}
        back = {s: float(direct.get((s, reference), math.inf)) for s in nodes}
        hi[reference] = back[reference] = 0.0
    return hi, back


def solve_offsets(
    reference: str | None,
    sources: Iterable[str],
    constraints: Iterable[tuple[str, str, int, int]],
    clean: Iterable[tuple[str, str, int, int]] | None = None,
) -> dict[str, ClockEstimate]:
    """``constraints``: ``(a, b, w, n)`` meaning ``offset_b - offset_a <= w`` from ``n`` pairs.

    ``clean``: the constraints from unambiguous pairs only (no retried hop), when some are not.
    Every constraint is a valid bound, but a retried hop's first occurrence may pair with the
    other attempt's hop: a loose bound on one side only. The middle of the interval is the
    estimate only where clean pairs bound the source on both sides (NTP's symmetric exchange);
    elsewhere it is the point of the interval nearest zero (clocks are taken as in sync unless
    the logs force an offset), and the uncertainty covers the whole interval.
    """
    nodes = sorted(set(sources))
    constraints_list = list(constraints)
    count: dict[str, int] = defaultdict(int)
    for a, b, _, n in constraints_list:
        count[a] += n
        count[b] += n
    out: dict[str, ClockEstimate] = {}
    if reference is None or reference not in nodes:
        for s in nodes:
            out[s] = ClockEstimate(s, 0, None, -math.inf, math.inf, count[s], True)
        return out
    hi, back = _bounds(reference, nodes, constraints_list)
    if clean is None:
        two_sided = {s for s in nodes if math.isfinite(hi[s]) and math.isfinite(back[s])}
    else:
        hi_c, back_c = _bounds(reference, nodes, list(clean))
        two_sided = {s for s in nodes if math.isfinite(hi_c[s]) and math.isfinite(back_c[s])}
    for s in nodes:
        h, lo = hi[s], -back[s]
        if s == reference:
            out[s] = ClockEstimate(s, 0, 0, 0.0, 0.0, count[s], lo <= 0 <= h)
            continue
        consistent = lo <= h
        if s in two_sided and math.isfinite(h) and math.isfinite(lo):
            off, unc = (lo + h) / 2, abs(h - lo) / 2
            out[s] = ClockEstimate(s, round(off), round(unc), lo, h, count[s], consistent)
            continue
        # Only "at most h ahead" and/or "at least lo" (e.g. a client that only receives, or
        # whose only exchanges were retried): no offset unless the bounds force one.
        near = min(max(0.0, lo), h) if consistent else (lo + h) / 2
        bounded = math.isfinite(h) and math.isfinite(lo)
        spread = round(max(near - lo, h - near)) if bounded else None
        out[s] = ClockEstimate(s, round(near), spread, lo, h, count[s], consistent)
    return out
