"""The self-contained HTML report (``tracekit report PATH... -o report.html``).

One file that works offline: the CSS is inline, every chart is SVG drawn here, there is no script,
and a Content-Security-Policy forbids the page to load anything. Everything that comes from the
logs (trace ids, recipients, details, file names) is escaped with :func:`html.escape`.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any, Final

from tracekit.cli._copies import copies_note
from tracekit.cli._recipients import recipients_note
from tracekit.cli._restarts import restarts_note
from tracekit.cli._safe import printable

__all__ = ["render_html"]

#: How many findings of one kind are listed, and how many timelines drawn; the counts stay exact.
MAX_FINDINGS_PER_KIND: Final = 500
MAX_TIMELINES: Final = 100
MAX_EVIDENCE: Final = 4

# kind -> (colour class, title, what it means); report order, problems first.
_KINDS: Final[dict[str, tuple[str, str, str]]] = {
    "drop": ("bad", "Drops", "a hop was reached and the next expected hop never happened"),
    "duplicate": (
        "warn",
        "Duplicates",
        "the same hop happened more than once for one message and recipient",
    ),
    "unexpected": (
        "warn",
        "Unexpected events",
        "events for a message whose send was never seen, or for a recipient the broadcast "
        "did not name",
    ),
    "reorder": (
        "warn",
        "Reorders",
        "a recipient stored a conversation's messages in another order than the server "
        "persisted them",
    ),
    "race": (
        "race",
        "Races",
        "a WebSocket delivery arrived while a history fetch for that conversation was in flight",
    ),
    "slo_breach": ("bad", "SLO breaches", "a latency above its configured threshold"),
    "latency_outlier": (
        "info",
        "Latency outliers",
        "a hop's latency far outside its own distribution",
    ),
    "log_gap": (
        "muted",
        "Log gaps",
        "a source's sequence numbers jump, or begin above 1: events are missing from its log "
        "(lost by the logging, or before it began), findings there are indeterminate",
    ),
    "clock_skew": ("info", "Clock skew", "a source's clock is offset from the reference clock"),
    "in_flight": (
        "muted",
        "In flight",
        "the next hop has not happened, but the logs end inside the grace window: undecided",
    ),
}
#: Kinds that make the headline say something is wrong.
_PROBLEMS: Final = ("drop", "duplicate", "unexpected", "reorder", "race", "slo_breach")
_SOURCE_COLOURS: Final = 8

_CSS: Final = """
:root{--bg:#f6f7f9;--panel:#fff;--fg:#1f2328;--muted:#656d76;--faint:#eaeef2;--border:#d8dee4;
--ok:#1a7f37;--ok-soft:#dafbe1;--warn:#9a6700;--warn-soft:#fff8c5;--bad:#cf222e;--bad-soft:#ffebe9;
--info:#0969da;--info-soft:#ddf4ff;--race:#8250df;--race-soft:#fbefff;--track:#eef1f4;
--lat-base:#b6d4fb;--lat-mid:#0969da;--lat-tail:#e3a008;
--s0:#0969da;--s1:#8250df;--s2:#1a7f37;--s3:#bc4c00;--s4:#bf3989;--s5:#1b7c83;--s6:#6e7781;--s7:#953800;
color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#0d1117;--panel:#161b22;--fg:#e6edf3;--muted:#8d96a0;
--faint:#21262d;--border:#30363d;--ok:#3fb950;--ok-soft:#12261e;--warn:#d29922;--warn-soft:#272115;
--bad:#f85149;--bad-soft:#2d1214;--info:#58a6ff;--info-soft:#121d2f;--race:#bc8cff;--race-soft:#221a33;
--track:#21262d;--lat-base:#1f3b5f;--lat-mid:#58a6ff;--lat-tail:#d29922;
--s0:#58a6ff;--s1:#bc8cff;--s2:#3fb950;--s3:#f0883e;--s4:#ff7b72;--s5:#39c5cf;--s6:#8d96a0;--s7:#e3b341}}
*{box-sizing:border-box}
html{scroll-behavior:smooth}
body{margin:0;background:var(--bg);color:var(--fg);
font:14px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
code,.mono,td.trace,td.stage,td.last-seen,td.evidence{
font-family:ui-monospace,SFMono-Regular,"SF Mono",Menlo,Consolas,"Liberation Mono",monospace;font-size:12.5px}
header.top{padding:28px 32px 8px;max-width:1240px;margin:0 auto}
header.top h1{margin:0;font-size:26px;font-weight:650;letter-spacing:-.01em}
header.top .meta{color:var(--muted);margin-top:2px}
nav{position:sticky;top:0;z-index:5;background:color-mix(in srgb,var(--bg) 88%,transparent);
backdrop-filter:blur(6px);border-bottom:1px solid var(--border)}
nav .inner{max-width:1240px;margin:0 auto;padding:8px 32px;display:flex;gap:6px;flex-wrap:wrap}
nav a{color:var(--fg);text-decoration:none;padding:3px 10px;border-radius:999px;font-size:13px}
nav a:hover{background:var(--faint)}
main{max-width:1240px;margin:0 auto;padding:16px 32px 48px}
section{background:var(--panel);border:1px solid var(--border);border-radius:10px;
padding:18px 22px 20px;margin:16px 0;scroll-margin-top:56px}
section>h2{margin:0 0 2px;font-size:18px;font-weight:650}
p.lead,.note{color:var(--muted);margin:0 0 12px}
.verdict{display:flex;align-items:center;gap:12px;font-size:20px;font-weight:600;margin:4px 0 16px}
.verdict .dot{width:14px;height:14px;border-radius:50%;flex:none}
.verdict.ok .dot{background:var(--ok)}.verdict.warn .dot{background:var(--warn)}
.verdict.bad .dot{background:var(--bad)}
.tiles{display:grid;grid-template-columns:repeat(auto-fit,minmax(170px,1fr));gap:12px}
.tile{border:1px solid var(--border);border-radius:8px;padding:10px 14px;background:var(--panel)}
.tile .label{color:var(--muted);font-size:12px;text-transform:uppercase;letter-spacing:.04em}
.tile .value{font-size:24px;font-weight:650;font-variant-numeric:tabular-nums}
.tile .sub{color:var(--muted);font-size:12.5px}
.tile.ok .value{color:var(--ok)}.tile.warn .value{color:var(--warn)}.tile.bad .value{color:var(--bad)}
.meter{height:6px;border-radius:3px;background:var(--track);overflow:hidden;margin-top:6px}
.meter>span{display:block;height:100%;background:var(--ok)}
.meter.warn>span{background:var(--warn)}.meter.bad>span{background:var(--bad)}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:14px 0 0}
.chip{display:inline-flex;align-items:center;gap:6px;border:1px solid var(--border);border-radius:999px;
padding:2px 4px 2px 10px;font-size:12.5px;color:var(--fg);text-decoration:none;background:var(--panel)}
.chip.zero{color:var(--muted);opacity:.75}
.badge{display:inline-block;min-width:22px;padding:0 7px;border-radius:999px;text-align:center;
font-size:12px;font-weight:650;font-variant-numeric:tabular-nums;background:var(--faint);color:var(--muted)}
.k-bad .badge,.badge.k-bad{background:var(--bad);color:#fff}
.k-warn .badge,.badge.k-warn{background:var(--warn);color:#fff}
.k-race .badge,.badge.k-race{background:var(--race);color:#fff}
.k-info .badge,.badge.k-info{background:var(--info);color:#fff}
.k-muted .badge,.badge.k-muted{background:var(--muted);color:var(--panel)}
.chip.zero .badge{background:var(--faint);color:var(--muted)}
.scroll{overflow-x:auto}
svg.chart{display:block;width:100%;height:auto}
svg text{fill:var(--fg);font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;font-size:12px}
svg .mono{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
svg .muted{fill:var(--muted)}svg .bad{fill:var(--bad)}svg .ok{fill:var(--ok)}svg .warn{fill:var(--warn)}
svg .small{font-size:11px}svg .bold{font-weight:650}
svg .track{fill:var(--track)}
svg .funnel-bar{fill:var(--lat-mid)}svg .funnel-bar.ok{fill:var(--ok)}
svg .funnel-gap.warn{fill:var(--warn)}svg .funnel-gap.bad{fill:var(--bad)}
svg .grid{stroke:var(--border);stroke-width:1}
svg .grid.minor{stroke:var(--faint)}
svg .sep{stroke:var(--border);stroke-dasharray:4 4}
svg .lat-base{fill:var(--lat-base)}svg .lat-mid{fill:var(--lat-mid)}svg .lat-tail{fill:var(--lat-tail)}
svg .lat-p50{stroke:var(--fg);stroke-width:2}
svg .lat-whisker{stroke:var(--muted);stroke-width:1.5}
svg .lane{stroke:var(--border);stroke-width:3;stroke-linecap:round}
svg .edge{stroke:var(--muted);stroke-width:2}
svg .edge.missing{stroke:var(--bad);stroke-dasharray:5 4}
svg .edge.missing.pending{stroke:var(--warn)}
svg .edge.after{stroke:var(--border);stroke-dasharray:3 4}
svg .node.reached circle{stroke:var(--panel);stroke-width:2}
svg .node.missing circle{fill:var(--panel);stroke:var(--border);stroke-width:2;stroke-dasharray:3 3}
svg .node.first-missing circle{fill:var(--bad-soft);stroke:var(--bad);stroke-width:2.5;stroke-dasharray:none}
svg .node.first-missing path{stroke:var(--bad);stroke-width:2.5;stroke-linecap:round}
svg .node.pending circle{fill:var(--warn-soft);stroke:var(--warn)}svg .node.pending path{stroke:var(--warn)}
svg .flag{fill:none;stroke-width:2.5}
svg .flag.k-warn{stroke:var(--warn)}svg .flag.k-bad{stroke:var(--bad)}svg .flag.k-race{stroke:var(--race)}
svg .flag.k-info{stroke:var(--info)}svg .flag.k-muted{stroke:var(--muted)}
svg .t-warn{fill:var(--warn)}svg .t-bad{fill:var(--bad)}svg .t-race{fill:var(--race)}
svg .t-info{fill:var(--info)}svg .t-muted{fill:var(--muted)}
svg .zero{stroke:var(--fg);stroke-width:1}
svg .off{fill:var(--info)}svg .off.ref{fill:var(--muted)}
svg .unc{stroke:var(--fg);stroke-width:1.5}
svg .acc-events{fill:var(--ok)}svg .acc-ignored{fill:var(--muted)}svg .acc-malformed{fill:var(--bad)}
svg .acc-blank{fill:var(--track)}
.s0{fill:var(--s0);background:var(--s0)}.s1{fill:var(--s1);background:var(--s1)}
.s2{fill:var(--s2);background:var(--s2)}.s3{fill:var(--s3);background:var(--s3)}
.s4{fill:var(--s4);background:var(--s4)}.s5{fill:var(--s5);background:var(--s5)}
.s6{fill:var(--s6);background:var(--s6)}.s7{fill:var(--s7);background:var(--s7)}
.legend{display:flex;flex-wrap:wrap;gap:4px 16px;color:var(--muted);font-size:12.5px;margin:8px 0 0}
.legend i{display:inline-block;width:12px;height:12px;border-radius:3px;vertical-align:-2px;margin-right:5px}
.legend i.round{border-radius:50%}
.legend i.lat-base{background:var(--lat-base)}.legend i.lat-mid{background:var(--lat-mid)}
.legend i.lat-tail{background:var(--lat-tail)}.legend i.whisker{height:2px;vertical-align:3px;background:var(--muted)}
.legend i.p50{width:2px;background:var(--fg)}
.legend i.miss{background:var(--bad-soft);border:2px solid var(--bad);border-radius:50%}
.legend i.miss.pending{background:var(--warn-soft);border-color:var(--warn)}
.legend i.acc-events{background:var(--ok)}.legend i.acc-ignored{background:var(--muted)}
.legend i.acc-malformed{background:var(--bad)}.legend i.acc-blank{background:var(--track)}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{text-align:left;padding:6px 10px;border-bottom:1px solid var(--border);vertical-align:top}
th{white-space:nowrap;color:var(--muted);font-weight:600;font-size:12px;text-transform:uppercase;letter-spacing:.03em}
td.num,th.num{text-align:right;font-variant-numeric:tabular-nums}
tbody tr:hover{background:var(--faint)}
td.detail{max-width:460px;overflow-wrap:anywhere}
td.trace,td.recipient,td.stage,td.last-seen,td.conv-id,td.source{white-space:nowrap}
td.detail{min-width:260px}
td.evidence code{display:block;white-space:nowrap}
td.trace a{color:var(--info);text-decoration:none}td.trace a:hover{text-decoration:underline}
.dash{color:var(--muted)}
details.kind{border:1px solid var(--border);border-radius:8px;margin:12px 0;overflow:hidden}
details.kind>summary{cursor:pointer;padding:10px 14px;display:flex;gap:10px;align-items:baseline;
list-style:none;background:var(--faint)}
details.kind>summary::-webkit-details-marker{display:none}
details.kind>summary h3{margin:0;font-size:15px}
details.kind>summary .why{color:var(--muted);font-size:12.5px}
details.kind .more{padding:8px 14px;color:var(--muted)}
details.kind.k-bad{border-left:4px solid var(--bad)}details.kind.k-warn{border-left:4px solid var(--warn)}
details.kind.k-race{border-left:4px solid var(--race)}details.kind.k-info{border-left:4px solid var(--info)}
details.kind.k-muted{border-left:4px solid var(--muted)}
article.timeline{border-top:1px solid var(--border);padding:14px 0 6px}
article.timeline:first-of-type{border-top:none}
article.timeline h3{margin:0 0 6px;font-size:15px;font-weight:600}
article.timeline h3 code{font-size:14px}
.tags{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 8px}
.tag{font-size:12px;border-radius:6px;padding:1px 8px;border:1px solid var(--border)}
.tag.k-bad{background:var(--bad-soft);border-color:var(--bad)}
.tag.k-warn{background:var(--warn-soft);border-color:var(--warn)}
.tag.k-race{background:var(--race-soft);border-color:var(--race)}
.tag.k-info{background:var(--info-soft);border-color:var(--info)}
details.rows>summary{cursor:pointer;color:var(--muted);font-size:12.5px;margin:4px 0}
tr.missing td{color:var(--bad)}
tr.pending td{color:var(--warn)}
tr.after td{color:var(--muted)}
td.count.dup{color:var(--warn);font-weight:650}
tr.missing td.status{font-weight:650}
.pill{font-size:11px;border:1px solid var(--border);border-radius:999px;padding:0 7px;color:var(--muted)}
ul.examples{margin:6px 0 0;padding-left:18px}ul.examples li{margin:2px 0}
h4{margin:16px 0 4px;font-size:13px;color:var(--muted);text-transform:uppercase;letter-spacing:.04em}
footer{max-width:1240px;margin:0 auto;padding:0 32px 32px;color:var(--muted);font-size:12px}
"""


# -- small helpers -------------------------------------------------------------------------


def _e(value: object) -> str:
    """Escaped text (attribute-safe), its control characters shown as ``\\xNN`` as every
    other output shows them (review 21b: NUL and ESC went into the page raw); None is the
    empty string."""
    return "" if value is None else html.escape(printable(value), quote=True)


def _m(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _seq(value: object) -> list[Any]:
    return list(value) if isinstance(value, list | tuple) else []


def _num(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    f = float(value)
    return None if math.isnan(f) or math.isinf(f) else f


def _count(value: object) -> int:
    n = _num(value)
    return int(n) if n is not None else 0


def _int(value: object) -> str:
    n = _num(value)
    return "—" if n is None else f"{int(n):,}"


def _ms(value: object) -> str:
    """A latency for people: ``0.42 ms``, ``12 ms``, ``1.25 s``, ``2.1 min``."""
    v = _num(value)
    if v is None:
        return "—"
    a = abs(v)
    if a == 0:
        return "0 ms"
    if a < 1:
        return f"{v:.2f} ms"
    if a < 10:
        return f"{v:.1f} ms"
    if a < 1000:
        return f"{v:.0f} ms"
    if a < 60_000:
        return f"{v / 1000:.2f} s"
    return f"{v / 60_000:.1f} min"


def _tick(v: float) -> str:
    """An axis label: ``0``, ``1 ms``, ``250 ms``, ``1 s``, ``2.5 s``."""
    if v == 0:
        return "0"
    if v < 1:
        return f"{v:g} ms"
    if v < 1000:
        return f"{v:g} ms"
    return f"{v / 1000:g} s"


def _pct(part: float, whole: float) -> str:
    if whole <= 0:
        return "—"
    p = 100.0 * part / whole
    if p >= 100.0 or p == 0.0:
        return f"{p:.0f}%"
    return f"{min(p, 99.99):.2f}%" if p > 99 else f"{p:.1f}%"


def _plural(n: int, one: str, many: str | None = None) -> str:
    return f"{n:,} {one if n == 1 else (many or one + 's')}"


def _kind(kind: str) -> tuple[str, str, str]:
    return _KINDS.get(kind, ("muted", kind.replace("_", " ").capitalize(), ""))


def _status(part: float, whole: float) -> str:
    if whole <= 0:
        return "none"
    if part >= whole:
        return "ok"
    return "warn" if part / whole >= 0.99 else "bad"


def _section(sid: str, title: str, body: str, lead: str = "") -> str:
    lead_html = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section id="{sid}"><h2>{_e(title)}</h2>{lead_html}{body}</section>'


def _svg(width: float, height: float, body: Iterable[str], label: str) -> str:
    return (
        f'<svg class="chart" viewBox="0 0 {width:.0f} {height:.0f}" role="img" '
        f'aria-label="{_e(label)}" preserveAspectRatio="xMinYMin meet">{"".join(body)}</svg>'
    )


def _text(x: float, y: float, text: str, cls: str = "", anchor: str = "start") -> str:
    """``text`` is escaped here."""
    c = f' class="{cls}"' if cls else ""
    a = f' text-anchor="{anchor}"' if anchor != "start" else ""
    return f'<text x="{x:.1f}" y="{y:.1f}"{c}{a}>{_e(text)}</text>'


def _truncate(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _ids(keys: Iterable[str], prefix: str) -> dict[str, str]:
    """Stable, unique, attribute-safe element ids for arbitrary (user) strings."""
    out: dict[str, str] = {}
    used: set[str] = set()
    for key in keys:
        if key in out:
            continue
        base = prefix + (re.sub(r"[^A-Za-z0-9_-]", "_", key)[:60] or "_")
        sid, n = base, 1
        while sid in used:
            n += 1
            sid = f"{base}-{n}"
        used.add(sid)
        out[key] = sid
    return out


# -- scales --------------------------------------------------------------------------------


def _nice_step(span: float, target: int = 5) -> float:
    raw = span / target
    mag = 10.0 ** math.floor(math.log10(raw))
    for m in (1.0, 2.0, 2.5, 5.0, 10.0):
        if m * mag >= raw:
            return m * mag
    return 10 * mag  # pragma: no cover - unreachable


class _Scale:
    """Milliseconds to x; logarithmic when the values span more than ~1.5 orders of magnitude."""

    def __init__(self, values: Iterable[float], x0: float, x1: float) -> None:
        vals = [v for v in values if v > 0]
        self.x0, self.x1 = x0, x1
        self.log = bool(vals) and max(vals) / min(vals) >= 30
        if self.log:
            self.lo = 10.0 ** math.floor(math.log10(min(vals)))
            self.hi = 10.0 ** math.ceil(math.log10(max(vals)))
            if self.hi <= self.lo:
                self.hi = self.lo * 10
            self.step = 0.0
        else:
            top = max(vals, default=1.0)
            self.step = _nice_step(top)
            self.lo = 0.0
            self.hi = math.ceil(top / self.step - 1e-9) * self.step or self.step

    def __call__(self, v: float | None) -> float:
        if v is None:
            return self.x0
        if self.log:
            v = min(max(v, self.lo), self.hi)
            f = (math.log10(v) - math.log10(self.lo)) / (math.log10(self.hi) - math.log10(self.lo))
        else:
            f = min(max(v, 0.0), self.hi) / self.hi
        return self.x0 + f * (self.x1 - self.x0)

    def ticks(self) -> list[tuple[float, bool]]:
        """(value, major) pairs."""
        if self.log:
            out: list[tuple[float, bool]] = []
            p = self.lo
            while p <= self.hi * 1.0001:
                out.append((p, True))
                if p < self.hi:
                    out += [(p * m, False) for m in (2, 5)]
                p *= 10
            return out
        n = round(self.hi / self.step)
        return [(i * self.step, True) for i in range(n + 1)]


# -- sections ------------------------------------------------------------------------------


def _header(report: Mapping[str, Any], title: str) -> str:
    inputs = _m(report.get("inputs"))
    bits = [
        f"{_plural(_count(inputs.get('events')), 'event')} from "
        f"{_plural(_count(inputs.get('files')), 'file')}",
        f"schema {report.get('schema') or 'unknown'}",
    ]
    return (
        f'<header class="top"><h1>{_e(title)}</h1>'
        f'<div class="meta">{" · ".join(_e(b) for b in bits)}</div></header>'
    )


def _nav(n_findings: int, n_timelines: int) -> str:
    links = [
        ("summary", "Summary"),
        ("funnel", "Funnel"),
        ("latency", "Latency"),
        ("findings", f"Findings ({n_findings:,})"),
        ("timelines", f"Timelines ({n_timelines:,})"),
        ("clock", "Clocks"),
        ("inputs", "Inputs"),
    ]
    items = "".join(f'<a href="#{sid}">{_e(label)}</a>' for sid, label in links)
    return f'<nav><div class="inner">{items}</div></nav>'


def _tile(label: str, value: str, sub: str = "", cls: str = "", extra: str = "") -> str:
    sub_html = f'<div class="sub">{sub}</div>' if sub else ""
    return (
        f'<div class="tile {cls}"><div class="label">{_e(label)}</div>'
        f'<div class="value">{_e(value)}</div>{sub_html}{extra}</div>'
    )


def _summary(report: Mapping[str, Any], kinds: Sequence[str], counts: Mapping[str, int]) -> str:
    s = _m(report.get("summary"))
    messages = _count(s.get("messages"))
    expected = _count(s.get("deliveries_expected"))
    delivered = _count(s.get("delivered"))
    drops = counts.get("drop", 0)
    problems = sum(counts.get(k, 0) for k in _PROBLEMS)
    if drops:
        verdict = (
            "bad",
            f"{_plural(drops, 'delivery', 'deliveries')} dropped"
            + (f", {_plural(problems - drops, 'other finding')}" if problems > drops else ""),
        )
    elif problems:
        verdict = ("warn", f"No drops, but {_plural(problems, 'finding')} to look at")
    elif messages or expected:
        verdict = ("ok", f"All {_plural(expected, 'delivery', 'deliveries')} arrived, no findings")
    else:
        verdict = ("ok", "No messages in these logs")
    status = _status(delivered, expected)
    width = 0.0 if expected <= 0 else min(100.0, 100.0 * delivered / expected)
    meter = f'<div class="meter {status}"><span style="width:{width:.2f}%"></span></div>'
    e2e = _m(_m(report.get("latency")).get("end_to_end"))
    tiles = [
        _tile("Messages", _int(messages), "sent"),
        _tile(
            "Delivered",
            _pct(delivered, expected),
            f"{delivered:,} of {_plural(expected, 'delivery', 'deliveries')}",
            status,
            meter,
        ),
        _tile(
            "Findings",
            f"{sum(counts.values()):,}",
            f"{problems:,} problem{'s' if problems != 1 else ''}",
            "bad" if drops else ("warn" if problems else "ok"),
        ),
        _tile(
            "End to end p99",
            _ms(e2e.get("p99_ms")),
            f"p50 {_e(_ms(e2e.get('p50_ms')))} · max {_e(_ms(e2e.get('max_ms')))}",
        ),
    ]
    chips = []
    for kind in kinds:
        cls, name, why = _kind(kind)
        n = counts.get(kind, 0)
        if n:
            chips.append(
                f'<a class="chip k-{cls}" href="#findings-{_e(kind)}" title="{_e(why)}">'
                f'{_e(name)} <span class="badge">{n:,}</span></a>'
            )
        else:
            chips.append(
                f'<span class="chip zero" title="{_e(why)}">{_e(name)} '
                f'<span class="badge">0</span></span>'
            )
    said = (recipients_note(s), restarts_note(s), copies_note(s))
    note = "".join(f'<p class="note">{_e(n)}</p>' for n in said if n)
    body = (
        f'<div class="verdict {verdict[0]}"><span class="dot"></span>{_e(verdict[1])}</div>'
        f'<div class="tiles">{"".join(tiles)}</div>'
        f'<div class="chips">{"".join(chips)}</div>{note}'
    )
    return _section("summary", "Summary", body)


def _funnel(report: Mapping[str, Any]) -> str:
    rows = [_m(r) for r in _seq(report.get("funnel"))]
    if not rows:
        return _section(
            "funnel", "Delivery funnel", '<p class="note">No funnel in this report.</p>'
        )
    width, label_w, bar_x, bar_w, row_h, top = 1100.0, 250.0, 260.0, 560.0, 34.0, 8.0
    out: list[str] = []
    y = top
    prev_scope: object = None
    for i, r in enumerate(rows):
        scope = r.get("scope")
        if i and scope != prev_scope:
            out.append(
                f'<line class="sep" x1="0" x2="{width:.0f}" y1="{y + 2:.1f}" y2="{y + 2:.1f}"/>'
            )
            y += 8
        prev_scope = scope
        reached, expected = _count(r.get("reached")), _count(r.get("expected"))
        frac = 0.0 if expected <= 0 else min(1.0, reached / expected)
        status = _status(reached, expected)
        cy = y + row_h / 2
        hop = str(r.get("hop") or "?")
        out.append(f'<g class="funnel-row" data-hop="{_e(hop)}">')
        out.append(f"<title>{_e(hop)}: {reached:,} of {expected:,} {_e(scope or '')}</title>")
        out.append(_text(0, cy + 4, _truncate(hop, 30), "mono bold"))
        if scope:
            out.append(_text(label_w - 4, cy + 4, str(scope), "muted small", "end"))
        out.append(
            f'<rect class="track" x="{bar_x}" y="{cy - 9:.1f}" width="{bar_w}" height="18" rx="4"/>'
        )
        out.append(
            f'<rect class="bar funnel-bar {status}" data-hop="{_e(hop)}" x="{bar_x}" '
            f'y="{cy - 9:.1f}" width="{bar_w * frac:.1f}" height="18" rx="4"/>'
        )
        if 0 < reached < expected:
            gap = max(bar_w * (1 - frac), 4.0)
            out.append(
                f'<rect class="funnel-gap {status}" x="{bar_x + bar_w - gap:.1f}" '
                f'y="{cy - 9:.1f}" width="{gap:.1f}" height="18" rx="3"/>'
            )
        pct = _pct(reached, expected)
        out.append(_text(bar_x + bar_w + 12, cy + 4, pct, f"bold {status}"))
        out.append(_text(bar_x + bar_w + 72, cy + 4, f"{reached:,} / {expected:,}", "muted"))
        missing = expected - reached
        if missing > 0:
            out.append(_text(width - 4, cy + 4, f"{missing:,} missing", "bad bold", "end"))
        out.append("</g>")
        y += row_h
    lead = (
        "How many messages (message hops) or deliveries (recipient hops) reached each hop of "
        "the pipeline, against how many were expected to."
    )
    return _section(
        "funnel",
        "Delivery funnel",
        f'<div class="scroll">{_svg(width, y + 4, out, "delivery funnel")}</div>',
        lead,
    )


_Q: Final = ("p50_ms", "p95_ms", "p99_ms", "max_ms")


def _latency(report: Mapping[str, Any]) -> str:
    lat = _m(report.get("latency"))
    rows: list[tuple[str, Mapping[str, Any], bool]] = []
    for h in (_m(h) for h in _seq(lat.get("hops"))):
        rows.append((f"{h.get('from') or '?'} → {h.get('to') or '?'}", h, False))
    e2e = _m(lat.get("end_to_end"))
    if e2e:
        rows.append(("end to end", e2e, True))
    if not rows:
        return _section("latency", "Latency", '<p class="note">No latency in this report.</p>')
    values = [v for _, r, _ in rows for k in _Q if (v := _num(r.get(k))) is not None]
    width, x0, x1, row_h, top = 1100.0, 330.0, 780.0, 30.0, 26.0
    scale = _Scale(values, x0, x1)
    body: list[str] = []
    height = top + row_h * len(rows) + (10 if rows[-1][2] else 0) + 8
    for v, major in scale.ticks():
        x = scale(v)
        body.append(
            f'<line class="grid{"" if major else " minor"}" x1="{x:.1f}" x2="{x:.1f}" '
            f'y1="{top - 6}" y2="{height - 6:.1f}"/>'
        )
        if major:
            body.append(_text(x, top - 12, _tick(v), "muted small", "middle"))
    body.append(_text(width - 4, top - 12, "p50 · p95 · p99 · max", "muted small", "end"))
    body.append(_text(x1 + 28, top - 12, "samples", "muted small"))
    y = top
    for label, r, is_e2e in rows:
        if is_e2e:
            body.append(
                f'<line class="sep" x1="0" x2="{width:.0f}" y1="{y + 4:.1f}" y2="{y + 4:.1f}"/>'
            )
            y += 10
        cy = y + row_h / 2
        n = _count(r.get("count"))
        q = [_num(r.get(k)) for k in _Q]
        body.append(f'<g class="lat-row{" e2e" if is_e2e else ""}" data-hop="{_e(label)}">')
        body.append(
            f"<title>{_e(label)}: n={n:,}, "
            + ", ".join(f"{k[:-3]} {_ms(v)}" for k, v in zip(_Q, q, strict=True))
            + "</title>"
        )
        body.append(_text(0, cy + 4, _truncate(label, 44), "mono bold" if is_e2e else "mono"))
        body.append(_text(x1 + 28, cy + 4, f"n={n:,}", "muted small"))
        if q[0] is None:
            body.append(_text(x0, cy + 4, "no samples", "muted small"))
        else:
            p50 = q[0]
            p95 = max(p50, q[1] if q[1] is not None else p50)
            p99 = max(p95, q[2] if q[2] is not None else p95)
            mx = max(p99, q[3] if q[3] is not None else p99)
            xs = [scale(v) for v in (p50, p95, p99, mx)]
            bh = 16 if is_e2e else 12
            body.append(
                f'<rect class="lat-base" x="{x0:.1f}" y="{cy - bh / 2:.1f}" '
                f'width="{max(xs[0] - x0, 0):.1f}" height="{bh}" rx="2"/>'
            )
            body.append(
                f'<rect class="lat-mid" x="{xs[0]:.1f}" y="{cy - bh / 2:.1f}" '
                f'width="{max(xs[1] - xs[0], 1.5):.1f}" height="{bh}"/>'
            )
            if xs[2] > xs[1]:
                body.append(
                    f'<rect class="lat-tail" x="{xs[1]:.1f}" y="{cy - bh / 2:.1f}" '
                    f'width="{xs[2] - xs[1]:.1f}" height="{bh}"/>'
                )
            if xs[3] > xs[2]:
                body.append(
                    f'<line class="lat-whisker" x1="{xs[2]:.1f}" x2="{xs[3]:.1f}" '
                    f'y1="{cy:.1f}" y2="{cy:.1f}"/>'
                )
            body.append(
                f'<line class="lat-whisker" x1="{xs[3]:.1f}" x2="{xs[3]:.1f}" '
                f'y1="{cy - 5:.1f}" y2="{cy + 5:.1f}"/>'
            )
            body.append(
                f'<line class="lat-p50" x1="{xs[0]:.1f}" x2="{xs[0]:.1f}" '
                f'y1="{cy - bh / 2 - 3:.1f}" y2="{cy + bh / 2 + 3:.1f}"/>'
            )
            nums = " · ".join(_ms(v) for v in q)
            body.append(
                _text(width - 4, cy + 4, nums, "small" + (" bold" if is_e2e else ""), "end")
            )
        body.append("</g>")
        y += row_h
    legend = (
        '<div class="legend"><span><i class="lat-base"></i>up to p50</span>'
        '<span><i class="p50"></i>p50 (median)</span>'
        '<span><i class="lat-mid"></i>p50&ndash;p95</span><span><i class="lat-tail"></i>p95&ndash;p99</span>'
        '<span><i class="whisker"></i>p99&ndash;max</span>'
        f"<span>{'logarithmic' if scale.log else 'linear'} scale, clock-corrected</span></div>"
    )
    table_rows = "".join(
        f'<tr><td class="mono">{_e(label)}</td><td class="num">{_int(r.get("count"))}</td>'
        + "".join(f'<td class="num">{_e(_ms(r.get(k)))}</td>' for k in _Q)
        + "</tr>"
        for label, r, _ in rows
    )
    table = (
        '<details class="rows"><summary>Numbers</summary><table><thead><tr><th>hop</th>'
        '<th class="num">count</th><th class="num">p50</th><th class="num">p95</th>'
        '<th class="num">p99</th><th class="num">max</th></tr></thead>'
        f"<tbody>{table_rows}</tbody></table></details>"
    )
    return _section(
        "latency",
        "Latency per hop",
        f'<div class="scroll">{_svg(width, height, body, "latency per hop")}</div>{legend}{table}',
        "Time from one hop to the next, and from send to the recipient's UI (end to end).",
    )


def _common_dir(files: Iterable[str]) -> str:
    """The directory every one of ``files`` is under (``"logs/"``), or ``""``."""
    parts: list[str] | None = None
    for f in files:
        dirs = f.replace("\\", "/").split("/")[:-1]
        if parts is None:
            parts = dirs
        else:
            n = 0
            while n < min(len(parts), len(dirs)) and parts[n] == dirs[n]:
                n += 1
            parts = parts[:n]
        if not parts:
            return ""
    return "/".join(parts) + "/" if parts else ""


def _evidence(ev: Sequence[Any], strip: str) -> str:
    items = []
    for e in (_m(x) for x in ev[:MAX_EVIDENCE]):
        line = e.get("line")
        file = str(e.get("file") or "?")
        where = f"{file}" + (f":{line}" if line is not None else "")
        shown = where[len(strip) :] if strip and where.startswith(strip) else where
        items.append(f'<code title="{_e(where)}">{_e(shown)}</code>')
    if len(ev) > MAX_EVIDENCE:
        items.append(f'<span class="dash">+{len(ev) - MAX_EVIDENCE} more</span>')
    return "".join(items) or '<span class="dash">—</span>'


def _cell(value: object, cls: str) -> str:
    if value is None or value == "":
        return f'<td class="{cls}"><span class="dash">—</span></td>'
    return f'<td class="{cls}">{_e(value)}</td>'


def _findings(
    findings: Sequence[Mapping[str, Any]], kinds: Sequence[str], anchors: Mapping[str, str]
) -> str:
    if not findings:
        return _section(
            "findings",
            "Findings",
            '<div class="verdict ok"><span class="dot"></span>No findings</div>',
        )
    files = [
        str(_m(e).get("file"))
        for f in findings
        for e in _seq(f.get("evidence"))
        if _m(e).get("file") is not None
    ]
    strip = _common_dir(files)
    groups: dict[str, list[Mapping[str, Any]]] = {k: [] for k in kinds}
    for f in findings:
        groups[str(f.get("kind") or "unknown")].append(f)
    parts: list[str] = []
    for kind in kinds:
        group = groups[kind]
        if not group:
            continue
        cls, name, why = _kind(kind)
        extra = [c for c in ("conv_id", "source") if any(f.get(c) for f in group)]
        head = (
            "<tr><th>trace</th><th>recipient</th><th>stage</th><th>last seen</th>"
            + "".join(f"<th>{'conv' if c == 'conv_id' else c}</th>" for c in extra)
            + "<th>detail</th><th>evidence</th></tr>"
        )
        rows = []
        for f in group[:MAX_FINDINGS_PER_KIND]:
            tid = f.get("trace_id")
            if tid is not None and str(tid) in anchors:
                trace = (
                    f'<td class="trace"><a href="#{anchors[str(tid)]}" '
                    f'title="{_e(tid)}: show the timeline">{_e(_truncate(str(tid), 18))}</a></td>'
                )
            elif tid is not None and len(str(tid)) > 18:
                trace = f'<td class="trace" title="{_e(tid)}">{_e(_truncate(str(tid), 18))}</td>'
            else:
                trace = _cell(tid, "trace")
            rows.append(
                f'<tr class="finding" data-kind="{_e(kind)}">{trace}'
                + _cell(f.get("recipient"), "recipient")
                + _cell(f.get("stage"), "stage")
                + _cell(f.get("last_seen"), "last-seen")
                + "".join(_cell(f.get(c), c.replace("_", "-")) for c in extra)
                + _cell(f.get("detail"), "detail")
                + f'<td class="evidence">{_evidence(_seq(f.get("evidence")), strip)}</td></tr>'
            )
        more = ""
        if len(group) > MAX_FINDINGS_PER_KIND:
            more = (
                f'<div class="more">… and {len(group) - MAX_FINDINGS_PER_KIND:,} more '
                f"(use <code>--format json</code> for all)</div>"
            )
        parts.append(
            f'<details class="kind k-{cls}" id="findings-{_e(kind)}" data-kind="{_e(kind)}" open>'
            f'<summary><h3>{_e(name)}</h3><span class="badge k-{cls}">{len(group):,}</span>'
            f'<code class="why">{_e(kind)}</code><span class="why">{_e(why)}</span></summary>'
            f'<div class="scroll"><table><thead>{head}</thead><tbody>{"".join(rows)}</tbody>'
            f"</table></div>{more}</details>"
        )
    return _section(
        "findings",
        "Findings",
        "".join(parts),
        "Grouped by kind, worst first. Trace ids link to the message's timeline."
        + (f" Evidence files are under <code>{_e(strip)}</code>." if strip else ""),
    )


def _split_hop(hop: str) -> tuple[str, str]:
    stage, dot, action = hop.rpartition(".")
    return (stage, action) if dot else (hop, "")


def _parse_ts(value: object) -> datetime | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None


def _timeline_svg(
    rows: Sequence[Mapping[str, Any]],
    flagged: Mapping[tuple[str | None, str], tuple[str, str]],
    bad_lanes: set[str | None],
    sources: dict[str, int],
) -> str:
    hops: list[str] = []
    lanes: list[str | None] = []
    by_lane: dict[str | None, list[Mapping[str, Any]]] = {}
    for r in rows:
        hop = str(r.get("hop"))
        rcp = r.get("recipient")
        lane = None if rcp is None else str(rcp)
        if hop not in hops:
            hops.append(hop)
        if lane not in by_lane:
            lanes.append(lane)
            by_lane[lane] = []
        by_lane[lane].append(r)
    label_w, col_w, head_h, lane_h = 120.0, 106.0, 46.0, 58.0
    width = max(1100.0, label_w + col_w * len(hops) + 20)
    col_w = (width - label_w - 20) / max(len(hops), 1)
    height = head_h + lane_h * len(lanes) + 6

    def cx(hop: str) -> float:
        return label_w + col_w * (hops.index(hop) + 0.5)

    out: list[str] = []
    for hop in hops:
        stage, action = _split_hop(hop)
        out.append(_text(cx(hop), 16, _truncate(stage, 16), "mono small bold", "middle"))
        out.append(_text(cx(hop), 30, _truncate(action, 16), "mono small muted", "middle"))
    lane_y = {lane: head_h + lane_h * (i + 0.5) for i, lane in enumerate(lanes)}
    for lane in lanes:
        y = lane_y[lane]
        name = "message" if lane is None else lane
        cls = "bold bad" if lane in bad_lanes else ("muted" if lane is None else "bold")
        out.append(_text(0, y + 4, _truncate(name, 16), cls))
        lane_rows = sorted(by_lane[lane], key=lambda r: hops.index(str(r.get("hop"))))
        xs = [cx(str(r.get("hop"))) for r in lane_rows]
        out.append(
            f'<line class="lane" x1="{xs[0]:.1f}" x2="{xs[-1]:.1f}" y1="{y:.1f}" y2="{y:.1f}"/>'
        )
        # a recipient lane forks from the message lane at the hop before its first one
        first = hops.index(str(lane_rows[0].get("hop")))
        if lane is not None and None in lane_y and first > 0:
            # a branch line: right, down the trunk, right again along the lane
            px, py = cx(hops[first - 1]) + 9, lane_y[None]
            tx, rad = px + 14, (12.0 if y > py else -12.0)
            first_reached = bool(lane_rows[0].get("reached", True))
            first_hop = str(lane_rows[0].get("hop"))
            edge = "edge" if first_reached else "edge missing"
            if (flagged.get((lane, first_hop)) or ("", ""))[0] == "in_flight":
                edge += " pending"
            out.append(
                f'<path class="{edge}" fill="none" d="M{px:.1f},{py:.1f} '
                f"Q{tx:.1f},{py:.1f} {tx:.1f},{py + rad:.1f} L{tx:.1f},{y - rad:.1f} "
                f'Q{tx:.1f},{y:.1f} {tx + rad:.1f},{y:.1f} L{xs[0] - 9:.1f},{y:.1f}"/>'
            )
        missing_seen = False
        for i, r in enumerate(lane_rows):
            reached = bool(r.get("reached", True))
            if i:
                edge = "edge" if reached else ("edge after" if missing_seen else "edge missing")
                if edge == "edge missing" and (
                    (flagged.get((lane, str(r.get("hop")))) or ("", ""))[0] == "in_flight"
                    or r.get("status") in _UNDECIDED
                ):
                    edge += " pending"
                out.append(
                    f'<line class="{edge}" x1="{xs[i - 1] + 9:.1f}" x2="{xs[i] - 9:.1f}" '
                    f'y1="{y:.1f}" y2="{y:.1f}"/>'
                )
            lat = _num(r.get("latency_ms"))
            if reached and lat is not None and (i or lane is not None):
                mid = xs[i] - col_w / 2 + (0 if i else 12)  # the branch starts a bit later
                out.append(_text(mid, y - 8, _ms(lat), "muted small", "middle"))
            hop = str(r.get("hop"))
            src = r.get("source")
            n = _num(r.get("count"))
            tip = " · ".join(
                str(x)
                for x in (
                    name,
                    hop,
                    f"logged {int(n)} times" if reached and n is not None and n > 1 else None,
                    src,
                    r.get("timestamp"),
                    f"+{_ms(lat)}" if lat is not None else None,
                    f"{r.get('file')}:{r.get('line')}" if reached and r.get("file") else None,
                    None
                    if reached
                    else f"TRIED AND FAILED at {r.get('file')}:{r.get('line')}"
                    if r.get("status") == "failed"
                    else "MISSING",
                )
                if x
            )
            attrs = f'data-hop="{_e(hop)}" data-recipient="{_e("" if lane is None else lane)}"'
            x = xs[i]
            if reached:
                s = sources.setdefault(str(src), len(sources)) if src else None
                colour = f"s{s % _SOURCE_COLOURS}" if s is not None else "s6"
                out.append(
                    f'<g class="node reached" {attrs}><title>{_e(tip)}</title>'
                    f'<circle class="{colour}" cx="{x:.1f}" cy="{y:.1f}" r="8"/></g>'
                )
            elif not missing_seen:
                missing_seen = True
                # an in-flight hop is undecided (the logs end inside the grace window), and
                # so is one a log gap or lines naming no recipient may hold (its table row
                # said so, the picture "missing": review 19d)
                undecided = r.get("status") in _UNDECIDED
                pending = undecided or (flagged.get((lane, hop)) or ("", ""))[0] == "in_flight"
                out.append(
                    f'<g class="node missing first-missing{" pending" if pending else ""}" {attrs}>'
                    f"<title>{_e(tip)}</title>"
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="9"/>'
                    f'<path d="M{x - 4:.1f},{y - 4:.1f} L{x + 4:.1f},{y + 4:.1f} '
                    f'M{x + 4:.1f},{y - 4:.1f} L{x - 4:.1f},{y + 4:.1f}"/></g>'
                )
                label, cls = (
                    ("undecided" if undecided else "pending", "warn")
                    if pending
                    else ("missing", "bad")
                )
                out.append(_text(x, y + 24, label, f"{cls} bold small", "middle"))
            else:
                out.append(
                    f'<g class="node missing" {attrs}><title>{_e(tip)}</title>'
                    f'<circle cx="{x:.1f}" cy="{y:.1f}" r="7"/></g>'
                )
            flag = flagged.get((lane, hop))
            if flag and reached:
                kind, cls = flag
                out.append(f'<circle class="flag k-{cls}" cx="{x:.1f}" cy="{y:.1f}" r="13"/>')
                out.append(
                    _text(x, y + 28, kind.replace("_", " "), f"small bold t-{cls}", "middle")
                )
    return f'<div class="scroll">{_svg(width, height, out, "timeline")}</div>'


def _logged(r: Mapping[str, Any]) -> list[dict[str, Any]]:
    """A timeline row's place in the logs as evidence (``[]`` when unknown)."""
    return [{"file": r.get("file"), "line": r.get("line")}] if r.get("file") else []


#: Timeline statuses of a first missing hop that is not judged (no drop).
_UNDECIDED: Final = ("undecided", "in_log_gap")

#: A timeline row's status (tracekit.analyzers.timeline) as the table shows it.
_STATUS_TEXT: Final = {
    "dropped": "✗ missing",
    "failed": "✗ tried and failed",
    "removed": "✗ took it off",
    "in_flight": "in flight",
    "undecided": "undecided",
    "in_log_gap": "undecided (log gap)",
    "not_reached": "not reached",
}
_ROW_CLASS: Final = {
    "dropped": "missing",
    "failed": "missing",
    "removed": "missing",
    "in_flight": "pending",
    "undecided": "pending",
    "in_log_gap": "pending",
    "not_reached": "after",
}


def _timeline_table(rows: Sequence[Mapping[str, Any]]) -> str:
    times = [t for r in rows if (t := _parse_ts(r.get("timestamp"))) is not None]
    t0 = min(times) if times else None
    strip = _common_dir(str(r.get("file")) for r in rows if r.get("file"))
    body = []
    for r in rows:
        reached = bool(r.get("reached", True))
        status = str(r.get("status") or ("reached" if reached else "dropped"))
        t = _parse_ts(r.get("timestamp"))
        since = f"+{_ms((t - t0).total_seconds() * 1000)}" if t and t0 else "—"
        n = _num(r.get("count"))
        count = (
            f'<td class="num count{" dup" if status == "duplicate" else ""}">{_int(n)}</td>'
            if reached and n is not None
            else '<td class="num count"></td>'
        )
        logged = (
            f'<td class="evidence">{_evidence(_logged(r), strip)}</td>'
            if reached or status == "failed"  # (a hop tried and failed: its failing line)
            else '<td class="evidence"></td>'
        )
        body.append(
            f'<tr class="{_ROW_CLASS.get(status, "reached")}">'
            + _cell(r.get("recipient"), "recipient")
            + _cell(r.get("hop"), "stage")
            + _cell(r.get("source"), "source")
            + _cell(r.get("timestamp"), "mono")
            + f'<td class="num">{_e(since if reached else "")}</td>'
            + f'<td class="num">{_e(_ms(r.get("latency_ms")) if reached else "")}</td>'
            + count
            + logged
            + f'<td class="status">{_e(_STATUS_TEXT.get(status, status))}</td></tr>'
        )
    return (
        '<details class="rows"><summary>Rows: source, corrected time, latency, count, '
        "place in the logs</summary>"
        '<div class="scroll"><table><thead><tr><th>recipient</th><th>hop</th><th>source</th>'
        '<th>time (corrected, UTC)</th><th class="num">since first</th>'
        '<th class="num">from previous</th><th class="num">count</th><th>logged at</th>'
        "<th>status</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table></div></details>"
    )


def _timelines(
    traced: Sequence[str],
    by_trace: Mapping[str, list[Mapping[str, Any]]],
    timelines: Mapping[str, Sequence[Mapping[str, Any]]] | None,
    anchors: Mapping[str, str],
) -> str:
    drawn = [t for t in traced if t in anchors]
    if not traced:
        return _section("timelines", "Timelines", '<p class="note">No message has a finding.</p>')
    sources: dict[str, int] = {}
    parts = []
    for tid in drawn:
        rows = [_m(r) for r in (timelines or {}).get(tid, ())]
        fs = by_trace[tid]
        flagged: dict[tuple[str | None, str], tuple[str, str]] = {}
        bad_lanes: set[str | None] = set()
        tags = []
        for f in fs:
            kind = str(f.get("kind"))
            cls = _kind(kind)[0]
            rcp = f.get("recipient")
            lane = None if rcp is None else str(rcp)
            if f.get("stage"):
                flagged.setdefault((lane, str(f.get("stage"))), (kind, cls))
            if kind in _PROBLEMS:
                bad_lanes.add(lane)
            where = " · ".join(
                str(x)
                for x in (
                    kind,
                    rcp,
                    f.get("stage"),
                    f"last seen {f.get('last_seen')}" if f.get("last_seen") else None,
                )
                if x
            )
            tags.append(
                f'<span class="tag k-{cls}" title="{_e(f.get("detail"))}">{_e(where)}</span>'
            )
        parts.append(
            f'<article class="timeline" id="{anchors[tid]}" data-trace="{_e(tid)}">'
            f"<h3>trace <code>{_e(tid)}</code></h3>"
            f'<div class="tags">{"".join(tags)}</div>'
            + _timeline_svg(rows, flagged, bad_lanes, sources)
            + _timeline_table(rows)
            + "</article>"
        )
    legend = "".join(
        f'<span><i class="round s{i % _SOURCE_COLOURS}"></i>{_e(src)}</span>'
        for src, i in sources.items()
    )
    legend = (
        f'<div class="legend">{legend}<span><i class="miss"></i>missing hop</span>'
        '<span><i class="miss pending"></i>pending (in flight)</span>'
        "<span>ring: hop with a finding · hover a hop for its time</span></div>"
    )
    notes = []
    missing = [t for t in traced if t not in anchors]
    if missing:
        shown = ", ".join(_e(t) for t in missing[:20]) + (" …" if len(missing) > 20 else "")
        why = "no timeline data" if timelines is not None else "timelines were not provided"
        notes.append(
            f'<p class="note">{_plural(len(missing), "more message")} with findings, {why}: '
            f"<code>{shown}</code></p>"
        )
    return _section(
        "timelines",
        "Timelines",
        (legend if drawn else "") + "".join(parts) + "".join(notes),
        "Each message with a finding, hop by hop: the message lane, then one lane per "
        "recipient. Colours are the source that logged the hop; latencies are from the "
        "previous hop.",
    )


def _clock(report: Mapping[str, Any]) -> str:
    rows = [_m(c) for c in _seq(report.get("clock"))]
    if not rows:
        return _section("clock", "Clock offsets", '<p class="note">No clock estimates.</p>')
    span = max(
        (abs(_num(c.get("offset_ms")) or 0) + (_num(c.get("uncertainty_ms")) or 0) for c in rows),
        default=0.0,
    )
    span = _nice_step(span, 1) if span > 0 else 1.0
    w, mid = 260.0, 130.0
    with_samples = any(c.get("samples") is not None for c in rows)

    def x(v: float) -> float:
        return mid + max(-1.0, min(1.0, v / span)) * (mid - 6)

    body = []
    for c in rows:
        off = _num(c.get("offset_ms"))
        unc = _num(c.get("uncertainty_ms"))
        ref = bool(c.get("reference")) or off == 0
        glyph = [f'<line class="zero" x1="{mid}" x2="{mid}" y1="1" y2="17"/>']
        if off is not None:
            a, b = sorted((x(0), x(off)))
            glyph.append(
                f'<rect class="off{" ref" if ref else ""}" x="{a:.1f}" y="5" '
                f'width="{max(b - a, 1.5):.1f}" height="8" rx="2"/>'
            )
            if unc:
                glyph.append(
                    f'<line class="unc" x1="{x(off - unc):.1f}" x2="{x(off + unc):.1f}" '
                    f'y1="9" y2="9"/>'
                )
        svg = f'<svg class="chart" viewBox="0 0 {w:.0f} 18" style="max-width:{w:.0f}px">{"".join(glyph)}</svg>'
        offset = "—" if off is None else ("0 ms" if off == 0 else f"{off:+,.1f} ms")
        unc_s = "—" if unc is None else f"± {unc:,.1f} ms"
        pill = ' <span class="pill">reference</span>' if c.get("reference") else ""
        samples = f'<td class="num">{_e(_int(c.get("samples")))}</td>' if with_samples else ""
        body.append(
            f'<tr><td class="mono">{_e(c.get("source"))}{pill}</td>'
            f'<td class="num">{_e(offset)}</td><td class="num">{_e(unc_s)}</td>{samples}'
            f"<td>{svg}</td></tr>"
        )
    table = (
        '<table><thead><tr><th>source</th><th class="num">offset</th>'
        '<th class="num">uncertainty</th>'
        + ('<th class="num">samples</th>' if with_samples else "")
        + f"<th>&minus;{_e(_tick(span))} · 0 · +{_e(_tick(span))}</th></tr></thead>"
        f"<tbody>{''.join(body)}</tbody></table>"
    )
    return _section(
        "clock",
        "Clock offsets",
        f'<div class="scroll">{table}</div>',
        "How far each source's clock runs ahead of the reference (the server that persists "
        "messages); every time in this report is corrected by it.",
    )


def _inputs(report: Mapping[str, Any]) -> str:
    inp = _m(report.get("inputs"))
    lines, events = _count(inp.get("lines")), _count(inp.get("events"))
    malformed, ignored = _count(inp.get("malformed")), _count(inp.get("ignored"))
    tiles = [
        _tile("Files", _int(inp.get("files") or 0)),
        _tile("Lines", _int(lines)),
        _tile("Events", _int(events)),
        _tile("Malformed", _int(malformed), "lines skipped", "bad" if malformed else "ok"),
    ]
    for key, label in (
        ("ignored", "Ignored"),
        ("unlinked", "Unlinked"),
        ("dropped_by_sink", "Dropped by sink"),
    ):
        if _count(inp.get(key)):
            tiles.append(_tile(label, _int(inp.get(key))))
    b = _num(inp.get("bytes"))
    if b:
        tiles.append(_tile("Bytes", f"{b / 1e6:,.1f} MB" if b >= 1e6 else f"{b / 1e3:,.1f} kB"))
    parts = [f'<div class="tiles">{"".join(tiles)}</div>']
    if lines > 0:
        blank = max(0, lines - events - malformed - ignored)
        segs = [
            ("acc-events", "events", events),
            ("acc-ignored", "ignored", ignored),
            ("acc-malformed", "malformed", malformed),
            ("acc-blank", "blank / other", blank),
        ]
        total = max(lines, events + malformed + ignored)
        x, bar = 0.0, []
        for cls, _, n in segs:
            if n:
                w = 1100.0 * n / total
                bar.append(f'<rect class="{cls}" x="{x:.1f}" y="0" width="{w:.1f}" height="14"/>')
                x += w
        parts.append(f'<div style="margin-top:14px">{_svg(1100, 14, bar, "lines read")}</div>')
        parts.append(
            '<div class="legend">'
            + "".join(
                f'<span><i class="{cls}"></i>{_e(label)} {n:,} ({_e(_pct(n, total))})</span>'
                for cls, label, n in segs
                if n
            )
            + "</div>"
        )
    formats = _m(inp.get("formats"))
    if formats:
        parts.append(
            "<h4>Formats</h4><p>"
            + " · ".join(f"<code>{_e(k)}</code> {_int(v)}" for k, v in formats.items())
            + "</p>"
        )
    missing = _m(inp.get("missing"))
    if missing:
        parts.append(
            "<h4>Events kept without a required key</h4><p>"
            + " · ".join(f"<code>{_e(k)}</code> {_int(v)}" for k, v in missing.items())
            + "</p>"
        )
    for key, label in (
        ("warnings", "Warnings"),
        ("examples", "Malformed lines (first examples)"),
        ("malformed_examples", "Malformed lines (first examples)"),
        ("unlinked_examples", "Events without a trace id (first examples)"),
    ):
        items = _seq(inp.get(key))
        if items:
            lis = "".join(
                f"<li><code>{_e(_fmt_example(x))}</code></li>"
                for x in items[:MAX_FINDINGS_PER_KIND]
            )
            parts.append(f'<h4>{_e(label)}</h4><ul class="examples">{lis}</ul>')
    return _section(
        "inputs",
        "Inputs",
        "".join(parts),
        "What was read. Every non-blank line is an event, ignored (not a trace event) or "
        "malformed.",
    )


def _fmt_example(x: object) -> str:
    if isinstance(x, Mapping):
        where = f"{x.get('file') or '?'}:{x.get('line') or '?'}"
        why = x.get("reason") or x.get("error") or x.get("detail") or ""
        return f"{where}: {why}" if why else where
    return str(x)


# -- the document --------------------------------------------------------------------------


def render_html(
    report: Mapping[str, Any],
    timelines: Mapping[str, Sequence[Mapping[str, Any]]] | None = None,
    *,
    title: str = "tracekit report",
) -> str:
    """The report (DESIGN.md section 6, optionally with ``funnel``) as
    one self-contained HTML page; ``timelines`` maps a trace id to its rows (one per recipient
    and hop), drawn for each trace with a finding."""
    findings = [_m(f) for f in _seq(report.get("findings"))]
    kinds = list(_KINDS)
    for f in findings:
        kind = str(f.get("kind") or "unknown")
        if kind not in kinds:
            kinds.append(kind)
    summary = _m(report.get("summary"))
    listed = {k: sum(1 for f in findings if str(f.get("kind") or "unknown") == k) for k in kinds}
    # the summary's counts are exact even when the findings list was shortened
    counts = {k: max(listed[k], _count(summary.get(k))) for k in kinds}
    order = {k: i for i, k in enumerate(kinds)}
    by_trace: dict[str, list[Mapping[str, Any]]] = {}
    for f in sorted(findings, key=lambda f: order[str(f.get("kind") or "unknown")]):
        tid = f.get("trace_id")
        if tid is not None and tid != "":
            by_trace.setdefault(str(tid), []).append(f)
    traced = list(by_trace)
    available = [t for t in traced if timelines is not None and timelines.get(t)]
    anchors = _ids(available[:MAX_TIMELINES], "trace-")
    doc = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        '<meta name="color-scheme" content="light dark">',
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">",
        '<meta name="generator" content="tracekit">',
        f"<title>{_e(title)}</title><style>{_CSS}</style></head><body>",
        _header(report, title),
        _nav(len(findings) or sum(counts.values()), len(anchors)),
        "<main>",
        _summary(report, kinds, counts),
        _funnel(report),
        _latency(report),
        _findings(findings, kinds, anchors),
        _timelines(traced, by_trace, timelines, anchors),
        _clock(report),
        _inputs(report),
        "</main>",
        "<footer>Generated by tracekit. This page is self-contained: it loads nothing from the "
        "network.</footer>",
        "</body></html>",
    ]
    return "\n".join(doc) + "\n"
