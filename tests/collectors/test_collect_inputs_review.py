"""Review C's defects in reading inputs: binary garbage ahead of log lines, logfmt/kv events
behind a prefix, many bad JSON lines, the order of examples, UTF-16 logs."""

from __future__ import annotations

import random
from pathlib import Path

import orjson
import pytest
from collectors_helpers import jl

from tracekit.collectors import Collected, MemorySource, collect


def line(**kw: object) -> bytes:
    return orjson.dumps(jl(**kw))


def counts(got: Collected) -> tuple[int, int, int, int]:
    i = got.inputs
    return (i.lines, i.events, i.malformed, i.ignored)


def garbage(n: int, *, newlines: bool, seed: int = 1) -> bytes:
    rng = random.Random(seed)
    allowed = [b for b in range(256) if newlines or b != 10]
    return bytes(rng.choice(allowed) for _ in range(n))


def test_events_after_more_than_64_kib_of_garbage_are_read(tmp_path: Path) -> None:
    p = tmp_path / "client-u1.jsonl"
    events = b"".join(line(seq=i) + b"\n" for i in range(1, 6))
    p.write_bytes(garbage(70_000, newlines=False) + b"\n" + events)
    got = collect([p])
    assert got.events.collect().get_column("seq").to_list() == [1, 2, 3, 4, 5]
    assert got.events.collect().get_column("line").to_list() == [2, 3, 4, 5, 6]
    assert counts(got) == (6, 5, 1, 0)
    assert got.inputs.examples == [f"{p}:1: binary data, not a log line"]
    assert got.inputs.warnings == [
        f"{p}: 1 lines of binary data ahead of the log lines (first: line 1); counted as "
        "malformed, the lines after them read"
    ]
    assert got.inputs.formats == {"jsonl": 1}


def test_many_garbage_lines_ahead_of_legacy_lines_are_malformed_not_ignored() -> None:
    junk = garbage(100_000, newlines=True, seed=7)
    junk_lines = junk.split(b"\n")
    nonblank = sum(1 for ln in junk_lines if ln.strip())
    legacy = b"".join(
        b"2026-11-25T10:00:0%d.000Z [CTRL] sendMessage: hi clientMsgId=c%d\n" % (i, i)
        for i in range(1, 4)
    )
    got = collect([MemorySource(junk + b"\n" + legacy, name="client-u1.log")])
    frame = got.events.collect()
    first = len(junk_lines) + 1
    assert frame.get_column("line").to_list() == [first, first + 1, first + 2]
    assert frame.get_column("action").to_list() == ["send"] * 3
    assert counts(got) == (len(junk_lines) + 3, 3, nonblank, 0)
    assert got.inputs.formats == {"legacy": 1}
    bad = [n for n, ln in enumerate(junk_lines, 1) if ln.strip()][:10]
    assert got.inputs.examples == [f"client-u1.log:{n}: binary data, not a log line" for n in bad]


def test_a_file_that_is_all_garbage_is_still_skipped_as_binary() -> None:
    junk = garbage(200_000, newlines=True, seed=3)
    got = collect([MemorySource(junk, name="core")])
    nonblank = sum(1 for ln in junk.split(b"\n") if ln.strip())
    assert counts(got) == (junk.count(b"\n") + 1, 0, 0, nonblank)
    assert got.inputs.warnings == [
        f"core: binary data, not a log; skipped (200000 bytes, {nonblank} lines)"
    ]


@pytest.mark.parametrize(
    "text",
    [
        # one line (review F #2: 20 MB of it was read as a log, 81,357 lines malformed)
        pytest.param(b"this is one clean text line\n", id="one line"),
        pytest.param(
            b"Copyright (c) 2026 Example Corp.\nAll rights reserved worldwide.\n", id="two"
        ),
        # three clean lines, then more binary than text: strings inside a binary file
        pytest.param(
            b"MDMP environment PATH=/usr/bin\nHOME=/home/someone/x\nLANG=en_US.UTF-8 (utf)\n"
            + garbage(5_000, newlines=True, seed=5),
            id="three, then binary",
        ),
    ],
)
def test_clean_text_lines_inside_a_binary_file_do_not_make_it_a_log(text: bytes) -> None:
    data = garbage(200_000, newlines=True, seed=3) + b"\n" + text
    got = collect([MemorySource(data, name="core")])
    nonblank = sum(1 for ln in data.split(b"\n") if ln.strip())
    assert counts(got) == (data.count(b"\n") + (not data.endswith(b"\n")), 0, 0, nonblank)
    assert got.inputs.warnings == [
        f"core: binary data, not a log; skipped ({len(data)} bytes, {nonblank} lines)"
    ]


