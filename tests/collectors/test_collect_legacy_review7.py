"""Legacy reading, review 7: key=value events among a legacy file's lines are the kv reader's,
and a legacy tag inside a pair's (quoted) value is never a line's tag (one rule with detection
and the kv reader)."""

from __future__ import annotations

import pytest
from collectors_helpers import at, counts

from tracekit.collectors import MemorySource, collect, detect_format

TB = "b" * 32
TA = "a" * 32


def rows(got: object) -> list[tuple[object, ...]]:
    frame = got.events.collect()  # type: ignore[attr-defined]
    cols = ("line", "stage", "action", "trace_id", "msg_id", "timestamp", "event")
    return frame.select(*cols).rows()  # type: ignore[no-any-return]


SENT, TO = "id=msg1 clientMsgId=c1", "userId=u2 id=msg1"
LEGACY = [
    "2026-01-01T10:00:00Z [REST] Sending message: clientMsgId=c1",
    "2026-01-01T10:00:01Z [REST-SEND] Message sent: id=msg1 clientMsgId=c1",
    "2026-01-01T10:00:02Z [WS-BROADCAST] Sending to userId=u2 id=msg1",
]
LEGACY_TAIL = "2026-01-01T10:00:05Z [REPO] Added message to store id=msg1"
# the legacy reader's own trace id for client message c1 (linked to msg1 by line 2)
T_C1 = "31427f06c6bea455361219410e6c0d1c"
LEGACY_ROWS = [
    (1, "REST", "request", T_C1, None, at(0), "[REST] Sending message: clientMsgId=c1"),
    (2, "REST", "response", T_C1, "msg1", at(1), "[REST-SEND] Message sent: " + SENT),
    (3, "WS-BROADCAST", "deliver", T_C1, "msg1", at(2), "[WS-BROADCAST] Sending to " + TO),
]
TAIL_ROW = (6, "REPO", "add", T_C1, "msg1", at(5), "[REPO] Added message to store id=msg1")

QUOTED_TAG = "stage=REST action=request trace_id={t} msg_id=m{i} event='[REST] Sending message'"
AMONG = (
    "client-a.log: {n} lines are key=value events among legacy lines; read them with the kv reader"
)
UNREAD = (
    "client-a.log: {n} lines look like key=value events but were not read as such (first: line "
    "{first}); a key=value event is read in a file read as kv (detected when most of its first "
    "lines are such events, or formats=['kv'])"
)


@pytest.mark.parametrize(
    "prefix",
    [
        "timestamp=2026-01-01T10:00:0{i}Z ",
        "2026-01-01T10:00:0{i}Z INFO app: ",
        "[2026-01-01T10:00:0{i}Z] [INFO] [app] ",
        "2026-01-01T10:00:0{i}.000000000Z stdout F ",  # a container runtime's prefix
    ],
)
def test_kv_events_quoting_a_tag_among_legacy_lines_are_read_as_kv_events(prefix: str) -> None:
    # were legacy lines tagged by the [REST] their event quotes: trace_id and msg_id null
    kv = [prefix.format(i=i) + QUOTED_TAG.format(t=TB, i=i) for i in (3, 4)]
    lines = [*LEGACY, *kv, LEGACY_TAIL]
    data = "\n".join(lines) + "\n"
    assert detect_format(data.encode()) == "legacy"
    got = collect([MemorySource(data, name="client-a.log")])
    assert rows(got) == [
        *LEGACY_ROWS,
        (4, "REST", "request", TB, "m3", at(3), "[REST] Sending message"),
        (5, "REST", "request", TB, "m4", at(4), "[REST] Sending message"),
        TAIL_ROW,
    ]
    assert counts(got) == (6, 6, 0, 0, {"legacy": 1, "kv": 1}, [AMONG.format(n=2)])


def test_kv_events_among_legacy_lines_are_read_as_the_kv_reader_reads_them() -> None:
    # a kv event without a tag (was: ignored, counted in a warning) and one without a time
    # (malformed, as in a kv file), read where they stand
    lines = [
        *LEGACY,
        f"2026-01-01T10:00:03Z INFO app: stage=CTRL action=send trace_id={TA} msg_id=m3",
        f"stage=REST action=request trace_id={TB} msg_id=m4 event='[REST] Sending message'",
        LEGACY_TAIL,
    ]
    got = collect([MemorySource(lines, name="client-a.log")])
    assert rows(got) == [
        *LEGACY_ROWS,
        (4, "CTRL", "send", TA, "m3", at(3), None),
        TAIL_ROW,
    ]
    # the malformed one is named: never said to be read when it was not
    among = AMONG.format(n=2) + " (1 of them not read as events, first: line 5)"
    assert counts(got) == (6, 5, 1, 0, {"legacy": 1, "kv": 1}, [among])
    assert got.inputs.examples == ["client-a.log:5: missing required key 'timestamp'"]


@pytest.mark.parametrize("how", ["source", "formats"])
def test_forced_legacy_never_takes_a_tag_inside_a_quoted_value(how: str) -> None:
    # formats=['legacy']: the kv lines are not read, but counted in the unread-kv warning
    # (were: legacy events with trace_id and msg_id null, no warning)
    lines = [
        *LEGACY,
        "2026-01-01T10:00:03Z INFO app: " + QUOTED_TAG.format(t=TB, i=3),
        LEGACY_TAIL,
    ]
    if how == "source":
        got = collect([MemorySource(lines, name="client-a.log", format="legacy")])
    else:
        got = collect([MemorySource(lines, name="client-a.log")], formats=["legacy"])
    assert rows(got) == [*LEGACY_ROWS, (5, *TAIL_ROW[1:])]
    assert counts(got) == (5, 4, 0, 1, {"legacy": 1}, [UNREAD.format(n=1, first=4)])


