"""CI gates over a JSON report: ``--max drop=0``, ``--p99 end_to_end=500ms``,
``--max-latency end_to_end=2s``, ``--min-delivered 99.9%``, or the same under
``[tool.tracekit.gates]`` in pyproject.toml.

Pure functions over the report dict (DESIGN.md section 6), so they are tested without a CLI.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, Protocol
from xml.sax.saxutils import escape, quoteattr

from tracekit.cli._safe import printable
from tracekit.cli._units import parse_duration, parse_percent

__all__ = [
    "LATENCY_GATES",
    "Gate",
    "GateResult",
    "Model",
    "check_hops",
    "evaluate",
    "gates_from_config",
    "github_annotations",
    "junit_xml",
    "parse_latency_gate",
    "parse_max_gate",
]

FINDING_KINDS: Final = (
    "drop",
    "in_flight",
    "duplicate",
    "unexpected",
    "reorder",
    "latency_outlier",
    "slo_breach",
    "race",
    "log_gap",
    "clock_skew",
)
PERCENTILES: Final = ("p50", "p95", "p99")
#: Latency gate kinds and the report key each one checks. ``max_latency`` is not ``max``:
#: ``max`` is the count of findings of a kind (``--max drop=0``).
LATENCY_GATES: Final = {"p50": "p50_ms", "p95": "p95_ms", "p99": "p99_ms", "max_latency": "max_ms"}


def _option(kind: str) -> str:
    """The command-line option of a gate kind: ``max_latency`` -> ``--max-latency``."""
    return "--" + kind.replace("_", "-")


def _label(kind: str) -> str:
    """How a latency gate names its statistic: ``p99``, ``max``."""
    return "max" if kind == "max_latency" else kind


@dataclass(frozen=True)
class Gate:
    """One condition. ``kind``: ``max`` (findings of ``target`` <= limit), a latency statistic
    (``p50``, ``p95``, ``p99``, ``max_latency``: latency of hop ``target`` <= limit ms) or
    ``min_delivered`` (delivered % >= limit)."""

    kind: str
    target: str
    limit: float
    #: where it was given, where not on the command line (a pyproject table's key)
    given_in: str | None = field(default=None, compare=False)

    @property
    def name(self) -> str:
        if self.kind == "max":
            return f"{self.target} <= {self.limit:g}"
        if self.kind == "min_delivered":
            return f"delivered >= {self.limit:g}%"
        return f"{_label(self.kind)} {self.target} <= {self.limit:g} ms"


@dataclass(frozen=True)
class GateResult:
    gate: Gate
    ok: bool
    actual: float | None
    detail: str
    examples: tuple[str, ...] = ()


def parse_max_gate(text: str, *, given_in: str | None = None) -> Gate:
    """``drop=0`` -> Gate("max", "drop", 0). ``given_in``: where, when not the command line
    (an error then names it, not an option nobody gave)."""
    bad = f"bad {'gate' if given_in else '--max gate'} {text!r}"
    kind, sep, value = text.partition("=")
    kind = kind.strip()
    if not sep or kind not in FINDING_KINDS:
        raise ValueError(f"{bad}: use KIND=N with KIND one of {', '.join(FINDING_KINDS)}")
    try:
        limit = int(value)
    except ValueError:
        raise ValueError(f"{bad}: the limit must be a whole number") from None
    if limit < 0:
        raise ValueError(f"{bad}: the limit must be >= 0")
    return Gate("max", kind, limit, given_in=given_in)


def parse_latency_gate(percentile: str, text: str, *, given_in: str | None = None) -> Gate:
    """``end_to_end=500ms`` or ``WS-BROADCAST.deliver->WS-RECV.receive=100ms``; ``percentile``
    is a kind of :data:`LATENCY_GATES`; ``given_in`` as for :func:`parse_max_gate`."""
    if percentile not in LATENCY_GATES:
        raise ValueError(f"unknown latency gate {percentile!r}: use {', '.join(LATENCY_GATES)}")
    option = "" if given_in else f" {_option(percentile)}"
    target, sep, value = text.rpartition("=")
    target = target.strip()
    if not sep or not target:
        raise ValueError(
            f"bad{option} gate {text!r}: use HOP=DURATION, e.g. end_to_end=500ms or "
            "WS-BROADCAST.deliver->WS-RECV.receive=100ms"
        )
    if target != "end_to_end" and "->" not in target:
        raise ValueError(
            f"bad{option} gate {text!r}: HOP is end_to_end or FROM->TO "
            "(e.g. REST.persist->WS-BROADCAST.start)"
        )
    try:
        limit_ms = parse_duration(value).total_seconds() * 1000
    except ValueError as exc:
        raise ValueError(f"bad{option} gate {text!r}: {exc}") from None
    return Gate(percentile, target, limit_ms, given_in=given_in)


class Model(Protocol):
    """What the gates' checks read of a pipeline model (``tracekit.analyzers.Pipeline``)."""

    @property
    def name(self) -> str: ...
    @property
    def edges(self) -> tuple[tuple[str, str], ...]: ...
    def role(self, name: str) -> str | None: ...


