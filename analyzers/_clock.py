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
from collections import deque
from collections.abc import Callable, Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from operator import itemgetter

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


_Pair = tuple[str, str, int, int]  # (a, b, w, n): offset_b - offset_a <= w, from n pairs
_Adjacency = dict[str, list[_Pair]]  # per source, the pairs it is one side of
_get_a, _get_b, _get_n = itemgetter(0), itemgetter(1), itemgetter(3)


def _adjacency(nodes: Iterable[str], pairs: Iterable[_Pair]) -> tuple[_Adjacency, _Adjacency]:
    """Per source, the pairs it is ``a`` of and those it is ``b`` of (the pairs themselves:
    no tuple is built per pair)."""
    fwd: _Adjacency = {s: [] for s in nodes}
    rev: _Adjacency = {s: [] for s in fwd}
    for c in pairs:
        fwd[c[0]].append(c)
        rev[c[1]].append(c)
    return fwd, rev


def _relax(
    pairs_of: _Adjacency,
    dist: dict[str, float],
    todo: Iterable[str],
    reverse: bool = False,
    part: Container[str] | None = None,
    leaving: set[str] | None = None,
) -> bool:
    """Queue-based Bellman-Ford (SPFA): lowers ``dist`` along the pairs (per source as ``a``,
    or as ``b`` with ``reverse``: the paths to a source) from the sources ``todo`` until
    ``dist[b] <= dist[a] + w`` for every pair. Only ``part``'s sources are lowered: one with a
    pair that would lower a source outside goes to ``leaving``. Only a source whose distance
    fell is scanned again; a distance is a shortest path sum whatever the order. False where
    a negative cycle is left (``dist`` part way).

    A cycle of the predecessor graph (each source's last improving pair) is a negative one,
    and while one is left the distances fall until it shows; it is looked for after every
    ``len(pairs_of)`` improvements (amortized O(1) each), so it is seen soon after it forms."""
    pred: dict[str, str] = {}
    queue, queued = deque(todo), set(todo)
    budget = len(pairs_of)
    while queue:
        a = queue.popleft()
        queued.discard(a)
        da = dist[a]
        for x, y, w, _ in pairs_of[a]:
            b = x if reverse else y
            if da + w >= dist[b]:
                continue
            if part is not None and b not in part:
                if leaving is not None:
                    leaving.add(a)
                continue
            dist[b], pred[b] = da + w, a
            budget -= 1
            if b not in queued:
                queued.add(b)
                queue.append(b)
        if budget <= 0:
            if _has_cycle(pred):
                return False
            budget = len(pairs_of)
    return True


def _has_cycle(pred: Mapping[str, str]) -> bool:
    """Whether the graph of ``pred`` (each source's predecessor, if any) has a cycle."""
    seen: dict[str, str] = {}  # source -> the walk that reached it
    for start in pred:
        at = start
        while at in pred and at not in seen:
            seen[at] = start
            at = pred[at]
        if seen.get(at) == start:  # this walk came back to itself
            return True
    return False


def _negative_cycle(nodes: list[str], constraints: list[_Pair]) -> list[int] | None:
    """Indices into ``constraints`` of one negative cycle of ``offset_b - offset_a <= w``, or
    None. Bellman-Ford from every node at once; after each round the predecessor graph is
    searched for a cycle (any cycle there is negative), so a cycle is found in a few rounds,
    not the V rounds that prove it. The cycle found decides which pairs are set aside: kept
    as is, run (by :func:`_break_cycles`) only where SPFA (:func:`_relax`) found one."""
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


def _pred_cycle(pred: dict[str, int], constraints: list[_Pair]) -> list[int] | None:
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
    fwd: _Adjacency,
    rev: _Adjacency,
    fallback: Callable[[], Sequence[str]] | None,
) -> dict[str, str]:
    """Each source's reference: ``reference`` for its part of the pair graph (the pairs per
    source, :func:`_adjacency`), the first ``preferred`` source of any other part that holds
    one, else the first ``fallback`` source of a part with pairs of its own (a source that
    shares no pair is left out: unbounded)."""
    part: dict[str, str] = {}  # source -> the first source of its part
    for s in fwd:
        if s in part:
            continue
        seen, new = {s}, {s}
        while new:
            around: set[str] = set()
            for a in new:
                around.update(map(_get_b, fwd[a]), map(_get_a, rev[a]))
            new = around - seen
            seen |= new
        part.update(dict.fromkeys(seen, s))
    local: dict[str, str] = {part[reference]: reference}
    for s in preferred:
        if s in part:
            local.setdefault(part[s], s)
    # A part whose sources share pairs but no preferred source (a server whose persisting
    # peer's log is not given): its pairs still place its sources against each other (each
    # left at 0, a pair between them read as reversed, a clock finding below the limit).
    unplaced = {part[s] for s, pairs in fwd.items() if pairs} - set(local)
    if unplaced and fallback is not None:
        for s in fallback():
            if s in part and part[s] in unplaced:
                local.setdefault(part[s], s)
    return {s: local[p] for s, p in part.items() if p in local}


