"""Review 21a: custom pipeline models (an order service, an ETL job, a renamed chat)."""

from __future__ import annotations

import json
import textwrap
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from tracekit.analyzers import analyze, default_pipeline, load_pipeline
from tracekit.analyzers._pipeline import Hop, Pipeline, parse_pipeline
from tracekit.cli._app import app
from tracekit.errors import PipelineError

PIPE = default_pipeline()
ETL = """
[pipeline]
name = "etl"

[roles]
send = "INGEST.read"
persist = "STORE.put"

[[hops]]
id = "INGEST.read"

[[hops]]
id = "PARSE.ok"
after = ["INGEST.read"]
emitter = "server"

[[hops]]
id = "STORE.put"
after = ["PARSE.ok"]
emitter = "server"
"""


def _hops(*hops: dict[str, object]) -> dict[str, object]:
    return {"roles": {"send": "A.send"}, "hops": [{"id": "A.send"}, *hops]}


def test_a_hop_named_twice_in_after_is_refused() -> None:
    # (every latency of that edge was counted twice: each outlier said twice, a gate failed)
    with pytest.raises(PipelineError) as err:
        parse_pipeline(_hops({"id": "B.recv", "after": ["A.send", "A.send"]}))
    assert str(err.value) == (
        "invalid pipeline model: hop 'B.recv': 'after' names 'A.send' more than once"
    )


def test_a_pipeline_built_in_python_gets_the_checks_a_file_gets() -> None:
    # (it failed inside the analysis: KeyError 'send', or tuple.index's ValueError)
    send = Hop("A.send", "A", "send", "message", (), "sender")
    show = Hop("B.show", "B", "show", "recipient", ("A.send",), "recipient", "actor")
    with pytest.raises(
        PipelineError, match=r"^invalid pipeline model: \[roles\]: missing required role 'send'$"
    ):
        Pipeline("x", (send, show), {})
    with pytest.raises(
        PipelineError, match=r"^invalid pipeline model: \[roles\] send: names unknown hop 'X.y'$"
    ):
        Pipeline("x", (send, show), {"send": "X.y"})
    with pytest.raises(PipelineError, match=r"stage 'B' and action 'shown' differ from its id"):
        Pipeline("x", (send, replace(show, action="shown")), {"send": "A.send"})
    with pytest.raises(TypeError, match=r"^grace: a datetime.timedelta, got int$"):
        replace(PIPE, grace=5)  # type: ignore[arg-type]
    # given out of order, its hops are put in their 'after' order, as a file's are
    assert Pipeline("x", (show, send), {"send": "A.send"}).ids == ("A.send", "B.show")
    # and a valid one is as parsed
    assert replace(PIPE, grace=timedelta(seconds=1)).hops == PIPE.hops


def test_lists_a_model_reads_none_of_are_said_and_the_drops_name_the_model(
    history: Any,
) -> None:
    # No broadcast role: the lists on WS-BROADCAST.start were read as none, every member
    # of the conversation expected, and the drops sent the user to logs that had the lists.
    t1 = history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u3", ["u1"], t=100)
    history.tail()
    p = replace(PIPE, roles={k: v for k, v in PIPE.roles.items() if k != "broadcast"})
    report = analyze(history.frame(), pipeline=p)
    assert history.kinds(report.findings) == [
        ("drop", t1, "u3", "WS-BROADCAST.deliver", "WS-BROADCAST.start"),
        ("drop", t2, "u2", "WS-BROADCAST.deliver", "WS-BROADCAST.start"),
    ]
    assert all(
        d.endswith(
            "expected from conversation membership: the pipeline names no 'broadcast' role "
            "to read a recipients list from"
        )
        for d in report.findings.get_column("detail")
    )
    assert report.inputs["warnings"] == [
        "2 line(s) carry a recipients list (the first at server-1.jsonl:2), but the pipeline "
        "'chat' names no 'broadcast' role to read them from: the expected recipients were "
        "taken from conversation membership (name the hop that lists them in [roles] broadcast)"
    ]
    # the model that reads them: nothing to say, nothing found
    assert analyze(history.frame()).findings.is_empty()


def test_a_race_names_the_model_s_fetch_stage(history: Any) -> None:
    p = replace(PIPE, roles={**PIPE.roles, "fetch_start": "SYNC.begin", "fetch_end": "SYNC.end"})
    history.ev(1000, "SYNC.begin", "client-u2", "u2", conv_id="c1")
    t2 = history.message(2, "u1", ["u2"], t=1005)
    history.ev(1100, "SYNC.end", "client-u2", "u2", conv_id="c1")
    history.tail()
    (race,) = analyze(history.frame(), pipeline=p).findings.rows(named=True)
    assert (race["kind"], race["trace_id"], race["recipient"]) == ("race", t2, "u2")
    assert race["detail"] == (
        "WS-RECV.receive for conversation c1 arrived on client-u2 while a SYNC history fetch "
        "of it was in flight; the message then reached CTRL.add"
    )


# -- a model of message hops only (an ETL job): no recipients, nothing delivered ------------


