"""Review H, second reading of the instrumentation fixes: one reading of trace ids and one
derivation rule everywhere, redaction that does not depend on unrelated fields, namedtuples
and dataclasses, large payloads, configure(otel=) validation, lost seqs, app fields named
``seq``/``source``. Each test states exactly what must land in the sink."""

from __future__ import annotations

import json
import os
import threading
import time
from collections import namedtuple
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import pytest

import tracekit
from tracekit import _core
from tracekit._processors import RedactText
from tracekit.schema import derived_trace_id
from tracekit.testing import capture

TID = "0af7651916cd43dd8448eb211c80319c"


@contextmanager
def written(**options: Any) -> Iterator[list[dict[str, Any]]]:
    """The lines written (parsed) while configured with ``options``, filled at the end."""
    sink = tracekit.MemorySink()
    tracekit.configure(service="test", source="test-1", sink=sink, **options)
    out: list[dict[str, Any]] = []
    try:
        yield out
    finally:
        out.extend(json.loads(line) for line in sink.lines)
        tracekit.shutdown()


UUID = "0af76519-16cd-43dd-8448-eb211c80319c"


# 1. stage()/emit(trace_id=...) read an id as message()/bind() do.


@pytest.mark.parametrize(
    "given", [f" {TID} ", "{" + TID + "}", f"urn:uuid:{UUID}", TID.encode(), f"\t{UUID.upper()}\n"]
)
def test_stage_and_emit_read_trace_ids_as_message_and_bind(given: object) -> None:
    with capture() as events:
        with tracekit.message(given):
            tracekit.emit("X", "in_message")
        tracekit.emit("X", "emit_kw", trace_id=given)
        with tracekit.stage("X", "stage_kw", trace_id=given):
            pass
        with tracekit.bind(trace_id=given):
            tracekit.emit("X", "bound")
        assert tracekit.stats()["bad_trace_ids"] == 0
    assert [(e["action"], e["trace_id"], "bad_trace_id" in e) for e in events] == [
        ("in_message", TID, False),
        ("emit_kw", TID, False),
        ("stage_kw", TID, False),
        ("bound", TID, False),
    ]


# 2. One bad id of one actor is one derived trace, whatever the API.


def test_bad_id_derives_one_trace_per_actor_in_every_api() -> None:
    u2 = derived_trace_id("u2\x1ftmp-1")
    server = derived_trace_id("server\x1ftmp-1")
    with capture(actor="server") as events:
        with tracekit.bind(actor="u2"):
            with tracekit.message("tmp-1"):
                tracekit.emit("X", "in_message")
            tracekit.emit("X", "emit_kw", trace_id="tmp-1")
            with tracekit.stage("X", "stage_kw", trace_id="tmp-1"):
                pass
            with tracekit.bind(trace_id="tmp-1"):
                tracekit.emit("X", "bound")
        with tracekit.message("tmp-1", actor="u2"):
            tracekit.emit("X", "message_actor")
        with tracekit.bind(trace_id="tmp-1", actor="u2"):
            tracekit.emit("X", "bind_actor")
        with tracekit.message("tmp-1"):
            tracekit.emit("X", "configured")
        tracekit.emit("X", "emit_configured", trace_id="tmp-1")
        assert tracekit.stats()["bad_trace_ids"] == 8
    assert [(e["action"], e["actor"], e["trace_id"], e["bad_trace_id"]) for e in events] == [
        ("in_message", "u2", u2, "tmp-1"),
        ("emit_kw", "u2", u2, "tmp-1"),
        ("stage_kw", "u2", u2, "tmp-1"),
        ("bound", "u2", u2, "tmp-1"),
        ("message_actor", "u2", u2, "tmp-1"),
        ("bind_actor", "u2", u2, "tmp-1"),
        ("configured", "server", server, "tmp-1"),
        ("emit_configured", "server", server, "tmp-1"),
    ]


# 3. A top-level text key is redacted whatever its spelling and whatever the other fields.


@pytest.mark.parametrize("other", [{}, {"tags": ["a"]}, {"score": 0.5}])
def test_top_level_text_keys_are_redacted_whatever_the_other_fields(other: dict[str, Any]) -> None:
    spelled = {"message-text": "S1", "msgtext": "S2", "Msg-Text": "S3", "BODY": "S4", "k": "v"}
    with capture() as events:
        tracekit.emit("X", "flat", **spelled, **other)
    with capture(redact=["x-secret"]) as custom:
        tracekit.emit("X", "custom", x_secret="S5", XSecret="S6", text="kept", **other)
    assert {k: events[0][k] for k in spelled} == {
        "message-text": "[redacted]",
        "msgtext": "[redacted]",
        "Msg-Text": "[redacted]",
        "BODY": "[redacted]",
        "k": "v",
    }
    assert (custom[0]["x_secret"], custom[0]["XSecret"], custom[0]["text"]) == (
        "[redacted]",
        "[redacted]",
        "kept",
    )
    assert "S1" not in repr(list(events)) and "S5" not in repr(list(custom))


