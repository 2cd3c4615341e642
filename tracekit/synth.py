"""Synthetic chat histories with known faults: the ground truth for tests and benchmarks.

``generate(seed, ...)`` plans every message of a chat (users, conversations, random branch
orderings, network jitter, per-source clock offsets, nested stages whose events are emitted when
the stage ends but stamped with its start), optionally injects faults, then writes the events the
instrumentation would have written. The same seed always gives the same history. ``truth`` lists
the findings the analyzers must report, exactly.

Clean histories are built to be unambiguous: messages of one conversation are at least ``gap_ms``
apart (so no store order can flip by jitter), latencies are bounded (no outlier, no SLO breach),
clock offsets stay below ``clock_offset_ms``, history loads never hold a receive line (a load
a fault would put over one is left out, or refused for a reconnect's), and the
logs go on ``tail_ms`` after the last message (heartbeat meta events), past the grace window.

Imports polars only inside :meth:`Synth.frame`, so it stays cheap for the instrumentation side.
"""

from __future__ import annotations

import itertools
import random
from array import array
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final, Literal

if TYPE_CHECKING:
    import polars as pl

__all__ = ["FAULT_KINDS", "Expected", "Fault", "Synth", "generate"]

FaultKind = Literal[
    "drop",
    "duplicate",
    "msg_id",
    "reorder",
    "delay",
    "slow",
    "seq_gap",
    "log_loss",
    "race",
    "race_drop",
    "race_overwrite",
    "unexpected",
    "orphan",
    "skew",
    "restart",
    "restart_drop",
    "no_actor",
]
FAULT_KINDS: Final[tuple[FaultKind, ...]] = (
    "drop",
    "duplicate",
    "msg_id",
    "reorder",
    "delay",
    "slow",
    "seq_gap",
    "log_loss",
    "race",
    "race_drop",
    "race_overwrite",
    "unexpected",
    "orphan",
    "skew",
    "restart",
    "restart_drop",
    "no_actor",
)
SERVER: Final = "chat-server-1"
T0_NS: Final = int(datetime(2026, 2, 9, 12, 0, tzinfo=UTC).timestamp()) * 1_000_000_000
_MSG_HOPS: Final = (
    "CTRL.send",
    "REST.request",
    "REST.persist",
    "REST.response",
    "WS-BROADCAST.start",
)
_RCP_HOPS: Final = ("WS-BROADCAST.deliver", "WS-RECV.receive", "REPO.add", "CTRL.add")
_PRED: Final = {
    "REST.request": "CTRL.send",
    "REST.persist": "REST.request",
    "REST.response": "REST.persist",
    "WS-BROADCAST.start": "REST.persist",
    "WS-BROADCAST.deliver": "WS-BROADCAST.start",
    "WS-RECV.receive": "WS-BROADCAST.deliver",
    "REPO.add": "WS-RECV.receive",
    "CTRL.add": "REPO.add",
}
_MS: Final = 1_000_000


@dataclass(frozen=True)
class Fault:
    """A fault to inject; unset targets are chosen by the seeded generator.

    ``hop`` is the first hop lost (``drop``), duplicated (``duplicate``) or delayed (``delay``,
    ``slow``: that hop and the rest of the recipient's path happen ``delay_ms`` later).
    ``restart``: a client's process starts again under the same source name at a quiet time
    (no message or history load in flight anywhere), its ``seq`` from 1; no finding, the
    report's ``summary.restarts`` names it (:attr:`Synth.restarts`). ``restart_drop``: the
    same, the process killed with a message written to its socket and not yet received: one
    ``drop`` at ``WS-RECV.receive`` for that recipient. ``no_actor``: a recipient's app logs
    one message's lines without its actor: one ``unexpected`` (lines that name no
    recipient), and no drop (they may be that recipient's whole path).
    """

    kind: FaultKind
    hop: str | None = None
    delay_ms: float | None = None


@dataclass(frozen=True)
class Expected:
    """A finding the analyzers must report (``source`` only for source-level kinds)."""

    kind: str
    trace_id: str | None = None
    recipient: str | None = None
    stage: str | None = None
    last_seen: str | None = None
    source: str | None = None


@dataclass
class _Msg:
    trace: str
    conv: str
    sender: str
    recipients: list[str]
    t: dict[str, float]  # true start time (ms) per message hop
    r: dict[str, dict[str, float]]  # per recipient: true start time per recipient hop
    named: bool = True  # the broadcast carries the recipients list
    retry: bool = False
    lost: set[tuple[str, str]] = field(default_factory=set)  # (recipient or "", hop)
    dup: set[tuple[str, str]] = field(default_factory=set)
    extra_msg_id: bool = False
    reconnect: str | None = None  # recipient whose socket dropped: gets it by a history load
    faulted: bool = False  # one fault per message keeps the truth unambiguous


