"""The HTML report: one self-contained page, its sections, charts, findings and timelines."""

from __future__ import annotations

import copy
import re
from html.parser import HTMLParser
from typing import Any

import pytest

from tracekit.cli._html import render_html

HOPS = [
    ("CTRL.send", "message"),
    ("REST.request", "message"),
    ("REST.persist", "message"),
    ("REST.response", "message"),
    ("WS-BROADCAST.start", "message"),
    ("WS-BROADCAST.deliver", "recipient"),
    ("WS-RECV.receive", "recipient"),
    ("REPO.add", "recipient"),
    ("CTRL.add", "recipient"),
]
SECTIONS = ("summary", "funnel", "latency", "findings", "timelines", "clock", "inputs")


def _lat(n: int, p50: float, p95: float, p99: float, mx: float) -> dict[str, Any]:
    return {"count": n, "p50_ms": p50, "p95_ms": p95, "p99_ms": p99, "max_ms": mx}


def make_report() -> dict[str, Any]:
    """A two-user chat run: 40 messages, 80 deliveries, the seed bug dropped one for u2."""
    reached = {"CTRL.add": 79}
    return {
        "schema": "tracekit.report/1",
        "inputs": {
            "files": 3,
            "lines": 1210,
            "events": 1195,
            "malformed": 2,
            "ignored": 5,
            "unlinked": 0,
            "examples": [
                "logs/client-u1.jsonl:17: not JSON: unexpected end of input",
                "logs/client-u2.jsonl:301: missing key 'ts'",
            ],
            "formats": {"jsonl": 3},
        },
        "summary": {
            "messages": 40,
            "deliveries_expected": 80,
            "delivered": 79,
            "drop": 1,
            "in_flight": 0,
            "duplicate": 1,
            "unexpected": 0,
            "reorder": 0,
            "latency_outlier": 0,
            "slo_breach": 0,
            "race": 1,
            "log_gap": 0,
            "recipients_from": {"broadcast": 37, "membership": 3},
        },
        "findings": [
            {
                "kind": "drop",
                "trace_id": "t1",
                "recipient": "u2",
                "stage": "CTRL.add",
                "last_seen": "REPO.add",
                "conv_id": "c1",
                "source": "client-u2",
                "detail": "REPO.add reached but CTRL.add never happened (logs go on 41.2 s)",
                "evidence": [{"file": "logs/client-u2.jsonl", "line": 88}],
            },
            {
                "kind": "race",
                "trace_id": "t7",
                "recipient": "u1",
                "stage": "WS-RECV.receive",
                "last_seen": None,
                "conv_id": "c1",
                "source": "client-u1",
                "detail": "WS delivery arrived while a history fetch for c1 was in flight",
                "evidence": [
                    {"file": "logs/client-u1.jsonl", "line": 140},
                    {"file": "logs/client-u1.jsonl", "line": 142},
                ],
            },
            {
                "kind": "duplicate",
                "trace_id": "t9",
                "recipient": "u1",
                "stage": "CTRL.add",
                "last_seen": None,
                "conv_id": "c1",
                "source": "client-u1",
                "detail": "CTRL.add happened 2 times for u1",
                "evidence": [
                    {"file": "logs/client-u1.jsonl", "line": 201},
                    {"file": "logs/client-u1.jsonl", "line": 207},
                ],
            },
        ],
        "latency": {
            "hops": [
                {"from": "CTRL.send", "to": "REST.request", **_lat(40, 0.4, 1.1, 2.0, 2.3)},
                {"from": "REST.request", "to": "REST.persist", **_lat(40, 6.2, 14.0, 31.0, 44.0)},
                {"from": "REST.persist", "to": "REST.response", **_lat(40, 3.1, 7.9, 12.0, 19.5)},
                {
                    "from": "REST.persist",
                    "to": "WS-BROADCAST.start",
                    **_lat(40, 0.8, 2.0, 3.4, 4.0),
                },
                {
                    "from": "WS-BROADCAST.start",
                    "to": "WS-BROADCAST.deliver",
                    **_lat(80, 0.3, 0.9, 1.5, 2.2),
                },
                {
                    "from": "WS-BROADCAST.deliver",
                    "to": "WS-RECV.receive",
                    **_lat(80, 4.8, 11.0, 25.0, 410.0),
                },
                {"from": "WS-RECV.receive", "to": "REPO.add", **_lat(80, 0.2, 0.6, 0.9, 1.1)},
                {"from": "REPO.add", "to": "CTRL.add", **_lat(79, 1.5, 3.9, 8.0, 16.0)},
            ],
            "end_to_end": _lat(79, 21.0, 48.0, 95.0, 455.0),
        },
        "clock": [
            {"source": "chat-server-1", "offset_ms": 0.0, "uncertainty_ms": 0.0, "reference": True},
            {"source": "client-u1", "offset_ms": 182.4, "uncertainty_ms": 3.1},
            {"source": "client-u2", "offset_ms": -47.9, "uncertainty_ms": 6.5},
        ],
        "funnel": [
            {
                "hop": hop,
                "scope": scope,
                "reached": reached.get(hop, 40 if scope == "message" else 80),
                "expected": 40 if scope == "message" else 80,
            }
            for hop, scope in HOPS
        ],
    }


