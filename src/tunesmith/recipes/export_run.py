"""`tunesmith export runs/<id> [--merge]`: copy the adapter out, or merge it into full safetensors weights."""

from __future__ import annotations

import shutil
from pathlib import Path

from tunesmith.config import load_config
from tunesmith.core.errors import TunesmithError


def export_run(run_dir: Path, merge: bool, out_dir: Path | None = None) -> Path:
    from tunesmith.models.export import export_merged

    adapter = run_dir / "adapter"
    config = run_dir / "config.yaml"
    if not adapter.is_dir() or not config.is_file():
        raise TunesmithError(f"{run_dir} is not a finished run (needs adapter/ and config.yaml); train it first")
    cfg = load_config(config)
    out_dir = out_dir or run_dir / ("merged" if merge else "export")
    if not merge:
        if out_dir.exists():
            shutil.rmtree(out_dir)
        shutil.copytree(adapter, out_dir)
        return out_dir
    report = export_merged(cfg.model, adapter, out_dir)
    print(f"merged logits match the adapter model (max abs diff {report.max_abs_diff:.1e})")
    return report.out_dir
