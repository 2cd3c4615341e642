"""logfmt and structlog's KeyValueRenderer, written by structlog itself."""

from __future__ import annotations

from typing import Any

import pytest
import structlog
from collectors_helpers import T1, event, jl, ts

from tracekit.collectors import MemorySource, collect, detect_format


def render(renderer: Any, ev: dict[str, Any]) -> str:
    return str(renderer(None, "info", dict(ev)))


def test_keyvalue_renderer_reprs() -> None:
    kv = structlog.processors.KeyValueRenderer(key_order=["timestamp", "event"])
    lines = [
        render(
            kv,
            jl(
                stage="WS-BROADCAST",
                action="start",
                event="WS-BROADCAST start",
                recipients=["u1", "u2"],
                actor="server",
                source="chat-server-1",
                seq=17,
                msg_id="m1",
                peer=None,
            ),
        ),
        render(kv, jl(event='it\'s "quoted"', seq=18, timestamp="2026-11-25T10:00:00.5Z")),
    ]
    assert detect_format("\n".join(lines).encode()) == "kv"
    got = collect([MemorySource(lines, name="app.log")])
    assert got.events.collect().to_dicts() == [
        event(
            timestamp=ts("10:00:00"),
            stage="WS-BROADCAST",
            action="start",
            event="WS-BROADCAST start",
            trace_id=T1,
            msg_id="m1",
            actor="server",
            source="chat-server-1",
            seq=17,
            recipients=["u1", "u2"],
            file="app.log",
            line=1,
        ),
        event(
            timestamp=ts("10:00:00.5"),
            stage="CTRL",
            action="send",
            event='it\'s "quoted"',
            trace_id=T1,
            actor="u1",
            source="client-u1",
            seq=18,
            file="app.log",
            line=2,
        ),
    ]
    assert got.inputs.formats == {"kv": 1}


def test_logfmt() -> None:
    lf = structlog.processors.LogfmtRenderer(key_order=["timestamp", "event"])
    lines = [
        render(lf, jl(event="CTRL send hello world", seq=1)),
        "this line is not logfmt",
        render(lf, jl(stage="REST", action="request", event="REST request", seq=2, level="info")),
    ]
    got = collect([MemorySource(lines, name="lf.log", format="kv")])
    frame = got.events.collect()
    assert frame.select("stage", "action", "event", "seq", "level", "line").rows() == [
        ("CTRL", "send", "CTRL send hello world", 1, None, 1),
        ("REST", "request", "REST request", 2, "info", 3),
    ]
    assert got.inputs.examples == ["lf.log:2: not key=value text"]


# Values whose repr or logfmt form needs escapes (issue 3): each must come back exactly.
TRICKY = [
    "line1\nline2",
    "col1\tcol2",
    "it's",
    'say "hi"',
    "both ' and \"",
    "C:\\temp\\new",
    "trailing backslash \\",
    "\x1b[31mred\x1b[0m",
    "nul \x00 and bell \x07",
    "café \u2028 sep",
    "emoji \U0001f600",
    "\\n is not a newline",
    "[not a list]",
]


def test_keyvalue_renderer_escapes_round_trip() -> None:
    kv = structlog.processors.KeyValueRenderer(key_order=["timestamp", "event"])
    lines = [render(kv, jl(event=v, seq=i, peer=None)) for i, v in enumerate(TRICKY)]
    assert "event='line1\\nline2'" in lines[0]  # what structlog writes: a Python repr
    assert "event='both \\' and \"'" in lines[4]
    assert "peer=None" in lines[0]
    got = collect([MemorySource(lines, name="f", format="kv")])
    frame = got.events.collect()
    assert frame.get_column("event").to_list() == TRICKY
    assert frame.get_column("peer").to_list() == [None] * len(TRICKY)
    assert frame.get_column("seq").to_list() == list(range(len(TRICKY)))
    assert got.inputs.malformed == 0 and got.inputs.warnings == []


@pytest.mark.parametrize(
    ("renderer", "written"),
    [
        # KeyValueRenderer leaves the list repr bare; LogfmtRenderer quotes it.
        (structlog.processors.KeyValueRenderer, "recipients=[\"o'brien\", 'u2']"),
        (structlog.processors.LogfmtRenderer, 'recipients="[\\"o\'brien\\", \'u2\']"'),
    ],
)
def test_list_values(renderer: Any, written: str) -> None:
    lists = [
        ["u1", "u2"],
        ["o'brien", "u2"],
        ['say "hi"', "it's"],
        ["back\\slash", "tab\there", "caf\u00e9"],
        ["a]b", "c"],
        [],
    ]
    r = renderer(key_order=["timestamp", "event"])
    lines = [render(r, jl(recipients=rs, seq=i)) for i, rs in enumerate(lists)]
    assert written in lines[1]
    got = collect([MemorySource(lines, name="f", format="kv")])
    assert got.events.collect().get_column("recipients").to_list() == lists
    assert got.inputs.warnings == []


