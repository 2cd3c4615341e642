"""``check``'s note on log gaps says how many of the paths they hold are drops at least,
where a gap holds more paths than it lost events (review 23b)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

from typer.testing import CliRunner

from tracekit.cli._app import app

T0 = datetime(2026, 2, 9, 12, 0, tzinfo=UTC)
HOPS = ("CTRL.send", "REST.request", "REST.persist", "REST.response", "WS-BROADCAST.start")


def _logs(tmp_path: Path) -> Path:
    """u1 sends three messages to u2; the server delivers each; u2's app logs none of them,
    and its log lost one event (seq 2) meanwhile; a heartbeat a minute on in every log."""
    rows: dict[str, list[dict[str, object]]] = {"client-u1": [], "server-1": [], "client-u2": []}

    def ev(ms: float, event: str, source: str, actor: str, **more: object) -> None:
        stage, action = event.split(".")
        log = rows[source]
        seq = len(log) + 1 + (source == "client-u2" and len(log) >= 1)  # u2's seq 2: lost
        stamp = (T0 + timedelta(milliseconds=ms)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
        log.append(
            {"timestamp": stamp, "stage": stage, "action": action, "actor": actor,
             "source": source, "seq": seq, **more}
        )  # fmt: skip

    ev(-50, "TRACEKIT.heartbeat", "client-u2", "u2")
    for n in (1, 2, 3):
        trace = f"{n:032x}"
        for k, hop in enumerate(HOPS):
            server = hop in ("REST.persist", "WS-BROADCAST.start")
            extra: dict[str, object] = {"recipients": ["u2"]} if k == 4 else {}
            ev(100 * n + 5 * k, hop, "server-1" if server else "client-u1", "u1",
               trace_id=trace, conv_id="c1", **({"msg_id": f"m{n}"} if k == 2 else {}), **extra)  # fmt: skip
        ev(100 * n + 25, "WS-BROADCAST.deliver", "server-1", "server", trace_id=trace,
           conv_id="c1", peer="u2")  # fmt: skip
    ev(400, "TRACEKIT.heartbeat", "client-u2", "u2")
    for source, who in (("client-u1", "u1"), ("server-1", "server"), ("client-u2", "u2")):
        ev(60_000, "TRACEKIT.heartbeat", source, who)
    logs = tmp_path / "logs"
    logs.mkdir()
    for source, log in rows.items():
        (logs / f"{source}.jsonl").write_text("".join(json.dumps(r) + "\n" for r in log))
    return logs


def test_check_says_how_many_paths_a_gap_holds_are_drops_at_least(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["check", str(_logs(tmp_path)), "--max", "drop=0"])
    assert result.exit_code == 0, result.output
    assert (
        "note: 1 log_gap finding: events are missing from the logs (lost by the logging, or "
        "before a log began), and a drop where they are missing is indeterminate (though at "
        "least 2 of the paths they hold are drops), not counted as a drop: gate them with "
        "--max log_gap=0"
    ) in result.output
