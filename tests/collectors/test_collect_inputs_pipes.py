"""Inputs that are not regular files: pipes (``<(cmd)``, ``/dev/stdin``) and named FIFOs are
read once, into memory, like ``-``."""

from __future__ import annotations

import gzip
import os
import threading
from pathlib import Path

import orjson
import pytest
from collectors_helpers import jl

from tracekit.collectors import Collected, collect


def jsonl(*seqs: int) -> bytes:
    return b"".join(orjson.dumps(jl(seq=s)) + b"\n" for s in seqs)


def seqs(c: Collected) -> list[int]:
    return c.events.collect().get_column("seq").to_list()


def _collect_with_timeout(path: str, timeout: float = 10.0, fifo: Path | None = None) -> Collected:
    """collect([path]) in a thread: a reader stuck on a FIFO fails the test, not the suite."""
    out: list[Collected | BaseException] = []

    def run() -> None:
        try:
            out.append(collect([path]))
        except BaseException as exc:  # handed to the test
            out.append(exc)

    worker = threading.Thread(target=run, daemon=True)
    worker.start()
    worker.join(timeout)
    if worker.is_alive():
        fifo = fifo or Path(path)
        if fifo.is_fifo():  # unblock the reader's open(): a writer that closes at once
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        worker.join(timeout)
        pytest.fail(f"collect({path!r}) blocked on a pipe")
    (result,) = out
    if isinstance(result, BaseException):
        raise result
    return result


@pytest.mark.parametrize("compressed", [False, True], ids=["plain", "gzip"])
def test_anonymous_pipe_path_is_read_once(compressed: bool) -> None:
    # what bash's <(cat f) and `cat f | tracekit analyze /dev/stdin` hand over: /dev/fd/N
    data = jsonl(1, 2, 3)
    r, w = os.pipe()
    try:
        os.write(w, gzip.compress(data) if compressed else data)
        os.close(w)
        path = f"/dev/fd/{r}"
        got = _collect_with_timeout(path)
    finally:
        os.close(r)
    frame = got.events.collect()
    assert frame.get_column("seq").to_list() == [1, 2, 3]
    assert frame.get_column("line").to_list() == [1, 2, 3]
    assert frame.get_column("file").to_list() == [path] * 3
    inputs = got.inputs
    assert (inputs.files, inputs.lines, inputs.events, inputs.ignored, inputs.malformed) == (
        1,
        3,
        3,
        0,
        0,
    )
    assert inputs.warnings == []


def test_named_fifo_is_read_once(tmp_path: Path) -> None:
    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    data = jsonl(*range(1, 8))

    def writer() -> None:
        with fifo.open("wb") as fh:
            fh.write(data)

    threading.Thread(target=writer, daemon=True).start()
    got = _collect_with_timeout(str(fifo))
    assert got.events.collect().get_column("seq").to_list() == list(range(1, 8))
    assert (got.inputs.lines, got.inputs.events, got.inputs.warnings) == (7, 7, [])
    assert got.inputs.bytes == len(data)


def test_a_pipe_has_no_cache_identity(tmp_path: Path) -> None:
    # a pipe has no stable identity: caching it would return a stale table for new content
    from tracekit.collectors import FileSource

    fifo = tmp_path / "events.fifo"
    os.mkfifo(fifo)
    assert FileSource(fifo).identity() is None


def test_walk_skips_what_is_not_a_regular_file(tmp_path: Path) -> None:
    d = tmp_path / "logs"
    d.mkdir()
    (d / "a.jsonl").write_bytes(jsonl(1))
    os.mkfifo(d / "b.pipe")  # opening it would block until a writer comes
    (d / "c.log").symlink_to("gone.log")  # a dangling link
    got = _collect_with_timeout(str(d), fifo=d / "b.pipe")
    assert seqs(got) == [1]
    assert got.inputs.files == 1
    assert got.inputs.warnings == [
        f"{d / 'b.pipe'}: not a regular file (a pipe, socket or device); skipped",
        f"{d / 'c.log'}: a link to a missing file; skipped",
    ]