def _row(
    recipient: str | None, hop: str, source: str | None, ms: float | None, lat: float | None
) -> dict[str, Any]:
    ts = None if ms is None else f"2026-03-02T10:00:00.{int(ms * 1000):06d}Z"
    return {
        "recipient": recipient,
        "hop": hop,
        "source": source,
        "timestamp": ts,
        "latency_ms": lat,
        "reached": ms is not None,
    }


def make_timelines() -> dict[str, list[dict[str, Any]]]:
    msg = [
        _row(None, "CTRL.send", "client-u1", 0.0, None),
        _row(None, "REST.request", "client-u1", 0.5, 0.5),
        _row(None, "REST.persist", "chat-server-1", 7.0, 6.5),
        _row(None, "REST.response", "client-u1", 10.0, 3.0),
        _row(None, "WS-BROADCAST.start", "chat-server-1", 7.8, 0.8),
    ]
    t1 = [
        *msg,
        _row("u1", "WS-BROADCAST.deliver", "chat-server-1", 8.1, 0.3),
        _row("u1", "WS-RECV.receive", "client-u1", 13.0, 4.9),
        _row("u1", "REPO.add", "client-u1", 13.2, 0.2),
        _row("u1", "CTRL.add", "client-u1", 14.9, 1.7),
        _row("u2", "WS-BROADCAST.deliver", "chat-server-1", 8.2, 0.4),
        _row("u2", "WS-RECV.receive", "client-u2", 12.5, 4.3),
        _row("u2", "REPO.add", "client-u2", 12.8, 0.3),
        _row("u2", "CTRL.add", None, None, None),
    ]
    t9 = [
        *msg,
        _row("u1", "WS-BROADCAST.deliver", "chat-server-1", 8.0, 0.2),
        _row("u1", "WS-RECV.receive", "client-u1", 12.0, 4.0),
        _row("u1", "REPO.add", "client-u1", 12.1, 0.1),
        _row("u1", "CTRL.add", "client-u1", 13.0, 0.9),
    ]
    return {"t1": t1, "t9": t9}


class Page(HTMLParser):
    """Elements by id, every start tag with its attributes, and the text under each id."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.tags: list[tuple[str, dict[str, str]]] = []
        self.ids: dict[str, str] = {}
        self.text: dict[str, list[str]] = {}
        self._stack: list[tuple[str, str | None]] = []
        self.feed(text)
        self.close()

    _VOID = frozenset({"meta", "br", "hr", "img", "input", "link", "wbr"})

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            assert a["id"] not in self.ids, f"duplicate id {a['id']}"
            self.ids[a["id"]] = tag
        if tag not in self._VOID:
            self._stack.append((tag, a.get("id")))

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.append((tag, a))
        if "id" in a:
            self.ids[a["id"]] = tag

    def handle_endtag(self, tag: str) -> None:
        while self._stack:
            open_tag, _ = self._stack.pop()
            if open_tag == tag:
                break

    def handle_data(self, data: str) -> None:
        for _, sid in self._stack:
            if sid:
                self.text.setdefault(sid, []).append(data)

    def within(self, sid: str) -> str:
        return " ".join(self.text.get(sid, []))

    def find(self, tag: str | None = None, **attrs: str) -> list[dict[str, str]]:
        out = []
        for t, a in self.tags:
            if tag is not None and t != tag:
                continue
            if all(
                (v in a.get(k.rstrip("_"), "").split()) if k == "class_" else a.get(k) == v
                for k, v in attrs.items()
            ):
                out.append(a)
        return out


class _Rows(HTMLParser):
    """The findings table rows: (data-kind, {cell class: text})."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.rows: list[tuple[str, dict[str, str]]] = []
        self._cell: str | None = None
        self._in_row = False
        self.feed(text)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "tr":
            self._in_row = "finding" in (a.get("class") or "").split()
            if self._in_row:
                self.rows.append((a.get("data-kind") or "", {}))
        elif tag == "td" and self._in_row and self._cell is None:
            self._cell = (a.get("class") or "").split()[0]
            self.rows[-1][1][self._cell] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "td":
            self._cell = None
        if tag == "tr":
            self._cell = None
            self._in_row = False

    def handle_data(self, data: str) -> None:
        if self._cell is not None and self._in_row:
            self.rows[-1][1][self._cell] += data


