"""Review 8: structlog's ``KeyValueRenderer`` quotes every string value, ``stage='REST'``
included: that is a ``stage=`` pair (the quoted values are cut out of the stage test, their
opening quote kept). A prefix glued to the first pair (``INFO:event=...``) is cut before the
tag test as before the stage test. A rerouting warning says "not read as events", whichever
way the reader refused a line."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import structlog
from collectors_helpers import at, counts, write_log

from tracekit.collectors import collect, detect_format
from tracekit.collectors._kv import legacy_line, stage_pair_line

_KVR = structlog.processors.KeyValueRenderer(key_order=["timestamp", "event"])


def _kvr(i: int, event: str) -> str:
    return _KVR(
        None,
        "info",
        {
            "timestamp": f"2026-01-01T10:00:0{i}Z",
            "event": event,
            "stage": "REST",
            "action": "request",
            "msg_id": f"m{i}",
        },
    )


def _read(
    tmp_path: Path, lines: list[str], **kw: object
) -> tuple[list[object], tuple[object, ...]]:
    p = write_log(tmp_path, lines)
    got = collect(str(p), **kw)  # type: ignore[arg-type]
    rows = got.events.collect().select("line", "timestamp", "stage", "action", "msg_id").rows()
    return rows, counts(got)


def _events(n: int) -> list[tuple[object, ...]]:
    return [(i + 1, at(i), "REST", "request", f"m{i}") for i in range(n)]


def test_keyvaluerenderer_lines_behind_a_prefix_are_kv_events(tmp_path: Path) -> None:
    lines = [f"2026-01-01 10:00:0{i},000 INFO app: " + _kvr(i, "sending") for i in range(3)]
    assert lines[0].endswith("stage='REST' action='request' msg_id='m0'")
    p = write_log(tmp_path, lines)
    assert detect_format(p.read_bytes()) == "kv"
    for kw in ({}, {"formats": ["kv"]}):
        rows, account = _read(tmp_path, lines, **kw)
        assert rows == _events(3), kw
        assert account == (3, 3, 0, 0, {"kv": 1}, []), kw


def test_keyvaluerenderer_lines_quoting_a_tag_are_kv_events(tmp_path: Path) -> None:
    lines = [_kvr(i, "[REST] Sending message") for i in range(3)]
    for kw in ({}, {"formats": ["kv"]}):
        rows, account = _read(tmp_path, lines, **kw)
        assert rows == _events(3), kw
        assert account == (3, 3, 0, 0, {"kv": 1}, []), kw


def test_a_stage_inside_a_quoted_value_is_still_no_pair() -> None:
    frame = pl.DataFrame(
        {
            "raw": [
                "stage='REST' action='request'",
                'time=2026-01-01T00:00:00Z msg="[REST] Sending message: stage=send"',
                "INFO:stage='REST' action=x",
                "tags=['stage=x'] action=y",
                "stage=[REST] action=y",
            ]
        }
    )
    got = frame.select(stage_pair_line(pl.col("raw"))).to_series().to_list()
    assert got == [True, False, True, False, True]


def test_a_tag_in_a_glued_first_pair_is_inside_the_pair(tmp_path: Path) -> None:
    glued = [
        f"2026-01-01T10:00:0{i}Z INFO:event='[REST] Sending message' stage=REST "
        f"action=request msg_id=m{i}"
        for i in range(3)
    ]
    spaced = [line.replace("INFO:event", "INFO: event") for line in glued]
    for lines in (glued, spaced):
        rows, account = _read(tmp_path, lines)
        assert rows == _events(3), lines[0]
        assert account == (3, 3, 0, 0, {"kv": 1}, []), lines[0]


def test_a_tag_in_a_glued_first_list_value_is_inside_the_pair(tmp_path: Path) -> None:
    lines = [
        f"INFO:tags=['[REST]'] stage=REST action=request ts=2026-01-01T10:00:0{i}Z msg_id=m{i}"
        for i in range(3)
    ]
    rows, account = _read(tmp_path, lines)
    assert rows == _events(3)
    assert account == (3, 3, 0, 0, {"kv": 1}, [])


def test_a_tag_in_a_prefix_still_makes_a_legacy_line() -> None:
    frame = pl.DataFrame(
        {
            "raw": [
                "[REST] id=m1 stage=REST action=x",  # the tag is the prefix: legacy
                "INFO:event='[REST] x' stage=REST action=y",  # quoted by a pair: kv
                "INFO:event=x [REST] stage=REST action=y",  # outside the pairs: legacy
            ]
        }
    )
    got = frame.select(legacy_line(pl.col("raw"))).to_series().to_list()
    assert got == [True, False, True]


def test_the_legacy_rerouting_warning_does_not_call_a_malformed_line_ignored(
    tmp_path: Path,
) -> None:
    kv = [f"ts=2026-01-01T10:00:0{i}Z stage=WS action=broadcast msg_id=k{i}" for i in range(3)]
    p = write_log(tmp_path, [*kv, "[REST] Sending message: clientMsgId=c1"])
    got = collect(str(p))
    i = got.inputs
    assert (i.lines, i.events, i.malformed, i.ignored) == (4, 3, 1, 0)
    assert i.warnings == [
        f"{p}: 1 lines are legacy tagged lines among kv lines; read them with the legacy "
        "reader (1 of them not read as events, first: line 4)"
    ]


def _long_after_blank(tmp_path: Path, head: str) -> tuple[object, ...]:
    """A file whose first line with text is longer than detection's 64 KiB sample."""
    lines = [f"2026-11-25T10:00:0{i}Z [REST] Sending message: clientMsgId=u{i}" for i in range(4)]
    lines[0] += " note=" + "x" * 70_000
    p = tmp_path / "app.log"
    p.write_bytes(head.encode() + ("\n".join(lines) + "\n").encode())
    got = collect(str(p))
    assert got.events.collect().get_column("msg_id").to_list() == [None] * 4
    assert got.events.collect().get_column("line").to_list() == [
        n + head.count("\n") for n in (1, 2, 3, 4)
    ]
    i = got.inputs
    return (i.events, i.malformed, i.formats)


