"""``collect(columns=...)``: a projection of the event table that keeps the full account.

The analysis reads 15 of the table's 17 columns (``INPUT_COLUMNS``; ``level`` since session
20: a hop's line at an error level is a failed attempt). Left out, ``event`` and ``span_id``
are never kept: ``span_id`` not even parsed by the JSON reader (no check reads it), ``event``
dropped block by block (its absence is counted in ``missing``).
"""

from __future__ import annotations

import os
import threading
from pathlib import Path

import orjson
import polars as pl
import pytest
from collectors_helpers import SAMPLES, T1, T2, jl, write_log
from polars.testing import assert_frame_equal

from tracekit.analyzers import INPUT_COLUMNS, analyze
from tracekit.collectors import Collected, MemorySource, _jsonl, collect
from tracekit.errors import SchemaError
from tracekit.table import EVENT_SCHEMA

LEFT_OUT = ("event", "span_id")


def lines_of(*objs: object) -> bytes:
    return b"".join((o if isinstance(o, bytes) else orjson.dumps(o)) + b"\n" for o in objs)


def both(paths: list[object], **kw: object) -> tuple[pl.DataFrame, pl.DataFrame]:
    """The full table and the projected one; their accounts must be equal."""
    full = collect(paths, **kw)  # type: ignore[arg-type]
    part = collect(paths, columns=INPUT_COLUMNS, **kw)  # type: ignore[arg-type]
    assert part.inputs.to_dict() == full.inputs.to_dict()
    return full.events.collect(), part.events.collect()


def test_the_analysis_columns_leave_out_exactly_event_and_span_id() -> None:
    assert [c for c in EVENT_SCHEMA if c not in INPUT_COLUMNS] == list(LEFT_OUT)
    assert list(INPUT_COLUMNS) == [c for c in EVENT_SCHEMA if c in INPUT_COLUMNS]


@pytest.mark.parametrize("sample", ["jsonl", "legacy", "otlp", "demo-race-bug", "demo-faults"])
def test_a_projection_is_the_full_table_s_columns_with_the_same_account(sample: str) -> None:
    full, part = both([SAMPLES / sample])
    assert part.height > 0
    assert part.schema == pl.Schema({c: EVENT_SCHEMA[c] for c in INPUT_COLUMNS})
    assert_frame_equal(part, full.select(INPUT_COLUMNS))


def test_bad_values_in_unparsed_columns_still_count_and_cost_no_event(tmp_path: Path) -> None:
    """span_id is skipped by the JSON reader (level is read as any name): a nested value there is
    no reason to read the file another way, and the account is the full read's (an event
    without `event` counted as missing, a line that is no JSON malformed)."""
    data = lines_of(
        jl(seq=1, span_id={"nested": [1, 2]}, level=3),
        jl(seq=2, span_id="00f067aa0ba902b7", level="info"),
        b"{not json",
        {k: v for k, v in jl(seq=4, trace_id=T2).items() if k != "event"},
    )
    path = tmp_path / "client-u1.jsonl"
    path.write_bytes(data)
    full, part = both([path])
    assert_frame_equal(part, full.select(INPUT_COLUMNS))
    assert part.get_column("seq").to_list() == [1, 2, 4]
    assert full.get_column("span_id").to_list() == [
        '{"nested": [1, 2]}',
        "00f067aa0ba902b7",
        None,
    ]
    got = collect([path], columns=INPUT_COLUMNS).inputs
    assert (got.events, got.malformed, got.missing) == (3, 1, {"event": 1})
    assert got.examples == [f"{path}:3: invalid JSON at character 1"]


