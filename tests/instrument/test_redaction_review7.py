"""Review 7: redaction follows what the renderer writes (enum keys, a dataclass's ``__dict__``,
values written as their repr, keys written as their repr), cuts only deep subtrees that may hold
text, and event-dict sinks get a snapshot of the event, not the app's live objects."""

from __future__ import annotations

import enum
import json
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

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