def _etl_logs(tmp_path: Path) -> tuple[Path, Path]:
    model = tmp_path / "etl.toml"
    model.write_text(textwrap.dedent(ETL))
    log = tmp_path / "etl.jsonl"
    lines = []
    for n in range(3):
        for k, (hop, src) in enumerate(
            (("INGEST.read", "reader"), ("PARSE.ok", "etl-1"), ("STORE.put", "etl-1"))
        ):
            stage, action = hop.split(".")
            lines.append(
                {
                    "timestamp": f"2026-11-25T10:00:0{n}.{k:03d}Z",
                    "stage": stage,
                    "action": action,
                    "trace_id": f"{n + 1:032x}",
                    "actor": f"job-{n}",
                    "conv_id": "batch-1",
                    "source": src,
                }
            )
    log.write_text("".join(json.dumps(line) + "\n" for line in lines))
    return model, log


def test_a_model_of_message_hops_takes_no_recipients_from_anywhere(tmp_path: Path) -> None:
    # (it said every message's recipients came from conversation membership)
    model, log = _etl_logs(tmp_path)
    from tracekit.collectors import collect

    report = analyze(collect([str(log)]).events, pipeline=load_pipeline(model))
    assert report.findings.is_empty()
    assert report.summary["recipients_from"] == {"broadcast": 0, "membership": 0}
    out = CliRunner().invoke(app, ["analyze", str(log), "--pipeline", str(model)]).stdout
    assert "membership" not in out


@pytest.mark.parametrize(
    ("gate", "said"),
    [
        (
            ["--min-delivered", "99%"],
            "--min-delivered: the pipeline 'etl' names no 'final' role (nothing is delivered); "
            "gate its paths with --max drop=0",
        ),
        (
            ["--p99", "end_to_end=1s"],
            "--p99 end_to_end: the pipeline 'etl' names no 'final' role (no end to end); use a "
            "hop FROM->TO: INGEST.read->PARSE.ok, PARSE.ok->STORE.put",
        ),
    ],
)
def test_a_gate_a_model_without_a_final_role_can_never_check_is_bad_usage(
    tmp_path: Path, gate: list[str], said: str
) -> None:
    # (it failed on every run: "no other member of the conversation seen", exit 1)
    model, log = _etl_logs(tmp_path)
    result = CliRunner().invoke(app, ["check", str(log), "--pipeline", str(model), *gate])
    assert (result.exit_code, result.stdout) == (2, "")
    assert result.stderr == f"tracekit: error: {said}\n"


def test_a_pipeline_option_naming_a_directory_says_so(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["analyze", str(tmp_path), "--pipeline", str(tmp_path)])
    assert result.exit_code == 2
    assert result.stderr == (
        f"tracekit: error: pipeline model {tmp_path} is a directory, not a TOML file\n"
    )


def test_a_python_model_s_slo_keys_are_python_s() -> None:
    # (review 21c: a file's 'end_to_end_ms' passed and was never read; end_to_end without a
    # final role was refused in the file's words)
    with pytest.raises(
        PipelineError, match=r"slo\['end_to_end_ms'\]: unknown key \(use 'end_to_end'"
    ):
        replace(PIPE, slo={"end_to_end_ms": timedelta(milliseconds=100)})
    no_final = replace(
        PIPE,
        roles={k: v for k, v in PIPE.roles.items() if k not in ("final", "remove", "order")},
        slo={},
    )
    with pytest.raises(PipelineError, match=r"slo\['end_to_end'\]: needs a 'final' role"):
        replace(no_final, slo={"end_to_end": timedelta(milliseconds=100)})


# -- review 21d: logs cut mid-traffic -------------------------------------------------------


def test_a_send_not_yet_written_when_the_logs_end_is_in_flight(history: Any) -> None:
    # A stage's line is written at its end: the sender's CTRL.send is still open while its
    # request, the persist and the broadcast are already in the logs. Cut there, every such
    # message read as unexpected ("CTRL.send never seen").
    history.message(1, "u1", ["u2"], t=0)
    t2 = history.message(2, "u1", ["u2"], t=10_000, skip_message=["CTRL.send"])
    found = analyze(history.frame()).findings
    assert history.kinds(found) == [("in_flight", t2, None, "CTRL.send", "REST.request")]
    # (the logs end with u2's CTRL.add, its clock bounded from above only: as early as it
    # may be, 5 ms earlier, review 26a)
    assert found.row(0, named=True)["detail"] == (
        "CTRL.send not seen yet: the message's first event (REST.request) comes 30.0 ms before "
        "the logs end, within the 5000 ms grace window (a stage's line is written when it ends)"
    )
    # the logs going on past the grace window, it is unexpected as before
    history.tail()
    assert [k[0] for k in history.kinds(analyze(history.frame()).findings)] == ["unexpected"]


def test_the_plugin_s_refusal_names_the_gate_as_written(tmp_path: Path) -> None:
    # (review 21c: it named the CLI's --min-delivered and --max, which the user never wrote)
    from tracekit.pytest_plugin import _parse_gates

    model, _ = _etl_logs(tmp_path)
    with pytest.raises(ValueError) as err:
        _parse_gates("drop=0,min_delivered=99%", load_pipeline(model))
    assert str(err.value) == (
        "min_delivered=99%: the pipeline 'etl' names no 'final' role (nothing is delivered); "
        "gate its paths with drop=0"
    )
    # a latency gate too (session 22: it named the CLI's --p99)
    for gate in ("p99:end_to_end=500ms", "max:end_to_end=2s"):
        with pytest.raises(ValueError) as err:
            _parse_gates(f"drop=0,{gate}", load_pipeline(model))
        assert str(err.value).startswith(
            f"{gate}: the pipeline 'etl' names no 'final' role (no end to end); use a hop"
        )
