"""Files that mix JSON events with other lines: JSON events after a plain startup banner,
behind a container runtime's prefix (CRI), wrapped by Docker's json-file driver, after a
pretty-printed JSON block. Their events are read with their own line numbers; JSON events
that cannot be read are never silently ignored (a warning counts them)."""

from __future__ import annotations

import json
from pathlib import Path

import orjson
import polars as pl
from collectors_helpers import T1, jl, ts

from tracekit.collectors import Collected, MemorySource, collect, detect_format
from tracekit.schema import derived_trace_id

#: the trace id linking gives u1's lines naming client id c1 (no trace id of their own)
U1_C1 = derived_trace_id("u1\x1fc1")


def line(**kw: object) -> str:
    return orjson.dumps(jl(**kw)).decode()


def counts(got: Collected) -> tuple[int, int, int, int, int]:
    i = got.inputs
    return (i.files, i.lines, i.events, i.ignored, i.malformed)


def test_json_events_after_a_plain_banner(tmp_path: Path) -> None:
    p = tmp_path / "client-u1.log"
    banner = [f"INFO:     startup step {i}" for i in range(30)]
    events = [line(seq=i) for i in range(100)]
    p.write_text("\n".join(banner + events) + "\n")
    got = collect([p])
    frame = got.events.collect()
    assert frame.get_column("line").to_list() == list(range(31, 131))
    assert frame.get_column("seq").to_list() == list(range(100))
    assert counts(got) == (1, 130, 100, 30, 0)
    assert got.inputs.formats == {"legacy": 1}
    assert got.inputs.warnings == [
        f"{p}: 100 lines are JSON objects among legacy text lines; read them as JSON lines"
    ]


def test_json_lines_interleaved_with_legacy_lines_keep_line_order() -> None:
    data = "\n".join(
        [
            '2026-11-25T10:00:00.100Z [CTRL] sendMessage: "hi" clientMsgId=c1',
            line(seq=1, timestamp="2026-11-25T10:00:00.200000Z"),
            "plain text",
            line(seq=2, timestamp="2026-11-25T10:00:00.300000Z"),
            "",
        ]
    )
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action", "seq").rows() == [
        (1, "CTRL", "send", None),
        (2, "CTRL", "send", 1),
        (4, "CTRL", "send", 2),
    ]
    assert counts(got) == (1, 4, 3, 1, 0)
    assert got.inputs.warnings == [
        "client-u1.log: 2 lines are JSON objects among legacy text lines; read them as JSON lines"
    ]


def test_structlog_json_behind_a_cri_prefix() -> None:
    # containerd / CRI-O (/var/log/pods/...): "<RFC3339Nano> stdout F <line>"
    evs = [line(seq=i) for i in range(5)]
    data = "".join(f"2026-11-25T10:00:0{i}.100000000Z stdout F {e}\n" for i, e in enumerate(evs))
    got = collect([MemorySource(data, name="cri.log")])
    frame = got.events.collect()
    assert frame.select("line", "seq", "trace_id").rows() == [(i + 1, i, T1) for i in range(5)]
    assert counts(got) == (1, 5, 5, 0, 0)
    assert got.inputs.formats == {"jsonl": 1}
    assert got.inputs.warnings == []


def test_cri_prefix_with_json_and_legacy_lines() -> None:
    data = (
        "2026-11-25T10:00:00.1Z stdout F " + line(seq=1) + "\n"
        "2026-11-25T10:00:00.2Z stderr F [CTRL] sendMessage: clientMsgId=c1\n"
        "2026-11-25T10:00:00.3Z stdout F INFO: plain\n"
    )
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.select("line", "seq").rows() == [(1, 1), (2, None)]
    assert frame.get_column("timestamp").to_list()[1] == ts("10:00:00.2")
    assert counts(got) == (1, 3, 2, 1, 0)
    assert got.inputs.warnings == [
        "client-u1.log: 1 lines are JSON objects among legacy text lines; read them as JSON lines"
    ]