@dataclass
class Synth:
    """A generated history: columns in emission order plus the ground truth."""

    columns: dict[str, Any]
    truth: list[Expected]
    messages: int
    sources: dict[str, float]  # true clock offset (ms) per source
    restarts: list[str] = field(default_factory=list)  # sources a restart fault restarted

    def __len__(self) -> int:
        return len(self.columns["ts"])

    def frame(self) -> pl.DataFrame:
        """The event table (``tracekit.table.EVENT_SCHEMA``), ``file`` ``synth.jsonl``."""
        import polars as pl

        from tracekit.table import EVENT_SCHEMA

        c = self.columns
        n = len(c["ts"])
        data = {
            "timestamp": pl.Series(c["ts"], dtype=pl.Int64).cast(EVENT_SCHEMA["timestamp"]),
            "stage": c["stage"],
            "action": c["action"],
            "event": c["event"],
            "trace_id": c["trace_id"],
            "msg_id": c["msg_id"],
            "conv_id": c["conv_id"],
            "actor": c["actor"],
            "peer": c["peer"],
            "source": c["source"],
            "seq": pl.Series(c["seq"], dtype=pl.Int64),
            "span_id": [None] * n,
            "recipients": c["recipients"],
            "level": ["info"] * n,
            "duration_ms": pl.Series(c["duration_ms"], dtype=pl.Float64),
            "file": ["synth.jsonl"] * n,
            "line": pl.int_range(1, n + 1, eager=True),
        }
        return pl.DataFrame(data, schema=EVENT_SCHEMA)

    def events(self) -> Iterator[dict[str, Any]]:
        """Event dicts as the instrumentation writes them (absent keys left out)."""
        c = self.columns
        keys = ("stage", "action", "event", "trace_id", "msg_id", "conv_id", "actor", "peer")
        for i in range(len(c["ts"])):
            ns = c["ts"][i]
            sec, frac = divmod(ns, 1_000_000_000)
            stamp = datetime.fromtimestamp(sec, UTC).strftime("%Y-%m-%dT%H:%M:%S")
            ev: dict[str, Any] = {"timestamp": f"{stamp}.{frac // 1000:06d}Z"}
            for k in keys:
                v = c[k][i]
                if v is not None:
                    ev[k] = v
            ev["source"] = c["source"][i]
            ev["seq"] = c["seq"][i]
            if c["recipients"][i] is not None:
                ev["recipients"] = c["recipients"][i]
            ev["level"] = "info"
            if c["duration_ms"][i] is not None:
                ev["duration_ms"] = c["duration_ms"][i]
            yield ev

    def write_jsonl(self, path: str | Path) -> int:
        """Write the events as JSON lines (orjson); returns the number of lines."""
        import orjson

        n = 0
        with open(path, "wb") as fh:
            buf: list[bytes] = []
            for ev in self.events():
                buf.append(orjson.dumps(ev))
                n += 1
                if len(buf) >= 65536:
                    fh.write(b"\n".join(buf) + b"\n")
                    buf.clear()
            if buf:
                fh.write(b"\n".join(buf) + b"\n")
        return n


class _Out:
    """Event columns being written (true emission time decides ``seq`` order)."""

    def __init__(self, offsets: dict[str, float]) -> None:
        self.offsets = {s: int(o * _MS) for s, o in offsets.items()}
        self.ts = array("q")
        self.emit = array("q")
        self.cols: dict[str, list[Any]] = {
            k: []
            for k in (
                "stage",
                "action",
                "event",
                "trace_id",
                "msg_id",
                "conv_id",
                "actor",
                "peer",
                "source",
                "recipients",
            )
        }

    def add(
        self,
        hop: str,
        source: str,
        actor: str | None,
        start_ms: float,
        end_ms: float,
        *,
        trace: str | None = None,
        conv: str | None = None,
        msg_id: str | None = None,
        peer: str | None = None,
        recipients: list[str] | None = None,
    ) -> None:
        stage, action = hop.split(".", 1)
        c = self.cols
        self.ts.append(T0_NS + int(start_ms * _MS) + self.offsets.get(source, 0))
        self.emit.append(int(end_ms * _MS))
        c["stage"].append(stage)
        c["action"].append(action)
        c["event"].append(hop)
        c["trace_id"].append(trace)
        c["msg_id"].append(msg_id)
        c["conv_id"].append(conv)
        c["actor"].append(actor)
        c["peer"].append(peer)
        c["source"].append(source)
        c["recipients"].append(recipients)


def _client(user: str) -> str:
    return f"client-{user}"


def _tablet(user: str) -> str:
    return f"client-{user}-b"


