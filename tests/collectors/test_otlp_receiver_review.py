"""The OTLP/HTTP receiver, from review C: the body limit after decompression, error replies as
google.rpc.Status, the signal of a JSON body, a failing on_events or output, the counters'
lock. Each test runs a real receiver on 127.0.0.1."""

from __future__ import annotations

import gzip
import io
import threading
import time
import zlib
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from google.rpc.status_pb2 import Status  # type: ignore[import-untyped]

from tracekit.collectors import otlp_receiver
from tracekit.collectors.otlp_receiver import OTLPReceiver

T = "5b8efff798038103d269b633813fc60c"
JSON = {"Content-Type": "application/json"}
PROTO = {"Content-Type": "application/x-protobuf"}


def _attr(key: str, value: str) -> dict[str, Any]:
    return {"key": key, "value": {"stringValue": value}}


SPANS = {
    "resourceSpans": [
        {
            "scopeSpans": [
                {
                    "spans": [
                        {
                            "traceId": T,
                            "spanId": "eee19b7ec3c1b174",
                            "name": "CTRL send",
                            "startTimeUnixNano": "1767225600000000000",
                            "attributes": [
                                _attr("tracekit.stage", "CTRL"),
                                _attr("tracekit.action", "send"),
                            ],
                        }
                    ]
                }
            ]
        }
    ]
}


@pytest.fixture
def receiver(tmp_path: Path) -> Any:
    out = tmp_path / "events.jsonl"
    with OTLPReceiver(out, port=0) as rx:
        yield rx, out


def _lines(out: Path) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in out.read_bytes().splitlines()]


def _status(resp: httpx.Response) -> tuple[int, str, int, str]:
    """(HTTP code, content type, Status.code, Status.message) of an error reply."""
    ctype = resp.headers["Content-Type"]
    if ctype == "application/json":
        doc = resp.json()
        assert set(doc) == {"code", "message"}
        return resp.status_code, ctype, doc["code"], doc["message"]
    status = Status.FromString(resp.content)
    return resp.status_code, ctype, status.code, status.message


