"""The ``tracekit`` commands (typer). Exit codes (DESIGN.md section 7): 0 ran and passed,
1 ran and a gate failed, 2 bad usage or unreadable input (one line, no traceback).
"""

from __future__ import annotations

import os
import re
import sys
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Final, NoReturn

import typer
from typer.core import TyperGroup

from tracekit import __version__
from tracekit.cli._units import parse_duration

if TYPE_CHECKING:
    import polars as pl
    from rich.console import Console

    from tracekit.analyzers import Pipeline, Report


class _OneLineErrors(TyperGroup):
    """Command-line parsing errors (missing argument, bad choice, unknown option) end like the
    commands' own: one line on stderr, exit 2 (DESIGN.md section 7), not click's usage box."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        windows_expand_args: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, windows_expand_args, **extra)
        except BrokenPipeError:
            if not _reader_gone():
                raise  # not stdout's reader: a crash (exit 3 with its traceback, in main())
            # the reader went away (`tracekit analyze logs | head -1`): what it read is what it
            # wanted; exit quietly, 0, never 1 (a failed gate). `check` finishes its gates first.
            _stdout_gone()
            sys.exit(0)
        except _parse_errors() as exc:
            if type(exc).__name__ == "NoArgsIsHelpError":
                # bare `tracekit`: the help, as before (typer prints it on its own error path)
                return super().main(
                    args, prog_name, complete_var, True, windows_expand_args, **extra
                )
            message = " ".join(exc.format_message().split()) or type(exc).__name__
            ctx = getattr(exc, "ctx", None)
            if ctx is not None:
                message += f" (see '{ctx.command_path} --help')"
            typer.echo(f"tracekit: error: {message}", err=True)
            sys.exit(exc.exit_code)
        except typer.Abort:
            typer.echo("Aborted!", err=True)
            sys.exit(1)
        sys.exit(code if isinstance(code, int) else 0)


def _stdout_gone() -> None:
    """Point stdout at /dev/null: what is still buffered, and the interpreter's flush at exit,
    go nowhere instead of raising BrokenPipeError again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass


def _reader_gone() -> bool:
    """Whether stdout is a pipe or socket whose reader went away (poll says POLLERR/POLLHUP):
    a BrokenPipeError from anywhere else (a socket of the demo, a child's pipe) is a crash."""
    try:
        import select

        poller = select.poll()
        poller.register(sys.stdout.fileno(), select.POLLOUT)
        return any(ev & (select.POLLERR | select.POLLHUP) for _, ev in poller.poll(0))
    except (OSError, AttributeError, ValueError):
        return False


def _broken_pipe() -> None:
    """Rich's own handler exits 1 (a failed gate, to CI): raise, so the command decides."""
    raise BrokenPipeError


def _say(line: str) -> None:
    """One line on stdout; a closed pipe does not stop the command (``check`` still exits
    with its gates' result)."""
    try:
        typer.echo(line)
    except BrokenPipeError:
        _stdout_gone()


def _parse_errors() -> tuple[type[Any], ...]:
    """click's errors: typer >= 0.25 vendors click under a TyperException base, older typer uses
    click itself (imported only then, and only on the error path)."""
    base = getattr(typer, "TyperException", None)
    if base is not None:
        return (base,)
    import click

    return (click.ClickException,)


app = typer.Typer(
    cls=_OneLineErrors,
    name="tracekit",
    help="Follow every chat message across client, server and recipients.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode="markdown",
)


class Format(StrEnum):
    table = "table"
    json = "json"
    markdown = "markdown"
    html = "html"


class Scenario(StrEnum):
    fixed = "fixed"
    race_bug = "race-bug"
    faults = "faults"


def _fail(message: str) -> NoReturn:
    """Bad usage or unreadable input: one line on stderr, exit 2."""
    from tracekit.cli._safe import printable

    typer.echo(f"tracekit: error: {printable(message)}", err=True)
    raise typer.Exit(2)


def _stderr() -> Console:
    from rich.console import Console

    # emoji=False: ":bug:" in a path or a trace id is shown as written, never as an emoji
    return Console(stderr=True, emoji=False)


def _stdout() -> Console:
    from rich.console import Console

    if sys.stdout is None:  # started with stdout closed (`>&-`): the output would be lost
        _fail("cannot write the output: stdout is closed (give -o FILE)")
    console = Console(soft_wrap=False, width=int(os.environ.get("COLUMNS", "160")), emoji=False)
    console.on_broken_pipe = _broken_pipe  # type: ignore[method-assign]
    return console


@contextmanager
def _translated_errors() -> Iterator[None]:
    """Our own errors and bad values become exit 2 with their message; nothing else hides."""
    from tracekit.errors import TracekitError

    try:
        yield
    except BrokenPipeError as exc:
        if not _reader_gone():  # click would exit 1 on it, silently: a crash it is (exit 3)
            raise RuntimeError(f"broken pipe, not stdout's: {exc}") from exc
        # the reader of stdout went away (`| head -1`): what it read is what it wanted; exit
        # quietly, 0: not 2 (the input is fine), and not click's 1 (a failed gate, to CI)
        _stdout_gone()
        raise typer.Exit(0) from None
    except (TracekitError, ValueError) as exc:
        _fail(str(exc).splitlines()[0] if str(exc) else type(exc).__name__)
    except OSError as exc:
        _fail(f"{exc.filename or ''}: {exc.strerror or exc}".lstrip(": "))


