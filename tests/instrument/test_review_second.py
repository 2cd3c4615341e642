"""Review H, second reading of the instrumentation fixes: one reading of trace ids and one
derivation rule everywhere, redaction that does not depend on unrelated fields, namedtuples
and dataclasses, large payloads, configure(otel=) validation, lost seqs, app fields named
``seq``/``source``. Each test states exactly what must land in the sink."""

from __future__ import annotations

import pytest

import tracekit
from tracekit.schema import derived_trace_id
from tracekit.testing import capture

TID = "0af7651916cd43dd8448eb211c80319c"
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
