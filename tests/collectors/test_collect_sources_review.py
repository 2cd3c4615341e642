"""Inputs, from review C: cache identity of replaced files, rotated-set order and names, links to
directories, ``**/`` globs, negative epoch times."""

from __future__ import annotations

import os
from pathlib import Path

import orjson
import polars as pl
import pytest
from collectors_helpers import T1, jl

from tracekit.collectors import Collected, MemorySource, collect
from tracekit.collectors._sources import expand_paths, source_name_from_path


def jsonl(*seqs: int) -> bytes:
    return b"".join(orjson.dumps(jl(seq=s)) + b"\n" for s in seqs)


def seqs(c: Collected) -> list[int]:
    return c.events.collect().get_column("seq").to_list()


def replace_keeping_size_and_mtime(path: Path, data: bytes) -> None:
    """What ``cp -p``/``rsync -t``/``tar x`` then a rename over the file do."""
    st = path.stat()
    assert len(data) == st.st_size
    new = path.with_name(path.name + ".new")
    new.write_bytes(data)
    os.utime(new, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(new, path)
    assert (path.stat().st_size, path.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)


def test_the_cache_misses_a_file_replaced_by_one_of_the_same_size_and_mtime(
    tmp_path: Path,
) -> None:
    log, cache = tmp_path / "app.jsonl", tmp_path / "cache"
    log.write_bytes(jsonl(1, 2))
    assert seqs(collect([log], cache_dir=cache)) == [1, 2]
    assert collect([log], cache_dir=cache).inputs.cached
    replace_keeping_size_and_mtime(log, jsonl(5, 6))
    got = collect([log], cache_dir=cache)
    assert (got.inputs.cached, seqs(got)) == (False, [5, 6])
    again = collect([log], cache_dir=cache)
    assert (again.inputs.cached, seqs(again)) == (True, [5, 6])


def test_the_cache_misses_a_format_file_replaced_by_one_of_the_same_size_and_mtime(
    tmp_path: Path,
) -> None:
    fmt = tmp_path / "j.toml"
    head = 'name = "otherjson"\nkind = "json"\n[json_fields]\ntimestamp = "ts"\n'
    fmt.write_text(head + 'stage = "aaaa"\naction = "bbbb"\n')
    log, cache = tmp_path / "x.jsonl", tmp_path / "cache"
    log.write_bytes(
        orjson.dumps({"ts": "2026-11-25T10:00:00Z", "aaaa": "REPO", "bbbb": "add", "trace_id": T1})
        + b"\n"
    )

    def stage_action() -> tuple[bool, list[tuple[str, str]]]:
        got = collect([log], formats=[fmt], cache_dir=cache)
        return got.inputs.cached, got.events.collect().select("stage", "action").rows()

    assert stage_action() == (False, [("REPO", "add")])
    assert stage_action() == (True, [("REPO", "add")])
    replace_keeping_size_and_mtime(fmt, (head + 'stage = "bbbb"\naction = "aaaa"\n').encode())
    assert stage_action() == (False, [("add", "REPO")])


@pytest.mark.parametrize(
    "oldest_first",
    [
        # Python's TimedRotatingFileHandler, when="M" and when="S"
        ["app.log.2026-01-01_10-00", "app.log.2026-01-01_10-01", "app.log"],
        ["app.log.2026-01-01_10-00-00", "app.log.2026-01-01_10-00-05", "app.log"],
        # when="H", then midnight: a date alone is the start of its day
        ["app.log.2026-01-01", "app.log.2026-01-01_09", "app.log.2026-01-02", "app.log"],
        # logrotate dateformat -%Y%m%d-%s
        ["app.log-20260101-1767225600", "app.log-20260102-1767312000", "app.log"],
        # stamp styles mixed: by date, not by text
        ["app.log-20260102", "app.log-2026-01-03", "app.log-20260104.gz", "app.log"],
    ],
    ids=["minutes", "seconds", "hours-days", "logrotate-epoch", "mixed"],
)
def test_date_stamped_rotations_oldest_first_with_the_live_file_s_source(
    tmp_path: Path, oldest_first: list[str]
) -> None:
    for name in reversed(oldest_first):
        (tmp_path / name).write_bytes(b"x\n")
    order = [Path(s.name).name for s in expand_paths([tmp_path])]
    assert order == oldest_first
    named = expand_paths([tmp_path / n for n in sorted(oldest_first)])
    assert [Path(s.name).name for s in named] == oldest_first
    assert {source_name_from_path(Path(n)) for n in oldest_first} == {"app"}


def test_a_linked_directory_is_walked(tmp_path: Path) -> None:
    (tmp_path / "archive").mkdir()
    (tmp_path / "logs").mkdir()
    (tmp_path / "archive" / "old.jsonl").write_bytes(jsonl(1))
    (tmp_path / "logs" / "new.jsonl").write_bytes(jsonl(2))
    os.symlink("../archive", tmp_path / "logs" / "archive")
    got = collect([tmp_path / "logs"])
    info = got.inputs.to_dict()
    assert (info["files"], seqs(got), info["warnings"]) == (2, [2, 1], [])
    assert got.events.collect().get_column("file").to_list() == [
        str(tmp_path / "logs" / "new.jsonl"),
        str(tmp_path / "logs" / "archive" / "old.jsonl"),
    ]


def test_a_link_loop_and_a_second_link_are_walked_once_with_a_note(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    (logs / "a").mkdir(parents=True)
    (logs / "a" / "one.jsonl").write_bytes(jsonl(1))
    os.symlink("..", logs / "a" / "up")  # a loop
    os.symlink("a", logs / "b")  # a second path to a
    notes: list[str] = []
    names = [s.name for s in expand_paths([logs], warnings=notes)]
    assert names == [str(logs / "a" / "one.jsonl")]
    assert notes == [
        f"{logs / 'b'}: a link to {logs / 'a'}, a directory walked already "
        "(a loop, or a second path to it); not walked again",
        f"{logs / 'a' / 'up'}: a link to {logs}, a directory walked already "
        "(a loop, or a second path to it); not walked again",
    ]


@pytest.mark.parametrize("globs", [{}, {"exclude": ["current/**"]}, {"include": ["zarchive/**"]}])
def test_a_link_sorting_before_its_target_does_not_take_it_over(
    tmp_path: Path, globs: dict[str, list[str]]
) -> None:
    # review F #4: 'current' (a link) reached zarchive/2026 first, so globs were judged on the
    # link's path: excluding the link, or including the archive, read nothing
    logs = tmp_path / "logs"
    (logs / "zarchive" / "2026").mkdir(parents=True)
    (logs / "zarchive" / "2026" / "app.log").write_bytes(jsonl(1))
    os.symlink("zarchive/2026", logs / "current")
    notes: list[str] = []
    names = [s.name for s in expand_paths([logs], warnings=notes, **globs)]
    assert names == [str(logs / "zarchive" / "2026" / "app.log")]
    assert notes == [
        f"{logs / 'current'}: a link to {logs / 'zarchive' / '2026'}, a directory walked "
        "already (a loop, or a second path to it); not walked again"
    ]


def test_double_star_slash_also_matches_no_directory(tmp_path: Path) -> None:
    (tmp_path / "sub" / "deep").mkdir(parents=True)
    for rel in ("a.jsonl", "sub/b.jsonl", "sub/deep/c.jsonl", "sub/d.log"):
        (tmp_path / rel).write_bytes(b"{}\n")
    notes: list[str] = []

    def names(*patterns: str) -> list[str]:
        got = expand_paths([tmp_path], include=list(patterns), warnings=notes)
        return [Path(s.name).relative_to(tmp_path).as_posix() for s in got]

    assert names("**/*.jsonl") == ["a.jsonl", "sub/b.jsonl", "sub/deep/c.jsonl"]
    assert names("sub/**/*.jsonl") == ["sub/b.jsonl", "sub/deep/c.jsonl"]
    assert names("**/deep/**/*.jsonl") == ["sub/deep/c.jsonl"]
    assert names("**/sub/*.log") == ["sub/d.log"]
    assert notes == []


def test_an_include_matching_nothing_is_said(tmp_path: Path) -> None:
    (tmp_path / "a.jsonl").write_bytes(b"{}\n")
    (tmp_path / "b.jsonl").write_bytes(b"{}\n")
    notes: list[str] = []
    assert expand_paths([tmp_path], include=["*.log", "x/*"], warnings=notes) == []
    assert notes == [
        f"{tmp_path}: none of its 2 file(s) matches include *.log, x/*; nothing read from it"
    ]


def test_negative_fractional_epochs_keep_their_sign() -> None:
    times: list[object] = ["-1.5", "-0.5", -1.25, "-0.000000001", "-1", "1.5", "-1500.25"]
    rows = [
        {"timestamp": t, "stage": "CTRL", "action": "send", "event": "e", "trace_id": T1}
        for t in times
    ]
    frame = collect([MemorySource(rows)]).events.collect()
    assert frame.get_column("timestamp").cast(pl.Int64).to_list() == [
        -1_500_000_000,
        -500_000_000,
        -1_250_000_000,
        -1,
        -1_000_000_000,
        1_500_000_000,
        -1_500_250_000_000,
    ]