def _version(value: bool) -> None:
    if value:
        typer.echo(f"tracekit {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[
        bool,
        typer.Option("--version", callback=_version, is_eager=True, help="Print the version."),
    ] = False,
) -> None:
    """tracekit: instrument, collect, analyze and gate message delivery in chat systems."""


# -- shared options ---------------------------------------------------------------------------

Paths = Annotated[
    list[Path],
    typer.Argument(
        help="Log files or directories (recursive); '-' reads stdin. gzip/bz2/zstd are read.",
        show_default=False,
    ),
]
PipelineOpt = Annotated[
    Path | None,
    typer.Option("--pipeline", help="Pipeline model (TOML); default: the built-in chat pipeline."),
]
GraceOpt = Annotated[
    str | None,
    typer.Option(
        "--grace",
        help=(
            "Undecided window at the end of the logs (500ms, 2s, 1m); default: the pipeline "
            "model's grace_ms (5 s for the built-in one)."
        ),
    ),
]
SinceOpt = Annotated[
    str | None, typer.Option("--since", help="Only events at or after this ISO time.")
]
UntilOpt = Annotated[str | None, typer.Option("--until", help="Only events before this ISO time.")]
IncludeOpt = Annotated[
    list[str] | None,
    typer.Option("--include", help="Only files matching this glob in directories (repeatable)."),
]
ExcludeOpt = Annotated[
    list[str] | None,
    typer.Option("--exclude", help="Skip files matching this glob in directories (repeatable)."),
]
TimezoneOpt = Annotated[
    str | None,
    typer.Option("--timezone", help="Zone of timestamps written without one, e.g. Europe/Paris."),
]
CacheOpt = Annotated[
    Path | None,
    typer.Option(
        "--cache-dir",
        envvar="TRACEKIT_CACHE_DIR",
        readable=False,  # an unusable cache only costs speed: the collectors warn, not fail
        help="Keep the parsed events here (Parquet, keyed by each file's path, size and mtime): "
        "the next run over unchanged logs skips parsing. Off unless given.",
    ),
]


def _iso(value: str | None, name: str) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        _fail(f"--{name} {value!r} is not an ISO time (e.g. 2026-11-25T10:00:00Z)")
    if parsed.tzinfo is None:
        _fail(f"--{name} {value!r} needs a time zone (append Z for UTC)")
    return parsed


def _duration(value: str, name: str) -> timedelta:
    try:
        return parse_duration(value)
    except ValueError as exc:
        _fail(f"--{name}: {exc}")


def _grace(value: str | None, model: Pipeline) -> timedelta:
    """``--grace``, else the model's own (a model's ``grace_ms`` was never used by the CLI:
    the option's default, 5 s, replaced it)."""
    return model.grace if value is None else _duration(value, "grace")


def _load_pipeline(path: Path | None) -> Pipeline:
    from tracekit.analyzers import default_pipeline, load_pipeline

    if path is None:
        return default_pipeline()
    if path.is_dir():
        _fail(f"pipeline model {path} is a directory, not a TOML file")
    if not path.is_file():
        _fail(f"pipeline file not found: {path}")
    return load_pipeline(path)


@contextmanager
def _progress(what: str) -> Iterator[None]:
    """A spinner on stderr, only for a terminal (never in pipes, CI logs or JSON on stdout)."""
    if not sys.stderr.isatty():
        yield
        return
    with _stderr().status(f"[dim]{what}...[/dim]", spinner="dots"):
        yield


@dataclass(frozen=True)
class _Reading:
    """What the reading commands read, and how: their shared options."""

    paths: Sequence[Path]
    since: str | None = None
    until: str | None = None
    timezone: str | None = None
    include: Sequence[str] | None = None
    exclude: Sequence[str] | None = None
    cache_dir: Path | None = None


def _collect(reading: _Reading) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """The events read, inside the reading's time window, and the collectors' counts."""
    events, inputs = _read(reading)
    inside = _window(reading)
    return (events if inside is None else events.filter(inside)), inputs


def _window(reading: _Reading) -> pl.Expr | None:
    """Which events ``--since``/``--until`` keep; None without them."""
    import polars as pl

    start, end = _iso(reading.since, "since"), _iso(reading.until, "until")
    kept = [
        *([pl.col("timestamp") >= start] if start is not None else []),
        *([pl.col("timestamp") < end] if end is not None else []),
    ]
    return pl.all_horizontal(kept) if kept else None


