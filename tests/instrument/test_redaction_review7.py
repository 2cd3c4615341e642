"""Review 7: redaction follows what the renderer writes (enum keys, a dataclass's ``__dict__``,
values written as their repr, keys written as their repr), cuts only deep subtrees that may hold
text, and event-dict sinks get a snapshot of the event, not the app's live objects."""

from __future__ import annotations

import collections
import enum
import json
import threading
import types
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

import tracekit
from tracekit._processors import RedactText


@contextmanager
def written(**options: Any) -> Iterator[list[bytes]]:
    """The raw lines written while configured with ``options``, filled at the end."""
    sink = tracekit.MemorySink()
    tracekit.configure(service="test", source="test-1", sink=sink, **options)
    out: list[bytes] = []
    try:
        yield out
    finally:
        out.extend(sink.lines)
        tracekit.shutdown()


Msg = namedtuple("Msg", "text")


class K(enum.Enum):
    TEXT = "text"
    BODY = "Message-Text"


class Nested(enum.Enum):  # orjson writes a member as its value, an enum's too
    TEXT = K.TEXT


class Boxed(enum.Enum):
    A = {"text": "SECRET-enum-value"}  # noqa: RUF012 (a member's value, not a class attribute)


# 1. A non-str key is matched as orjson writes it.


def test_an_enum_key_is_matched_as_written() -> None:
    redact = RedactText()
    assert redact.is_text_key(K.TEXT)
    assert redact.is_text_key(K.BODY)
    assert redact.is_text_key(Nested.TEXT)
    assert not redact.is_text_key(1)
    assert not redact.is_text_key(None)
    assert RedactText(["1", "null"]).is_text_key(1)
    assert RedactText(["1", "null"]).is_text_key(None)
    with written() as lines:
        tracekit.emit("S", "a", payload={K.TEXT: "SECRET-enum", "n": 1})
        tracekit.emit("S", "b", payload=[{Nested.TEXT: "SECRET-nested", K.BODY: "SECRET-b"}])
    assert not any(b"SECRET" in line for line in lines)
    events = [json.loads(line) for line in lines]
    assert events[0]["payload"] == {"text": "[redacted]", "n": 1}
    assert events[1]["payload"] == [{"text": "[redacted]", "Message-Text": "[redacted]"}]


# 2. A dataclass is redacted as orjson writes it: its __dict__ (not only its fields).


@dataclass
class Reply:
    id: int

    def __post_init__(self) -> None:
        self.text = "SECRET-postinit"  # an attribute, not a field
        self._private = "kept out"  # orjson leaves out names starting with "_"


def test_a_dataclass_attribute_that_is_not_a_field_is_redacted() -> None:
    reply = Reply(1)
    with written() as lines:
        tracekit.emit("S", "top", payload=reply)
        tracekit.emit("S", "nested", payload={"reply": reply})
    assert not any(b"SECRET" in line for line in lines)
    events = [json.loads(line) for line in lines]
    assert events[0]["payload"] == {"id": 1, "text": "[redacted]"}
    assert events[1]["payload"] == {"reply": {"id": 1, "text": "[redacted]"}}
    assert reply.text == "SECRET-postinit"  # the app's object is not modified


# 3. Values (and keys) the renderer writes as their repr are walked.


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (frozenset({Msg("SECRET-set")}), [{"text": "[redacted]"}]),
        (collections.deque([{"text": "SECRET-deque"}, 1]), [{"text": "[redacted]"}, 1]),
        (types.MappingProxyType({"text": "SECRET-mp", "n": 1}), {"text": "[redacted]", "n": 1}),
        (types.SimpleNamespace(text="SECRET-ns", n=1), {"text": "[redacted]", "n": 1}),
        ({Msg("SECRET-key"): 1}, {"{'text': '[redacted]'}": 1}),
        (
            {"k": {1, 2}, "t": [Msg("SECRET-in-list")]},
            {"k": "{1, 2}", "t": [{"text": "[redacted]"}]},
        ),
        (Boxed.A, {"text": "[redacted]"}),
        ({"a": {"text": "SECRET-values"}}.values(), [{"text": "[redacted]"}]),
        ({"a": Msg("SECRET-items")}.items(), {"a": {"text": "[redacted]"}}),
        ({"a": Boxed.A}, {"a": {"text": "[redacted]"}}),
        (
            {"text": "SECRET", "d": collections.deque([1])},
            {"text": "[redacted]", "d": "deque([1])"},
        ),
    ],
    ids=[
        "set_of_nt",
        "deque",
        "mappingproxy",
        "namespace",
        "nt_key",
        "mixed",
        "enum",
        "values",
        "items",
        "enum_in",
        "rest",
    ],
)
def test_values_written_as_their_repr_do_not_leak_text(value: object, expected: object) -> None:
    with written() as lines:
        tracekit.emit("S", "a", payload=value)
        tracekit.emit("S", "b", other=1, payload=value)  # not the first field
    assert not any(b"SECRET" in line for line in lines), lines
    assert [json.loads(line)["payload"] for line in lines] == [expected, expected]


