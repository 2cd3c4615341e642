"""JSON lines: exact events, types, and every bad-input case of DESIGN.md section 8."""

from __future__ import annotations

import gzip
import io
import math
from pathlib import Path
from typing import Any

import orjson
import polars as pl
import pytest
from collectors_helpers import T1, T2, event, jl, ts
from polars.testing import assert_frame_equal

from tracekit.collectors import MemorySource, _jsonl, collect
from tracekit.table import EVENT_SCHEMA


def lines_of(*objs: object) -> bytes:
    return b"".join((o if isinstance(o, bytes) else orjson.dumps(o)) + b"\n" for o in objs)


def test_exact_events_and_schema(tmp_path: Path) -> None:
    p = tmp_path / "chat-server-1.jsonl"
    p.write_bytes(
        lines_of(
            {
                "timestamp": "2026-11-25T10:00:00.123456Z",
                "stage": "WS-BROADCAST",
                "action": "start",
                "event": "WS-BROADCAST start",
                "trace_id": T1,
                "msg_id": "m1",
                "conv_id": "c1",
                "actor": "server",
                "source": "chat-server-1",
                "seq": 16,
                "span_id": "00f067aa0ba902b7",
                "recipients": ["u1", "u2"],
                "duration_ms": 0.1,
                "level": "info",
            },
            # any key order, unknown keys, numbers where text is expected
            {
                "level": "info",
                "seq": 17,
                "peer": "u2",
                "source": "chat-server-1",
                "actor": "server",
                "conv_id": "c1",
                "msg_id": 1001,
                "trace_id": T1.upper(),
                "event": "WS-BROADCAST deliver",
                "action": "deliver",
                "stage": "WS-BROADCAST",
                "timestamp": "2026-11-25T10:00:00.123999Z",
                "status": "ok",
            },
        )
    )
    got = collect([p])
    frame = got.events.collect()
    assert frame.schema == EVENT_SCHEMA
    assert frame.to_dicts() == [
        event(
            timestamp=ts("10:00:00.123456"),
            stage="WS-BROADCAST",
            action="start",
            event="WS-BROADCAST start",
            trace_id=T1,
            msg_id="m1",
            conv_id="c1",
            actor="server",
            source="chat-server-1",
            seq=16,
            span_id="00f067aa0ba902b7",
            recipients=["u1", "u2"],
            level="info",
            duration_ms=0.1,
            file=str(p),
            line=1,
        ),
        event(
            timestamp=ts("10:00:00.123999"),
            stage="WS-BROADCAST",
            action="deliver",
            event="WS-BROADCAST deliver",
            trace_id=T1,
            msg_id="1001",
            conv_id="c1",
            actor="server",
            peer="u2",
            source="chat-server-1",
            seq=17,
            level="info",
            file=str(p),
            line=2,
        ),
    ]
    assert got.inputs.to_dict() | {"bytes": 0} == {
        "files": 1,
        "lines": 2,
        "events": 2,
        "malformed": 0,
        "unlinked": 0,
        "ignored": 0,
        "bytes": 0,
        "examples": [],
        "unlinked_examples": [],
        "warnings": [],
        "formats": {"jsonl": 1},
        "missing": {},
        "dropped_by_sink": 0,
        "cached": False,
        "malformed_lines": {},
    }


def test_memory_source_events() -> None:
    got = collect([MemorySource([jl(), jl(seq=2, action="add", event="CTRL add")])])
    frame = got.events.collect()
    assert frame.get_column("action").to_list() == ["send", "add"]
    assert frame.get_column("line").to_list() == [1, 2]
    assert frame.get_column("file").to_list() == ["memory", "memory"]


