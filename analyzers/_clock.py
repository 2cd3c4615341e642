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

__all__ = ["ClockEstimate", "majority_reference", "solve_offsets"]


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
    #: the source its offset is measured against: the reference of its part of the logs (a
    #: part whose sources share no pair with the reference's has a reference of its own)
    against: str | None = None


def _shortest(
    start: str, adj: dict[str, list[tuple[str, int]]], nodes: Iterable[str]
) -> dict[str, float]:
    """Bellman-Ford from ``start`` over consistent constraints (:func:`_break_cycles`)."""
    dist: dict[str, float] = dict.fromkeys(nodes, math.inf)
    dist[start] = 0.0
    for _ in range(len(dist)):
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
            break
    return dist


def _negative_cycle(
    nodes: list[str], constraints: list[tuple[str, str, int, int]]
) -> list[int] | None:
    """Indices into ``constraints`` of one negative cycle of ``offset_b - offset_a <= w``, or
    None. Bellman-Ford from every node at once; after each round the predecessor graph is
    searched for a cycle (any cycle there is negative), so a cycle is found in a few rounds,
    not the V rounds that prove it."""
    dist: dict[str, float] = dict.fromkeys(nodes, 0.0)
    pred: dict[str, int] = {}
    for _ in range(len(nodes) + 1):
        changed = False
        for k, (a, b, w, _) in enumerate(constraints):
            if dist[a] + w < dist[b]:
                dist[b] = dist[a] + w
                pred[b] = k
                changed = True
        if not changed:
            return None
        if (cycle := _pred_cycle(pred, constraints)) is not None:
            return cycle
    return None  # not reached: a cycle shows in the predecessor graph by round V


def _pred_cycle(
    pred: dict[str, int], constraints: list[tuple[str, str, int, int]]
) -> list[int] | None:
    """A cycle of the predecessor graph (each node's last improving constraint), or None."""
    seen: dict[str, int] = {}  # node -> the walk that reached it
    for walk, start in enumerate(pred):
        at = start
        while at in pred and at not in seen:
            seen[at] = walk
            at = constraints[pred[at]][0]
        if seen.get(at) == walk and at in pred:  # this walk came back to itself
            cycle, node = [], at
            while True:
                k = pred[node]
                cycle.append(k)
                node = constraints[k][0]
                if node == at:
                    return cycle
    return None


def _break_cycles(
    nodes: list[str],
    constraints: list[tuple[str, str, int, int]],
    ladders: Callable[[], Mapping[tuple[str, str], Sequence[int]]] | None = None,
) -> tuple[list[tuple[str, str, int, int]], list[tuple[str, str, int, int]]]:
    """``(kept, set_aside)``: while a negative cycle is left, the source pair of the cycle that
    needs the fewest of its pairs set aside to clear it loses them (``ladders``: each source
    pair's smallest ``w``, ascending). Early receives of one clock among many good pairs are
    what is set aside; the rest still bound the clocks. A source pair whose pairs all clash
    goes whole. ``set_aside``: ``(a, b, tightest w, pairs set aside)``."""
    kept: list[tuple[str, str, int, int] | None] = list(constraints)
    aside: list[tuple[str, str, int, int]] = []
    rungs: dict[tuple[str, str], list[int]] = {}

    def clashing(i: int, cycle: list[int]) -> tuple[list[int], int, bool]:
        # its known pairs from its tightest up, and how many are tighter than the rest of the
        # cycle allows; unknown beyond the ladder when they fill it and it has more
        a, b, w, n = _at(kept, i)
        floor = -sum(_at(kept, k)[2] for k in cycle if k != i)
        ladder = [x for x in rungs.get((a, b), [w]) if x >= w] or [w]
        count = sum(1 for x in ladder if x < floor)
        return ladder, count, count == len(ladder) < n

    def resolve(cycle: list[int]) -> None:
        nonlocal rungs
        if not rungs and ladders is not None:  # asked for only now: contradictions are rare
            rungs = {k: list(v) for k, v in ladders().items()}
        cost = {k: clashing(k, cycle) for k in cycle}
        i = min(cycle, key=lambda k: (cost[k][1], cost[k][2], _at(kept, k)[3]))
        ladder, count, unknown = cost[i]
        a, b, w, n = _at(kept, i)
        aside.append((a, b, w, count))
        kept[i] = None if unknown or count >= n else (a, b, ladder[count], n - count)

    # Source pairs that contradict each other directly (a client against the server: the
    # usual case) in one pass; Bellman-Ford is left the longer cycles.
    where = {(c[0], c[1]): k for k, c in enumerate(constraints)}
    for (a, b), k in where.items():
        back = where.get((b, a))
        if a < b and back is not None:
            ab, ba = kept[k], kept[back]
            if ab is not None and ba is not None and ab[2] + ba[2] < 0:
                resolve([k, back])
    rest = [c for c in kept if c is not None]
    while (cycle := _negative_cycle(nodes, rest)) is not None:
        kept = list(rest)
        resolve(cycle)
        rest = [c for c in kept if c is not None]
    return rest, aside