def _read(reading: _Reading) -> tuple[pl.LazyFrame, dict[str, Any]]:
    """Every event of the reading's inputs, and the collectors' counts."""
    from tracekit.analyzers import INPUT_COLUMNS
    from tracekit.collectors import collect

    _window(reading)  # (a bad --since/--until said before anything is read)
    _require_paths(reading.paths)
    with _progress("reading logs"):
        collected = collect(
            [str(p) for p in reading.paths],
            timezone=reading.timezone,
            include=reading.include or None,
            exclude=reading.exclude or None,
            cache_dir=reading.cache_dir,
            columns=INPUT_COLUMNS,  # what every reading command reads: the analysis'
        )
    return collected.events, collected.inputs.to_dict()


def _require_paths(paths: Sequence[Path]) -> None:
    """A path that is not there is bad input (exit 2), said before anything else."""
    for path in paths:
        if str(path) != "-" and not path.exists():
            if path.is_symlink():  # a dangling link, or a loop: said as the reading says it
                from tracekit.collectors._sources import _not_a_file

                _fail(f"{path}: {_not_a_file(path)}")
            _fail(f"no such file or directory: {path}")


def _analyze(
    reading: _Reading,
    pipeline: Path | Pipeline | None,
    grace: str | None,
    slo: Mapping[str, timedelta] | None = None,
    *,
    require_events: bool = False,
) -> tuple[Report, pl.LazyFrame, Pipeline]:
    """Read and analyze. ``require_events``: no event at all to analyze is unreadable input
    (exit 2), e.g. for ``check``, whose gates would otherwise pass over nothing."""
    from tracekit.analyzers import analyze

    model = _load_pipeline(pipeline) if pipeline is None or isinstance(pipeline, Path) else pipeline
    events, inputs = _read(reading)
    inside = _window(reading)
    with _progress(f"analyzing {inputs.get('events', 0):,} events"):
        table = events.collect()  # read once: the analyzers and the funnel both use it
        left_out = None
        if inside is not None:  # what the window left out, said (DESIGN section 8)
            # (and given to the analysis: their seqs are no loss of the logs)
            # (and which hops they are: a path whose next hop is among them is cut, not lost)
            left_out = table.filter(~inside).select(
                "source",
                "seq",
                "file",
                "line",
                "timestamp",
                "duration_ms",
                *(c for c in _HOP_KEYS if c in table.columns),
            )
            table = table.filter(inside)
            inputs = _windowed(inputs, left_out.height)
        if require_events and table.height == 0:
            _fail(_no_events(reading, inputs))
        events = table.lazy()
        report = analyze(
            events,
            pipeline=model,
            grace=_grace(grace, model),
            slo=dict(slo) if slo else None,
            inputs=inputs,
            left_out=left_out,
        )
    return report, events, model


#: What says which hop (or history fetch) a left-out event is (``analyze(left_out=)``).
_HOP_KEYS: Final = ("trace_id", "stage", "action", "peer", "actor", "level", "msg_id", "conv_id")


def _windowed(inputs: dict[str, Any], outside: int) -> dict[str, Any]:
    """``inputs`` with the events ``--since``/``--until`` left out counted
    (``outside_window``) and said among the warnings."""
    said = (
        []
        if outside <= 0
        else [
            f"{outside} of the {inputs.get('events', 0)} events read are outside --since/--until; "
            "not analyzed"
        ]
    )
    return inputs | {
        "outside_window": max(outside, 0),
        "warnings": [*(inputs.get("warnings") or []), *said],
    }


def _no_events(reading: _Reading, inputs: Mapping[str, Any]) -> str:
    """Why there is nothing to check: what was read, and the first account of a skipped input."""
    read = (
        f"{inputs.get('files', 0)} file(s), {inputs.get('lines', 0)} line(s), "
        f"{inputs.get('malformed', 0)} malformed"
    )
    if inputs.get("events") and (reading.since or reading.until):
        why = f"none of the {inputs['events']} events read is inside --since/--until"
    else:
        why = f"no events read from {', '.join(str(p) for p in reading.paths)} ({read})"
    notes = [str(n) for n in [*(inputs.get("warnings") or []), *(inputs.get("examples") or [])]]
    more = f" (+{len(notes) - 3} more)" if len(notes) > 3 else ""
    return f"{why}: nothing to check" + "".join(f"; {n}" for n in notes[:3]) + more


def _report_dict(report: Report, events: pl.LazyFrame, model: Pipeline) -> dict[str, Any]:
    from tracekit.cli._funnel import funnel

    data = report.to_dict()
    data["funnel"] = funnel(events, model, data["summary"])
    return data


def _cannot_write(output: Path, option: str, exc: OSError) -> NoReturn:
    """An output file that cannot be written is bad usage: exit 2, one line naming the option."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    if exc.filename and str(exc.filename) != str(output):
        reason = f"{reason}: {exc.filename}"  # e.g. the parent that is a file
    _fail(f"cannot write {option} {output}: {reason}")


@contextmanager
def _writing(output: Path, option: str) -> Iterator[None]:
    """Create ``output``'s parent directories; any OSError inside becomes ``_cannot_write``."""
    try:
        output.parent.mkdir(parents=True, exist_ok=True)
        yield
    except OSError as exc:
        _cannot_write(output, option, exc)


def _stdout_if_dash(output: Path | None) -> Path | None:
    """``-o -``: stdout (None), not a file named ``-``."""
    return None if output is not None and str(output) == "-" else output