def test_mixed_timestamp_formats() -> None:
    stamps = [
        "2026-11-25T10:00:00.000001Z",
        "2026-11-25T12:00:00.5+02:00",
        "2026-11-25 10:00:01Z",
        1795600801.25,  # epoch seconds
        1795600801500,  # epoch ms
        1795600801750000,  # epoch us
        1795600801999999999,  # epoch ns
        "1795600802",
        "2026-11-25T10:00:03.123456789Z",
    ]
    got = collect([MemorySource([jl(timestamp=s, seq=i) for i, s in enumerate(stamps)])])
    frame = got.events.collect()
    assert frame.get_column("timestamp").cast(pl.Int64).to_list() == [
        1795600800_000001000,
        1795600800_500000000,
        1795600801_000000000,
        1795600801_250000000,
        1795600801_500000000,
        1795600801_750000000,
        1795600801_999999999,
        1795600802_000000000,
        1795600803_123456789,
    ]
    assert got.inputs.malformed == 0
    assert got.inputs.warnings == []


def test_naive_timestamps_need_a_timezone() -> None:
    src = [jl(timestamp="2026-11-25 11:00:00.5"), jl(timestamp="2026-11-25T11:00:01")]
    got = collect([MemorySource(src)])
    assert got.events.collect().get_column("timestamp").to_list() == [
        ts("11:00:00.5"),
        ts("11:00:01"),
    ]
    assert got.inputs.warnings == [
        "memory: 2 timestamps have no time zone and were read as UTC; "
        "pass timezone=... (e.g. 'Europe/Berlin') if they are local times"
    ]
    berlin = collect([MemorySource(src)], timezone="Europe/Berlin")
    assert berlin.events.collect().get_column("timestamp").to_list() == [
        ts("10:00:00.5"),
        ts("10:00:01"),
    ]
    assert berlin.inputs.warnings == []


def test_missing_required_keys() -> None:
    data = lines_of(
        jl(seq=1),
        {k: v for k, v in jl(seq=2).items() if k != "timestamp"},
        {k: v for k, v in jl(seq=3).items() if k != "stage"},
        {k: v for k, v in jl(seq=4).items() if k != "action"},
        jl(seq=5, timestamp="yesterday"),
        {k: v for k, v in jl(seq=6).items() if k not in ("seq", "actor", "source")},
        jl(seq=7),
    )
    got = collect([MemorySource(data, name="app.jsonl", source_name="app")])
    frame = got.events.collect()
    assert frame.get_column("line").to_list() == [1, 6, 7]
    assert frame.get_column("seq").to_list() == [1, None, 7]
    assert frame.get_column("source").to_list() == ["client-u1", "app", "client-u1"]
    inputs = got.inputs
    assert inputs.malformed == 4
    assert inputs.examples == [
        "app.jsonl:2: missing required key 'timestamp'",
        "app.jsonl:3: missing required key 'stage'",
        "app.jsonl:4: missing required key 'action'",
        "app.jsonl:5: unparseable timestamp yesterday",
    ]
    assert inputs.missing == {"actor": 1, "seq": 1, "source": 1}


def test_bad_lines_are_counted_and_neighbours_kept() -> None:
    data = b"".join(
        [
            lines_of(jl(seq=1)),
            b"\n",  # blank
            b"{not json\n",
            b"\xff\xfe\x00garbage\x01\n",  # binary garbage / invalid UTF-8
            lines_of(jl(seq=2)),
            b'{"stage": "CTRL", "text": "caf\xe9"}\n',  # latin-1 byte inside a string
            b"[1, 2, 3]\n",
            b"   \n",
            lines_of(jl(seq=3)),
            orjson.dumps(jl(seq=4))[:25],  # truncated last line
        ]
    )
    got = collect([MemorySource(data, name="f")])
    frame = got.events.collect()
    assert frame.get_column("seq").to_list() == [1, 2, 3]
    assert frame.get_column("line").to_list() == [1, 5, 9]
    inputs = got.inputs
    assert (inputs.lines, inputs.events, inputs.malformed) == (10, 3, 5)
    assert [e.split(": ", 1)[0] for e in inputs.examples] == ["f:3", "f:4", "f:6", "f:7", "f:10"]
    assert inputs.examples[1] == "f:4: invalid UTF-8"
    assert inputs.examples[2] == "f:6: invalid UTF-8"
    assert inputs.examples[3] == "f:7: not a JSON object"
    assert inputs.examples[0] == "f:3: invalid JSON at character 1"
    assert inputs.examples[4].startswith("f:10: invalid JSON")


