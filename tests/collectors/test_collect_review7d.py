"""Review 7d: the cache version kept through review 7c's changes, detection and rerouting
that used another legacy-line rule than the legacy reader, a false unread-JSON warning for a
kv event left unread, and the cost of detecting legacy lines."""

from __future__ import annotations

from pathlib import Path

import orjson
from collectors_helpers import KJ, TA, UNREAD_KV, G, J, counts

from tracekit.collectors import _collect, collect
from tracekit.collectors._normalize import empty_table


def rows(got: object) -> list[tuple[object, ...]]:
    frame = got.events.collect()  # type: ignore[attr-defined]
    return frame.select("line", "stage", "action", "event").rows()


# -- 1: the cache version -------------------------------------------------------------------

LOGFMT_LEGACY = (
    'time=2026-01-01T10:00:00Z level=INFO msg="[REST] Sending message: clientMsgId=c1"\n'
)


def test_an_entry_cached_before_review_7c_is_not_reused(tmp_path: Path, monkeypatch) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "a.log").write_text(LOGFMT_LEGACY)
    cache = tmp_path / "cache"
    # an entry written by version 3, as review 7 read this line (ignored: no event)
    monkeypatch.setattr(_collect, "_CACHE_VERSION", 3)
    first = collect(logs, cache_dir=cache)
    assert not first.inputs.cached
    (parquet,) = cache.glob("*.parquet")
    empty_table().write_parquet(parquet)
    meta = parquet.with_suffix(".json")
    old = orjson.loads(meta.read_bytes())
    old.update(events=0, ignored=1)
    meta.write_bytes(orjson.dumps(old))
    assert collect(logs, cache_dir=cache).inputs.cached  # version 3 reads its own entry
    monkeypatch.undo()
    got = collect(logs, cache_dir=cache)
    assert not got.inputs.cached
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows() == [(1, "REST", "request")]
    assert (got.inputs.events, got.inputs.ignored) == (1, 0)


# -- 2: one legacy-line rule for detection, rerouting and the readers ----------------------

KVR = [  # structlog's KeyValueRenderer, no prefix, no stage= pair: legacy text in event=
    "timestamp='2026-01-01T10:00:00Z' level='info' event='[REST] Sending message: clientMsgId=c1'",
    "timestamp='2026-01-01T10:00:02Z' level='info' "
    "event='[REST-SEND] Message sent: id=msg1 clientMsgId=c1'",
]


def test_a_key_value_renderer_file_of_legacy_text_is_detected_as_legacy(tmp_path: Path) -> None:
    from tracekit.collectors import detect_format

    data = "\n".join(KVR) + "\n"
    assert detect_format(data.encode()) == "legacy"
    path = tmp_path / "app.log"
    path.write_text(data)
    got = collect(path)
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows() == [
        (1, "REST", "request"),
        (2, "REST", "response"),
    ]
    assert counts(got) == (2, 2, 0, 0, {"legacy": 1}, [])


KV_FILE = [
    f"stage=REST action=response trace_id={TA} msg_id=m1 ts=2026-01-01T10:00:01Z",
    'time=2026-01-01T10:00:02Z level=INFO msg="[REST] Sending message: clientMsgId=c1"',
    f"stage=WS action=recv trace_id={TA} msg_id=m1 ts=2026-01-01T10:00:03Z",
]


