"""A fake finished run folder for the tracker and listing tests (builders in run_fixtures.py)."""

from __future__ import annotations

from pathlib import Path

import pytest
from run_fixtures import make_run

from tunesmith.track.run_dir import RunDir


@pytest.fixture()
def fake_run(tmp_path: Path) -> RunDir:
    return make_run(tmp_path / "runs")
