"""kv reading, review 7: one rule for legacy tags whatever the prefix (a tag inside a
quoted value is text)."""

from __future__ import annotations

import pytest
from collectors_helpers import at, counts

from tracekit.collectors import MemorySource, collect, detect_format

TB = "b" * 32


# -- 6: a legacy tag inside a quoted value is text, with or without a prefix ----------------

QUOTED_TAG = (
    "stage=REST action=request trace_id={t} msg_id=m{i} event='[REST] Sending message'".format
)


@pytest.mark.parametrize(
    "prefix",
    [
        "timestamp=2026-01-01T10:00:0{i}Z ",  # bare: was read as kv
        "2026-01-01T10:00:0{i}Z INFO app: ",  # behind a logging prefix: was read as legacy
        "[2026-01-01T10:00:0{i}Z] [INFO] [app] ",
        "2026-01-01T10:00:0{i}.000000000Z stdout F ",  # a container runtime's prefix
    ],
)
def test_a_legacy_tag_inside_a_quoted_value_is_text_whatever_the_prefix(prefix: str) -> None:
    lines = [prefix.format(i=i) + QUOTED_TAG(t=TB, i=i) for i in range(4)]
    data = "\n".join(lines) + "\n"
    assert detect_format(data.encode()) == "kv"
    got = collect([MemorySource(data, name="client-a.log")])
    frame = got.events.collect()
    assert frame.select(
        "line", "stage", "action", "trace_id", "msg_id", "timestamp", "event"
    ).rows() == [
        (i + 1, "REST", "request", TB, f"m{i}", at(i), "[REST] Sending message") for i in range(4)
    ]
    assert counts(got) == (4, 4, 0, 0, {"kv": 1}, [])


def test_a_legacy_tag_inside_a_quoted_value_is_not_a_legacy_line_in_a_json_file() -> None:
    # among JSON lines, a tag inside a kv line's quoted value made the file legacy (mixed)
    obj = (
        '{"timestamp": "2026-01-01T10:00:0%d.000000Z", "stage": "CTRL", "action": "send", '
        f'"trace_id": "{TB}", "source": "client-a", "seq": %d}}'
    )
    lines = [obj % (i, i) for i in range(3)]
    lines.append("2026-01-01T10:00:04Z INFO app: " + QUOTED_TAG(t=TB, i=4))
    assert detect_format(("\n".join(lines) + "\n").encode()) == "jsonl"
