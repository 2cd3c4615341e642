"""The compiled JSON lines scanner reads exactly what polars reads, or declines.

``tracekit/collectors/_jsonscan.c`` is a fast path: for every input it either returns the
String columns ``pl.read_ndjson`` gives with every key typed String (plus ``_ts_fast``, the
timestamps in tracekit's own layout), or None, and the reader falls back to polars. Keys it
is asked to code come as Categorical columns of the same values (a dictionary of the
distinct ones). These tests hold it to that: exact cases, a differential property test
against polars on generated and corrupted lines (plain and coded), and whole collections
with and without it.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import polars as pl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from polars.testing import assert_frame_equal

import tracekit.collectors._jsonl as jsonl
from tracekit.collectors import collect
from tracekit.collectors._normalize import RAW_COLUMNS
from tracekit.collectors._time import fast_iso_utc

KEYS = tuple(RAW_COLUMNS)
TS = KEYS.index("timestamp")
SCHEMA = pl.Schema({k: pl.String for k in KEYS})
ROOT = Path(__file__).resolve().parents[2]


def test_the_scanner_is_built() -> None:
    # The build is optional for users (setup.py); here it must exist, or every other test in
    # this file would pass on the fallback alone.
    assert jsonl._jsonscan is not None, "tracekit/collectors/_jsonscan.c did not build"


def native(data: bytes) -> pl.DataFrame | None:
    read = jsonl._native(data, KEYS, TS)
    if read is not None:
        assert read.plain == frozenset()  # (nothing coded)
    return None if read is None else read.frame


#: Every key but the timestamps coded (the reader codes the names; any key may be).
CODED = sum(1 << i for i in range(len(KEYS)) if i != TS)


def coded_as_text(data: bytes) -> pl.DataFrame | None:
    """The scanner's coded read, its Categorical columns back to text."""
    read = jsonl._native(data, KEYS, TS, CODED)
    if read is None:
        return None
    got = read.frame
    assert all(got.schema[k] == pl.Categorical() for k in KEYS if k != "timestamp")
    # a coded key is plain exactly when no value of it opens with [ or {, or is empty
    odd = {
        k
        for k in KEYS
        if any(v == "" or v[0] in "[{" for v in got.get_column(k).drop_nulls().cast(pl.String))
    }
    assert read.plain == frozenset(KEYS) - {"timestamp"} - odd
    return got.with_columns(pl.col(pl.Categorical()).cast(pl.String))


def polars_read(data: bytes) -> pl.DataFrame:
    return pl.read_ndjson(data, schema=SCHEMA)


def one(line: str, key: str = "msg_id") -> str | None:
    df = native(line.encode())
    assert df is not None, line
    value: str | None = df.get_column(key)[0]
    assert value == polars_read(line.encode()).get_column(key)[0]
    return value


@pytest.mark.parametrize(
    ("value", "text"),
    [
        ('"m1"', "m1"),
        ('"a longer value than twelve bytes"', "a longer value than twelve bytes"),
        ('"tab\\tquote\\"slash\\/"', 'tab\tquote"slash/'),
        ('"\\u00e9\\ud83d\\ude00"', "é😀"),
        ('"héllo wörld, ünïcode"', "héllo wörld, ünïcode"),
        ("12", "12"),
        ("-12", "-12"),
        ("123456789012345678", "123456789012345678"),
        ("0.12", "0.12"),
        ("-0.5", "-0.5"),
        ("5.0", "5"),
        ("10.000", "10"),
        ("0.000001", "0.000001"),
        ("12345678901234.5", "12345678901234.5"),
        ("true", "true"),
        ("false", "false"),
        ("null", None),
        ('["u1","u2"]', '["u1", "u2"]'),
        ('[ "u1" , "u2" ]', '["u1", "u2"]'),
        ("[]", "[]"),
        ("[ ]", "[]"),
    ],
)
def test_values_under_a_key_read_as_polars_reads_them(value: str, text: str | None) -> None:
    assert one('{"stage":"CTRL","msg_id":' + value + "}") == text


