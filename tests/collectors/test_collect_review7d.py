"""Review 7d: the cache version kept through review 7c's changes, detection and rerouting
that used another legacy-line rule than the legacy reader, a false unread-JSON warning for a
kv event left unread, and the cost of detecting legacy lines."""

from __future__ import annotations

from pathlib import Path

import orjson

from tracekit.collectors import _collect, collect
from tracekit.collectors._normalize import empty_table

TA = "a" * 32


def counts(got: object) -> tuple[object, ...]:
    i = got.inputs  # type: ignore[attr-defined]
    return (i.lines, i.events, i.malformed, i.ignored, i.formats, i.warnings)


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