def _bounds(
    refs: Mapping[str, str], fwd: _Adjacency, rev: _Adjacency
) -> tuple[dict[str, float], dict[str, float], list[str]] | None:
    """Per source, ``hi`` and ``back`` with ``-back <= offset <= hi`` against its reference
    (``inf``: unbounded), over the pairs per source (:func:`_adjacency`), and the sources
    whose pairs ``hi`` may not hold for (``hi[b] <= hi[a] + w``): those it does not reach,
    those with a pair into another part. None where a negative cycle shows."""
    parts: dict[str, set[str]] = {}
    for s, ref in refs.items():
        parts.setdefault(ref, set()).add(s)
    hi: dict[str, float] = dict.fromkeys(fwd, math.inf)
    back: dict[str, float] = dict.fromkeys(fwd, math.inf)
    leaving: set[str] = set()
    for ref, part in parts.items():
        # offset_s <= dist(ref -> s) and offset_s >= -dist(s -> ref), within the part (a clean
        # pair into another, its source pair not in the pair graph, bounds nothing)
        hi[ref] = back[ref] = 0.0
        if not _relax(fwd, hi, [ref], part=part, leaving=leaving):
            return None
        if not _relax(rev, back, [ref], reverse=True, part=part):
            return None
    unsure = [s for s, h in hi.items() if (h == math.inf and fwd[s]) or s in leaving]
    return hi, back, unsure


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
    if not loose:
        return {}
    x = {**offsets, **loose}
    # Only a pair with a loose side moves one: the others are left out of the rounds (which
    # keep their order: it decides where the sources end).
    moving = [c for c in kept if (c[0] in loose or c[1] in loose) and c[0] in x and c[1] in x]
    for _ in range(len(x)):
        moved = False
        for a, b, w, _ in moving:
            if x[a] + w >= x[b]:
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
    every = sorted({*nodes, *map(_get_a, constraints_list), *map(_get_b, constraints_list)})
    fwd, rev = _adjacency(every, constraints_list)
    count = {s: sum(map(_get_n, fwd[s])) + sum(map(_get_n, rev[s])) for s in nodes}
    out: dict[str, ClockEstimate] = {}
    if reference is None or reference not in nodes:
        for s in nodes:
            out[s] = ClockEstimate(s, 0, None, -math.inf, math.inf, count[s], True)
        return out, {}
    cached: list[Mapping[tuple[str, str], tuple[Sequence[int], Sequence[int]]]] = []

    def ladder(k: int) -> Callable[[], Mapping[tuple[str, str], Sequence[int]]]:
        def get() -> Mapping[tuple[str, str], Sequence[int]]:
            if not cached:
                cached.append(ladders() if ladders is not None else {})
            return {pair: v[k] for pair, v in cached[0].items()}

        return get

    asked: list[Sequence[str]] = []

    def fallback_once() -> Sequence[str]:  # (the references may be found twice)
        if not asked:
            asked.append(fallback() if fallback is not None else [])
        return asked[0]

    def references(fwd: _Adjacency, rev: _Adjacency) -> dict[str, str]:
        return _references(
            reference, preferred, fwd, rev, fallback_once if fallback is not None else None
        )

    def kept_and_bounds(
        pairs: list[_Pair],
        fwd: _Adjacency,
        rev: _Adjacency,
        ladders_k: int,
        refs: dict[str, str] | None = None,
    ) -> tuple[list[_Pair], list[_Pair], dict[str, str], dict[str, float], dict[str, float]]:
        # _break_cycles's (kept, set aside) of the pairs (fwd, rev: per source), the references
        # (given, else those of the pairs' own parts) and the bounds from the kept pairs.
        # Mostly no pair contradicts another: the bounds' SPFA finds a negative cycle that a
        # reference reaches, and what is left to check takes one pass, from the bounds: a
        # potential (dist[b] <= dist[a] + w) for all pairs but those of the unsure sources.
        own = refs is None
        refs = references(fwd, rev) if refs is None else refs
        if (bounds := _bounds(refs, fwd, rev)) is not None:
            hi, back, unsure = bounds
            potential = {s: h if h < math.inf else 0.0 for s, h in hi.items()}
            if _relax(fwd, potential, unsure):
                return pairs, [], refs, hi, back
        kept, aside = _break_cycles(every, pairs, ladder(ladders_k))
        fwd, rev = _adjacency(every, kept)
        refs = references(fwd, rev) if own else refs  # (a part may have lost its pairs)
        bounds = _bounds(refs, fwd, rev)
        assert bounds is not None  # (kept: consistent)
        return kept, aside, refs, *bounds[:2]

    kept, aside, refs, hi, back = kept_and_bounds(constraints_list, fwd, rev, 0)
    if clean is None:
        two_sided = {s for s in nodes if math.isfinite(hi[s]) and math.isfinite(back[s])}
    else:
        clean_list = list(clean)
        *_, hi_c, back_c = kept_and_bounds(clean_list, *_adjacency(every, clean_list), 1, refs=refs)
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
    tightest = {(a, b): w for a, b, w, _ in kept}
    if len(tightest) < len(kept):  # a source pair more than once: its tightest
        tightest = {}
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
