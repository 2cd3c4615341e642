"""`tracekit collect`: the OTLP/HTTP receiver as a command, fed by the real OTLP exporter."""

from __future__ import annotations

import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import tracekit

TID = "4bf92f3577b34da6a3ce929d0e0e4736"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_listening(port: int, proc: subprocess.Popen[str]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError("receiver did not start")


def test_collect_receives_spans_from_the_real_exporter(tmp_path: Path) -> None:
    port, out = _free_port(), tmp_path / "otlp.jsonl"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tracekit", "collect", "--port", str(port), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_listening(port, proc)
        provider = TracerProvider()
        provider.add_span_processor(
            SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"http://127.0.0.1:{port}/v1/traces"))
        )
        tracekit.configure(
            service="chat-server", source="chat-server-1", sink=tmp_path / "s.jsonl", otel=provider
        )
        with tracekit.message(TID, conv_id="c1", actor="server"):
            with tracekit.stage("REST", "persist", msg_id="m1"):
                pass
            with tracekit.stage("WS-BROADCAST", "deliver", peer="u2"):
                pass
        provider.shutdown()
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    assert f"listening on http://127.0.0.1:{port}" in err
    events = [json.loads(line) for line in out.read_text().splitlines()]
    assert [(e["stage"], e["action"], e["trace_id"]) for e in events] == [
        ("REST", "persist", TID),
        ("WS-BROADCAST", "deliver", TID),
    ]
    assert events[0]["msg_id"] == "m1" and events[1]["peer"] == "u2"
    assert [e["seq"] for e in events] == [1, 2]  # tracekit.seq carried on the spans


def test_collect_on_a_busy_port_exits_2(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = subprocess.run(
            [
                sys.executable,
                "-m",
                "tracekit",
                "collect",
                "--port",
                str(port),
                "--out",
                str(tmp_path / "x"),
            ],
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("tracekit: error:")
    assert "Traceback" not in proc.stderr
    # it never listened, and left no output file behind
    assert "listening on" not in proc.stderr
    assert not (tmp_path / "x").exists()
