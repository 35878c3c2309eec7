"""`tunesmith eval cfg.yaml --adapter runs/<id>/adapter`: base and tuned side by side on the config's test split.

The split is recomputed from the config (same data, same seed -> the same test records the run held out). The
reports (eval_report.json, predictions.jsonl, review files, report.html) go into the run folder when the adapter
sits in one, else into the adapter folder.
"""

from __future__ import annotations

from pathlib import Path

from tunesmith.config import Config
from tunesmith.core.errors import TunesmithError
from tunesmith.recipes.common import console, prompt_style, setup_runtime
from tunesmith.recipes.eval_suite import check_eval_settings, evaluate_base, evaluate_tuned, write_evaluation


def evaluate_adapter(cfg: Config, adapter_dir: Path) -> Path:
    from tunesmith.data.load import load_splits
    from tunesmith.models.export import load_tuned, load_tuned_tokenizer
    from tunesmith.models.load import load_model_and_tokenizer

    if not adapter_dir.is_dir():
        raise TunesmithError(f"adapter folder not found: {adapter_dir}; pass --adapter runs/<id>/adapter")
    check_eval_settings(cfg)
    out = console()
    device, dtype = setup_runtime(cfg)
    splits, _ = load_splits(cfg.data, cfg.run.seed)
    style = prompt_style(cfg.encode, splits.train)
    base_eval = None
    if cfg.eval.compare_base:
        base, tokenizer = load_model_and_tokenizer(cfg.model)
        base_eval = evaluate_base(base.to(device), tokenizer, splits, style, cfg, device, dtype, out)
        del base
    tuned = load_tuned(cfg.model, adapter_dir).to(device)
    tokenizer = load_tuned_tokenizer(cfg.model, adapter_dir)
    tuned_eval = evaluate_tuned(tuned, tokenizer, splits, style, cfg, device, dtype, out)
    # inside a run folder the report sits beside the run's other reports; a loose adapter keeps its own
    in_run = (adapter_dir.parent / "manifest.json").is_file()
    folder = adapter_dir.parent if in_run else adapter_dir
    write_evaluation(base_eval, tuned_eval, cfg, folder, out)
    return folder / "eval_report.json"
