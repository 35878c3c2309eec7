"""`tunesmith rerun runs/<id>`: the saved config.yaml, a fresh run id beside the original, and a comparison.

On CPU a rerun must reproduce the final metrics exactly (same seed, same data, deterministic kernels); on an
accelerator small differences are expected and reported, not failed.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tunesmith.config import Config, config_hash, load_config
from tunesmith.track.listing import compare_final, read_json_or_none
from tunesmith.track.run_dir import new_run_id


def rerun_config(original: Path, overrides: list[str] | None = None) -> Config:
    """The original run's config (plus any overrides) aimed at a new run folder next to the original."""
    cfg = load_config(original / "config.yaml", overrides or [])
    cfg.run.output_dir = str(original.parent)
    run_id = new_run_id(config_hash(cfg))
    candidate, n = run_id, 1
    while (original.parent / candidate).exists():  # same second as the original (or another rerun)
        n += 1
        candidate = f"{run_id}-rerun{n}"
    cfg.run.run_id = candidate
    return cfg


def _device(path: Path) -> str:
    manifest = read_json_or_none(path / "manifest.json")
    return str(manifest.get("device") or "") if isinstance(manifest, dict) else ""


def report_rerun(original: Path, again: Path, out: Any = None) -> int:
    """Print the final metrics side by side; 1 when a CPU rerun differs in any of them, else 0."""
    from rich.console import Console
    from rich.table import Table

    out = out or Console(highlight=False)
    rows = compare_final(original, again)
    table = Table(title=f"rerun {again.name} vs {original.name}")
    for column in ("metric", "original", "rerun", "same"):
        table.add_column(column, justify="left" if column == "metric" else "right")
    differing = [name for name, a, b in rows if a != b]
    for name, a, b in rows:
        table.add_row(name, "-" if a is None else repr(a), "-" if b is None else repr(b), "yes" if a == b else "NO")
    out.print(table)
    on_cpu = _device(original) == "cpu" and _device(again) == "cpu"
    if not differing:
        out.print(f"reproduced: all {len(rows)} final metrics are identical")
        return 0
    if on_cpu:
        out.print(f"[red]not reproduced on CPU[/]: {', '.join(differing)} differ")
        return 1
    out.print(f"{len(differing)} of {len(rows)} metrics differ (expected on an accelerator: kernels are not exact)")
    return 0
