"""Legacy bracket text: prefixes, stage mapping from configuration, linking, unlinked lines."""

from __future__ import annotations

from pathlib import Path

import polars as pl
import pytest
from collectors_helpers import T1, T2, event, ts

from tracekit.collectors import MemorySource, collect
from tracekit.collectors._link import _SERVER_HOPS
from tracekit.schema import derived_trace_id as _derived
from tracekit.table import EVENT_SCHEMA

U1 = "3f2b8c1e-5d4a-4e8f-9a7b-1c2d3e4f5a6b"


def legacy(lines: list[str], name: str = "client-u1.log") -> MemorySource:
    return MemorySource(lines, name=name, source_name=name.removesuffix(".log"), format="legacy")


def test_exact_events_behind_common_prefixes() -> None:
    src = legacy(
        [
            f'2026-11-25T10:00:01.000000000Z stdout F [CTRL] sendMessage: "Hello" clientMsgId={U1}',
            f"[2026-11-25T10:00:01.001Z] main.dart.js:4218 [REST] Sending message: clientMsgId={U1} conversationId=conv-42",
            "2026-11-25 10:00:01.030 I/flutter ( 4242): [REST-SEND] Message sent: id=msg-1001 "
            f"clientMsgId={U1}",
            "   ",
            "Some unrelated line",
            "2026-11-25T10:00:01.040+00:00 [WS-RECV] Received event type=typing",
            "2026-11-25T11:00:01.050+01:00 [WS-RECV] Received event type=message:created id=msg-1001",
        ]
    )
    got = collect([src], timezone="UTC")
    assert got.events.collect().to_dicts() == [
        event(
            timestamp=ts("10:00:01"),
            stage="CTRL",
            action="send",
            event=f'[CTRL] sendMessage: "Hello" clientMsgId={U1}',
            trace_id=T1,
            actor="u1",
            source="client-u1",
            file="client-u1.log",
            line=1,
        ),
        event(
            timestamp=ts("10:00:01.001"),
            stage="REST",
            action="request",
            event=f"[REST] Sending message: clientMsgId={U1} conversationId=conv-42",
            trace_id=T1,
            conv_id="conv-42",
            actor="u1",
            source="client-u1",
            file="client-u1.log",
            line=2,
        ),
        event(
            timestamp=ts("10:00:01.030"),
            stage="REST",
            action="response",
            event=f"[REST-SEND] Message sent: id=msg-1001 clientMsgId={U1}",
            trace_id=T1,
            msg_id="msg-1001",
            actor="u1",
            source="client-u1",
            file="client-u1.log",
            line=3,
        ),
        event(
            timestamp=ts("10:00:01.050"),
            stage="WS-RECV",
            action="receive",
            event="[WS-RECV] Received event type=message:created id=msg-1001",
            trace_id=T1,
            msg_id="msg-1001",
            actor="u1",
            source="client-u1",
            file="client-u1.log",
            line=7,
        ),
    ]
    inputs = got.inputs
    assert (inputs.lines, inputs.events, inputs.ignored, inputs.malformed, inputs.unlinked) == (
        7,
        4,
        2,
        0,
        0,
    )
    assert inputs.missing == {"seq": 4}  # legacy lines carry no seq: no log-gap analysis


def test_names_are_categorical_and_the_message_is_text() -> None:
    # A legacy line's event is its whole message (unique per line): text, not a category.
    lines = [f'2026-11-25T10:00:0{i}Z [CTRL] sendMessage: "hello {i}"' for i in range(3)]
    frame = collect([legacy(lines)]).events.collect()
    assert frame.schema == EVENT_SCHEMA
    assert frame.schema["event"] == pl.String and frame.schema["stage"] == pl.Categorical()
    assert frame.get_column("event").to_list() == [
        f'[CTRL] sendMessage: "hello {i}"' for i in range(3)
    ]


