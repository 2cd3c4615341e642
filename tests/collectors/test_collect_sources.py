"""Inputs: files, directories, globs, rotated sets, compression, stdin, cache, bad files."""

from __future__ import annotations

import bz2
import gzip
import io
import os
import sys
from pathlib import Path

import orjson
import polars as pl
import pytest
import zstandard
from collectors_helpers import jl

from tracekit.collectors import Collected, FileSource, StdinSource, collect
from tracekit.collectors._sources import expand_paths, source_name_from_path
from tracekit.errors import InputError


def jsonl(*seqs: int, **kw: object) -> bytes:
    return b"".join(orjson.dumps(jl(seq=s, **kw)) + b"\n" for s in seqs)


def seqs(c: Collected) -> list[int]:
    return c.events.collect().get_column("seq").to_list()


def test_missing_path_is_an_input_error(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.log: no such file or directory"):
        collect([tmp_path / "nope.log"])


def test_directory_as_file_source(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="is a directory"):
        collect([FileSource(tmp_path)])


def test_unknown_timezone(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="unknown timezone 'Mars/Olympus'"):
        collect([], timezone="Mars/Olympus")
    # a name zoneinfo finds (a file) but polars cannot place times in: refused up front,
    # not a polars error halfway through the read
    with pytest.raises(InputError, match="unknown timezone 'localtime'"):
        collect([], timezone="localtime")


def test_source_names() -> None:
    assert source_name_from_path(Path("logs/client-u2.log.2.gz")) == "client-u2"
    assert source_name_from_path(Path("chat-server-1.jsonl")) == "chat-server-1"
    assert source_name_from_path(Path("app.log.2026-11-24")) == "app"
    assert source_name_from_path(Path("server")) == "server"


def test_directory_walk_rotation_order_and_globs(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    (d / "sub").mkdir(parents=True)
    (d / "app.log").write_bytes(jsonl(5))
    (d / "app.log.1").write_bytes(jsonl(4))
    (d / "app.log.2.gz").write_bytes(gzip.compress(jsonl(3)))
    (d / "app.log.10.bz2").write_bytes(bz2.compress(jsonl(1)))
    (d / "app.log.3.zst").write_bytes(zstandard.ZstdCompressor().compress(jsonl(2)))
    (d / "sub" / "other.jsonl").write_bytes(jsonl(6))
    (d / ".hidden.jsonl").write_bytes(jsonl(99))
    (d / "README.md").write_text("# not a log\n")
    (d / "notes.txt").write_bytes(jsonl(7))
    got = collect([d], exclude=["*.txt"])
    assert seqs(got) == [1, 2, 3, 4, 5, 6]
    assert got.inputs.files == 6
    names = [s.name for s in expand_paths([d], include=["sub/*"])]
    assert names == [str(d / "sub" / "other.jsonl")]
    assert seqs(collect([d], include=["app.log*"], exclude=["*.gz"])) == [1, 2, 4, 5]
    # named one by one, in shell-glob order: still oldest first
    globbed = sorted(str(p) for p in d.glob("app.log*"))
    assert seqs(collect(globbed)) == [1, 2, 3, 4, 5]


def test_hidden_entries_of_a_directory_are_not_read_and_said(tmp_path: Path) -> None:
    # review 18a: a hidden directory may hold logs (.pm2/, .logs/): skipped silently, its
    # messages read as drops; the cache's own directory is no log and says nothing
    d = tmp_path / "logs"
    for sub in (".logs", ".cache", "sub/.old"):
        (d / sub).mkdir(parents=True)
    (d / "app.jsonl").write_bytes(jsonl(1))
    (d / ".logs" / "u2.jsonl").write_bytes(jsonl(2))
    (d / "sub" / ".old" / "u3.jsonl").write_bytes(jsonl(3))
    (d / "sub" / ".env").write_text("KEY=1\n")
    (d / ".git").mkdir()  # (and files that never hold logs: not said on every run)
    for name in (".gitkeep", ".DS_Store"):
        (d / "sub" / name).write_text("")
    got = collect([d], cache_dir=d / ".cache")
    assert seqs(got) == [1]
    assert got.inputs.warnings == [
        f"{d}: 3 hidden entries not read (.logs/, sub/.old/, sub/.env); name one to read it"
    ]
    assert sorted(seqs(collect([d / ".logs", d / "app.jsonl"]))) == [1, 2]  # named: read


def test_stdin(monkeypatch: pytest.MonkeyPatch) -> None:
    fake = io.TextIOWrapper(io.BytesIO(gzip.compress(jsonl(1, 2))))
    monkeypatch.setattr(sys, "stdin", fake)
    got = collect(["-"])
    assert seqs(got) == [1, 2]
    assert got.events.collect().get_column("file").to_list() == ["<stdin>", "<stdin>"]
    assert seqs(collect([StdinSource(io.BytesIO(jsonl(3)))])) == [3]


def test_stdin_given_twice_is_read_once(monkeypatch: pytest.MonkeyPatch) -> None:
    # the second "-" found stdin drained: "empty, no events" and a file counted twice
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(jsonl(1, 2))))
    got = collect(["-", "-"])
    assert seqs(got) == [1, 2]
    assert got.inputs.files == 1
    assert got.inputs.warnings == ["-: stdin given twice; read once"]