def test_blocks_of_a_large_input_give_the_same_projection(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    rows = [jl(seq=i, span_id=f"{i:016x}", level="info") for i in range(1, 301)]
    rows[150] = b"{not json"  # type: ignore[call-overload]
    data = lines_of(*rows)
    (tmp_path / "big.jsonl").write_bytes(data)
    whole_full, whole = both([tmp_path / "big.jsonl"])
    monkeypatch.setattr(_jsonl, "CHUNK_BYTES", 2_000)  # ~30 blocks
    blocks_full, blocks = both([tmp_path / "big.jsonl"])
    in_memory = collect([MemorySource(data, name="big.jsonl")], columns=INPUT_COLUMNS)
    assert_frame_equal(blocks, whole)
    assert_frame_equal(blocks_full, whole_full)
    assert_frame_equal(blocks, whole_full.select(INPUT_COLUMNS))
    assert_frame_equal(in_memory.events.collect().drop("file"), whole.drop("file"))
    assert whole.height == 299


def test_text_logs_and_a_mixed_file_give_the_same_projection(tmp_path: Path) -> None:
    write_log(
        tmp_path,
        [
            "[2026-11-25T10:00:01.000Z] [CTRL] sendMessage: clientMsgId=c-1",
            orjson.dumps(jl(seq=2, trace_id=T1, span_id="00f067aa0ba902b7")).decode(),
            "[2026-11-25T10:00:01.001Z] [REST] Sending message: clientMsgId=c-1 id=msg-1",
        ],
    )
    full, part = both([tmp_path])
    assert part.get_column("line").to_list() == [1, 2, 3]
    assert full.get_column("span_id").to_list() == [None, "00f067aa0ba902b7", None]
    assert_frame_equal(part, full.select(INPUT_COLUMNS))


def test_one_name_or_any_order_is_read_in_the_table_s_order(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(lines_of(jl(seq=1), jl(seq=2)))
    got = collect([tmp_path], columns=["seq", "trace_id", "timestamp"]).events.collect()
    assert got.columns == ["timestamp", "trace_id", "seq"]
    one = collect([tmp_path], columns="seq").events.collect()
    assert one.columns == ["seq"] and one.get_column("seq").to_list() == [1, 2]
    assert collect([], columns="seq").events.collect().columns == ["seq"]


def test_an_unknown_column_names_itself(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match=r"columns: 'evnt', 'zzz' not in the event table \("):
        collect([tmp_path], columns=["seq", "zzz", "evnt"])
    with pytest.raises(SchemaError, match=r"columns: 'zzz', 1 not in the event table \("):
        collect([tmp_path], columns=["zzz", 1])  # type: ignore[list-item]


def test_any_collection_of_names_is_a_projection(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(lines_of(jl(seq=1, level="info")))
    for names in (pl.Series(["level", "seq"]), ("seq", "level"), {"level", "seq"}):
        assert collect([tmp_path], columns=names).events.collect().columns == ["seq", "level"]
    with pytest.raises(SchemaError, match="columns: empty"):
        collect([tmp_path], columns=pl.Series([], dtype=pl.String))


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_a_fifo_named_like_the_entry_is_a_miss_and_never_opened(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(lines_of(jl(seq=1), jl(seq=2)))
    cache = tmp_path / "cache"
    collect([logs], cache_dir=cache, columns=["seq"])
    (entry,) = cache.glob("*.parquet")
    entry.unlink()
    os.mkfifo(entry)  # opened, it would block the read forever
    done: list[Collected] = []
    reader = threading.Thread(
        target=lambda: done.append(collect([logs], cache_dir=cache, columns=["level"])),
        daemon=True,
    )
    reader.start()
    reader.join(timeout=20)
    assert done, "collect blocked on the FIFO"
    assert not done[0].inputs.cached
    assert done[0].events.collect().columns == ["level"]


def test_no_column_at_all_is_an_error_not_an_empty_table(tmp_path: Path) -> None:
    """A frame of no columns has no rows: every event would be lost, cached or not."""
    (tmp_path / "a.jsonl").write_bytes(lines_of(jl(seq=1)))
    for cache in (None, tmp_path / "cache"):
        with pytest.raises(SchemaError, match="columns: empty"):
            collect([tmp_path / "a.jsonl"], columns=[], cache_dir=cache)


def test_two_projections_share_one_entry_instead_of_replacing_it(tmp_path: Path) -> None:
    """The CLI reads the analysis' columns, a script `span_id`: the second read of the logs
    keeps both in the entry, and from then on both hit."""
    logs = tmp_path / "logs"
    logs.mkdir()
    spans = ["00f067aa0ba902b7", "00f067aa0ba902b8"]
    (logs / "a.jsonl").write_bytes(lines_of(*(jl(seq=i, span_id=s) for i, s in enumerate(spans))))
    cache = tmp_path / "cache"
    assert not collect([logs], cache_dir=cache, columns=INPUT_COLUMNS).inputs.cached
    span = collect([logs], cache_dir=cache, columns=["span_id"])
    assert not span.inputs.cached
    assert span.events.collect().to_dict(as_series=False) == {"span_id": spans}
    (entry,) = cache.glob("*.parquet")
    held = [c for c in EVENT_SCHEMA if c != "event"]
    assert list(pl.read_parquet_schema(entry)) == held  # the analysis' columns and `span_id`
    again = collect([logs], cache_dir=cache, columns=INPUT_COLUMNS)
    assert again.inputs.cached and again.events.collect().columns == list(INPUT_COLUMNS)
    hit = collect([logs], cache_dir=cache, columns=["span_id"])
    assert hit.inputs.cached
    assert hit.events.collect().to_dict(as_series=False) == {"span_id": spans}


def test_the_cache_serves_a_projection_from_a_full_entry_and_not_the_reverse(
    tmp_path: Path,
) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(lines_of(jl(seq=1, span_id="00f067aa0ba902b7"), jl(seq=2)))
    cache = tmp_path / "cache"
    part = collect([logs], cache_dir=cache, columns=INPUT_COLUMNS)
    assert not part.inputs.cached
    again = collect([logs], cache_dir=cache, columns=INPUT_COLUMNS)
    assert again.inputs.cached
    assert_frame_equal(again.events.collect(), part.events.collect())
    # the entry lacks span_id: a full read misses, reads the logs and leaves a full entry
    full = collect([logs], cache_dir=cache)
    assert not full.inputs.cached
    assert full.events.collect().get_column("span_id").to_list() == ["00f067aa0ba902b7", None]
    (entry,) = cache.glob("*.parquet")
    assert pl.read_parquet_schema(entry) == EVENT_SCHEMA
    assert collect([logs], cache_dir=cache).inputs.cached
    # which then serves any projection of it
    hit = collect([logs], cache_dir=cache, columns=["seq", "span_id"])
    assert hit.inputs.cached and hit.events.collect().columns == ["seq", "span_id"]
    assert hit.inputs.to_dict() | {"cached": False} == full.inputs.to_dict()


def test_the_analysis_of_a_projection_is_the_full_table_s(tmp_path: Path) -> None:
    full, part = both([SAMPLES / "demo-race-bug"])
    a, b = analyze(full.lazy()), analyze(part.lazy())
    assert a.findings.height > 0
    assert_frame_equal(b.findings, a.findings)
    assert b.to_dict() == a.to_dict()