@pytest.mark.parametrize(
    "data",
    [
        b'{"msg_id":"a"}\n\n{"msg_id":"b"}',  # a blank line (the reader numbers lines)
        b'{"msg_id":"a","msg_id":"b"}',  # a duplicate key: polars keeps the first
        b'{"msg_id":"\\ud800"}',  # a lone surrogate: polars reads it, orjson does not
        b'{"msg_id":"a\\u0000b"}',
        b'{"msg_id":1e3}',  # polars renders it 1000
        b'{"other":1E400}',  # no double holds it: polars rejects the line
        b'{"other":1000000000e300}',
        b'{"other":[17976931348623159e292]}',
        b'{"other":340282366920938463463374607431768211456}',  # past 128 bits: rejected too
        b'{"msg_id":"a","other":[1' + b"0" * 39 + b"]}",
        b'{"msg_id":-0}',  # polars renders it 0
        b'{"msg_id":-0.0}',
        b'{"msg_id":1.50}',  # polars renders it 1.5
        b'{"msg_id":0.1234567890123456}',  # more digits than a float keeps
        b'{"msg_id":1234567890123456789}',
        b'{"msg_id":{"a":1}}',
        b'{"msg_id":[1,2]}',
        b'{"msg_id":["a\\"b"]}',  # polars mangles escapes in lists
        b'{"msg_\\u0069d":"a"}',  # an escaped key
        b'{"msg_id":"\xff"}',  # invalid UTF-8
        b'{"msg_id":"\xed\xa0\x80"}',  # an encoded surrogate
        b'{"msg_id":"a"',  # torn
        b'["msg_id"]',  # not an object
        b'{"msg_id":"a"} {"msg_id":"b"}',
        b'{"msg_id":"a",}',
        b'{"other":[1,2,{"x":tru}]}',  # invalid JSON under a key nobody reads
        b'{"a":' + b"[" * 70 + b"]" * 70 + b"}",  # deeper than the scanner goes
    ],
)
def test_what_it_does_not_read_exactly_it_leaves_to_polars(data: bytes) -> None:
    assert native(data) is None


def test_keys_nobody_reads_are_validated_and_skipped() -> None:
    line = (
        b'{"stage":"CTRL","nested":{"a":[1,2.5e3,{"b":null}],"c":"\\u00e9"},'
        b'"flag":true,"n":-1.5E-3,"action":"send"}'
    )
    df = native(line)
    assert df is not None
    assert_frame_equal(df.drop("_ts_fast"), polars_read(line))
    assert df.row(0, named=True)["action"] == "send"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-11-26T12:00:00Z", dt.datetime(2026, 11, 26, 12, tzinfo=dt.UTC)),
        ("2026-11-26T12:00:00.5Z", dt.datetime(2026, 11, 26, 12, 0, 0, 500000, tzinfo=dt.UTC)),
        ("2024-02-29T23:59:59.000001Z", dt.datetime(2024, 2, 29, 23, 59, 59, 1, tzinfo=dt.UTC)),
        ("1678-01-01T00:00:00Z", dt.datetime(1678, 1, 1, tzinfo=dt.UTC)),
        (
            "2261-12-31T23:59:59.999999Z",
            dt.datetime(2261, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        ),
        ("2262-01-01T00:00:00Z", None),  # past int64 nanoseconds' range: the general parser
        ("2023-02-29T00:00:00Z", None),
        ("2026-11-26T24:00:00Z", None),
        ("2026-11-26T12:00:00.Z", None),
        ("2026-11-26T12:00:00.1234567890Z", None),
        ("2026-11-26T12:00:00+00:00", None),
        ("2026-11-26 12:00:00Z", None),
    ],
)
def test_timestamps_in_tracekits_layout(text: str, expected: dt.datetime | None) -> None:
    df = native(('{"timestamp":"' + text + '"}').encode())
    assert df is not None
    assert df.get_column("_ts_fast")[0] == expected


