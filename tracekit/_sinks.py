"""Where events go. Writes never happen on the caller's thread (except the in-memory sink for
tests): ``submit`` appends to a bounded queue and a daemon thread writes batches, so a slow or
broken sink costs the application nothing. What could not be written is counted and reported.
"""

from __future__ import annotations

import atexit
import codecs
import io
import os
import select
import stat
import threading
import time
import weakref
from collections import deque
from collections.abc import Callable, Iterator, MutableMapping
from pathlib import Path
from typing import IO, Any, Final, Protocol, runtime_checkable

import orjson

__all__ = [
    "CallableSink",
    "DropReporter",
    "MemorySink",
    "Sink",
    "ThreadedSink",
    "file_sink",
    "make_sink",
    "stream_sink",
]

#: Called (from the writer thread) with the number of events lost since the last report and why.
DropReporter = Callable[[int, str], None]

#: Most events one ``write`` call gets.
_BATCH = 4096

#: Every ThreadedSink not yet closed: restarted in a forked child, flushed and closed at exit
#: (writer threads are daemons: whatever is still queued when the interpreter exits is lost).
_live: weakref.WeakSet[ThreadedSink] = weakref.WeakSet()


@runtime_checkable
class Sink(Protocol):
    """The one seam between the emitter and an output."""

    def submit(self, event: MutableMapping[str, Any], line: bytes) -> None:
        """Take one rendered event; must not block and must not raise."""

    def flush(self, timeout: float = 2.0) -> bool:
        """Write out what is queued. True when everything submitted since the previous flush
        was written: the queue emptied in time and no event was dropped since then."""

    def close(self, timeout: float = 2.0) -> None:
        """Flush and release the output."""

    @property
    def dropped(self) -> int:
        """Events lost so far (queue full or output failing)."""


class PartialWrite(Exception):
    """A write that failed after its first ``written`` lines were out (a full disk, a file size
    limit): only the rest of the batch is lost."""

    def __init__(self, written: int, cause: BaseException) -> None:
        super().__init__(f"{type(cause).__name__}: {cause}")
        self.written = written
        self.cause = cause