def _emit(text: str, output: Path | None, option: str = "-o") -> None:
    if output is None:
        if sys.stdout is None:
            _fail(f"cannot write the output: stdout is closed (give {option} FILE)")
        sys.stdout.write(text)
        sys.stdout.flush()  # a closed pipe shows here, not in the interpreter's exit
    else:
        with _writing(output, option):
            output.write_text(text, encoding="utf-8")


# -- commands -----------------------------------------------------------------------------


@app.command()
def analyze(
    paths: Paths,
    pipeline: PipelineOpt = None,
    format: Annotated[Format, typer.Option("--format", "-f", help="Output format.")] = Format.table,
    output: Annotated[
        Path | None, typer.Option("--output", "-o", help="Write here instead of stdout.")
    ] = None,
    grace: GraceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    timezone: TimezoneOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    cache_dir: CacheOpt = None,
) -> None:
    """Rebuild every message's path and report drops, duplicates, races, latency...

    Example: `tracekit analyze logs/ --format json -o report.json`
    """
    output = _stdout_if_dash(output)
    with _translated_errors():
        reading = _Reading(paths, since, until, timezone, include, exclude, cache_dir)
        report, events, model = _analyze(reading, pipeline, grace)
        _write_report(format, _report_dict(report, events, model), report, events, model, output)


def _write_report(
    format: Format,
    data: Mapping[str, Any],
    report: Report,
    events: pl.LazyFrame,
    model: Pipeline,
    output: Path | None,
) -> None:
    """The report (``data``, the JSON report's dict) in ``format``, to ``output`` or stdout."""
    if format is Format.json:
        from tracekit.cli._render import render_json

        _emit(render_json(data), output)
    elif format is Format.markdown:
        from tracekit.cli._render import render_markdown

        _emit(render_markdown(data), output)
    elif format is Format.html:
        _emit(_html(data, report, events, model), output)
    else:
        from tracekit.cli._render import render_table

        if output is None:
            render_table(data, _stdout())
        else:
            from rich.console import Console

            with _writing(output, "-o"), output.open("w", encoding="utf-8") as fh:
                render_table(data, Console(file=fh, width=160, emoji=False))


def _html(data: Mapping[str, Any], report: Report, events: pl.LazyFrame, model: Pipeline) -> str:
    from tracekit.analyzers import timeline
    from tracekit.cli._html import render_html
    from tracekit.cli._timeline import timeline_rows

    traced = []
    for f in data["findings"]:
        tid = f.get("trace_id")
        if tid and tid not in traced and f.get("kind") != "in_flight":
            traced.append(tid)
    timelines = {
        tid: timeline_rows(timeline(events, tid, pipeline=model, findings=report.findings))
        for tid in traced[:50]
    }
    return render_html(data, timelines)


@app.command()
def report(
    paths: Paths,
    output: Annotated[Path, typer.Option("--output", "-o", help="The HTML file to write.")] = Path(
        "tracekit-report.html"
    ),
    pipeline: PipelineOpt = None,
    grace: GraceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    timezone: TimezoneOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    cache_dir: CacheOpt = None,
) -> None:
    """Write one self-contained HTML report (funnel, latency, findings, timelines).

    Example: `tracekit report logs/ -o report.html`
    """
    with _translated_errors():
        reading = _Reading(paths, since, until, timezone, include, exclude, cache_dir)
        analysis, events, model = _analyze(reading, pipeline, grace)
        data = _report_dict(analysis, events, model)
        _emit(_html(data, analysis, events, model), _stdout_if_dash(output))
    if _stdout_if_dash(output) is not None:
        typer.echo(f"wrote {output}", err=True)