def test_coded_keys_keep_every_value_many_distinct_ones_among_them() -> None:
    # Past the dictionary's first table (512 values) several times over, short values and
    # long ones (over 12 bytes: kept apart from their view), escaped, numbers, lists, nulls,
    # a key left out, and a value seen again long after its first line.
    values = [
        f'"m{i % 1500}"' if i % 7 else f'"a much longer message id number {i % 900}"'
        for i in range(6000)
    ]
    values[10], values[11], values[12], values[13] = '"tab\\tq"', "42", '["u1","u2"]', "null"
    values[5999] = values[1]
    lines = [f'{{"msg_id":{v},"stage":"S{i % 3}"}}' for i, v in enumerate(values)]
    lines[20] = '{"stage":"S2"}'
    data = "\n".join(lines).encode()
    plain, coded = native(data), coded_as_text(data)
    assert plain is not None and coded is not None
    assert_frame_equal(coded, plain)
    assert_frame_equal(plain.drop("_ts_fast"), polars_read(data))
    read = jsonl._native(data, KEYS, TS, CODED)
    assert read is not None
    assert "msg_id" not in read.plain  # (a list's text opens with a bracket)
    assert "stage" in read.plain
    ids = read.frame.get_column("msg_id")
    assert ids.n_unique() == polars_read(data).get_column("msg_id").n_unique() == 2361
    assert ids[5999] == ids[1] == "m1"
    assert ids.null_count() == 2


def test_nanoseconds_are_kept() -> None:
    df = native(b'{"timestamp":"2026-11-26T12:00:00.123456789Z"}')
    assert df is not None
    assert df.get_column("_ts_fast").cast(pl.Int64)[0] % 1_000_000_000 == 123456789


def test_an_input_is_split_between_two_threads_in_order(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(jsonl, "_SPLIT_BYTES", 64)
    data = b"".join(b'{"msg_id":"m%d","seq":%d}\n' % (i, i) for i in range(1000))
    df = native(data)
    assert df is not None
    assert df.get_column("seq").to_list() == [str(i) for i in range(1000)]
    assert df.n_chunks() == 2


@pytest.mark.parametrize(
    ("data", "lines"),
    [(b"", 0), (b"a", 1), (b"a\n", 1), (b"a\nb", 2), (b"\n\n", 2), (b"\n", 1), (b"a\r\nb\r\n", 2)],
)
def test_lines_are_counted_as_the_reader_numbers_them(data: bytes, lines: int) -> None:
    assert jsonl._jsonscan.count_lines(data) == lines


# ---- differential: generated lines, polars as the oracle ----

_NUMBER = st.one_of(
    st.from_regex(r"-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,18})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
    st.from_regex(r"-?[1-9][0-9]{30,45}", fullmatch=True),  # around polars' 128-bit bounds
    st.from_regex(r"[1-9][0-9]{0,12}[eE]\+?(29[0-9]|30[0-9])", fullmatch=True),  # near overflow
)
_TEXT = st.text(st.characters(codec="utf-8"), max_size=30)
_SCALAR = st.one_of(
    _TEXT.map(lambda t: json.dumps(t, ensure_ascii=False)),
    _TEXT.map(json.dumps),  # \u escapes, surrogate pairs
    _NUMBER,
    st.sampled_from(["true", "false", "null", '"\\ud800"', '"a\\/b"']),
    st.datetimes(min_value=dt.datetime(1600, 1, 1), max_value=dt.datetime(2300, 1, 1)).map(
        lambda d: '"' + d.isoformat() + "Z" + '"'
    ),
)
_VALUE = st.recursive(
    _SCALAR,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4).map(lambda xs: "[" + " , ".join(xs) + "]"),
        st.lists(inner, max_size=4).map(lambda xs: "[" + ",".join(xs) + "]"),
        st.dictionaries(st.sampled_from(["a", "b", "msg_id"]), inner, max_size=3).map(
            lambda d: "{" + ",".join(f'"{k}":{v}' for k, v in d.items()) + "}"
        ),
    ),
    max_leaves=6,
)
_KEY = st.sampled_from([*KEYS, "other", "nested", "ts"])
_WS = st.sampled_from(["", "", "", " ", "\t", "\r"])