def test_logfmt_escapes_round_trip() -> None:
    lf = structlog.processors.LogfmtRenderer(key_order=["timestamp", "event"])
    # Values structlog quotes (a space in each): inside double quotes, \" \\ \n are escapes.
    values = [
        'say "hi" now',
        "C:\\temp dir\\x",
        "two\nlines here",
        "it's ok",
        "tab\there too",
        "['u1', \"u'2\"]",
    ]
    lines = [render(lf, jl(event=v, seq=i)) for i, v in enumerate(values)]
    assert 'event="say \\"hi\\" now"' in lines[0]
    assert 'event="C:\\\\temp dir\\\\x"' in lines[1]
    got = collect([MemorySource(lines, name="f", format="kv")])
    assert got.events.collect().get_column("event").to_list() == values


def test_logfmt_escapes_of_other_writers() -> None:
    # Go's strconv.Quote and JSON-minded writers: \t \x.. \u.... \U........ and surrogate pairs.
    line = (
        "timestamp=2026-11-25T10:00:00Z stage=CTRL action=send seq=1 actor=u1 source=s "
        'event="caf\\u00e9\\tx \\x1b[0m \\U0001F600 \\ud83d\\ude00 \\\\ \\"q\\" \\/"'
    )
    got = collect([MemorySource([line], name="f", format="kv")])
    assert got.events.collect().get_column("event").to_list() == [
        'caf\u00e9\tx \x1b[0m \U0001f600 \U0001f600 \\ "q" \\/'
    ]


def test_a_stage_duration_is_read_from_key_value_lines() -> None:
    lines = [
        "timestamp=2026-11-25T10:00:00Z stage=REST action=request seq=1 duration_ms=12.5",
        "timestamp=2026-11-25T10:00:01Z stage=REST action=response seq=2",
        "timestamp=2026-11-25T10:00:02Z stage=REST action=request seq=3 duration_ms=slow",
    ]
    got = collect([MemorySource(lines, name="f", format="kv")])
    assert got.events.collect().get_column("duration_ms").to_list() == [12.5, None, None]
    assert got.inputs.warnings == [
        "f: 1 events have a duration_ms that is not a number; it was left empty"
    ]


def test_undecodable_escapes_are_kept_as_written() -> None:
    # Never raise: an escape that decodes to nothing valid stays as it was written.
    odd = [
        r"'\x4'",
        r"'\U00110000'",
        r"'\ud800 lone'",
        r"'\N{NO SUCH NAME}'",
        r"'\q unknown'",
        '"unterminated\\"',
    ]
    lines = [
        f"timestamp=2026-11-25T10:00:00Z stage=CTRL action=send seq={i} event={v}"
        for i, v in enumerate(odd)
    ]
    got = collect([MemorySource(lines, name="f", format="kv")])
    assert got.events.collect().get_column("event").to_list() == [
        r"\x4",
        r"\U00110000",
        r"\ud800 lone",
        r"\N{NO SUCH NAME}",
        r"\q unknown",
        '"unterminated\\"',  # the closing quote is escaped: not a quoted value at all
    ]


def test_keys_inside_quoted_values_are_text_not_keys() -> None:
    # The message mentions peer=, seq=, stage=: those are words of the value; the real keys
    # come later on the line (or not at all: then the key is absent, not taken from the text).
    kv = structlog.processors.KeyValueRenderer(key_order=["timestamp", "event"])
    lf = structlog.processors.LogfmtRenderer(key_order=["timestamp", "event"])
    lines = [
        render(
            kv,
            jl(
                stage="WS-BROADCAST",
                action="deliver",
                event="delivering to peer=u9 seq=99",
                actor="server",
                peer="u2",
                source="srv",
                seq=7,
            ),
        ),
        render(lf, jl(event="retrying after stage=REST failed", seq=8)),
        render(lf, jl(event="no peer here, only peer=u9 in the text", seq=9)),
        # a quote that opens no string is just a character of a bare value
        "timestamp=2026-11-25T10:00:00Z event=it's stage=CTRL action=send trace_id="
        + T1
        + " seq=10",
        # a bare value holding '=' and a quoted value ending a line
        "stage=REST action=request trace_id="
        + T1
        + " seq=11 timestamp=2026-11-25T10:00:00Z event='url=/a?b=c peer=u9'",
        # a key given twice: the first one counts
        "timestamp=2026-11-25T10:00:00Z event='x' stage=REPO action=add trace_id="
        + T1
        + " seq=12 stage=CTRL",
    ]
    got = collect([MemorySource(lines, name="app.log", format="kv")])
    frame = got.events.collect()
    assert frame.select("line", "stage", "action", "event", "peer", "seq").rows() == [
        (1, "WS-BROADCAST", "deliver", "delivering to peer=u9 seq=99", "u2", 7),
        (2, "CTRL", "send", "retrying after stage=REST failed", None, 8),
        (3, "CTRL", "send", "no peer here, only peer=u9 in the text", None, 9),
        (4, "CTRL", "send", "it's", None, 10),
        (5, "REST", "request", "url=/a?b=c peer=u9", None, 11),
        (6, "REPO", "add", "x", None, 12),
    ]
    assert frame.get_column("timestamp").to_list() == [ts("10:00:00")] * 6
    inputs = got.inputs
    assert (inputs.events, inputs.malformed, inputs.ignored, inputs.warnings) == (6, 0, 0, [])