class ThreadedSink:
    """A bounded queue drained by one daemon writer thread.

    ``write`` gets one batch: the rendered lines and their event dicts (an empty list with
    ``events=False``). If it raises, the batch is counted as dropped; once a later write
    succeeds, ``on_drop`` is told how many were lost and why, so the loss itself lands in the
    log (as a ``TRACEKIT.dropped`` event; the writer queues that report past ``max_queue``).
    """

    def __init__(
        self,
        write: Callable[[list[bytes], list[MutableMapping[str, Any]]], None],
        *,
        close: Callable[[], None] | None = None,
        max_queue: int = 100_000,
        name: str = "tracekit-sink",
        events: bool = True,
        interval: float = 0.02,
        on_abandon: Callable[[], None] | None = None,
    ) -> None:
        self._write = write
        self._close = close
        self._on_abandon = on_abandon  # close() gave up on the output: stop writing it
        self._max_queue = max_queue
        # With ``events=False`` (files, streams) only the rendered lines are queued: the
        # writer's per-event work is one ``popleft`` and ``write`` gets ``(lines, [])``.
        self._events = events
        self._interval = interval
        self._queue: deque[Any] = deque()
        self._busy = False
        self._stopped = False
        # Events of the batch being written; close() takes them when it gives up on the output.
        self._inflight = 0
        self._abandoned = False  # close() gave up on a blocked output: never write again
        self._healthy = True  # the last write succeeded: a drop report can go out
        self._reporting = False  # the writer is in on_drop: its report is queued past the bound
        self._exited = False  # the writer thread has returned
        self._lock = threading.Lock()
        self._dropped = 0
        self._dropped_at_flush = 0  # what flush() compares with: drops since the last flush
        self._unreported = 0
        self._reason = ""
        self.on_drop: DropReporter | None = None
        #: The sink that replaced this one (set by ``configure``): counts drops after close.
        self.successor: Sink | None = None
        self._name = name
        self._wake = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()
        _live.add(self)

    @property
    def dropped(self) -> int:
        return self._dropped

    def submit(self, event: MutableMapping[str, Any], line: bytes) -> None:
        # deque.append is atomic: no lock, and no wake-up of the writer, on the hot path.
        if len(self._queue) < self._max_queue and not self._stopped:
            self._queue.append((event, line) if self._events else line)
            if self._stopped and self._exited:  # close() finished between check and append
                self._count_drop(self._discard_queue(), "sink closed")
            return
        if (
            (self._stopped or self._reporting)
            and threading.current_thread() is self._thread
            and not self._abandoned
        ):
            # The writer's own drop report: queued whatever the queue holds (one event per
            # report, one report per write at most). Held to the bound, it was lost whenever
            # the app refilled the queue during the write before it: counted as one more drop
            # while the count it carried was reported nowhere. Also, while close() drains the
            # queue, whatever the writer thread emits.
            self._queue.append((event, line) if self._events else line)
            return
        successor = self._live_successor()
        if self._stopped and successor is not None:
            # after configure() replaced this sink: an event a thread still sends here (a
            # stage that began before, a drop report in flight) goes to the sink in use
            successor.submit(event, line)
        else:
            self._count_drop(1, "sink closed" if self._stopped else "queue full")

    def _live_successor(self) -> Sink | None:
        """The sink in use that replaced this one, following replacements (A, then B, then C:
        C); None when there is none (or the chain loops: an app reusing its own sinks)."""
        seen = {id(self)}
        successor = self.successor
        while successor is not None and id(successor) not in seen:
            if not isinstance(successor, ThreadedSink):
                return successor  # the app's own Sink: in use, as far as we can know
            if not successor._stopped:
                return successor
            seen.add(id(successor))
            successor = successor.successor
        return None

    def _count_drop(self, n: int, reason: str) -> None:
        successor = self._live_successor()
        if isinstance(successor, ThreadedSink):
            # Lost after configure() replaced this sink (its queue failing while it closes):
            # the sink that replaced it counts and reports the loss (an app's own Sink has
            # no count to add to: counted here).
            successor._count_drop(n, f"{reason} (reconfigured)")
            successor._wake.set()  # to report it even if nothing else is written there
            return
        with self._lock:
            self._dropped += n
            self._unreported += n
            self._reason = reason

    def _run(self) -> None:
        # The writer wakes on a timer (``interval``), not per event: an app thread emitting
        # thousands of events a second hands the GIL to it about 50 times a second, and each
        # wake-up writes everything queued. It loops without waiting only while a full batch
        # is pending; ``flush`` and ``close`` wake it early.
        queue, wake = self._queue, self._wake
        final_report = False
        while not self._abandoned:
            drained = self._drain()
            if self._stopped:
                if queue:
                    continue
                if not final_report and self._unreported and self._healthy and not self._abandoned:
                    # drops counted since the last write (events sent after close() began):
                    # reported once, before the writer goes, as nobody else can write them.
                    # Once only: an app thread still emitting adds a drop during every
                    # write, and reporting each round kept close() busy until its timeout,
                    # which then gave up on a healthy output. Later drops stay counted. (Not
                    # once close() gave up on the output: the report could only be lost.)
                    final_report = True
                    self._report_drops()
                    if queue:
                        continue
                break
            if not drained and self._unreported and self._healthy and self.on_drop is not None:
                # drops counted while nothing was written (forwarded by a replaced sink, the
                # queue full): reported now, not only after the next event's write
                self._report_drops()
                continue
            if len(queue) < _BATCH:
                wake.wait(self._interval)
                wake.clear()
        with self._lock:
            self._exited = True
            abandoned = self._abandoned
        if abandoned:
            # close() gave up on this writer while it was stuck: the output is released
            # here, once the write that held it is over (never under it)
            self._release()

    def _release(self) -> None:
        with self._lock:
            close, self._close = self._close, None
        if close is not None:
            try:
                close()
            except Exception:
                pass

    def _drain(self) -> bool:
        queue = self._queue
        self._busy = True
        try:
            with self._lock:  # close() giving up takes what is in flight under it
                if self._abandoned:
                    return False
                items = []
                popleft = queue.popleft
                for _ in range(min(len(queue), _BATCH)):
                    try:
                        items.append(popleft())
                    except IndexError:  # close() emptied the queue meanwhile
                        break
                n = self._inflight = len(items)
            if not n:
                return False
            if self._events:
                events = [item[0] for item in items]
                lines = [item[1] for item in items]
            else:
                events, lines = [], items
            try:
                self._write(lines, events)
            except Exception as exc:  # a broken output must never reach the app
                self._healthy = False
                written = exc.written if isinstance(exc, PartialWrite) else 0
                cause = exc.cause if isinstance(exc, PartialWrite) else exc
                with self._lock:  # unless close() gave up on this batch and counted it
                    n, self._inflight = self._inflight, 0
                if n > written:
                    self._count_drop(n - written, f"sink error: {type(cause).__name__}: {cause}")
            else:
                self._inflight = 0
                self._healthy = True
                # not once close() gave up (a report could only be lost) or began (the
                # writer reports once at the end: see _run)
                if not self._abandoned and not self._stopped:
                    self._report_drops()
        finally:
            self._busy = False
        return True

    def _report_drops(self) -> None:
        if not self._unreported or self.on_drop is None:
            return
        with self._lock:
            n, reason, self._unreported = self._unreported, self._reason, 0
        self._reporting = True
        try:
            self.on_drop(n, reason)
        except Exception:
            pass
        finally:
            self._reporting = False

    def flush(self, timeout: float = 2.0) -> bool:
        """Wait until the queue is written. True when it was, in time, and no event was dropped
        since the previous ``flush`` (queue full, sink closed, the output failing)."""
        if not self._wait(timeout):
            return False
        dropped = self._dropped
        clean = dropped == self._dropped_at_flush
        self._dropped_at_flush = dropped
        return clean

    def _wait(self, timeout: float) -> bool:
        """Wait until the queue is written; False if the writer is gone or time ran out."""
        deadline = time.monotonic() + timeout
        while self._queue or self._busy:
            if not self._thread.is_alive():
                return False
            self._wake.set()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.001)
        return True

    def take_unreported(self) -> tuple[int, str, int]:
        """Hand over the drops counted but not reported yet (their report needs a write that
        succeeds): ``(count, last reason, how many drops, reported or not, no flush has seen
        yet)``; this sink will not report them. ``configure`` gives them to the sink replacing
        this one, whose next ``flush`` then says False."""
        with self._lock:
            n, reason, self._unreported = self._unreported, self._reason, 0
            unflushed = self._dropped - self._dropped_at_flush
            self._dropped_at_flush = self._dropped
        return n, reason, unflushed

    def adopt_drops(self, n: int, unflushed: int) -> None:
        """Count ``n`` unreported drops of a replaced sink (reported by the caller) as this
        sink's; the next ``flush`` is False when ``unflushed`` (all the replaced sink's drops
        since its last flush) > 0."""
        with self._lock:
            self._dropped += n
            self._dropped_at_flush += n - unflushed

    def _discard_queue(self) -> int:
        """Empty the queue (other threads may still append or pop); returns how many."""
        popleft, n = self._queue.popleft, 0
        while True:
            try:
                popleft()
            except IndexError:
                return n
            n += 1

    def _after_fork_in_child(self) -> None:
        """In a forked child the writer thread is gone (only the forking thread survives) and
        the queue holds the parent's events, which the parent writes: start again empty."""
        self._lock = threading.Lock()
        self._wake = threading.Event()
        self._queue = deque()
        self._busy = self._reporting = False
        self._inflight = 0
        self._dropped = self._dropped_at_flush = self._unreported = 0
        self._reason = ""
        if not self._stopped:
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    def stop_accepting(self) -> None:
        """Take no more events (counted as dropped, "sink closed"); what is queued is still
        written, and ``close`` then waits for it."""
        self._stopped = True
        self._wake.set()

    def close(self, timeout: float = 2.0) -> None:
        """Write what is queued and stop, within ``timeout`` in all. If the output blocks
        past it, the sink gives up on it: the events still queued are discarded and, with the
        batch the writer is stuck in, counted as dropped. That batch may yet get through if
        the output unblocks (counted anyway: a loss is never left uncounted); nothing after it
        is written."""
        _live.discard(self)
        if self._abandoned:
            return
        deadline = time.monotonic() + timeout
        # Nothing more is taken (a thread still emitting cannot keep the queue from emptying);
        # what is queued is written, within the timeout.
        self._stopped = True
        self._wait(timeout)  # not flush(): what the next flush() reports is left as it is
        self._wake.set()
        self._thread.join(max(0.0, deadline - time.monotonic()))
        release = True
        if self._thread.is_alive():
            with self._lock:  # the writer reads _abandoned under it as it exits
                inflight, self._inflight = self._inflight, 0
                self._abandoned = True
                release = self._exited  # it ended meanwhile: release here, else it will
            if self._on_abandon is not None:
                try:
                    self._on_abandon()
                except Exception:
                    pass
            lost = inflight + self._discard_queue()
            if lost:
                self._count_drop(lost, "sink closed: output blocked")
        elif self._queue:
            # appended by a thread that passed the ``_stopped`` check just before it was set
            self._count_drop(self._discard_queue(), "sink closed")
        # Released only once the writer is gone: a writer stuck in a write still uses the
        # output, and a descriptor closed under it may be reused by the app (then written
        # to). A stuck writer releases it itself when its write ends.
        if release:
            self._release()