def generate(
    seed: int = 0,
    *,
    messages: int = 100,
    users: int = 6,
    conversations: int = 3,
    max_members: int = 4,
    clock_offset_ms: float = 40.0,
    include_sender: bool = True,
    retries: float = 0.05,
    history_loads: float = 0.1,
    reconnects: float = 0.0,
    unnamed: float = 0.0,
    single_member: bool = False,
    second_devices: float = 0.0,
    faults: Sequence[Fault | FaultKind] = (),
    gap_ms: float = 1000.0,
    tail_ms: float = 8000.0,
) -> Synth:
    """Plan and write a chat history; see the module docstring for what "clean" guarantees.

    ``include_sender``: the broadcast names the sender too (their client then receives its own
    message). ``unnamed``: share of broadcasts without a ``recipients`` list (legacy servers).
    ``single_member``: conversation ``c0`` has only one member. ``second_devices``: share of users
    with a second client (``client-uN-b``, its own log and clock) that receives every message too;
    faults never target those users.
    """
    rng = random.Random(seed)
    names = [f"u{i}" for i in range(max(users, 2))]
    offsets = {SERVER: 0.0}
    for u in names:
        offsets[_client(u)] = rng.uniform(-clock_offset_ms, clock_offset_ms)
    tablets = {u for u in names if second_devices and rng.random() < second_devices}
    for u in sorted(tablets):
        offsets[_tablet(u)] = rng.uniform(-clock_offset_ms, clock_offset_ms)
    convs: list[tuple[str, list[str]]] = []
    for c in range(max(conversations, 1)):
        if single_member and c == 0:
            members = [rng.choice(names)]
        else:
            k = rng.randint(2, max(2, min(max_members, len(names))))
            members = sorted(rng.sample(names, k))
        convs.append((f"c{c}", members))

    # Phase 1: plan every message (true times in ms).
    plans: list[_Msg] = []
    per_conv = [
        messages // len(convs) + (1 if i < messages % len(convs) else 0) for i in range(len(convs))
    ]
    for (conv, members), count in zip(convs, per_conv, strict=True):
        t = rng.uniform(0, gap_ms)
        for _ in range(count):
            sender = rng.choice(members)
            recips = [m for m in members if include_sender or m != sender]
            trace = f"{rng.getrandbits(128) | 1:032x}"
            tt: dict[str, float] = {"CTRL.send": t}
            tt["REST.request"] = t + rng.uniform(0.2, 1.0)
            tt["REST.persist"] = tt["REST.request"] + rng.uniform(1.0, 8.0)
            tt["WS-BROADCAST.start"] = tt["REST.persist"] + rng.uniform(0.5, 3.0)
            tt["REST.response"] = tt["REST.persist"] + rng.uniform(1.0, 8.0)
            rr: dict[str, dict[str, float]] = {}
            d = tt["WS-BROADCAST.start"]
            for r in recips:
                d += rng.uniform(0.05, 0.3)
                recv = d + rng.uniform(2.0, 15.0)
                add = recv + rng.uniform(0.1, 1.5)
                rr[r] = {
                    "WS-BROADCAST.deliver": d,
                    "WS-RECV.receive": recv,
                    "REPO.add": add,
                    "CTRL.add": add + rng.uniform(0.1, 1.5),
                }
            m = _Msg(trace, conv, sender, recips, tt, rr)
            m.named = rng.random() >= unnamed
            m.retry = rng.random() < retries
            others = [r for r in recips if r != sender]
            if others and rng.random() < reconnects:
                m.reconnect = rng.choice(others)
            plans.append(m)
            t += gap_ms + rng.expovariate(1 / (gap_ms / 4))
    plans.sort(key=lambda m: m.t["CTRL.send"])
    t_last = max((max(m.t.values()) for m in plans), default=0.0) + 100.0

    # Phase 2: faults on the plan.
    truth: list[Expected] = []
    fetches: list[tuple[str, str, float, float]] = []  # (user, conv, start, end)
    # Logging faults last, on clients no other fault involves: a seq gap near another fault's
    # events would rightly make that fault indeterminate, and the truth would not say so.
    wanted = [f if isinstance(f, Fault) else Fault(f) for f in faults]
    wanted.sort(key=lambda f: f.kind in ("seq_gap", "log_loss"))
    # (restarts last of all, once every event is placed: they need a quiet time)
    restarts = [f for f in wanted if f.kind in _RESTARTS]
    wanted = [f for f in wanted if f.kind not in _RESTARTS]
    # Faults draw from their own generator: the rest of the history (history loads, reconnect
    # fetches) gets the same draws with or without them, so a faulted history is the clean one
    # of the same seed plus its faults.
    fault_rng = random.Random(f"tracekit.synth.faults/{seed}")
    for fault in wanted:
        _inject(fault, plans, names, offsets, fault_rng, truth, fetches, t_last, tablets)
    for outlier in truth:  # (a later fault may have taken a delay's samples away)
        if outlier.kind == "latency_outlier" and outlier.stage is not None:
            _check_samples(outlier.stage, plans)
    # Clean history loads, in the quiet time after a message of that conversation; none over
    # a receive line of that conversation by that user (a fault may have moved one there: a
    # `slow` message's CTRL.add 600 ms late, and its receive's line with it, reviews 16b and
    # 16c), which would be a race the truth does not hold. Drawn either way, so the rest of
    # the history stays the same.
    receives = _receive_lines(plans)
    for m in plans:
        if rng.random() < history_loads:
            user = rng.choice([u for c, ms in convs if c == m.conv for u in ms])
            s = max(max(v["CTRL.add"] for v in m.r.values()) if m.r else 0, m.t["REST.response"])
            s += rng.uniform(20.0, 60.0)
            e = s + rng.uniform(10.0, 100.0)
            if not _over_a_receive(receives, m.conv, user, s, e):
                fetches.append((user, m.conv, s, e))

    # Phase 3: write events.
    out = _Out(offsets)
    for m in plans:
        _emit(m, out, rng, fetches, tablets, receives)
    for user, conv, s, e in fetches:
        out.add("REST.fetch_start", _client(user), user, s, s, conv=conv)
        out.add("REST.fetch_end", _client(user), user, e, e, conv=conv)
    t_hb = t_last + tail_ms
    for src in sorted(offsets):
        actor = "server" if src == SERVER else src.removeprefix("client-")
        out.add("TRACEKIT.configured", src, actor, -1.0, -1.0)  # first in every log
        out.add("TRACEKIT.heartbeat", src, actor, t_hb, t_hb)
    restarted: dict[str, int] = {}
    killed: set[int] = set()  # rows a killed process never wrote
    for fault in restarts:
        lose = fault.kind == "restart_drop"
        _restart(
            out,
            plans,
            fetches,
            truth,
            fault_rng,
            t_last=t_last,
            tablets=tablets,
            restarted=restarted,
            killed=killed,
            lose=lose,
        )
    columns, more_gaps = _sequence(out, plans, restarted, killed)
    truth += [Expected("log_gap", None, None, None, None, source=s) for s in more_gaps]
    return Synth(columns, truth, len(plans), offsets, sorted(restarted))