KV_EVENT = f"stage=CTRL action=send event='CTRL send' trace_id={T1} actor=u1 source=client-u1"


@pytest.mark.parametrize(
    "prefix",
    [
        "2026-11-25 09:59:0{i},000 INFO ",  # logging's "%(asctime)s %(levelname)s %(message)s"
        "2026-11-25T09:59:0{i}.000000000Z stdout F ",  # a container runtime's (CRI) prefix
    ],
)
@pytest.mark.parametrize("forced", [False, True])
def test_kv_events_behind_a_prefix_are_read(prefix: str, forced: bool) -> None:
    # were all "ignored" (detected as legacy, no tag), or malformed with formats=["kv"]
    lines = [
        prefix.format(i=i) + f"timestamp=2026-11-25T10:00:0{i}Z {KV_EVENT} seq={i}"
        for i in range(1, 4)
    ]
    data = "\n".join(lines) + "\n"
    if not forced:
        assert detect_format(data.encode()) == "kv"
    got = collect([MemorySource(data, name="app.log", format="kv" if forced else None)])
    frame = got.events.collect()
    assert frame.select("timestamp", "stage", "action", "trace_id", "seq", "line").rows() == [
        (ts(f"10:00:0{i}"), "CTRL", "send", T1, i, i) for i in range(1, 4)
    ]
    i = got.inputs
    assert (i.lines, i.events, i.malformed, i.ignored, i.warnings) == (3, 3, 0, 0, [])


def test_kv_events_without_a_timestamp_pair_take_their_prefix_time() -> None:
    lines = [
        f"2026-11-25 10:00:01,250 INFO {KV_EVENT} seq=1",
        f"[2026-11-25T10:00:02.5+00:00] {KV_EVENT} seq=2",
        f"2026-11-25T10:00:03.000000000Z stdout F ts=2026-11-25T10:00:04Z {KV_EVENT} seq=3",
        f"INFO {KV_EVENT} seq=4",  # no time anywhere
    ]
    got = collect([MemorySource(lines, name="app.log")])
    frame = got.events.collect()
    assert frame.select("timestamp", "seq", "line").rows() == [
        (ts("10:00:01.25"), 1, 1),
        (ts("10:00:02.5"), 2, 2),
        (ts("10:00:04"), 3, 3),  # the event's own time, not the runtime's
    ]
    assert got.inputs.examples == ["app.log:4: missing required key 'timestamp'"]
    assert got.inputs.warnings == [
        "app.log: 1 timestamps have no time zone and were read as UTC; pass timezone=... "
        "(e.g. 'Europe/Berlin') if they are local times"
    ]


def test_kv_events_in_a_legacy_log_are_counted_in_a_warning() -> None:
    lines = [
        "2026-11-25T10:00:00.100Z [CTRL] sendMessage: hi clientMsgId=c1",
        "2026-11-25T10:00:00.200Z [CTRL] sendMessage: hi clientMsgId=c2",
        f"2026-11-25 10:00:01,000 INFO timestamp=2026-11-25T10:00:01Z {KV_EVENT}",
        "2026-11-25T10:00:00.300Z [CTRL] sendMessage: hi clientMsgId=c3",
        f"2026-11-25 10:00:02,000 INFO timestamp=2026-11-25T10:00:02Z {KV_EVENT}",
    ]
    # detected as legacy: the kv reader reads them in place (review 7; were left unread)
    got = collect([MemorySource(lines, name="client-u1.log")])
    i = got.inputs
    assert (i.lines, i.events, i.malformed, i.ignored) == (5, 5, 0, 0)
    assert i.formats == {"legacy": 1, "kv": 1}
    assert i.warnings == [
        "client-u1.log: 2 lines are key=value events among legacy lines; read them with the "
        "kv reader"
    ]
    # legacy forced: left unread, counted in a warning
    got = collect([MemorySource(lines, name="client-u1.log")], formats=["legacy"])
    i = got.inputs
    assert (i.lines, i.events, i.malformed, i.ignored) == (5, 3, 0, 2)
    assert i.formats == {"legacy": 1}
    assert i.warnings == [
        "client-u1.log: 2 lines look like key=value events but were not read as such "
        "(first: line 3); a key=value event is read in a file read as kv (detected when most "
        "of its first lines are such events, or formats=['kv'])"
    ]