@pytest.fixture
def page_html() -> str:
    return render_html(make_report(), make_timelines())


def test_one_document_with_every_section(page_html: str) -> None:
    assert page_html.startswith("<!DOCTYPE html>")
    page = Page(page_html)
    for sid in SECTIONS:
        assert page.ids.get(sid) == "section", sid
    assert page.find("title")
    assert "tracekit report" in page_html
    # sections come in reading order
    positions = [page_html.index(f'id="{sid}"') for sid in SECTIONS]
    assert positions == sorted(positions)


def test_self_contained_no_network(page_html: str) -> None:
    assert "http://" not in page_html
    assert "https://" not in page_html
    page = Page(page_html)
    assert not page.find("script")
    assert not page.find("link")
    for _, attrs in page.tags:
        for key in ("src", "href", "xlink:href", "action", "srcset"):
            value = attrs.get(key)
            if value is not None:
                assert value.startswith("#"), (key, value)
    assert "@import" not in page_html
    assert not re.search(r"url\(\s*['\"]?(?!#|data:)", page_html)
    # and the page forbids itself any fetch
    csp = page.find("meta", **{"http-equiv": "Content-Security-Policy"})
    assert csp and "default-src 'none'" in csp[0]["content"]


def test_funnel_has_one_bar_per_hop(page_html: str) -> None:
    page = Page(page_html)
    bars = page.find("rect", class_="funnel-bar")
    assert [b["data-hop"] for b in bars] == [h for h, _ in HOPS]
    widths = {b["data-hop"]: float(b["width"]) for b in bars}
    assert widths["CTRL.add"] < widths["REPO.add"]
    assert len({w for h, w in widths.items() if h != "CTRL.add"}) == 1
    ctrl_add = next(b for b in bars if b["data-hop"] == "CTRL.add")
    assert "ok" not in ctrl_add["class"].split()
    assert "1 missing" in page.within("funnel")
    assert "98.8%" in page.within("funnel")


def test_summary_counts_and_headline(page_html: str) -> None:
    page = Page(page_html)
    text = page.within("summary")
    assert "1 delivery dropped" in text
    assert "98.8%" in text
    assert "79 of 80 deliveries" in text
    # the report's summary.recipients_from, said (it was read from a key no report has)
    assert (
        "Expected recipients of 3 of 40 messages taken from conversation membership: no "
        "broadcast in the logs listed them." in text
    )
    # every kind with a finding links to its group
    for kind in ("drop", "race", "duplicate"):
        assert page.find("a", href=f"#findings-{kind}")
    assert not page.find("a", href="#findings-reorder")


def test_latency_chart_per_hop_and_end_to_end(page_html: str) -> None:
    page = Page(page_html)
    rows = page.find("g", class_="lat-row")
    assert len(rows) == 9  # 8 hops + end to end
    assert rows[0]["data-hop"] == "CTRL.send → REST.request"
    assert rows[-1]["data-hop"] == "end to end"
    assert "e2e" in rows[-1]["class"].split()
    text = page.within("latency")
    assert "logarithmic" in text  # 0.2 ms .. 455 ms spans orders of magnitude
    assert "410 ms" in text and "455 ms" in text
    assert "1 ms" in text and "100 ms" in text  # decade ticks


def test_findings_exactly_those_with_their_location(page_html: str) -> None:
    page = Page(page_html)
    rows = _Rows(page_html).rows
    assert [(k, c["trace"], c["recipient"], c["stage"]) for k, c in rows] == [
        ("drop", "t1", "u2", "CTRL.add"),
        ("duplicate", "t9", "u1", "CTRL.add"),
        ("race", "t7", "u1", "WS-RECV.receive"),
    ]
    drop = rows[0][1]
    assert drop["last-seen"] == "REPO.add"
    assert "never happened" in drop["detail"]
    # file:line, shown under the directory all evidence shares, the full path on hover
    assert drop["evidence"] == "client-u2.jsonl:88"
    assert "client-u1.jsonl:207" in rows[1][1]["evidence"]
    assert page.find("code", title="logs/client-u2.jsonl:88")
    assert "Evidence files are under logs/" in " ".join(page.within("findings").split())
    assert rows[2][1]["last-seen"] == "—"
    # grouped by kind, each group with its count badge
    for kind in ("drop", "duplicate", "race"):
        assert page.ids[f"findings-{kind}"] == "details"
        assert "1" in page.within(f"findings-{kind}").split()
    assert "findings-reorder" not in page.ids
    # traces with a timeline link to it; t7 has none
    assert page.find("a", href="#trace-t1")
    assert page.find("a", href="#trace-t9")
    assert not page.find("a", href="#trace-t7")