def test_values_written_as_their_repr_do_not_leak_text_to_processors() -> None:
    seen: list[str] = []

    def look(_logger: Any, _method: str, event: Any) -> Any:
        seen.append(repr(event))
        return event

    with written(processors=[look]) as lines:
        tracekit.emit("S", "a", payload=collections.deque([{"text": "SECRET"}]))
        tracekit.emit("S", "b", payload=types.SimpleNamespace(body="SECRET"))
    assert not any(b"SECRET" in line for line in lines)
    assert not any("SECRET" in s for s in seen)


class Card:
    def __init__(self) -> None:
        self.text = "SECRET-card"
        self.token = "not in the repr"

    def __repr__(self) -> str:
        return f"Card({self.text!r})"


def test_an_object_with_its_own_repr_holding_text_is_redacted_whole() -> None:
    with written() as lines:
        tracekit.emit("S", "a", card=Card(), cards=[Card()], ok=types.SimpleNamespace(k=Card()))
    (line,) = lines
    assert b"SECRET" not in line and b"not in the repr" not in line
    event = json.loads(line)
    assert (event["card"], event["cards"], event["ok"]) == (
        "[redacted]",
        ["[redacted]"],
        {"k": "[redacted]"},
    )


def test_repr_values_without_text_are_still_written_as_their_repr() -> None:
    with written() as lines:
        tracekit.emit("S", "a", d=collections.deque([{"k": "v"}]), ns=types.SimpleNamespace(k=1))
    (event,) = [json.loads(line) for line in lines]
    assert (event["d"], event["ns"]) == ("deque([{'k': 'v'}])", "namespace(k=1)")


def test_a_value_that_raises_when_walked_is_cut_not_raised() -> None:
    class Bad(collections.abc.Mapping[str, Any]):
        def __getitem__(self, key: str) -> Any:
            raise KeyError(key)

        def __iter__(self) -> Iterator[str]:
            raise RuntimeError("no")

        def __len__(self) -> int:
            return 1

        def __repr__(self) -> str:
            return "Bad(text='SECRET')"

    with written() as lines:
        tracekit.emit("S", "a", payload=Bad(), text="x")
    (line,) = lines
    assert b"SECRET" not in line
    assert json.loads(line)["payload"] == "[redacted]"


# 4. An event-dict sink gets the event as it was at emit(), not the app's live objects.


def test_the_callable_sink_gets_the_event_as_emitted() -> None:
    got: list[dict[str, Any]] = []
    gate = threading.Event()

    def sink(event: Any) -> None:
        gate.wait(5)
        got.append(event)

    tracekit.configure(service="test", source="test-1", sink=sink)
    try:
        ctx: dict[str, Any] = {"user": "u1", "items": [1]}
        tracekit.emit("S", "send", ctx=ctx)
        ctx["text"] = "SECRET typed after emit"
        ctx["items"].append(2)
        gate.set()
        assert tracekit.flush(5)
    finally:
        tracekit.shutdown()
    (event,) = [e for e in got if e["stage"] == "S"]
    assert event["ctx"] == {"user": "u1", "items": [1]}


def test_the_memory_sink_keeps_the_event_as_emitted() -> None:
    sink = tracekit.MemorySink()
    tracekit.configure(service="test", source="test-1", sink=sink)
    try:
        ctx: dict[str, Any] = {"user": "u1"}
        tracekit.emit("S", "send", ctx=ctx)
        ctx["text"] = "SECRET typed after emit"
    finally:
        tracekit.shutdown()
    (event,) = [e for e in sink.events if e["stage"] == "S"]
    assert event["ctx"] == {"user": "u1"}


# 5. Only a deep subtree that may hold text is cut.


def _deep(levels: int, leaf: dict[str, Any]) -> dict[str, Any]:
    root = cur = {}
    for _ in range(levels):
        cur["level"] = {}
        cur = cur["level"]
    cur.update(leaf)
    return root


def _depth(value: Any) -> tuple[int, Any]:
    n = 0
    while isinstance(value, dict) and "level" in value:
        value, n = value["level"], n + 1
    return n, value


def test_a_text_key_elsewhere_does_not_cut_a_deep_structure_without_text() -> None:
    with written() as lines:
        tracekit.emit("S", "a", config=_deep(40, {"leaf": 1}), text="hi")
        tracekit.emit("S", "b", config=_deep(40, {"leaf": 1}), other={"text": "hi"})
    events = [json.loads(line) for line in lines]
    assert [_depth(e["config"]) for e in events] == [(40, {"leaf": 1})] * 2
    assert [e.get("unserialisable") for e in events] == [None, None]


def test_a_deep_subtree_with_text_is_still_cut() -> None:
    with written() as lines:
        tracekit.emit("S", "a", config=_deep(40, {"text": "SECRET"}))
    (line,) = lines
    assert b"SECRET" not in line
    event = json.loads(line)
    assert event["unserialisable"] == ["config"]
