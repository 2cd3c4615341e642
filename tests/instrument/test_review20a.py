"""Review 20a: a stage object entered again while active, capture() inside an activated
Instrumentation, configure() inside a capture block, and message()'s context built cheaply."""

from __future__ import annotations

import copy
import dataclasses
import json
import os
import pickle
from pathlib import Path
from typing import Any

import pytest

import tracekit
from tracekit import _context

TID = "4bf92f3577b34da6a3ce929d0e0e4736"
TID2 = "0af7651916cd43dd8448eb211c80319c"


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def open_fds() -> set[str]:
    return set(os.listdir("/proc/self/fd")) if os.path.isdir("/proc/self/fd") else set()


# -- 4. message(): its context built without the dataclass's checks, same behaviour --------


def test_message_contexts_keep_the_dataclass_behaviour() -> None:
    with tracekit.message(TID, conv_id="c1", msg_id="m1", actor="u1", kind="text") as ctx:
        with tracekit.message(msg_id="m2") as refined:
            pass
    made = tracekit.MessageContext(TID, "c1", "m1", "u1", None, {"kind": "text"})
    assert type(ctx) is tracekit.MessageContext and ctx == made and ctx != refined
    assert repr(ctx) == repr(made)
    assert dataclasses.is_dataclass(ctx) and dataclasses.asdict(ctx) == dataclasses.asdict(made)
    assert dataclasses.replace(ctx, msg_id="m2") == refined
    with pytest.raises(dataclasses.FrozenInstanceError):
        ctx.msg_id = "x"  # type: ignore[misc]
    with pytest.raises(TypeError):
        hash(ctx)  # (a dict field: as the dataclass was)
    assert not hasattr(ctx, "__dict__")
    assert copy.copy(ctx) == ctx and pickle.loads(pickle.dumps(ctx)) == ctx
    assert ctx.event_fields() == made.event_fields()
    assert list(ctx.event_fields()) == ["trace_id", "msg_id", "conv_id", "actor", "kind"]
    assert refined.event_fields() == {**made.event_fields(), "msg_id": "m2"}


def test_message_paths_give_what_the_checked_constructor_gives() -> None:
    upper = TID.upper()
    cases: list[tuple[Any, dict[str, Any]]] = [
        (TID, {}),
        (upper, {"conv_id": "c1"}),
        ("tmp-1", {"actor": "u1"}),
        (tracekit.MessageContext(TID, parent_span_id="00f067aa0ba902b7"), {"msg_id": "m"}),
    ]
    for given, kwargs in cases:
        with tracekit.message(given, **kwargs) as ctx:
            # the same message, deeper (a bad id's derived trace is the actor's: given again)
            with tracekit.message(given, actor=kwargs.get("actor"), extra=1) as again:
                pass
        tid = ctx.trace_id
        assert _context._CANONICAL.fullmatch(tid)
        assert ctx == dataclasses.replace(ctx)  # what the checked constructor makes of it
        assert again.trace_id == tid and again.fields == {**ctx.fields, "extra": 1}
        assert (again.conv_id, again.msg_id, again.actor, again.parent_span_id) == (
            ctx.conv_id,
            ctx.msg_id,
            ctx.actor,
            ctx.parent_span_id,
        )
        assert again.event_fields() == {**ctx.event_fields(), "extra": 1}
    with tracekit.message() as fresh:
        assert _context._CANONICAL.fullmatch(fresh.trace_id) and fresh.event_fields() == {
            "trace_id": fresh.trace_id
        }


def test_message_builds_its_context_without_the_dataclass_checks(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # (its __init__ stores each field through object.__setattr__, __post_init__ matches the
    # id again: 1.3 of the 3.5 us a message took unconfigured)
    checked: list[str] = []
    original = tracekit.MessageContext.__post_init__

    def counting(self: tracekit.MessageContext) -> None:
        checked.append(self.trace_id)
        original(self)

    monkeypatch.setattr(tracekit.MessageContext, "__post_init__", counting)
    with tracekit.message(TID, conv_id="c1"):  # a new message by its id
        with tracekit.message(msg_id="m1"):  # refined
            with tracekit.message(TID, kind="x"):  # the same message again, deeper
                with tracekit.message(TID2) as other:  # another inside it
                    pass
    with tracekit.message("tmp-1"), tracekit.message():  # a bad id's derived one; a fresh one
        pass
    assert checked == []
    assert other.trace_id == TID2 and type(other) is tracekit.MessageContext
    assert tracekit.MessageContext(TID).trace_id == TID and checked == [TID]  # (still checks)