def test_linking_across_files_and_derived_ids() -> None:
    client = legacy(
        [
            "2026-11-25T10:00:05.100Z [CTRL] sendMessage: clientMsgId=tmp-17",
            "2026-11-25T10:00:05.125Z [REST-SEND] Message sent: id=msg-1003 clientMsgId=tmp-17",
        ],
        name="client-u2.log",
    )
    server = legacy(
        [
            "2026-11-25T10:00:05.110Z [REST] Persisted message id=msg-1003 conversationId=c from=u2",
            "2026-11-25T10:00:05.113Z [WS-BROADCAST] Sending to userId=u1 id=msg-1003",
        ],
        name="chat-server.log",
    )
    # the server log alone does not know the client id: a derived id from the server id
    alone = collect([server]).events.collect()
    assert alone.get_column("trace_id").to_list() == [_derived("msg-1003")] * 2
    both = collect([client, server]).events.collect()
    assert both.get_column("trace_id").to_list() == [_derived("msg-1003")] * 4
    assert both.get_column("actor").to_list() == ["u2", "u2", "u2", "server"]
    assert both.get_column("peer").to_list() == [None, None, None, "u1"]


def test_json_trace_ids_reach_legacy_lines() -> None:
    server_json = MemorySource(
        [
            {
                "timestamp": "2026-11-25T10:00:03.010Z",
                "stage": "REST",
                "action": "persist",
                "event": "REST persist",
                "trace_id": T2,
                "msg_id": "msg-1002",
                "actor": "u1",
                "source": "chat-server-1",
                "seq": 1,
            }
        ],
        name="server.jsonl",
    )
    client = legacy(
        ["2026-11-25T10:00:03.019Z [WS-RECV] Received event type=message:created id=msg-1002"]
    )
    got = collect([server_json, client]).events.collect()
    assert got.get_column("trace_id").to_list() == [T2, T2]


def test_unlinked_and_ambiguous_are_reported_not_guessed() -> None:
    other = "11111111-2222-4333-8444-555555555555"
    src = legacy(
        [
            "2026-11-25T10:00:00Z [WS-RECV] Received event type=message:created",
            f"2026-11-25T10:00:01Z [REST-SEND] Message sent: id=m9 clientMsgId={U1}",
            f"2026-11-25T10:00:02Z [REST-SEND] Message sent: id=m9 clientMsgId={other}",
            "2026-11-25T10:00:03Z [REPO] Added message to store id=m9",
            "2026-11-25T10:00:04Z [REST] Fetching messages conversationId=c1",
        ]
    )
    got = collect([src])
    frame = got.events.collect()
    assert frame.get_column("trace_id").to_list() == [None, None, None, None, None]
    assert got.inputs.unlinked == 4  # the history fetch is not a message event
    assert got.inputs.unlinked_examples == [
        "client-u1.log:1: no message id on the line: WS-RECV.receive",
        "client-u1.log:2: ambiguous: its ids link to more than one message: REST.response",
        "client-u1.log:3: ambiguous: its ids link to more than one message: REST.response",
        "client-u1.log:4: ambiguous: its ids link to more than one message: REPO.add",
    ]


def test_untimed_lines_and_naive_times() -> None:
    src = legacy(
        [
            "[CTRL] sendMessage: clientMsgId=a",
            "2026-11-25 10:00:00.500 [CTRL] sendMessage: clientMsgId=b",
            "I/flutter ( 1): [CTRL] sendMessage: clientMsgId=c",
        ]
    )
    got = collect([src], timezone="Europe/Berlin")
    frame = got.events.collect()
    assert frame.get_column("timestamp").to_list() == [ts("09:00:00.5"), ts("09:00:00.5")]
    assert frame.get_column("line").to_list() == [2, 3]
    assert got.inputs.examples == [
        "client-u1.log:1: no timestamp on the line nor on an event line before it"
    ]
    assert got.inputs.warnings == [
        "client-u1.log: 1 lines have no timestamp; they took the previous event line's time"
    ]


def test_long_lines_and_invalid_utf8() -> None:
    data = (
        b"2026-11-25T10:00:00Z [CTRL] sendMessage: clientMsgId=a\n"
        + b"2026-11-25T10:00:01Z [CTRL] "
        + b"x" * 2_000_000
        + b"\n"
        + b'2026-11-25T10:00:02Z [CTRL] sendMessage: "caf\xe9" clientMsgId=b\n'
        + b"\x00\x01\x02garbage\n"
    )
    got = collect([MemorySource(data, name="c.log", format="legacy")])
    frame = got.events.collect()
    assert frame.get_column("line").to_list() == [1, 3]
    assert frame.get_column("event").to_list()[1] == '[CTRL] sendMessage: "caf\ufffd" clientMsgId=b'
    assert got.inputs.examples == ["c.log:2: line too long (2.0 MB), not parsed"]
    assert got.inputs.warnings == [
        "c.log: invalid UTF-8 bytes were replaced by U+FFFD; those lines are kept"
    ]
    assert got.inputs.ignored == 1


