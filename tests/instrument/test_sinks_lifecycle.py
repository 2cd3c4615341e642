"""Sink lifecycle defects: fork with a stream sink, close() under a blocked output, drops a
replaced sink had not yet reported. Real pipes, real threads, a real ``os.fork()``."""

from __future__ import annotations

import io
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest

import tracekit
from tracekit import _core
from tracekit._sinks import ThreadedSink

posix_only = pytest.mark.skipif(not hasattr(os, "fork"), reason="needs os.fork (POSIX)")


def _sink() -> ThreadedSink:
    emitter = _core._emitter
    assert emitter is not None and isinstance(emitter.sink, ThreadedSink)
    return emitter.sink


def _wait_for(cond: Callable[[], bool], timeout: float = 5.0) -> None:
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.002)


class _PipeReader:
    """Reads a pipe to EOF on a thread of its own (started on demand)."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.data = bytearray()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while chunk := os.read(self.fd, 65536):
            self.data += chunk

    def start(self) -> None:
        self.thread.start()

    def finish(self, timeout: float = 10.0) -> list[dict[str, Any]]:
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "a write end of the pipe is still open"
        os.close(self.fd)
        return [json.loads(line) for line in bytes(self.data).splitlines()]


def _run_child(body: Callable[[], dict[str, Any]], timeout: float = 20.0) -> dict[str, Any]:
    """Fork; the child runs ``body`` and leaves by ``os._exit`` (no atexit, no stdio flush).
    A child still running after ``timeout`` is killed and reported as hung."""
    rd, wr = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - runs in the child
        try:
            os.close(rd)
            result = body()
        except BaseException as exc:
            result = {"error": repr(exc)}
        os.write(wr, json.dumps(result).encode())
        os._exit(0)
    os.close(wr)
    deadline = time.monotonic() + timeout
    while os.waitpid(pid, os.WNOHANG) == (0, 0):
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            os.close(rd)
            return {"error": "child hung"}
        time.sleep(0.01)
    with os.fdopen(rd, "rb") as pipe:
        data = pipe.read()
    return dict(json.loads(data)) if data else {"error": "child wrote no result"}


# 1. A stream sink in a forked child writes the child's events once, without the parent's
#    stream buffer or its lock.


@posix_only
def test_stream_sink_in_a_forked_child_writes_each_event_exactly_once() -> None:
    read_fd, write_fd = os.pipe()
    reader = _PipeReader(read_fd)
    # a buffered text stream on a pipe, as stderr is under a supervisor or in a container
    stream = os.fdopen(write_fd, "w")
    tracekit.configure(service="svc", source="parent", sink=stream)
    sink = _sink()
    pad = "x" * 1000
    n_batch, n_queued, n_child = 200, 30, 7
    # ~200 KB while nobody reads the pipe: the writer takes them all as one batch and
    # blocks writing it (the old stream sink did so inside the stream's buffer lock)
    for i in range(n_batch):
        tracekit.emit("REST", "request", who="parent", i=i, pad=pad)
    _wait_for(lambda: sink._busy and not sink._queue)
    time.sleep(0.1)  # let it fill the pipe and block
    for i in range(n_batch, n_batch + n_queued):  # still queued at the fork
        tracekit.emit("REST", "request", who="parent", i=i)
    assert len(sink._queue) == n_queued and sink._busy

    def child() -> dict[str, Any]:
        for i in range(n_child):
            tracekit.emit("REST", "request", who="child", i=i)
        return {"flush": tracekit.flush(3.0), "stats": tracekit.stats()}

    threading.Timer(0.2, reader.start).start()  # the pipe drains only after the fork
    got = _run_child(child)
    assert tracekit.flush(5.0) is True
    tracekit.shutdown()
    stream.close()
    rows = reader.finish()

    assert got == {
        "flush": True,
        "stats": {
            "emitted": n_child,
            "dropped": 0,
            "sampled_out": 0,
            "filtered": 0,
            "internal_errors": 0,
            "bad_trace_ids": 0,
        },
    }
    parent = [(e["i"], e["seq"]) for e in rows if e["who"] == "parent"]
    assert sorted(parent) == [(i, i + 1) for i in range(n_batch + n_queued)]
    assert {e["source"] for e in rows if e["who"] == "parent"} == {"parent"}
    kids = [e for e in rows if e["who"] == "child"]
    assert sorted((e["i"], e["seq"]) for e in kids) == [(i, i + 1) for i in range(n_child)]
    (child_source,) = {e["source"] for e in kids}
    assert child_source.startswith("parent-")
    assert len(rows) == n_batch + n_queued + n_child


def test_stream_sink_never_writes_to_a_stream_the_app_closed(tmp_path: Any) -> None:
    # the sink writes to the stream's file descriptor: once the app closes its stream, the
    # number may be reused by another file, which must not receive our events
    first = open(tmp_path / "first.jsonl", "w")  # noqa: SIM115
    tracekit.configure(service="svc", source="s", sink=first)
    tracekit.emit("REST", "request", i=0)
    assert tracekit.flush() is True
    fd = first.fileno()
    first.close()
    with open(tmp_path / "second.txt", "w") as second:
        assert second.fileno() == fd  # the lowest free number: the one just released
        tracekit.emit("REST", "request", i=1)
        assert tracekit.flush() is False
    assert (tmp_path / "second.txt").read_text() == ""
    assert [json.loads(line)["i"] for line in (tmp_path / "first.jsonl").open()] == [0]
    assert tracekit.stats()["dropped"] == 1


def test_stream_sink_without_a_file_descriptor_still_writes_through_the_stream() -> None:
    text, binary = io.StringIO(), io.BytesIO()
    a = tracekit.Instrumentation(service="a", source="a", sink=text)
    b = tracekit.Instrumentation(service="b", source="b", sink=binary)
    with a.activate():
        tracekit.emit("REST", "request", i=0)
    with b.activate():
        tracekit.emit("REST", "request", i=1)
    assert a.flush() and b.flush()
    a.close()
    b.close()
    assert [json.loads(line)["i"] for line in text.getvalue().splitlines()] == [0]
    assert [json.loads(line)["i"] for line in binary.getvalue().splitlines()] == [1]


# 2. close(timeout=t) returns within t even when the output blocks; what it gives up on is
#    counted as dropped: the events still queued (discarded, never written) plus the batch
#    the writer is stuck in (counted although it may still get through if the output
#    unblocks later: a loss is never left uncounted, at worst one batch is counted twice).

TIMEOUT, MARGIN = 0.5, 0.25


def test_close_returns_within_its_timeout_when_a_callable_sink_blocks() -> None:
    entered, release = threading.Event(), threading.Event()
    got: list[int] = []

    def callback(event: Any) -> None:
        got.append(event["i"])
        if event["i"] == 0:
            entered.set()
            release.wait(10)

    inst = tracekit.Instrumentation(service="c", source="c", sink=callback)
    sink = inst._emitter.sink
    assert isinstance(sink, ThreadedSink)
    with inst.activate():
        tracekit.emit("REST", "request", i=0)
        assert entered.wait(5)  # the writer is stuck in the callback with event 0
        for i in range(1, 10):
            tracekit.emit("REST", "request", i=i)
    start = time.monotonic()
    inst.close(timeout=TIMEOUT)
    elapsed = time.monotonic() - start
    try:
        assert TIMEOUT - 0.05 <= elapsed < TIMEOUT + MARGIN
        # event 0 (in the callback's hands) and events 1-9 (still queued)
        assert inst.stats()["dropped"] == 10
        assert len(sink._queue) == 0
    finally:
        release.set()
    sink._thread.join(5)
    assert not sink._thread.is_alive()
    assert got == [0]  # the queued nine were discarded, not delivered after close
    assert inst.stats()["dropped"] == 10  # and not counted twice


def test_close_returns_within_its_timeout_when_nobody_reads_the_pipe() -> None:
    read_fd, write_fd = os.pipe()
    reader = _PipeReader(read_fd)
    stream = os.fdopen(write_fd, "wb")
    tracekit.configure(service="svc", source="s", sink=stream)
    sink = _sink()
    # one line larger than any pipe buffer: the writer blocks in the middle of it
    tracekit.emit("REST", "request", i=0, pad="x" * 300_000)
    _wait_for(lambda: sink._busy and not sink._queue)
    for i in range(1, 10):
        tracekit.emit("REST", "request", i=i)
    start = time.monotonic()
    tracekit.shutdown(timeout=TIMEOUT)
    elapsed = time.monotonic() - start
    assert TIMEOUT - 0.05 <= elapsed < TIMEOUT + MARGIN
    assert sink.dropped == 10  # the line being written and the nine queued
    assert len(sink._queue) == 0
    reader.start()  # the output unblocks: the writer finishes its line, then stops
    sink._thread.join(5)
    assert not sink._thread.is_alive()
    stream.close()
    rows = reader.finish()
    assert [(e["i"], e["seq"], len(e["pad"])) for e in rows] == [(0, 1, 300_000)]
    assert sink.dropped == 10


# 3. Drops the replaced sink had counted but not reported (its output kept failing, so no
#    report could be written) are reported by the new configuration: one TRACEKIT.dropped
#    event with the old count, counted in its stats(); flush() still says whether they were
#    lost since the previous flush.


class _Broken(io.StringIO):
    def write(self, s: str) -> int:
        raise OSError(28, "No space left on device")


@pytest.mark.parametrize("flushed_before", [False, True])
def test_drops_the_replaced_sink_had_not_reported_are_reported_by_the_new_one(
    tmp_path: Any, flushed_before: bool
) -> None:
    tracekit.configure(service="svc", source="s1", sink=_Broken())
    old = _sink()
    for i in range(3):
        tracekit.emit("REST", "request", i=i)
    if flushed_before:
        assert tracekit.flush() is False
    else:
        _wait_for(lambda: old.dropped == 3)
    assert (old.dropped, old._unreported) == (3, 3)
    new = tmp_path / "b.jsonl"
    tracekit.configure(service="svc", source="s1", sink=new)
    # a flush before the reconfigure has already said these three were lost
    assert tracekit.flush() is flushed_before
    assert tracekit.flush() is True
    rows = [json.loads(line) for line in new.read_text().splitlines()]
    assert [(e["stage"], e["action"], e["seq"], e.get("dropped")) for e in rows] == [
        ("TRACEKIT", "configured", 4, None),
        ("TRACEKIT", "dropped", 5, 3),
    ]
    report = rows[1]
    assert (
        report["reason"] == "sink error: OSError: [Errno 28] No space left on device (reconfigured)"
    )
    assert (report["total_dropped"], report["level"]) == (3, "warning")
    assert tracekit.stats()["dropped"] == 3
    assert old._unreported == 0  # handed over, not reported twice


# Found by a second reading of the descriptor writes above: events go through the stream.


@posix_only
def test_workers_forked_while_the_sink_writes_to_their_stream_never_hang() -> None:
    # written through the stream, the writer thread held its buffer lock; a fork at that
    # moment left it held in the child, whose first write to the stream hung for ever
    read_fd, write_fd = os.pipe()
    reader = _PipeReader(read_fd)
    reader.start()
    stream = os.fdopen(write_fd, "w")
    tracekit.configure(service="svc", source="app", sink=stream)
    stop = threading.Event()

    def app() -> None:
        while not stop.is_set():
            for i in range(200):
                tracekit.emit("APP", "work", i=i, pad="x" * 200)
            time.sleep(0.001)

    threading.Thread(target=app, daemon=True).start()

    def worker() -> dict[str, Any]:
        stream.write("worker line\n")
        stream.flush()
        return {}

    try:
        results = [_run_child(worker, timeout=2.0) for _ in range(60)]
    finally:
        stop.set()
        assert tracekit.flush(5.0)
        tracekit.shutdown()
        stream.close()
    assert [r for r in results if r] == []  # none hung, none failed
    reader.thread.join(5)
    text = bytes(reader.data).decode()
    assert text.count("worker line\n") == 60
    assert all(json.loads(line)["stage"] == "APP" for line in text.splitlines() if line[0] == "{")


def test_exit_with_a_stalled_stderr_reader_does_not_abort_the_process() -> None:
    # the writer thread, stuck in sys.stderr's buffer on a full pipe, held its lock at exit:
    # "Fatal Python error: _enter_buffered_busy: could not acquire lock" (signal 6)
    import subprocess
    import sys

    code = (
        "import tracekit\n"
        "tracekit.configure(service='svc')\n"  # the default sink: sys.stderr, a pipe here
        "for i in range(2000):\n"
        "    tracekit.emit('APP', 'tick', i=i, pad='x' * 100)\n"
        "print('main done', flush=True)\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    proc = subprocess.Popen(
        [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env
    )
    time.sleep(3.5)  # the log shipper stalls past shutdown()'s 2 s, then reads everything
    out, err = proc.communicate(timeout=30)
    assert (proc.returncode, out) == (0, b"main done\n"), err[-500:]
    assert b"Fatal Python error" not in err
    lines = err.decode().splitlines()
    rows = [json.loads(line) for line in lines]  # every line whole
    ticks = [r["i"] for r in rows if r["stage"] == "APP"]
    dropped = sum(r.get("dropped", 0) for r in rows if r["action"] == "dropped")
    assert ticks == sorted(ticks) and len(ticks) + dropped <= 2000


class _NotebookStream(io.TextIOBase):
    """Like ipykernel's OutStream: ``fileno()`` is the process's original stdout, while what
    is written goes to the notebook cell."""

    def __init__(self, fd: int) -> None:
        self.cell: list[str] = []
        self._fd = fd

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "UTF-8"

    def fileno(self) -> int:
        return self._fd

    def writable(self) -> bool:
        return True

    def write(self, s: str) -> int:
        self.cell.append(s)
        return len(s)


def test_stream_sink_writes_through_a_stream_whose_descriptor_is_elsewhere(tmp_path: Any) -> None:
    with open(tmp_path / "terminal", "wb") as terminal:
        stream = _NotebookStream(terminal.fileno())
        tracekit.configure(service="svc", source="nb", sink=stream)
        tracekit.emit("CTRL", "send")
        assert tracekit.flush(3.0)
        tracekit.shutdown()
    assert [json.loads(line)["stage"] for line in "".join(stream.cell).splitlines()] == ["CTRL"]
    assert (tmp_path / "terminal").read_bytes() == b""


def test_stream_sink_on_a_platform_without_pipe_buf(monkeypatch: Any) -> None:
    import select

    monkeypatch.delattr(select, "PIPE_BUF", raising=False)
    read_fd, write_fd = os.pipe()
    reader = _PipeReader(read_fd)
    reader.start()
    with os.fdopen(write_fd, "w") as stream:
        tracekit.configure(service="svc", source="w", sink=stream)
        for i in range(50):
            tracekit.emit("CTRL", "send", i=i)
        assert tracekit.flush(3.0)
        tracekit.shutdown()
    assert [e["i"] for e in reader.finish()] == list(range(50))


@pytest.mark.parametrize(
    ("encoding", "notes"),
    [
        # ASCII: escaped JSON at the descriptor (one note it cannot hold lost the whole batch)
        ("ascii", ["m1", "café 😀", "m3"]),
        # not ASCII-compatible: written through, in the stream's own encoding
        ("utf-16", ["café"]),
        ("utf-7", ["1+2 ~{ok}~ café"]),
    ],
)
def test_a_text_stream_reads_back_in_its_own_encoding(
    tmp_path: Any, encoding: str, notes: list[str]
) -> None:
    path = tmp_path / "events.log"
    with open(path, "w", encoding=encoding) as stream:
        tracekit.configure(service="svc", source="a", sink=stream)
        for note in notes:
            tracekit.emit("CTRL", "send", note=note)
        assert tracekit.flush(3.0)
        tracekit.shutdown()
    rows = [json.loads(line) for line in path.read_text(encoding=encoding).splitlines()]
    assert [r["note"] for r in rows] == notes


@posix_only
@pytest.mark.parametrize("sink", ["path", "app stream"])
def test_a_write_cut_short_by_a_full_disk_loses_only_the_lines_it_did_not_write(
    tmp_path: Any, sink: str
) -> None:
    # the file size limit stands in for a full disk (EFBIG after a short write, as ENOSPC):
    # the lines written before the failure are in the file, not counted as lost; the cut
    # line is ended before the next write, so the next event is not glued onto it
    import resource

    path = tmp_path / "events.jsonl"

    def child() -> dict[str, Any]:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (1500, resource.RLIM_INFINITY))
        stream = open(path, "ab") if sink == "app stream" else None  # noqa: SIM115
        tracekit.configure(service="svc", source="c", sink=stream or path)
        for i in range(10):
            tracekit.emit("CTRL", "send", msg_id=f"m{i}")
        first = tracekit.flush(3.0)
        resource.setrlimit(resource.RLIMIT_FSIZE, (resource.RLIM_INFINITY,) * 2)
        tracekit.emit("CTRL", "send", msg_id="after")
        second = tracekit.flush(3.0)
        stats = tracekit.stats()
        tracekit.shutdown()
        if stream is not None:
            stream.close()
        return {"flush": [first, second], "dropped": stats["dropped"]}

    got = _run_child(child)
    lines = path.read_bytes().split(b"\n")
    assert lines[-1] == b""
    whole = [json.loads(line) for line in lines[:-1] if line.endswith(b"}")]
    cut = [line for line in lines[:-1] if not line.endswith(b"}")]
    sent = [e["msg_id"] for e in whole if e["action"] == "send"]
    assert got["flush"] == [False, True]
    assert len(cut) == 1 and b"{" not in cut[0][1:]  # one torn line, nothing glued to it
    # every event is either in the file whole or counted as lost, never both, never neither
    assert sent[:-1] == [f"m{i}" for i in range(len(sent) - 1)] and sent[-1] == "after"
    assert got["dropped"] == 10 - (len(sent) - 1) > 0
    (report,) = [e for e in whole if e["action"] == "dropped"]
    assert report["dropped"] == got["dropped"]


def test_reconfiguring_away_from_a_blocked_output_does_not_block_the_caller(
    tmp_path: Any,
) -> None:
    # configure() waited for the old sink's close(), up to 2 s on a blocked output: from
    # async code, a stalled event loop. It closes the old sink off the caller's thread; its
    # queued events are still written, and what it loses is counted by the new configuration.
    gate = threading.Event()
    got: list[str] = []

    def blocked(event: dict[str, Any]) -> None:
        gate.wait(10)
        got.append(event["action"])

    tracekit.configure(service="svc", source="s", sink=blocked)
    tracekit.emit("CTRL", "send")
    _wait_for(lambda: _sink()._busy)  # the writer is stuck in the callable
    tracekit.emit("CTRL", "add")  # queued behind it
    new = tmp_path / "new.jsonl"
    t0 = time.monotonic()
    tracekit.configure(service="svc", source="s", sink=new)
    assert time.monotonic() - t0 < 0.5
    gate.set()
    assert tracekit.flush(5.0) is True  # flush waits for the old sink's close too
    assert got == ["send", "add"]
    tracekit.shutdown()
    rows = [json.loads(line) for line in new.read_text().splitlines()]
    assert [(e["stage"], e["action"], e["seq"]) for e in rows] == [("TRACEKIT", "configured", 3)]


# A second reading of configure()'s background close and the drop hand-over.


def test_drops_a_replaced_sink_already_reported_still_make_the_next_flush_false(
    tmp_path: Any,
) -> None:
    failing = {"left": 10}
    got: list[str] = []

    def flaky(event: dict[str, Any]) -> None:
        if failing["left"]:
            failing["left"] -= 1
            raise OSError("disk hiccup")
        got.append(event["action"])

    tracekit.configure(service="svc", source="s", sink=flaky)
    for _ in range(10):
        tracekit.emit("CTRL", "send")
    _wait_for(lambda: failing["left"] == 0 and not _sink()._queue and not _sink()._busy)
    tracekit.emit("CTRL", "add")  # gets through, and the loss is reported after it
    _wait_for(lambda: "dropped" in got)
    tracekit.configure(service="svc", source="s", sink=tmp_path / "b.jsonl")
    assert tracekit.flush(3.0) is False  # 10 events lost since the last flush, before or not
    assert tracekit.flush(3.0) is True


def test_drops_handed_to_the_new_sink_are_reported_though_nothing_else_is_written(
    tmp_path: Any,
) -> None:
    gate = threading.Event()
    tracekit.configure(service="svc", source="s", sink=lambda e: gate.wait(10))
    for i in range(5):
        tracekit.emit("CTRL", "send", i=i)
    _wait_for(lambda: _sink()._busy)
    new = tmp_path / "new.jsonl"
    tracekit.configure(service="svc", source="s", sink=new)
    # the old output stays blocked: its close gives up after 2 s and counts what it held
    assert tracekit.flush(5.0) is False
    gate.set()
    _wait_for(lambda: any('"dropped"' in line for line in new.read_text().splitlines()))
    rows = [json.loads(line) for line in new.read_text().splitlines()]
    (report,) = [r for r in rows if r["action"] == "dropped"]
    assert report["dropped"] == 5 and report["reason"].endswith("(reconfigured)")
    tracekit.shutdown()


def test_configure_where_no_thread_can_start_closes_the_old_sink_itself(
    tmp_path: Any, monkeypatch: Any
) -> None:
    # at interpreter shutdown (an atexit hook reconfiguring) no new thread may start
    tracekit.configure(service="svc", source="s", sink=tmp_path / "a.jsonl")
    tracekit.emit("CTRL", "send")

    start = threading.Thread.start

    def refuse(self: threading.Thread) -> None:
        if self.name == "tracekit-close":
            raise RuntimeError("can't create new thread at interpreter shutdown")
        start(self)

    with monkeypatch.context() as m:
        m.setattr(threading.Thread, "start", refuse)
        tracekit.configure(service="svc", source="s", sink=tmp_path / "b.jsonl")
    assert tracekit.flush(3.0) is True
    tracekit.shutdown()
    assert [
        json.loads(line)["action"] for line in (tmp_path / "a.jsonl").read_text().splitlines()
    ] == ["send"]


def test_an_event_a_processor_lost_before_a_reconfigure_makes_the_next_flush_false(
    tmp_path: Any,
) -> None:
    def picky(_l: Any, _m: str, ed: dict[str, Any]) -> dict[str, Any]:
        if ed["action"] == "persist":
            raise KeyError("conv")
        return ed

    tracekit.configure(service="svc", source="s", sink=tmp_path / "a.jsonl", processors=[picky])
    tracekit.emit("REST", "persist")  # lost, counted by the emitter
    tracekit.configure(service="svc", source="s", sink=tmp_path / "b.jsonl")
    assert tracekit.flush(3.0) is False
    assert tracekit.flush(3.0) is True


# A fourth reading: the descriptor's lifetime, idle reports, wrapped streams, chains.


def test_a_gzip_text_stream_is_written_through_its_compressor(tmp_path: Any) -> None:
    import gzip

    path = tmp_path / "events.jsonl.gz"
    with gzip.open(path, "wt", encoding="utf-8") as stream:
        tracekit.configure(service="svc", source="z", sink=stream)
        for i in range(3):
            tracekit.emit("CTRL", "send", i=i)
        assert tracekit.flush(3.0)
        tracekit.shutdown()
    rows = [json.loads(line) for line in gzip.decompress(path.read_bytes()).splitlines()]
    assert [r["i"] for r in rows] == [0, 1, 2]


class _AsciiSubclass(io.TextIOWrapper):
    pass


def test_a_stream_written_through_escapes_what_its_encoding_cannot_hold(tmp_path: Any) -> None:
    raw = open(tmp_path / "a.log", "wb")  # noqa: SIM115 - wrapped below, closed with it
    with _AsciiSubclass(raw, encoding="ascii") as stream:
        tracekit.configure(service="svc", source="a", sink=stream)
        for note in ("m1", "café", "m3"):
            tracekit.emit("CTRL", "send", note=note)
        assert tracekit.flush(3.0)
        tracekit.shutdown()
    rows = [json.loads(line) for line in (tmp_path / "a.log").read_text().splitlines()]
    assert [r["note"] for r in rows] == ["m1", "café", "m3"]


def test_an_idle_sink_with_an_unreported_drop_and_no_reporter_does_not_spin(
    tmp_path: Any,
) -> None:
    from tracekit._sinks import make_sink

    sink = make_sink(tmp_path / "x.jsonl", max_queue=1)
    assert isinstance(sink, ThreadedSink)
    for i in range(3):  # a full queue: drops, and no on_drop to report them to
        sink.submit({}, b'{"i": %d}\n' % i)
    _wait_for(lambda: not sink._queue and not sink._busy)
    t0 = time.process_time()
    time.sleep(0.5)
    assert time.process_time() - t0 < 0.2  # the writer waits, it does not loop
    sink.close()
    assert sink.dropped >= 1


def test_late_events_and_drops_follow_the_chain_of_replacements(tmp_path: Any) -> None:
    # A replaced by B, B by C while A still closes: what reaches A goes to C, the sink in use
    from tracekit import _core

    tracekit.configure(service="svc", source="s", sink=tmp_path / "a.jsonl")
    a = _core._emitter
    assert a is not None
    tracekit.configure(service="svc", source="s", sink=tmp_path / "b.jsonl")
    tracekit.configure(service="svc", source="s", sink=tmp_path / "c.jsonl")
    a.write("CTRL", "send", {"i": 1}, 0)  # a thread still holding A's emitter
    assert tracekit.flush(3.0) is True
    c = [json.loads(line) for line in (tmp_path / "c.jsonl").read_text().splitlines()]
    assert [(r["action"], r.get("i")) for r in c] == [("configured", None), ("send", 1)]
    tracekit.shutdown()


@posix_only
def test_an_abandoned_stream_sink_closes_its_descriptor_once_and_only_when_done() -> None:
    # close() gave up on a writer stuck on a full pipe: the descriptor it writes to stays
    # open until that write ends, then is closed once (closed early, or twice, a number the
    # app reused was written to, or closed under the app)
    read_fd, write_fd = os.pipe()
    reader = _PipeReader(read_fd)
    stream = os.fdopen(write_fd, "wb")
    tracekit.configure(service="svc", source="s", sink=stream)
    sink = _sink()
    own = sink._write.fd  # type: ignore[attr-defined]
    tracekit.emit("REST", "request", pad="x" * 300_000)
    _wait_for(lambda: sink._busy and not sink._queue)
    closed: list[int] = []
    real_close = os.close

    def spy(fd: int) -> None:
        if fd == own:
            closed.append(fd)
        real_close(fd)

    try:
        os.close = spy  # type: ignore[assignment]
        tracekit.shutdown(timeout=0.3)
        assert closed == []  # the stuck write still uses it
        reader.start()
        sink._thread.join(5)
        assert closed == [own]
    finally:
        os.close = real_close  # type: ignore[assignment]
    stream.close()
    assert [len(e["pad"]) for e in reader.finish()] == [300_000]


# A fifth reading.


def test_a_loss_just_before_shutdown_is_still_reported_in_the_log(tmp_path: Any) -> None:
    path = tmp_path / "e.jsonl"
    tracekit.configure(service="svc", source="s", sink=path, max_queue=50)
    for i in range(5000):  # a burst overflows the queue right before the app exits
        tracekit.emit("APP", "burst", i=i)
    dropped = tracekit.stats()["dropped"]
    tracekit.shutdown()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    reports = [r for r in rows if r["action"] == "dropped"]
    assert dropped > 0 and sum(r["dropped"] for r in reports) == dropped
    assert len(rows) - len(reports) + dropped == 5000


def test_a_drop_report_is_written_when_the_queue_refilled_during_the_write_before_it(
    tmp_path: Any,
) -> None:
    # The race the burst test above hits under CPU load, made deterministic: the writer is
    # held in a write while the app fills the queue and overflows it. The report of that loss
    # is made right after the write, the queue still full: it must not be lost to the bound
    # (it was: counted as one more "queue full" drop, the 150 it carried reported nowhere).
    path = tmp_path / "e.jsonl"
    tracekit.configure(service="svc", source="s", sink=path, max_queue=50)
    sink = _sink()
    write = sink._write
    entered, gate = threading.Event(), threading.Event()

    def held(lines: list[bytes], events: list[Any]) -> None:
        if not gate.is_set():
            entered.set()
            gate.wait(10)
        write(lines, events)

    sink._write = held
    tracekit.emit("APP", "burst", i=0)
    assert entered.wait(5)  # the writer took event 0 and is in its write
    for i in range(1, 201):
        tracekit.emit("APP", "burst", i=i)  # 50 queued, 150 dropped
    gate.set()
    _wait_for(lambda: not sink._queue and not sink._busy and not sink._unreported)
    dropped = tracekit.stats()["dropped"]
    tracekit.shutdown()
    rows = [json.loads(line) for line in path.read_text().splitlines()]
    reports = [r for r in rows if r["action"] == "dropped"]
    assert dropped == 150
    assert [(r["dropped"], r["reason"]) for r in reports] == [(150, "queue full")]
    assert [r["i"] for r in rows if r["action"] == "burst"] == list(range(51))


def test_a_drop_counted_while_the_sink_closes_is_reported_before_its_writer_exits() -> None:
    out = io.BytesIO()
    sink = ThreadedSink(lambda lines, _events: out.write(b"".join(lines)), interval=60.0)
    reports: list[tuple[int, str]] = []

    def on_drop(n: int, reason: str) -> None:
        reports.append((n, reason))
        sink.submit({}, b"report\n")

    sink.on_drop = on_drop
    sink.submit({}, b"a\n")
    sink.flush()  # written: the writer waits for its next interval, nothing queued
    sink._stopped = True  # close() has begun (its wake-up of the writer not yet sent) ...
    sink.submit({}, b"late\n")  # ... when a thread that held the sink sends one more
    sink.close()
    assert sink.dropped == 1
    assert reports == [(1, "sink closed")]
    assert out.getvalue() == b"a\nreport\n"


@posix_only
def test_a_writer_given_up_on_a_non_blocking_pipe_exits_and_closes_its_descriptor() -> None:
    from tracekit._sinks import stream_sink

    read_fd, write_fd = os.pipe()
    os.set_blocking(write_fd, False)
    stream = os.fdopen(write_fd, "wb")
    sink = stream_sink(stream)
    own = sink._write.fd  # type: ignore[attr-defined]
    for _ in range(3000):  # nobody reads: the pipe fills
        sink.submit({}, b'{"x":"' + b"y" * 200 + b'"}\n')
    sink.close(0.5)
    _wait_for(lambda: not sink._thread.is_alive(), timeout=3.0)
    with pytest.raises(OSError):
        os.fstat(own)  # closed by the writer on its way out
    stream.close()
    os.close(read_fd)


def test_reconfiguring_many_times_keeps_no_finished_close_threads(tmp_path: Any) -> None:
    from tracekit import _core

    for i in range(30):
        tracekit.configure(service="svc", source="s", sink=tmp_path / f"{i}.jsonl")
        _wait_for(lambda: all(not t.is_alive() for t in _core._closing))
    assert len(_core._closing) <= 1
    tracekit.shutdown()


def test_a_late_event_goes_to_the_apps_own_sink_that_replaced_ours(tmp_path: Any) -> None:
    from tracekit import _core

    class Mine:
        def __init__(self) -> None:
            self.lines: list[bytes] = []
            self.dropped = 0

        def submit(self, event: Any, line: bytes) -> None:
            self.lines.append(line)

        def flush(self, timeout: float = 2.0) -> bool:
            return True

        def close(self, timeout: float = 2.0) -> None:
            pass

    tracekit.configure(service="svc", source="s", sink=tmp_path / "a.jsonl")
    a = _core._emitter
    assert a is not None
    mine = Mine()
    tracekit.configure(service="svc", source="s", sink=mine)
    a.write("CTRL", "send", {"i": 1}, 0)  # a thread still holding the old emitter
    assert [json.loads(line).get("i") for line in mine.lines] == [None, 1]  # configured, ours
    tracekit.shutdown()


def test_close_ends_promptly_while_an_app_thread_keeps_emitting() -> None:
    # Each event sent after close() began is a "sink closed" drop; reporting them after
    # every write started a new write each round, so close() ran to its timeout and gave up
    # on a healthy output. The writer now reports once, at the end; later drops are counted.
    import threading

    from tracekit._sinks import ThreadedSink

    out: list[bytes] = []

    def write(lines: list[bytes], events: list[Any]) -> None:
        time.sleep(0.005)  # a slow output: the app emits during every write
        out.extend(lines)

    sink = ThreadedSink(write, max_queue=1000, events=False)
    sink.on_drop = lambda n, reason: sink.submit(
        {}, json.dumps({"dropped": n, "reason": reason}).encode()
    )
    stop = threading.Event()

    def app() -> None:
        while not stop.is_set():
            sink.submit({}, b'{"x":1}')
            time.sleep(0)

    t = threading.Thread(target=app, daemon=True)
    t.start()
    time.sleep(0.1)
    sink.close(2.0)
    stop.set()
    t.join()
    assert not sink._abandoned  # the output was healthy: nothing given up
    reports = [json.loads(line) for line in out if b"dropped" in line]
    assert [r["reason"] for r in reports] == ["sink closed"]
    assert reports[0]["dropped"] + sink._unreported == sink.dropped
