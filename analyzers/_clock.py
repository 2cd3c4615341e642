"""Clock offsets per source from the causal edges of the pipeline.

Every pipeline edge ``a -> b`` logged by two different sources is a causal pair: ``b`` cannot
truly happen before ``a``. With ``true = ts - offset`` that gives the difference constraint
``offset_b - offset_a <= ts_b - ts_a``. The request/persist/response edges are NTP's samples
(t1 <= t2 <= t4, uncertainty half the round trip, the lowest-delay samples binding) and
deliver -> receive is the causal bound; keeping only the tightest constraint per source pair and
taking shortest paths from the reference (the source that persists messages, offset 0) gives
each source an interval ``[lo, hi]`` of offsets consistent with every pair in the logs. The
estimate is its middle and the uncertainty its half width where clean pairs bound the source on
both sides, else the point of the interval nearest zero (see :func:`solve_offsets`).

Pairs that contradict each other (a negative cycle: some receive is before its send whatever
the offsets) would empty everyone's interval along the cycle. The cycle is broken instead: of
its source pairs, the one backed by the fewest pairs (then the tightest) is set aside, until no
cycle is left, and every other source keeps what the remaining pairs say of it. The receiving
side of a pair set aside is the clock that contradicts causality: a clock finding, not a
latency.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

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
    #: where not consistent: how far (ns) an event is logged before its cause at the offsets
    #: the other pairs allow, and the source on the other side of that pair
    contradiction_ns: float | None = None
    contradicted_by: str | None = None


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


def _negative_cycle(
    nodes: list[str], constraints: list[tuple[str, str, int, int]]
) -> list[int] | None:
    """Indices into ``constraints`` of one negative cycle of ``offset_b - offset_a <= w``, or
    None (Bellman-Ford from every node at once)."""
    dist: dict[str, float] = dict.fromkeys(nodes, 0.0)
    pred: dict[str, int] = {}
    last: str | None = None
    for _ in range(len(nodes) + 1):
        last = None
        for k, (a, b, w, _) in enumerate(constraints):
            if dist[a] + w < dist[b]:
                dist[b] = dist[a] + w
                pred[b] = k
                last = b
        if last is None:
            return None
    node = last
    assert node is not None
    for _ in range(len(nodes)):  # walk back into the cycle itself
        node = constraints[pred[node]][0]
    cycle, at = [], node
    while True:
        k = pred[at]
        cycle.append(k)
        at = constraints[k][0]
        if at == node:
            return cycle


def _break_cycles(
    nodes: list[str],
    constraints: list[tuple[str, str, int, int]],
    ladders: Callable[[], Mapping[tuple[str, str], Sequence[int]]] | None = None,
) -> tuple[list[tuple[str, str, int, int]], list[tuple[str, str, int, int]]]:
    """``(kept, set_aside)``: while a negative cycle is left, its source pair whose tightest
    pair stands out most from its next (``ladders``: each source pair's few smallest ``w``,
    ascending) loses that one pair; a source pair with no pair left goes. One receive logged
    early is one pair too tight among many: it is set aside, the rest still bound the clocks."""
    kept, aside = list(constraints), []
    rungs: dict[tuple[str, str], list[int]] = {}

    def next_w(i: int) -> int | None:
        a, b, w, _ = kept[i]
        return next((x for x in rungs.get((a, b), []) if x > w), None)

    def stands_out(i: int) -> tuple[float, int, int]:
        # how far the tightest pair is from the next one (a lone pair: unknown, first to go)
        _, _, w, n = kept[i]
        up = next_w(i)
        gap = math.inf if n == 1 else (0.0 if up is None else float(up - w))
        return (-gap, n, w)

    while (cycle := _negative_cycle(nodes, kept)) is not None:
        if not rungs and ladders is not None:  # asked for only now: contradictions are rare
            rungs = {k: list(v) for k, v in ladders().items()}
        i = min(cycle, key=stands_out)
        a, b, _, n = kept[i]
        aside.append(kept[i])
        up = next_w(i)
        if up is not None and n > 1:
            kept[i] = (a, b, up, n - 1)  # (n: the pairs left, at most; equal ones go together)
        else:
            kept.pop(i)
    return kept, aside


def _bounds(
    reference: str, nodes: list[str], constraints: list[tuple[str, str, int, int]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per source, ``hi`` and ``back`` with ``-back <= offset <= hi`` (``inf``: unbounded);
    ``constraints`` must be consistent (:func:`_break_cycles`)."""
    fwd: dict[str, list[tuple[str, int]]] = defaultdict(list)
    rev: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for a, b, w, _ in constraints:
        fwd[a].append((b, w))
        rev[b].append((a, w))
    hi, _ = _shortest(reference, fwd, nodes)  # offset_s <= dist(ref -> s)
    back, _ = _shortest(reference, rev, nodes)  # offset_s >= -dist(s -> ref)
    return hi, back


def solve_offsets(
    reference: str | None,
    sources: Iterable[str],
    constraints: Iterable[tuple[str, str, int, int]],
    clean: Iterable[tuple[str, str, int, int]] | None = None,
    ladders: Callable[[], Mapping[tuple[str, str], tuple[Sequence[int], Sequence[int]]]]
    | None = None,
) -> dict[str, ClockEstimate]:
    """``constraints``: ``(a, b, w, n)`` meaning ``offset_b - offset_a <= w`` from ``n`` pairs.

    ``clean``: the constraints from unambiguous pairs only (no retried hop), when some are not.
    Every constraint is a valid bound, but a retried hop's first occurrence may pair with the
    other attempt's hop: a loose bound on one side only. The middle of the interval is the
    estimate only where clean pairs bound the source on both sides (NTP's symmetric exchange);
    elsewhere it is the point of the interval nearest zero (clocks are taken as in sync unless
    the logs force an offset), and the uncertainty covers the whole interval.

    ``ladders``: asked for when pairs contradict each other, per source pair the few smallest
    ``w`` of all its pairs and of its clean ones, ascending: what is left of a source pair once
    a contradicting pair is set aside.
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
    every = sorted(set(nodes).union(*((a, b) for a, b, _, _ in constraints_list)))
    cached: list[Mapping[tuple[str, str], tuple[Sequence[int], Sequence[int]]]] = []

    def ladder(k: int) -> Callable[[], Mapping[tuple[str, str], Sequence[int]]]:
        def get() -> Mapping[tuple[str, str], Sequence[int]]:
            if not cached:
                cached.append(ladders() if ladders is not None else {})
            return {pair: v[k] for pair, v in cached[0].items()}

        return get

    kept, aside = _break_cycles(every, constraints_list, ladder(0))
    hi, back = _bounds(reference, every, kept)
    if clean is None:
        two_sided = {s for s in nodes if math.isfinite(hi[s]) and math.isfinite(back[s])}
    else:
        kept_c, _ = _break_cycles(every, list(clean), ladder(1))
        hi_c, back_c = _bounds(reference, every, kept_c)
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
    for a, b, w, _ in aside:
        # the receiving side's clock, unless that is the reference's
        blamed, other = (b, a) if b != reference else (a, b)
        if blamed not in out:
            continue
        at = {x: out[x].offset_ns if x in out else 0 for x in (a, b)}
        late = at[b] - at[a] - w  # > 0: the pair's second event logged before the first
        c = out[blamed]
        if late > 0 and (c.contradiction_ns is None or late > c.contradiction_ns):
            out[blamed] = replace(
                c, consistent=False, contradiction_ns=float(late), contradicted_by=other
            )
    return out
