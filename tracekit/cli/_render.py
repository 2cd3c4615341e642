"""Terminal (rich), Markdown and JSON renderings of a report dict (DESIGN.md section 6)."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any, Final

import orjson
from rich.console import Console, Group
from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from tracekit.cli._copies import copies_note
from tracekit.cli._recipients import count_of, recipients_note
from tracekit.cli._restarts import restarts_note
from tracekit.cli._safe import printable

__all__ = ["render_json", "render_markdown", "render_table", "render_timeline"]

_KIND_STYLE = {
    "drop": "bold red",
    "duplicate": "yellow",
    "unexpected": "yellow",
    "reorder": "yellow",
    "race": "magenta",
    "slo_breach": "red",
    "latency_outlier": "cyan",
    "clock_skew": "blue",
    "log_gap": "blue",
    "in_flight": "dim",
}


def render_json(report: Mapping[str, Any]) -> str:
    return orjson.dumps(report, option=orjson.OPT_INDENT_2).decode() + "\n"


def _ms(value: object) -> str:
    return "-" if value is None else f"{float(value):.1f}"  # type: ignore[arg-type]


def _text(value: object, style: str = "") -> Text:
    """Text from the logs as a rich Text: never markup, never a control sequence."""
    return Text(printable(value), style=style)


def _where(f: Mapping[str, Any]) -> str:
    parts = []
    if f.get("recipient"):
        parts.append(f"for {f['recipient']}")
    if f.get("stage"):
        parts.append(f"at {f['stage']}")
    if f.get("last_seen"):
        parts.append(f"(last seen {f['last_seen']})")
    if f.get("source") and not f.get("recipient"):
        parts.append(f"in {f['source']}")
    return " ".join(parts)


def _evidence(f: Mapping[str, Any], limit: int = 2) -> list[str]:
    """A finding's first evidence lines as ``file:line``, the rest counted on the last."""
    ev = f.get("evidence") or []
    shown = [f"{e.get('file')}:{e.get('line')}" for e in ev[:limit]]
    if len(ev) > limit:
        shown[-1] += f" (+{len(ev) - limit})"
    return shown


def _delivered_pct(summary: Mapping[str, Any]) -> str:
    expected = summary.get("deliveries_expected", 0) or 0
    if not expected:
        return "-"
    return f"{100.0 * summary.get('delivered', 0) / expected:.1f}%"


#: How many input warnings and malformed-line examples the table and Markdown show.
_SHOWN_NOTES = 5


def input_notes(inputs: Mapping[str, Any], *, head: bool = False) -> list[tuple[str, str]]:
    """What the reading skipped or guessed (DESIGN.md section 8: never silently): each input
    warning and the first malformed-line examples, one line each, the rest counted. ``head``:
    first the line of counts (the table has it in its summary panel)."""
    lines: list[tuple[str, str]] = []
    if head:
        lines.append(
            (
                f"{inputs.get('events', 0)} events from {inputs.get('files', 0)} file(s), "
                f"{inputs.get('lines', 0)} line(s), {inputs.get('malformed', 0)} malformed "
                "line(s)",
                "",
            )
        )
    warnings = [str(w) for w in inputs.get("warnings") or []]
    lines += [(f"warning: {w}", "yellow") for w in warnings[:_SHOWN_NOTES]]
    if len(warnings) > _SHOWN_NOTES:
        more = len(warnings) - _SHOWN_NOTES
        lines.append((f"... and {more} more warning(s) (use --format json for all)", "yellow"))
    lines += [(f"warning: {note}", "yellow") for note in _missing_notes(inputs)]
    unlinked = count_of(inputs.get("unlinked"))
    if unlinked:
        said = [str(e) for e in inputs.get("unlinked_examples") or []]
        lines.append(
            (
                f"warning: {unlinked} event(s) tied to no message, so on no message's path"
                + "".join(f"; first: {e}" for e in said[:1]),
                "yellow",
            )
        )
    examples = [str(e) for e in inputs.get("examples") or []]
    malformed = int(inputs.get("malformed") or 0)
    lines += [(f"malformed: {e}", "yellow") for e in examples[:_SHOWN_NOTES]]
    if malformed > min(len(examples), _SHOWN_NOTES):
        shown = min(len(examples), _SHOWN_NOTES)
        lines.append((f"... {malformed - shown} more malformed line(s) not shown", "yellow"))
    return lines