def test_a_long_first_line_behind_blank_lines_is_judged_whole(tmp_path: Path) -> None:
    for head in ("\n", "\r\n", "\n\n  \n", '{\n  "config": 1\n}\n'):
        assert _long_after_blank(tmp_path, head) == (4, 0, {"legacy": 1}), repr(head)


def test_a_long_first_kv_line_behind_a_blank_line_is_judged_whole(tmp_path: Path) -> None:
    lines = [f"ts=2026-01-01T10:00:0{i}Z stage=REST action=request msg_id=m{i}" for i in range(3)]
    lines[0] += " note=" + "x" * 70_000
    p = tmp_path / "app.log"
    p.write_text("\n" + "\n".join(lines) + "\n")
    got = collect(str(p))
    assert got.events.collect().select("line", "msg_id").rows() == [(2, "m0"), (3, "m1"), (4, "m2")]
    assert (got.inputs.events, got.inputs.malformed, got.inputs.formats) == (3, 0, {"kv": 1})


def test_the_legacy_reader_reads_a_glued_first_pair_as_a_pair(tmp_path: Path) -> None:
    """Review 8b: the reader's tag and quoted-text scans space a glued prefix as the rule does."""
    lines = [
        '2026-01-01T10:00:00Z INFO:app:msg="[REST] Sending message: clientMsgId=c1" level=info',
        '2026-01-01T10:00:01Z INFO: app: msg="[REST] Sending message: clientMsgId=c2" level=info',
        "2026-01-01T10:00:02Z INFO:app:note='[WS] hi' [REST] Sending message: clientMsgId=c3",
        "2026-01-01T10:00:03Z INFO: app: note='[WS] hi' [REST] Sending message: clientMsgId=c4",
    ]
    p = write_log(tmp_path, lines)
    got = collect(str(p))
    rows = got.events.collect().select("line", "timestamp", "stage", "action", "event").rows()
    assert rows == [
        (n, at(n - 1), "REST", "request", f"[REST] Sending message: clientMsgId=c{n}")
        for n in (1, 2, 3, 4)
    ]
    assert counts(got) == (4, 4, 0, 0, {"legacy": 1}, [])


