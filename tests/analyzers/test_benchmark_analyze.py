"""Smoke run of benchmarks/analyze.py (slow: it spawns several interpreters)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "benchmarks" / "analyze.py"


@pytest.mark.slow
@pytest.mark.parametrize("reader", ["collectors", "own"])
def test_benchmark_runs_and_finds_every_injected_fault(tmp_path, reader):
    out = subprocess.run(
        [
            sys.executable,
            str(BENCH),
            "--events",
            "20000",
            "--dir",
            str(tmp_path),
            "--json",
            "--reader",
            reader,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=300,
    )
    result = json.loads(out.stdout)
    assert result["events"] > 15000
    assert result["findings"] == result["injected_faults"]
    # not only as many: the very findings injected (kind, trace, recipient, stage, last seen)
    assert result["findings_are_the_truth"] is True
    # the second analysis reads the collectors' cache and finds the same
    assert result["parquet_cached"] is True
    assert result["parquet_findings"] == result["findings"]
    for key in ("raw_s", "duckdb_s", "analyze_s", "parquet_analyze_s"):
        assert result[key] > 0
