"""``tracekit trace`` takes a trace id as the findings table shows it (review 21b): its first
digits, as well as any way the instrumentation reads one."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cli_logs import T_OK
from typer.testing import CliRunner

from tracekit.cli._app import app


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize(
    "given",
    [
        T_OK[:12],  # the findings table's
        T_OK[:6].upper(),
        f" {{{T_OK[:8]}-{T_OK[8:12]}-{T_OK[12:16]}-{T_OK[16:20]}-{T_OK[20:]}}} ",
        f"urn:uuid:{T_OK[:8]}-{T_OK[8:12]}-{T_OK[12:16]}-{T_OK[16:20]}-{T_OK[20:]}",
    ],
)
def test_a_trace_id_is_taken_as_the_table_shows_it_or_as_instrumentation_reads_it(
    logs: Path, given: str
) -> None:
    code, out, err = run("trace", given, str(logs))
    assert (code, err) == (0, "")
    assert out.splitlines()[0].strip() == f"trace {T_OK}"


def test_digits_no_trace_id_begins_with_are_said(logs: Path) -> None:
    code, out, err = run("trace", "abcdef", str(logs))
    assert (code, out, err) == (
        2,
        "",
        "tracekit: error: no trace id in the given logs begins with abcdef\n",
    )


def test_digits_that_begin_several_trace_ids_name_them(tmp_path: Path) -> None:
    ids = [f"abcdef{n:x}{0:025x}" for n in range(1, 8)]
    log = tmp_path / "c.jsonl"
    log.write_text(
        "".join(
            json.dumps(
                {
                    "timestamp": f"2026-11-25T10:00:0{n}Z",
                    "stage": "CTRL",
                    "action": "send",
                    "trace_id": t,
                    "actor": "u1",
                    "source": "c",
                }
            )
            + "\n"
            for n, t in enumerate(ids)
        )
    )
    code, out, err = run("trace", "abcdef", str(log))
    assert (code, out) == (2, "")
    assert err == (
        f"tracekit: error: abcdef begins more than one trace id in the given logs ({', '.join(ids[:5])}, ...): "
        "give more of its digits\n"
    )
    code, out, _ = run("trace", "abcdef7", str(log))  # one more digit: one
    assert code == 0 and out.splitlines()[0].strip() == f"trace {ids[6]}"


@pytest.mark.parametrize("given", ["4bf92", "xyz", "4bf92f3577b34da6a3ce929d0e0e4736ff", ""])
def test_what_names_no_trace_id_is_bad_usage(logs: Path, given: str) -> None:
    code, out, err = run("trace", given, str(logs))
    assert (code, out) == (2, "")
    assert err == (
        f"tracekit: error: not a trace id: {given!r} (32 hex digits, a UUID, or the first 6 or "
        "more hex digits of a trace id in the logs)\n"
    )
