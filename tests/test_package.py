"""The installable package: one top-level name, and a light ``import tracekit``."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_import_tracekit_stays_light() -> None:
    code = (
        "import sys, json, tracekit\n"
        "tracekit.stage('CTRL', 'send'); tracekit.emit('CTRL', 'send')\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    heavy = {"polars", "typer", "fastapi", "uvicorn", "starlette", "opentelemetry", "structlog"}
    assert loaded & heavy == set()


def test_wheel_has_only_the_tracekit_top_level_package(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(tmp_path)],
        cwd=ROOT,
        check=True,
        capture_output=True,
        timeout=300,
    )
    (wheel,) = tmp_path.glob("tracekit-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    top = {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")}
    assert top == {"tracekit"}
    assert "tracekit/collectors/__init__.py" in names
    assert "tracekit/analyzers/__init__.py" in names
    assert "tracekit/py.typed" in names
    # the compiled parts, the JSON lines scanner and the path builder's pass (optional for
    # users; CI builds them)
    for part in ("tracekit/collectors/_jsonscan.", "tracekit/analyzers/_passes."):
        assert any(n.startswith(part) and n.endswith(".so") for n in names), part


def test_cli_start_up_path_stays_light() -> None:
    code = (
        "import sys, json\n"
        "from typer.testing import CliRunner\n"
        "from tracekit.cli._app import app\n"
        "CliRunner().invoke(app, ['analyze', '--help'])\n"
        "print(json.dumps(sorted(m.split('.')[0] for m in sys.modules)))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    loaded = set(json.loads(out.stdout))
    assert loaded & {"polars", "fastapi", "uvicorn", "opentelemetry", "structlog"} == set()