def test_docker_json_file_log_is_unwrapped() -> None:
    evs = [line(seq=i) for i in range(3)]
    rows = [
        {"log": e + "\n", "stream": "stdout", "time": f"2026-11-25T10:00:0{i}.5Z"}
        for i, e in enumerate(evs)
    ]
    # a legacy line without its own time takes Docker's
    rows.append(
        {
            "log": "[CTRL] sendMessage: clientMsgId=c1\n",
            "stream": "stdout",
            "time": "2026-11-25T10:00:09.5Z",
        }
    )
    data = "".join(json.dumps(r) + "\n" for r in rows)
    got = collect([MemorySource(data, name="docker-json.log")])
    frame = got.events.collect()
    assert frame.select("line", "seq").rows() == [(1, 0), (2, 1), (3, 2), (4, None)]
    assert frame.get_column("timestamp").to_list()[3] == ts("10:00:09.5")
    assert counts(got) == (1, 4, 4, 0, 0)
    assert got.inputs.warnings == [
        "docker-json.log: 3 lines are JSON objects among legacy text lines; read them as JSON lines"
    ]


def test_pretty_printed_json_block_before_json_lines() -> None:
    cfg = json.dumps(
        {"service": "chat-client", "env": "staging", "features": {"ws": True}}, indent=2
    )
    n_cfg = cfg.count("\n") + 1
    evs = [line(seq=i) for i in range(50)]
    got = collect([MemorySource(cfg + "\n" + "\n".join(evs) + "\n", name="client-u1.log")])
    frame = got.events.collect()
    assert frame.get_column("line").to_list() == list(range(n_cfg + 1, n_cfg + 51))
    assert counts(got) == (1, n_cfg + 50, 50, n_cfg, 0)
    assert got.inputs.formats == {"jsonl": 1}
    assert got.inputs.warnings == [
        f"client-u1.log: lines 1-{n_cfg}: a pretty-printed JSON value ahead of the log lines; ignored"
    ]


def test_a_single_json_document_is_still_skipped() -> None:
    got = collect([MemorySource('{\n  "a": 1\n}\n', name="truth.json")])
    assert counts(got) == (1, 3, 0, 3, 0)
    assert got.inputs.warnings == [
        "truth.json: a JSON document, not JSON lines nor an OTLP export; skipped"
    ]


def test_json_events_behind_an_unknown_prefix_are_counted_in_a_warning() -> None:
    data = "".join(f"web-1  | {line(seq=i)}\n" for i in range(3)) + "INFO: ready\n"
    got = collect([MemorySource(data, name="compose.log")])
    assert counts(got) == (1, 4, 0, 4, 0)
    assert got.inputs.warnings == [
        "compose.log: 3 lines look like JSON events but were not read as such (first: line 1); "
        "a JSON event is read when it is the whole line or follows a container runtime's "
        "'<time> stdout F ' prefix"
    ]


def test_json_events_inside_a_string_field_are_counted_in_a_warning() -> None:
    # another shipper's wrapper: the event is text inside a JSON line, not the line
    rows = [{"message": line(seq=i), "host": "h1"} for i in range(4)]
    data = "".join(json.dumps(r) + "\n" for r in rows)
    got = collect([MemorySource(data, name="shipped.jsonl")])
    assert counts(got) == (1, 4, 0, 4, 0)
    assert got.inputs.warnings == [
        "shipped.jsonl: 4 lines look like JSON events but were not read as such (first: line 1); "
        "they hold the event as text inside a JSON string"
    ]


def test_a_pretty_json_block_of_over_200_lines_before_legacy_lines() -> None:
    # the blanked block filled the 200 lines detection looked at: the log read as JSON lines
    cfg = json.dumps({f"k{i:03}": i for i in range(260)}, indent=2)
    n_cfg = cfg.count("\n") + 1
    legacy = [
        f'2026-11-25T10:00:0{i}.100Z [CTRL] sendMessage: "hi" clientMsgId=c{i}' for i in range(3)
    ]
    data = cfg + "\n" + "\n".join(legacy) + "\nINFO: ready\n"
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows() == [
        (n_cfg + 1 + i, "CTRL", "send") for i in range(3)
    ]
    assert counts(got) == (1, n_cfg + 4, 3, n_cfg + 1, 0)
    assert got.inputs.formats == {"legacy": 1}
    assert got.inputs.warnings == [
        f"client-u1.log: lines 1-{n_cfg}: a pretty-printed JSON value ahead of the log lines; ignored"
    ]