def file_sink(path: str | os.PathLike[str], *, max_queue: int = 100_000) -> ThreadedSink:
    """Append JSON lines to ``path`` (parents created).

    Unbuffered: each batch is one ``write`` on an ``O_APPEND`` descriptor, so a forked child
    can keep writing to the same file (no inherited buffer to write twice, no buffer lock
    possibly held by the parent's writer thread at the fork)."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    write: _FdWriter | _FifoWriter
    if target.is_fifo():  # opened on the writer thread (:class:`_FifoWriter`)
        write = _FifoWriter(target)
        close = write.close
    else:
        fh = target.open("ab", buffering=0)
        # the stream sink's descriptor writer: partial writes, cut lines, a FIFO's PIPE_BUF
        write = _FdWriter(fh, fh.fileno(), ascii_only=False)
        close = fh.close
    return ThreadedSink(
        write,
        close=close,
        max_queue=max_queue,
        name=f"tracekit-{target.name}",
        events=False,
        on_abandon=write.stop,
    )


class _FifoWriter:
    """A FIFO's writer, opened on the writer thread at its first batch: opening a FIFO to
    write waits for a reader, which ``configure()`` must not (review 19b: it hung; 19c:
    refusing one with no reader yet crashed an app started before its log reader). Until a
    reader comes, events queue (and past ``max_queue`` are dropped and counted)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.writer: _FdWriter | None = None
        self.stopped = False

    def __call__(self, lines: list[bytes], events: list[MutableMapping[str, Any]]) -> None:
        if self.writer is None:
            fh = self.path.open("ab", buffering=0)  # (waits here for a reader)
            if self.stopped:  # the sink gave up meanwhile: write nothing
                fh.close()
                raise OSError("the sink was closed before a reader opened the FIFO")
            os.set_blocking(fh.fileno(), False)  # (a reader that stops: close() can give up)
            self.writer = _FdWriter(fh, fh.fileno(), ascii_only=False)
        self.writer(lines, events)

    def stop(self) -> None:
        self.stopped = True
        if self.writer is not None:
            self.writer.stop()

    def close(self) -> None:
        if self.writer is not None:
            self.writer.stream.close()