#: What an event without each required key becomes (DESIGN.md section 3).
_WITHOUT: Final = {
    "actor": "whose they are is unknown, and a recipient's hop among them on no recipient's path",
    "source": "each was given its file's name as its source",
    "seq": "a gap in their logs cannot be seen",
    "event": "no human message",
}


def _missing_notes(inputs: Mapping[str, Any]) -> list[str]:
    """Events read without a required key (``inputs.missing``), one line per key, with what
    that costs the analysis. A ``seq`` missing from every event is a log format without one
    (legacy text), not news."""
    missing = inputs.get("missing")
    if not isinstance(missing, Mapping):
        return []
    events = count_of(inputs.get("events"))
    notes = []
    for key, value in sorted(missing.items()):
        n = count_of(value)
        if not n or (key == "seq" and n >= events):
            continue
        why = _WITHOUT.get(str(key), "")
        notes.append(f"{n} event(s) have no {key}" + (f"; {why}" if why else ""))
    return notes


def render_table(report: Mapping[str, Any], console: Console, *, max_findings: int = 20) -> None:
    """The human report: summary, funnel, findings grouped by kind, latency per hop."""
    summary = report.get("summary", {})
    inputs = report.get("inputs", {})
    head = Text()
    head.append(f"{summary.get('messages', 0)} messages", style="bold")
    head.append(
        f" · {summary.get('delivered', 0)}/{summary.get('deliveries_expected', 0)} deliveries"
        f" ({_delivered_pct(summary)})"
    )
    head.append(
        f" · {inputs.get('events', 0)} events from {inputs.get('files', 0)} file(s),"
        f" {inputs.get('malformed', 0)} malformed line(s)"
        + (" (read from the cache)" if inputs.get("cached") else "")
    )
    counts = Text()
    for kind, style in _KIND_STYLE.items():
        n = summary.get(kind, 0)
        if n:
            counts.append(f"{kind}={n}  ", style=style)
    if not counts:
        counts.append("no findings", style="green")
    lines = [head, counts]
    if note := recipients_note(summary):
        lines.append(Text(note, style="dim"))
    if note := restarts_note(summary):
        lines.append(_text(note, "yellow"))
    if note := copies_note(summary):
        lines.append(_text(note, "dim"))
    console.print(Panel(Group(*lines), title="tracekit", expand=False))
    for line, style in input_notes(inputs):
        console.print(_text(line, style))

    funnel = report.get("funnel")
    if funnel:
        table = Table(title="Delivery funnel", title_justify="left")
        table.add_column("hop")
        table.add_column("scope")
        table.add_column("reached", justify="right")
        table.add_column("expected", justify="right")
        for row in funnel:
            row_style = "red" if row["reached"] < row["expected"] else None
            table.add_row(
                _text(row["hop"]),
                _text(row["scope"]),
                str(row["reached"]),
                str(row["expected"]),
                style=row_style,
            )
        console.print(table)

    findings: Sequence[Mapping[str, Any]] = report.get("findings", [])
    if findings:
        table = Table(title="Findings", title_justify="left")
        table.add_column("kind")
        table.add_column("trace")
        table.add_column("where")
        table.add_column("detail")
        # A path is one word: cut to the column, its line number (the point of the evidence)
        # was lost. One entry a line, folded where the column is narrower.
        table.add_column("evidence", overflow="fold")
        shown = 0
        for kind in _KIND_STYLE:
            for f in (f for f in findings if f.get("kind") == kind):
                if shown >= max_findings:
                    break
                table.add_row(
                    Text(kind, style=_KIND_STYLE[kind]),
                    _text(str(f.get("trace_id") or "-")[:12]),
                    _text(_where(f)),
                    _text(f.get("detail", "")),
                    Text("\n").join(_text(e) for e in _evidence(f)),
                )
                shown += 1
        console.print(table)
        if len(findings) > shown:
            console.print(f"... and {len(findings) - shown} more (use --format json for all)")

    latency = report.get("latency", {})
    hops = latency.get("hops", [])
    if hops:
        table = Table(title="Latency (ms, clock-corrected)", title_justify="left")
        for col in ("from", "to", "count", "p50", "p95", "p99", "max"):
            table.add_column(col, justify="right" if col not in ("from", "to") else "left")
        rows = [*hops]
        e2e = latency.get("end_to_end")
        for row in rows:
            table.add_row(
                _text(row["from"]),
                _text(row["to"]),
                str(row["count"]),
                *(_ms(row.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
            )
        if e2e and e2e.get("count"):
            table.add_row(
                "end to end",
                "",
                str(e2e["count"]),
                *(_ms(e2e.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")),
                style="bold",
            )
        console.print(table)
    # a clock the pairs bound on one side only (or not at all) is no estimate: said, apart,
    # not left out as if it were 0 (review 18a); names only, a receive-only client each
    clock = [c for c in report.get("clock", []) if not c.get("reference")]
    moved = [c for c in clock if c.get("offset_ms")]  # (a one-sided bound may force one)
    unmeasured = [
        str(c["source"])
        for c in clock
        if c.get("uncertainty_ms") is None and not c.get("offset_ms")
    ]
    said = [", ".join(_offset(c) for c in moved)] if moved else []
    if unmeasured:
        more = f" and {len(unmeasured) - 5} more" if len(unmeasured) > 5 else ""
        said.append(
            f"not measured (no pair bounds them on both sides): {', '.join(unmeasured[:5])}{more}"
        )
    if said:
        console.print(_text("clock offsets: " + "; ".join(said)))


def _offset(c: Mapping[str, Any]) -> str:
    unc = c.get("uncertainty_ms")
    said = f"{c['source']} {c['offset_ms']:+.1f} ms"
    return f"{said} (±{unc:.1f})" if unc is not None else f"{said} (bounded on one side only)"


_MD_ESCAPES = str.maketrans(
    {
        "\\": "\\\\",  # else a backslash before an escaped pipe would unescape it
        "|": "\\|",  # a pipe would end the cell
        "`": "\\`",
        "&": "&amp;",  # Markdown passes HTML through: text from the logs must not be HTML
        "<": "&lt;",
        ">": "&gt;",
        "\r": " ",  # a line break would end the row
        "\n": " ",
    }
)
_PLAIN_ID = re.compile(r"[\w.:-]+")


def _md(value: object) -> str:
    """A table cell's text: it stays in its cell and row and is never read as HTML."""
    return printable(str(value).replace("\r\n", " ").translate(_MD_ESCAPES))


def _md_id(value: object) -> str:
    """A trace id as code, unless it is not a plain id (then escaped text)."""
    text = str(value)
    return f"`{text}`" if _PLAIN_ID.fullmatch(text) else _md(text)


def render_markdown(report: Mapping[str, Any]) -> str:
    summary = report.get("summary", {})
    out = [
        "# tracekit report",
        "",
        f"**{summary.get('messages', 0)} messages**, "
        f"{summary.get('delivered', 0)}/{summary.get('deliveries_expected', 0)} deliveries "
        f"({_delivered_pct(summary)})",
        *(["", note] if (note := recipients_note(summary)) else []),
        *(["", _md(note)] if (note := restarts_note(summary)) else []),
        *(["", _md(note)] if (note := copies_note(summary)) else []),
        "",
        "| kind | count |",
        "|---|---:|",
    ]
    out += [f"| {k} | {summary.get(k, 0)} |" for k in _KIND_STYLE if k in summary]
    inputs = report.get("inputs")
    if inputs:
        out += ["", "## Inputs", ""]
        out += [f"- {_md(line)}" for line, _style in input_notes(inputs, head=True)]
    findings = report.get("findings", [])
    if findings:
        out += [
            "",
            "## Findings",
            "",
            "| kind | trace | where | detail | evidence |",
            "|---|---|---|---|---|",
        ]
        for f in findings:
            cells = [
                _md(f.get("kind")),
                _md_id(f.get("trace_id") or "-"),
                _md(_where(f)),
                _md(f.get("detail", "")),
                _md(", ".join(_evidence(f))),
            ]
            out.append("| " + " | ".join(cells) + " |")
    hops = report.get("latency", {}).get("hops", [])
    if hops:
        out += [
            "",
            "## Latency (ms)",
            "",
            "| from | to | count | p50 | p95 | p99 | max |",
            "|---|---|---:|---:|---:|---:|---:|",
        ]
        for row in hops:
            out.append(
                f"| {_md(row['from'])} | {_md(row['to'])} | {row['count']} | "
                + " | ".join(_ms(row.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
                + " |"
            )
        e2e = report.get("latency", {}).get("end_to_end")
        if e2e and e2e.get("count"):
            out.append(
                f"| **end to end** | | {e2e['count']} | "
                + " | ".join(_ms(e2e.get(k)) for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms"))
                + " |"
            )
    return "\n".join(out) + "\n"


def _logged_at(row: Mapping[str, Any]) -> str:
    """Where a hop was (first) logged, ``file:line``; empty if unknown."""
    file, line = row.get("file"), row.get("line")
    if not file:
        return ""
    return f"{file}:{line}" if line is not None else str(file)


def render_timeline(trace_id: str, rows: Sequence[Mapping[str, Any]], console: Console) -> None:
    """One message's path: a row per (recipient, hop), the hops not reached marked (missing, in
    flight, or not reached after those); how many times each hop was logged (a duplicate's
    count highlighted) and where it was logged first."""
    table = Table(title=_text(f"trace {trace_id}"), title_justify="left")
    for col in ("recipient", "hop", "count", "source", "time (corrected, UTC)", "+ms", "logged at"):
        table.add_column(col, justify="right" if col in ("+ms", "count") else "left")
    for row in rows:
        reached = row.get("reached", True)
        status = row.get("status") or ("reached" if reached else "dropped")
        count = row.get("count")
        mark, style = _MARKED.get(status, ("", None))
        table.add_row(
            _text(row.get("recipient") or "·"),
            _text(mark.format(hop=row.get("hop")) if mark else row.get("hop")),
            Text(
                str(count) if reached and count is not None else "",
                # a count of 2 is no duplicate where each of a recipient's devices got one
                style="bold yellow" if status == "duplicate" else "",
            ),
            _text(row.get("source") or ""),
            _text(row.get("timestamp") or ""),
            _ms(row.get("latency_ms")) if reached else "",
            # (a hop tried and failed: where its failing line is)
            _text(_logged_at(row) if reached or status == "failed" else ""),
            style=style,
        )
    console.print(table)


#: How a marked hop reads, by its timeline status (reached rows read as is).
_MARKED: Final = {
    # (in words too: a colour alone is lost in a pipe or a CI log, review 21b)
    "duplicate": ("{hop} (duplicate)", None),
    "dropped": ("✗ {hop} (missing)", "bold red"),
    "failed": ("✗ {hop} (tried and failed)", "bold red"),
    "removed": ("✗ {hop} (took it off)", "bold red"),
    "in_flight": ("… {hop} (in flight)", "yellow"),
    "undecided": ("? {hop} (undecided: lines naming no recipient may hold it)", "yellow"),
    "in_log_gap": ("? {hop} (undecided: its log lost events here, see log_gap)", "yellow"),
    "not_reached": ("· {hop} (not reached)", "dim"),
}