def test_detect_format_skips_any_number_of_blank_lines() -> None:
    legacy = b'2026-11-25T10:00:00.100Z [CTRL] sendMessage: "hi" clientMsgId=c1\n'
    assert detect_format(b"\n" * 300 + legacy) == "legacy"
    assert detect_format(b"  \n\t\n" * 150 + line(seq=1).encode() + b"\n") == "jsonl"
    assert detect_format(b"\n\n \n") == "jsonl"


def test_json_lines_with_one_legacy_banner_keep_their_numbers_and_reasons() -> None:
    # read apart from the legacy line (on the JSON-lines fast path): the numbers of the events
    # and of the malformed examples are the file's
    rows = [line(seq=i, timestamp=f"2026-11-25T10:00:01.{i:06}Z") for i in range(6)]
    rows[3] = '{"stage": "CTRL", "action": }'
    rows[4] = line(seq=4, timestamp="not a time")
    data = "2026-11-25T10:00:00Z [WS] server started on :8080\n" + "\n".join(rows) + "\n"
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.select("line", "seq").rows() == [(2, 0), (3, 1), (4, 2), (7, 5)]
    assert counts(got) == (1, 7, 4, 1, 2)
    assert got.inputs.examples[0].startswith("client-u1.log:5: invalid JSON")
    assert got.inputs.examples[1] == "client-u1.log:6: unparseable timestamp not a time"


def test_mixed_lines_with_crlf_blank_lines_and_a_unit_separator() -> None:
    for sep in ("", "\x1f"):
        data = (
            f"INFO: start{sep}\r\n"
            "\r\n"
            "2026-11-25T10:00:00.1Z stdout F  " + line(seq=1) + " \t\r\n"
            '2026-11-25T10:00:00.2Z [CTRL] sendMessage: "hi" clientMsgId=c1\r\n'
            "  " + line(seq=2) + "\r\n"
        )
        got = collect([MemorySource(data, name="client-u1.log")])
        frame = got.events.collect()
        assert frame.select("line", "seq").rows() == [(3, 1), (4, None), (5, 2)], sep
        assert counts(got) == (1, 5, 3, 1, 0)


def test_invalid_utf8_in_a_mixed_file_is_accounted_as_in_either_reader() -> None:
    data = (
        b"INFO: caf\xe9 opened\n"
        + line(seq=1).encode()
        + b"\n"
        + line(seq=2).encode().replace(b'"CTRL send"', b'"CTRL \xff"')
        + b"\n"
        + '2026-11-25T10:00:00.2Z [CTRL] sendMessage: "h\u00e9" clientMsgId=c1\n'.encode()
    )
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.select("line", "seq").rows() == [(2, 1), (4, None)]
    assert counts(got) == (1, 4, 2, 1, 1)
    assert got.inputs.examples == ["client-u1.log:3: invalid UTF-8"]
    assert got.inputs.warnings == [
        "client-u1.log: invalid UTF-8 bytes were replaced by U+FFFD; those lines are kept",
        "client-u1.log: 2 lines are JSON objects among legacy text lines; read them as JSON lines",
    ]


def test_only_the_first_open_brace_of_a_line_can_start_its_object() -> None:
    # a '{"' inside what would be the CRI time: not a prefix, so not a JSON line
    data = (
        '2026-11-25T{"x"} stdout F ' + line(seq=1) + "\n"
        "2026-11-25T10:00:00.1Z stdout F " + line(seq=2) + "\n"
    )
    got = collect([MemorySource(data, name="client-u1.log")])
    assert got.events.collect().select("line", "seq").rows() == [(2, 2)]
    assert counts(got) == (1, 2, 1, 1, 0)
    assert got.inputs.warnings[-1] == (
        "client-u1.log: 1 lines look like JSON events but were not read as such (first: line 1); "
        "a JSON event is read when it is the whole line or follows a container runtime's "
        "'<time> stdout F ' prefix"
    )