# 4. Namedtuples and dataclasses: redacted, and always written as objects of their fields.

Msg = namedtuple("Msg", "text author")
P = namedtuple("P", "meta n")


@dataclass
class Payload:
    text: str
    n: int = 1


@dataclass
class Outer:
    inner: list[Payload]
    note: str = "n"


def test_namedtuples_and_dataclasses_are_redacted_and_objects() -> None:
    with written() as events:
        tracekit.emit("X", "nt", payload=Msg("SECRET-NT", "u1"))
        tracekit.emit("X", "dc", payload=Payload("SECRET-DC"))
        tracekit.emit("X", "dc_in_list", items=[Payload("SECRET-DC2")], other=(1, 2))
        tracekit.emit("X", "nested_dc", outer=Outer([Payload("SECRET-DC3", 2)]))
        tracekit.emit("X", "plain", payload=P({"k": "v"}, 1))
        tracekit.emit("X", "nested_text", payload=P({"text": "s"}, 1))
        tracekit.emit("X", "nt_list", payload=[P({"k": "v"}, 2)], big=2**70)
    assert "SECRET" not in repr(list(events))
    got = [
        (e["action"], {k: e[k] for k in ("payload", "items", "outer") if k in e}) for e in events
    ]
    assert got == [
        ("nt", {"payload": {"text": "[redacted]", "author": "u1"}}),
        ("dc", {"payload": {"text": "[redacted]", "n": 1}}),
        ("dc_in_list", {"items": [{"text": "[redacted]", "n": 1}]}),
        ("nested_dc", {"outer": {"inner": [{"text": "[redacted]", "n": 2}], "note": "n"}}),
        ("plain", {"payload": {"meta": {"k": "v"}, "n": 1}}),
        ("nested_text", {"payload": {"meta": {"text": "[redacted]"}, "n": 1}}),
        ("nt_list", {"payload": [{"meta": {"k": "v"}, "n": 2}]}),
    ]
    # a namedtuple is no unserialisable value (written as an object, not its repr)
    assert [e.get("unserialisable") for e in events] == [[], None, None, None, [], [], ["big"]]


def test_namedtuple_and_dataclass_text_kept_when_redaction_is_off() -> None:
    with written(redact=False) as events:
        tracekit.emit("X", "nt", payload=Msg("t1", "u1"), dc=Payload("t2"))
    assert (events[0]["payload"], events[0]["dc"]) == (
        {"text": "t1", "author": "u1"},
        {"text": "t2", "n": 1},
    )


# 5. Large nested payloads: no walk unless the rendered line could need one.


def test_nested_payloads_are_walked_only_when_the_line_could_need_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    walks: list[str] = []
    real_nonfinite = _core._has_nonfinite
    real_nested = RedactText._nested

    def nonfinite(*args: Any) -> bool:
        walks.append("nonfinite")
        return real_nonfinite(*args)

    def nested(self: RedactText, *args: Any) -> Any:
        walks.append("nested")
        return real_nested(self, *args)

    monkeypatch.setattr(_core, "_has_nonfinite", nonfinite)
    monkeypatch.setattr(RedactText, "_nested", nested)
    plain = [{"id": i, "v": "s", "f": 0.5} for i in range(1000)]
    texts = [{"id": i, "Text": "s"} for i in range(3)]
    found: list[list[str]] = []
    with written() as events:
        for action, payload in (
            ("plain", plain),
            ("none", [1, None]),
            ("nan", [1.0, float("nan")]),
            ("text", texts),
            ("text_kind", [{"id": 1, "textual": "t"}]),  # a near spelling: walked, kept
        ):
            walks.clear()
            tracekit.emit("X", action, payload=payload)
            found.append(list(walks))
    # the text payload: the list, then its three dicts (the objects are walked, not the line)
    assert found == [[], ["nonfinite"], ["nonfinite"], ["nested"] * 4, []]
    assert [e["payload"] for e in events[1:]] == [
        [1, None],
        [1.0, "NaN"],
        [{"id": i, "Text": "[redacted]"} for i in range(3)],
        [{"id": 1, "textual": "t"}],
    ]
    assert [e["seq"] for e in events] == [1, 2, 3, 4, 5]
    assert texts[0]["Text"] == "s"  # the app's own objects are not modified


