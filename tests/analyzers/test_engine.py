"""The polars engine an analysis runs its queries on: chosen for its size, the same report on
either."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest

import tracekit.analyzers._paths as paths_mod
from tracekit.analyzers import analyze
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