def test_sample_legacy_logs(samples: Path) -> None:
    got = collect([samples / "legacy"], timezone="UTC")
    frame = got.events.collect()
    inputs = got.inputs.to_dict()
    assert {k: inputs[k] for k in ("files", "lines", "events", "malformed", "unlinked")} == {
        "files": 3,
        "lines": 47,
        "events": 40,
        "malformed": 0,
        "unlinked": 1,
    }
    assert inputs["unlinked_examples"] == [
        f"{samples / 'legacy' / 'client-u2.log'}:9: no message id on the line: WS-RECV.receive"
    ]
    assert inputs["warnings"] == []
    derived = _derived("msg-1003")
    per_trace = (
        frame.filter(pl.col("trace_id").is_not_null())
        .group_by("trace_id")
        .agg(pl.len())
        .sort("trace_id")
        .rows()
    )
    assert per_trace == sorted([(T1, 13), (T2, 11), (derived, 13)])
    # the seed race: u2 received msg-1002 while its history fetch was in flight, and never
    # added it (no REPO.add / CTRL.add for u2)
    u2 = frame.filter(pl.col("source") == "client-u2").select(
        "timestamp", "stage", "action", "msg_id"
    )
    race = u2.filter(
        (pl.col("timestamp") >= ts("10:00:03")) & (pl.col("timestamp") < ts("10:00:04"))
    ).rows()
    assert race == [
        (ts("10:00:03.002"), "REST", "fetch_start", None),
        (ts("10:00:03.019"), "WS-RECV", "receive", "msg-1002"),
        (ts("10:00:03.150"), "REST", "fetch_end", None),
    ]
    starts = frame.filter(pl.col("action") == "start").get_column("recipients").to_list()
    assert starts == [["u1", "u2"]] * 3


def test_components_general_path() -> None:
    from tracekit.collectors._link import _components

    # a chain 5-4-3-2-1, a pair 6-7, a lone 0 and a lone 8
    edges = pl.DataFrame(
        {"a": [5, 4, 3, 2, 6], "b": [4, 3, 2, 1, 7]}, schema={"a": pl.UInt32, "b": pl.UInt32}
    )
    labels = _components(9, edges).sort("id").get_column("label").to_list()
    assert labels == [0, 1, 1, 1, 1, 1, 6, 6, 8]
    single = pl.DataFrame({"a": [3], "b": [1]}, schema={"a": pl.UInt32, "b": pl.UInt32})
    assert _components(4, single).sort("id").get_column("label").to_list() == [0, 1, 2, 1]


def test_text_starting_like_a_compressed_stream() -> None:
    # zstd magic bytes, then ordinary lines: read as text, the odd line ignored
    data = b"(\xb5/\xfd\n2026-11-25T10:00:00Z [REPO] Added message to store id=m1\n"
    got = collect([MemorySource(data, name="odd.log", format="legacy")])
    assert got.events.collect().get_column("msg_id").to_list() == ["m1"]
    assert (
        got.inputs.warnings[0] == "odd.log: starts like a zstd stream but is not one; read as it is"
    )


def test_timestamp_group_read_as_the_match_only_when_it_is_the_whole_pattern() -> None:
    from tracekit.collectors._formats import legacy_format
    from tracekit.collectors._text import _whole_group

    assert _whole_group(legacy_format().timestamp_regex or "")
    assert _whole_group("((a)b)") and _whole_group(r"(\d+\))")
    for regex in ("(a)|(b)", "(a)(b)", "(?i)(a)", "a(b)", "(a)+", r"(\)", "([()])", "([^)]+)"):
        assert not _whole_group(regex), regex