def test_legacy_payloads_with_stage_keys_are_counted_per_line() -> None:
    # '{"' after '=' is a payload, not a JSON line; a "stage" key only counts when its first
    # mention on the line is a key
    data = (
        '2026-11-25T10:00:00.1Z [CTRL] sendMessage: "hi" clientMsgId=c1 meta={"stage":"x"}\n'
        'INFO: payload={"stage": "REST", "action": "persist"}\n'
        'INFO: "stage" is a word here, "stage": not counted\n'
        'INFO: payload={"k": 1}\n'
    )
    got = collect([MemorySource(data, name="client-u1.log")])
    assert counts(got) == (1, 4, 1, 3, 0)
    assert got.inputs.warnings == [
        "client-u1.log: 1 lines look like JSON events but were not read as such (first: line 2); "
        "a JSON event is read when it is the whole line or follows a container runtime's "
        "'<time> stdout F ' prefix"
    ]


def test_legacy_lines_far_down_a_json_lines_file_are_read_not_malformed() -> None:
    # Detection sees 60 JSON lines first; the legacy lines after them used to be "invalid JSON"
    # (counted, but their events lost).
    events = [line(seq=i, timestamp="2026-11-25T10:00:00.100000Z") for i in range(60)]
    tail = [
        "2026-11-25T10:00:01.000Z [CTRL] sendMessage: clientMsgId=tmp-9",
        "not a log line",
    ]
    data = "\n".join(events + tail) + "\n"
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.height == 61
    assert frame.filter(pl.col("line") == 61).select("stage", "action").rows() == [("CTRL", "send")]
    assert counts(got) == (1, 62, 61, 1, 0)
    assert got.inputs.formats == {"legacy": 1}


def _cri(time: str, stream: str, tag: str, text: str) -> str:
    return f"2026-11-25T{time}000000Z {stream} {tag} {text}\n"


def test_cri_partial_lines_are_joined_per_stream() -> None:
    # CRI splits a long line into P records and a last F record of the same stream; the
    # other stream's records may come in between. Each fragment was read as a line of its own.
    ev = line(seq=1, trace_id=T1, conv_id="c9")
    a, b = len(ev) // 3, 2 * len(ev) // 3
    data = (
        _cri("10:00:00.100", "stdout", "P", ev[:a])
        + _cri("10:00:00.150", "stderr", "F", "[CTRL] sendMessage: clientMsgId=c1")
        + _cri("10:00:00.100", "stdout", "P", ev[a:b])
        + _cri("10:00:00.100", "stdout", "F", ev[b:])
        + _cri("10:00:00.200", "stderr", "P", "[REST] Sending mess")
        + _cri("10:00:00.200", "stderr", "F", "age: clientMsgId=c1 conversationId=c7")
        + _cri("10:00:00.300", "stdout", "F", "INFO: plain")
    )
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action", "trace_id", "conv_id", "seq").rows() == [
        (1, "CTRL", "send", T1, "c9", 1),
        (2, "CTRL", "send", U1_C1, None, None),
        (5, "REST", "request", U1_C1, "c7", None),
    ]
    assert frame.get_column("timestamp").to_list() == [
        ts("10:00:00"),
        ts("10:00:00.15"),
        ts("10:00:00.2"),
    ]
    assert frame.get_column("event").to_list()[2] == (
        "[REST] Sending message: clientMsgId=c1 conversationId=c7"
    )
    assert counts(got) == (1, 7, 3, 1, 0)
    assert got.inputs.warnings == [
        "client-u1.log: 1 lines are JSON objects among legacy text lines; read them as JSON lines"
    ]