def test_examples_are_capped_counts_exact() -> None:
    data = b"".join([b"{bad\n"] * 25 + [lines_of(jl())])
    got = collect([MemorySource(data, name="f")])
    assert got.inputs.malformed == 25
    assert len(got.inputs.examples) == 10
    assert got.inputs.events == 1


def test_wrongly_typed_values_cost_only_the_value() -> None:
    got = collect([MemorySource([jl(seq="x7"), jl(seq="8", recipients="u1,u2"), jl(seq=9.0)])])
    frame = got.events.collect()
    assert frame.get_column("seq").to_list() == [None, 8, 9]
    assert frame.get_column("recipients").to_list() == [None, ["u1", "u2"], None]
    assert got.inputs.warnings == ["memory: 1 events have a non-integer seq; it was left empty"]


def test_comma_milliseconds_with_an_offset() -> None:
    # Python logging / log4j write "10:00:00,123"; with an offset it was "unparseable"
    base = {"stage": "CTRL", "action": "send"}
    lines = [
        {**base, "timestamp": t}
        for t in ("2026-11-25 10:00:00,123 +0530", "2026-11-25 10:00:00,123+01:00")
    ]
    got = collect([MemorySource(lines, name="c")])
    stamps = got.events.collect().get_column("timestamp").dt.strftime("%H:%M:%S%.3f").to_list()
    assert stamps == ["04:30:00.123", "09:00:00.123"]
    assert got.inputs.malformed == 0


def test_iso_8601_comma_fractions_and_minutes_without_seconds() -> None:
    # ISO 8601 allows "T10:00:00,123" and "T10:00Z"; the space-separated comma form was read,
    # these were "unparseable timestamp"
    base = {"stage": "CTRL", "action": "send"}
    stamps_in = (
        "2026-11-25T10:00:00,123Z",
        "2026-11-25T10:00:00,123+01:00",
        "2026-11-25T10:05Z",
        "2026-11-25 10:05+0530",
    )
    got = collect([MemorySource([{**base, "timestamp": t} for t in stamps_in], name="c")])
    stamps = got.events.collect().get_column("timestamp").dt.strftime("%H:%M:%S%.3f").to_list()
    assert stamps == ["10:00:00.123", "09:00:00.123", "10:05:00.000", "04:35:00.000"]
    assert (got.inputs.malformed, got.inputs.warnings) == (0, [])


def test_recipient_names_with_backslashes_and_tabs_come_back_exactly(tmp_path: Path) -> None:
    # polars gives a list read as text back with its strings unescaped: "a\\b" decoded as a
    # backspace, "a\\[b]" not at all (the broadcast then seemed to name no one)
    names = ["a\\[b]", 'q"x', "a\\b", "tab\there", "ok"]
    ev = {"timestamp": "2026-11-25T10:00:00Z", "stage": "WS-BROADCAST", "action": "start"}
    lines = [{**ev, "recipients": names}, {**ev, "recipients": ["u1"]}]
    path = tmp_path / "b.jsonl"
    path.write_bytes(b"".join(orjson.dumps(x) + b"\n" for x in lines))
    for src in (MemorySource(lines, name="b"), path):
        got = collect([src])
        assert got.events.collect().get_column("recipients").to_list() == [names, ["u1"]]
        assert got.inputs.warnings == []


def test_a_duration_that_is_no_number_is_left_empty(tmp_path: Path) -> None:
    # A stage's length bounds when its line was written (the analysis' log gaps need it);
    # text that is no length of time is left empty, counted, and costs nothing else.
    values = [0.25, "1.5", 3, "n/a", "12ms", None, "NaN", "inf", -2.0]
    lines = [jl(seq=i, duration_ms=v) for i, v in enumerate(values)]
    path = tmp_path / "d.jsonl"
    path.write_bytes(lines_of(*lines))
    for src, name in ((path, str(path)), (MemorySource(lines, name="d"), "d")):
        got = collect([src])
        durations = got.events.collect().get_column("duration_ms").to_list()
        assert durations == [0.25, 1.5, 3.0, None, None, None, None, None, -2.0]
        assert got.inputs.warnings == [
            f"{name}: 4 events have a duration_ms that is not a number; it was left empty"
        ]


