"""Review 7c: detection that hung on one short line, legacy text inside a key=value field,
``formats=[...]`` limiting the readers of a mixed file, and a false unread-JSON warning."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from collectors_helpers import at, counts

from tracekit.collectors import MemorySource, collect, detect_format

TA = "a" * 32


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
        "stage=REST ids=['a', '[REST]'] note",  # inside a list's item of a kv event
        "ids=['a', '[REST]'] note",  # the same, no kv event: a legacy line (review 7d)
        "[REST] Sending message",  # no pairs at all
        "no tag=here",
    ]
    assert legacy_tagged_lines(lines) == [False, True, False, True, True, False]
    assert [legacy_tagged(line) for line in lines] == [False, True, False, True, True, False]
    assert legacy_tagged_lines([]) == []


# -- 2: legacy text inside a key=value field is the legacy reader's -------------------------

T_C1 = "31427f06c6bea455361219410e6c0d1c"  # the legacy reader's trace id for client message c1
SENT = "Message sent: id=msg1 clientMsgId=c1"
LOGFMT = [  # a legacy app logging through a logfmt handler (Go slog's TextHandler, logrus)
    'time=2026-01-01T10:00:00Z level=INFO msg="[REST] Sending message: clientMsgId=c1"',
    f'time=2026-01-01T10:00:01Z level=INFO msg="[REST-SEND] {SENT}"',
    'time=2026-01-01T10:00:02Z level=INFO msg="[WS-BROADCAST] Sending to userId=u2 id=msg1"',
    'time=2026-01-01T10:00:03Z level=INFO msg="[WS-RECV] Received event type=message:created id=msg1"',
]
LOGFMT_ROWS = [
    (1, "REST", "request", T_C1, None, at(0), "[REST] Sending message: clientMsgId=c1"),
    (2, "REST", "response", T_C1, "msg1", at(1), f"[REST-SEND] {SENT}"),
    (
        3,
        "WS-BROADCAST",
        "deliver",
        T_C1,
        "msg1",
        at(2),
        "[WS-BROADCAST] Sending to userId=u2 id=msg1",
    ),
    (
        4,
        "WS-RECV",
        "receive",
        T_C1,
        "msg1",
        at(3),
        "[WS-RECV] Received event type=message:created id=msg1",
    ),
]
STRUCTLOG = [  # structlog's KeyValueRenderer behind a logging prefix, no stage= pair
    "2026-01-01T10:00:00Z INFO app: event='[REST] Sending message: clientMsgId=c1'",
    f"2026-01-01T10:00:01Z INFO app: event='[REST-SEND] {SENT}'",
]
STRUCTLOG_ROWS = [
    (1, "REST", "request", T_C1, None, at(0), "[REST] Sending message: clientMsgId=c1"),
    (2, "REST", "response", T_C1, "msg1", at(1), f"[REST-SEND] {SENT}"),
]


def rows(got: object) -> list[tuple[object, ...]]:
    frame = got.events.collect()  # type: ignore[attr-defined]
    cols = ("line", "stage", "action", "trace_id", "msg_id", "timestamp", "event")
    return frame.select(*cols).rows()  # type: ignore[no-any-return]


@pytest.mark.parametrize("formats", [None, ["legacy"]])
@pytest.mark.parametrize(
    ("lines", "expected"),
    [(LOGFMT, LOGFMT_ROWS), (STRUCTLOG, STRUCTLOG_ROWS)],
    ids=["logfmt", "kvr"],
)
def test_legacy_text_inside_a_pairs_value_is_read_as_legacy(
    lines: list[str], expected: list[tuple[object, ...]], formats: list[str] | None
) -> None:
    # were: every line ignored, no warning (the tag inside a value was no tag)
    data = "\n".join(lines) + "\n"
    assert detect_format(data.encode()) == "legacy"
    got = collect([MemorySource(data, name="client-a.log")], formats=formats)
    assert rows(got) == expected
    n = len(lines)
    assert counts(got) == (n, n, 0, 0, {"legacy": 1}, [])


def test_a_kv_event_quoting_a_tag_among_logfmt_legacy_lines_is_still_the_kv_readers() -> None:
    kv = f"time=2026-01-01T10:00:04Z stage=REST action=request trace_id={TA} msg_id=m5 event='[REST] x'"
    got = collect([MemorySource([*LOGFMT, kv], name="client-a.log")])
    assert rows(got) == [*LOGFMT_ROWS, (5, "REST", "request", TA, "m5", at(4), "[REST] x")]
    among = "client-a.log: 1 lines are key=value events among legacy lines; read them with the kv reader"
    assert counts(got) == (5, 5, 0, 0, {"legacy": 1, "kv": 1}, [among])


# -- 3: formats=[...] with several formats limits the readers of a mixed file --------------

LEGACY = [
    "2026-01-01T10:00:00Z [REST] Sending message: clientMsgId=c1",
    f"stage=WS action=broadcast trace_id={TA} msg_id=m1 ts=2026-01-01T10:00:01Z",
    "2026-01-01T10:00:02Z [REST-SEND] Message sent: id=msg1 clientMsgId=c1",
]
LEGACY_ROWS = [
    (1, "REST", "request", T_C1, None, at(0), "[REST] Sending message: clientMsgId=c1"),
    (3, "REST", "response", T_C1, "msg1", at(2), f"[REST-SEND] {SENT}"),
]
KV_ROW = (2, "WS", "broadcast", TA, "m1", at(1), None)
UNREAD_KV = (
    "client-a.log: 1 lines look like key=value events but were not read as such (first: line "
    "{first}); a key=value event is read in a file read as kv (detected when most of its first "
    "lines are such events, or formats=['kv'])"
)


@pytest.mark.parametrize("formats", [["legacy", "jsonl"], ["jsonl", "legacy"], ["legacy"]])
def test_formats_without_kv_leave_kv_events_in_a_legacy_file_unread(formats: list[str]) -> None:
    # were, with two formats: read by the kv reader (formats {'legacy': 1, 'kv': 1})
    assert detect_format(("\n".join(LEGACY) + "\n").encode()) == "legacy"
    got = collect([MemorySource(LEGACY, name="client-a.log")], formats=formats)
    assert rows(got) == LEGACY_ROWS
    assert counts(got) == (3, 2, 0, 1, {"legacy": 1}, [UNREAD_KV.format(first=2)])


def test_formats_with_kv_read_kv_events_in_a_legacy_file() -> None:
    got = collect([MemorySource(LEGACY, name="client-a.log")], formats=["legacy", "kv"])
    assert rows(got) == [LEGACY_ROWS[0], KV_ROW, LEGACY_ROWS[1]]
    among = (
        "client-a.log: 1 lines are key=value events among legacy lines; read them with the kv "
        "reader"
    )
    assert counts(got) == (3, 3, 0, 0, {"legacy": 1, "kv": 1}, [among])


KV_FILE = [
    f"stage=REST action=response trace_id={TA} msg_id=m1 ts=2026-01-01T10:00:01Z",
    "2026-01-01T10:00:02Z [REST] Sending message: clientMsgId=c1",
    f"stage=WS action=recv trace_id={TA} msg_id=m1 ts=2026-01-01T10:00:03Z",
]


@pytest.mark.parametrize("formats", [["kv", "jsonl"], ["kv"]])
def test_formats_without_legacy_leave_legacy_lines_in_a_kv_file_malformed(
    formats: list[str],
) -> None:
    # were, with two formats: read by the legacy reader (formats {'kv': 1, 'legacy': 1})
    assert detect_format(("\n".join(KV_FILE) + "\n").encode()) == "kv"
    got = collect([MemorySource(KV_FILE, name="client-a.log")], formats=formats)
    assert rows(got) == [
        (1, "REST", "response", TA, "m1", at(1), None),
        (3, "WS", "recv", TA, "m1", at(3), None),
    ]
    assert counts(got) == (3, 2, 1, 0, {"kv": 1}, [])
    assert got.inputs.examples == ["client-a.log:2: a legacy tagged line, not key=value text"]


def obj(i: int) -> str:
    return (
        f'{{"timestamp": "2026-01-01T10:00:0{i}Z", "stage": "REST", "action": "persist", '
        f'"trace_id": "{TA}", "seq": {i}}}'
    )


MIXED_JSON = [obj(0), obj(1), LEGACY[0].replace(":00Z", ":02Z"), LEGACY[1], obj(4)]
OBJ_ROWS = [(i + 1, "REST", "persist") for i in (0, 1)]


def test_formats_without_kv_in_a_json_file_mixed_with_legacy_lines() -> None:
    # were: the kv line read by the kv reader, which formats=['jsonl', 'legacy'] leaves out
    got = collect([MemorySource(MIXED_JSON, name="client-a.log")], formats=["jsonl", "legacy"])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows() == [
        *OBJ_ROWS,
        (3, "REST", "request"),
        (5, "REST", "persist"),
    ]
    objects = (
        "client-a.log: 3 lines are JSON objects among legacy text lines; read them as JSON lines"
    )
    assert counts(got) == (5, 4, 0, 1, {"legacy": 1}, [objects, UNREAD_KV.format(first=4)])


def test_formats_without_legacy_in_a_json_file_mixed_with_legacy_lines() -> None:
    # were: the legacy line read by the legacy reader, which formats=['jsonl', 'kv'] leaves out;
    # now the JSON lines reader's, as with formats=['jsonl'] (malformed, each with its reason)
    got = collect([MemorySource(MIXED_JSON, name="client-a.log")], formats=["jsonl", "kv"])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows() == [*OBJ_ROWS, (5, "REST", "persist")]
    assert counts(got) == (5, 3, 2, 0, {"jsonl": 1}, [])
    assert got.inputs.examples == [
        "client-a.log:3: invalid JSON at character 4",
        "client-a.log:4: invalid JSON at character 0",
    ]


# -- 4: no unread-JSON warning for a key=value event holding JSON text that is read ---------


def test_a_kv_event_holding_json_text_in_a_legacy_file_is_no_unread_json_event() -> None:
    # was also warned: "1 lines look like JSON events but were not read as such (first: line 2)"
    kv = LEGACY[1] + ' body=\'{"stage": "x"}\''
    got = collect([MemorySource([LEGACY[0], kv, LEGACY[2]], name="client-a.log")])
    assert rows(got) == [LEGACY_ROWS[0], KV_ROW, LEGACY_ROWS[1]]
    among = (
        "client-a.log: 1 lines are key=value events among legacy lines; read them with the kv "
        "reader"
    )
    assert counts(got) == (3, 3, 0, 0, {"legacy": 1, "kv": 1}, [among])
