"""User-defined TOML formats (regex and JSON field mapping) and their errors."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from collectors_helpers import T1, event, ts

from tracekit.collectors import MemorySource, collect, load_format
from tracekit.collectors._formats import FormatError

ACME = """
name = "acme"
line_regex = '^(?P<timestamp>\\S+ \\S+) (?P<level>\\w+) (?P<tag>[A-Z]+) (?P<msg>.*)$'
timestamp_format = "%d/%m/%Y %H:%M:%S%.f"
timezone = "Europe/Berlin"
actor_from_source = '^acme-(?P<actor>\\w+)'

[aliases]
SEND = "CTRL.send"
SHOWN = "CTRL.add"

[[rules]]
tag = "NET"
match = '^POST /messages'
event = "REST.request"

[fields]
client_id = 'cid=([\\w-]+)'
msg_id = 'mid=(\\w+)'
"""


def test_regex_format(tmp_path: Path) -> None:
    fmt_path = tmp_path / "acme.toml"
    fmt_path.write_text(ACME)
    log = tmp_path / "acme-u1.log"
    log.write_text(
        "25/11/2026 11:00:00.250 INFO SEND cid=3f2b8c1e-5d4a-4e8f-9a7b-1c2d3e4f5a6b\n"
        "25/11/2026 11:00:00.300 INFO NET POST /messages cid=3f2b8c1e-5d4a-4e8f-9a7b-1c2d3e4f5a6b\n"
        "25/11/2026 11:00:00.400 INFO NET GET /health\n"
        "25/11/2026 11:00:00.500 INFO SHOWN mid=m1 cid=3f2b8c1e-5d4a-4e8f-9a7b-1c2d3e4f5a6b\n"
        "garbage\n"
    )
    got = collect([log], formats=[fmt_path])
    frame = got.events.collect()
    assert frame.to_dicts()[0] == event(
        timestamp=ts("10:00:00.25"),
        stage="CTRL",
        action="send",
        event="cid=3f2b8c1e-5d4a-4e8f-9a7b-1c2d3e4f5a6b",
        trace_id=T1,
        actor="u1",
        source="acme-u1",
        level="INFO",
        file=str(log),
        line=1,
    )
    assert frame.select("stage", "action", "msg_id", "trace_id").rows()[1:] == [
        ("REST", "request", None, T1),
        ("CTRL", "add", "m1", T1),
    ]
    assert got.inputs.ignored == 2  # NET GET (no rule) and the garbage line
    assert got.inputs.formats == {"acme": 1}


def test_json_field_mapping(tmp_path: Path) -> None:
    fmt_path = tmp_path / "j.toml"
    fmt_path.write_text(
        'name = "otherjson"\nkind = "json"\n[json_fields]\n'
        'timestamp = "ts"\nstage = "component"\naction = "op"\ntrace_id = "tid"\n'
    )
    data = orjson.dumps({"ts": "2026-11-25T10:00:00Z", "component": "REPO", "op": "add", "tid": T1})
    got = collect([MemorySource(data + b"\n", name="x.jsonl")], formats=[fmt_path])
    assert got.events.collect().select("timestamp", "stage", "action", "trace_id").rows() == [
        (ts("10:00:00"), "REPO", "add", T1)
    ]


def test_format_detection_among_several(tmp_path: Path) -> None:
    fmt_path = tmp_path / "acme.toml"
    fmt_path.write_text(ACME)
    acme = MemorySource(["25/11/2026 11:00:00.250 INFO SEND cid=x"], name="acme-u1.log")
    js = MemorySource([{"timestamp": "2026-11-25T10:00:00Z", "stage": "CTRL", "action": "send"}])
    got = collect([acme, js], formats=[fmt_path, "jsonl"])
    assert got.inputs.formats == {"acme": 1, "jsonl": 1}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("name = 'x'\nline_regex = '(?P<tag>['", "invalid regex"),
        ("name = 'x'\nline_regex = '(?P<msg>.*)'", "needs a named group 'tag' or 'stage'"),
        ("line_regex = '(?P<tag>.*)'", "'name' (a non-empty string) is required"),
        ("name = 'x'\nline_regex = '(?P<tag>.*)'\ncolour = 1", "unknown key(s) colour"),
        ("name = 'x'\nline_regex = '(?P<tag>.*)'\n[[rules]]\nevent = 'x'", "STAGE.action"),
        ("name = [", "invalid TOML"),
    ],
    ids=["bad-regex", "no-tag-group", "no-name", "unknown-key", "bad-rule", "bad-toml"],
)
def test_format_errors(tmp_path: Path, text: str, message: str) -> None:
    p = tmp_path / "bad.toml"
    p.write_text(text)
    with pytest.raises(FormatError, match=message.replace("(", r"\(").replace(")", r"\)")):
        load_format(p)


def test_missing_format_file(tmp_path: Path) -> None:
    with pytest.raises(FormatError, match="format file not found"):
        collect([], formats=[tmp_path / "nope.toml"])


def test_a_nested_otlp_key_does_not_make_json_lines_an_otlp_export() -> None:
    from collectors_helpers import jl

    evs = [orjson.dumps(jl(seq=i)) for i in range(5)]
    app = {"timestamp": "2026-11-25T10:00:02.5Z", "event": "export failed", "level": "warning"}
    evs.insert(2, orjson.dumps({**app, "payload": {"resourceSpans": []}}))
    got = collect([MemorySource(b"\n".join(evs) + b"\n", name="client-u1.jsonl")])
    frame = got.events.collect()
    assert frame.select("line", "seq").rows() == [(1, 0), (2, 1), (4, 2), (5, 3), (6, 4)]
    i = got.inputs
    assert (i.lines, i.events, i.ignored, i.malformed) == (6, 5, 1, 0)
    assert i.formats == {"jsonl": 1}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"resourceSpans": [{"scopeSpans": []}]}\n', "otlp"),
        (b'{"x": 1, "resourceLogs": []}\n', "otlp"),  # a top-level key, not the first
        (b'{\n  "resourceSpans": [\n    {}\n  ]\n}\n', "otlp"),  # pretty-printed
        (b'{"event": "x", "payload": {"resourceSpans": []}}\n', "jsonl"),
        (b'{"stage": "CTRL", "action": "send"}\n{"a": {"resourceLogs": 1}}\n', "jsonl"),
        (b'{\n  "config": {"resourceSpans": []}\n}\n', "document"),
    ],
    ids=["export", "not-first-key", "pretty", "nested", "nested-later", "nested-document"],
)
def test_otlp_detected_by_the_top_level_keys(data: bytes, expected: str) -> None:
    from tracekit.collectors import detect_format

    assert detect_format(data) == expected