def _wait_writable(fd: int) -> None:
    try:
        select.select([], [fd], [], 0.1)
    except (ValueError, OSError):  # a descriptor select cannot watch (>= FD_SETSIZE)
        time.sleep(0.01)


def _write_all(fd: int, data: bytes, stopped: Callable[[], bool] = lambda: False) -> int:
    """Write ``data`` to ``fd`` with as many ``os.write`` calls as it takes (a non-blocking
    descriptor is waited on, as a blocking one would be, until ``stopped()``); returns how
    many bytes went out. An error after some bytes is raised as it is, with ``written`` on it
    (whole lines only are given: a caller stopping stops between them, never inside one)."""
    view = memoryview(data)
    done = 0
    while done < len(data):
        try:
            n = os.write(fd, view[done:])
        except BlockingIOError as exc:
            if stopped():  # close() gave up on this output: do not wait on it for ever
                exc.written = done  # type: ignore[attr-defined]
                raise
            _wait_writable(fd)
            continue
        except OSError as exc:
            exc.written = done  # type: ignore[attr-defined]
            raise
        if not n:
            err = OSError(f"short write to file descriptor {fd}")
            err.written = done  # type: ignore[attr-defined]
            raise err
        done += n
    return done


def _ascii_json(text: str) -> str:
    """JSON text with every non-ASCII character escaped (``\\u00e9``; a surrogate pair above
    U+FFFF): the same JSON once decoded, and the same bytes in any ASCII-compatible encoding."""
    out = []
    for ch in text:
        code = ord(ch)
        if code < 0x80:
            out.append(ch)
        elif code < 0x10000:
            out.append(f"\\u{code:04x}")
        else:
            code -= 0x10000
            out.append(f"\\u{0xD800 + (code >> 10):04x}\\u{0xDC00 + (code & 0x3FF):04x}")
    return "".join(out)