def _at(kept: list[tuple[str, str, int, int] | None], i: int) -> tuple[str, str, int, int]:
    c = kept[i]
    assert c is not None  # only the cycle's own, present, entries are asked for
    return c


def _references(
    reference: str,
    preferred: Sequence[str],
    nodes: list[str],
    kept: list[tuple[str, str, int, int]],
    fallback: Callable[[], Sequence[str]] | None,
) -> dict[str, str]:
    """Each source's reference: ``reference`` for its part of the pair graph, the first
    ``preferred`` source of any other part that holds one, else the first ``fallback``
    source of a part with pairs of its own (a source that shares no pair is left out:
    unbounded)."""
    root = {s: s for s in nodes}

    def find(s: str) -> str:
        while root[s] != s:
            root[s] = root[root[s]]
            s = root[s]
        return s

    for a, b, _, _ in kept:
        root[find(a)] = find(b)
    local: dict[str, str] = {find(reference): reference}
    for s in preferred:
        if s in root:
            local.setdefault(find(s), s)
    # A part whose sources share pairs but no preferred source (a server whose persisting
    # peer's log is not given): its pairs still place its sources against each other (each
    # left at 0, a pair between them read as reversed, a clock finding below the limit).
    unplaced = {find(a) for a, _, _, _ in kept} - set(local)
    if unplaced and fallback is not None:
        for s in fallback():
            if s in root and find(s) in unplaced:
                local.setdefault(find(s), s)
    return {s: local[find(s)] for s in nodes if find(s) in local}


def _bounds(
    refs: Mapping[str, str], nodes: list[str], constraints: list[tuple[str, str, int, int]]
) -> tuple[dict[str, float], dict[str, float]]:
    """Per source, ``hi`` and ``back`` with ``-back <= offset <= hi`` against its reference
    (``inf``: unbounded); ``constraints`` must be consistent (:func:`_break_cycles`)."""
    # per part of the graph (a pair joins two sources of one part)
    fwd: dict[str, dict[str, list[tuple[str, int]]]] = defaultdict(lambda: defaultdict(list))
    rev: dict[str, dict[str, list[tuple[str, int]]]] = defaultdict(lambda: defaultdict(list))
    for a, b, w, _ in constraints:
        if (ref := refs.get(a)) is not None:
            fwd[ref][a].append((b, w))
            rev[ref][b].append((a, w))
    parts: dict[str, list[str]] = defaultdict(list)
    for s in nodes:
        if (ref := refs.get(s)) is not None:
            parts[ref].append(s)
    hi: dict[str, float] = dict.fromkeys(nodes, math.inf)
    back: dict[str, float] = dict.fromkeys(nodes, math.inf)
    for ref, part in parts.items():
        up = _shortest(ref, fwd[ref], part)  # offset_s <= dist(ref -> s)
        down = _shortest(ref, rev[ref], part)  # offset_s >= -dist(s -> ref)
        for s in part:
            hi[s], back[s] = up[s], down[s]
    return hi, back