def test_timeline_marks_the_missing_hop(page_html: str) -> None:
    page = Page(page_html)
    assert page.ids["trace-t1"] == "article"
    missing = page.find("g", class_="first-missing")
    assert [(g["data-recipient"], g["data-hop"]) for g in missing] == [("u2", "CTRL.add")]
    # every other hop of t1 was reached: 5 message hops + 4 for u1 + 3 for u2, t9 has 9
    reached = page.find("g", class_="reached")
    assert len(reached) == 12 + 9
    assert "missing" in page.within("trace-t1")
    # the row table says so too
    assert len(page.find("tr", class_="missing")) == 1
    assert "✗ missing" in page.within("trace-t1")
    # t7 (race) has findings but no timeline rows: named, not drawn
    assert "trace-t7" not in page.ids
    assert "t7" in page.within("timelines")
    # the sources are in the legend
    assert "chat-server-1" in page.within("timelines")


def test_an_in_flight_hop_is_pending_not_missing() -> None:
    report = make_report()
    report["findings"][0].update(kind="in_flight", detail="the logs end 0.9 s later")
    page = Page(render_html(report, make_timelines()))
    [node] = page.find("g", class_="first-missing")
    assert "pending" in node["class"].split()
    assert (node["data-recipient"], node["data-hop"]) == ("u2", "CTRL.add")
    assert "pending" in page.within("trace-t1")


def test_clock_and_inputs(page_html: str) -> None:
    page = Page(page_html)
    clock = page.within("clock")
    assert "+182.4 ms" in clock and "-47.9 ms" in clock and "± 6.5 ms" in clock
    assert "reference" in clock
    inputs = page.within("inputs")
    for n in ("1,210", "1,195"):
        assert n in inputs
    assert "logs/client-u1.jsonl:17: not JSON" in inputs
    assert "Malformed" in inputs


def test_hostile_strings_are_escaped() -> None:
    report = make_report()
    evil = "<script>alert(1)</script>"
    report["findings"][0]["detail"] = f"detail {evil}"
    report["findings"][0]["evidence"] = [{"file": f"logs/{evil}.jsonl", "line": 1}]
    report["findings"][1]["trace_id"] = f'"><img src=x onerror=alert(1)>{evil}'
    report["findings"][2]["recipient"] = evil
    report["inputs"]["examples"] = [f"{evil}:3: bad"]
    report["clock"][1]["source"] = evil
    report["funnel"][0]["hop"] = evil
    report["summary"]["recipients_from"] = {"broadcast": evil, "membership": [evil]}
    timelines = make_timelines()
    timelines[report["findings"][1]["trace_id"]] = [
        {**r, "source": evil} for r in timelines.pop("t9")
    ]
    out = render_html(report, timelines, title=f"run {evil}")
    assert "<script" not in out
    assert "<img" not in out
    assert "&lt;script&gt;" in out
    page = Page(out)
    assert not page.find("script")
    assert not page.find("img")
    # the escaped text reads back as what the logs said
    rows = _Rows(out).rows
    assert rows[0][1]["detail"] == f"detail {evil}"
    assert f"{evil}.jsonl:1" in rows[0][1]["evidence"]
    # ids made from user strings stay safe and unique
    for sid in page.ids:
        assert re.fullmatch(r"[A-Za-z0-9_-]+", sid), sid