def check_hops(gates: Iterable[Gate], model: Model) -> None:
    """A gate the pipeline could never check is bad usage (ValueError), whatever the logs: a
    latency gate on a hop it does not have (misspelt), and, in a model with no ``final`` role
    (nothing is delivered, review 21a: an ETL's pipeline of message hops), a delivery or an
    end-to-end gate (they failed on every run, saying no recipient was seen)."""
    known = {f"{a}->{b}" for a, b in model.edges}
    final = model.role("final")
    for gate in gates:
        option = gate.given_in or _option(gate.kind)
        # (a gate written whole, the plugin's p99:HOP=500ms, names its hop already)
        named = option if gate.target in option else f"{option} {gate.target}"
        if gate.kind in LATENCY_GATES and gate.target != "end_to_end" and gate.target not in known:
            raise ValueError(
                f"{named}: not a hop of the pipeline "
                f"(use end_to_end or one of: {', '.join(sorted(known))})"
            )
        if final is None and (gate.kind == "min_delivered" or gate.target == "end_to_end"):
            what = "nothing is delivered" if gate.kind == "min_delivered" else "no end to end"
            instead = (
                # (in the words the gate was given in: the CLI's option, else KIND=N)
                f"gate its paths with {'--max ' if gate.given_in is None else ''}drop=0"
                if gate.kind == "min_delivered"
                else f"use a hop FROM->TO: {', '.join(sorted(known))}"
            )
            raise ValueError(
                f"{option if gate.kind == 'min_delivered' else named}: the pipeline "
                f"{model.name!r} names no 'final' role ({what}); {instead}"
            )