#: Every byte JSON text can hold once escaped to ASCII: an encoding must keep them as they are.
_PRINTABLE: Final = bytes(range(32, 127)) + b"\n"
#: The stream types whose ``fileno()`` is where their writes go (a notebook's OutStream, a
#: test's capture object and other look-alikes subclass or imitate them: written through).
_OS_STREAMS: Final = (io.TextIOWrapper, io.BufferedWriter, io.BufferedRandom, io.FileIO)


class _FdWriter:
    """The stream sink's ``write`` for an OS stream (stderr, a file, a pipe): each batch goes
    to a duplicate of the stream's descriptor with ``os.write``, never through the stream's
    buffer. The writer thread so never holds the stream's lock: a fork does not leave it held
    in the child (whose next write to the stream would hang), and interpreter exit does not
    find it held by a daemon thread stuck on a full pipe (a fatal error). The duplicate is
    ours: if the app closes its stream, the number it frees is not written to (events are
    then dropped and counted). On a pipe each write is whole lines of at most ``PIPE_BUF``
    bytes, which the kernel does not interleave with another process's (a forked child's). A
    text stream in an encoding other than UTF-8 gets ASCII JSON (non-ASCII characters
    escaped). What the app leaves in the stream's buffer reaches the output when the app
    flushes it, so an event may come before an app line written just before it."""

    def __init__(self, stream: IO[Any], fd: int, ascii_only: bool) -> None:
        self.stream = stream
        self.fd = fd
        self.ascii = ascii_only
        try:
            self.pipe = stat.S_ISFIFO(os.fstat(fd).st_mode)
        except OSError:
            self.pipe = False
        self.stopped = False  # close() gave up on a blocked output: write nothing more
        self.torn = False  # a failed write cut the last line: the next write ends it first

    def __call__(self, lines: list[bytes], _events: list[MutableMapping[str, Any]]) -> None:
        if getattr(self.stream, "closed", False):  # an attribute read: no lock of the stream's
            raise ValueError("write to a stream the application closed")
        if self.ascii:
            lines = [_ascii_json(line.decode()).encode() for line in lines]
        if self.torn:  # the cut line ends here (one malformed line) instead of taking ours
            lines = [b"\n" + lines[0], *lines[1:]]
        written = 0
        for chunk, n in self._chunks(lines):
            try:
                _write_all(self.fd, chunk, self._is_stopped)
            except OSError as exc:
                out = chunk[: getattr(exc, "written", 0)]
                whole = out.count(b"\n") - (1 if self.torn and not written else 0)
                if out:
                    self.torn = not out.endswith(b"\n")
                raise PartialWrite(written + max(whole, 0), exc) from exc
            self.torn = False
            if self.stopped:
                return
            written += n

    def _chunks(self, lines: list[bytes]) -> Iterator[tuple[bytes, int]]:
        if not self.pipe:
            yield b"".join(lines), len(lines)
            return
        limit = getattr(select, "PIPE_BUF", 512)
        chunk: list[bytes] = []
        size = 0
        for line in lines:
            if chunk and size + len(line) > limit:
                yield b"".join(chunk), len(chunk)
                chunk, size = [], 0
            chunk.append(line)
            size += len(line)
        if chunk:
            yield b"".join(chunk), len(chunk)

    def stop(self) -> None:
        """Write nothing more (the descriptor stays open while a stuck write may use it)."""
        self.stopped = True

    def _is_stopped(self) -> bool:
        return self.stopped

    def close(self) -> None:
        """Release the descriptor, once (the sink calls it only when its writer is gone)."""
        self.stopped = True
        fd, self.fd = self.fd, -1
        if fd >= 0:
            try:
                os.close(fd)
            except OSError:
                pass