@app.command()
def check(
    paths: Paths,
    max: Annotated[
        list[str] | None,
        typer.Option("--max", help="KIND=N: at most N findings of KIND (drop=0, duplicate=0)."),
    ] = None,
    p50: Annotated[list[str] | None, typer.Option("--p50", help="HOP=DURATION")] = None,
    p95: Annotated[list[str] | None, typer.Option("--p95", help="HOP=DURATION")] = None,
    p99: Annotated[
        list[str] | None,
        typer.Option(
            "--p99", help="HOP=DURATION, HOP = end_to_end or FROM->TO (end_to_end=500ms)."
        ),
    ] = None,
    max_latency: Annotated[
        list[str] | None,
        typer.Option(
            "--max-latency", help="HOP=DURATION: the slowest sample of HOP (end_to_end=2s)."
        ),
    ] = None,
    min_delivered: Annotated[
        list[str] | None, typer.Option("--min-delivered", help="Delivered share, e.g. 99.9%.")
    ] = None,
    config: Annotated[
        Path | None,
        typer.Option(
            "--config",
            help="pyproject.toml with [tool.tracekit.gates] (default: ./pyproject.toml, if any).",
        ),
    ] = None,
    junit: Annotated[Path | None, typer.Option("--junit", help="Write JUnit XML here.")] = None,
    pipeline: PipelineOpt = None,
    grace: GraceOpt = None,
    since: SinceOpt = None,
    until: UntilOpt = None,
    timezone: TimezoneOpt = None,
    include: IncludeOpt = None,
    exclude: ExcludeOpt = None,
    cache_dir: CacheOpt = None,
) -> None:
    """The CI gate: exit 0 when every gate holds, 1 when one fails, 2 on bad usage/input.

    A delivery whose next hop is not seen within `--grace` of the end of the logs is `in_flight`
    (undecided), not a `drop`: check says how many; gate them with `--max in_flight=0`, or
    decide them with `--grace 0s` when the run is over.

    Example: `tracekit check logs/ --max drop=0 --max duplicate=0 --p99 end_to_end=500ms --min-delivered 99.9%`
    """
    from tracekit.cli import _gates
    from tracekit.cli._copies import copies_note
    from tracekit.cli._render import input_notes
    from tracekit.cli._restarts import restarts_note
    from tracekit.cli._safe import printable

    _require_paths(paths)  # (before "no gates": the first thing wrong is said)
    if junit is not None and str(junit) == "-":  # (said before the reading, not after it)
        _fail("--junit -: give a file (stdout holds the command's own lines)")
    if config is not None and not config.is_file():
        _fail(f"--config {config}: {'not a file' if config.exists() else 'no such file'}")
    try:
        gates = [_gates.parse_max_gate(g) for g in max or []]
        for name, values in (
            ("p50", p50),
            ("p95", p95),
            ("p99", p99),
            ("max_latency", max_latency),
        ):
            gates += [_gates.parse_latency_gate(name, v) for v in values or []]
        from tracekit.cli._units import parse_percent

        gates += [
            _gates.Gate("min_delivered", "delivered", parse_percent(v)) for v in min_delivered or []
        ]
        gates = _gates.merge(_gates.gates_from_config(config or Path("pyproject.toml")), gates)
    except ValueError as exc:
        _fail(str(exc))
    if not gates:
        _fail(
            "no gates: give --max/--p99/--min-delivered or [tool.tracekit.gates] in pyproject.toml"
        )
    with _translated_errors():
        model = _load_pipeline(pipeline)
        _gates.check_hops(gates, model)  # a misspelt hop, whatever the statistic: exit 2
        reading = _Reading(paths, since, until, timezone, include, exclude, cache_dir)
        # The findings are the pipeline's, whatever the gates: a --p99 gate once became the
        # SLO threshold too, so a looser p99 made `--max slo_breach=0` pass over a breach.
        analysis, events, model = _analyze(reading, model, grace, require_events=True)
        data = _report_dict(analysis, events, model)
    results = _gates.evaluate(data, gates)
    for result in results:
        mark = "PASS" if result.ok else "FAIL"
        _say(printable(f"{mark}  {result.gate.name}: {result.detail}"))
        for example in result.examples:
            _say(f"      {printable(example)}")
    if junit is not None:
        _emit(_gates.junit_xml(results), junit, "--junit")
    if os.environ.get("GITHUB_ACTIONS") == "true":
        for line in _gates.github_annotations(results):
            _say(line)
    notes = (
        # what the reading skipped or guessed: a gate passed over half a log says so
        *(line for line, _style in input_notes(data.get("inputs", {}))),
        *_in_flight_notes(data, gates, _grace(grace, model), model.roles.get("send")),
        _gap_note(data, gates),
        _unnamed_note(data, gates),
        f"note: {said}" if (said := restarts_note(data.get("summary", {}))) else "",
        f"note: {said}" if (said := copies_note(data.get("summary", {}))) else "",
    )
    for note in notes:
        if note:
            _say(printable(note))
    failed = sum(not r.ok for r in results)
    _say(f"{len(results) - failed} passed, {failed} failed")
    raise typer.Exit(1 if failed else 0)


#: What an in-flight finding cut by a time window says (tracekit.analyzers._drops).
_CUT: Final = "outside the time window read"


def _in_flight_notes(
    data: Mapping[str, Any], gates: Sequence[Any], grace: timedelta, send: str | None
) -> list[str]:
    """A drop gate cannot see what is still in flight at the end of the logs (DESIGN: undecided
    inside the grace window): say how many, and how to gate on them, unless a gate already does.
    A message begun before the logs (in flight at its send) is said apart: `--grace 0s` does
    not decide it, where the logs begin does (review 16f)."""
    count = int(data.get("summary", {}).get("in_flight", 0))
    if not count or any(g.kind == "max" and g.target == "in_flight" for g in gates):
        return []
    flights = [f for f in data.get("findings", ()) if f.get("kind") == "in_flight"]
    # (a path a time window cut: its next hop is among the events --since/--until left out)
    cut = sum(1 for f in flights if _CUT in str(f.get("detail", "")))
    early = sum(
        1
        for f in flights
        if send is not None and f.get("stage") == send and _CUT not in str(f.get("detail", ""))
    )
    notes = []
    if cut:
        what = "in_flight finding" if cut == 1 else "in_flight findings"
        notes.append(
            f"note: {cut} {what} cut by --since/--until (the next hop is outside the time "
            "window read), not counted as drops: gate them with --max in_flight=0"
        )
    if count > early + cut:
        n = count - early - cut
        seconds = grace.total_seconds()
        window = f"{seconds:g} s" if seconds >= 1 else f"{seconds * 1000:g} ms"
        what = "in_flight finding" if n == 1 else "in_flight findings"
        drop = "a drop" if n == 1 else "drops"
        notes.append(
            f"note: {n} {what} (undecided: its next hop may still come within the {window} "
            f"grace window at the end of the logs), not counted as {drop}: gate it with "
            "--max in_flight=0, or decide it with --grace 0s"
        )
    if early:
        what, its = (
            ("finding for a message", "its") if early == 1 else ("findings for messages", "their")
        )
        notes.append(
            f"note: {early} in_flight {what} begun before the logs ({its} {send} not logged, "
            f"{its} first event at their start), not counted as unexpected: gate it with "
            "--max in_flight=0"
        )
    return notes


