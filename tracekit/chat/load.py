"""Load generator with fault injection, and the ground truth of what it did.

:func:`plan_load` turns (scenario, users, messages, seed) into a deterministic plan: the
conversations, every message with its client message id (known before the run, so faults
can target it), the steps to play and the server's delivery faults. :class:`LoadDriver` plays
it against running clients; :func:`ground_truth` then records what really happened to every
(message, recipient), observed from the clients themselves, never from tracekit's logs.

Scenarios:

- ``race-bug`` / ``fixed``: bursts of messages in the group conversation while one member
  reloads its history (the server's history page takes ``history_latency`` seconds to land),
  then quieter messages anywhere; in every second burst the reloader writes one message
  itself. The race-bug client loses the burst (dropped before ``CTRL.add`` while the
  conversation is not loaded, overwritten by the page after ``CTRL.add`` once the reloader's
  own message loaded it again); the fixed one loses nothing.
- ``faults``: fixed clients, no overlapping reloads; one delivery dropped on the wire, one
  written twice, one recipient disconnected for two messages (it reconnects and reloads), and
  the last message delayed to one recipient.
"""

from __future__ import annotations

import asyncio
import collections
import random
import time
import uuid
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from tracekit.chat.client import Behaviour, ChatClient
from tracekit.chat.faults import DeliveryFaults
from tracekit.chat.server import ServerOptions
from tracekit.schema import trace_id_from_uuid

if TYPE_CHECKING:  # the chat system itself runs without polars (tracekit.analyzers needs it)
    from tracekit.analyzers import Pipeline

__all__ = [
    "SCENARIOS",
    "Expected",
    "GroundTruth",
    "LoadDriver",
    "LoadPlan",
    "PlannedMessage",
    "ground_truth",
    "plan_load",
]

SCENARIOS = ("race-bug", "fixed", "faults")
TRUTH_SCHEMA = "tracekit.demo-truth/1"


@dataclass(frozen=True, slots=True)
class PlannedMessage:
    index: int
    conv_id: str
    sender: str
    client_msg_id: str

    @property
    def trace_id(self) -> str:
        return trace_id_from_uuid(self.client_msg_id)

    @property
    def text(self) -> str:
        return f"message {self.index} from {self.sender}"


@dataclass(frozen=True, slots=True)
class Send:
    message: PlannedMessage


@dataclass(frozen=True, slots=True)
class Reload:
    """Reload ``conv_id`` on ``user``'s client; ``wait=False`` lets it run in the background."""

    user: str
    conv_id: str
    wait: bool = True


@dataclass(frozen=True, slots=True)
class Pause:
    seconds: float


@dataclass(frozen=True, slots=True)
class AwaitReloads:
    pass


@dataclass(frozen=True, slots=True)
class Disconnect:
    user: str


@dataclass(frozen=True, slots=True)
class Reconnect:
    user: str


Step = Send | Reload | Pause | AwaitReloads | Disconnect | Reconnect


@dataclass
class LoadPlan:
    scenario: str
    seed: int
    behaviour: Behaviour
    users: list[str]
    conversations: dict[str, list[str]]
    history_latency: float
    steps: list[Step] = field(default_factory=list)
    faults: DeliveryFaults = field(default_factory=DeliveryFaults)
    #: trace id -> recipients that are disconnected when it is sent
    offline: dict[str, set[str]] = field(default_factory=dict)

    @property
    def messages(self) -> list[PlannedMessage]:
        return [s.message for s in self.steps if isinstance(s, Send)]

    def recipients(self, msg: PlannedMessage) -> list[str]:
        """Who the server broadcasts ``msg`` to: every member but the sender."""
        return [u for u in self.conversations[msg.conv_id] if u != msg.sender]

    def expected_frames(self, msg: PlannedMessage, recipient: str) -> int:
        key = (msg.trace_id, recipient)
        if recipient in self.offline.get(msg.trace_id, ()) or key in self.faults.drop:
            return 0
        return 2 if key in self.faults.duplicate else 1