def _os_fd(stream: IO[Any]) -> tuple[int, bool] | None:
    """A duplicate of ``stream``'s descriptor and whether its text must be ASCII, or None
    to write through the stream (not an OS stream, no descriptor)."""
    # Every layer a plain stdlib one down to the file: a TextIOWrapper over a GzipFile has
    # the file's descriptor too, but its bytes must go through the compressor.
    layer: Any = stream
    while type(layer) is not io.FileIO:
        if type(layer) not in _OS_STREAMS:
            return None
        layer = getattr(layer, "buffer", None) or getattr(layer, "raw", None)
    try:
        text = isinstance(stream, io.TextIOBase)
        encoding = codecs.lookup(getattr(stream, "encoding", None) or "utf-8").name
        if text and _PRINTABLE.decode("ascii").encode(encoding) != _PRINTABLE:
            return None  # not ASCII-compatible (UTF-16, EBCDIC, UTF-7): our bytes not its text
        fd = os.dup(stream.fileno())
    except Exception:  # io.UnsupportedOperation, a closed stream, an unknown encoding
        return None
    return fd, text and encoding != "utf-8"


def _may_write(stream: IO[Any]) -> bool:
    """Whether ``stream`` says it can be written: its own ``writable()`` where its class has
    one (a read-only gzip or wrapped binary file says False), not the ``IOBase`` default that
    an app's TextIOBase with only a ``write()`` inherits and that says False of it (review
    19c); else its text mode, where it has one."""
    own = getattr(type(stream), "writable", None)
    if own is not None and own is not io.IOBase.writable:
        try:
            return stream.writable() is not False
        except Exception:  # (a stream that cannot say: its writes will)
            return True
    mode = getattr(stream, "mode", None)
    return not (isinstance(mode, str) and mode and not set(mode) & set("wax+"))


def stream_sink(stream: IO[Any], *, max_queue: int = 100_000) -> ThreadedSink:
    """Write JSON lines to an open stream (text or binary); the stream is not closed by us.

    An OS stream (stderr, an open file, a pipe) is written at its descriptor (see
    :class:`_FdWriter`); any other stream object (``io.StringIO``, a notebook's output, a
    test's capture) through its ``write``, flushed after each batch. A stream closed or
    opened for reading only is refused here (review 19b: every event was lost, said only by
    ``flush()`` and ``stats()``)."""
    if getattr(stream, "closed", False) is True:
        raise OSError("the stream is closed")
    if not _may_write(stream):
        raise OSError("the stream is not open for writing")
    os_fd = _os_fd(stream)
    if os_fd is not None:
        writer = _FdWriter(stream, *os_fd)
        return ThreadedSink(
            writer,
            close=writer.close,
            max_queue=max_queue,
            name="tracekit-stream",
            events=False,
            on_abandon=writer.stop,
        )
    mode = getattr(stream, "mode", "b")  # (a GzipFile's is an int: binary)
    text = isinstance(stream, io.TextIOBase) or (isinstance(mode, str) and "b" not in mode)

    def write(lines: list[bytes], _events: list[MutableMapping[str, Any]]) -> None:
        data = b"".join(lines)
        if not text:
            stream.write(data)
        else:
            chunk = data.decode()
            try:
                stream.write(chunk)
            except UnicodeEncodeError:  # an ASCII/Latin-1 stream: the same JSON, escaped
                stream.write(_ascii_json(chunk))
        stream.flush()

    return ThreadedSink(write, max_queue=max_queue, name="tracekit-stream", events=False)