def test_what_json_cannot_tell_apart_is_redacted_on_the_objects() -> None:
    # third reading: the line read back merged a key 1 with a key "1" (the text under one
    # leaked), turned a NaN beside a text key into null, and skipped a StrEnum key's value
    import enum

    class F(enum.StrEnum):
        PAYLOAD = "payload"

    with written() as events:
        tracekit.emit("X", "a", payload={1: {"text": "SECRET"}, "1": "keep"})
        tracekit.emit("X", "b", p={"text": "s", "v": float("nan")})
        tracekit.emit("X", "c", **{F.PAYLOAD: {"text": "SECRET"}})  # type: ignore[arg-type]
    lines = [json.dumps(e) for e in events]
    assert all("SECRET" not in line for line in lines)
    assert events[1]["p"] == {"text": "[redacted]", "v": "NaN"}
    assert events[1]["unserialisable"] == ["p"]
    assert events[2]["payload"] == {"text": "[redacted]"}


def test_a_dataclass_field_never_set_is_left_out_not_the_event() -> None:
    from dataclasses import field
    from decimal import Decimal

    @dataclass
    class Job:
        n: int
        later: int = field(init=False)

    with written() as events:
        tracekit.emit("X", "y", job=Job(1), amount=Decimal("1.5"))  # the walk, not orjson
    (event,) = events
    assert (event["job"], event["amount"]) == ({"n": 1}, "Decimal('1.5')")


# 7. A loss after the seq was taken names the seq.


class Flaky(dict[str, Any]):
    def values(self) -> Any:
        raise RuntimeError("dictionary changed size during iteration")


def test_a_loss_after_the_seq_was_taken_names_it() -> None:
    with capture(redact=False) as events:
        tracekit.emit("X", "a")
        tracekit.emit("X", "flaky", payload=Flaky(k=None))
        tracekit.emit("X", "b")
        assert tracekit.stats()["dropped"] == 1
    assert [(e["seq"], e["action"], e.get("lost_seq")) for e in events] == [
        (1, "a", None),
        (3, "dropped", 2),
        (4, "b", None),
    ]
    assert events[1]["reason"].startswith("internal error: RuntimeError: dictionary changed")


# 6. configure(otel=<wrong type>) is a ConfigError, and leaves no sink open.


def _open_fds(path: str) -> int:
    fds = os.listdir("/proc/self/fd")
    return sum(1 for fd in fds if os.path.realpath(f"/proc/self/fd/{fd}") == path)


@pytest.mark.parametrize("make", [tracekit.configure, tracekit.Instrumentation])
def test_wrong_otel_is_a_config_error_and_opens_no_sink(make: Any, tmp_path: Any) -> None:
    path = str(tmp_path / "out.jsonl")
    threads = threading.active_count()
    for _ in range(3):
        with pytest.raises(tracekit.ConfigError, match="otel must be"):
            make(service="svc", sink=path, otel="yes")
    assert (threading.active_count(), _open_fds(path), tracekit.is_configured()) == (
        threads,
        0,
        False,
    )


def test_a_failing_emitter_closes_the_sink_configure_opened(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    path = str(tmp_path / "out.jsonl")
    threads = threading.active_count()

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no emitter")

    monkeypatch.setattr(_core._Emitter, "__init__", broken)
    for make in (tracekit.configure, tracekit.Instrumentation):
        with pytest.raises(RuntimeError, match="no emitter"):
            make(service="svc", sink=path)
    deadline = time.monotonic() + 2
    while threading.active_count() > threads and time.monotonic() < deadline:
        time.sleep(0.01)
    assert (threading.active_count(), _open_fds(path)) == (threads, 0)


# Unconfirmed list: app fields named seq / source are kept aside, as timestamp's are.


def test_app_fields_named_seq_and_source_are_kept_aside() -> None:
    with written() as events:
        tracekit.emit("X", "a", seq=99, source="app", n=1)
        with tracekit.stage("X", "b", source="app2"):
            pass
        with tracekit.bind(seq="bound"):
            tracekit.emit("X", "c")
    assert [(e["seq"], e["source"], e.get("field_seq"), e.get("field_source")) for e in events] == [
        (1, "test-1", 99, "app"),
        (2, "test-1", None, "app2"),
        (3, "test-1", "bound", None),
    ]
