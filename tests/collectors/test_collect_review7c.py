"""Review 7c: detection that hung on one short line, legacy text inside a key=value field,
``formats=[...]`` limiting the readers of a mixed file, and a false unread-JSON warning."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from datetime import UTC, datetime

TA = "a" * 32


def at(second: int) -> datetime:
    return datetime(2026, 1, 1, 10, 0, second, tzinfo=UTC)


def counts(got: object) -> tuple[object, ...]:
    i = got.inputs  # type: ignore[attr-defined]
    return (i.lines, i.events, i.malformed, i.ignored, i.formats, i.warnings)


# -- 1: detection of a line with an unclosed list of quotes ---------------------------------

# A list repr of empty strings cut before its ']' (a line limit): Python's re read each ''
# as an empty string or as two lone quotes and tried every way (2**n; 18 items took 12 s).
UNCLOSED = "2026-01-01T10:00:01Z INFO app: user=bob [REST] Sending message: clientMsgId=c2 ids=["
HANG_GUARD = textwrap.dedent(
    """
    import json
    from tracekit.collectors import MemorySource, collect, detect_format
    from tracekit.collectors._kv import legacy_tagged
    head = "2026-01-01T10:00:00Z INFO app: [REST] Sending message: clientMsgId=c1"
    line = {line!r} + "'', " * 30
    bare = "2026-01-01T10:00:00Z [REST] Sending ids=[" + "''" * 40
    data = head + "\\n" + line + "\\n"
    got = collect([MemorySource(data, name="client-a.log")])
    frame = got.events.collect()
    print(json.dumps({{
        "tagged": [legacy_tagged(line), legacy_tagged(bare)],
        "detected": [detect_format(data.encode()), detect_format((bare + "\\n").encode())],
        "rows": frame.select("line", "stage", "action", "event").rows(),
        "counts": [got.inputs.lines, got.inputs.events, got.inputs.ignored, got.inputs.formats],
    }}))
    """
)


def test_detection_of_an_unclosed_list_of_quotes_does_not_hang() -> None:
    # a hang guard, not a timing test: it finished in milliseconds; it hung for hours
    script = HANG_GUARD.format(line=UNCLOSED)
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=10, check=True
    )
    assert json.loads(done.stdout) == {
        "tagged": [True, True],
        "detected": ["legacy", "legacy"],
        "rows": [
            [1, "REST", "request", "[REST] Sending message: clientMsgId=c1"],
            [
                2,
                "REST",
                "request",
                ("[REST] Sending message: clientMsgId=c2 ids=[" + "'', " * 30)[:-1],
            ],
        ],
        "counts": [2, 2, 0, {"legacy": 1}],
    }


def test_detection_still_tells_a_tag_inside_a_quoted_value_from_one_outside() -> None:
    from tracekit.collectors._kv import legacy_tagged, legacy_tagged_lines

    lines = [
        "stage=REST action=request event='[REST] Sending message'",  # quoted: text
        "ids=['a', 'b]'] [REST] Sending message",  # after a list holding ']'
        "ids=['a', '[REST]'] note",  # inside a list's item
        "[REST] Sending message",  # no pairs at all
        "no tag=here",
    ]
    assert legacy_tagged_lines(lines) == [False, True, False, True, False]
    assert [legacy_tagged(line) for line in lines] == [False, True, False, True, False]
    assert legacy_tagged_lines([]) == []