def _tmp_id_logs(u1_sent: bool = True) -> list[MemorySource]:
    """Two clients that both number their unsent messages tmp-1, tmp-2, ...: u1's tmp-1
    became msg-A, u2's tmp-1 msg-B."""
    u1 = [
        '2024-01-15T10:00:00.000Z [CTRL] sendMessage: "hi from u1" clientMsgId=tmp-1',
        "2024-01-15T10:00:00.010Z [REST] Sending message: clientMsgId=tmp-1 conversationId=c1",
    ]
    if u1_sent:
        u1.append("2024-01-15T10:00:00.050Z [REST-SEND] Message sent: id=msg-A clientMsgId=tmp-1")
    return [
        legacy(u1, name="client-u1.log"),
        legacy(
            [
                '2024-01-15T10:00:05.000Z [CTRL] sendMessage: "hi from u2" clientMsgId=tmp-1',
                "2024-01-15T10:00:05.010Z [REST] Sending message: clientMsgId=tmp-1 "
                "conversationId=c1",
                "2024-01-15T10:00:05.050Z [REST-SEND] Message sent: id=msg-B clientMsgId=tmp-1",
            ],
            name="client-u2.log",
        ),
        legacy(
            [
                "2024-01-15T10:00:00.030Z [REST] Persisted message id=msg-A clientMsgId=tmp-1 "
                "conversationId=c1 from=u1",
                "2024-01-15T10:00:05.030Z [REST] Persisted message id=msg-B clientMsgId=tmp-1 "
                "conversationId=c1 from=u2",
            ],
            name="chat-server.log",
        ),
    ]


def test_client_temp_ids_are_scoped_to_their_client() -> None:
    # A temp id is unique only within its client (the sender: the file's user, or from= on
    # the server's line): u1's tmp-1 and u2's tmp-1 are two messages, not one.
    got = collect(_tmp_id_logs())
    frame = got.events.collect()
    a, b = _derived("msg-A"), _derived("msg-B")
    assert frame.select(
        "file", "line", "stage", "action", "actor", "msg_id", "trace_id"
    ).rows() == [
        ("client-u1.log", 1, "CTRL", "send", "u1", None, a),
        ("client-u1.log", 2, "REST", "request", "u1", None, a),
        ("client-u1.log", 3, "REST", "response", "u1", "msg-A", a),
        ("client-u2.log", 1, "CTRL", "send", "u2", None, b),
        ("client-u2.log", 2, "REST", "request", "u2", None, b),
        ("client-u2.log", 3, "REST", "response", "u2", "msg-B", b),
        ("chat-server.log", 1, "REST", "persist", "u1", "msg-A", a),
        ("chat-server.log", 2, "REST", "persist", "u2", "msg-B", b),
    ]
    assert (got.inputs.events, got.inputs.unlinked, got.inputs.unlinked_examples) == (8, 0, [])


def test_a_lost_response_still_links_through_the_servers_sender() -> None:
    # u1's REST-SEND line is missing: its tmp-1 reaches msg-A through the server's line naming
    # the sender (from=u1), and does not touch u2's tmp-1.
    frame = collect(_tmp_id_logs(u1_sent=False)).events.collect()
    assert frame.select("file", "line", "trace_id").rows() == [
        ("client-u1.log", 1, _derived("msg-A")),
        ("client-u1.log", 2, _derived("msg-A")),
        ("client-u2.log", 1, _derived("msg-B")),
        ("client-u2.log", 2, _derived("msg-B")),
        ("client-u2.log", 3, _derived("msg-B")),
        ("chat-server.log", 1, _derived("msg-A")),
        ("chat-server.log", 2, _derived("msg-B")),
    ]


def test_temp_ids_without_a_server_id_differ_per_client() -> None:
    lines = ["2024-01-15T10:00:00Z [CTRL] sendMessage: clientMsgId=tmp-1"]
    got = collect([legacy(lines, name="client-u1.log"), legacy(lines, name="client-u2.log")])
    assert got.events.collect().get_column("trace_id").to_list() == [
        _derived("u1\x1ftmp-1"),
        _derived("u2\x1ftmp-1"),
    ]
    assert got.inputs.unlinked == 0


