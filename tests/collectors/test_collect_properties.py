"""Properties: whatever garbage surrounds them, valid events are all kept and counts add up."""

from __future__ import annotations

import subprocess
import sys
from datetime import datetime

import orjson
import polars as pl
import pytest
from collectors_helpers import REPO, jl
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tracekit.collectors import MemorySource, collect
from tracekit.collectors._time import fast_iso_utc, parse_timestamps

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
    blank = _blank(lines)
    assert inputs.lines == len(lines)
    assert inputs.events + inputs.malformed + inputs.ignored + blank == len(lines)


def _blank(lines: list[bytes]) -> int:
    """Blank lines as the collectors see them: a byte order mark opening the input is
    encoding, not content."""
    first = [lines[0].removeprefix(b"\xef\xbb\xbf")] if lines else []
    return sum(1 for ln in first + lines[1:] if not ln.strip())


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
    blank = _blank(lines)
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


@settings(max_examples=200, deadline=None)
@given(
    st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2200, 1, 1)),
    st.integers(0, 9),
    st.integers(0, 999_999_999),
)
def test_fast_timestamps_match_the_general_parser(when: datetime, digits: int, nanos: int) -> None:
    frac = f".{nanos:09d}"[: digits + 1] if digits else ""
    text = when.strftime("%Y-%m-%dT%H:%M:%S") + frac + "Z"
    s = pl.Series([text, text.replace("T", " "), text[:-1]])
    fast = pl.select(fast_iso_utc(pl.lit(s))).to_series().to_list()
    general = parse_timestamps(s[:1]).values.to_list()
    assert fast[0] == general[0] and fast[0] is not None
    assert fast[1:] == [None, None]  # other layouts go to the general parser


@pytest.mark.parametrize(
    "text",
    ["2026-11-25T10:00:00.+12345Z", "2026-11-25T10:00:00.-12345Z", "2026-11-25T10:00:00.Z"],
)
def test_fast_timestamps_refuse_a_signed_or_empty_fraction(text: str) -> None:
    # An integer cast would take "+12345"; the general parser decides these (and rejects them).
    assert pl.select(fast_iso_utc(pl.lit(text))).item() is None


json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False)
    | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3)
    ),
    max_leaves=10,
)


otlp_junk = st.builds(
    lambda key, v: orjson.dumps({key: v}),
    st.sampled_from(["resourceSpans", "resourceLogs"]),
    st.lists(
        st.dictionaries(
            st.sampled_from(["scopeSpans", "scopeLogs", "resource"]),
            st.lists(st.dictionaries(st.sampled_from(["spans", "logRecords"]), json_values)),
        ),
        max_size=2,
    )
    | json_values,
)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(garbage, json_values.map(orjson.dumps), otlp_junk), max_size=20))
def test_no_reader_crashes_on_junk(lines: list[bytes]) -> None:
    data = b"".join(ln + b"\n" for ln in lines)
    for fmt in ("jsonl", "kv", "legacy", "otlp"):
        got = collect([MemorySource(data, name="j", format=fmt)])
        got.events.collect()
        assert got.inputs.lines == len(lines) or not data.strip()
