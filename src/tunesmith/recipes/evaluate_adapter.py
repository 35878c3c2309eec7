"""`tunesmith eval cfg.yaml --adapter runs/<id>/adapter`: base and tuned side by side on the config's test split.

The split is recomputed from the config (same data, same seed -> the same test records the run held out).
"""

from __future__ import annotations

from pathlib import Path

from tunesmith.config import Config
from tunesmith.core.errors import TunesmithError
from tunesmith.recipes.common import console, evaluate_one, evaluate_side_by_side, prompt_style, setup_runtime


def evaluate_adapter(cfg: Config, adapter_dir: Path) -> Path:
    from tunesmith.data.load import load_splits
    from tunesmith.models.export import load_tuned, load_tuned_tokenizer
    from tunesmith.models.load import load_model_and_tokenizer

    if not adapter_dir.is_dir():
        raise TunesmithError(f"adapter folder not found: {adapter_dir}; pass --adapter runs/<id>/adapter")
    out = console()
    device, dtype = setup_runtime(cfg)
    splits, _ = load_splits(cfg.data, cfg.run.seed)
    style = prompt_style(cfg.encode, splits.train)
    base_result = None
    if cfg.eval.compare_base:
        base, tokenizer = load_model_and_tokenizer(cfg.model)
        out.print("evaluating the base model ...")
        base_result = evaluate_one(base.to(device), tokenizer, splits.test, style, cfg, device, dtype)
        del base
    tuned = load_tuned(cfg.model, adapter_dir).to(device)
    tokenizer = load_tuned_tokenizer(cfg.model, adapter_dir)
    out.print("evaluating the tuned model ...")
    tuned_result = evaluate_one(tuned, tokenizer, splits.test, style, cfg, device, dtype)
    # inside a run folder the report sits beside the run's other reports; a loose adapter keeps its own
    in_run = (adapter_dir.parent / "manifest.json").is_file()
    path = (adapter_dir.parent if in_run else adapter_dir) / "eval_report.json"
    evaluate_side_by_side(base_result, tuned_result, path, out)
    return path