#: The faults that restart a client (placed once every event is, :func:`_restart`).
_RESTARTS: Final = ("restart", "restart_drop")

#: How far from the history's start and its last message a fault is put (ms): past a 5 s
#: grace at the start, and not among the last messages.
_ROOM: Final = (6000.0, 2000.0)


def _eligible(
    plans: list[_Msg], t_last: float, tablets: set[str], *, unnamed: bool = True
) -> list[int]:
    # Far enough from both ends of the history (never in flight) and with a real recipient
    # that has one device. ``unnamed``: a broadcast without a recipients list will do (its
    # expected recipients are the conversation's members).
    idx = [
        i
        for i, m in enumerate(plans)
        if 0 < i < len(plans) - 1
        and _ROOM[0] < m.t["CTRL.send"] < t_last - _ROOM[1]
        and (m.named or unnamed)
        and m.reconnect is None
        and any(r != m.sender and r not in tablets for r in m.recipients)
    ]
    if not idx:
        raise ValueError("history too small to inject a fault: generate more messages")
    return idx


#: How near the end-to-end SLO a delayed message may end and its breach still be certain
#: (the analysis reads times on estimated clocks, a few ms off), and a skewed clock's offset
#: the skew threshold.
_SLO_MARGIN_MS: Final = 25.0
_SKEW_MARGIN_MS: Final = 10.0


def _check_delay(kind: str, hop: str, extra: float, m: _Msg, r: str, plans: list[_Msg]) -> bool:
    """Whether delaying ``m``'s ``hop`` to ``r`` by ``extra`` ms breaches the end-to-end SLO
    (the truth then holds the breach, whatever the kind); ValueError where the analysis
    could not find what the fault claims, or would find more: a delay within the outlier
    floor, an edge with fewer samples than an outlier needs, a ``slow`` message within the
    SLO, one too near it to say, one that overtakes the next message to ``r`` (a reorder)."""
    from tracekit.analyzers import default_pipeline  # (polars: only for a delay fault)

    model = default_pipeline()
    # (twice the floor: a hop between hosts is read on estimated clocks, a few ms off; a
    # 30 ms delay of a receive was found in 5 of 8 histories, review 17c)
    floor = 2 * model.outlier_floor.total_seconds() * 1000
    if extra < floor:
        raise ValueError(
            f"a delay of {extra} ms is within twice the outlier floor ({floor:g} ms): use a "
            "longer delay"
        )
    _check_samples(hop, plans)
    slo = model.slo.get("end_to_end", timedelta(milliseconds=500)).total_seconds() * 1000
    took = m.r[r]["CTRL.add"] + extra - m.t["CTRL.send"]
    if abs(took - slo) < _SLO_MARGIN_MS:
        raise ValueError(f"a delay of {extra} ms ends too near the {slo:g} ms SLO to say")
    if kind == "slow" and took < slo:
        raise ValueError(f"a slow message needs a delay past the {slo:g} ms SLO")
    i = plans.index(m)
    nxt = next((n for n in plans[i + 1 :] if n.conv == m.conv and r in n.r), None)
    # (the last hop is always delayed; reaching the next one's store is a reorder, or near one)
    if nxt is not None and m.r[r]["CTRL.add"] + extra >= nxt.r[r]["REPO.add"]:
        raise ValueError(
            f"a delay of {extra} ms overtakes the next message to {r}: use a longer gap_ms or "
            "a shorter delay"
        )
    return took > slo


def _check_samples(hop: str, plans: list[_Msg]) -> None:
    """ValueError where ``hop``'s edge has fewer samples than an outlier needs: deliveries
    with both its hops (not by a reconnect's history load, nor lost, nor in lost or unnamed
    lines, by a fault of the list). Checked as a delay fault is placed, and again once every
    fault is (a later one may take samples away, review 18e)."""
    from tracekit.analyzers import default_pipeline  # (polars: only for a delay fault)

    least = default_pipeline().outlier_min_samples
    edge = {hop, _PRED[hop]}
    samples = sum(
        1
        for p in plans
        for x in p.r
        if x != p.reconnect
        and not any(who in (x, "") and (h in edge or h.startswith("_")) for who, h in p.lost)
    )
    if samples < least:
        raise ValueError(
            f"{samples} deliveries, fewer than the {least} samples an outlier needs: generate "
            "more messages"
        )