KV_TEXT = [  # an app's own text mentioning stage=/action=: no pairs from where a prefix ends
    "2026-11-25 10:00:03,100 DEBUG sqlalchemy.engine: UPDATE jobs SET stage=3, action='retry' "
    "WHERE id=5",
    '2026-11-25 10:00:04,100 WARNING app: user wrote "please redo stage=2 action=resend" in chat',
    "2026-11-25 10:00:05,100 INFO worker: retry stage=2 action=resend attempt=3",
    '[2026-11-25T10:00:06Z] said "stage=2 action=resend"',
]


@pytest.mark.parametrize("forced", [False, True])
def test_words_like_pairs_in_an_apps_text_are_no_kv_events(forced: bool) -> None:
    # were events with stage "3," / "2" and action "retry" / 'resend"' (review F #1)
    kv = [f"timestamp=2026-11-25T10:00:0{i}Z {KV_EVENT} seq={i}" for i in (1, 2, 7, 8, 9)]
    lines = kv[:2] + KV_TEXT + kv[2:]
    data = "\n".join(lines) + "\n"
    if not forced:
        assert detect_format(data.encode()) == "kv"
    got = collect([MemorySource(data, name="app.log", format="kv" if forced else None)])
    frame = got.events.collect()
    assert frame.select("stage", "action", "seq", "line").rows() == [
        ("CTRL", "send", 1, 1),
        ("CTRL", "send", 2, 2),
        ("CTRL", "send", 7, 7),
        ("CTRL", "send", 8, 8),
        ("CTRL", "send", 9, 9),
    ]
    i = got.inputs
    assert (i.lines, i.events, i.malformed, i.ignored, i.warnings) == (9, 5, 4, 0, [])
    assert i.examples == [f"app.log:{n}: not key=value text" for n in range(3, 7)]


def test_words_like_pairs_in_an_apps_text_do_not_make_a_file_kv() -> None:
    # detection counted them as kv lines: this file was read as kv, its lines malformed
    data = "\n".join(KV_TEXT) + "\n"
    assert detect_format(data.encode()) == "legacy"
    got = collect([MemorySource(data, name="app.log")])
    i = got.inputs
    assert (i.lines, i.events, i.malformed, i.ignored, i.warnings) == (4, 0, 0, 4, [])


@pytest.mark.parametrize(
    "prefix",
    [
        "INFO:app.db:",  # logging.basicConfig's default format
        "2026-11-25 09:59:00,000 - app.db - INFO - ",  # the logging cookbook's
        "2026-11-25 09:59:00,000 [INFO] [app.db] ",
        "2026-11-25 09:59:00,000 INFO café.db: ",  # a prefix that is not ASCII
        "2026-11-25T09:59:00Z stderr P 2026-11-25 09:59:00,000 WARNING app.db: ",  # CRI + logging
    ],
)
def test_kv_events_behind_other_prefix_shapes_are_read(prefix: str) -> None:
    lines = [prefix + f"timestamp=2026-11-25T10:00:0{i}Z {KV_EVENT} seq={i}" for i in (1, 2)]
    got = collect([MemorySource(lines, name="app.log")])
    assert got.events.collect().select("timestamp", "stage", "seq").rows() == [
        (ts(f"10:00:0{i}"), "CTRL", i) for i in (1, 2)
    ]
    i = got.inputs
    assert (i.lines, i.events, i.malformed, i.ignored, i.warnings) == (2, 2, 0, 0, [])


def test_legacy_tagged_lines_with_pairs_are_not_counted_as_unread_kv_events() -> None:
    # review F #6: the warning pointed to formats=['kv'], which loses the legacy events
    lines = [
        "2026-11-25 10:00:01.000Z [CTRL] sendMessage: clientMsgId=a1",
        "2026-11-25 10:00:03.000 [WS] heartbeat stage=ping action=pong",
        "2026-11-25 10:00:04.000 DEBUG db: UPDATE jobs SET stage=3 WHERE id=5",
    ]
    got = collect([MemorySource(lines, name="client-u1.log")])
    i = got.inputs
    assert (i.lines, i.events, i.malformed, i.ignored, i.warnings) == (3, 1, 0, 2, [])
