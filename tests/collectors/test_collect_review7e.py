"""Review 7e: a ``stage=`` inside a quoted value (``msg="[REST] ... stage=x"``) is text, not
a pair: such a line is a legacy line, read by the legacy reader; a rerouted kv event the kv
reader makes no event of is named in the rerouting warning."""

from __future__ import annotations

from pathlib import Path

from tracekit.collectors import collect, detect_format

L1 = "2026-01-01T10:00:00Z [REST-SEND] Message sent: id=msg1 clientMsgId=c1"
KV = "ts=2026-01-01T10:00:02Z stage=WS action=broadcast msg_id=m1"
Q = 'time=2026-01-01T10:00:03Z level=info msg="[REST] Sending message: clientMsgId=c9 stage=x"'
A = [
    'time=2026-01-01T00:00:00Z level=INFO msg="[REST] Sending message: clientMsgId=c1 stage=send"',
    'time=2026-01-01T00:00:01Z level=INFO msg="[REST-SEND] Message sent: id=msg123 stage=done"',
]


def _run(tmp_path: Path, lines: list[str], **kw: object) -> tuple[list[object], tuple[object, ...]]:
    p = tmp_path / "app.log"
    p.write_text("\n".join(lines) + "\n")
    got = collect(str(p), **kw)  # type: ignore[arg-type]
    frame = got.events.collect()
    i = got.inputs
    warnings = [w.split(": ", 1)[1] for w in i.warnings]
    return frame.select("line", "stage", "action").rows(), (
        i.events,
        i.malformed,
        i.ignored,
        warnings,
    )


def test_logfmt_legacy_text_with_stage_in_msg_is_detected_and_read_as_legacy(
    tmp_path: Path,
) -> None:
    assert detect_format(("\n".join(A) + "\n").encode()) == "legacy"
    got = _run(tmp_path, A)
    assert got == ([(1, "REST", "request"), (2, "REST", "response")], (2, 0, 0, []))


def test_forced_legacy_reads_them_without_a_kv_warning(tmp_path: Path) -> None:
    got = _run(tmp_path, A, formats=["legacy"])
    assert got == ([(1, "REST", "request"), (2, "REST", "response")], (2, 0, 0, []))


def test_one_among_legacy_lines_is_read_not_rerouted(tmp_path: Path) -> None:
    got = _run(tmp_path, [L1, L1, Q])
    assert got == (
        [(1, "REST", "response"), (2, "REST", "response"), (3, "REST", "request")],
        (3, 0, 0, []),
    )


def test_one_in_a_kv_file_is_rerouted_to_the_legacy_reader(tmp_path: Path) -> None:
    got = _run(tmp_path, [KV, KV, Q, KV])
    assert got == (
        [
            (1, "WS", "broadcast"),
            (2, "WS", "broadcast"),
            (3, "REST", "request"),
            (4, "WS", "broadcast"),
        ],
        (
            4,
            0,
            0,
            ["1 lines are legacy tagged lines among kv lines; read them with the legacy reader"],
        ),
    )


def test_a_prefixed_line_with_stage_only_in_a_value_is_no_kv_line() -> None:
    line = '2026-01-01T10:00:00Z INFO app: msg="go stage=x action=y"\n'
    assert detect_format((line * 3).encode()) == "legacy"
    good = "2026-01-01T10:00:00Z INFO app: stage=x action=y\n"
    assert detect_format((good * 3).encode()) == "kv"


def test_kv_lines_with_their_first_pair_glued_to_the_prefix_are_kv_events(
    tmp_path: Path,
) -> None:
    # review 7f: the stage test ran on the whole line, where "INFO:stage=" has neither a line
    # start nor a space before its first pair: detected as legacy, every event ignored
    trace = "0123456789abcdef" * 2
    for prefix in ("INFO:", "[INFO]", "app:", "[2026-01-01T10:00:00Z]"):
        lines = [
            f"{prefix}stage=REST action=request trace_id={trace} msg_id=m1 "
            f"ts=2026-01-01T10:00:0{i}Z"
            for i in range(3)
        ]
        assert detect_format(("\n".join(lines) + "\n").encode()) == "kv", prefix
        assert _run(tmp_path, lines) == (
            [(1, "REST", "request"), (2, "REST", "request"), (3, "REST", "request")],
            (3, 0, 0, []),
        ), prefix
