"""Hand-written chat histories for the analyzer tests."""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import polars as pl
import pytest

from tracekit.analyzers import default_pipeline
from tracekit.table import events_frame

T0 = datetime(2026, 2, 9, 12, 0, 0, tzinfo=UTC)
SERVER = "server-1"
PIPE = default_pipeline()

FULL = (
    "CTRL.send",
    "REST.request",
    "REST.persist",
    "REST.response",
    "WS-BROADCAST.start",
)
PER_RECIPIENT = ("WS-BROADCAST.deliver", "WS-RECV.receive", "REPO.add", "CTRL.add")


def tid(n: int) -> str:
    return f"{n:032x}"


def client(user: str) -> str:
    return f"client-{user}"


class History:
    """Events appended in emission order; ``seq`` and ``line`` count per source."""

    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []
        self.seq: dict[str, int] = defaultdict(int)

    def ev(
        self,
        t_ms: float,
        hop: str,
        source: str,
        actor: str,
        *,
        trace: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        stage, action = hop.split(".", 1)
        seq = self.seq[source]
        self.seq[source] += 1
        row = {
            "timestamp": T0 + timedelta(milliseconds=t_ms),
            "stage": stage,
            "action": action,
            "event": hop,
            "trace_id": trace,
            "actor": actor,
            "source": source,
            "seq": seq,
            "file": f"{source}.jsonl",
            "line": seq + 1,
            **extra,
        }
        self.rows.append(row)
        return row

    def message(
        self,
        n: int,
        sender: str,
        recipients: Iterable[str] | None,
        *,
        conv: str = "c1",
        t: float = 0.0,
        stop: dict[str, str] | None = None,
        skip_message: Iterable[str] = (),
        offsets: dict[str, float] | None = None,
        step: float = 5.0,
        server: str = SERVER,
    ) -> str:
        """One message through the whole pipeline; ``stop[recipient]`` = first hop not logged.

        ``stop`` may name the key ``""`` for a message hop; ``skip_message`` leaves out single
        message hops. ``offsets`` shifts a source's timestamps (its clock runs ahead).
        ``server`` logs the message's server hops.
        """
        trace = tid(n)
        off = offsets or {}
        rec = list(recipients) if recipients is not None else None
        gone: set[str] = set(skip_message)
        for who, hop in (stop or {}).items():
            if who == "":
                gone |= {hop} | PIPE.descendants(hop)
        # send 0, request +5, persist +10, response +15, broadcast +20 (with step = 5)
        when = {h: t + k * step for k, h in enumerate(FULL)}
        for hop in FULL:
            if hop in gone:
                continue
            src = server if hop in ("REST.persist", "WS-BROADCAST.start") else client(sender)
            extra: dict[str, Any] = {"conv_id": conv}
            if hop == "REST.persist":
                extra["msg_id"] = f"m{n}"
            if hop == "WS-BROADCAST.start":
                extra["recipients"] = rec
            self.ev(when[hop] + off.get(src, 0.0), hop, src, sender, trace=trace, **extra)
        base = when["WS-BROADCAST.start"]
        for k, r in enumerate(rec or []):
            lost = set(gone)
            if r in (stop or {}):
                lost |= {stop[r]} | PIPE.descendants(stop[r])
            for j, hop in enumerate(PER_RECIPIENT):
                if hop in lost:
                    continue
                src = server if j == 0 else client(r)
                ts = base + step * (1 + j) + k * 0.5 + off.get(src, 0.0)
                if j == 0:
                    self.ev(ts, hop, src, "server", trace=trace, conv_id=conv, peer=r)
                else:
                    self.ev(ts, hop, src, r, trace=trace, conv_id=conv)
        return trace

    def frame(self) -> pl.LazyFrame:
        return events_frame(self.rows).lazy()

    def resend(self, n: int, t_ms: float, *, msg_id: str = "m1", sender: str = "u1") -> str:
        """Trace ``n``: ``sender``'s client re-sends message ``msg_id`` under a new trace (its
        request alone), the server answers from its idempotency and does not broadcast it."""
        at = {"trace": tid(n), "conv_id": "c1"}
        self.ev(t_ms, "REST.request", client(sender), sender, **at)
        self.ev(t_ms + 5, "REST.persist", SERVER, sender, msg_id=msg_id, **at)
        self.ev(t_ms + 10, "REST.response", client(sender), sender, msg_id=msg_id, **at)
        return tid(n)

    def shown(
        self, t_ms: float, source: str, user: str, *, trace: str, conv_id: str = "c1"
    ) -> None:
        """``user``'s app at ``source`` receives, stores and shows ``trace``: its three lines,
        1 ms apart from ``t_ms`` (a second device, or an app the test builds by hand)."""
        for k, hop in enumerate(PER_RECIPIENT[1:]):
            self.ev(t_ms + k, hop, source, user, trace=trace, conv_id=conv_id)

    def loaded(self, t_ms: float, user: str, *, trace: str, conv_id: str = "c1") -> None:
        """``user``'s app loads the conversation's history from ``t_ms`` (30 ms) and the load
        stores and shows ``trace``, with no receive: a reconnect's catch-up."""
        source = client(user)
        self.ev(t_ms, "REST.fetch_start", source, user, conv_id=conv_id)
        self.ev(t_ms + 30, "REST.fetch_end", source, user, conv_id=conv_id)
        for k, hop in enumerate(PER_RECIPIENT[2:]):
            self.ev(t_ms + 31 + k, hop, source, user, trace=trace, conv_id=conv_id)

    def tail(self, t_ms: float = 60_000.0, sources: Iterable[str] | None = None) -> None:
        """Heartbeats long after everything: the logs go on past any grace window. Only of
        ``sources`` where given (the others' logs end where they are)."""
        every = sources if sources is not None else {r["source"] for r in self.rows}
        for src in sorted(every):
            # a client's user: client-u2, client-u2-tablet -> u2
            user = src.removeprefix("client-").split("-")[0]
            self.ev(
                t_ms, "TRACEKIT.heartbeat", src, user if src.startswith("client-") else "server"
            )

    def write(
        self, tmp_path: Path, unreadable: tuple[str, str, str] | None = None
    ) -> tuple[Path, int | None]:
        """The events as JSON lines, a file per source, the line of ``unreadable`` (trace,
        hop, actor) with a time no reader takes; the logs' directory and that line's seq."""
        logs, at = tmp_path / "logs", None
        logs.mkdir()
        for row in self.rows:
            line = {k: v for k, v in row.items() if k not in ("file", "line") and v is not None}
            line["timestamp"] = row["timestamp"].strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            if (row["trace_id"], row["event"], row["actor"]) == unreadable:
                line["timestamp"] = "Wed " + line["timestamp"]
                at = row["seq"]
            with (logs / f"{row['source']}.jsonl").open("a") as fh:
                fh.write(json.dumps(line) + "\n")
        return logs, at

    tid = staticmethod(tid)
    client = staticmethod(client)

    @staticmethod
    def kinds(found: pl.DataFrame) -> list[tuple[Any, ...]]:
        return kinds(found)


@pytest.fixture
def history() -> History:
    return History()


def kinds(report_findings: pl.DataFrame) -> list[tuple[Any, ...]]:
    """(kind, trace_id, recipient, stage, last_seen) of every finding, in report order."""
    return [
        tuple(r)
        for r in report_findings.select(
            "kind", "trace_id", "recipient", "stage", "last_seen"
        ).iter_rows()
    ]