def _check_skew(offset_ms: float) -> None:
    """ValueError where a skewed clock ends within the analysis' skew threshold, or too near
    it to say (the skew added to the source's own small offset: fuzzing 17d, a 110 ms skew
    was an 80 ms offset, no finding)."""
    from tracekit.analyzers import default_pipeline  # (polars: only for a skew fault)

    limit = default_pipeline().clock_skew.total_seconds() * 1000
    if abs(offset_ms) < limit + _SKEW_MARGIN_MS:
        raise ValueError(
            f"a skewed clock {offset_ms:.1f} ms off is within (or too near) the {limit:g} ms "
            "the analysis reports: use a longer skew"
        )


def _inject(
    fault: Fault,
    plans: list[_Msg],
    names: list[str],
    offsets: dict[str, float],
    rng: random.Random,
    truth: list[Expected],
    fetches: list[tuple[str, str, float, float]],
    t_last: float,
    tablets: set[str],
) -> None:
    kind = fault.kind
    # A delivery outside a broadcast's list is unexpected; with no list, the delivery makes the
    # recipient one of the members the analyzer expects, so that fault needs a named broadcast.
    named_only = kind == "unexpected"
    pool = [
        i for i in _eligible(plans, t_last, tablets, unnamed=not named_only) if not plans[i].faulted
    ]
    if not pool:
        raise ValueError("more faults than messages to put them on: generate more messages")
    involved: set[str | None] = set()
    if kind in ("seq_gap", "log_loss"):
        involved = {e.recipient for e in truth} | {
            e.source.removeprefix("client-") for e in truth if e.source
        }
        involved |= {p.sender for p in plans if p.faulted}
        pool = [
            i
            for i in pool
            if any(
                r != plans[i].sender and r not in tablets and r not in involved
                for r in plans[i].recipients
            )
        ]
        if not pool:
            raise ValueError("no client free of other faults for a log fault: use more users")
    m = plans[rng.choice(pool)]
    m.faulted = True
    others = sorted(
        r for r in m.recipients if r != m.sender and r not in tablets and r not in involved
    )
    r = rng.choice(others)
    if kind == "drop":
        hop = fault.hop or rng.choice(_MSG_HOPS[1:] + _RCP_HOPS)
        if hop in _MSG_HOPS:
            m.lost.add(("", hop))
            truth.append(Expected("drop", m.trace, None, hop, _PRED[hop]))
        else:
            m.lost.add((r, hop))
            truth.append(Expected("drop", m.trace, r, hop, _PRED[hop]))
    elif kind == "duplicate":
        hop = fault.hop or rng.choice(("WS-BROADCAST.start", *_RCP_HOPS))
        who = "" if hop in _MSG_HOPS else r
        m.dup.add((who, hop))
        truth.append(Expected("duplicate", m.trace, who or None, hop, None))
    elif kind == "msg_id":
        m.extra_msg_id = True
        truth.append(Expected("duplicate", m.trace, None, "REST.persist", None))
    elif kind == "reorder":
        # A message and the next one of its conversation to the same recipient: the store
        # applies the later one first. The earlier one's stages run on past the later one's
        # (stamps unchanged, only when the lines are written): no line is written before it
        # is stamped.
        order = list(pool)
        rng.shuffle(order)
        for i in order:
            m = plans[i]
            for r in sorted(x for x in m.recipients if x != m.sender and x not in tablets):
                # the very next message this recipient stores in that conversation
                nxt = next((n for n in plans[i + 1 :] if n.conv == m.conv and r in n.r), None)
                if nxt is not None and nxt.reconnect != r and not nxt.faulted:
                    break
            else:
                continue
            break
        else:
            raise ValueError("no two messages to reorder: generate more messages")
        m.faulted = nxt.faulted = True
        a, b = m.r[r], nxt.r[r]
        a["_emit_ctrl"] = b["CTRL.add"] + 0.6
        truth.append(Expected("reorder", m.trace, r, "CTRL.add", None))
    elif kind in ("delay", "slow"):
        hop = fault.hop or rng.choice(_RCP_HOPS[1:])
        extra = fault.delay_ms or (250.0 if kind == "delay" else 600.0)
        breach = _check_delay(kind, hop, extra, m, r, plans)
        seen = False
        for h in _RCP_HOPS:
            seen = seen or h == hop
            if seen:
                m.r[r][h] += extra
        truth.append(Expected("latency_outlier", m.trace, r, hop, _PRED[hop]))
        if breach:
            truth.append(Expected("slo_breach", m.trace, r, "CTRL.add", "CTRL.send"))
    elif kind in ("seq_gap", "log_loss"):
        src = _client(r)
        m.lost.add((r, "_log_loss" if kind == "log_loss" else "_seq_gap"))
        truth.append(Expected("log_gap", None, None, None, None, source=src))
    elif kind in ("race", "race_drop", "race_overwrite"):
        recv = m.r[r]["WS-RECV.receive"]
        fetches.append((r, m.conv, recv - rng.uniform(5.0, 20.0), m.r[r]["CTRL.add"] + 30.0))
        if kind == "race_drop":
            m.lost.add((r, "CTRL.add"))
            truth.append(Expected("race", m.trace, r, "WS-RECV.receive", "REPO.add"))
            truth.append(Expected("drop", m.trace, r, "CTRL.add", "REPO.add"))
        elif kind == "race_overwrite":
            # shown, then the page (read before it was persisted) replaced the store
            m.r[r]["_removed"] = m.r[r]["CTRL.add"] + rng.uniform(5.0, 25.0)
            truth.append(Expected("race", m.trace, r, "WS-RECV.receive", "CTRL.add"))
            truth.append(Expected("drop", m.trace, r, "CTRL.add", "CTRL.add"))
        else:
            truth.append(Expected("race", m.trace, r, "WS-RECV.receive", "CTRL.add"))
    elif kind == "unexpected":
        outsider = sorted(u for u in names if u not in m.r)
        if not outsider:
            raise ValueError("every user is in the conversation: use more users")
        u = rng.choice(outsider)
        d = max(v["WS-BROADCAST.deliver"] for v in m.r.values()) + 0.1
        recv = d + rng.uniform(2.0, 10.0)
        m.r[u] = {
            "WS-BROADCAST.deliver": d,
            "WS-RECV.receive": recv,
            "REPO.add": recv + 0.5,
            "CTRL.add": recv + 1.0,
            "_unnamed": 1.0,
        }
        truth.append(Expected("unexpected", m.trace, u, "WS-BROADCAST.deliver", None))
    elif kind == "no_actor":
        # ("_" lost entries remove the recipient's latency samples, :func:`_check_delay`)
        m.lost.add((r, "_no_actor"))
        truth.append(Expected("unexpected", m.trace, None, "WS-RECV.receive", None))
    elif kind == "orphan":
        m.lost.add(("", "_no_send"))
        truth.append(Expected("unexpected", m.trace, None, "REST.request", None))
    elif kind == "skew":
        skewed = {e.source for e in truth if e.kind == "clock_skew"}
        senders = sorted({_client(plans[i].sender) for i in pool} - skewed)
        if not senders:
            raise ValueError("every sender's clock is skewed already: use more users")
        src = _client(m.sender) if _client(m.sender) in senders else rng.choice(senders)
        offsets[src] = offsets[src] + (fault.delay_ms or 2000.0)
        _check_skew(offsets[src])
        truth.append(Expected("clock_skew", None, None, None, None, source=src))
    else:  # pragma: no cover - Literal exhausts it
        raise ValueError(f"unknown fault {kind!r}")