def test_a_line_quoting_a_tag_without_a_stage_pair_keeps_its_tag() -> None:
    # no kv event (no stage= pair): the legacy reader's line, its first tag wherever it stands
    # (review 7c: was ignored without a word, as was legacy text in a logfmt msg="...")
    lines = [
        *LEGACY,
        "2026-01-01T10:00:03Z INFO app: msg_id=m3 note='[REST] Sending message'",
        LEGACY_TAIL,
    ]
    got = collect([MemorySource(lines, name="client-a.log")])
    assert rows(got) == [
        *LEGACY_ROWS,
        (4, "REST", "request", None, None, at(3), "[REST] Sending message"),
        (5, *TAIL_ROW[1:]),
    ]
    assert counts(got) == (5, 5, 0, 0, {"legacy": 1}, [])


@pytest.mark.parametrize("before", ["", "2026-01-01T10:00:04Z ", "2026-01-01T10:00:04Z ü=1 "])
def test_the_tag_of_a_legacy_line_is_its_first_tag_outside_the_pairs_values(before: str) -> None:
    # was: the [WS] inside the quoted value, the message "x' [REST] Sending message: ..."
    lines = [
        *LEGACY,
        "2026-01-01T10:00:03Z [CTRL] sendMessage: hi clientMsgId=c9",
        f"{before}note='[WS] é' [REST] Sending message: clientMsgId=c9",
    ]
    got = collect([MemorySource(lines, name="client-a.log")])
    frame = got.events.collect()
    got_rows = frame.select("line", "stage", "action", "event", "timestamp").rows()
    assert got_rows[3:] == [
        (4, "CTRL", "send", "[CTRL] sendMessage: hi clientMsgId=c9", at(3)),
        (5, "REST", "request", "[REST] Sending message: clientMsgId=c9", at(4 if before else 3)),
    ]
    trace = frame.get_column("trace_id").cast(str).to_list()
    assert trace[3] == trace[4] != T_C1  # both derived from client message c9
    untimed = "client-a.log: 1 lines have no timestamp; they took the previous event line's time"
    warnings = [] if before else [untimed]
    assert counts(got) == (5, 5, 0, 0, {"legacy": 1}, warnings)


def test_kv_events_among_legacy_lines_and_json_objects() -> None:
    obj = (
        '{"timestamp": "2026-01-01T10:00:06.000000Z", "stage": "REST", "action": "persist", '
        f'"trace_id": "{TA}", "source": "client-a", "seq": 7}}'
    )
    lines = [
        *LEGACY,
        "2026-01-01T10:00:03Z INFO app: " + QUOTED_TAG.format(t=TB, i=3),
        LEGACY_TAIL,
        obj,
    ]
    got = collect([MemorySource(lines, name="client-a.log")])
    assert rows(got) == [
        *LEGACY_ROWS,
        (4, "REST", "request", TB, "m3", at(3), "[REST] Sending message"),
        (5, *TAIL_ROW[1:]),
        (6, "REST", "persist", TA, None, at(6), None),
    ]
    assert counts(got) == (
        6,
        6,
        0,
        0,
        {"legacy": 1, "kv": 1},
        [
            AMONG.format(n=1),
            "client-a.log: 1 lines are JSON objects among legacy text lines; read them as JSON "
            "lines",
        ],
    )


def test_kv_events_in_a_json_file_mixed_with_legacy_lines() -> None:
    # detected as JSON lines, read as mixed (its legacy lines further down): the kv event too
    obj = (
        '{"timestamp": "2026-01-01T10:00:0%d.000000Z", "stage": "CTRL", "action": "send", '
        f'"trace_id": "{TA}", "source": "client-a", "seq": %d}}'
    )
    lines = [obj % (i, i) for i in range(3)] + [
        "2026-01-01T10:00:03Z [REST] Sending message: clientMsgId=c1",
        "2026-01-01T10:00:04Z INFO app: " + QUOTED_TAG.format(t=TB, i=4),
    ]
    assert detect_format(("\n".join(lines[:3]) + "\n").encode()) == "jsonl"
    got = collect([MemorySource(lines, name="client-a.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action", "msg_id", "timestamp").rows() == [
        *((i + 1, "CTRL", "send", None, at(i)) for i in range(3)),
        (4, "REST", "request", None, at(3)),
        (5, "REST", "request", "m4", at(4)),
    ]
    assert frame.get_column("trace_id").cast(str).to_list()[4] == TB
    assert counts(got)[:5] == (5, 5, 0, 0, {"legacy": 1, "kv": 1})
    assert AMONG.format(n=1) in got.inputs.warnings


def test_a_legacy_file_without_kv_events_reads_as_before() -> None:
    got = collect([MemorySource([*LEGACY, "heartbeat ok", LEGACY_TAIL], name="client-a.log")])
    assert rows(got) == [*LEGACY_ROWS, (5, *TAIL_ROW[1:])]
    assert counts(got) == (5, 4, 0, 1, {"legacy": 1}, [])


@pytest.mark.parametrize("pairs", ["pid=7 ", "level=info user='bob' ", "id=[WS] "])
def test_pairs_before_a_legacy_tag_leave_it_the_lines_tag(pairs: str) -> None:
    # a tag after the pairs (not in a value) is the line's; `id=[WS]`: a value, not the tag
    lines = [*LEGACY, f"2026-01-01T10:00:03Z {pairs}[REPO] Added message to store id=msg1"]
    got = collect([MemorySource(lines, name="client-a.log")])
    assert rows(got)[3:] == [(4, "REPO", "add", T_C1, "msg1", at(3), TAIL_ROW[6])]
    assert counts(got) == (4, 4, 0, 0, {"legacy": 1}, [])
