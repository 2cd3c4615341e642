"""Text from the logs (recipients, sources, details, file names) is data, never markup: the
terminal output shows it as written, the Markdown output keeps it inside its cell."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tracekit.cli._app import app

T = "3f2b8c1e5d4a4e8f9a7b1c2d3e4f5a6b"
runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args), env={"COLUMNS": "300"})
    return result.exit_code, result.stdout, result.stderr


def _event(ts: float, stage: str, action: str, source: str, seq: int, **kw: Any) -> str:
    return json.dumps(
        {
            "timestamp": f"2026-01-01T00:00:{ts:09.6f}Z",
            "stage": stage,
            "action": action,
            "event": "e",
            "trace_id": T,
            "source": source,
            "seq": seq,
            "conv_id": "c1",
            **kw,
        }
    )


def write_drop(logs: Path, recipient: str) -> Path:
    """u1 sends one message to ``recipient``; the server delivers it, the recipient never
    receives it (a drop at WS-RECV.receive), and the server log goes on for 9 s after."""
    logs.mkdir(parents=True, exist_ok=True)
    server = [
        _event(0.01, "REST", "persist", "srv", 1, actor="server", msg_id="m1"),
        _event(
            0.02,
            "WS-BROADCAST",
            "start",
            "srv",
            2,
            actor="server",
            recipients=[recipient],
            msg_id="m1",
        ),
        _event(
            0.03, "WS-BROADCAST", "deliver", "srv", 3, actor="server", peer=recipient, msg_id="m1"
        ),
        _event(9.0, "TRACEKIT", "configured", "srv", 4, actor="server").replace(T, ""),
    ]
    client = [
        _event(0.0, "CTRL", "send", "client-u1", 1, actor="u1"),
        _event(0.001, "REST", "request", "client-u1", 2, actor="u1"),
        _event(0.02, "REST", "response", "client-u1", 3, actor="u1", msg_id="m1"),
    ]
    (logs / "server.jsonl").write_text("\n".join(server) + "\n")
    (logs / "client-u1.jsonl").write_text("\n".join(client) + "\n")
    return logs


def _detail(recipient: str) -> str:
    return (
        f"recipient {recipient}: reached WS-BROADCAST.deliver, never reached WS-RECV.receive "
        f"(the logs go on 8970.0 ms after it); no log of {recipient}'s app is among the inputs"
    )


def _cells(row: str) -> list[str]:
    return [c.strip() for c in row.split("│")[1:-1]]


# -- 1. rich markup ------------------------------------------------------------------------


@pytest.mark.parametrize("recipient", ["bot[/x]", "[red]admin", "[bold]u2[/bold]"])
def test_analyze_table_shows_recipients_as_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, recipient: str
) -> None:
    monkeypatch.chdir(tmp_path)  # short evidence paths: the row fits on one line
    write_drop(Path("logs"), recipient)
    code, out, err = run("analyze", "logs", "--grace", "0s")
    assert (code, err) == (0, "")
    row = next(line for line in out.splitlines() if line.startswith("│ drop │"))
    assert _cells(row) == [
        "drop",
        T[:12],
        f"for {recipient} at WS-RECV.receive (last seen WS-BROADCAST.deliver)",
        _detail(recipient),
        "logs/server.jsonl:3",
    ]


@pytest.mark.parametrize("recipient", ["bot[/x]", "[red]admin"])
def test_trace_shows_recipients_as_written(tmp_path: Path, recipient: str) -> None:
    logs = write_drop(tmp_path / "logs", recipient)
    code, out, err = run("trace", T, str(logs))
    assert (code, err) == (0, "")
    recipient_rows = [
        [_cells(line)[i] for i in (0, 1, 3)]  # recipient, hop, source
        for line in out.splitlines()
        if line.startswith("│ " + recipient)
    ]
    assert recipient_rows == [
        [recipient, "WS-BROADCAST.deliver", "srv"],
        [recipient, "✗ WS-RECV.receive (missing)", ""],
        [recipient, "· REPO.add (not reached)", ""],
        [recipient, "· CTRL.add (not reached)", ""],
    ]


@pytest.mark.parametrize("recipient", ["bot[/x]", "[red]admin"])
def test_watch_shows_recipients_as_written(tmp_path: Path, recipient: str) -> None:
    logs = write_drop(tmp_path / "logs", recipient)
    code, out, _ = run(
        "watch", str(logs), "--grace", "0s", "--interval", "100ms", "--duration", "0s"
    )
    assert code == 0
    assert out == (
        f"drop {T} recipient {recipient} at WS-RECV.receive (last seen WS-BROADCAST.deliver): "
        f"{_detail(recipient)}\n"
    )


# -- 2. watch and log gaps -----------------------------------------------------------------


def _tick(sec: int, seq: int) -> str:
    return (
        json.dumps(
            {
                "timestamp": f"2026-01-01T00:{sec // 60:02d}:{sec % 60:02d}.000000Z",
                "stage": "TRACEKIT",
                "action": "configured",
                "event": "tick",
                "actor": "server",
                "source": "srv[/x]",
                "seq": seq,
            }
        )
        + "\n"
    )


def test_watch_prints_every_log_gap_of_a_source_and_names_the_source(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    log = logs / "server.jsonl"
    log.write_text("".join(_tick(s, q) for s, q in [(0, 1), (1, 2), (2, 4), (3, 5)]))

    def append_a_second_gap() -> None:
        time.sleep(0.8)
        with log.open("a") as fh:
            fh.write("".join(_tick(s, q) for s, q in [(10, 6), (11, 9), (12, 10)]))

    writer = threading.Thread(target=append_a_second_gap)
    writer.start()
    try:
        code, out, _ = run(
            "watch", str(logs), "--grace", "0s", "--interval", "100ms", "--duration", "2s"
        )
    finally:
        writer.join()
    assert code == 0
    assert out == (
        "log_gap in srv[/x]: seq jumps from 2 to 4: 1 event(s) lost by the logging\n"
        "log_gap in srv[/x]: seq jumps from 6 to 9: 2 event(s) lost by the logging\n"
    )


def test_watch_key_is_the_gap_not_the_paths_it_makes_indeterminate() -> None:
    from tracekit.cli._watch import _key

    gap: dict[str, Any] = {
        "kind": "log_gap",
        "trace_id": None,
        "recipient": None,
        "stage": None,
        "source": "srv",
        "detail": "seq jumps from 2 to 4: 1 event(s) lost by the logging",
        "evidence": [{"file": "a/server.jsonl", "line": 2}, {"file": "a/server.jsonl", "line": 3}],
    }
    # a later round finds a message path inside the gap: the same gap, not printed again
    later = {**gap, "detail": gap["detail"] + "; 1 message path(s) indeterminate, ..."}
    # the file rotated away: the same gap, now in server.jsonl.1
    rotated = {
        **gap,
        "evidence": [{"file": "a/server.jsonl.1", "line": n} for n in (2, 3)],
    }
    other = {**gap, "detail": "seq jumps from 6 to 9: 2 event(s) lost by the logging"}
    assert _key(gap) == _key(later) == _key(rotated) != _key(other)
    # the emitter's own report has no seq range: its line tells two of them apart
    dropped = {
        **gap,
        "detail": "the emitter reported dropping events (TRACEKIT.dropped)",
        "evidence": [{"file": "a/server.jsonl", "line": 7}],
    }
    assert _key(dropped) != _key({**dropped, "evidence": [{"file": "a/server.jsonl", "line": 9}]})


# -- 3. the timeline's count and file:line -------------------------------------------------


def write_duplicate(logs: Path) -> Path:
    """u1 sends one message to u2, whose client logs WS-RECV.receive twice (lines 1 and 2)."""
    logs.mkdir(parents=True, exist_ok=True)
    server = [
        _event(0.01, "REST", "persist", "srv", 1, actor="server", msg_id="m1"),
        _event(0.02, "WS-BROADCAST", "start", "srv", 2, actor="server", recipients=["u2"]),
        _event(0.03, "WS-BROADCAST", "deliver", "srv", 3, actor="server", peer="u2", msg_id="m1"),
    ]
    sender = [
        _event(0.0, "CTRL", "send", "client-u1", 1, actor="u1"),
        _event(0.001, "REST", "request", "client-u1", 2, actor="u1"),
        _event(0.02, "REST", "response", "client-u1", 3, actor="u1", msg_id="m1"),
    ]
    recipient = [
        _event(0.04, "WS-RECV", "receive", "client-u2", 1, actor="u2", msg_id="m1"),
        _event(0.041, "WS-RECV", "receive", "client-u2", 2, actor="u2", msg_id="m1"),
        _event(0.05, "REPO", "add", "client-u2", 3, actor="u2", msg_id="m1"),
        _event(0.06, "CTRL", "add", "client-u2", 4, actor="u2", msg_id="m1"),
    ]
    (logs / "server.jsonl").write_text("\n".join(server) + "\n")
    (logs / "client-u1.jsonl").write_text("\n".join(sender) + "\n")
    (logs / "client-u2.jsonl").write_text("\n".join(recipient) + "\n")
    return logs


def test_trace_shows_how_often_and_where_each_hop_was_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_duplicate(Path("logs"))
    code, out, err = run("trace", T, "logs")
    assert (code, err) == (0, "")
    lines = out.splitlines()
    assert _cells(lines[2].replace("┃", "│")) == [
        "recipient",
        "hop",
        "count",
        "source",
        "time (corrected, UTC)",
        "+ms",
        "logged at",
    ]
    rows = [_cells(line) for line in lines if line.startswith("│")]
    assert [[r[0], r[1], r[2], r[3], r[6]] for r in rows] == [
        ["·", "CTRL.send", "1", "client-u1", "logs/client-u1.jsonl:1"],
        ["·", "REST.request", "1", "client-u1", "logs/client-u1.jsonl:2"],
        ["·", "REST.persist", "1", "srv", "logs/server.jsonl:1"],
        ["·", "REST.response", "1", "client-u1", "logs/client-u1.jsonl:3"],
        ["·", "WS-BROADCAST.start", "1", "srv", "logs/server.jsonl:2"],
        ["u2", "WS-BROADCAST.deliver", "1", "srv", "logs/server.jsonl:3"],
        ["u2", "WS-RECV.receive (duplicate)", "2", "client-u2", "logs/client-u2.jsonl:1"],
        ["u2", "REPO.add", "1", "client-u2", "logs/client-u2.jsonl:3"],
        ["u2", "CTRL.add", "1", "client-u2", "logs/client-u2.jsonl:4"],
    ]


def test_trace_leaves_count_and_place_of_a_missing_hop_empty(tmp_path: Path) -> None:
    logs = write_drop(tmp_path / "logs", "u2")
    code, out, _ = run("trace", T, str(logs))
    assert code == 0
    # the drop's first missing hop, then the two never reached after it
    missing = [_cells(line) for line in out.splitlines() if "(missing)" in line or "(not r" in line]
    assert [r[:3] + r[4:] for r in missing] == [
        ["u2", "✗ WS-RECV.receive (missing)", "", "", "", ""],
        ["u2", "· REPO.add (not reached)", "", "", "", ""],
        ["u2", "· CTRL.add (not reached)", "", "", "", ""],
    ]


def test_html_timeline_rows_show_how_often_and_where_each_hop_was_logged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_duplicate(Path("logs"))
    code, _, err = run("report", "logs", "-o", "report.html")
    assert (code, err) == (0, "wrote report.html\n")
    page = Path("report.html").read_text()
    assert (
        '<th>time (corrected, UTC)</th><th class="num">since first</th>'
        '<th class="num">from previous</th><th class="num">count</th><th>logged at</th>'
        "<th>status</th>"
    ) in page
    receive = next(
        row.partition("</tr>")[0]
        for row in page.split('<tr class="reached">')[1:]
        if '<td class="stage">WS-RECV.receive</td>' in row
    )
    assert receive == (
        '<td class="recipient">u2</td><td class="stage">WS-RECV.receive</td>'
        '<td class="source">client-u2</td><td class="mono">2026-01-01T00:00:00.040000Z</td>'
        '<td class="num">+40 ms</td><td class="num">10 ms</td>'
        '<td class="num count dup">2</td>'
        '<td class="evidence"><code title="logs/client-u2.jsonl:1">client-u2.jsonl:1</code></td>'
        '<td class="status">duplicate</td>'
    )
    # the hop's tooltip in the drawing says so too
    assert (
        "<title>u2 · WS-RECV.receive · logged 2 times · client-u2 · 2026-01-01T00:00:00.040000Z · +10 ms · "
        "logs/client-u2.jsonl:1</title>"
    ) in page


# -- 4. Markdown cells ---------------------------------------------------------------------


def test_markdown_keeps_log_text_inside_its_cell_and_escapes_html(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    recipient = "u2|<script>alert(1)</script>&co"
    write_drop(Path("logs<img src=x onerror=alert(1)>"), recipient)
    code, out, err = run(
        "analyze", "logs<img src=x onerror=alert(1)>", "--grace", "0s", "-f", "markdown"
    )
    assert (code, err) == (0, "")
    shown = "u2\\|&lt;script&gt;alert(1)&lt;/script&gt;&amp;co"
    rows = [line for line in out.splitlines() if line.startswith("| drop | `")]
    assert rows == [
        f"| drop | `{T}` | for {shown} at WS-RECV.receive (last seen WS-BROADCAST.deliver) | "
        f"recipient {shown}: reached WS-BROADCAST.deliver, never reached WS-RECV.receive "
        f"(the logs go on 8970.0 ms after it); no log of {shown}'s app is among the inputs | "
        "logs&lt;img src=x onerror=alert(1)&gt;/server.jsonl:3 |"
    ]
    assert "<" not in out and ">" not in out


def test_markdown_cells_escape_backslashes_and_line_breaks() -> None:
    from tracekit.cli._render import render_markdown

    report = {
        "summary": {"messages": 1, "drop": 1},
        "findings": [
            {
                "kind": "drop",
                "trace_id": "t`1|x",
                "source": "a\\|b",
                "detail": "two\nlines\r\nhere",
                "evidence": [{"file": "f|g", "line": 3}],
            }
        ],
        "latency": {
            "hops": [{"from": "A|B", "to": "<C>", "count": 1, "p50_ms": 1.0}],
        },
    }
    out = render_markdown(report).splitlines()
    # a backslash before a pipe would escape the escape and end the cell
    assert "| drop | t\\`1\\|x | in a\\\\\\|b | two lines here | f\\|g:3 |" in out
    assert "| A\\|B | &lt;C&gt; | 1 | 1.0 | - | - | - |" in out


# -- 5. control characters and terminal escapes (review B, D4 and D5) ----------------------

HOSTILE = "u2\x1b[2J\x1b]0;pwned\x07EVIL\x1b[31mred\u202e\x9b"
SHOWN = "u2\\x1b[2J\\x1b]0;pwned\\x07EVIL\\x1b[31mred\\u202e\\x9b"


def _no_controls(text: str) -> None:
    assert not any(c in text for c in "\x1b\x07\x9b\u202e"), repr(text)


def test_analyze_table_shows_control_characters_as_escapes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    write_drop(Path("logs"), HOSTILE)
    code, out, err = run("analyze", "logs", "--grace", "0s")
    assert (code, err) == (0, "")
    _no_controls(out)
    row = next(line for line in out.splitlines() if line.startswith("│ drop │"))
    assert _cells(row)[2] == f"for {SHOWN} at WS-RECV.receive (last seen WS-BROADCAST.deliver)"


def test_analyze_markdown_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    logs = write_drop(tmp_path / "logs", HOSTILE)
    code, out, _ = run("analyze", str(logs), "--grace", "0s", "-f", "markdown")
    assert code == 0
    _no_controls(out)
    assert f"| for {SHOWN} at WS-RECV.receive" in out


def test_trace_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    logs = write_drop(tmp_path / "logs", HOSTILE)
    code, out, _ = run("trace", T, str(logs))
    assert code == 0
    _no_controls(out)
    assert [_cells(line)[1] for line in out.splitlines() if line.startswith("│ " + SHOWN)] == [
        "WS-BROADCAST.deliver",
        "✗ WS-RECV.receive (missing)",
        "· REPO.add (not reached)",
        "· CTRL.add (not reached)",
    ]


def test_watch_shows_control_characters_as_escapes(tmp_path: Path) -> None:
    logs = write_drop(tmp_path / "logs", HOSTILE)
    code, out, _ = run(
        "watch", str(logs), "--grace", "0s", "--interval", "100ms", "--duration", "0s"
    )
    assert code == 0
    _no_controls(out)
    assert out.startswith(
        f"drop {T} recipient {SHOWN} at WS-RECV.receive (last seen WS-BROADCAST.deliver): "
        f"recipient {SHOWN}: reached WS-BROADCAST.deliver"
    )


def test_check_lines_junit_and_annotations_carry_no_control_characters(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from xml.etree import ElementTree

    monkeypatch.chdir(tmp_path)
    write_drop(Path("logs"), HOSTILE)
    result = runner.invoke(
        app,
        ["check", "logs", "--max", "drop=0", "--grace", "0s", "--junit", "junit.xml"],
        env={"COLUMNS": "250", "GITHUB_ACTIONS": "true"},
    )
    assert result.exit_code == 1
    _no_controls(result.stdout)
    example = (
        f"{T} recipient {SHOWN} at WS-RECV.receive (last seen WS-BROADCAST.deliver) "
        "[logs/server.jsonl:3]"
    )
    assert f"      {example}\n" in result.stdout
    assert f"::error title=tracekit gate drop <= 0::1 drop finding(s), allowed 0%0A{example}\n" in (
        result.stdout
    )
    failure = ElementTree.parse("junit.xml").find("testsuite/testcase/failure")  # well-formed
    assert failure is not None
    assert failure.text == f"1 drop finding(s), allowed 0\n{example}"


def test_printable_keeps_text_and_tabs_and_escapes_what_xml_forbids() -> None:
    from tracekit.cli._safe import printable

    assert printable("ü → 数\tok") == "ü → 数\tok"
    assert printable("a\x00b\x0bc\rd\ne\x7f\ufffe") == "a\\x00b\\x0bc\\x0dd\\x0ae\\x7f\\ufffe"


def test_shell_path_is_one_word_that_is_not_an_option_and_holds_no_control_character() -> None:
    import shlex
    from pathlib import PurePath

    from tracekit.cli._safe import shell_path

    assert shell_path(PurePath("logs/a.jsonl")) == "logs/a.jsonl"
    assert shlex.split(shell_path(PurePath("-run :bug:/a b.jsonl"))) == ["./-run :bug:/a b.jsonl"]
    assert shell_path(PurePath("/tmp/-x")) == "/tmp/-x"  # absolute: no option to mistake
    assert shell_path(PurePath("a\x1b[31m\n.jsonl")) == "'a\\x1b[31m\\x0a.jsonl'"