def test_logfmt_legacy_text_in_a_kv_file_goes_to_the_legacy_reader(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("\n".join(KV_FILE) + "\n")
    for formats in (None, ["kv", "legacy"]):
        got = collect(path, formats=formats)
        frame = got.events.collect()
        assert frame.select("line", "stage", "action").rows() == [
            (1, "REST", "response"),
            (2, "REST", "request"),
            (3, "WS", "recv"),
        ]
        assert counts(got) == (
            3,
            3,
            0,
            0,
            {"kv": 1, "legacy": 1},
            [
                f"{path}: 1 lines are legacy tagged lines among kv lines; "
                "read them with the legacy reader"
            ],
        )


def test_logfmt_legacy_text_in_a_kv_file_read_as_kv_only_is_malformed(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("\n".join(KV_FILE) + "\n")
    for formats in (["kv"], ["kv", "jsonl"]):
        got = collect(path, formats=formats)
        assert got.events.collect().get_column("line").to_list() == [1, 3]
        assert counts(got)[:5] == (3, 2, 1, 0, {"kv": 1})
        assert got.inputs.examples == [f"{path}:2: a legacy tagged line, not key=value text"]


# -- 3: a kv event holding JSON text left unread is no unread JSON event -------------------


def test_an_unread_kv_event_holding_json_text_is_warned_about_once(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("\n".join([G, KJ, G]) + "\n")
    for formats in (["legacy", "jsonl"], ["legacy"]):
        got = collect(path, formats=formats)
        assert got.events.collect().get_column("line").to_list() == [1, 3]
        assert counts(got) == (3, 2, 0, 1, {"legacy": 1}, [f"{path}: {UNREAD_KV}"])


def test_an_unread_kv_event_holding_json_text_among_json_lines(tmp_path: Path) -> None:
    path = tmp_path / "app.log"
    path.write_text("\n".join([G, KJ, J, G]) + "\n")
    # formats=['legacy'] (no jsonl): the JSON line is not read (review 8's test)
    for formats in (["legacy", "jsonl"],):
        got = collect(path, formats=formats)
        assert got.events.collect().get_column("line").to_list() == [1, 3, 4]
        assert counts(got) == (
            4,
            3,
            0,
            1,
            {"legacy": 1},
            [
                f"{path}: 1 lines are JSON objects among legacy text lines; "
                "read them as JSON lines",
                f"{path}: {UNREAD_KV}",
            ],
        )


# -- 5: a rerouted line the legacy reader ignores is named, not said to be read ------------


def test_a_rerouted_tagged_line_the_legacy_reader_ignores_is_named(tmp_path: Path) -> None:
    k = f"stage=WS action=broadcast trace_id={TA} msg_id=m1 ts=2026-01-01T10:00:01Z"
    mid = f"action=request trace_id={TA} note=x [REST] hi ts=2026-01-01T10:00:02Z"
    path = tmp_path / "app.log"
    path.write_text("\n".join([k, mid, k.replace("m1", "m3")]) + "\n")
    got = collect(path)
    assert got.events.collect().get_column("line").to_list() == [1, 3]
    assert counts(got) == (
        3,
        2,
        0,
        1,
        {"kv": 1, "legacy": 1},
        [
            f"{path}: 1 lines are legacy tagged lines among kv lines; read them with the "
            "legacy reader (1 of them not read as events, first: line 2)"
        ],
    )


def test_a_rerouted_kv_event_the_legacy_reader_ignores_is_the_kv_readers(tmp_path: Path) -> None:
    """Review 8: with a ``stage=`` pair the legacy reader gives it back to the kv reader."""
    k = f"stage=WS action=broadcast trace_id={TA} msg_id=m1 ts=2026-01-01T10:00:01Z"
    mid = f"stage=REST action=request trace_id={TA} note=x [REST] hi ts=2026-01-01T10:00:02Z"
    path = tmp_path / "app.log"
    path.write_text("\n".join([k, mid, k.replace("m1", "m3")]) + "\n")
    got = collect(path)
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows() == [
        (1, "WS", "broadcast"),
        (2, "REST", "request"),
        (3, "WS", "broadcast"),
    ]
    assert counts(got) == (
        3,
        3,
        0,
        0,
        {"kv": 1, "legacy": 1},
        [
            f"{path}: 1 lines are legacy tagged lines among kv lines; read them with the "
            "legacy reader (1 of them key=value events it gave back to the kv reader)",
        ],
    )