def _gap_note(data: Mapping[str, Any], gates: Sequence[Any]) -> str:
    """A drop gate does not count a drop inside a log gap (DESIGN: indeterminate, events are
    missing from the logs: lost by the logging, or before a log began)."""
    n = int(data.get("summary", {}).get("log_gap", 0))
    what = "log_gap finding" if n == 1 else "log_gap findings"
    said = (
        f"{n} {what}: events are missing from the logs (lost by the logging, or before a log "
        "began), and a drop where they are missing is"
    )
    # a gap holding more paths than it lost events says how many of them are drops at least
    surely = sum(
        int(m.group(1))
        for f in data.get("findings", ())
        if f.get("kind") == "log_gap" and (m := _SURE_DROPS.search(str(f.get("detail") or "")))
    )
    more = f" (though at least {surely} of the paths they hold are drops)" if surely else ""
    return _not_drops(n, "log_gap", gates, f"{said} indeterminate{more}")


#: What a log_gap says of the paths it holds where they need more lines than it lost.
_SURE_DROPS: Final = re.compile(r"at least (\d+) of them are drops\)")


def _unnamed_note(data: Mapping[str, Any], gates: Sequence[Any]) -> str:
    """A drop gate does not count a path that lines naming no recipient may complete (their
    `unexpected` finding says so; ``summary.unnamed_paths`` counts the paths)."""
    n = int(data.get("summary", {}).get("unnamed_paths", 0))
    what = (
        "path that lines naming no recipient" if n == 1 else "paths that lines naming no recipient"
    )
    said = f"{n} {what} (no actor) may complete {'is' if n == 1 else 'are'} undecided"
    return _not_drops(n, "unexpected", gates, said)


def _not_drops(count: int, kind: str, gates: Sequence[Any], said: str) -> str:
    """What ``count`` findings of ``kind`` stand for is not counted by a drop gate: ``said``
    where a gate counts drops, unless one counts ``kind``."""
    targets = {g.target for g in gates if g.kind == "max"}
    if not count or "drop" not in targets or kind in targets:
        return ""
    return f"note: {said}, not counted as a drop: gate them with --max {kind}=0"


@app.command()
def trace(
    trace_id: Annotated[
        str,
        typer.Argument(
            help="Trace id (32 hex) or client message UUID, or the first hex digits of one in "
            "the logs (as the findings table shows them)."
        ),
    ],
    paths: Paths,
    pipeline: PipelineOpt = None,
    grace: GraceOpt = None,
    timezone: TimezoneOpt = None,
    cache_dir: CacheOpt = None,
) -> None:
    """One message's path as a timeline: every hop per recipient, with how often it was
    logged (a duplicate marked) and the missing hop marked (missing: a drop; tried and failed:
    a drop where the hop's line is at an error level; took it off: a removal after the hop;
    in flight: the logs end inside the grace window; undecided: a log gap or lines naming no
    recipient may hold it; not reached: after it).

    Example: `tracekit trace 4bf92f3577b34da6a3ce929d0e0e4736 logs/`
    """
    from tracekit._context import canonical_trace_id

    with _translated_errors():
        tid = canonical_trace_id(trace_id)
        prefix = trace_id.strip().lower()
        if tid is None and not (_MIN_PREFIX <= len(prefix) < 32 and _is_hex(prefix)):
            _fail(
                f"not a trace id: {trace_id!r} (32 hex digits, a UUID, or the first "
                f"{_MIN_PREFIX} or more hex digits of a trace id in the logs)"
            )
        from tracekit.analyzers import timeline
        from tracekit.cli._render import render_timeline
        from tracekit.cli._timeline import timeline_rows

        model = _load_pipeline(pipeline)
        model = replace(model, grace=_grace(grace, model))
        events, _inputs = _collect(_Reading(paths, timezone=timezone, cache_dir=cache_dir))
        # (review 21b: the findings table shows 12 digits, which were refused here)
        tid = tid or _by_prefix(events, prefix)
        rows = timeline_rows(timeline(events, tid, pipeline=model))
        if not rows:
            _fail(f"trace {tid} does not occur in the given logs")
        render_timeline(tid, rows, _stdout())


#: The fewest hex digits taken as the start of a trace id (a shorter one names too many).
_MIN_PREFIX: Final = 6
_SHOWN_IDS: Final = 5


