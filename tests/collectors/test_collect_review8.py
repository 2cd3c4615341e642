"""Review 8: JSON objects among text lines read only when formats=[...] allows jsonl; kv
events the legacy reader makes no event of (a tag outside their values) given to the kv
reader; a legacy line read from a quoted value ends where the value does; detection judges
whole lines only; a non-UTF-8 byte is the same character to every check."""

from __future__ import annotations

from pathlib import Path

import pytest
from collectors_helpers import KJ, UNREAD_KV, G, J, at, counts

from tracekit.collectors import collect, detect_format

L1 = "2026-01-01T10:00:00Z [CTRL] sendMessage: clientMsgId=c1"
J2 = '{"timestamp":"2026-01-01T10:00:01Z","stage":"REST","action":"send","event":"x"}'
L3 = "2026-01-01T10:00:02Z [REST-SEND] Message sent: id=m1 clientMsgId=c1"
K = "ts=2026-01-01T10:00:0{}Z stage=REST action=send msg_id=m{}"


def _write(tmp_path: Path, lines: list[str], name: str = "app.log") -> Path:
    p = tmp_path / name
    p.write_text("\n".join(lines) + "\n")
    return p


def _rows(got: object) -> list[tuple[object, ...]]:
    frame = got.events.collect()  # type: ignore[attr-defined]
    return frame.select("line", "stage", "action", "timestamp").rows()


def _short(got: object) -> tuple[object, ...]:
    """counts() with the file name cut off the warnings."""
    c = counts(got)
    return (*c[:5], [w.split(": ", 1)[1] for w in c[5]])  # type: ignore[attr-defined]


# -- 1: JSON objects among text lines, formats=[...] without jsonl ------------------------

NO_JSONL = "1 lines look like JSON events but were not read as such (first: line 2); "
NO_JSONL += "formats=[...] does not include jsonl"


def test_json_among_legacy_lines_is_read_when_formats_allow_it(tmp_path: Path) -> None:
    p = _write(tmp_path, [L1, J2, L3])
    for formats in (None, ["legacy", "jsonl"]):
        got = collect(str(p), formats=formats)
        assert [r[:3] for r in _rows(got)] == [
            (1, "CTRL", "send"),
            (2, "REST", "send"),
            (3, "REST", "response"),
        ]


@pytest.mark.parametrize("formats", [["legacy"], ["legacy", "kv"]])
def test_json_among_legacy_lines_is_not_read_without_jsonl(
    tmp_path: Path, formats: list[str]
) -> None:
    got = collect(str(_write(tmp_path, [L1, J2, L3])), formats=formats)
    assert _rows(got) == [(1, "CTRL", "send", at(0)), (3, "REST", "response", at(2))]
    assert _short(got) == (3, 2, 0, 1, {"legacy": 1}, [NO_JSONL])


def test_json_among_kv_lines_is_malformed_without_jsonl(tmp_path: Path) -> None:
    p = _write(tmp_path, [K.format(0, 1), J2, K.format(2, 2)])
    got = collect(str(p), formats=["kv", "legacy"])
    assert [r[:3] for r in _rows(got)] == [(1, "REST", "send"), (3, "REST", "send")]
    assert _short(got) == (3, 2, 1, 0, {"kv": 1}, [NO_JSONL])
    assert got.inputs.examples == [f"{p}:2: not key=value text"]
    forced = collect(str(p), formats=["kv"])
    assert _short(forced) == _short(got)


def test_forced_legacy_counts_a_json_event_and_an_unread_kv_event_apart(tmp_path: Path) -> None:
    # review 7d's test read the JSON event of line 3 with formats=['legacy']: now ignored
    got = collect(str(_write(tmp_path, [G, KJ, J, G])), formats=["legacy"])
    assert [r[0] for r in _rows(got)] == [1, 4]
    assert _short(got) == (
        4,
        2,
        0,
        2,
        {"legacy": 1},
        [UNREAD_KV, NO_JSONL.replace("line 2", "line 3")],
    )