def test_a_float_no_json_can_hold_is_read_as_its_text_from_memory() -> None:
    # JSON has no NaN or infinity (orjson writes null): a dict's such value is written as its
    # text, so it is counted and said as a bad value, not lost silently as an absent one
    lines = [jl(seq=0, duration_ms=math.nan), jl(seq=1, duration_ms=-math.inf), jl(seq=math.nan)]
    got = collect([MemorySource(lines, name="d")])
    table = got.events.collect()
    assert table.get_column("duration_ms").to_list() == [None, None, None]
    assert table.get_column("seq").to_list() == [0, 1, None]
    assert got.inputs.warnings == [
        "d: 1 events have a non-integer seq; it was left empty",
        "d: 2 events have a duration_ms that is not a number; it was left empty",
    ]


def test_a_fractional_seq_is_left_empty_not_rounded() -> None:
    # 4.5 rounded to 4 (or "5.7" to 6) would invent a position, here a repeated seq 6
    got = collect([MemorySource([jl(seq=v) for v in (3, 4.5, "5.7", 6.0, "6.0", "x")])])
    assert got.events.collect().get_column("seq").to_list() == [3, None, None, 6, 6, None]
    assert got.inputs.warnings == ["memory: 3 events have a non-integer seq; it was left empty"]


def test_local_times_around_dst_changes() -> None:
    # Berlin, 27 Oct 2024: 03:00 CEST steps back to 02:00 CET, so 02:00-02:59 happens twice;
    # 31 Mar 2024: 02:00 CET jumps to 03:00 CEST, so 02:30 never happens.
    base = {"stage": "CTRL", "action": "send"}
    times = [
        "2024-10-27 02:50:00",  # first pass (CEST): 00:50Z
        "2024-10-27 02:50:00.001",  # threads' jitter, still the first pass
        "2024-10-27 02:05:00",  # the clock stepped back: second pass (CET): 01:05Z
        "2024-10-27 02:55:00",  # second pass: 01:55Z
        "2024-10-27 03:10:00",  # unambiguous: 02:10Z
        "2024-03-31 02:30:00",  # does not exist
    ]
    lines = [{**base, "timestamp": t} for t in times]
    got = collect([MemorySource(lines, name="dst")], timezone="Europe/Berlin")
    stamps = got.events.collect().get_column("timestamp").dt.strftime("%H:%M:%S%.3f").to_list()
    assert stamps == [
        "00:50:00.000",
        "00:50:00.001",
        "01:05:00.000",
        "01:55:00.000",
        "02:10:00.000",
    ]
    assert got.inputs.examples == ["dst:6: unparseable timestamp 2024-03-31 02:30:00"]
    assert got.inputs.warnings == [
        "dst: 4 local times fall in the hour a DST change in Europe/Berlin repeats; each placed"
        " in the first or second pass by where the log's clock stepped back",
        "dst: 1 local times fall in the hour a DST change in Europe/Berlin skips; they do not"
        " exist there (a wrong clock or time zone?) and count as malformed",
    ]


def test_trace_id_forms() -> None:
    uuid = "3F2B8C1E-5D4A-4E8F-9A7B-1C2D3E4F5A6B"
    got = collect([MemorySource([jl(trace_id=uuid), jl(trace_id="zz"), jl(trace_id="0" * 32)])])
    assert got.events.collect().get_column("trace_id").to_list() == [T1, None, None]
    assert got.inputs.warnings == ["memory: 2 events have an invalid trace_id; it was left empty"]


def test_meta_events_and_sink_drops() -> None:
    meta = {
        "timestamp": "2026-11-25T10:00:05Z",
        "stage": "TRACEKIT",
        "action": "dropped",
        "event": "TRACEKIT dropped",
        "actor": "server",
        "source": "chat-server-1",
        "seq": 9,
        "dropped": 12,
    }
    got = collect([MemorySource([jl(), meta])])
    assert got.events.collect().get_column("stage").to_list() == ["CTRL", "TRACEKIT"]
    assert got.inputs.dropped_by_sink == 12
    assert got.inputs.unlinked == 0