@st.composite
def _line(draw: st.DrawFn) -> bytes:
    pairs = draw(st.lists(st.tuples(_KEY, _VALUE, _WS), max_size=8))
    body = ",".join(f'{ws}"{k}"{ws}:{ws}{v}{ws}' for k, v, ws in pairs)
    text = draw(_WS) + "{" + body + "}" + draw(_WS)
    raw = text.encode("utf-8", "surrogatepass")
    cut = draw(st.integers(0, 30))
    if cut == 1 and raw:  # now and then a torn line
        raw = raw[: draw(st.integers(0, len(raw) - 1))]
    elif cut == 2:  # or a stray byte
        at = draw(st.integers(0, len(raw)))
        raw = raw[:at] + draw(st.sampled_from([b"\xff", b"\x00", b",", b"}", b'"'])) + raw[at:]
    return raw


def _reads_exactly_what_polars_reads_or_declines(
    lines: list[bytes], trailing_newline: bool
) -> None:
    data = b"\n".join(lines) + (b"\n" if trailing_newline else b"")
    got = native(data)
    coded = coded_as_text(data)
    assert (got is None) == (coded is None)  # coding takes what it reads, never declines more
    if got is None or coded is None:
        return
    # it read the input: polars must read it too, to the same columns, row for row
    want = polars_read(data)
    assert_frame_equal(got.drop("_ts_fast"), want)
    assert_frame_equal(coded, got)
    fast = pl.select(fast_iso_utc(pl.lit(want.get_column("timestamp")))).to_series()
    parsed = got.get_column("_ts_fast")
    assert (parsed.is_null() | (parsed == fast)).fill_null(False).all()


_SETTINGS = {"deadline": None, "suppress_health_check": [HealthCheck.too_slow]}


@settings(max_examples=200, **_SETTINGS)  # type: ignore[arg-type]
@given(st.lists(_line(), min_size=1, max_size=6), st.booleans())
def test_the_scanner_reads_exactly_what_polars_reads_or_declines(
    lines: list[bytes], trailing_newline: bool
) -> None:
    _reads_exactly_what_polars_reads_or_declines(lines, trailing_newline)


@pytest.mark.slow
@settings(max_examples=1200, **_SETTINGS)  # type: ignore[arg-type]
@given(st.lists(_line(), min_size=1, max_size=6), st.booleans())
def test_the_scanner_reads_exactly_what_polars_reads_or_declines_at_length(
    lines: list[bytes], trailing_newline: bool
) -> None:
    _reads_exactly_what_polars_reads_or_declines(lines, trailing_newline)


# ---- whole collections, with and without the scanner ----


def _inputs() -> list[Path]:
    found = [*ROOT.glob("sample_logs/**/*.jsonl"), *ROOT.glob("tests/**/*.jsonl")]
    return sorted(p for p in found if p.is_file())


@pytest.mark.parametrize("path", _inputs(), ids=lambda p: str(p.relative_to(ROOT)))
def test_collections_do_not_depend_on_the_scanner(
    path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if path.is_relative_to(ROOT / "sample_logs"):  # tracekit's own logs: the scanner reads them
        assert native(path.read_bytes()) is not None
    with_scanner = collect([path])
    monkeypatch.setattr(jsonl, "_jsonscan", None)
    without = collect([path])
    assert_frame_equal(with_scanner.events.collect(), without.events.collect())
    assert with_scanner.inputs == without.inputs


def test_a_mixed_file_matches_with_and_without_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    lines = [
        '{"timestamp":"2026-11-26T12:00:00.000001Z","stage":"CTRL","action":"send",'
        f'"trace_id":"{i:032x}","msg_id":"m{i}","seq":{i},"duration_ms":{i}.5,'
        '"recipients":["u1","u2"],"extra":{"deep":[1,2]}}'
        for i in range(1, 200)
    ]
    lines[50] = lines[50].replace('"2026-11-26T12:00:00.000001Z"', '"2026-11-26T12:00:60Z"')
    lines[60] = lines[60].replace('"2026-11-26T12:00:00.000001Z"', "1764158400")
    path = tmp_path / "app.jsonl"
    path.write_text("\n".join(lines) + "\n")
    scanned = native(path.read_bytes())
    assert scanned is not None  # the scanner reads the file (the leap second it leaves unparsed)
    assert scanned.get_column("_ts_fast").null_count() == 2
    with_scanner = collect([path])
    monkeypatch.setattr(jsonl, "_jsonscan", None)
    without = collect([path])
    assert_frame_equal(with_scanner.events.collect(), without.events.collect())
    assert with_scanner.inputs == without.inputs