# -- 2: a kv event with a tag outside its values, no legacy event -------------------------

KT = "ts=2026-01-01T10:00:01Z stage=REST action=send msg_id=m1 note=x [REST] hi"
READ_KV = "1 lines are key=value events among legacy lines; read them with the kv reader"
UNREAD_KT = UNREAD_KV  # line 2, as KJ's


def test_a_kv_event_the_legacy_reader_ignores_goes_to_the_kv_reader(tmp_path: Path) -> None:
    got = collect(str(_write(tmp_path, [L1, KT, L3])))
    assert _rows(got) == [
        (1, "CTRL", "send", at(0)),
        (2, "REST", "send", at(1)),
        (3, "REST", "response", at(2)),
    ]
    assert _short(got) == (3, 3, 0, 0, {"legacy": 1, "kv": 1}, [READ_KV])
    assert got.events.collect().get_column("msg_id").to_list() == [None, "m1", "m1"]


def test_forced_legacy_warns_about_it_by_line_number(tmp_path: Path) -> None:
    got = collect(str(_write(tmp_path, [L1, KT, L3])), formats=["legacy"])
    assert [r[0] for r in _rows(got)] == [1, 3]
    assert _short(got) == (3, 2, 0, 1, {"legacy": 1}, [UNREAD_KT])


def test_among_json_lines_too(tmp_path: Path) -> None:
    p = _write(tmp_path, [L1, KT, L3, J])
    got = collect(str(p))
    assert [r[:3] for r in _rows(got)] == [
        (1, "CTRL", "send"),
        (2, "REST", "send"),
        (3, "REST", "response"),
        (4, "WS-RECV", "recv"),
    ]
    assert counts(got)[:4] == (4, 4, 0, 0)
    assert f"{p}: {READ_KV}" in got.inputs.warnings
    # kv not allowed: warned about by line number, the JSON line read
    got = collect(str(p), formats=["legacy", "jsonl"])
    assert [r[0] for r in _rows(got)] == [1, 3, 4]
    assert counts(got)[:4] == (4, 3, 0, 1)
    assert f"{p}: {UNREAD_KT}" in got.inputs.warnings


def test_a_kv_event_with_a_tag_the_legacy_reader_reads_stays_a_legacy_line(
    tmp_path: Path,
) -> None:
    line = "ts=2026-01-01T10:00:01Z stage=CTRL action=x [REST] Sending message: clientMsgId=c1"
    got = collect(str(_write(tmp_path, [L1, line, L3])))
    assert [r[:3] for r in _rows(got)] == [
        (1, "CTRL", "send"),
        (2, "REST", "request"),
        (3, "REST", "response"),
    ]
    assert _short(got)[:5] == (3, 3, 0, 0, {"legacy": 1})


# -- 3: a legacy line read from inside a quoted value ends where the value does ------------

Q1 = '2026-01-01T10:00:01Z msg="[REST-SEND] Message sent: id=m9 clientMsgId=c1"'
Q2 = "2026-01-01T10:00:02Z level=info msg='[REST] Sending message \"hi\"' conversationId=k2"
Q3 = '2026-01-01T10:00:03Z note="café [CTRL] sendMessage: it\'s ok " id=m7'


def _texts(got: object) -> list[tuple[object, ...]]:
    frame = got.events.collect()  # type: ignore[attr-defined]
    return frame.select("line", "event", "msg_id", "conv_id").rows()


def test_the_closing_quote_is_no_part_of_the_event_text(tmp_path: Path) -> None:
    got = collect(str(_write(tmp_path, [L1, Q1, Q2, Q3])))
    assert _texts(got) == [
        (1, "[CTRL] sendMessage: clientMsgId=c1", None, None),
        (2, "[REST-SEND] Message sent: id=m9 clientMsgId=c1", "m9", None),
        (3, '[REST] Sending message "hi"', None, "k2"),  # an id after the value is the line's
        (4, "[CTRL] sendMessage: it's ok", "m7", None),
    ]
    assert counts(got)[:4] == (4, 4, 0, 0)