def _together(
    loose: Mapping[str, float],
    offsets: Mapping[str, float],
    kept: Sequence[tuple[str, str, int, int]],
    hi: Mapping[str, float],
    back: Mapping[str, float],
) -> dict[str, float]:
    """The ``loose`` sources' offsets (each nearest zero alone) lowered where a pair with
    another source needs it (``offset_b - offset_a <= w``), never below their lower bound:
    the greatest offsets under those that the pairs allow (Bellman-Ford's relaxation; the
    others' ``offsets`` stay). Two loose sides are placed by moving one of them, the later
    event's, lowered (a source whose lines only ever come first, one that only sends, keeps
    its offset). A loose source before a placed one is raised, never above its upper bound:
    its lower bound comes from the other's interval, not its estimate (a sender bounded only
    by its sends to a client placed at its middle read a send after its receive, within that
    client's uncertainty, as a clock finding)."""
    x = {**offsets, **loose}
    for _ in range(len(x)):
        moved = False
        for a, b, w, _ in kept:
            if a not in x or b not in x or x[a] + w >= x[b]:
                continue
            if b in loose:
                lowered = max(x[a] + w, -back[b])
                if lowered < x[b]:
                    x[b], moved = lowered, True
            elif a in loose:
                raised = min(x[b] - w, hi[a])
                if raised > x[a]:
                    x[a], moved = raised, True
        if not moved:
            break
    return {s: min(x[s], hi[s]) for s in loose}