def test_gzip_jsonl(tmp_path: Path) -> None:
    p = tmp_path / "app.jsonl.gz"
    p.write_bytes(gzip.compress(lines_of(jl(), jl(trace_id=T2, seq=2))))
    got = collect([p])
    assert got.events.collect().get_column("trace_id").to_list() == [T1, T2]
    assert got.events.collect().get_column("source").to_list() == ["client-u1", "client-u1"]


def test_50mb_single_line_between_valid_events() -> None:
    huge_json = orjson.dumps(jl(seq=2, text="x" * 50_000_000))
    huge_garbage = b"y" * 50_000_000
    data = lines_of(jl(seq=1), huge_json, huge_garbage, jl(seq=3))
    got = collect([MemorySource(data, name="big")])
    frame = got.events.collect()
    assert frame.get_column("seq").to_list() == [1, 2, 3]
    assert got.inputs.malformed == 1
    assert got.inputs.examples == ["big:3: invalid JSON at character 0 (50.0 MB line)"]


def test_sample_jsonl(samples: Path) -> None:
    got = collect([samples / "jsonl"])
    frame = got.events.collect()
    assert got.inputs.to_dict()["malformed"] == 0
    assert got.inputs.files == 3
    assert frame.height == got.inputs.events == got.inputs.lines == 27
    assert set(frame.get_column("source")) == {"chat-server-1", "client-u1-7f3a", "client-u2-91c0"}
    start = frame.filter(pl.col("action") == "start")
    assert start.get_column("recipients").to_list() == [["u1", "u2"], ["u1", "u2"]]
    fetch = frame.filter(pl.col("action").cast(pl.String).str.starts_with("fetch")).select(
        "action", "conv_id"
    )
    assert fetch.rows() == [("fetch_start", "conv-42"), ("fetch_end", "conv-42")]


def test_file_with_blank_lines_and_a_torn_last_line(tmp_path: Path) -> None:
    p = tmp_path / "live.jsonl"
    body = b"".join(
        orjson.dumps(jl(seq=i)) + b"\n" + (b"\n" if i % 3 == 0 else b"") for i in range(1, 10)
    )
    p.write_bytes(body + orjson.dumps(jl(seq=10))[:30])
    got = collect([p])
    frame = got.events.collect()
    assert frame.get_column("seq").to_list() == list(range(1, 10))
    # lines: 9 events + 3 blank lines (after seq 3, 6, 9) + the torn one
    assert frame.get_column("line").to_list() == [1, 2, 3, 5, 6, 7, 9, 10, 11]
    assert got.inputs.lines == 13
    assert len(got.inputs.examples) == 1
    assert got.inputs.examples[0].startswith(f"{p}:13: invalid JSON")


def test_crlf_and_byte_order_mark(tmp_path: Path) -> None:
    ev = orjson.dumps(jl())
    p = tmp_path / "win.jsonl"
    p.write_bytes(b"\xef\xbb\xbf" + ev + b"\r\n" + ev + b"\r\n")
    got = collect([p])
    assert got.events.collect().get_column("line").to_list() == [1, 2]
    assert got.inputs.malformed == 0


def test_out_of_range_and_wrongly_shaped_values() -> None:
    base = {"stage": "CTRL", "action": "send"}
    lines = [
        {**base, "timestamp": "2026-11-25T10:00:00Z", "seq": 1e30},
        {**base, "timestamp": "9999-12-31T23:59:59Z"},
        {"timestamp": "2026-11-25T10:00:00Z", "stage": [1, 2], "action": {"a": 1}},
        {**base, "timestamp": "2026-11-25T10:00:00Z", "recipients": [1, {"x": 2}]},
    ]
    got = collect([MemorySource(lines, name="w")])
    frame = got.events.collect()
    assert frame.select("seq", "recipients", "line").rows() == [(None, None, 1), (None, None, 4)]
    assert got.inputs.examples == [
        "w:2: unparseable timestamp 9999-12-31T23:59:59Z",
        "w:3: 'stage' and 'action' must be strings",
    ]
    assert got.inputs.warnings == [
        "w: 1 events have a non-integer seq; it was left empty",
        "w: 1 events have 'recipients' that are not lists of strings; left empty",
    ]