def test_in_a_kv_file_too(tmp_path: Path) -> None:
    got = collect(str(_write(tmp_path, [K.format(0, 1), Q1, K.format(2, 2)])))
    assert _texts(got)[1] == (2, "[REST-SEND] Message sent: id=m9 clientMsgId=c1", "m9", None)


def test_a_value_that_does_not_close_keeps_the_rest_of_the_line(tmp_path: Path) -> None:
    line = '2026-01-01T10:00:01Z msg="[REST-SEND] Message sent: id=m9'
    got = collect(str(_write(tmp_path, [L1, line])))
    assert _texts(got)[1] == (2, "[REST-SEND] Message sent: id=m9", "m9", None)


# -- 4: detection judges whole lines only -------------------------------------------------


def _cut_log() -> bytes:
    """23 kv lines and 23 legacy lines, then a kv line whose quoted value (holding a tag)
    the first 64 KiB end in: cut there, the line reads as a legacy line (its ``event=`` value
    a bare word, the tag outside it) and tips the vote."""
    n = 1300
    kv = "ts=2026-01-01T10:00:00Z stage=REST action=send msg_id=m1 pad=" + "x" * n
    legacy = "2026-01-01T10:00:01Z [REST] Sending message: clientMsgId=c1 pad=" + "y" * n
    head = "\n".join([kv] * 23 + [legacy] * 23) + "\n"
    last = 'ts=2026-01-01T10:00:02Z stage=REST action=send event="a b [REST] ' + "z" * 4000
    data = (head + last + '" msg_id=m2\n').encode()
    cut = data[:65536]
    assert len(head) < 65536 and b"[REST] zz" in cut.rsplit(b"\n", 1)[1]  # the setting
    return data


def test_detection_never_judges_a_cut_line() -> None:
    data = _cut_log()
    assert detect_format(data) == "kv"
    assert detect_format(data[:65536]) == "legacy"  # what the cut line made of the sample


def test_a_file_is_read_by_the_format_of_its_whole_lines(tmp_path: Path) -> None:
    p = tmp_path / "app.log"
    p.write_bytes(_cut_log())
    got = collect(str(p))
    among = "23 lines are legacy tagged lines among kv lines; read them with the legacy reader"
    assert _short(got) == (47, 47, 0, 0, {"kv": 1, "legacy": 1}, [among])
    assert _rows(got)[-1][:3] == (47, "REST", "send")


# -- 5: a byte that is not UTF-8 is the same character to the line rules and the readers ---

KB = b"ts=2026-01-01T10:00:0%d stage=REST action=send msg_id=m1 note=caf\xe9"  # Latin-1
# the reader sees U+FFFD for \xa0: a bare value running into the tag (a kv event); Latin-1's
# no-break space made it a tag outside the values (a legacy line, no legacy event: lost)
KA = b"ts=2026-01-01T10:00:02Z stage=REST action=send msg_id=m2 note=x\xa0[REST] hi"
LB = b"2026-01-01T10:00:04Z [REST-SEND] Message sent: id=m1 clientMsgId=c1"
AMONG_KV = "1 lines are legacy tagged lines among kv lines; read them with the legacy reader"


@pytest.mark.parametrize("json", [False, True], ids=["kv-legacy", "kv-legacy-json"])
def test_a_no_break_space_byte_is_no_space_to_the_line_rules(tmp_path: Path, json: bool) -> None:
    lines = [KB % 0, KB % 1, KA, KB % 3, LB]
    if json:
        lines.append(J.encode())
    p = tmp_path / "app.log"
    p.write_bytes(b"\n".join(lines) + b"\n")
    got = collect(str(p))
    frame = got.events.collect()
    n = len(lines)
    assert frame.select("line", "msg_id").rows()[:5] == [
        (1, "m1"),
        (2, "m1"),
        (3, "m2"),
        (4, "m1"),
        (5, "m1"),
    ]
    assert counts(got)[:4] == (n, n, 0, 0)
    assert f"{p}: {AMONG_KV}" in got.inputs.warnings