def test_truncated_gzip_keeps_what_came_before(tmp_path: Path) -> None:
    whole = gzip.compress(jsonl(*range(1, 2001)))
    p = tmp_path / "app.log.1.gz"
    p.write_bytes(whole[: len(whole) // 2])
    got = collect([p])
    got_seqs = seqs(got)
    assert got_seqs == list(range(1, len(got_seqs) + 1)) and len(got_seqs) > 100
    inputs = got.inputs
    assert len(inputs.warnings) == 1
    assert inputs.warnings[0].startswith(f"{p}: truncated gzip stream")
    # the torn last line is the only malformed one
    assert inputs.malformed == 1 and inputs.examples[0].startswith(f"{p}:{len(got_seqs) + 1}:")


def test_corrupt_gzip(tmp_path: Path) -> None:
    whole = bytearray(gzip.compress(jsonl(*range(1, 200))))
    whole[40:60] = b"\x00" * 20
    p = tmp_path / "bad.jsonl.gz"
    p.write_bytes(bytes(whole))
    got = collect([p])
    assert any("gzip" in w for w in got.inputs.warnings)


def test_empty_and_binary_files(tmp_path: Path) -> None:
    (tmp_path / "a-empty.log").write_bytes(b"")
    (tmp_path / "b-blank.log").write_bytes(b"\n\n  \n")
    binary = os.urandom(3000)
    (tmp_path / "c-core.bin").write_bytes(binary)
    (tmp_path / "d-good.jsonl").write_bytes(jsonl(1, 2))
    got = collect([tmp_path])
    assert seqs(got) == [1, 2]
    inputs = got.inputs
    assert inputs.files == 4
    assert inputs.warnings[:2] == [
        f"{tmp_path / 'a-empty.log'}: empty, no events",
        f"{tmp_path / 'b-blank.log'}: empty, no events",
    ]
    # a binary file is not a log: its lines are ignored (not malformed), the warning says so
    nonblank = sum(1 for ln in binary.split(b"\n") if ln.strip())
    assert inputs.warnings[2] == (
        f"{tmp_path / 'c-core.bin'}: binary data, not a log; skipped (3000 bytes, {nonblank} lines)"
    )
    assert (inputs.malformed, inputs.ignored, inputs.examples) == (0, nonblank, [])
    assert inputs.lines == 0 + 3 + binary.count(b"\n") + (not binary.endswith(b"\n")) + 2


def test_parquet_cache(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(jsonl(1, 2))
    cache = tmp_path / "cache"
    first = collect([logs], cache_dir=cache)
    assert not first.inputs.cached
    second = collect([logs], cache_dir=cache)
    assert second.inputs.cached
    assert second.events.collect().equals(first.events.collect())
    assert second.events.collect().schema == first.events.collect().schema
    assert second.inputs.to_dict() | {"cached": False} == first.inputs.to_dict()
    # a changed file (size/mtime) is a new key, and its entry replaces the old state's
    (before,) = cache.glob("*.parquet")
    (logs / "a.jsonl").write_bytes(jsonl(1, 2, 3))
    third = collect([logs], cache_dir=cache)
    assert not third.inputs.cached and seqs(third) == [1, 2, 3]
    (after,) = cache.glob("*.parquet")
    assert after != before and sorted(p.stem for p in cache.iterdir()) == [after.stem] * 2
    # options are part of the key: another entry, which keeps the first
    assert not collect([logs], cache_dir=cache, timezone="UTC").inputs.cached
    assert len(list(cache.glob("*.parquet"))) == 2
    assert collect([logs], cache_dir=cache).inputs.cached


@pytest.mark.parametrize(
    "damage",
    ["truncated table", "account not an object", "table of another schema"],
)
def test_a_damaged_cache_entry_is_a_miss_and_is_rewritten(tmp_path: Path, damage: str) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.jsonl").write_bytes(jsonl(1, 2))
    cache = tmp_path / "cache"
    first = collect([logs], cache_dir=cache)
    (table,) = cache.glob("*.parquet")
    if damage == "truncated table":
        table.write_bytes(table.read_bytes()[:100])
    elif damage == "account not an object":
        table.with_suffix(".json").write_text("[1, 2]")
    else:  # e.g. an entry written by another tracekit version under the same key
        first.events.collect().select("seq").write_parquet(table)
    again = collect([logs], cache_dir=cache)
    assert not again.inputs.cached and seqs(again) == [1, 2]
    assert collect([logs], cache_dir=cache).inputs.cached  # rewritten whole


def test_empty_input_list() -> None:
    got = collect([])
    assert got.events.collect().height == 0
    assert got.events.collect_schema() == pl.Schema(got.events.collect().schema)


def test_databases_and_json_documents_next_to_logs(tmp_path: Path) -> None:
    import sqlite3

    with sqlite3.connect(tmp_path / "chat.db") as db:
        db.execute("CREATE TABLE messages (id TEXT PRIMARY KEY, conversation TEXT, body TEXT)")
        db.executemany(
            "INSERT INTO messages VALUES (?, ?, ?)", [(f"m{i}", "c1", "hello") for i in range(50)]
        )
    (tmp_path / "truth.json").write_text('{\n  "schema": "x",\n  "messages": [\n    1\n  ]\n}\n')
    (tmp_path / "server.jsonl").write_bytes(jsonl(1, 2))
    got = collect([tmp_path])
    assert seqs(got) == [1, 2]
    db_warning, doc_warning = got.inputs.warnings
    assert db_warning.startswith(f"{tmp_path / 'chat.db'}: binary data, not a log; skipped (")
    assert doc_warning == (
        f"{tmp_path / 'truth.json'}: a JSON document, not JSON lines nor an OTLP export; skipped"
    )
    assert got.inputs.malformed == 0
    db_lines = int(db_warning.rsplit(", ", 1)[1].split()[0])
    assert got.inputs.ignored == 6 + db_lines  # the document's lines, the database's "lines"


def test_same_file_reached_twice_is_read_once(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    (d / "a.jsonl").write_bytes(jsonl(1, 2))
    (d / "b.jsonl").write_bytes(jsonl(3))
    # a directory plus a file inside it
    got = collect([d, str(d / "a.jsonl")])
    assert seqs(got) == [1, 2, 3]
    i = got.inputs
    assert (i.files, i.lines, i.events) == (2, 3, 3)
    assert i.warnings == [f"{d / 'a.jsonl'}: given twice; read once"]
    # a link next to its target in a walked directory: the first in reading order is kept
    (d / "current.jsonl").symlink_to("a.jsonl")
    got = collect([d])
    assert seqs(got) == [1, 2, 3]
    assert got.events.collect().get_column("file").to_list() == [str(d / "a.jsonl")] * 2 + [
        str(d / "b.jsonl")
    ]
    assert got.inputs.files == 2
    assert got.inputs.warnings == [
        f"{d / 'current.jsonl'}: the same file as {d / 'a.jsonl'}; read once"
    ]
    # several: one warning
    got = collect([d, d])
    assert seqs(got) == [1, 2, 3]
    assert got.inputs.warnings == [
        f"4 inputs are files read already (given again, or by another path or link); each read "
        f"once (first: {d / 'current.jsonl'}, the same file as {d / 'a.jsonl'})"
    ]


def test_cache_directory_inside_the_log_directory(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    (d / "client-u1.jsonl").write_bytes(jsonl(1, 2, 3))
    cache = d / "cache"
    runs = [collect([d], cache_dir=cache) for _ in range(3)]
    assert [r.inputs.cached for r in runs] == [False, True, True]
    assert [(r.inputs.files, r.inputs.lines, r.inputs.events) for r in runs] == [(1, 3, 3)] * 3
    assert len(list(cache.iterdir())) == 2  # one entry: table and account
    # the cache's files are no logs, also when walked without cache_dir (or as the log dir)
    plain = collect([d])
    assert (plain.inputs.files, plain.inputs.warnings) == (1, [])
    assert collect([cache]).inputs.files == 0


@pytest.mark.parametrize("kind", ["bz2", "gzip", "zstd"])
def test_truncated_stream_with_nothing_decompressed_says_truncated(
    tmp_path: Path, kind: str
) -> None:
    # bz2 decompresses whole blocks (up to 900 kB): half a one-block file yields nothing
    whole = {
        "bz2": bz2.compress,
        "gzip": gzip.compress,
        "zstd": zstandard.ZstdCompressor().compress,
    }[kind](jsonl(*range(1, 2001)))
    p = tmp_path / f"client-u1.log.2.{kind}"
    p.write_bytes(whole[: len(whole) // 2] if kind == "bz2" else whole[:12])
    i = collect([p]).inputs
    assert (i.lines, i.events, i.ignored, i.malformed) == (0, 0, 0, 0)
    assert i.warnings[0].startswith(f"{p}: truncated {kind} stream")
    assert i.warnings[1:] == [f"{p}: empty, no events"]


def test_text_that_starts_like_a_bz2_stream(tmp_path: Path) -> None:
    p = tmp_path / "notes.log"
    p.write_bytes(b"BZh9 is not a stream\n" + jsonl(1))
    got = collect([p])
    assert seqs(got) == [1]
    assert got.inputs.warnings[0] == f"{p}: starts like a bz2 stream but is not one; read as it is"
