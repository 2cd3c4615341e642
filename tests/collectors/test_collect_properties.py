"""Properties: whatever garbage surrounds them, valid events are all kept and counts add up."""

from __future__ import annotations

import subprocess
import sys

import orjson
import pytest
from collectors_helpers import REPO, jl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.collectors import MemorySource, collect

garbage = st.one_of(
    st.binary(max_size=60).map(lambda b: b.replace(b"\n", b"")),
    st.text(max_size=60).map(lambda t: t.replace("\n", "").replace("\r", "").encode()),
    st.sampled_from([b"{", b"[]", b"null", b'{"stage": 1}', b"   ", b"", b"\x00\x00", b'{"a":']),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.one_of(st.integers(0, 10**6), garbage), max_size=40))
def test_jsonl_valid_events_survive_any_garbage(items: list[int | bytes]) -> None:
    lines = [orjson.dumps(jl(seq=i)) if isinstance(i, int) else i for i in items]
    data = b"".join(ln + b"\n" for ln in lines)
    got = collect([MemorySource(data, name="g", format="jsonl")])
    frame = got.events.collect()
    expected = [(n + 1, i) for n, i in enumerate(items) if isinstance(i, int)]
    kept = [(ln, s) for ln, s in frame.select("line", "seq").rows() if (ln, s) in expected]
    assert kept == expected  # every valid event, at its own line
    inputs = got.inputs
    blank = sum(1 for ln in lines if not ln.strip())
    assert inputs.lines == len(lines)
    assert inputs.events + inputs.malformed + blank == len(lines)


@settings(max_examples=40, deadline=None)
@given(st.lists(st.one_of(st.integers(0, 10**6), garbage), max_size=30))
def test_legacy_counts_add_up(items: list[int | bytes]) -> None:
    lines = [
        f"2026-11-25T10:00:00Z [REPO] Added message to store id=m{i}".encode()
        if isinstance(i, int)
        else i
        for i in items
    ]
    data = b"".join(ln + b"\n" for ln in lines)
    got = collect([MemorySource(data, name="t", format="legacy")])
    frame = got.events.collect()
    wanted = [f"m{i}" for i in items if isinstance(i, int)]
    assert [m for m in frame.get_column("msg_id").to_list() if m in wanted] == wanted
    inputs = got.inputs
    blank = sum(1 for ln in lines if not ln.decode("utf-8", "replace").strip())
    assert inputs.events + inputs.malformed + inputs.ignored + blank == inputs.lines == len(lines)


@pytest.mark.slow
def test_ingest_benchmark_smoke() -> None:
    done = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "ingest.py"),
            "--events",
            "20000",
            "--legacy-lines",
            "20000",
        ],
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert "| collect jsonl |" in done.stdout
    assert "| collect legacy | 20,000 |" in done.stdout
