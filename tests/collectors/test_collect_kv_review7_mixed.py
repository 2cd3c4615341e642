"""kv reading, review 7: legacy tagged lines in a kv file, read by the legacy reader."""

from __future__ import annotations

from collectors_helpers import at, counts

from tracekit.collectors import MemorySource, collect, detect_format

TA = "a" * 32


# -- 7: legacy tagged lines in a kv file are read by the legacy reader ----------------------

KV = "ts=2026-01-01T10:00:0{i}Z stage=CTRL action=send trace_id={t} msg_id=m{i}".format
LEGACY = [
    "2026-01-01T10:00:05Z [REST] clientMsgId=m9 Sending message",
    "2026-01-01T10:00:06Z [REST-SEND] Message sent: id=msg123",
]


def test_legacy_tagged_lines_in_a_kv_file_are_read_by_the_legacy_reader() -> None:
    # were: the first read as a kv line without stage (ignored), the second malformed
    lines = [KV(i=i, t=TA) for i in range(4)] + LEGACY
    data = "\n".join(lines) + "\n"
    assert detect_format(data.encode()) == "kv"
    got = collect([MemorySource(data, name="client-a.log")])
    frame = got.events.collect()
    rows = frame.select("line", "stage", "action", "trace_id", "msg_id", "actor", "timestamp")
    assert rows.rows() == [
        *((i + 1, "CTRL", "send", TA, f"m{i}", None, at(i)) for i in range(4)),
        # the legacy reader's own trace ids (derived from the client / server message id)
        (5, "REST", "request", "9926bbe069caedf5b43a63ca3aa62cce", None, "a", at(5)),
        (6, "REST", "response", "38e50681b49bfd44619379f66a07086c", "msg123", "a", at(6)),
    ]
    assert frame.get_column("event").to_list()[4:] == [
        "[REST] clientMsgId=m9 Sending message",
        "[REST-SEND] Message sent: id=msg123",
    ]
    assert counts(got) == (
        6,
        6,
        0,
        0,
        {"kv": 1, "legacy": 1},
        [
            "client-a.log: 2 lines are legacy tagged lines among kv lines; read them with the "
            "legacy reader"
        ],
    )


def test_legacy_tagged_lines_in_a_kv_file_with_json_objects() -> None:
    obj = (
        '{"timestamp": "2026-01-01T10:00:07.000000Z", "stage": "REST", "action": "persist", '
        f'"trace_id": "{TA}", "source": "client-a", "seq": 7}}'
    )
    lines = [KV(i=i, t=TA) for i in range(4)] + LEGACY + [obj]
    got = collect([MemorySource(lines, name="client-a.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows() == [
        *((i + 1, "CTRL", "send") for i in range(4)),
        (5, "REST", "request"),
        (6, "REST", "response"),
        (7, "REST", "persist"),
    ]
    assert counts(got) == (
        7,
        7,
        0,
        0,
        {"kv": 1, "legacy": 1},
        [
            "client-a.log: 2 lines are legacy tagged lines among kv lines; read them with the "
            "legacy reader",
            "client-a.log: 1 lines are JSON objects among kv text lines; read them as JSON lines",
        ],
    )


def test_legacy_tagged_lines_in_a_file_forced_to_kv_are_malformed() -> None:
    lines = [KV(i=i, t=TA) for i in range(4)] + LEGACY
    got = collect([MemorySource(lines, name="client-a.log", format="kv")])
    assert got.events.collect().get_column("line").to_list() == [1, 2, 3, 4]
    assert counts(got) == (6, 4, 2, 0, {"kv": 1}, [])
    assert got.inputs.examples == [
        f"client-a.log:{n}: a legacy tagged line, not key=value text" for n in (5, 6)
    ]


def test_a_line_starting_with_pairs_and_holding_a_tag_is_a_legacy_line() -> None:
    # one rule with or without a prefix: a tag outside the pairs' values makes a legacy line
    lines = [KV(i=i, t=TA) for i in range(4)] + [
        "ts=2026-01-01T10:00:05Z [REST] clientMsgId=m9 Sending message"
    ]
    got = collect([MemorySource(lines, name="client-a.log")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows()[4:] == [(5, "REST", "request")]
    assert counts(got)[:5] == (5, 5, 0, 0, {"kv": 1, "legacy": 1})