def test_a_cri_partial_line_without_its_final_record_is_read_with_a_warning() -> None:
    data = (
        _cri("10:00:00.100", "stdout", "F", "[CTRL] sendMessage: clientMsgId=c1")
        + _cri("10:00:00.200", "stdout", "P", "[REST] Sending message: client")
        + _cri("10:00:00.200", "stdout", "P", "MsgId=c2")
    ).removesuffix("\n")
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action", "event").rows() == [
        (1, "CTRL", "send", "[CTRL] sendMessage: clientMsgId=c1"),
        (2, "REST", "request", "[REST] Sending message: clientMsgId=c2"),
    ]
    assert counts(got) == (1, 3, 2, 0, 0)
    assert got.inputs.warnings == [
        "client-u1.log: lines 2-3: a container runtime's partial line (P records) has no final "
        "(F) record at the end of the file; read as one line"
    ]


def test_lines_without_partial_cri_records_are_left_as_they_are() -> None:
    from tracekit.collectors._text import join_partials

    cri = [_cri("10:00:00.100", "stdout", "F", "[CTRL] sendMessage: P x").strip()] * 3
    # a P record's look-alike in a log that is no CRI log, and in a CRI record's text
    legacy = ["2026-11-25T10:00:00Z [CTRL] said: 2026-11-25T10:00:00Z stdout P x"] * 3
    text = [cri[0] + " 2026-11-25T10:00:00Z stdout P x"]
    for lines in (cri, legacy, text):
        series = pl.Series("raw", lines)
        out, notes = join_partials(series, "x.log")
        assert out is series
        assert notes == []


def _docker(log: str, time: str, stream: str = "stdout") -> str:
    return json.dumps({"log": log, "stream": stream, "time": f"2026-11-25T{time}Z"}) + "\n"


def test_docker_json_file_entries_split_at_16_kib_are_joined() -> None:
    # Docker's json-file driver cuts a line every 16 KiB; only the last entry's log ends
    # with "\n". A JSON event over 16 KiB came out as three malformed fragments.
    big = line(seq=7, trace_id=T1, conv_id="c9", note="x" * 40_000)
    assert len(big) > 2 * 16384
    pieces = [big[i : i + 16384] for i in range(0, len(big), 16384)]
    data = (
        _docker(line(seq=6) + "\n", "10:00:00.5")
        + _docker(pieces[0], "10:00:01.5")
        + _docker("[CTRL] sendMessage: clientMsgId=c1\n", "10:00:01.6", "stderr")
        + "".join(_docker(p, "10:00:01.5") for p in pieces[1:-1])
        + _docker(pieces[-1] + "\n", "10:00:01.5")
        + _docker(line(seq=8) + "\n", "10:00:02.5")
    )
    got = collect([MemorySource(data, name="client-u1.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action", "trace_id", "conv_id", "seq").rows() == [
        (1, "CTRL", "send", T1, None, 6),
        (2, "CTRL", "send", T1, "c9", 7),
        (3, "CTRL", "send", U1_C1, None, None),
        (6, "CTRL", "send", T1, None, 8),
    ]
    assert counts(got) == (1, 6, 4, 0, 0)
    assert got.inputs.warnings == [
        "client-u1.log: 3 lines are JSON objects among legacy text lines; read them as JSON lines"
    ]


def test_a_docker_entry_split_without_its_last_part_is_read_with_a_warning() -> None:
    data = _docker("[CTRL] sendMessage: clientMsgId=c1\n", "10:00:00.5") + _docker(
        "[REST] Sending message: clientMsgId=c2", "10:00:01.5"
    )
    got = collect([MemorySource(data, name="client-u1.log")])
    assert got.events.collect().select("line", "stage", "action").rows() == [
        (1, "CTRL", "send"),
        (2, "REST", "request"),
    ]
    assert counts(got) == (1, 2, 2, 0, 0)
    assert got.inputs.warnings == [
        "client-u1.log: lines 2-2: a container runtime's partial line (P records) has no "
        "final (F) record at the end of the file; read as one line"
    ]