def test_a_plain_text_log_after_garbage_is_read_from_its_first_line() -> None:
    # no trace event in it (a legacy log of untagged lines): its readable lines are the file
    junk = garbage(70_000, newlines=True, seed=7)
    junk_lines = junk.split(b"\n")
    text = b"".join(b"2026-11-25T10:00:0%d.000Z app started worker %d\n" % (i, i) for i in range(5))
    got = collect([MemorySource(junk + b"\n" + text, name="app.log")])
    nonblank = sum(1 for ln in junk_lines if ln.strip())
    assert counts(got) == (len(junk_lines) + 5, 0, nonblank, 5)
    assert got.inputs.formats == {"legacy": 1}


def test_the_log_in_a_big_binary_file_is_found_past_the_clean_line_search() -> None:
    # review F #3: the search is literal (bytes.find on the markers); its speed is measured in
    # docs/perf/ingest.md (session 6: 100 MB of random bytes 3.5 s -> 0.35 s), not here
    from tracekit.collectors import _collect

    blob = random.Random(11).randbytes(24 << 20)
    data = blob + b"\n" + line(seq=1) + b"\n"
    assert _collect._first_readable(data) == len(blob) + 1
    assert _collect._first_readable(blob) is None


def test_examples_are_the_first_malformed_lines_by_line_number() -> None:
    missing_stage = b'{"timestamp": "2026-11-25T10:00:00Z", "action": "send"}'
    data = b"\n".join([missing_stage] + [b"{broken"] * 12 + [line(seq=1)]) + b"\n"
    got = collect([MemorySource(data, name="f")])
    assert (got.inputs.malformed, got.inputs.events) == (13, 1)
    assert got.inputs.examples == ["f:1: missing required key 'stage'"] + [
        f"f:{n}: invalid JSON at character 1" for n in range(2, 11)
    ]


def test_examples_of_a_mixed_file_are_in_line_order() -> None:
    # the legacy lines are read apart from the JSON lines: their examples still interleave
    data = b"\n".join(
        [
            b'{"timestamp": "2026-11-25T10:00:00Z", "action": "send"}',
            b"[CTRL] sendMessage: no time yet",
            b'{"timestamp": "yesterday", "stage": "CTRL", "action": "send"}',
            b"2026-11-25T10:00:01.000Z [CTRL] sendMessage: hi",
        ]
    )
    got = collect([MemorySource(data, name="m.log")])
    assert got.inputs.examples == [
        "m.log:1: missing required key 'stage'",
        "m.log:2: no timestamp on the line nor on an event line before it",
        "m.log:3: unparseable timestamp yesterday",
    ]


@pytest.mark.parametrize(
    ("codec", "label"),
    [("utf-16-le", "UTF-16 LE"), ("utf-16-be", "UTF-16 BE"), ("utf-32-le", "UTF-32 LE")],
)
def test_utf16_logs_with_a_byte_order_mark_are_read(tmp_path: Path, codec: str, label: str) -> None:
    # PowerShell 5's '>' / Out-File: UTF-16 LE with a BOM and CRLF line ends
    p = tmp_path / "client-u1.jsonl"
    text = "\ufeff" + "".join(line(seq=i, event="café ✓").decode() + "\r\n" for i in range(1, 4))
    p.write_bytes(text.encode(codec))
    got = collect([p])
    frame = got.events.collect()
    assert frame.get_column("seq").to_list() == [1, 2, 3]
    assert frame.get_column("event").to_list() == ["café ✓"] * 3
    assert counts(got) == (3, 3, 0, 0)
    assert got.inputs.warnings == [f"{p}: {label} text (byte order mark); decoded to UTF-8"]


@pytest.mark.parametrize("bom", [b"\xff\xfe", b"\xfe\xff", b"\xff\xfe\x00\x00"])
def test_binary_data_starting_like_a_byte_order_mark_is_not_decoded_as_utf16(bom: bytes) -> None:
    # random code units decoded as UTF-16 are printable CJK "lines": the file was read as a
    # log, and its lines were counted in the decoded text (b"\xfe\xff\n\n": 1 line, not 2)
    junk = bom + garbage(20_000, newlines=True, seed=9)
    got = collect([MemorySource(junk, name="core")])
    nonblank = sum(1 for ln in junk.split(b"\n") if ln.strip())
    assert counts(got) == (junk.count(b"\n") + 1, 0, 0, nonblank)
    assert got.inputs.warnings == [
        f"core: binary data, not a log; skipped ({len(junk)} bytes, {nonblank} lines)"
    ]
    small = collect([MemorySource(b"\xfe\xff\n\n", name="tiny")])
    assert small.inputs.lines == 2


def test_detection_knows_the_legacy_readers_tags() -> None:
    # detection kept its own list of legacy tags, which lacked REST-FETCH
    import tomllib
    from importlib import resources

    from tracekit.collectors._kv import LEGACY_TAGS

    text = resources.files("tracekit.collectors").joinpath("legacy.toml").read_text("utf-8")
    assert list(LEGACY_TAGS) == tomllib.loads(text)["tags"]
    got = collect([MemorySource(b"[REST-FETCH] History loaded: conv=c1 messages=3\n", name="a")])
    assert got.inputs.formats == {"legacy": 1}