def _is_hex(text: str) -> bool:
    return all(c in "0123456789abcdef" for c in text)


def _by_prefix(events: Any, prefix: str) -> str:
    """The one trace id of ``events`` that begins with ``prefix``; else bad usage."""
    import polars as pl

    ids = (
        events.select(pl.col("trace_id").cast(pl.String))
        .filter(pl.col("trace_id").str.starts_with(prefix))
        .unique()
        .sort("trace_id")
        .head(_SHOWN_IDS + 1)
        .collect()
        .get_column("trace_id")
        .to_list()
    )
    if not ids:
        _fail(f"no trace id in the given logs begins with {prefix}")
    if len(ids) > 1:
        more = ", ..." if len(ids) > _SHOWN_IDS else ""
        _fail(
            f"{prefix} begins more than one trace id in the given logs "
            f"({', '.join(ids[:_SHOWN_IDS])}{more}): give more of its digits"
        )
    return str(ids[0])


@app.command()
def watch(
    path: Annotated[list[Path], typer.Argument(help="Log files or directories to follow.")],
    pipeline: PipelineOpt = None,
    grace: GraceOpt = None,
    interval: Annotated[
        str, typer.Option("--interval", help="How often to look again (e.g. 500ms).")
    ] = "1s",
    duration: Annotated[
        str | None, typer.Option("--duration", help="Stop after this long (default: never).")
    ] = None,
    timezone: TimezoneOpt = None,
) -> None:
    """Follow growing (and rotated) logs; print each finding once it is decided.

    Example: `tracekit watch logs/ --grace 2s`
    """
    from tracekit.cli._watch import watch_paths

    with _translated_errors():
        every = _duration(interval, "interval").total_seconds()
        stop = _duration(duration, "duration").total_seconds() if duration else None
        for path_ in path:
            if not path_.exists():
                _fail(f"no such file or directory: {path_}")
        if timezone is not None:
            # checked once here (collect checks the zone before reading anything): each round
            # would only skip itself on a bad zone, forever
            from tracekit.collectors import collect

            collect([], timezone=timezone)
        model = _load_pipeline(pipeline)
        watch_paths(
            path,
            model,
            grace=_grace(grace, model),
            interval=every,
            stop_after=stop,
            out=_stdout(),
            status=_stderr(),
            timezone=timezone,
        )


@app.command()
def collect(
    out: Annotated[
        Path, typer.Option("--out", "-o", help="JSON-lines file the received events go to.")
    ] = Path("otlp-events.jsonl"),
    host: Annotated[str, typer.Option("--host", help="Address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (OTLP/HTTP default 4318).")] = 4318,
) -> None:
    """Receive OTLP/HTTP (/v1/traces, /v1/logs; protobuf or JSON) and append events as JSON lines.

    Example: `tracekit collect --out logs/otlp.jsonl --port 4318`
    """
    from tracekit.collectors import otlp_receiver

    if not 1 <= port <= 65535:
        _fail(f"--port {port}: use a port from 1 to 65535")
    with _translated_errors():
        otlp_receiver.serve(
            host=host,
            port=port,
            out=out,
            on_ready=lambda rx: typer.echo(
                f"tracekit collect: listening on {rx.url} -> {out}", err=True
            ),
            on_stop=lambda rx: typer.echo(_received(rx, out), err=True),
        )


def _received(rx: Any, out: Path) -> str:
    """What a receiver took and left, when it stops: a malformed span or a refused request
    said only in its HTTP reply reached nobody who reads the logs (review 19a)."""
    from tracekit.cli._safe import printable

    said = [f"{rx.events} event(s) from {rx.requests} request(s) -> {printable(out)}"]
    said += [f"{rx.rejected} request(s) refused"] if rx.rejected else []
    if rx.malformed:
        first = f" (first: {printable(rx.examples[0])})" if rx.examples else ""
        said.append(f"{rx.malformed} span(s) or record(s) unreadable{first}")
    said += [f"{rx.ignored} span(s) or record(s) of no tracekit stage"] if rx.ignored else []
    return "tracekit collect: stopped: " + "; ".join(said)


