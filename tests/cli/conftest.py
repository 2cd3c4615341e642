from __future__ import annotations

from pathlib import Path

import pytest
from cli_logs import write_logs


@pytest.fixture
def logs(tmp_path: Path) -> Path:
    return write_logs(tmp_path / "logs")
