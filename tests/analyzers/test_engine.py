"""The polars engine an analysis runs its queries on: chosen for its size, the same report on
either."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import polars as pl
import pytest

import tracekit.analyzers._paths as paths_mod
from tracekit.analyzers import analyze, timeline
from tracekit.analyzers._paths import engine, engine_for, in_context
from tracekit.synth import generate

FAULTS = [
    "drop", "duplicate", "msg_id", "reorder", "slow", "seq_gap", "log_loss", "race",
    "race_drop", "race_overwrite", "unexpected", "orphan", "skew",
]  # fmt: skip


def test_small_analyses_run_in_memory_large_ones_on_polars_default() -> None:
    # the streaming engine sets up each query in 0.15-0.5 ms: most of a small query's time
    assert engine() == "auto"  # outside an analysis: polars' own choice
    with engine_for(1_000_000):
        assert engine() == "in-memory"
        with ThreadPoolExecutor(1) as pool:
            assert pool.submit(in_context(engine)).result() == "in-memory"
            assert pool.submit(engine).result() == "auto"  # a thread not given the context
        with engine_for(paths_mod._STREAMED):
            assert engine() == "auto"
        assert engine() == "in-memory"
    assert engine() == "auto"


@pytest.mark.parametrize("seed", [3, 4])
def test_either_engine_gives_the_same_report(monkeypatch, seed: int) -> None:
    synth = generate(
        seed,
        messages=240,
        users=30,
        conversations=6,
        max_members=6,
        second_devices=0.1,
        history_loads=0.3,
        faults=FAULTS,
    )
    small = analyze(synth.frame()).to_dict()
    monkeypatch.setattr(paths_mod, "_STREAMED", 0)  # every analysis on the streaming engine
    assert analyze(synth.frame()).to_dict() == small
    assert len(small["findings"]) == len(synth.truth)


@pytest.mark.parametrize("recipients", [["u2"], ["u2", "u3"], ["u2", "u3", "u4"]])
def test_a_time_on_a_rounding_boundary_reads_the_same_on_either_engine(
    history, monkeypatch, recipients: list[str]
) -> None:
    # each recipient's app restarts exactly 1.35 ms after its receive: 1.4 ms, whichever
    # engine and however many rows (a float division's last bit read 1.3 or 1.4, review 14c)
    for u in recipients:
        history.ev(0, "TRACEKIT.heartbeat", f"client-{u}", u)
    history.message(1, "u1", recipients, t=10)
    history.message(2, "u1", recipients, t=1000, stop=dict.fromkeys(recipients, "REPO.add"))
    for k, u in enumerate(recipients):
        history.seq[f"client-{u}"] = 0
        history.ev(1030 + k * 0.5 + 1.35, "TRACEKIT.heartbeat", f"client-{u}", u)
    history.tail()
    details = list(analyze(history.frame()).findings["detail"])
    monkeypatch.setattr(paths_mod, "_STREAMED", 0)
    assert list(analyze(history.frame()).findings["detail"]) == details
    assert len(details) == len(recipients)
    assert all("restarted 1.4 ms after it" in d for d in details)


def test_a_timeline_runs_its_queries_on_its_analysis_engine(history, monkeypatch) -> None:
    t1 = history.message(1, "u1", ["u2"], t=0, stop={"u2": "CTRL.add"})
    history.tail()
    frame = history.frame().collect()
    engines: list[str] = []
    collect = pl.LazyFrame.collect

    def spy(self: pl.LazyFrame, *args: object, **kwargs: object) -> pl.DataFrame:
        engines.append(str(kwargs.get("engine", "auto")))
        return collect(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pl.LazyFrame, "collect", spy)
    rows = timeline(frame, t1)
    # (the first query reads the input, whose size is not known before it)
    assert engines[0] == "auto"
    assert set(engines[1:]) == {"in-memory"}
    assert len(engines) > 20
    assert rows.filter(pl.col("stage_action") == "CTRL.add")["status"].to_list() == ["dropped"]