@app.command()
def demo(
    scenario: Annotated[
        Scenario, typer.Option("--scenario", help="What the clients do.")
    ] = Scenario.race_bug,
    users: Annotated[int, typer.Option("--users", min=2, help="Chat users.")] = 3,
    messages: Annotated[int, typer.Option("--messages", min=1, help="Messages to send.")] = 20,
    out: Annotated[Path, typer.Option("--out", help="Where the logs go.")] = Path("tracekit-demo"),
    seed: Annotated[int, typer.Option("--seed", help="Random seed.")] = 0,
    format: Annotated[
        Format,
        typer.Option(
            "--format",
            "-f",
            help="Output format (stdout); table also compares the findings with the scenario's "
            "ground truth.",
        ),
    ] = Format.table,
) -> None:
    """Run the reference chat system on 127.0.0.1, then analyze what it logged.

    Example: `tracekit demo --scenario race-bug --users 3 --messages 20`
    """
    from rich.markup import escape

    from tracekit.chat.demo import run_demo
    from tracekit.cli._safe import printable, shell_path

    with _translated_errors():
        status = _stderr()
        status.print(
            f"[bold]tracekit demo[/bold]: scenario {scenario.value}, {users} users, "
            f"{messages} messages, logs in {escape(printable(out))}/"
        )
        run = run_demo(scenario=scenario.value, users=users, messages=messages, out=out, seed=seed)
        # The run's logs go on `tail_ms` after the last delivery: a grace window under that
        # decides every drop instead of leaving it in flight.
        grace = f"{max(run.tail_ms // 2, 100)}ms"
        analysis, events, model = _analyze(_Reading(run.logs), None, grace)
        data = _report_dict(analysis, events, model)
        _write_report(format, data, analysis, events, model, None)
        if format is Format.table:
            _explain_demo(run, data, status)
            # the next thing a reader does: the same logs through `analyze`, whose default
            # grace window (5 s) is longer than the run went on, so its drops read in flight
            logs = " ".join(shell_path(log) for log in run.logs)
            status.print(
                f"Analyze these logs again: tracekit analyze {escape(logs)} --grace {grace}",
                highlight=False,
                soft_wrap=True,
            )


def _finding_key(
    kind: str, trace_id: Any, recipient: Any, stage: Any, last_seen: Any
) -> tuple[Any, ...]:
    """What a demo finding is compared on. A race is one (message, recipient) that arrived
    during a history load: its hops are the analyzer's choice, the truth names none."""
    if kind == "race":
        return (kind, trace_id, recipient, None, None)
    return (kind, trace_id, recipient, stage, last_seen)


def _explain_demo(run: Any, data: Mapping[str, Any], console: Console) -> None:
    """Compare what the scenario knows it caused (its expected findings and the races its
    clients saw) with every finding tracekit reported, whatever its kind."""
    from rich.markup import escape

    from tracekit.cli._safe import printable

    expected = {
        _finding_key(e.kind, e.trace_id, e.recipient, e.stage, e.last_seen)
        for e in run.expected_findings
    }
    races = {
        _finding_key("race", r["trace_id"], r["recipient"], None, None) for r in run.truth.races
    }
    expected |= races
    found = {
        _finding_key(
            f["kind"], f.get("trace_id"), f.get("recipient"), f.get("stage"), f.get("last_seen")
        )
        for f in data["findings"]
    }
    summary = data["summary"]
    causes = Counter(e.cause for e in run.lost)
    how = ", ".join(f"{n} {cause}" for cause, n in sorted(causes.items()))
    console.print(
        f"scenario {run.scenario}: {len(run.lost)} deliveries lost by the app"
        f"{f' ({escape(how)})' if how else ''}, "
        f"{len(expected)} findings expected ({len(races)} race(s)); tracekit: "
        f"{summary['drop']} drop(s), {summary['race']} race(s), "
        f"{summary['duplicate']} duplicate(s), {len(data['findings'])} finding(s) in all."
    )
    missing, extra = expected - found, found - expected
    # latency findings the scenario did not cause: this machine's own stalls, real but
    # outside what the ground truth can know (on a busy 2-core box, half the runs of the
    # default size have some); said apart, so they do not read as the scenario's mismatch
    timing = {k for k in extra if k[0] in ("latency_outlier", "slo_breach")}
    if not missing and extra == timing:
        n = len(expected) - len(races)
        what = "finding" if n == 1 else "findings"
        also = f" and the {len(races)} race{'' if len(races) == 1 else 's'}" if races else ""
        console.print(
            f"[green]tracekit reported exactly the {n} expected {what}{also}"
            f"{'' if expected else ' (none)'}.[/green] Ground truth: "
            f"{escape(printable(run.truth_path))}"
        )
        if timing:
            console.print(
                f"[yellow]It also reported {len(timing)} latency finding(s) the scenario did not "
                "cause: this machine's own timing (a busy CPU, a slow disk), real but not in the "
                "ground truth.[/yellow]"
            )
        return
    console.print(
        f"[red]mismatch: {len(missing)} expected finding(s) not reported, "
        f"{len(extra)} reported but not expected.[/red] Ground truth: "
        f"{escape(printable(run.truth_path))}"
    )
    shown = 10
    for label, keys in (("expected, not reported", missing), ("reported, not expected", extra)):
        rows = sorted(keys, key=lambda k: tuple("" if x is None else str(x) for x in k))
        for kind, trace_id, recipient, stage, last_seen in rows[:shown]:
            where = f" at {stage}" if stage else ""
            where += f" (last seen {last_seen})" if last_seen else ""
            console.print(
                escape(printable(f"  {label}: {kind} {trace_id} for {recipient}{where}")),
                highlight=False,
            )
        if len(rows) > shown:
            console.print(f"  ... and {len(rows) - shown} more {label}")
    if any(k[0] in ("latency_outlier", "slo_breach") for k in extra):
        console.print(
            "  (a latency finding the scenario did not cause is this machine's own timing,"
            " e.g. a busy CPU or a slow disk: it is real, the ground truth cannot know it)"
        )