def solve_offsets(
    reference: str | None,
    sources: Iterable[str],
    constraints: Iterable[tuple[str, str, int, int]],
    clean: Iterable[tuple[str, str, int, int]] | None = None,
    ladders: Callable[[], Mapping[tuple[str, str], tuple[Sequence[int], Sequence[int]]]]
    | None = None,
    preferred: Sequence[str] = (),
    fallback: Callable[[], Sequence[str]] | None = None,
) -> tuple[dict[str, ClockEstimate], dict[tuple[str, str], int]]:
    """``constraints``: ``(a, b, w, n)`` meaning ``offset_b - offset_a <= w`` from ``n`` pairs.
    Returns the estimates and, per source pair, the tightest ``w`` kept (the contradicting
    pairs set aside): a bound on ``offset_b - offset_a`` of its own, tighter than the two
    sources' intervals against the reference where neither is the reference.

    ``clean``: the constraints from unambiguous pairs only (no retried hop), when some are not.
    Every constraint is a valid bound, but a retried hop's first occurrence may pair with the
    other attempt's hop: a loose bound on one side only. The middle of the interval is the
    estimate only where clean pairs bound the source on both sides (NTP's symmetric exchange);
    elsewhere it is the point of the interval nearest zero (clocks are taken as in sync unless
    the logs force an offset), and the uncertainty covers the whole interval.

    ``preferred``: references in order of preference (the sources that persist the most
    messages first). Sources that share no pair, even indirectly, with ``reference`` (the logs
    of two separate systems, e.g. test runs each with its own server) are measured against the
    first of these in their own part of the logs; with none, against the first of
    ``fallback`` there (asked for only then); a source that shares no pair stays unbounded.

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
        return out, {}
    every = sorted(set(nodes).union(*((a, b) for a, b, _, _ in constraints_list)))
    cached: list[Mapping[tuple[str, str], tuple[Sequence[int], Sequence[int]]]] = []

    def ladder(k: int) -> Callable[[], Mapping[tuple[str, str], Sequence[int]]]:
        def get() -> Mapping[tuple[str, str], Sequence[int]]:
            if not cached:
                cached.append(ladders() if ladders is not None else {})
            return {pair: v[k] for pair, v in cached[0].items()}

        return get

    kept, aside = _break_cycles(every, constraints_list, ladder(0))
    refs = _references(reference, preferred, every, kept, fallback)
    hi, back = _bounds(refs, every, kept)
    if clean is None:
        two_sided = {s for s in nodes if math.isfinite(hi[s]) and math.isfinite(back[s])}
    else:
        kept_c, _ = _break_cycles(every, list(clean), ladder(1))
        hi_c, back_c = _bounds(refs, every, kept_c)
        two_sided = {s for s in nodes if math.isfinite(hi_c[s]) and math.isfinite(back_c[s])}
    loose: dict[str, float] = {}  # the sources placed nearest zero: the pairs may move them
    for s in nodes:
        h, lo = hi[s], -back[s]
        if refs.get(s) == s:
            out[s] = ClockEstimate(s, 0, 0, 0.0, 0.0, count[s], lo <= 0 <= h, against=s)
            continue
        consistent = lo <= h
        if s in two_sided and math.isfinite(h) and math.isfinite(lo):
            off, unc = (lo + h) / 2, abs(h - lo) / 2
            out[s] = ClockEstimate(
                s, round(off), round(unc), lo, h, count[s], consistent, against=refs.get(s)
            )
            continue
        # Only "at most h ahead" and/or "at least lo" (e.g. a client that only receives, or
        # whose only exchanges were retried): no offset unless the bounds force one.
        near = min(max(0.0, lo), h) if consistent else (lo + h) / 2
        if consistent and refs.get(s) is not None:  # (no reference: nothing to place it by)
            loose[s] = near
        out[s] = ClockEstimate(
            s, round(near), None, lo, h, count[s], consistent, against=refs.get(s)
        )
    # Each placed nearest zero alone, two such sources may break their own pairs (a server
    # and the client that only talks to it, both unbounded against the reference: review
    # 20b): placed together, within their intervals.
    placed = _together(loose, {s: c.offset_ns for s, c in out.items()}, kept, hi, back)
    for s, c in out.items():
        near = placed.get(s, (c.lo_ns + c.hi_ns) / 2)
        bounded = math.isfinite(c.hi_ns) and math.isfinite(c.lo_ns)
        spread = round(max(near - c.lo_ns, c.hi_ns - near)) if bounded else None
        if s in loose or not c.consistent:
            out[s] = replace(c, offset_ns=round(near), uncertainty_ns=spread)
    for a, b, w, _ in aside:
        # the receiving side's clock, unless that is the reference's
        blamed, other = (b, a) if refs.get(b) != b else (a, b)
        if blamed not in out:
            continue
        at = {x: out[x].offset_ns if x in out else 0 for x in (a, b)}
        late = at[b] - at[a] - w  # > 0: the pair's second event logged before the first
        c = out[blamed]
        if late > 0 and (c.contradiction_ns is None or late > c.contradiction_ns):
            out[blamed] = replace(
                c, consistent=False, contradiction_ns=float(late), contradicted_by=other
            )
    tightest: dict[tuple[str, str], int] = {}
    for a, b, w, _ in kept:
        tightest[(a, b)] = min(w, tightest.get((a, b), w))
    return out, tightest


def majority_reference(
    clock: Mapping[str, ClockEstimate], candidates: Sequence[str], limit_ns: float
) -> str | None:
    """Of the ``candidates`` (the sources that persist messages, the most first) measured
    against the first, the one whose clock the fewest others certainly differ from by more
    than ``limit_ns``; ties go to the earlier candidate.

    Two servers, one of them skewed: measured against the skewed one, every other source
    would be reported as skewed; against the one the rest agree with, only the odd one out.
    """
    if not candidates:
        return None
    first = candidates[0]
    group = [c for c in clock.values() if (c.against or first) == first and c.consistent]
    best, fewest = first, math.inf
    for name in candidates:
        ref = clock.get(name)
        if ref is None or not ref.consistent or (ref.against or first) != first:
            continue
        # off for certain: the whole interval the pairs allow lies beyond the limit (a client
        # that only receives is bounded on one side, and never off on the other)
        off = sum(
            1
            for c in group
            if c.lo_ns - ref.offset_ns > limit_ns or c.hi_ns - ref.offset_ns < -limit_ns
        )
        if off < fewest:
            best, fewest = name, off
    return best