def plan_load(
    scenario: str,
    *,
    users: int = 3,
    messages: int = 20,
    conversations: int = 2,
    seed: int = 0,
    interval: float = 0.04,
    burst: int = 4,
    history_latency: float = 0.5,
) -> LoadPlan:
    """A deterministic plan for ``scenario`` (same seed, same messages, ids and faults)."""
    if scenario not in SCENARIOS:
        raise ValueError(f"scenario must be one of {', '.join(SCENARIOS)}, got {scenario!r}")
    if users < 2:
        raise ValueError("a chat needs at least 2 users")
    if messages < 1:
        raise ValueError("messages must be at least 1")
    rng = random.Random(seed)
    names = [f"u{i}" for i in range(1, users + 1)]
    convs = {"c1": list(names)}
    for k in range(2, conversations + 1):
        convs[f"c{k}"] = sorted(rng.sample(names, 2))
    plan = LoadPlan(
        scenario=scenario,
        seed=seed,
        behaviour="race-bug" if scenario == "race-bug" else "fixed",
        users=names,
        conversations=convs,
        history_latency=history_latency if scenario != "faults" else 0.0,
    )
    counter = iter(range(messages))

    def new(conv_id: str, sender: str) -> PlannedMessage:
        cmid = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        return PlannedMessage(next(counter), conv_id, sender, cmid)

    def send(conv_id: str, sender: str) -> PlannedMessage:
        msg = new(conv_id, sender)
        plan.steps += [Send(msg), Pause(interval)]
        return msg

    def quiet(n: int) -> None:
        for _ in range(n):
            conv_id = rng.choice(sorted(convs))
            send(conv_id, rng.choice(convs[conv_id]))

    if scenario in ("race-bug", "fixed"):
        left = messages
        bursts = 0
        while left > 0:
            # a burst lands while one member's history page of c1 is in flight; in every
            # second burst the reloader itself writes its third message, which puts c1 back
            # in a race-bug store: the burst's later messages reach CTRL.add there, and the
            # page then overwrites them (the seed bug's other half)
            reloader = rng.choice(names)
            plan.steps += [Reload(reloader, "c1", wait=False), Pause(0.02)]
            for k in range(min(burst, left)):
                own = bursts % 2 == 1 and k == 2
                send("c1", reloader if own else rng.choice([u for u in names if u != reloader]))
                left -= 1
            bursts += 1
            plan.steps.append(AwaitReloads())
            n = min(burst, left)
            quiet(n)
            left -= n
        return plan

    # faults: each fault on its own message, the disconnect mid-run, the delay last
    disconnect_at = max(4, messages // 2)
    for i in range(messages):
        if i == messages - 1 and i >= 1:
            msg = send("c1", rng.choice(names))
            plan.faults.delay[(msg.trace_id, rng.choice(plan.recipients(msg)))] = 0.8
        elif i == disconnect_at and i + 2 < messages - 1:
            gone = rng.choice(names)
            plan.steps.append(Disconnect(gone))
            for _ in range(2):
                msg = send("c1", rng.choice([u for u in names if u != gone]))
                plan.offline[msg.trace_id] = {gone}
            plan.steps.append(Reconnect(gone))
        elif i == disconnect_at + 1 and plan.offline:
            continue  # sent while disconnected, above
        elif i in (1, 3):
            msg = send("c1", rng.choice(names))
            target = (msg.trace_id, rng.choice(plan.recipients(msg)))
            (plan.faults.drop if i == 1 else plan.faults.duplicate).add(target)
        else:
            quiet(1)
    return plan


class LoadDriver:
    """Plays a :class:`LoadPlan` on running clients (one per user)."""

    def __init__(
        self,
        plan: LoadPlan,
        clients: dict[str, ChatClient],
        base_url: str,
        options: ServerOptions | None = None,
    ) -> None:
        """``options``: the in-process server's, to slow history pages only while the steps
        play (setup and the final refresh stay quick)."""
        self.plan = plan
        self.options = options
        self.clients = clients
        self.base_url = base_url
        #: trace id -> canonical msg_id the server assigned
        self.msg_ids: dict[str, str] = {}
        self._reloads: list[asyncio.Task[Any]] = []
        #: user -> client message ids its UI showed before the final refresh
        self.shown_before_refresh: dict[str, set[str]] = {}

    async def run(self, *, settle_timeout: float = 5.0, tail: float = 1.2) -> None:
        """Play the steps, wait for the expected frames, then after ``tail`` seconds every
        client refreshes its conversations: the logs go on ``tail`` past the last delivery
        (an analysis grace window shorter than that decides every drop), and the race-bug
        client's lost messages appear, as they did for its users, after a refresh."""
        async with httpx.AsyncClient(base_url=self.base_url, timeout=10.0) as http:
            if self.options is not None:
                self.options.history_latency = self.plan.history_latency
            try:
                for step in self.plan.steps:
                    await self._play(step, http)
                await self._await_reloads()
            finally:
                if self.options is not None:
                    self.options.history_latency = 0.0
            await self.settle(settle_timeout)
        self.shown_before_refresh = {
            u: {m.client_msg_id for conv in c.opened for m in c.messages(conv)}
            for u, c in self.clients.items()
        }
        await asyncio.sleep(tail)
        await asyncio.gather(*(self._refresh(c) for c in self.clients.values()))

    @staticmethod
    async def _refresh(client: ChatClient) -> None:
        for conv_id in client.opened:
            await client.open(conv_id)

    async def _play(self, step: Step, http: httpx.AsyncClient) -> None:
        if isinstance(step, Send):
            m = step.message
            sent = await self.clients[m.sender].send(
                m.conv_id, m.text, client_msg_id=m.client_msg_id
            )
            self.msg_ids[m.trace_id] = sent.id or ""
        elif isinstance(step, Pause):
            await asyncio.sleep(step.seconds)
        elif isinstance(step, Reload):
            job = self.clients[step.user].open(step.conv_id)
            if step.wait:
                await job
            else:
                reads = self.options.history_reads if self.options is not None else 0
                self._reloads.append(asyncio.create_task(job))
                await self._page_read(reads)
        elif isinstance(step, AwaitReloads):
            await self._await_reloads()
        elif isinstance(step, Disconnect):
            await self.clients[step.user].disconnect()
            await _wait_presence(http, step.user, online=False)
        elif isinstance(step, Reconnect):
            await self.clients[step.user].reconnect()
            await _wait_presence(http, step.user, online=True)

    async def _page_read(self, reads: int, timeout: float = 2.0) -> None:
        """Until the server has read the page (its snapshot predates what is sent next)."""
        if self.options is None:
            return
        deadline = time.monotonic() + timeout
        while self.options.history_reads <= reads and time.monotonic() < deadline:
            await asyncio.sleep(0.002)

    async def _await_reloads(self) -> None:
        reloads, self._reloads = self._reloads, []
        await asyncio.gather(*reloads)

    async def settle(self, timeout: float) -> bool:
        """Wait until every frame the plan expects has arrived (True) or ``timeout``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if all(
                collections.Counter(self.clients[r].socket.received)[m.trace_id]
                >= self.plan.expected_frames(m, r)
                for m in self.plan.messages
                for r in self.plan.recipients(m)
            ):
                return True
            await asyncio.sleep(0.02)
        return False


async def _wait_presence(http: httpx.AsyncClient, user: str, *, online: bool) -> None:
    # the server must have noticed before the next message, or the outcome is a coin toss
    for _ in range(500):
        r = await http.get("/presence")
        if (user in r.json()["online"]) == online:
            return
        await asyncio.sleep(0.01)
    raise TimeoutError(f"server never saw {user} {'connect' if online else 'disconnect'}")


@dataclass(frozen=True, slots=True)
class Expected:
    """One finding the analysis should report for this run (DESIGN.md section 5 kinds)."""

    kind: str
    trace_id: str
    recipient: str
    conv_id: str
    msg_id: str
    stage: str
    last_seen: str | None = None
    cause: str = ""
    #: the recipient's UI showed the message before the final refresh / after it
    shown: bool = False
    shown_after_refresh: bool = False


@dataclass
class GroundTruth:
    scenario: str
    seed: int
    behaviour: str
    users: list[str]
    conversations: dict[str, list[str]]
    #: every message: trace_id, client_msg_id, msg_id, conv_id, sender, recipients
    messages: list[dict[str, Any]]
    deliveries_expected: int
    #: (message, recipient) that never reached CTRL.add, with the hop where it stopped, or
    #: that reached it and was then taken off the recipient's screen by a race-bug history
    #: page (stage and last_seen CTRL.add)
    lost: list[Expected]
    #: (message, recipient) whose frame arrived more than once
    duplicates: list[Expected]
    #: deliveries the server delayed on purpose
    delayed: list[Expected]
    #: frames that arrived while their conversation's history load was in flight
    races: list[dict[str, str]]
    #: what the server's fault injection actually did, plus the planned disconnects
    faults_applied: list[dict[str, Any]]

    @property
    def expected_findings(self) -> list[Expected]:
        return [*self.lost, *self.duplicates, *self.delayed]

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["expected_findings"] = [asdict(e) for e in self.expected_findings]
        return {"schema": TRUTH_SCHEMA, **out}

    def write(self, path: Path) -> Path:
        import json

        path.write_text(json.dumps(self.as_dict(), indent=2) + "\n", encoding="utf-8")
        return path


def _expect(this: Expected, kind: str, stage: str, last_seen: str | None, cause: str) -> Expected:
    return replace(this, kind=kind, stage=stage, last_seen=last_seen, cause=cause)


def ground_truth(
    plan: LoadPlan, driver: LoadDriver, pipeline: Pipeline | None = None
) -> GroundTruth:
    """What happened to every (message, recipient), read from the clients' own state.

    A delivery is lost if it never reached ``CTRL.add`` (by the hop where it stopped) or if
    its socket message reached ``CTRL.add`` and a race-bug history page then replaced the
    store without it (shown again only by a later history load, such as the final refresh).

    ``pipeline`` (default: the built-in one) is the model the run will be analyzed with: a
    delay is an expected ``latency_outlier`` only if its hop has the pipeline's
    ``outlier_min_samples`` samples (the analyzer scores no hop with fewer), and an expected
    ``slo_breach`` only if it exceeds the pipeline's end-to-end SLO."""
    if pipeline is None:
        from tracekit.analyzers import default_pipeline

        pipeline = default_pipeline()
    model = pipeline
    # the end-to-end SLO (CTRL.send -> CTRL.add), if the model sets one
    e2e_slo = model.slo.get("end_to_end")
    slo_ms = None if e2e_slo is None else e2e_slo.total_seconds() * 1000
    clients = driver.clients
    messages: list[dict[str, Any]] = []
    lost: list[Expected] = []
    duplicates: list[Expected] = []
    delayed: list[Expected] = []
    expected = 0
    outliers: list[Expected] = []
    #: WS-BROADCAST.deliver -> WS-RECV.receive samples: (message, recipient) received at all
    receive_samples = 0
    dropped = {u: {m.client_msg_id for m in c.controller.dropped} for u, c in clients.items()}
    overwritten = {
        u: {m.client_msg_id for m in c.controller.overwritten} for u, c in clients.items()
    }
    for m in plan.messages:
        msg_id = driver.msg_ids.get(m.trace_id, "")
        recipients = plan.recipients(m)
        messages.append(
            {
                "trace_id": m.trace_id,
                "client_msg_id": m.client_msg_id,
                "msg_id": msg_id,
                "conv_id": m.conv_id,
                "sender": m.sender,
                "recipients": recipients,
            }
        )
        for r in recipients:
            expected += 1
            client = clients[r]
            frames = collections.Counter(client.socket.received)[m.trace_id]
            receive_samples += frames > 0
            after = any(x.client_msg_id == m.client_msg_id for x in client.messages(m.conv_id))
            shown = m.client_msg_id in driver.shown_before_refresh.get(r, ())
            this = Expected("", m.trace_id, r, m.conv_id, msg_id, "", None, "", shown, after)

            if m.client_msg_id in dropped[r]:
                lost.append(
                    _expect(
                        this, "drop", "CTRL.add", "REPO.add", "dropped by the race-bug controller"
                    )
                )
            elif frames == 0 and r in plan.offline.get(m.trace_id, ()):
                lost.append(
                    _expect(
                        this,
                        "drop",
                        "WS-BROADCAST.deliver",
                        "WS-BROADCAST.start",
                        "recipient disconnected",
                    )
                )
            elif frames == 0:
                lost.append(
                    _expect(
                        this,
                        "drop",
                        "WS-RECV.receive",
                        "WS-BROADCAST.deliver",
                        "frame lost on the wire",
                    )
                )
            elif m.client_msg_id in overwritten[r]:
                # CTRL.add was logged, then a race-bug history page replaced the store without
                # it: off the screen until a later history load (a refresh) showed it again
                lost.append(
                    _expect(
                        this,
                        "drop",
                        "CTRL.add",
                        "CTRL.add",
                        "overwritten by a history page after CTRL.add",
                    )
                )
            if frames > 1:
                duplicates.append(
                    _expect(
                        this,
                        "duplicate",
                        "WS-RECV.receive",
                        None,
                        f"frame delivered {frames} times",
                    )
                )
            if (m.trace_id, r) in plan.faults.delay:
                delay_ms = round(plan.faults.delay[(m.trace_id, r)] * 1000)
                outliers.append(
                    _expect(this, "latency_outlier", "WS-RECV.receive", "WS-BROADCAST.deliver",
                        f"delivery delayed {delay_ms} ms")
                )  # fmt: skip
                if slo_ms is not None and delay_ms > slo_ms:
                    delayed.append(
                        _expect(this, "slo_breach", "CTRL.add", "CTRL.send",
                            f"end to end above the {slo_ms:g} ms SLO")
                    )  # fmt: skip
    if receive_samples >= model.outlier_min_samples:
        delayed[:0] = outliers
    races = [
        {"recipient": u, "trace_id": t, "conv_id": c}
        for u, client in clients.items()
        for t, c in client.socket.races
    ]
    applied = list(plan.faults.applied)
    for trace_id, gone in plan.offline.items():
        applied += [{"kind": "disconnect", "trace_id": trace_id, "recipient": u} for u in gone]
    return GroundTruth(
        scenario=plan.scenario,
        seed=plan.seed,
        behaviour=plan.behaviour,
        users=plan.users,
        conversations=plan.conversations,
        messages=messages,
        deliveries_expected=expected,
        lost=lost,
        duplicates=duplicates,
        delayed=delayed,
        races=races,
        faults_applied=applied,
    )
