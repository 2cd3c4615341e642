"""``run_demo``: the reference chat system on loopback, one scenario, logs + ground truth.

What ``tracekit demo`` calls. A real uvicorn server on 127.0.0.1 (free port, in a thread of
this process) over a real SQLite file, and one asyncio client per user, each emitting through
its own :class:`tracekit.Instrumentation`:

    OUT/server.jsonl         source chat-server-1, actor "server"
    OUT/client-uN.jsonl      source client-uN, actor uN
    OUT/ground_truth.json    what happened to every (message, recipient): see load.GroundTruth
    OUT/chat.db              the server's database

The process-wide tracekit configuration is neither used nor touched.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

import tracekit
from tracekit.chat.client import ChatClient
from tracekit.chat.load import (
    SCENARIOS,
    Expected,
    GroundTruth,
    LoadDriver,
    LoadPlan,
    ground_truth,
    plan_load,
)
from tracekit.chat.server import ServerOptions, create_app
from tracekit.chat.serving import ServerThread

__all__ = ["SCENARIOS", "DemoRun", "run_demo"]

SERVER_SOURCE = "chat-server-1"


@dataclass(frozen=True)
class DemoRun:
    scenario: str
    out: Path
    server_log: Path
    #: user -> its client's log
    client_logs: dict[str, Path]
    truth_path: Path
    truth: GroundTruth
    db_path: Path
    base_url: str
    duration_s: float
    #: how long the logs go on after the last delivery: an analysis grace window below this
    #: decides every drop (the built-in pipeline's 5 s would leave them ``in_flight``)
    tail_ms: int

    @property
    def logs(self) -> list[Path]:
        """Every JSON-lines log of the run (server first)."""
        return [self.server_log, *self.client_logs.values()]

    @property
    def lost(self) -> list[Expected]:
        """(message, recipient) that never reached ``CTRL.add``, with where it stopped."""
        return self.truth.lost

    @property
    def expected_findings(self) -> list[Expected]:
        """drops, duplicates and delays the analysis should report."""
        return self.truth.expected_findings


def run_demo(
    scenario: str = "race-bug",
    users: int = 3,
    messages: int = 20,
    out: Path = Path("tracekit-demo"),
    seed: int = 0,
    *,
    conversations: int = 2,
    tail: float = 1.2,
) -> DemoRun:
    """Run one scenario (``race-bug``, ``fixed`` or ``faults``) and return where it wrote.

    Same seed, same messages, ids and faults. Previous demo files in ``out`` are replaced.
    ``tail``: seconds the clients stay up after the last delivery before a final refresh
    (analyze with a grace window shorter than that, e.g. ``tail_ms - 200``).
    Raises ``ValueError`` for a bad scenario or size. Must not be called from a running event
    loop (use ``asyncio.to_thread``).
    """
    plan = plan_load(
        scenario, users=users, messages=messages, conversations=conversations, seed=seed
    )
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    server_log = out / "server.jsonl"
    client_logs = {u: out / f"client-{u}.jsonl" for u in plan.users}
    db_path = out / "chat.db"
    truth_path = out / "ground_truth.json"
    for stale in [server_log, truth_path, *out.glob("client-*.jsonl"), *out.glob("chat.db*")]:
        stale.unlink(missing_ok=True)

    started = time.monotonic()
    server_inst = tracekit.Instrumentation(
        service="chat-server", source=SERVER_SOURCE, actor="server", sink=server_log
    )
    options = ServerOptions(faults=plan.faults)  # the driver sets history_latency
    app = create_app(db_path, inst=server_inst, options=options)
    try:
        with ServerThread(app) as server:
            driver = asyncio.run(
                _drive(plan, options, client_logs, server.base_url, server.ws_url, tail)
            )
            base_url = server.base_url
    finally:
        server_inst.close()
    truth = ground_truth(plan, driver)
    truth.write(truth_path)
    return DemoRun(
        scenario=scenario,
        out=out,
        server_log=server_log,
        client_logs=client_logs,
        truth_path=truth_path,
        truth=truth,
        db_path=db_path,
        base_url=base_url,
        duration_s=round(time.monotonic() - started, 3),
        tail_ms=round(tail * 1000),
    )


async def _drive(
    plan: LoadPlan,
    options: ServerOptions,
    client_logs: dict[str, Path],
    base_url: str,
    ws_url: str,
    tail: float,
) -> LoadDriver:
    insts = {
        u: tracekit.Instrumentation(service="client", source=f"client-{u}", actor=u, sink=path)
        for u, path in client_logs.items()
    }
    clients = {
        u: ChatClient(base_url, ws_url, u, behaviour=plan.behaviour, inst=insts[u])
        for u in plan.users
    }
    try:
        setup = clients[plan.users[0]].rest
        for conv_id, members in plan.conversations.items():
            await setup.create_conversation(members, conv_id=conv_id)
        await asyncio.gather(
            *(
                c.start([cid for cid, m in plan.conversations.items() if u in m])
                for u, c in clients.items()
            )
        )
        driver = LoadDriver(plan, clients, base_url, options)
        await driver.run(tail=tail)
    finally:
        for client in clients.values():
            await client.close()
        for inst in insts.values():
            inst.close()
    return driver