class CallableSink(ThreadedSink):
    """Hand each event dict to a function, on the writer thread.

    The function gets the event as it was written (parsed from its line, a new dict each
    time): never the app's own objects, which the app may change between ``emit()`` and the
    delivery (text it adds to them after would reach the function unredacted). Only the
    rendered lines are queued, as for files.

    Each event is offered on its own: an event the function raises on is counted as dropped
    (and reported), the others of its batch are still delivered. When it raises on every event
    of a batch, the batch counts as a failed write: nothing is reported until an event gets
    through (so a function that rejects everything, its drop reports included, does not make
    the writer report in a loop)."""

    def __init__(
        self, fn: Callable[[MutableMapping[str, Any]], object], *, max_queue: int = 100_000
    ) -> None:
        self._fn = fn
        super().__init__(self._deliver, max_queue=max_queue, name="tracekit-callable", events=False)

    def _deliver(self, lines: list[bytes], _events: list[MutableMapping[str, Any]]) -> None:
        fn = self._fn
        failed = 0
        error: Exception | None = None
        for line in lines:
            if self._abandoned:  # close() gave up on this batch and counted it as dropped
                return
            try:
                fn(orjson.loads(line))
            except Exception as exc:
                failed += 1
                error = exc
        if error is None:
            return
        if failed == len(lines):
            raise error
        if not self._abandoned:
            self._count_drop(failed, f"sink error: {type(error).__name__}: {error}")


class MemorySink:
    """Keep events in a list, synchronously: for tests (see ``tracekit.testing``). Each event
    is kept as it was written (parsed from its line): not the app's own objects, which it may
    change after ``emit()``."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.lines: list[bytes] = []

    @property
    def dropped(self) -> int:
        return 0

    def submit(self, event: MutableMapping[str, Any], line: bytes) -> None:
        self.events.append(orjson.loads(line))
        self.lines.append(line)

    def flush(self, timeout: float = 2.0) -> bool:
        return True

    def close(self, timeout: float = 2.0) -> None:
        return None


SinkSpec = str | os.PathLike[str] | IO[Any] | Callable[[MutableMapping[str, Any]], object] | Sink


def make_sink(spec: SinkSpec, *, max_queue: int = 100_000) -> Sink:
    """Turn what ``configure(sink=...)`` accepts into a :class:`Sink`."""
    if isinstance(spec, str | os.PathLike):
        return file_sink(spec, max_queue=max_queue)
    if isinstance(spec, Sink):
        return spec
    if hasattr(spec, "write"):
        return stream_sink(spec, max_queue=max_queue)  # type: ignore[arg-type]
    if callable(spec):
        return CallableSink(spec, max_queue=max_queue)
    raise TypeError(f"cannot use {spec!r} as a sink: give a path, a stream, a callable or a Sink")


def _restart_in_child() -> None:
    for sink in list(_live):
        try:
            sink._after_fork_in_child()
        except Exception:
            pass


def close_all(timeout: float = 2.0) -> None:
    """Flush and close every sink still open: ``configure()``'s (if ``shutdown`` has not
    already closed it), every ``Instrumentation``'s, any made by ``make_sink``. Runs at exit.
    All writers are woken first, so they write at once; ``timeout`` bounds the whole call (a
    stuck output does not hold up the others' turn by more than its share)."""
    sinks = list(_live)
    for sink in sinks:
        sink._wake.set()
    deadline = time.monotonic() + timeout
    for sink in sinks:
        try:
            sink.close(max(0.05, deadline - time.monotonic()))
        except Exception:
            pass


atexit.register(close_all)
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_restart_in_child)