def test_a_temp_id_reused_for_two_server_ids_is_ambiguous() -> None:
    # u1 restarted and numbered from tmp-1 again: which lines belong to msg-A and which to
    # msg-B cannot be told, so none is guessed.
    src = legacy(
        [
            "2024-01-15T10:00:00Z [CTRL] sendMessage: clientMsgId=tmp-1",
            "2024-01-15T10:00:01Z [REST-SEND] Message sent: id=msg-A clientMsgId=tmp-1",
            "2024-01-15T10:00:02Z [CTRL] sendMessage: clientMsgId=tmp-1",
            "2024-01-15T10:00:03Z [REST-SEND] Message sent: id=msg-B clientMsgId=tmp-1",
            "2024-01-15T10:00:04Z [REPO] Added message to store id=msg-B",
            "2024-01-15T10:00:05Z [CTRL] sendMessage: clientMsgId=tmp-2",
        ]
    )
    got = collect([src])
    assert got.events.collect().get_column("trace_id").to_list() == [None] * 5 + [
        _derived("u1\x1ftmp-2")
    ]
    assert got.inputs.unlinked == 5
    assert got.inputs.unlinked_examples == [
        f"client-u1.log:{n}: ambiguous: its ids link to more than one message: {ev}"
        for n, ev in [
            (1, "CTRL.send"),
            (2, "REST.response"),
            (3, "CTRL.send"),
            (4, "REST.response"),
            (5, "REPO.add"),
        ]
    ]


def test_a_client_uuid_stays_global_and_two_server_ids_under_it_are_kept() -> None:
    # A UUID names one message wherever it appears (the sender's file or another's); two
    # server ids under one UUID are the server persisting one message twice: a duplicate the
    # analyzers report, so both keep the UUID's trace id.
    got = collect(
        [
            legacy([f"2024-01-15T10:00:00Z [CTRL] sendMessage: clientMsgId={U1}"]),
            legacy(
                [
                    f"2024-01-15T10:00:01Z [REST] Persisted message id=m1 clientMsgId={U1}",
                    f"2024-01-15T10:00:02Z [REST] Persisted message id=m2 clientMsgId={U1}",
                ],
                name="chat-server.log",
            ),
        ]
    )
    assert got.events.collect().get_column("trace_id").to_list() == [T1] * 3
    assert got.inputs.unlinked == 0


def _persisted(lines: list[tuple[str, str]], name: str) -> MemorySource:
    """The server's persist lines, ``(server id, client id)``, not naming the sender."""
    return legacy(
        [
            f"2024-01-15T10:00:0{n}.030Z [REST] Persisted message id={mid} clientMsgId={cid} "
            "conversationId=c1"
            for n, (mid, cid) in enumerate(lines)
        ],
        name=name,
    )


@pytest.mark.parametrize("server", ["chat-server.log", "chat.log"])
def test_a_server_line_without_the_sender_joins_the_one_client_that_used_the_temp_id(
    server: str,
) -> None:
    # The server does not log from=: its line's tmp-1 is not the server's own, and only u1
    # used tmp-1, so u1's send and request still reach msg-A though u1's response was lost.
    # The server's log is told by its name (actor "server") or by the server hops it logs.
    got = collect(
        [
            legacy(
                [
                    "2024-01-15T10:00:00.000Z [CTRL] sendMessage: clientMsgId=tmp-1",
                    "2024-01-15T10:00:00.010Z [REST] Sending message: clientMsgId=tmp-1",
                ],
                name="client-u1.log",
            ),
            legacy(
                [
                    "2024-01-15T10:00:01.000Z [CTRL] sendMessage: clientMsgId=tmp-2",
                    "2024-01-15T10:00:01.050Z [REST-SEND] Message sent: id=msg-B clientMsgId=tmp-2",
                ],
                name="client-u2.log",
            ),
            _persisted([("msg-A", "tmp-1"), ("msg-B", "tmp-2")], server),
        ]
    )
    a, b = _derived("msg-A"), _derived("msg-B")
    assert got.events.collect().select("file", "line", "trace_id").rows() == [
        ("client-u1.log", 1, a),
        ("client-u1.log", 2, a),
        ("client-u2.log", 1, b),
        ("client-u2.log", 2, b),
        (server, 1, a),
        (server, 2, b),
    ]
    assert (got.inputs.unlinked, got.inputs.warnings) == (0, [])


