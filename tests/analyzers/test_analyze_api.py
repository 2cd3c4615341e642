"""The public API: every per-kind function is LazyFrame -> LazyFrame in the findings schema."""

from __future__ import annotations

import polars as pl
import pytest

import tracekit.analyzers as analyzers
from tracekit.analyzers import FINDING_SCHEMA, KINDS, analyze

FINDERS = [name for name in analyzers.__all__ if name.startswith("find_")]


def test_all_is_sorted_and_complete():
    assert analyzers.__all__ == sorted(analyzers.__all__, key=lambda s: (not s.isupper(), s))
    assert {"analyze", "Report", "Pipeline", "default_pipeline", "load_pipeline"} <= set(
        analyzers.__all__
    )


@pytest.mark.parametrize("name", FINDERS)
def test_finders_are_lazy_and_schema_true(history, name):
    history.message(1, "u1", ["u2"], t=0, stop={"u2": "CTRL.add"})
    history.tail()
    out = getattr(analyzers, name)(history.frame())
    assert isinstance(out, pl.LazyFrame)
    assert out.collect_schema() == FINDING_SCHEMA
    assert set(out.collect()["kind"].to_list()) <= set(KINDS)


def test_finders_agree_with_analyze(history):
    history.message(1, "u1", ["u2", "u3"], t=0, stop={"u2": "CTRL.add"})
    history.ev(30, "CTRL.add", "client-u3", "u3", trace=history.tid(1), conv_id="c1")
    history.seq["server-1"] += 2
    history.message(2, "u1", ["u2", "u3"], t=1000)
    history.tail()
    report = analyze(history.frame())
    parts = pl.concat([getattr(analyzers, n)(history.frame()).collect() for n in FINDERS])
    key = ["kind", "trace_id", "recipient", "stage", "source"]
    assert sorted(parts.select(key).rows(), key=repr) == sorted(
        report.findings.select(key).rows(), key=repr
    )
    assert report.summary["drop"] == 1 and report.summary["duplicate"] == 1
    assert report.summary["log_gap"] == 1
