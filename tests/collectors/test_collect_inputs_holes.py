"""A log that starts with a run of NUL bytes (logrotate copytruncate while the writer keeps
its offset leaves a sparse hole): the run is skipped with a warning that counts its bytes,
the lines after it are read with their true numbers."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from collectors_helpers import jl

from tracekit.collectors import collect

EVENTS = b"".join(orjson.dumps(jl(seq=i)) + b"\n" for i in range(10))
LEGACY = b"".join(
    b"2026-11-25T10:00:0%d.000Z [CTRL] sendMessage: clientMsgId=c%d\n" % (i, i) for i in range(10)
)


@pytest.mark.parametrize(
    ("name", "body"),
    [("client-u1.jsonl", EVENTS), ("client-u2.log", LEGACY)],
    ids=["jsonl", "legacy"],
)
def test_leading_nul_hole_is_skipped_and_counted(tmp_path: Path, name: str, body: bytes) -> None:
    p = tmp_path / name
    p.write_bytes(b"\x00" * 100_000 + body)
    got = collect([p])
    frame = got.events.collect()
    assert frame.get_column("line").to_list() == list(range(1, 11))
    i = got.inputs
    assert (i.files, i.lines, i.events, i.ignored, i.malformed, i.bytes) == (
        1,
        10,
        10,
        0,
        0,
        100_000 + len(body),
    )
    assert i.warnings == [
        f"{p}: starts with 100000 NUL bytes (a hole left by log rotation, e.g. copytruncate); "
        "skipped them"
    ]


def test_nul_hole_ending_in_a_newline_keeps_line_numbers(tmp_path: Path) -> None:
    p = tmp_path / "app.log"
    p.write_bytes(b"\x00" * 70_000 + b"\n" + EVENTS)
    got = collect([p])
    assert got.events.collect().get_column("line").to_list() == list(range(2, 12))
    i = got.inputs
    assert (i.lines, i.events, i.ignored, i.malformed) == (11, 10, 1, 0)  # line 1: NULs only
    assert i.warnings == [
        f"{p}: starts with 70000 NUL bytes (a hole left by log rotation, e.g. copytruncate); "
        "skipped them"
    ]


def test_only_nul_bytes(tmp_path: Path) -> None:
    p = tmp_path / "app.log"
    p.write_bytes(b"\x00" * 5000)
    i = collect([p]).inputs
    assert (i.lines, i.events, i.ignored, i.malformed) == (1, 0, 1, 0)
    assert i.warnings == [
        f"{p}: starts with 5000 NUL bytes (a hole left by log rotation, e.g. copytruncate); "
        "skipped them",
        f"{p}: empty, no events",
    ]
