"""`tunesmith data inspect FILE`: detected format, counts, label balance, token lengths and every problem.

Exit code 0 when the file is clean, 1 when problems were found (so scripts can gate on it).
"""

from __future__ import annotations

from pathlib import Path

from tunesmith.config import ModelConfig
from tunesmith.data.inspect import inspect_file, render_inspect_report


def inspect_data(
    path: Path, fmt: str = "auto", model_source: str | None = None, with_tokens: bool = True, max_seq_length: int = 512
) -> int:
    from rich.console import Console

    tokenizer = None
    if with_tokens:
        from tunesmith.models.load import load_tokenizer, resolve_source

        model_cfg = ModelConfig(source=model_source) if model_source else ModelConfig()
        folder, extra = resolve_source(model_cfg)
        tokenizer = load_tokenizer(folder, model_cfg, extra)
    report = inspect_file(path, fmt, tokenizer=tokenizer, max_seq_length=max_seq_length if with_tokens else None)
    Console().print(render_inspect_report(report))
    return 1 if report.problems else 0