def test_a_bad_recipients_value_costs_only_itself() -> None:
    base = {"stage": "WS-BROADCAST", "action": "start", "timestamp": "2026-11-25T10:00:00Z"}
    lines = [
        {**base, "recipients": ["u2", "u3"]},
        {**base, "recipients": "[u2, u3"},  # a list written by hand, badly
        {**base, "recipients": "u4,u5"},  # comma text
        {**base, "recipients": [1, 2]},
        {**base, "recipients": ["u6"]},
    ]
    got = collect([MemorySource(lines, name="w")])
    assert got.events.collect().get_column("recipients").to_list() == [
        ["u2", "u3"],
        None,
        ["u4", "u5"],
        ["1", "2"],
        ["u6"],
    ]
    assert got.inputs.warnings == [
        "w: 1 events have 'recipients' that are not lists of strings; left empty"
    ]


def test_application_log_lines_are_ignored_not_malformed() -> None:
    # tracekit's events share the app's structlog stream with its own log lines
    app_line = {"timestamp": "2026-11-25T10:00:00Z", "event": "request started", "level": "info"}
    got = collect([MemorySource([app_line, jl(), {"event": "no time either"}])])
    assert got.events.collect().height == 1
    assert (got.inputs.ignored, got.inputs.malformed) == (2, 0)