def _restart(
    out: _Out,
    plans: list[_Msg],
    fetches: list[tuple[str, str, float, float]],
    truth: list[Expected],
    rng: random.Random,
    *,
    t_last: float,
    tablets: set[str],
    restarted: dict[str, int],
    killed: set[int],
    lose: bool,
) -> None:
    """A client's process starts again (``TRACEKIT.configured``, its ``seq`` from 1 in
    :func:`_sequence`) at a quiet time: between two messages, with no message or history load
    in flight anywhere, so nothing is lost and nothing more may be found (another fault's
    message is wholly in one run). On a client that logged messages before and after it, not
    one whose log lost events (a log fault: its seqs jump from a message on), nor a second
    device; ``restarted``: its source -> the time (ns) its new run begins, at most 500 ms
    into the quiet time (a drop's detail names a restart within 5 s of it).

    With ``lose``, the process was killed with the message that ends just before the quiet
    time written to its socket: its rows of that message (``killed``) are never written, a
    drop at its receive."""
    involved = {e.source for e in truth if e.kind == "log_gap"}
    # Busy times (true ms): each trace from its first event's start to its last write, and
    # each history load (no trace).
    busy: dict[str, tuple[float, float]] = {}
    seen: dict[str, list[float]] = {}  # client -> the true times of its message events
    rows: dict[tuple[str, str], list[int]] = {}  # (source, trace) -> its rows
    for i, trace in enumerate(out.cols["trace_id"]):
        if trace is None:
            continue
        src = out.cols["source"][i]
        start = (out.ts[i] - T0_NS - out.offsets.get(src, 0)) / _MS
        end = out.emit[i] / _MS
        lo, hi = busy.get(trace, (start, end))
        busy[trace] = (min(lo, start, end), max(hi, start, end))
        seen.setdefault(src, []).append(start)
        rows.setdefault((src, trace), []).append(i)
    spans = sorted(
        [*((lo, hi, t) for t, (lo, hi) in busy.items()), *((s, e, "") for _, _, s, e in fetches)]
    )
    # quiet times (a, b) and the trace whose span ends at a ("": a history load's)
    quiet: list[tuple[float, float, str]] = []
    reach, last = -1e18, ""
    for lo, hi, trace in spans:
        if lo - reach >= 50.0 and _ROOM[0] < reach and lo < t_last - _ROOM[1]:
            quiet.append((reach, lo, last))
        if hi > reach:
            reach, last = hi, trace
    plan = {m.trace: m for m in plans}

    def victim(trace: str, src: str) -> _Msg | None:
        """The message lost where ``src`` restarts after ``trace`` (with ``lose``)."""
        m = plan.get(trace)
        user = src.removeprefix("client-")
        if m is None or m.faulted or user not in m.r or user == m.sender:
            return None
        if m.reconnect == user or (src, m.trace) not in rows:
            return None
        return m if _ROOM[0] < m.t["CTRL.send"] < t_last - _ROOM[1] else None

    candidates = [
        (a, b, src, victim(trace, src) if lose else None)
        for a, b, trace in quiet
        for src in sorted(seen)
        if src.startswith("client-")
        and src not in involved
        and src.removeprefix("client-") not in tablets
        and src not in restarted
        and not src.endswith("-b")  # (a second device)
        and min(seen[src]) < a
        and max(seen[src]) > b
    ]
    if lose:
        candidates = [c for c in candidates if c[3] is not None]
    if not candidates:
        raise ValueError("no quiet time for a restart: generate more messages")
    a, b, src, lost = rng.choice(candidates)
    user = src.removeprefix("client-")
    if lost is not None:
        lost.faulted = True
        killed.update(rows[(src, lost.trace)])
        truth.append(Expected("drop", lost.trace, user, "WS-RECV.receive", "WS-BROADCAST.deliver"))
    at = a + min((b - a) / 2, 500.0)
    out.add("TRACEKIT.configured", src, user, at, at)
    restarted[src] = int(at * _MS)


