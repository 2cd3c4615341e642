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


def _collect(port: int, out: Path) -> subprocess.Popen[str]:
    """``tracekit collect`` in a process of its own (stopped with SIGINT, as Ctrl-C does)."""
    return subprocess.Popen(
        [sys.executable, "-m", "tracekit", "collect", "--port", str(port), "--out", str(out)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_collect_receives_spans_from_the_real_exporter(tmp_path: Path) -> None:
    port, out = _free_port(), tmp_path / "otlp.jsonl"
    proc = _collect(port, out)
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


def test_collect_says_what_it_received_and_refused_when_it_stops(tmp_path: Path) -> None:
    import httpx

    port, out = _free_port(), tmp_path / "otlp.jsonl"
    proc = _collect(port, out)
    span = {
        "traceId": TID,
        "spanId": "00f067aa0ba902b7",
        "name": "CTRL send",
        "startTimeUnixNano": "1700000000000000000",
        "attributes": [
            {"key": "tracekit.stage", "value": {"stringValue": "CTRL"}},
            {"key": "tracekit.action", "value": {"stringValue": "send"}},
        ],
    }
    spans = [span, {**span, "attributes": "not a list"}, {**span, "attributes": []}]
    try:
        _wait_listening(port, proc)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=10) as client:
            body = {"resourceSpans": [{"scopeSpans": [{"spans": spans}]}]}
            client.post("/v1/traces", json=body)
            client.post("/v1/traces", content=b"{", headers={"Content-Type": "application/json"})
    finally:
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    # said in the HTTP replies only, it reached nobody who reads the logs (review 19a)
    assert err.splitlines()[-1] == (
        f"tracekit collect: stopped: 1 event(s) from 1 request(s) -> {out}; 1 request(s) "
        "refused; 1 span(s) or record(s) unreadable (first: resourceSpans[0].scopeSpans[0]."
        "spans[1]: attributes are not a list (str)); 1 span(s) or record(s) of no tracekit stage"
    )