@pytest.mark.parametrize(
    "report",
    [
        {},
        {
            "schema": "tracekit.report/1",
            "inputs": {"files": 0, "lines": 0, "events": 0, "malformed": 0},
            "summary": {
                "messages": 0,
                "deliveries_expected": 0,
                "delivered": 0,
                "drop": 0,
                "in_flight": 0,
                "duplicate": 0,
                "unexpected": 0,
                "reorder": 0,
                "latency_outlier": 0,
                "slo_breach": 0,
                "race": 0,
                "log_gap": 0,
            },
            "findings": [],
            "latency": {
                "hops": [
                    {
                        "from": "CTRL.send",
                        "to": "REST.request",
                        "count": 0,
                        "p50_ms": None,
                        "p95_ms": None,
                        "p99_ms": None,
                        "max_ms": None,
                    }
                ],
                "end_to_end": {
                    "count": 0,
                    "p50_ms": None,
                    "p95_ms": None,
                    "p99_ms": None,
                    "max_ms": None,
                },
            },
            "clock": [],
            "funnel": [{"hop": h, "scope": s, "reached": 0, "expected": 0} for h, s in HOPS],
        },
    ],
    ids=["bare", "zero-counts"],
)
def test_empty_report_renders(report: dict[str, Any]) -> None:
    out = render_html(report, {})
    page = Page(out)
    for sid in SECTIONS:
        assert page.ids.get(sid) == "section", sid
    assert "No findings" in page.within("findings")
    assert not _Rows(out).rows
    assert "http://" not in out and "https://" not in out
    if report:
        assert len(page.find("rect", class_="funnel-bar")) == len(HOPS)
        assert "no samples" in page.within("latency")


def test_all_clean_headline_and_no_timelines() -> None:
    report = make_report()
    report["findings"] = []
    for k in ("drop", "duplicate", "race"):
        report["summary"][k] = 0
    report["summary"]["delivered"] = 80
    report["funnel"][-1]["reached"] = 80
    page = Page(render_html(report))
    assert "All 80 deliveries arrived, no findings" in page.within("summary")
    assert not page.find("article")
    assert all("ok" in b["class"].split() for b in page.find("rect", class_="funnel-bar"))


def test_linear_scale_when_latencies_are_alike() -> None:
    report = make_report()
    for h in report["latency"]["hops"]:
        h.update(p50_ms=10.0, p95_ms=20.0, p99_ms=30.0, max_ms=40.0)
    report["latency"]["end_to_end"].update(p50_ms=60.0, p95_ms=80.0, p99_ms=90.0, max_ms=120.0)
    page = Page(render_html(report))
    assert "linear" in page.within("latency")


def test_long_trace_ids_and_paths_stay_compact() -> None:
    report = make_report()
    long_id = "9a8b7c6d5e4f4a3b8c2d1e0f9a8b7c6d"
    report["findings"][1]["trace_id"] = long_id  # the race
    report["findings"][0]["evidence"] = [{"file": "/srv/a/client-u2.jsonl", "line": 4}]
    report["findings"][1]["evidence"] = [{"file": "/srv/b/client-u1.jsonl", "line": 5}]
    report["findings"][2]["evidence"] = [{"file": "/srv/b/client-u1.jsonl", "line": 6}]
    out = render_html(report, {long_id: make_timelines()["t1"]})
    page = Page(out)
    rows = {c["stage"] + k: c for k, c in _Rows(out).rows}
    race = rows["WS-RECV.receiverace"]
    assert race["trace"] == long_id[:17] + "…"
    assert page.find("a", href=f"#trace-{long_id}")
    assert long_id in page.within(f"trace-{long_id}")  # the timeline shows it whole
    assert race["evidence"] == "b/client-u1.jsonl:5"
    assert "Evidence files are under /srv/" in " ".join(page.within("findings").split())


def test_many_findings_are_capped_but_counted() -> None:
    from tracekit.cli import _html

    report = make_report()
    drop = report["findings"][0]
    report["findings"] = [
        {**copy.deepcopy(drop), "trace_id": f"t{i}"} for i in range(_html.MAX_FINDINGS_PER_KIND + 7)
    ]
    out = render_html(report, {})
    page = Page(out)
    assert len(_Rows(out).rows) == _html.MAX_FINDINGS_PER_KIND
    assert "and 7 more" in page.within("findings-drop")
    assert f"{_html.MAX_FINDINGS_PER_KIND + 7:,}" in page.within("findings-drop")


def test_control_characters_from_the_logs_are_shown_not_written() -> None:
    # (review 21b: NUL, ESC and BEL went into the page raw: `file` called it data, and the
    # reader could not see a name held them; every other output shows them as \xNN)
    report = make_report()
    report["findings"][2]["recipient"] = "u2\x1b[31m\x07\x00"
    report["clock"][1]["source"] = "srv\x00"
    out = render_html(report, make_timelines())
    assert not re.search("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]", out)
    assert "u2\\x1b[31m\\x07\\x00" in out and "srv\\x00" in out