def _receive_lines(plans: list[_Msg]) -> dict[tuple[str, str], list[tuple[float, float]]]:
    """``(conversation, user)`` -> when each receive line of a message to that user is stamped
    and written (:func:`_emit`'s times; not a reconnecting recipient's: its client loads the
    message instead)."""
    lines: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for m in plans:
        for r, hops in m.r.items():
            if r != m.reconnect:
                written = hops.get("_emit_ctrl", hops["CTRL.add"] + 0.05) + 0.2
                lines.setdefault((m.conv, r), []).append((hops["WS-RECV.receive"], written))
    return lines


def _over_a_receive(
    receives: dict[tuple[str, str], list[tuple[float, float]]],
    conv: str,
    user: str,
    start: float,
    end: float,
) -> bool:
    """Whether a history load of ``conv`` by ``user`` from ``start`` to ``end`` would hold a
    receive line of it (stamped before its end, written after its start)."""
    return any(a <= end and b >= start for a, b in receives.get((conv, user), ()))


def _emit(
    m: _Msg,
    out: _Out,
    rng: random.Random,
    fetches: list[tuple[str, str, float, float]],
    tablets: set[str],
    receives: dict[tuple[str, str], list[tuple[float, float]]],
) -> None:
    t, s = m.t, m.sender
    cs = _client(s)
    gone = {h for who, h in m.lost if who == ""}
    while True:  # a lost hop takes everything after it on its branch
        more = {x for x, p in _PRED.items() if p in gone} - gone
        if not more:
            break
        gone |= more
    resp = t["REST.response"]
    if "_no_send" not in gone and "CTRL.send" not in gone:
        out.add("CTRL.send", cs, s, t["CTRL.send"], resp + 0.1, trace=m.trace, conv=m.conv)
    if "REST.request" not in gone:
        if m.retry:  # the first attempt timed out; the retry got through
            out.add(
                "REST.request",
                cs,
                s,
                t["CTRL.send"] + 0.1,
                t["REST.request"],
                trace=m.trace,
                conv=m.conv,
            )
        out.add("REST.request", cs, s, t["REST.request"], resp, trace=m.trace, conv=m.conv)
    if "REST.persist" not in gone:
        p = t["REST.persist"]
        out.add(
            "REST.persist",
            SERVER,
            s,
            p,
            p + 0.3,
            trace=m.trace,
            conv=m.conv,
            msg_id=f"m-{m.trace[:12]}",
        )
        if m.extra_msg_id:
            out.add(
                "REST.persist",
                SERVER,
                s,
                p + 0.4,
                p + 0.6,
                trace=m.trace,
                conv=m.conv,
                msg_id=f"m-{m.trace[12:24]}",
            )
    if "REST.response" not in gone:
        out.add("REST.response", cs, s, resp, resp, trace=m.trace, conv=m.conv)
    if "WS-BROADCAST.start" in gone:
        return
    st = t["WS-BROADCAST.start"]
    last = max((v["WS-BROADCAST.deliver"] for v in m.r.values()), default=st)
    n_start = 2 if ("", "WS-BROADCAST.start") in m.dup else 1
    for k in range(n_start):
        out.add(
            "WS-BROADCAST.start",
            SERVER,
            "server",
            st + k * 0.2,
            last + 0.1 + k * 0.2,
            trace=m.trace,
            conv=m.conv,
            recipients=list(m.recipients) if m.named else None,
        )
    for r, times in m.r.items():
        lost = {h for who, h in m.lost if who == r}
        for h in list(lost):
            if h in _PRED:
                lost |= {x for x in _RCP_HOPS if _RCP_HOPS.index(x) > _RCP_HOPS.index(h)}
        cr = _client(r)

        if r == m.reconnect:
            # The socket write went to a dead connection; after reconnecting the client loads the
            # history, which brings the message into its store.
            d = times["WS-BROADCAST.deliver"]
            _deliver(out, m, r, d)
            fs = d + rng.uniform(50.0, 100.0)
            fe = fs + rng.uniform(10.0, 50.0)
            if _over_a_receive(receives, m.conv, r, fs, fe):
                # (a fault moved another message's receive this late: a race no truth holds)
                raise ValueError(
                    "a fault's delay moves a receive into a reconnecting client's history "
                    "load: use a longer gap_ms or a shorter delay"
                )
            fetches.append((r, m.conv, fs, fe))
            out.add("REPO.add", cr, r, fe + 1.0, fe + 1.6, trace=m.trace, conv=m.conv)
            out.add("CTRL.add", cr, r, fe + 1.2, fe + 1.4, trace=m.trace, conv=m.conv)
            continue
        ctrl = times["CTRL.add"]
        emit_ctrl = times.get("_emit_ctrl", ctrl + 0.05)
        rows = (
            (
                "WS-BROADCAST.deliver",
                SERVER,
                "server",
                times["WS-BROADCAST.deliver"],
                times["WS-BROADCAST.deliver"] + 0.02,
            ),
            ("WS-RECV.receive", cr, r, times["WS-RECV.receive"], emit_ctrl + 0.2),
            ("REPO.add", cr, r, times["REPO.add"], emit_ctrl + 0.1),
            ("CTRL.add", cr, r, ctrl, emit_ctrl),
        )
        for hop, src, actor, start, end in rows:
            if hop in lost:
                continue
            n = 2 if (r, hop) in m.dup else 1
            for k in range(n):
                out.add(
                    hop,
                    src,
                    None if "_no_actor" in lost and src != SERVER else actor,
                    start + k * 0.3,
                    end + k * 0.3,
                    trace=m.trace,
                    conv=m.conv,
                    peer=r if src == SERVER else None,
                )
        if "_removed" in times:  # a history page took it off the store again
            gone_at = times["_removed"]
            out.add("CTRL.remove", cr, r, gone_at, gone_at, trace=m.trace, conv=m.conv)
        if r in tablets:  # the second device: its own socket write, its own log
            _deliver(out, m, r, times["WS-BROADCAST.deliver"] + 0.05)
            for hop, _, _, start, end in rows[1:]:
                out.add(hop, _tablet(r), r, start + 0.7, end + 0.7, trace=m.trace, conv=m.conv)