def test_a_server_line_without_the_sender_is_not_guessed_when_two_clients_used_the_temp_id() -> (
    None
):
    # u1 and u2 both used tmp-1 and the server's lines do not say whose: the server's tmp-1
    # joins neither. Lines naming a server id still link through it; a line naming only tmp-1
    # is unlinked as ambiguous, and the file is warned about.
    logs = _tmp_id_logs(u1_sent=False)
    server = legacy(
        [
            "2024-01-15T10:00:00.030Z [REST] Persisted message id=msg-A clientMsgId=tmp-1",
            "2024-01-15T10:00:05.030Z [REST] Persisted message id=msg-B clientMsgId=tmp-1",
            "2024-01-15T10:00:06.000Z [REST] Persisted message clientMsgId=tmp-1",
        ],
        name="chat-server.log",
    )
    got = collect([*logs[:2], server])
    a, b = _derived("msg-A"), _derived("msg-B")
    assert got.events.collect().select("file", "line", "trace_id").rows() == [
        ("client-u1.log", 1, _derived("u1\x1ftmp-1")),
        ("client-u1.log", 2, _derived("u1\x1ftmp-1")),
        ("client-u2.log", 1, b),
        ("client-u2.log", 2, b),
        ("client-u2.log", 3, b),
        ("chat-server.log", 1, a),
        ("chat-server.log", 2, b),
        ("chat-server.log", 3, None),
    ]
    assert got.inputs.unlinked == 1
    assert got.inputs.unlinked_examples == [
        "chat-server.log:3: ambiguous: its temp client id was used by more than one client: "
        "REST.persist"
    ]
    assert got.inputs.warnings == [
        "chat-server.log: 3 lines name a temp client id that several clients used but not "
        "their sender (from=): not linked by it"
    ]


def test_a_server_temp_id_no_client_used_stays_the_servers() -> None:
    # Only the server's log: its temp ids are scoped to the server, as any owner's.
    got = collect([_persisted([("msg-A", "tmp-1")], "chat-server.log")])
    assert got.events.collect().get_column("trace_id").to_list() == [_derived("msg-A")]
    lines = ["2024-01-15T10:00:00Z [REST] Persisted message clientMsgId=tmp-9"]
    got = collect([legacy(lines, name="chat-server.log")])
    assert got.events.collect().get_column("trace_id").to_list() == [_derived("server\x1ftmp-9")]
    assert (got.inputs.unlinked, got.inputs.warnings) == (0, [])


def test_the_server_hops_that_mark_a_servers_log_are_the_default_pipelines() -> None:
    # The collector tells a server's log by the hops the default pipeline has it emit.
    from tracekit.analyzers._pipeline import default_pipeline

    server = {h.id for h in default_pipeline().hops if h.emitter == "server"}
    assert {f"{stage}.{a}" for stage, acts in _SERVER_HOPS.items() for a in acts} == server


def test_zone_offsets_in_the_prefix_are_kept() -> None:
    # log4j's "HH:mm:ss.SSS Z" puts a space before the offset; ISO allows an hours-only one.
    src = legacy(
        [
            "2026-11-25 10:00:00.123 +0530 [CTRL] sendMessage: clientMsgId=a1",
            "2026-11-25T10:00:00.123+05 [CTRL] sendMessage: clientMsgId=a2",
            "2026-11-25T10:00:00.123+05:30 [CTRL] sendMessage: clientMsgId=a3",
            "2026-11-25 10:00:00,123 +0530 [CTRL] sendMessage: clientMsgId=a4",
            "2026-11-25T10:00:00.123 -0800 [CTRL] sendMessage: clientMsgId=a5",
            "[2026-11-25 10:00:00 +05:30] main.dart.js:4211 [CTRL] sendMessage: clientMsgId=a6",
            "2026-11-25 10:00:00,250-0130 [CTRL] sendMessage: clientMsgId=a7",
            "2026-11-25 10:00:00.123 [CTRL] sendMessage: clientMsgId=a8",
            "2026-11-25 10:00:00.123 12345 [CTRL] sendMessage: clientMsgId=a9",
        ]
    )
    expected = [
        ts("04:30:00.123"),
        ts("05:00:00.123"),
        ts("04:30:00.123"),
        ts("04:30:00.123"),
        ts("18:00:00.123"),
        ts("04:30:00"),
        ts("11:30:00.250"),
    ]
    got = collect([src])
    frame = got.events.collect()
    assert frame.get_column("line").to_list() == list(range(1, 10))
    assert frame.get_column("timestamp").to_list() == [
        *expected,
        ts("10:00:00.123"),
        ts("10:00:00.123"),
    ]
    assert got.inputs.warnings == [
        "client-u1.log: 2 timestamps have no time zone and were read as UTC; pass timezone=... "
        "(e.g. 'Europe/Berlin') if they are local times"
    ]
    assert (got.inputs.events, got.inputs.malformed, got.inputs.ignored) == (9, 0, 0)
    berlin = collect([src], timezone="Europe/Berlin")
    assert berlin.events.collect().get_column("timestamp").to_list() == [
        *expected,
        ts("09:00:00.123"),
        ts("09:00:00.123"),
    ]
    assert berlin.inputs.warnings == []