def test_large_inputs_are_read_in_blocks_with_the_same_result(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Blocks of whole lines (CHUNK_BYTES shrunk so 300 lines make ~10 blocks) give the same
    table and the same account as one read: line numbers run on across blocks, a bad line in
    a middle block is reported at its own line, counted warnings are summed into one."""
    rows: list[bytes] = []
    for i in range(300):
        if i == 150:
            rows.append(b"{not json\n")
        elif i in (40, 200):
            rows.append(b"\n")
        else:
            stamp = "2026-11-25 10:00:01" if i in (10, 250) else "2026-11-25T10:00:00.000001Z"
            seq: object = "x" if i in (20, 280) else i
            rows.append(lines_of(jl(seq=seq, timestamp=stamp, recipients=["u2"])))
    data = b"".join(rows)
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    name = str(path)

    def read() -> tuple[pl.DataFrame, dict[str, object], pl.DataFrame]:
        on_disk = collect([path])
        in_memory = collect([MemorySource(data, name=name)])
        inputs = on_disk.inputs.to_dict()
        assert in_memory.inputs.to_dict() | {"bytes": inputs["bytes"]} == inputs
        return on_disk.events.collect(), inputs, in_memory.events.collect()

    whole, whole_inputs, whole_mem = read()
    monkeypatch.setattr(_jsonl, "CHUNK_BYTES", 2_000)
    blocks, block_inputs, blocks_mem = read()

    assert_frame_equal(blocks, whole)
    assert_frame_equal(blocks_mem, whole_mem)
    assert block_inputs == whole_inputs
    assert (whole.height, whole_inputs["lines"], whole_inputs["malformed"]) == (297, 300, 1)
    assert whole_inputs["examples"] == [f"{name}:151: invalid JSON at character 1"]
    assert whole.get_column("line").to_list()[148:151] == [150, 152, 153]
    assert whole_inputs["warnings"] == [
        f"{name}: 2 timestamps have no time zone and were read as UTC; "
        "pass timezone=... (e.g. 'Europe/Berlin') if they are local times",
        f"{name}: 2 events have a non-integer seq; it was left empty",
    ]
    assert whole.schema == EVENT_SCHEMA


@pytest.mark.parametrize("returned", [False, True])
def test_a_files_blocks_are_its_whole_lines_read_into_reused_buffers(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, returned: bool
) -> None:
    monkeypatch.setattr(_jsonl, "CHUNK_BYTES", 64)
    # lines shorter, as long as, and longer than a block (200 bytes: read on to its end)
    data = b"".join(b"x" * n + b"\n" for n in (10, 70, 200, 5, 63, 64, 65, 1)) + b"no newline"
    path = tmp_path / "big.jsonl"
    path.write_bytes(data)
    spare: list[bytearray] = []
    kept: list[bytearray] = []
    blocks, buffers = [], set()
    for block in _jsonl._blocks(None, path, spare):
        blocks.append(bytes(block))
        buffers.add(id(block))
        # returned as read_jsonl does once the block is parsed, or kept (ids stay unique)
        (spare if returned else kept).append(block)  # type: ignore[arg-type]
    assert b"".join(blocks) == data
    assert all(b.endswith(b"\n") for b in blocks[:-1]) and blocks[-1].endswith(b"no newline")
    assert b"x" * 200 + b"\n" in blocks  # the long line whole, in a block of its own
    assert len(blocks) == 6  # each cut at its last newline, the rest carried into the next
    assert len(buffers) == (1 if returned else len(blocks))


class _CountedReads(io.RawIOBase):
    """An unbuffered file in memory that counts the reads it is asked for."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.calls = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        self.calls += 1
        return self._data.readinto(buffer)


def test_a_line_longer_than_a_block_is_read_a_block_at_a_time(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # an unbuffered file's readline reads one byte a call (review 10: 2.5M reads for a 4 MiB
    # line in 1 MiB blocks)
    monkeypatch.setattr(_jsonl, "CHUNK_BYTES", 64)
    data = b"a\n" + b"x" * 100_000 + b"\nb\nc\n"
    fh = _CountedReads(data)
    blocks = [bytes(b) for b in _jsonl._file_blocks(fh, [])]
    assert blocks == [b"a\n", b"x" * 100_000 + b"\n", b"b\nc\n"]
    assert fh.calls < 2 * 100_000 / 64 + 10


def test_a_spare_buffer_still_viewed_is_not_reused() -> None:
    held = bytearray(100)
    view = memoryview(held)
    got = _jsonl._buffer([held], 50)
    assert got is not held and len(got) == 50
    view.release()
    assert _jsonl._buffer([held], 50) is held and len(held) == 50


def test_many_bad_lines_cost_a_few_parses_not_a_bisection_each(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Python reprs between JSON events (a file detected as JSON lines by its "{"): each bad
    # line cost ~2*log2(block) polars parses (about 1 ms), 40k of them 50 s
    calls = []
    parse = _jsonl._parse

    def counted(data: bytes | Path, schema: pl.Schema) -> pl.DataFrame:
        calls.append(1)
        return parse(data, schema)

    monkeypatch.setattr(_jsonl, "_parse", counted)
    rows = []
    for i in range(2000):
        rows += [orjson.dumps(jl(seq=i)), repr(jl(seq=i)).encode()]
    rows[7] = b'{"stage": "CTRL", "action": "send", "event": "\\ud800", "timestamp": 1}'
    rows[9] = b"   "
    rows[11] = b"[1]"
    got = collect([MemorySource(b"\n".join(rows) + b"\n", name="f")])
    frame = got.events.collect()
    seqs = frame.get_column("seq").to_list()
    assert seqs == [0, 1, 2, 3, None, *range(4, 2000)]  # a lone surrogate polars reads (line 8)
    assert frame.get_column("line").to_list() == [1, 3, 5, 7, 8, *range(9, 4000, 2)]
    inputs = got.inputs
    assert (inputs.lines, inputs.events, inputs.malformed) == (4000, 2001, 1998)
    assert inputs.examples == [
        *(f"f:{n}: invalid JSON at character 1" for n in (2, 4, 6)),
        "f:12: not a JSON object",
        *(f"f:{n}: invalid JSON at character 1" for n in (14, 16, 18, 20, 22, 24)),
    ]
    assert len(calls) <= 2 + 10 + 1  # the block (twice: blank line), the examples, the good lines