def _deliver(out: _Out, m: _Msg, r: str, at: float) -> None:
    """A socket write of the server to recipient ``r``."""
    out.add(
        "WS-BROADCAST.deliver", SERVER, "server", at, at + 0.02, trace=m.trace, conv=m.conv, peer=r
    )


def _duration_ms(out: _Out, i: int) -> float | None:
    """How long event ``i``'s stage took, as tracekit writes it (ms, to the microsecond); None
    for an event written when it happened."""
    start = out.ts[i] - T0_NS - out.offsets.get(out.cols["source"][i], 0)
    took = out.emit[i] - start
    assert took >= 0, f"event {i} is written before it is stamped"
    return (took + 500) // 1000 / 1000 if took > 0 else None


def _sequence(
    out: _Out,
    plans: list[_Msg],
    restarted: dict[str, int],
    killed: set[int],
) -> tuple[dict[str, Any], list[str]]:
    """Give each source its ``seq`` in emission order (from 1 again where ``restarted``;
    ``killed`` rows are never written), then apply the logging faults. Also the sources of
    the seq jumps a lost message makes beyond the one its fault's truth holds: its lines
    are not always adjacent (a line of the user's own send written between them, fuzzing
    16d), and each jump is a ``log_gap``."""
    n = len(out.ts)
    order = sorted(range(n), key=lambda i: (out.emit[i], i))
    seq = [0] * n
    counter: dict[str, int] = {}
    src = out.cols["source"]
    pending = dict(restarted)
    for i in order:
        if i in killed:  # (no seq: never written)
            continue
        s = src[i]
        if s in pending and out.emit[i] >= pending[s]:
            counter[s] = 1  # the new run's first event
            del pending[s]
        seq[i] = counter.get(s, 1)  # (from 1, as tracekit counts)
        counter[s] = seq[i] + 1
    drop_rows: set[int] = set(killed)
    bumps: list[tuple[str, int]] = []
    more_gaps: list[str] = []
    for m in plans:
        for who, what in m.lost:
            if what not in ("_log_loss", "_seq_gap"):
                continue
            s = _client(who)
            trace_rows = [i for i in range(n) if src[i] == s and out.cols["trace_id"][i] == m.trace]
            if what == "_log_loss":
                drop_rows.update(trace_rows)  # the logging lost this message's client events
                lost = sorted(seq[i] for i in trace_rows if i not in killed)
                more_gaps += [s for a, b in itertools.pairwise(lost) if b != a + 1]
            else:
                bumps.append((s, min(seq[i] for i in trace_rows)))
    for s, from_seq in bumps:  # the logging lost 3 events that were not message hops
        for i in range(n):
            if src[i] == s and seq[i] >= from_seq:
                seq[i] += 3
    keep = [i for i in order if i not in drop_rows]
    cols: dict[str, Any] = {k: [v[i] for i in keep] for k, v in out.cols.items()}
    cols["ts"] = [out.ts[i] for i in keep]
    cols["seq"] = [seq[i] for i in keep]
    cols["duration_ms"] = [_duration_ms(out, i) for i in keep]
    return cols, more_gaps