def test_a_json_event_in_a_source_of_another_format_names_that_format() -> None:
    from tracekit.collectors import MemorySource

    lines = [
        "2026-01-01T10:00:00Z [REST] Sending message: clientMsgId=c1",
        '{"timestamp": "2026-01-01T10:00:01Z", "stage": "REST", "action": "send"}',
    ]
    got = collect([MemorySource(lines, name="app.log", format="legacy")])
    assert got.events.collect().get_column("line").to_list() == [1]
    assert [w for w in got.inputs.warnings if "JSON" in w] == [
        "app.log: 1 lines look like JSON events but were not read as such (first: line 2); "
        "the source is read as legacy only"
    ]


def test_the_rerouting_warning_counts_the_kv_events_given_back(tmp_path: Path) -> None:
    kv = "stage=WS action=broadcast msg_id=m1 ts=2026-01-01T10:00:01Z"
    back = "stage=REST action=request note=x [REST] hi ts=2026-01-01T10:00:02Z"
    p = write_log(tmp_path, [kv, back, back, kv])
    got = collect(str(p))
    assert got.events.collect().get_column("line").to_list() == [1, 2, 3, 4]
    assert got.inputs.warnings == [
        f"{p}: 2 lines are legacy tagged lines among kv lines; read them with the legacy "
        "reader (2 of them key=value events it gave back to the kv reader)",
    ]


def test_a_kv_file_says_once_what_became_of_the_kv_events_given_back(tmp_path: Path) -> None:
    """Review 8c: one warning, no "among legacy lines" about a kv file."""
    lines = [
        "ts=2026-01-01T10:00:00Z stage=WS action=broadcast msg_id=k0",
        "ts=2026-01-01T10:00:01Z stage=WS action=broadcast msg_id=k1",
        "ts=2026-01-01T10:00:02Z stage=REST action=send msg_id=k2 note=x [REST] hi",
        "ts=2026-01-01T10:00:03Z stage=REST note=x [CTRL] hi",
    ]
    p = write_log(tmp_path, lines)
    got = collect(str(p))
    assert got.events.collect().get_column("line").to_list() == [1, 2, 3]
    assert counts(got) == (
        4,
        3,
        1,
        0,
        {"kv": 1, "legacy": 1},
        [
            f"{p}: 2 lines are legacy tagged lines among kv lines; read them with the legacy "
            "reader (2 of them key=value events it gave back to the kv reader; 1 of those not "
            "read as events, first: line 4)"
        ],
    )


def test_the_rerouting_warning_comes_before_what_the_kv_reader_says(tmp_path: Path) -> None:
    """Review 8d: the warning that introduces the given-back lines stays first."""
    lines = [
        "ts=2026-01-01T10:00:00Z stage=WS action=broadcast msg_id=k0",
        "ts=2026-01-01T10:00:02Z stage=REST action=send msg_id=k2 trace_id=zz note=x [REST] hi",
    ]
    p = write_log(tmp_path, lines)
    got = collect(str(p))
    assert got.events.collect().get_column("line").to_list() == [1, 2]
    assert got.inputs.warnings == [
        f"{p}: 1 lines are legacy tagged lines among kv lines; read them with the legacy "
        "reader (1 of them key=value events it gave back to the kv reader)",
        f"{p}: 1 events have an invalid trace_id; it was left empty",
    ]