def test_a_body_past_the_limit_once_decompressed_is_refused_with_413(
    receiver: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    rx, out = receiver
    monkeypatch.setattr(otlp_receiver, "MAX_BODY", 10_000)
    small = orjson.dumps(SPANS)
    big = small + b" " * 20_000  # valid JSON, 2 KB gzipped, 20 KB inflated
    too_large = (413, "application/json", 3, "body too large once decompressed (over 10000 bytes)")
    with httpx.Client(base_url=rx.url, timeout=5) as client:

        def post(body: bytes, encoding: str) -> httpx.Response:
            headers = JSON | {"Content-Encoding": encoding}
            return client.post("/v1/traces", content=body, headers=headers)

        assert len(gzip.compress(big)) < 10_000
        assert _status(post(gzip.compress(big), "gzip")) == too_large
        assert _status(post(zlib.compress(big), "deflate")) == too_large
        # several gzip members count together
        halves = gzip.compress(big[:12_000]) + gzip.compress(big[12_000:])
        assert _status(post(halves, "gzip")) == too_large
        assert (rx.rejected, rx.events) == (3, 0)
        # under the limit: read, also split over two members
        split = gzip.compress(small[:40]) + gzip.compress(small[40:])
        assert post(split, "gzip").status_code == 200
        assert post(zlib.compress(small), "deflate").status_code == 200
        assert _status(post(gzip.compress(small)[:-8], "gzip")) == (
            400,
            "application/json",
            3,
            "cannot decompress the body: truncated gzip body",
        )
    assert (rx.rejected, rx.events) == (4, 2)
    assert [line["trace_id"] for line in _lines(out)] == [T, T]


def test_error_replies_are_a_status_in_the_request_s_encoding(receiver: Any) -> None:
    rx, out = receiver
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        bad_proto = _status(client.post("/v1/traces", content=b"\xff\xff\xff", headers=PROTO))
        bad_json = _status(client.post("/v1/logs", content=b"{not json", headers=JSON))
        wrong_type = _status(
            client.post("/v1/traces", content=b"x", headers={"Content-Type": "text/plain"})
        )
        no_path = _status(client.post("/v1/metrics", content=b"{}", headers=JSON))
    assert bad_proto[:3] == (400, "application/x-protobuf", 3)
    assert bad_proto[3].startswith("cannot decode the OTLP body: DecodeError: ")
    assert bad_json[:3] == (400, "application/json", 3)
    # (orjson's own words vary by release: "unexpected character", "..., expected a string key")
    assert bad_json[3].startswith("cannot decode the OTLP body: JSONDecodeError: unexpected ")
    assert bad_json[3].endswith(": line 1 column 2 (char 1)")
    assert wrong_type == (
        415,
        "application/x-protobuf",
        3,
        "use application/x-protobuf or application/json",
    )
    assert no_path == (404, "application/json", 12, "only /v1/traces and /v1/logs")
    assert (rx.rejected, rx.events, out.read_bytes()) == (3, 0, b"")


def test_a_json_body_of_the_other_signal_is_refused(receiver: Any) -> None:
    rx, out = receiver
    logs = {"resourceLogs": SPANS["resourceSpans"]}
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        spans_to_logs = client.post("/v1/logs", content=orjson.dumps(SPANS), headers=JSON)
        logs_to_traces = client.post("/v1/traces", content=orjson.dumps(logs), headers=JSON)
    assert _status(spans_to_logs) == (
        400,
        "application/json",
        3,
        "cannot decode the OTLP body: ValueError: resourceSpans belong on /v1/traces, not /v1/logs",
    )
    assert _status(logs_to_traces) == (
        400,
        "application/json",
        3,
        "cannot decode the OTLP body: ValueError: resourceLogs belong on /v1/logs, not /v1/traces",
    )
    assert (rx.rejected, rx.events, rx.requests, out.read_bytes()) == (2, 0, 0, b"")


def test_an_on_events_error_still_answers_so_nothing_is_sent_twice(tmp_path: Path) -> None:
    out = tmp_path / "events.jsonl"
    seen: list[int] = []

    def on_events(events: list[dict[str, Any]]) -> None:
        seen.append(len(events))
        raise RuntimeError("the callback broke")

    with OTLPReceiver(out, port=0, on_events=on_events) as rx:
        with httpx.Client(base_url=rx.url, timeout=5) as client:
            first = client.post("/v1/traces", content=orjson.dumps(SPANS), headers=JSON)
            second = client.post("/v1/traces", content=orjson.dumps(SPANS), headers=JSON)
        assert [(r.status_code, r.json()) for r in (first, second)] == [(200, {})] * 2
        assert (rx.events, rx.requests, rx.callback_errors, seen) == (2, 2, 2, [1, 1])
    assert [line["trace_id"] for line in _lines(out)] == [T, T]


class _FullDisk(io.BytesIO):
    def write(self, data: Any) -> int:
        raise OSError(28, "No space left on device")


def test_an_output_that_cannot_be_written_is_a_500_status() -> None:
    with OTLPReceiver(_FullDisk(), port=0) as rx:
        with httpx.Client(base_url=rx.url, timeout=5) as client:
            resp = client.post("/v1/traces", content=orjson.dumps(SPANS), headers=JSON)
        assert _status(resp) == (
            500,
            "application/json",
            13,
            "the receiver failed: OSError: [Errno 28] No space left on device",
        )
        assert (rx.events, rx.requests) == (0, 0)


def test_rejected_is_counted_under_the_lock(receiver: Any) -> None:
    rx, _ = receiver
    answers: list[int] = []

    def post() -> None:
        with httpx.Client(base_url=rx.url, timeout=5) as client:
            answers.append(client.post("/v1/traces", content=b"{", headers=JSON).status_code)

    with rx._lock:  # a reader of the counters holds it: the count waits for it
        thread = threading.Thread(target=post)
        thread.start()
        time.sleep(0.3)
        assert (rx.rejected, answers) == (0, [])
    thread.join(5)
    assert (rx.rejected, answers) == (1, [400])


def test_a_gzip_body_with_nul_padding_after_its_last_member_is_read(receiver: Any) -> None:
    # review F #5: refused with 400 "incorrect header check" (gzip.decompress reads it)
    rx, out = receiver
    body = gzip.compress(orjson.dumps(SPANS)) + b"\x00" * 8
    with httpx.Client(base_url=rx.url, timeout=5) as client:
        headers = JSON | {"Content-Encoding": "gzip"}
        assert client.post("/v1/traces", content=body, headers=headers).status_code == 200
    assert (rx.rejected, rx.events) == (0, 1)
    assert [line["trace_id"] for line in _lines(out)] == [T]