def test_failures_and_retries_are_not_hops() -> None:
    # A failed or retried send is no response, no request, no receive: counting it as one
    # would hide the real drop. It stays an event of its stage (not a pipeline hop).
    src = legacy(
        [
            "2024-01-15T10:00:00Z [REST-SEND] Sending message: clientMsgId=tmp-1",
            "2024-01-15T10:00:01Z [REST-SEND] Message send failed: HTTP 500 clientMsgId=tmp-1",
            "2024-01-15T10:00:02Z [REST-SEND] Retrying in 2s clientMsgId=tmp-1",
            "2024-01-15T10:00:03Z [REST-SEND] Message sent: id=msg123 clientMsgId=tmp-1",
            "2024-01-15T10:00:04Z [REST-FETCH] Fetch failed: HTTP 503 conversationId=c1",
            "2024-01-15T10:00:05Z [REST] Sending message failed: timeout clientMsgId=tmp-2",
            "2024-01-15T10:00:06Z [WS-RECV] Failed to parse message:created payload",
            "2024-01-15T10:00:07Z [CTRL] sendMessage error: empty text",
            "2024-01-15T10:00:08Z [REPO] Could not add message to store id=m7",
            "2024-01-15T10:00:09Z [WS] Received message:created id=m8, error: unknown conversation",
            "2024-01-15T10:00:10Z [REST] Fetching messages timed out conversationId=c1",
            "2024-01-15T10:00:11Z [REST-SEND] Message sent: id=msg124 clientMsgId=tmp-3 errors=0",
            "2024-01-15T10:00:12Z [WS-BROADCAST] Sending to userId=u2 failed: socket closed id=m9",
        ]
    )
    got = collect([src])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action").rows() == [
        (1, "REST", "request"),
        (2, "REST", "failed"),
        (3, "REST", "retry"),
        (4, "REST", "response"),
        (5, "REST", "fetch_end"),  # a failed fetch ends the history load all the same
        (6, "REST", "failed"),
        (7, "WS-RECV", "failed"),
        (8, "CTRL", "failed"),
        (9, "REPO", "failed"),
        (10, "WS", "failed"),  # the tag's own stage: no alias names another
        (11, "REST", "fetch_end"),
        (12, "REST", "response"),
        (13, "WS-BROADCAST", "failed"),
    ]
    inputs = got.inputs
    assert (inputs.events, inputs.ignored, inputs.malformed) == (13, 0, 0)


def test_a_message_taken_off_the_screen_is_ctrl_remove_of_its_trace() -> None:
    # the other half of the seed bug in legacy words: shown, then wiped by a history page
    src = legacy(
        [
            "2026-11-25T10:00:01.000Z [WS-RECV] Received event type=message:created id=msg-7",
            "2026-11-25T10:00:01.001Z [REPO] Added message to store id=msg-7",
            "2026-11-25T10:00:01.002Z [CTRL] Message added to UI id=msg-7",
            "2026-11-25T10:00:01.300Z [CTRL] Removed message from UI id=msg-7 (history replaced)",
            "2026-11-25T10:00:01.301Z [CTRL] removeMessage id=msg-7",
            # a dedupe guard dropping a second copy: no loss
            "2026-11-25T10:00:01.302Z [CTRL] Duplicate message removed id=msg-7",
        ],
        name="client-u2.log",
    )
    got = collect([src]).events.collect()
    trace = _derived("msg-7")
    assert got.select("stage", "action", "trace_id", "msg_id", "line").rows() == [
        ("WS-RECV", "receive", trace, "msg-7", 1),
        ("REPO", "add", trace, "msg-7", 2),
        ("CTRL", "add", trace, "msg-7", 3),
        ("CTRL", "remove", trace, "msg-7", 4),
        ("CTRL", "remove", trace, "msg-7", 5),
    ]
