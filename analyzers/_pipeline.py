"""The pipeline model: which hops a message passes, in what order, and who logs them.

The default chat pipeline (DESIGN.md section 4) ships as ``default_pipeline.toml``; users load
their own with :func:`load_pipeline`. Every invalid model raises :class:`PipelineError` naming the
offending key, so a typo in a TOML file never turns into silently wrong findings.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from importlib import resources
from pathlib import Path
from typing import Any, Final, Literal

from tracekit.errors import PipelineError
from tracekit.schema import META_STAGE

__all__ = [
    "Hop",
    "Pipeline",
    "checked_window",
    "default_pipeline",
    "load_pipeline",
    "parse_pipeline",
]

Scope = Literal["message", "recipient"]
Emitter = Literal["sender", "server", "recipient"]

END_TO_END: Final = "end_to_end"
_ROLES: Final = (
    "send",
    "persist",
    "broadcast",
    "deliver",
    "receive",
    "final",
    "order",
    "fetch_start",
    "fetch_end",
    "remove",
)
#: Roles that name an event, not a hop: history fetches, and the removal that undoes ``final``.
_EVENT_ROLES: Final = ("fetch_start", "fetch_end", "remove")
_REQUIRED_ROLES: Final = ("send",)


@dataclass(frozen=True)
class Hop:
    """One hop of the pipeline, ``id`` = ``"STAGE.action"``."""

    id: str
    stage: str
    action: str
    scope: Scope
    after: tuple[str, ...]
    emitter: Emitter
    recipient: Literal["peer", "actor"] | None = None
    repeatable: bool = False


@dataclass(frozen=True)
class Pipeline:
    """A validated pipeline model (a DAG of hops plus the roles the analyzers rely on)."""

    name: str
    hops: tuple[Hop, ...]
    roles: Mapping[str, str]
    slo: Mapping[str, timedelta] = field(default_factory=dict)
    grace: timedelta = timedelta(seconds=5)
    clock_skew: timedelta = timedelta(milliseconds=100)
    #: How long a hop may take: how far after a path's last hop its missing one is looked
    #: for in a log gap, how near a log's start or end an event still counts as in it. Apart
    #: from ``grace``, the wait at the end of the logs: ``--grace 0s`` (they are final) says
    #: nothing of how long a hop takes. The longer of the two is used.
    hop_window: timedelta = timedelta(seconds=5)
    outlier_min_samples: int = 20
    outlier_z: float = 5.0
    outlier_floor: timedelta = timedelta(milliseconds=20)

    @property
    def ids(self) -> tuple[str, ...]:
        return tuple(h.id for h in self.hops)

    def hop(self, hop_id: str) -> Hop:
        for h in self.hops:
            if h.id == hop_id:
                return h
        raise KeyError(hop_id)

    def index(self, hop_id: str) -> int:
        return self.ids.index(hop_id)

    def role(self, name: str) -> str | None:
        return self.roles.get(name)

    @property
    def edges(self) -> tuple[tuple[str, str], ...]:
        """``(from, to)`` pairs in hop order: where latencies are measured."""
        return tuple((p, h.id) for h in self.hops for p in h.after)

    def __post_init__(self) -> None:
        # Built in Python, a model gets the checks a TOML file gets (review 21a: Pipeline(...)
        # with no send role failed deep in the analysis with a KeyError); its hops are put in
        # their 'after' order, as a file's are.
        order = _checked(_as_model(self))["hops"]
        by_id = {h.id: h for h in self.hops}
        object.__setattr__(self, "hops", tuple(by_id[h.id] for h in order))

    def descendants(self, hop_id: str) -> frozenset[str]:
        out: set[str] = set()
        todo = [hop_id]
        while todo:
            cur = todo.pop()
            for h in self.hops:
                if cur in h.after and h.id not in out:
                    out.add(h.id)
                    todo.append(h.id)
        return frozenset(out)


def _err(where: str, problem: str) -> PipelineError:
    return PipelineError(f"invalid pipeline model: {where}: {problem}")


#: The longest duration a model may give (a year): every duration becomes int64 nanoseconds.
_MAX_MS: Final = 365 * 24 * 3600 * 1000


def _ms(value: object, where: str) -> timedelta:
    # `not 0 <= value <= _MAX_MS` also refuses nan, which every comparison fails
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= _MAX_MS:
        raise _err(
            where, f"must be a number of milliseconds from 0 to {_MAX_MS} (a year), got {value!r}"
        )
    return timedelta(milliseconds=float(value))


def checked_window(value: object, what: str) -> timedelta:
    """A caller's window (``grace``, an SLO): a timedelta from 0 to a year, as a model's
    milliseconds are; TypeError for another type (an int of seconds read as what?),
    :class:`PipelineError` for a negative one (every path decided, every message a breach)."""
    if not isinstance(value, timedelta):
        raise TypeError(f"{what}: a datetime.timedelta, got {type(value).__name__}")
    if not timedelta(0) <= value <= timedelta(milliseconds=_MAX_MS):
        raise PipelineError(f"{what} must be from 0 to a year, got {value}")
    return value


def _check_keys(table: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(table) - allowed)
    if unknown:
        raise _err(where, f"unknown key(s) {', '.join(map(repr, unknown))}")


def _parse_hop(raw: object, n: int) -> Hop:
    where = f"hops[{n}]"
    if not isinstance(raw, dict):
        raise _err(where, "must be a table")
    _check_keys(raw, {"id", "after", "scope", "emitter", "recipient", "repeatable"}, where)
    hop_id = raw.get("id")
    if not isinstance(hop_id, str) or "." not in hop_id:
        raise _err(where, f"'id' must be 'STAGE.action', got {hop_id!r}")
    stage, action = hop_id.split(".", 1)
    # an id with blanks could never match an event's stage and action
    if not stage or not action or any(c.isspace() for c in hop_id):
        raise _err(where, f"'id' must be 'STAGE.action', got {hop_id!r}")
    if stage == META_STAGE:
        raise _err(where, f"stage {META_STAGE!r} is tracekit's own bookkeeping, not a hop")
    where = f"hop {hop_id!r}"
    after = raw.get("after", [])
    if not isinstance(after, list) or not all(isinstance(a, str) for a in after):
        raise _err(where, f"'after' must be a list of hop ids, got {after!r}")
    twice = sorted({a for a in after if after.count(a) > 1})
    if twice:  # (an edge named twice was measured twice: each latency finding said twice)
        raise _err(where, f"'after' names {', '.join(map(repr, twice))} more than once")
    scope = raw.get("scope", "message")
    if scope not in ("message", "recipient"):
        raise _err(where, f"'scope' must be 'message' or 'recipient', got {scope!r}")
    emitter = raw.get("emitter", "recipient" if scope == "recipient" else "sender")
    if emitter not in ("sender", "server", "recipient"):
        raise _err(where, f"'emitter' must be 'sender', 'server' or 'recipient', got {emitter!r}")
    recipient = raw.get("recipient")
    if scope == "recipient":
        if recipient not in ("peer", "actor"):
            raise _err(
                where, f"a recipient hop needs 'recipient' = 'peer' or 'actor', got {recipient!r}"
            )
    elif recipient is not None:
        raise _err(where, "'recipient' is only meaningful with scope = 'recipient'")
    repeatable = raw.get("repeatable", False)
    if not isinstance(repeatable, bool):
        raise _err(where, f"'repeatable' must be true or false, got {repeatable!r}")
    return Hop(
        id=hop_id,
        stage=stage,
        action=action,
        scope=scope,
        after=tuple(after),
        emitter=emitter,
        recipient=recipient,
        repeatable=repeatable,
    )


def _topological(hops: list[Hop]) -> list[Hop]:
    by_id = {h.id: h for h in hops}
    done: dict[str, Hop] = {}
    visiting: set[str] = set()

    def visit(h: Hop) -> None:
        if h.id in done:
            return
        if h.id in visiting:
            raise _err(f"hop {h.id!r}", "the 'after' edges form a cycle")
        visiting.add(h.id)
        for p in h.after:
            visit(by_id[p])
        visiting.discard(h.id)
        done[h.id] = h

    for h in hops:
        visit(h)
    return list(done.values())


def parse_pipeline(data: Mapping[str, Any]) -> Pipeline:
    """Validate a pipeline model given as the parsed TOML mapping."""
    return Pipeline(**_checked(data))


def _checked(data: Mapping[str, Any]) -> dict[str, Any]:
    """A model's fields, every check made (a TOML file's, or a Pipeline built in Python)."""
    _check_keys(data, {"pipeline", "roles", "hops", "slo", "outliers"}, "top level")
    meta = data.get("pipeline", {})
    if not isinstance(meta, dict):
        raise _err("[pipeline]", "must be a table")
    _check_keys(meta, {"name", "grace_ms", "hop_window_ms", "clock_skew_ms"}, "[pipeline]")
    name = meta.get("name", "custom")
    if not isinstance(name, str):
        raise _err("[pipeline] name", f"must be a string, got {name!r}")
    raw_hops = data.get("hops")
    if isinstance(raw_hops, dict):
        raise _err("[[hops]]", "must be an array of tables: write [[hops]], not [hops]")
    if not isinstance(raw_hops, list) or not raw_hops:
        raise _err("[[hops]]", "at least one hop is required")
    hops = [_parse_hop(raw, n) for n, raw in enumerate(raw_hops)]
    ids = [h.id for h in hops]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise _err("[[hops]]", f"duplicate hop id(s) {', '.join(map(repr, dupes))}")
    by_id = {h.id: h for h in hops}
    for h in hops:
        for p in h.after:
            if p not in by_id:
                raise _err(f"hop {h.id!r}", f"'after' names unknown hop {p!r}")
            if h.scope == "message" and by_id[p].scope == "recipient":
                raise _err(f"hop {h.id!r}", f"a message hop cannot come after recipient hop {p!r}")
    hops = _topological(hops)

    roles_raw = data.get("roles", {})
    if not isinstance(roles_raw, dict):
        raise _err("[roles]", "must be a table")
    _check_keys(roles_raw, set(_ROLES), "[roles]")
    roles: dict[str, str] = {}
    for role, value in roles_raw.items():
        stage, _, action = value.partition(".") if isinstance(value, str) else ("", "", "")
        if not stage or not action or any(c.isspace() for c in value):
            raise _err(f"[roles] {role}", f"must be 'STAGE.action', got {value!r}")
        if role not in _EVENT_ROLES and value not in by_id:
            raise _err(f"[roles] {role}", f"names unknown hop {value!r}")
        if role == "remove" and value in by_id:
            raise _err("[roles] remove", f"{value!r} is a hop; a removal undoes one")
        roles[role] = value
    for role in _REQUIRED_ROLES:
        if role not in roles:
            raise _err("[roles]", f"missing required role {role!r}")
    if by_id[roles["send"]].after:
        raise _err("[roles] send", f"{roles['send']!r} must be a first hop (no 'after')")
    # Paths start at the send: a second hop without 'after' would never be expected, so its
    # absence would never be a drop.
    for h in hops:
        if not h.after and h.id != roles["send"]:
            raise _err(
                f"hop {h.id!r}",
                f"needs 'after': only the send ({roles['send']!r}) starts a path, and a hop "
                "that no path reaches is never checked",
            )
    for role in ("persist", "broadcast"):
        if role in roles and by_id[roles[role]].scope != "message":
            raise _err(f"[roles] {role}", f"{roles[role]!r} must be a message hop")
    for role in ("deliver", "receive", "final", "order"):
        if role in roles and by_id[roles[role]].scope != "recipient":
            raise _err(f"[roles] {role}", f"{roles[role]!r} must be a recipient hop")
    if ("fetch_start" in roles) != ("fetch_end" in roles):
        raise _err("[roles]", "'fetch_start' and 'fetch_end' go together")
    for role in ("fetch_start", "fetch_end"):
        if role in roles and roles[role] in by_id:  # (a hop's event is on a message's path)
            raise _err(f"[roles] {role}", f"{roles[role]!r} is a hop; a history load is none")
    said = [r for r in _EVENT_ROLES if r in roles]
    for i, a in enumerate(said):  # one event cannot open and close a load, or remove
        for b in said[i + 1 :]:
            if roles[a] == roles[b]:
                raise _err("[roles]", f"{a!r} and {b!r} name one event, {roles[a]!r}")
    if "remove" in roles and "final" not in roles:
        raise _err("[roles] remove", "needs a 'final' role (the hop it undoes)")

    slo_raw = data.get("slo", {})
    if not isinstance(slo_raw, dict):
        raise _err("[slo]", "must be a table")
    edges = {f"{p}->{h.id}" for h in hops for p in h.after}
    slo: dict[str, timedelta] = {}
    for key, value in slo_raw.items():
        if key == f"{END_TO_END}_ms":
            if "final" not in roles:
                raise _err("[slo] end_to_end_ms", "needs a 'final' role")
            slo[END_TO_END] = _ms(value, f"[slo] {key}")
        elif key in edges:
            slo[key] = _ms(value, f"[slo] {key!r}")
        else:
            raise _err(
                "[slo]",
                f"unknown key {key!r} (use 'end_to_end_ms' or an edge 'FROM->TO' of: "
                f"{', '.join(sorted(edges))})",
            )
    out_raw = data.get("outliers", {})
    if not isinstance(out_raw, dict):
        raise _err("[outliers]", "must be a table")
    _check_keys(out_raw, {"min_samples", "z", "floor_ms"}, "[outliers]")
    min_samples = out_raw.get("min_samples", 20)
    if isinstance(min_samples, bool) or not isinstance(min_samples, int) or min_samples < 3:
        raise _err("[outliers] min_samples", f"must be an integer >= 3, got {min_samples!r}")
    z = out_raw.get("z", 5.0)
    if isinstance(z, bool) or not isinstance(z, int | float) or not 0 < z < math.inf:
        raise _err("[outliers] z", f"must be a positive finite number, got {z!r}")
    floor = _ms(out_raw.get("floor_ms", 20), "[outliers] floor_ms")
    if floor < timedelta(milliseconds=1):
        # latencies are compared as log(latency + floor) of at least log(1 ms): under a 1 ms
        # floor, sub-millisecond hops all read alike, the spread is 0 and every sample above
        # the median counts (review 24b: 140 outliers in a clean history at floor_ms = 0)
        raise _err(
            "[outliers] floor_ms",
            f"must be at least 1 (ms): below it every sub-millisecond hop above its median "
            f"would be an outlier, got {out_raw.get('floor_ms')!r}",
        )
    return {
        "name": name,
        "hops": tuple(hops),
        "roles": roles,
        "slo": slo,
        "grace": _ms(meta.get("grace_ms", 5000), "[pipeline] grace_ms"),
        "hop_window": _ms(meta.get("hop_window_ms", 5000), "[pipeline] hop_window_ms"),
        "clock_skew": _ms(meta.get("clock_skew_ms", 100), "[pipeline] clock_skew_ms"),
        "outlier_min_samples": min_samples,
        "outlier_z": float(z),
        "outlier_floor": floor,
    }


def _as_model(p: Pipeline) -> dict[str, Any]:
    """A Pipeline built in Python as the mapping a TOML file gives, for the same checks."""

    def ms(value: object, where: str) -> float:  # (said in Python's terms, not the file's)
        return checked_window(value, where) / timedelta(milliseconds=1)

    hops: list[object] = []
    for h in p.hops if isinstance(p.hops, tuple | list) else ():
        if not isinstance(h, Hop):
            raise _err("hops", f"must be Hop objects, got {type(h).__name__}")
        if f"{h.stage}.{h.action}" != h.id:
            raise _err(
                f"hop {h.id!r}", f"stage {h.stage!r} and action {h.action!r} differ from its id"
            )
        raw = {"id": h.id, "after": list(h.after), "scope": h.scope, "emitter": h.emitter}
        hops.append(
            raw
            | {"repeatable": h.repeatable}
            | ({"recipient": h.recipient} if h.recipient is not None else {})
        )
    if not isinstance(p.roles, Mapping):
        raise _err("roles", f"must be a mapping of role to hop id, got {type(p.roles).__name__}")
    if not isinstance(p.slo, Mapping):
        raise _err("slo", f"must be a mapping to datetime.timedelta, got {type(p.slo).__name__}")
    # (said in Python's keys: a file's 'end_to_end_ms' passed here and was never read, 21c)
    for key in p.slo:
        if key != END_TO_END and "->" not in str(key):
            raise _err(f"slo[{key!r}]", f"unknown key (use {END_TO_END!r} or an edge 'FROM->TO')")
    if END_TO_END in p.slo and "final" not in p.roles:
        raise _err(f"slo[{END_TO_END!r}]", "needs a 'final' role (the hop a delivery ends at)")
    slo = {
        (f"{END_TO_END}_ms" if key == END_TO_END else key): ms(value, f"slo[{key!r}]")
        for key, value in p.slo.items()
    }
    return {
        "pipeline": {
            "name": p.name,
            "grace_ms": ms(p.grace, "grace"),
            "hop_window_ms": ms(p.hop_window, "hop_window"),
            "clock_skew_ms": ms(p.clock_skew, "clock_skew"),
        },
        "hops": hops,
        "roles": dict(p.roles),
        "slo": slo,
        "outliers": {
            "min_samples": p.outlier_min_samples,
            "z": p.outlier_z,
            "floor_ms": ms(p.outlier_floor, "outlier_floor"),
        },
    }


def load_pipeline(path: str | Path) -> Pipeline:
    """Load and validate a pipeline model from a TOML file."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PipelineError(f"cannot read pipeline model {str(p)!r}: {exc.strerror}") from exc
    except UnicodeDecodeError as exc:
        raise PipelineError(f"pipeline model {str(p)!r} is not UTF-8") from exc
    except tomllib.TOMLDecodeError as exc:
        raise PipelineError(f"pipeline model {str(p)!r} is not valid TOML: {exc}") from exc
    try:
        return parse_pipeline(data)
    except PipelineError as exc:
        raise PipelineError(f"{p}: {exc}") from None


@cache
def default_pipeline() -> Pipeline:
    """The built-in chat pipeline of DESIGN.md section 4."""
    text = resources.files("tracekit.analyzers").joinpath("default_pipeline.toml").read_text()
    return parse_pipeline(tomllib.loads(text))