def gates_from_config(pyproject: Path) -> list[Gate]:
    """Gates from ``[tool.tracekit.gates]``; an absent file or table gives none."""
    if not pyproject.is_file():
        return []
    try:
        data = tomllib.loads(pyproject.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ValueError(f"cannot read gates from {pyproject}: {exc}") from None
    table: Any = data
    for name in ("tool", "tool.tracekit", "tool.tracekit.gates"):
        table = table.get(name.rpartition(".")[2], {})
        if not isinstance(table, dict):
            raise ValueError(f"{pyproject}: [{name}] must be a table")
    gates: list[Gate] = []
    for key, value in table.items():
        where = f"{pyproject}: [tool.tracekit.gates] {key}"
        try:  # an error said of the file, not of an option nobody gave
            if key == "max" and isinstance(value, dict):
                gates += [parse_max_gate(f"{k}={v}", given_in=where) for k, v in value.items()]
            elif key in LATENCY_GATES and isinstance(value, dict):
                gates += [
                    parse_latency_gate(key, f"{k}={v}", given_in=where) for k, v in value.items()
                ]
            elif key == "min_delivered" and isinstance(value, str | int | float):
                gates.append(Gate("min_delivered", "delivered", parse_percent(str(value))))
            else:
                raise ValueError(
                    "unknown or malformed gate (use max = {drop = 0}, "
                    'p99 = {end_to_end = "500ms"}, max_latency = {end_to_end = "2s"}, '
                    'min_delivered = "99.9%")'
                )
        except ValueError as exc:
            raise ValueError(f"{where}: {exc}") from None
    return gates


def merge(config: Iterable[Gate], cli: Iterable[Gate]) -> list[Gate]:
    """Command-line gates replace configured gates of the same kind and target; one given
    twice on the command line is bad usage (ValueError): which one was meant is not known,
    and keeping the last silently dropped the stricter (``--max drop=0 --max drop=5``)."""
    given: dict[tuple[str, str], Gate] = {}
    for g in cli:
        if (before := given.get((g.kind, g.target))) is not None:
            raise ValueError(
                f"two gates on one thing ({before.name}; {g.name}): give each gate once"
            )
        given[(g.kind, g.target)] = g
    merged = {(g.kind, g.target): g for g in config}
    merged.update(given)
    return list(merged.values())


def _example(finding: Mapping[str, Any]) -> str:
    """One finding on one line, its text from the logs made printable."""
    parts = [str(finding.get("trace_id") or "-")]
    if finding.get("recipient"):
        parts.append(f"recipient {finding['recipient']}")
    if finding.get("stage"):
        parts.append(f"at {finding['stage']}")
    if finding.get("last_seen"):
        parts.append(f"(last seen {finding['last_seen']})")
    evidence = finding.get("evidence") or []
    if evidence and evidence[0].get("file"):  # events captured in memory have no file
        first = evidence[0]
        line = first.get("line")
        parts.append(f"[{first['file']}:{line}]" if line is not None else f"[{first['file']}]")
    if finding.get("test"):  # (the pytest plugin's session report: which test it is in)
        parts.append(f"in {finding['test']}")
    return printable(" ".join(parts))


def _latency_row(report: Mapping[str, Any], target: str) -> Mapping[str, Any] | None:
    latency = report.get("latency", {})
    if target == "end_to_end":
        row = latency.get("end_to_end")
        return row if isinstance(row, Mapping) else None
    source, _, dest = target.partition("->")
    for row in latency.get("hops", []):
        if row.get("from") == source and row.get("to") == dest:
            return row  # type: ignore[no-any-return]
    return None


def _no_deliveries(messages: int) -> str:
    if messages == 0:
        return (
            "no deliveries to check: the logs hold no messages (empty, unreadable or not "
            "tracekit events?)"
        )
    return (
        f"no deliveries to check: {messages} message(s) but no expected recipient "
        "(no broadcast recipients list, no other member of the conversation seen)"
    )


def evaluate(
    report: Mapping[str, Any], gates: Sequence[Gate], examples: int = 3
) -> list[GateResult]:
    """Check every gate against a report dict; failing gates carry their worst examples."""
    summary = report.get("summary", {})
    findings = report.get("findings", [])
    results: list[GateResult] = []
    for gate in gates:
        if gate.kind == "max":
            actual = float(summary.get(gate.target, 0))
            if actual <= gate.limit and not int(summary.get("messages", 0)):
                # no message, no finding: a count of 0 over nothing is no evidence either
                detail = (
                    f"no messages to check for {gate.target}: the logs hold no message "
                    "(empty, unreadable or not tracekit events?)"
                )
                results.append(GateResult(gate, False, None, detail))
                continue
            ok = actual <= gate.limit
            matching = [f for f in findings if f.get("kind") == gate.target]
            detail = f"{int(actual)} {gate.target} finding(s), allowed {gate.limit:g}"
            shown = tuple(_example(f) for f in matching[:examples]) if not ok else ()
            results.append(GateResult(gate, ok, actual, detail, shown))
        elif gate.kind == "min_delivered":
            expected = int(summary.get("deliveries_expected", 0))
            delivered = int(summary.get("delivered", 0))
            lost = [f for f in findings if f.get("kind") == "drop"]
            if expected == 0:
                # 0/0 is no evidence of delivery: like a latency gate without samples, a gate
                # that cannot be checked fails (docs/decisions.md, CLI)
                results.append(
                    GateResult(
                        gate,
                        False,
                        None,
                        _no_deliveries(int(summary.get("messages", 0))),
                        tuple(_example(f) for f in lost[:examples]),
                    )
                )
                continue
            pct = 100.0 * delivered / expected
            ok = pct >= gate.limit
            detail = f"{delivered}/{expected} delivered = {pct:.3f}%, required {gate.limit:g}%"
            shown = tuple(_example(f) for f in lost[:examples]) if not ok else ()
            results.append(GateResult(gate, ok, pct, detail, shown))
        else:
            row = _latency_row(report, gate.target)
            key = LATENCY_GATES[gate.kind]
            if row is None or row.get(key) is None or not row.get("count"):
                results.append(
                    GateResult(gate, False, None, f"no latency samples for {gate.target}")
                )
                continue
            value = float(row[key])
            ok = value <= gate.limit
            label = _label(gate.kind)
            # to 0.1 ms, unless that reads as the limit or across it ("p99 <= 26.269 ms:
            # p99 = 26.3 ms" failed; review 24b): then as the report has it
            shown_value = f"{value:.1f}"
            if (float(shown_value) <= gate.limit) != ok or float(shown_value) == gate.limit:
                shown_value = f"{value:.3f}"
            detail = f"{label} {gate.target} = {shown_value} ms over {row['count']} samples"
            # the gate's own edge: a hop's (from, to) is a finding's (last_seen, stage); end
            # to end, what is on no hop's edge (review 24b: a hop's gate showed the end-to-end
            # breaches that ended at its hop)
            edges = {
                (h.get("from"), h.get("to")) for h in report.get("latency", {}).get("hops", [])
            }
            source, _, dest = gate.target.partition("->")
            slow = [
                f
                for f in findings
                if f.get("kind") in ("slo_breach", "latency_outlier")
                and (
                    (f.get("last_seen"), f.get("stage")) not in edges
                    if gate.target == "end_to_end"
                    else (f.get("last_seen"), f.get("stage")) == (source, dest)
                )
            ]
            # a latency the clock bounds leave in doubt (a client that only receives, its clock
            # bounded on one side) is said in its breach's detail: the gate says so too
            # (review 24b: a 600 ms clock read as 600 ms latencies, the gate line alone)
            unsure = sum("not certain" in str(f.get("detail", "")) for f in slow)
            if unsure and not ok:
                detail += (
                    f"; {unsure} of its SLO breaches may be clock error, not latency "
                    "(their details say 'not certain')"
                )
            shown = tuple(_example(f) for f in slow[:examples]) if not ok else ()
            results.append(GateResult(gate, ok, value, detail, shown))
    return results


def junit_xml(results: Sequence[GateResult], *, name: str = "tracekit.check") -> str:
    """One JUnit test case per gate, failures with their detail and examples."""
    failures = sum(not r.ok for r in results)
    lines = [
        '<?xml version="1.0" encoding="utf-8"?>',
        f'<testsuites><testsuite name={quoteattr(name)} tests="{len(results)}" '
        f'failures="{failures}" errors="0">',
    ]
    for result in results:
        # printable(): XML 1.0 forbids most control characters even as character references
        gate_name = quoteattr(printable(result.gate.name))
        case = f"<testcase classname={quoteattr(printable(name))} name={gate_name}"
        if result.ok:
            lines.append(case + " />")
        else:
            detail = printable(result.detail)
            body = "\n".join([detail, *(printable(e) for e in result.examples)])
            lines.append(
                case + f"><failure message={quoteattr(detail)}>{escape(body)}</failure></testcase>"
            )
    lines.append("</testsuite></testsuites>")
    return "\n".join(lines) + "\n"


def github_annotations(results: Sequence[GateResult]) -> list[str]:
    """GitHub Actions workflow commands, one error per failing gate."""

    def clean(text: str) -> str:
        return printable(text).replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")

    def prop(text: str) -> str:
        # a property value also ends at ',' (the next property) and '::' (the message)
        return clean(text).replace(":", "%3A").replace(",", "%2C")

    return [
        f"::error title={prop(f'tracekit gate {r.gate.name}')}::"
        + "%0A".join(clean(line) for line in [r.detail, *r.examples])
        for r in results
        if not r.ok
    ]
